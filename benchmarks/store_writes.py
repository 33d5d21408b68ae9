"""Benchmark: the per-run write path, against raw SQLite, sqlite-utils and MLflow.

    python benchmarks/store_writes.py            # writes the table into benchmarks/README.md
    python benchmarks/store_writes.py --quick    # fewer runs, prints only

Each run is what a tracked cell writes: a run row, 10 params and 5 metrics, one transaction,
on a file in a fresh temporary directory (WAL, synchronous=NORMAL, as the store uses).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, quiet_mlflow, table  # noqa: E402

from mlops_jupyter.store import Store  # noqa: E402

PARAMS = {f"param_{i}": i * 1.5 for i in range(10)}
METRICS = {f"metric_{i}": 0.9 + i / 100 for i in range(5)}
RAW_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, experiment TEXT, status TEXT, started_at REAL);
CREATE TABLE params (run_id TEXT, key TEXT, value TEXT, PRIMARY KEY (run_id, key));
CREATE TABLE metrics (run_id TEXT, key TEXT, step INTEGER, value REAL,
                      PRIMARY KEY (run_id, key, step));
"""


def raw_sqlite(directory: Path) -> Callable[[], None]:
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(RAW_SCHEMA)

    def write() -> None:
        run_id = uuid.uuid4().hex
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO runs VALUES (?, 'bench', 'finished', ?)", (run_id, time.time()))
        conn.executemany(
            "INSERT INTO params VALUES (?, ?, ?)", [(run_id, k, str(v)) for k, v in PARAMS.items()]
        )
        conn.executemany(
            "INSERT INTO metrics VALUES (?, ?, 0, ?)", [(run_id, k, v) for k, v in METRICS.items()]
        )
        conn.execute("COMMIT")

    return write


def sqlite_utils_helpers(directory: Path) -> Callable[[], None]:
    import sqlite_utils

    db = sqlite_utils.Database(directory / "sqlite_utils.db")
    db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(RAW_SCHEMA)

    def write() -> None:
        run_id = uuid.uuid4().hex
        with db.conn:
            db["runs"].insert(
                {"id": run_id, "experiment": "bench", "status": "finished", "started_at": 0.0}
            )
            db["params"].insert_all(
                {"run_id": run_id, "key": k, "value": str(v)} for k, v in PARAMS.items()
            )
            db["metrics"].insert_all(
                {"run_id": run_id, "key": k, "step": 0, "value": v} for k, v in METRICS.items()
            )

    return write


def store_record_run(directory: Path) -> Callable[[], None]:
    store = Store.open(directory / "store" / ".mlops")

    def write() -> None:
        store.record_run("bench", params=PARAMS, metrics=METRICS)

    return write


def store_tracked_cell(directory: Path) -> Callable[[], None]:
    """What %%track does: a `running` row first, then everything in a second transaction."""
    store = Store.open(directory / "cell" / ".mlops")

    def write() -> None:
        run_id = store.create_run("bench")
        store.finish_run(run_id, params=PARAMS, metrics=METRICS)

    return write


def mlflow_client(directory: Path, tracking_uri: str | None = None) -> Callable[[], None] | None:
    """MLflow's client writing the same run (on SQLite in ``directory`` unless a
    ``tracking_uri`` names another backend)."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri or f"sqlite:///{directory / 'mlflow.db'}")
    experiment_id = client.create_experiment("bench", artifact_location=str(directory / "mlruns"))

    def write() -> None:
        run = client.create_run(experiment_id)
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)) for k, v in PARAMS.items()],
            metrics=[Metric(k, v, now, 0) for k, v in METRICS.items()],
        )
        client.set_terminated(run.info.run_id)

    return write


def per_run_ms(write: Callable[[], None], runs: int) -> float:
    for _ in range(min(20, runs)):  # warm caches, create pages
        write()
    start = time.perf_counter()
    for _ in range(runs):
        write()
    return (time.perf_counter() - start) / runs * 1000


def run(quick: bool) -> str:
    runs = 200 if quick else 2000
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cases: list[tuple[str, Callable[[Path], Callable[[], None] | None], int]] = [
            ("raw sqlite3, executemany", raw_sqlite, runs),
            ("sqlite-utils insert helpers", sqlite_utils_helpers, runs),
            ("**mlops-jupyter** `record_run` (one transaction)", store_record_run, runs),
            ("**mlops-jupyter** tracked cell (running row, then finish)", store_tracked_cell, runs),
            ("MLflow client, SQLite backend", mlflow_client, max(20, runs // 10)),
        ]
        baseline = None
        for label, factory, n in cases:
            write = factory(directory)
            if write is None:
                print(f"  {label}: not installed (pip install -e '.[bench]')")
                continue
            ms = per_run_ms(write, n)
            baseline = baseline or ms
            rows.append([label, f"{n:,}", f"{ms:.3f} ms", f"{ms / baseline:.1f}x"])
            print(f"  {label:60s} {ms:8.3f} ms/run", flush=True)
    return (
        f"Machine: {machine()}, SQLite {sqlite3.sqlite_version}.\n\n"
        "Per run: one run row, 10 params, 5 metrics. Mean over the runs after 20 warm-up runs.\n\n"
        + table(["writer", "runs", "time per run", "vs raw SQLite"], rows)
    )


def main() -> None:
    cli_main(__doc__, "store-writes", run, quick_help="fewer runs, print only")


if __name__ == "__main__":
    main()
