"""Benchmark: the runs listing the side panel asks for, at 100,000 runs, and MLflow's search.

    python benchmarks/runs_query.py            # 100,000 runs; writes the table into README.md
    python benchmarks/runs_query.py --quick    # 5,000 runs, prints only

A store of N runs with 10 params and 5 metrics each; a page of 100 sorted by a metric,
unfiltered and with a parameter filter matching 20 % and 1 % of the runs; compare of 10 runs.
A second experiment of 500 runs shows a small experiment sorted inside a big store, and the big
experiment with the 20 % filter the cost of two broad conditions together (each match probed).
MLflow's ``search_runs`` ordered by a metric runs on 10,000 runs of the same shape (filling an
MLflow store takes about 15 ms per run, so 100,000 would take half an hour).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, median_ms, quiet_mlflow, table  # noqa: E402

SMALL = 500


def params_for(i: int) -> dict[str, object]:
    group = "rare" if i % 100 == 0 else ("some" if i % 5 == 0 else "other")
    return {"group": group, **{f"p{j}": (i * 7 + j) % 10 for j in range(1, 10)}}


def build_store(directory: Path, n: int) -> list[str]:
    from mlops_jupyter.store import Store

    rng = random.Random(0)
    with Store.open(directory) as store, store.transaction():
        for i in range(SMALL):
            store.record_run(
                "small",
                params=params_for(i),
                metrics={f"m{j}": rng.random() for j in range(5)},
                started_at=1.7e9 + i,
                ended_at=1.7e9 + i + 1,
            )
        return [
            store.record_run(
                "bench",
                name=f"r{i}",
                params=params_for(i),
                metrics={f"m{j}": rng.random() for j in range(5)},
                started_at=1.8e9 + i,
                ended_at=1.8e9 + i + 1,
            )
            for i in range(n)
        ]


def mlflow_search_ms(directory: Path, n: int) -> float | None:
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    quiet_mlflow()
    client = MlflowClient(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}")
    experiment = client.create_experiment("bench", artifact_location=str(directory / "mlruns"))
    rng = random.Random(0)
    for i in range(n):
        run = client.create_run(experiment)
        client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)) for k, v in params_for(i).items()],
            metrics=[Metric(f"m{j}", rng.random(), 0, 0) for j in range(5)],
        )
    return median_ms(
        lambda: client.search_runs([experiment], order_by=["metrics.m0 DESC"], max_results=100),
        repeat=3,
    )


def run(quick: bool) -> str:
    from mlops_jupyter.compare import compare_runs
    from mlops_jupyter.store import Store
    from mlops_jupyter.store.queries import run_page

    n = 5_000 if quick else 100_000
    n_mlflow = 500 if quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ids = build_store(Path(tmp) / ".mlops", n)
        print(f"built {n:,} runs in {time.perf_counter() - start:.0f} s", flush=True)
        with Store.open(Path(tmp) / ".mlops", create=False) as store:
            cases = [
                ("page of 100, newest first", lambda: run_page(store, limit=100)),
                (
                    "page of 100 sorted by a metric",
                    lambda: run_page(store, sort="-metrics.m0", limit=100),
                ),
                (
                    "... with a parameter filter matching 20 %",
                    lambda: run_page(
                        store, sort="-metrics.m0", limit=100, filters=["params.group=some"]
                    ),
                ),
                (
                    "... with a parameter filter matching 1 %",
                    lambda: run_page(
                        store, sort="-metrics.m0", limit=100, filters=["params.group=rare"]
                    ),
                ),
                (
                    f"a {SMALL}-run experiment sorted by a metric",
                    lambda: run_page(store, experiment="small", sort="-metrics.m0", limit=100),
                ),
                (
                    f"the {n:,}-run experiment with the 20 % filter",
                    lambda: run_page(
                        store,
                        experiment="bench",
                        sort="-metrics.m0",
                        limit=100,
                        filters=["params.group=some"],
                    ),
                ),
                ("compare 10 runs", lambda: compare_runs(store, ids[:10])),
            ]
            size = f"{n + SMALL:,}"
            rows = [[label, size, f"{median_ms(fn, 21):.1f} ms"] for label, fn in cases]
        for row in rows:
            print(f"  {row[0]:<45} {row[2]}", flush=True)
        mlflow = mlflow_search_ms(Path(tmp), n_mlflow)
    if mlflow is not None:
        rows.append(
            ["MLflow `search_runs` ordered by a metric", f"{n_mlflow:,}", f"{mlflow:.1f} ms"]
        )
    return (
        f"Machine: {machine()}. p50 of 21 calls (MLflow: 3), in process (add ~1-2 ms of HTTP).\n\n"
        + table(["query", "runs in the store", "p50"], rows)
    )


def main() -> None:
    cli_main(__doc__, "runs-query", run, quick_help="5,000 runs, print only")


if __name__ == "__main__":
    main()
