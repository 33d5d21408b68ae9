"""Benchmark: the runs listing the side panel asks for, at 100,000 and 1,000,000 runs.

    python benchmarks/runs_query.py            # writes the table into README.md
    python benchmarks/runs_query.py --quick    # 2,000 and 5,000 runs, prints only

A store of N runs with 10 params and 5 metrics each (written in bulk, the rows
``record_run`` writes) and a second experiment of 500 runs. Every listing shape: newest
first, by a metric and by a parameter, each with no condition, one parameter condition
matching 1 %, 20 % or 80 % of the runs, and that condition together with a metric condition
matching half; a page of 100 with its exact total. Also the first listing after the store is
opened (it builds the in-memory index), a small experiment inside the big store, compare of 10
runs, and MLflow's ``search_runs`` ordered by a metric on 10,000 runs of the same shape
(filling an MLflow store takes about 15 ms per run).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, median_ms, quiet_mlflow, table  # noqa: E402

SMALL = 500


def params_for(i: int) -> dict[str, object]:
    group = "rare" if i % 100 == 0 else ("some" if i % 5 == 0 else "other")
    return {"group": group, **{f"p{j}": (i * 7 + j) % 10 for j in range(1, 10)}}


SORTS = [("newest first", None), ("by a metric", "-metrics.m0"), ("by a param", "params.p1")]
SELECTIVITY = [("1 %", "params.group=rare"), ("20 %", "params.group=some"),
               ("80 %", "params.group=other")]  # fmt: skip
BROAD = "metrics.m1>=0.5"  # the second condition: half of the runs


def shapes() -> list[tuple[str, dict[str, object]]]:
    """Every listing shape: each sort with no condition, one parameter condition matching 1 %,
    20 % or 80 % of the runs, and that condition and a metric condition matching half."""
    cases: list[tuple[str, dict[str, object]]] = []
    for sort_label, sort in SORTS:
        cases.append((f"{sort_label}, no condition", {"sort": sort}))
        for share, condition in SELECTIVITY:
            cases.append((f"{sort_label}, a condition matching {share}",
                          {"sort": sort, "filters": [condition]}))  # fmt: skip
        for share, condition in SELECTIVITY:
            cases.append((f"{sort_label}, {share} and 50 % together",
                          {"sort": sort, "filters": [condition, BROAD]}))  # fmt: skip
    return cases


def listing_cases() -> list[tuple[str, dict[str, object]]]:
    return [
        *shapes(),
        (f"a {SMALL}-run experiment by a metric", {"experiment": "small", "sort": "-metrics.m0"}),
    ]


def rest_column(root: Path, repeat: int = 21) -> list[str]:
    """The same listings through a real Jupyter server's ``GET runs`` (token auth, loopback):
    the first request after the server started (it opens the store and builds the index),
    then the p50 of each shape."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from server_helpers import running_server

    with tempfile.TemporaryDirectory() as home, running_server(root, Path(home)) as server:

        def get(kwargs: dict[str, object]) -> None:
            params: dict[str, object] = {"limit": "100"}
            if kwargs.get("sort"):
                params["sort"] = kwargs["sort"]
            if kwargs.get("experiment"):
                params["experiment"] = kwargs["experiment"]
            if kwargs.get("filters"):
                params["filter"] = kwargs["filters"]
            response = server.get("mlops-jupyter/api/runs", **params)  # type: ignore[arg-type]
            response.raise_for_status()

        start = time.perf_counter()
        get({"sort": "-metrics.m0", "filters": ["params.group=some"]})
        column = [f"{(time.perf_counter() - start) * 1000:,.0f} ms"]
        print(f"  through REST: first listing {column[0]}", flush=True)
        for label, kwargs in listing_cases():
            ms = median_ms(lambda kw=kwargs: get(kw), repeat)  # type: ignore[misc]
            column.append(f"{ms:.1f} ms")
            print(f"    {label:<45} {ms:7.1f} ms through REST", flush=True)
    return column


def listing_table(store: Any, sizes: list[int], repeat: int = 21) -> list[list[str]]:
    """Fill ``store`` up to each size in turn (plus the small experiment) and time every
    shape there: rows of [query, p50 at each size]."""
    from _bulk import timed_fill

    from mlops_jupyter.store.queries import run_page

    timed_fill(store, "small", experiment="small", n=SMALL, params_for=params_for,
               started_at=1.7e9)  # fmt: skip
    cases = listing_cases()
    columns: list[list[str]] = []
    done = 0
    for size in sizes:
        timed_fill(store, "bench", experiment="bench", n=size - done, started_at=1.8e9 + done,
                   params_for=lambda i, d=done: params_for(i + d), seed=done)  # fmt: skip
        done = size
        store.conn.execute("VACUUM ANALYZE" if store.dialect.name != "sqlite" else "ANALYZE")
        store._run_index = None  # as just opened
        start = time.perf_counter()
        run_page(store, sort="-metrics.m0", filters=["params.group=some"])
        cold = (time.perf_counter() - start) * 1000
        column = [f"{cold:,.0f} ms"]
        print(f"  {size + SMALL:,} runs: first listing {cold:,.0f} ms", flush=True)
        for label, kwargs in cases:
            ms = median_ms(lambda kw=kwargs: run_page(store, limit=100, **kw), repeat)  # type: ignore[arg-type]
            column.append(f"{ms:.1f} ms")
            print(f"    {label:<45} {ms:7.1f} ms", flush=True)
        columns.append(column)
    labels = ["first listing after opening (loads the index: runs, a param, a metric)"]
    labels += [label for label, _ in cases]
    return [[label, *(column[i] for column in columns)] for i, label in enumerate(labels)]


def listing_header(sizes: list[int]) -> list[str]:
    return ["query (page of 100 and its exact total)",
            *(f"p50 at {size + SMALL:,} runs" for size in sizes)]  # fmt: skip


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

    sizes = [2_000, 5_000] if quick else [100_000, 1_000_000]
    repeat = 5 if quick else 21
    n_mlflow = 500 if quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        with Store.open(Path(tmp) / ".mlops") as store:
            rows = listing_table(store, sizes, repeat)
            ids = [r[0] for r in store.conn.execute("SELECT id FROM runs LIMIT 10").fetchall()]
            compare = median_ms(lambda: compare_runs(store, ids), 21)
        rest = rest_column(Path(tmp), repeat)
        rows = [[*row, r] for row, r in zip(rows, rest, strict=True)]
        rows.append(["compare 10 runs", "", f"{compare:.1f} ms", ""])
        print(f"  compare 10 runs {compare:.1f} ms", flush=True)
        mlflow = mlflow_search_ms(Path(tmp), n_mlflow)
    if mlflow is not None:
        rows.append([f"MLflow `search_runs` ordered by a metric, {n_mlflow:,} runs", "",
                     f"{mlflow:,.1f} ms", ""])  # fmt: skip
    header = [*listing_header(sizes), f"through REST at {sizes[-1] + SMALL:,}"]
    return (
        f"Machine: {machine()}. p50 of 21 calls (MLflow: 3), in process and through a Jupyter "
        "server's `GET runs` (token auth, loopback).\n\n" + table(header, rows)
    )


def main() -> None:
    cli_main(__doc__, "runs-query", run, quick_help="2,000 and 5,000 runs, print only")


if __name__ == "__main__":
    main()
