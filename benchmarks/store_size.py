"""Benchmark: store size per run over a long session, against the per-run list it replaced.

    python benchmarks/store_size.py            # writes the table into benchmarks/README.md
    python benchmarks/store_size.py --quick    # smaller sessions, prints only

A session of N tracked cells, each a run with 10 params and 5 metrics whose earlier cells are
every cell before it (each cell's source is about 200 bytes and distinct). "Chain" is the
store today: each source stored once, a run keeps the id of its newest earlier cell. "List per
run" is the layout before schema v5: the same runs with a JSON list of every earlier cell's
execution count and hash in the run's row (what made a 1,000-run store 86 % history).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, table  # noqa: E402

from mlops_jupyter.store import Store  # noqa: E402
from mlops_jupyter.store.cell_history import CellHistory, cell_hash  # noqa: E402

PARAMS = {f"param_{i}": i * 1.5 for i in range(10)}
METRICS = {f"metric_{i}": 0.9 + i / 100 for i in range(5)}


def cell(i: int) -> str:
    return (
        f"%%track -n step{i}\nmodel_{i} = RandomForestClassifier(n_estimators={i % 500})\n"
        f"model_{i}.fit(X_train, y_train)\nacc_{i} = accuracy_score(y_test, "
        f"model_{i}.predict(X_test))\nprint('run {i}', acc_{i})\n"
    )


def session(directory: Path, n: int, layout: str) -> tuple[int, float]:
    """Track n cells; return the store's size in bytes and the mean write time of the last
    10 % of the runs (ms)."""
    history = CellHistory()
    listed: list[dict[str, object]] = []
    times = []
    with Store.open(directory / layout / ".mlops") as store:
        for i in range(n):
            history.append(i + 1, cell(i))
            start = time.perf_counter()
            if layout == "chain":
                store.record_run("long", params=PARAMS, metrics=METRICS,
                                 history=history.before_last())  # fmt: skip
            else:
                run_id = store.record_run("long", params=PARAMS, metrics=METRICS)
                with store.transaction() as conn:
                    conn.execute(
                        "UPDATE runs SET history = ? WHERE id = ?", (json.dumps(listed), run_id)
                    )
                listed.append({"execution_count": i + 1, "source_hash": cell_hash(cell(i))[:16]})
            times.append(time.perf_counter() - start)
        store.checkpoint()
        store.conn.execute("VACUUM")
        size = store.db_path.stat().st_size
    tail = times[-max(1, n // 10) :]
    return size, sum(tail) / len(tail) * 1000


def run(quick: bool) -> str:
    sizes = [100, 1000] if quick else [100, 1000, 10_000]
    list_limit = 1000  # the list layout at 10,000 cells is about 3 GB: estimated, not written
    rows: list[list[str]] = []
    extra_per_cell = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            chain_size, chain_ms = session(Path(tmp) / f"c{n}", n, "chain")
            if n <= list_limit:
                list_size, list_ms = session(Path(tmp) / f"l{n}", n, "list")
                listed = f"{list_size / n:,.0f} B"
                listed_ms = f"{list_ms:.2f} ms"
                extra_per_cell = (list_size - chain_size) / n / n
            else:  # the extra bytes per run grow linearly with n: scale the last measurement
                flat = chain_size / n
                listed = f"≈ {flat + extra_per_cell * n:,.0f} B (extrapolated)"
                listed_ms = "-"
            rows.append([f"{n:,}", f"{chain_size / n:,.0f} B", f"{chain_ms:.2f} ms",
                         listed, listed_ms])  # fmt: skip
            print(f"  {n:>6} cells: chain {chain_size / n:8.0f} B/run, list {listed}", flush=True)
    return (
        f"Machine: {machine()}.\n\n"
        "A session of N tracked cells (10 params, 5 metrics each; every earlier cell recorded "
        "with each run); store size after VACUUM divided by N, and the mean write time of the "
        "last 10 % of the runs.\n\n"
        + table(
            [
                "cells in the session",
                "bytes per run (chain, schema v5)",
                "write, last 10 %",
                "bytes per run (list per run, before)",
                "write, last 10 % (before)",
            ],
            rows,
        )  # fmt: skip
    )


def main() -> None:
    cli_main(__doc__, "store-size", run, quick_help="smaller sessions, print only")


if __name__ == "__main__":
    main()
