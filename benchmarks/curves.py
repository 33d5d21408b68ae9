"""Benchmark: logging and reading curves against raw SQLite and MLflow, side by side.

    python benchmarks/curves.py            # 10,000 steps x 3 metrics; writes benchmarks/README.md
    python benchmarks/curves.py --quick    # 1,000 steps, prints only (a smoke run)

The work: a training loop logs three metrics per step. Writing: the same points inserted by raw
sqlite3 (one row per point, one transaction), by the store as it wrote them before (one
``metrics`` row per point), by the store now (one packed batch), and by MLflow's ``log_batch``.
The loop itself: ``log_metric`` in a run, against the same loop with nothing logged. Reading:
one metric's curve back, from each. Best of 5 (MLflow: best of 2).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import best_of, cli_main, machine, quiet_mlflow, table  # noqa: E402

import mlops_jupyter  # noqa: E402
from mlops_jupyter.store import Store  # noqa: E402
from mlops_jupyter.store.curves import points_from  # noqa: E402
from mlops_jupyter.store.records import encode_metric  # noqa: E402
from mlops_jupyter.store.sql import upsert  # noqa: E402

KEYS = ("loss", "val_loss", "accuracy")


def points(steps: int) -> list[tuple[str, float, int]]:
    return [
        (key, 1.0 / (step + 1) + i, step) for step in range(steps) for i, key in enumerate(KEYS)
    ]


def raw_sqlite(directory: Path, triples: list[tuple[str, float, int]]) -> tuple[Callable, Callable]:
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE points (run_id TEXT, key TEXT, step INTEGER, value REAL, timestamp REAL, "
        "PRIMARY KEY (run_id, key, step)) WITHOUT ROWID"
    )
    runs = iter(range(10**9))
    now = time.time()

    def write() -> None:
        run = f"run{next(runs)}"
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO points VALUES (?, ?, ?, ?, ?)",
            [(run, k, s, v, now) for k, v, s in triples],
        )
        conn.execute("COMMIT")

    def read() -> object:
        return conn.execute(
            "SELECT step, value FROM points WHERE run_id = 'run0' AND key = 'loss' ORDER BY step"
        ).fetchall()

    return write, read


def store_before(store: Store, triples: list[tuple[str, float, int]]) -> Callable[[], None]:
    """The write as the store did it before packed curves: a metrics row per point."""
    columns = ("run_id", "key", "step", "value", "flag", "timestamp")
    sql = upsert("metrics", columns, ("run_id", "key", "step"))

    def write() -> None:
        run_id = store.create_run("before")
        now = time.time()
        with store.transaction() as conn:
            conn.executemany(sql, [(run_id, k, s, *encode_metric(v), now) for k, v, s in triples])

    return write


def store_now(store: Store, triples: list[tuple[str, float, int]]) -> tuple[Callable, str]:
    run_ids = []
    batch = points_from(triples, time.time())  # what log_metric has built by then

    def write() -> None:
        run_id = store.create_run("now")
        run_ids.append(run_id)
        store.append_metric_points(run_id, batch)

    write()
    return write, run_ids[0]


def logging_loop(steps: int) -> tuple[Callable, Callable, list[str]]:
    """The loop a user writes, with log_metric and without it (the same arithmetic)."""
    run_ids: list[str] = []

    def logged() -> None:
        with mlops_jupyter.start_run(experiment="loop", shap=False) as run:
            for step in range(steps):
                loss = 1.0 / (step + 1)
                mlops_jupyter.log_metric("loss", loss)
                mlops_jupyter.log_metric("val_loss", loss + 1)
                mlops_jupyter.log_metric("accuracy", loss + 2)
            run_ids.append(run.run_id)

    def bare() -> None:
        kept = []
        for step in range(steps):
            loss = 1.0 / (step + 1)
            kept.append((loss, loss + 1, loss + 2))

    return logged, bare, run_ids


def mlflow_writer(directory: Path, triples: list[tuple[str, float, int]]) -> tuple | None:
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    quiet_mlflow()
    client = MlflowClient(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}")
    experiment = client.create_experiment("curves", artifact_location=str(directory / "mlruns"))
    run_ids: list[str] = []

    def write() -> None:
        run = client.create_run(experiment)
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, s) for k, v, s in triples]
        for start in range(0, len(metrics), 1000):  # log_batch takes at most 1,000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
        run_ids.append(run.info.run_id)

    write()
    return write, lambda: client.get_metric_history(run_ids[0], "loss")


def run(quick: bool) -> str:
    steps = 1_000 if quick else 10_000
    triples = points(steps)
    n = len(triples)
    rows: list[list[str]] = []

    def row(label: str, seconds: float, base: float | None, note: str = "") -> None:
        ratio = f"{seconds / base:,.2f}x" if base else "1.00x"
        rows.append([label, f"{seconds * 1000:,.1f} ms", ratio, note])
        print(f"  {label:60s} {seconds * 1000:9.1f} ms", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        raw_write, raw_read = raw_sqlite(directory, triples)
        store = Store.open(directory / ".mlops")
        os.environ["MLOPS_JUPYTER_STORE"] = str(directory / ".mlops")
        mlflow = mlflow_writer(directory, triples)
        raw_write()

        print(f"\nwrite {n:,} points ({steps:,} steps x {len(KEYS)} metrics)", flush=True)
        base = best_of(raw_write, 5)
        row(f"raw sqlite3: {n:,} rows, one transaction", base, None, "baseline")
        row(
            "mlops-jupyter before: a `metrics` row per point",
            best_of(store_before(store, triples), 5),
            base,
            "as the run's final write did it",
        )
        write_now, now_run = store_now(store, triples)
        row(
            "**mlops-jupyter**: one packed batch (`append_metric_points`)",
            best_of(write_now, 5),
            base,
            f"{len(KEYS)} chunk rows + {len(KEYS)} latest-value rows",
        )
        if mlflow is not None:
            row(f"MLflow `log_batch` x {n // 1000}, SQLite backend", best_of(mlflow[0], 2), base)

        print("\nthe loop", flush=True)
        logged, bare, loop_runs = logging_loop(steps)
        bare_s = best_of(bare, 5)
        row(f"untracked loop, {steps:,} steps (the same arithmetic)", bare_s, None, "baseline")
        logged_s = best_of(logged, 5)
        per_point = (logged_s - bare_s) / n * 1e6
        row(
            f"**`log_metric`** x {n:,} in a run, with its final write",
            logged_s,
            bare_s,
            f"{per_point:.2f} µs per point; written in batches while the loop runs",
        )

        print(f"\nread one {steps:,}-point curve back", flush=True)
        base_read = best_of(raw_read, 5)
        row(f"raw sqlite3: SELECT {steps:,} rows of one metric", base_read, None, "baseline")
        row(
            "**mlops-jupyter** `metric_curve` (numpy arrays)",
            best_of(lambda: store.metric_curve(now_run, "loss"), 5),
            base_read,
            "only that metric; no object per point",
        )
        row(
            "mlops-jupyter `get_run().metric_history` (every metric, a point object each)",
            best_of(lambda: store.get_run(now_run).metric_history["loss"], 5),
            base_read,
        )
        row(
            "`metric_curve` of a curve logged by the loop",
            best_of(lambda: store.metric_curve(loop_runs[0], "loss"), 5),
            base_read,
        )
        if mlflow is not None:
            row("MLflow `get_metric_history`", best_of(mlflow[1], 2), base_read)
        store.close()
        mlops_jupyter.api.default_tracker().close()

    header = ["work", "time", "vs baseline", "note"]
    return (
        f"Machine: {machine()}, SQLite {sqlite3.sqlite_version}.\n\n"
        f"{steps:,} steps x {len(KEYS)} metrics = {n:,} points. Best of 5 runs (MLflow: 2).\n\n"
        + table(header, rows)
    )


def main() -> None:
    cli_main(__doc__, "curves", run, quick_help="1,000 steps, print only")


if __name__ == "__main__":
    main()
