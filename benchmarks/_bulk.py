"""Fill a store with many finished runs fast, with the rows ``Store.record_run`` writes for
them (a run row, its params as JSON, one step of each metric and its ``latest_metrics`` row):
SQLite through ``executemany`` in one transaction per batch, PostgreSQL through ``COPY``.
A million runs take minutes this way instead of the hour ``record_run`` would (a transaction
each), so the listing benchmarks can run at the sizes the goals name."""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from mlops_jupyter.store import Store
from mlops_jupyter.store.store import new_run_id

BATCH = 20_000
RUN_COLUMNS = ("id", "experiment_id", "name", "status", "started_at", "ended_at", "duration_s",
               "host", "pid")  # fmt: skip
PARAM_COLUMNS = ("run_id", "key", "value", "source", "truncated")
METRIC_COLUMNS = ("run_id", "key", "step", "value", "timestamp")
LATEST_COLUMNS = ("run_id", "key", "step", "value")


def fill_runs(
    store: Store,
    experiment: str,
    n: int,
    params_for: Callable[[int], dict[str, Any]],
    *,
    metrics: int = 5,
    started_at: float = 1.8e9,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Add ``n`` finished runs to ``experiment``: run ``i`` has ``params_for(i)`` and metrics
    ``m0``..``m{metrics-1}`` drawn uniformly from [0, 1); started at ``started_at + i``."""
    rng = random.Random(seed)
    with store.transaction() as conn:
        experiment_id = store._experiment_id(conn, experiment)
    host, pid, ids = socket.gethostname(), os.getpid(), []
    for first in range(0, n, BATCH):
        runs, params, values, latest = [], [], [], []
        for i in range(first, min(first + BATCH, n)):
            run_id, start = new_run_id(), started_at + i
            ids.append(run_id)
            runs.append((run_id, experiment_id, f"r{i}", "finished", start, start + 1, 1.0,
                         host, pid))  # fmt: skip
            params += [
                (run_id, key, json.dumps(value), "user", 0) for key, value in params_for(i).items()
            ]
            for j in range(metrics):
                value = rng.random()
                values.append((run_id, f"m{j}", 0, value, start + 1))
                latest.append((run_id, f"m{j}", 0, value))
        _write(store, runs, params, values, latest)
        if progress is not None:
            progress(len(ids))
    return ids


def _write(store: Store, runs: list, params: list, values: list, latest: list) -> None:  # type: ignore[type-arg]
    if store.dialect.name == "sqlite":
        store.conn.execute("PRAGMA cache_size = -1000000")  # 1 GB: random ids, big indexes
        with store.transaction() as conn:  # the triggers write latest_metrics, run_changes
            for table, columns, rows in (
                ("runs", RUN_COLUMNS, runs),
                ("params", PARAM_COLUMNS, params),
                ("metrics", METRIC_COLUMNS, values),
            ):
                marks = ", ".join("?" * len(columns))
                conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                 rows)  # fmt: skip
        return
    raw = store.conn._conn  # psycopg's connection: COPY is not part of the store's contract
    with raw.transaction():
        # as a superuser, skip the per-row triggers and write the rows they would have
        # written (the listing's change numbers matter only to an index already loaded)
        raw.execute("SET LOCAL session_replication_role = replica")
        for table, columns, rows in (
            ("runs", RUN_COLUMNS, runs),
            ("params", PARAM_COLUMNS, params),
            ("metrics", METRIC_COLUMNS, values),
            ("latest_metrics", LATEST_COLUMNS, latest),
        ):
            with raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def timed_fill(store: Store, label: str, **kwargs: Any) -> list[str]:
    """``fill_runs`` printing its progress every 100,000 runs."""
    start = time.perf_counter()

    def progress(done: int) -> None:
        if done % 100_000 == 0 or done == kwargs["n"]:
            rate = done / (time.perf_counter() - start)
            print(f"    {label}: {done:,} runs ({rate:,.0f}/s)", flush=True)

    return fill_runs(store, progress=progress, **kwargs)
