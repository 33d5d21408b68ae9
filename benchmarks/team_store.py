"""Benchmark: the team store on PostgreSQL, side by side with the SQLite store and MLflow.

    python benchmarks/team_store.py            # writes the table into benchmarks/README.md
    python benchmarks/team_store.py --quick    # small sizes, prints only

Starts a throwaway PostgreSQL cluster on 127.0.0.1 (Debian's server binaries, as the
``postgres`` user when run as root; fsync off, as for the tests), then measures:

- per-run write (10 params, 5 metrics): the SQLite store, the PostgreSQL store over loopback
  (``record_run``, and a tracked cell's two transactions), and MLflow's tracking client on
  the same PostgreSQL server (``log_batch``);
- the runs listing of the side panel on PostgreSQL at 100,000 and 1,000,000 runs (every shape
  of ``runs_query.py``; the runs written with ``COPY``);
- ``push`` of a laptop store (runs with curves, data, explanations and 1 MB models) to it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway cluster of the test suite

from _report import cli_main, machine, table  # noqa: E402
from runs_query import listing_header, listing_table  # noqa: E402
from store_writes import METRICS, PARAMS, mlflow_client  # noqa: E402

from mlops_jupyter.store import Store  # noqa: E402


def per_run_ms(write: Callable[[], None], runs: int, batches: int = 5) -> float:
    """The mean time per run of the fastest of ``batches`` batches (the least disturbed by
    other work on a shared machine), after 20 warm-up runs."""
    for _ in range(min(20, runs)):
        write()
    size = max(1, runs // batches)
    best = float("inf")
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(size):
            write()
        best = min(best, (time.perf_counter() - start) / size)
    return best * 1000


def writes(cluster, tmp: Path, runs: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    lite = Store.open(tmp / "lite" / ".mlops")
    team = Store.open(cluster.url(cluster.create_database()), start=tmp)

    def cell() -> None:
        run_id = team.create_run("bench")
        team.finish_run(run_id, params=PARAMS, metrics=METRICS)

    cases: list[tuple[str, Callable[[], None] | None, int]] = [
        ("SQLite store `record_run`", lambda: lite.record_run("b", params=PARAMS,
                                                               metrics=METRICS), runs),
        ("**PostgreSQL store** `record_run` (loopback)", lambda: team.record_run(
            "b", params=PARAMS, metrics=METRICS), runs),
        ("**PostgreSQL store**, a tracked cell (running row, then finish)", cell, runs),
        ("MLflow client on the same PostgreSQL (`log_batch`)", mlflow_writer(cluster, tmp),
         max(20, runs // 10)),
    ]  # fmt: skip
    rows, base = [], None
    for label, write, n in cases:
        if write is None:
            print(f"  {label}: MLflow not installed (pip install -e '.[bench]')")
            continue
        ms = per_run_ms(write, n)
        base = base or ms
        rows.append([label, f"{n:,}", f"{ms:.2f} ms", f"{ms / base:.1f}x"])
        print(f"  {label:66s} {ms:7.2f} ms/run", flush=True)
    lite.close()
    team.close()
    return rows


def mlflow_writer(cluster, tmp: Path) -> Callable[[], None] | None:  # type: ignore[no-untyped-def]
    """store_writes.py's MLflow writer, on the same PostgreSQL server."""
    uri = f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/{cluster.create_database()}"
    return mlflow_client(tmp / "mlflow", tracking_uri=uri)


def listing(cluster, tmp: Path, sizes: list[int]) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """runs_query.py's listing shapes on PostgreSQL (filled with COPY)."""
    with Store.open(cluster.url(cluster.create_database()), start=tmp) as store:
        return listing_table(store, sizes)


def push(cluster, tmp: Path, n: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    import os

    from mlops_jupyter.store.records import DatasetLink
    from mlops_jupyter.store.sync import copy_runs

    models = [os.urandom(1 << 20) for _ in range(20)]
    with Store.open(tmp / "laptop" / ".mlops") as laptop:
        for i in range(n):
            run_id = laptop.create_run("push", name=f"r{i}")
            laptop.add_artifact(run_id, "model", models[i % 20], kind="model")
            laptop.finish_run(
                run_id, params=PARAMS, metrics=METRICS,
                series={"loss": [1 / (s + 1) for s in range(100)]},
                datasets=[DatasetLink(f"mj1-blake3:{i % 10:064x}", "train", "X", "ndarray")],
            )  # fmt: skip
        team = Store.open(cluster.url(cluster.create_database()), start=tmp)
        start = time.perf_counter()
        report = copy_runs(laptop, team)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = copy_runs(laptop, team)
        second = time.perf_counter() - start
        team.close()
    assert report.copied == n and again.copied == 0
    mb = report.blob_bytes / 1e6
    print(f"  push {n} runs: {first:.2f} s ({mb:.0f} MB of blobs); again {second:.2f} s")
    return [
        [f"push {n:,} runs (10 params, 5 metrics, a 100-step curve, a dataset, a model each; "
         f"{report.blobs} distinct 1 MB models)", f"{first:.2f} s",
         f"{n / first:,.0f} runs/s, {mb / first:.1f} MB/s of blobs"],
        ["the same push again (nothing to copy)", f"{second:.2f} s", f"{n / second:,.0f} runs/s"],
    ]  # fmt: skip


def run(quick: bool) -> str:
    from pg_cluster import remove_cluster, start_cluster

    cluster = start_cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            n_write, n_push = (200, 200) if quick else (2_000, 1_000)
            sizes = [5_000] if quick else [100_000, 1_000_000]
            print("per-run write", flush=True)
            write_rows = writes(cluster, Path(tmp), n_write)
            print("runs listing", flush=True)
            list_rows = listing(cluster, Path(tmp), sizes)
            print("push", flush=True)
            push_rows = push(cluster, Path(tmp), n_push)
        version = cluster_version(cluster)
    finally:
        remove_cluster(cluster)
    return (
        f"Machine: {machine()}, {version} on 127.0.0.1 (fsync off).\n\n"
        "Per-run write: one run row, 10 params, 5 metrics; the mean of the fastest of 5 batches "
        "after 20 warm-up runs.\n\n"
        + table(["writer", "runs", "time per run", "vs the first row"], write_rows)
        + "\n\nRuns listing on PostgreSQL, in process, p50 of 21 calls (the shapes of "
        "`runs_query.py`):\n\n"
        + table(listing_header(sizes), list_rows)
        + "\n\n"
        + table(["push from an SQLite laptop store", "time", "throughput"], push_rows)
    )


def cluster_version(cluster) -> str:  # type: ignore[no-untyped-def]
    import psycopg

    with psycopg.connect(cluster.admin_url) as conn:
        return "PostgreSQL " + str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


def main() -> None:
    cli_main(__doc__, "team-store", run, quick_help="small sizes, print only")


if __name__ == "__main__":
    main()
