"""Benchmark: appending runs to a store that already holds 100,000 and 1,000,000 of them.

    python benchmarks/store_scale.py            # writes the table into benchmarks/README.md
    python benchmarks/store_scale.py --quick    # 2,000 and 10,000 runs, prints only

Each size is filled in bulk (``_bulk.fill_runs``: 10 params and 5 metrics a run, the rows
``record_run`` writes), the store is reopened, and ``record_run`` appends runs of the same shape:
back to back (an import, a script) and one every 20 ms (notebook cells, with time between them).
*Before* is the store as it was: a ``(key, value)`` index on every metric point and SQLite's
default checkpoint inside the commit that takes the log past 1,000 pages. *Now*: no such index
(schema v9) and the checkpoint on a background thread (``store/checkpointer.py``), whose time is
shown beside the commit's. Bytes per run count the pages in use (the file minus its free list).
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bulk import fill_runs  # noqa: E402
from _report import cli_main, machine, table  # noqa: E402
from runs_query import params_for  # noqa: E402

from mlops_jupyter.store import Store  # noqa: E402

PACE = 0.02  # seconds between paced runs


def _metrics(i: int) -> dict[str, float]:
    return {f"m{j}": ((i * 7919 + j * 104729) % 10007) / 10007 for j in range(5)}


def _open(directory: Path, before: bool) -> Store:
    store = Store.open(directory)
    if before:
        store.engine.checkpointer.close()  # commits checkpoint, as SQLite does by default
        store.conn.execute("PRAGMA wal_autocheckpoint = 1000")
        store.conn.execute("CREATE INDEX IF NOT EXISTS metrics_key_value ON metrics(key, value)")
    else:
        store.conn.execute("DROP INDEX IF EXISTS metrics_key_value")
    store.checkpoint()
    return store


def _append(store: Store, first: int, n: int, pace: float) -> tuple[float, float, float]:
    """Mean and worst ms per ``record_run``, and background checkpoint ms per run (including
    the wait for it to copy the last of them)."""
    checkpointer = store.engine.checkpointer
    spent = checkpointer.seconds
    times = []
    for i in range(first, first + n):
        started = time.perf_counter()
        store.record_run("big", params=params_for(i), metrics=_metrics(i))
        times.append(time.perf_counter() - started)
        if pace:
            time.sleep(pace)
    if checkpointer.running:
        checkpointer.wait()
    background = (checkpointer.seconds - spent) / n * 1000
    return sum(times) / n * 1000, max(times) * 1000, background


def _bytes_per_run(store: Store) -> float:
    store.checkpoint()
    pages, free, size = (
        store.conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("page_count", "freelist_count", "page_size")
    )
    runs = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return (pages - free) * size / runs if runs else float("nan")


def run(quick: bool) -> str:
    sizes = (0, 2_000, 10_000) if quick else (0, 100_000, 1_000_000)
    burst, paced = (200, 50) if quick else (1_000, 300)
    rows: list[list[str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="store-scale-"))
    try:
        directory, have = tmp / ".mlops", 0
        for size in sizes:
            with Store.open(directory) as store:
                started = time.perf_counter()
                fill_runs(
                    store, "big", size - have, lambda i, at=have: params_for(i + at),
                    started_at=1.8e9 + have, seed=have,
                    progress=lambda done, at=have: print(f"  filled {at + done:,}", flush=True),
                )  # fmt: skip
                print(f"  {size:,} runs filled in {time.perf_counter() - started:.0f} s")
            have = size
            for label, before in (("before", True), ("now", False)):
                with _open(directory, before) as store:
                    per_run = _bytes_per_run(store)
                    mean, worst, background = _append(store, have, burst, 0.0)
                    have += burst
                    p_mean, p_worst, p_background = _append(store, have, paced, PACE)
                    have += paced
                rows.append([
                    f"{size:,}" if size else "0 (a new store)", label,
                    f"{mean:.2f} ms (worst {worst:.0f})",
                    f"{background:.2f} ms" if not before else "in the commit",
                    f"{p_mean:.2f} ms (worst {p_worst:.0f})",
                    f"{p_background:.2f} ms" if not before else "in the commit",
                    f"{per_run:,.0f} B" if size else "-",
                ])  # fmt: skip
                print("  " + " | ".join(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return (
        f"Machine: {machine()}, SQLite {sqlite3.sqlite_version}.\n\n"
        f"`record_run` with 10 params and 5 metrics: {burst:,} back to back, then {paced:,} "
        f"one every {PACE * 1000:.0f} ms. Background: the checkpoint thread's time per run, "
        "which the commit no longer waits for. Bytes per run: pages in use / runs, before the "
        "appends. A new store shows what a write costs on this machine before the store is "
        "big: a write after 20 ms idle takes longer than one straight after another (colder "
        "caches), whatever the store holds.\n\n"
        + table(
            [
                "runs in the store",
                "",
                "back to back",
                "background",
                "paced (cells)",
                "background",
                "bytes per run",
            ],
            rows,
        )  # fmt: skip
    )


def main() -> None:
    cli_main(__doc__, "store-scale", run, quick_help="2,000 and 10,000 runs, print only")


if __name__ == "__main__":
    main()
