"""Benchmark: recording a production batch (``record_batch``) next to hashing the same frame and
next to Evidently's data-drift report on the same data; and where the two disagree.

    python benchmarks/monitor.py            # 1,000,000 x 20 and 1 GiB batches; writes README.md
    python benchmarks/monitor.py --quick    # 50,000 rows and 64 MiB, no Evidently, prints only
    python benchmarks/monitor.py --evidently-python PATH   # a Python that has Evidently 0.7

A store holds a registered version in production whose training run recorded the profile of
its 1,000,000-row training frame (16 numeric features, 4 categorical). The batch is a frame of
the same columns, some shifted by known amounts. Timed in one run: ``hash_data`` of the batch,
``record_batch`` end to end (hash, profile, per-feature drift, the row and its signed audit
entry) and its parts, the profile as it was before (numpy's quantile partitioning the column
around 40-odd ranks), and Evidently's ``Report([DataDriftPreset()]).run(batch, training)``.
Then a 1 GiB numeric batch: hashing alone against ``record_batch``.

Evidently 0.7 does not import beside pandas 3, so it runs in a Python of its own with pandas 2
(``_evidently_worker.py``, reading the same frames from Parquet): ``--evidently-python``, or a
virtual environment this script makes on first use in
``~/.cache/mlops-jupyter-bench/evidently-venv`` (pip install evidently==0.7.23 "pandas<3"
pyarrow). A full run stops with a message when that cannot be had.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import best_of, machine, table, write_section  # noqa: E402

from mlops_jupyter.capture import profile as profile_module  # noqa: E402
from mlops_jupyter.capture.hashing import hash_data  # noqa: E402
from mlops_jupyter.capture.profile import describe  # noqa: E402
from mlops_jupyter.monitoring import record_batch  # noqa: E402
from mlops_jupyter.monitoring.batch import as_columns  # noqa: E402
from mlops_jupyter.monitoring.drift import compare  # noqa: E402

HERE = Path(__file__).resolve().parent
EVIDENTLY = "0.7.23"
EVIDENTLY_VENV = Path.home() / ".cache" / "mlops-jupyter-bench" / "evidently-venv"

# (name, what the batch does to it); the training data is the same columns unshifted
NUMERIC: list[tuple[str, str]] = [
    ("age", "unchanged (normal)"),
    ("income", "unchanged (log-normal)"),
    ("score", "unchanged (uniform)"),
    ("visits", "unchanged (Poisson counts, int64)"),
    ("mean_002", "mean + 0.02 sd"),
    ("mean_005", "mean + 0.05 sd"),
    ("mean_02", "mean + 0.2 sd"),
    ("mean_04", "mean + 0.4 sd"),
    ("mean_1", "mean + 1 sd"),
    ("scale_11", "sd x 1.1"),
    ("scale_15", "sd x 1.5"),
    ("income_10pct", "log-normal, every value x 1.1"),
    ("visits_10pct", "Poisson mean 3 -> 3.3"),
    ("tail_3pct", "3 % of rows moved to +5 sd"),
    ("mixture", "two modes 50/50 -> 60/40"),
    ("binary", "unchanged (0/1, 30 % ones)"),
]
CATEGORICAL: list[tuple[str, str]] = [
    ("plan", "unchanged (3 categories)"),
    ("region", "10 categories, one 10 % -> 12 %"),
    ("device", "4 categories 40/30/20/10 -> 25/30/25/20"),
    ("channel", "5 categories + a new one in 5 % of rows"),
]
REGIONS = [f"region {i}" for i in range(10)]
DEVICES = ["desktop", "phone", "tablet", "tv"]
CHANNELS = ["search", "social", "email", "direct", "ads"]


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """The 20 features; ``shifted``: the batch's version of each (see ``NUMERIC``)."""
    rng = np.random.default_rng(seed)
    s = shifted

    def normal(shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
        return rng.normal(shift if s else 0.0, scale if s else 1.0, rows)

    tail = normal()
    if s:
        moved = rng.random(rows) < 0.03
        tail[moved] = rng.normal(5.0, 1.0, int(moved.sum()))
    modes = np.where(rng.random(rows) < (0.6 if s else 0.5), -2.0, 2.0) + rng.normal(size=rows)
    region_p = np.full(10, 0.1)
    if s:
        region_p = np.concatenate([[0.12], np.full(9, 0.88 / 9)])
    channel = rng.choice(CHANNELS, rows).astype(object)
    if s:
        channel[rng.random(rows) < 0.05] = "partner"
    columns: dict[str, Any] = {
        "age": rng.normal(40, 10, rows),
        "income": rng.lognormal(10.5, 0.5, rows),
        "score": rng.random(rows),
        "visits": rng.poisson(3.0, rows).astype(np.int64),
        "mean_002": normal(0.02),
        "mean_005": normal(0.05),
        "mean_02": normal(0.2),
        "mean_04": normal(0.4),
        "mean_1": normal(1.0),
        "scale_11": normal(scale=1.1),
        "scale_15": normal(scale=1.5),
        "income_10pct": rng.lognormal(10.5, 0.5, rows) * (1.1 if s else 1.0),
        "visits_10pct": rng.poisson(3.3 if s else 3.0, rows).astype(np.int64),
        "tail_3pct": tail,
        "mixture": modes,
        "binary": (rng.random(rows) < 0.3).astype(np.int64),
        "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(REGIONS, rows, p=region_p),
        "device": rng.choice(
            DEVICES, rows, p=[0.25, 0.3, 0.25, 0.2] if s else [0.4, 0.3, 0.2, 0.1]
        ),
        "channel": channel,
    }
    frame = pd.DataFrame(columns)
    for name, _ in CATEGORICAL:
        frame[name] = frame[name].astype("str")  # pandas' default string dtype
    return frame


def wide_frame(nbytes: int, seed: int) -> pd.DataFrame:
    """16 float64 columns of ``nbytes`` in all (the hashing benchmark's numeric frame)."""
    rows = nbytes // (16 * 8)
    values = np.random.default_rng(seed).normal(size=(16, rows)).T
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(16)])


# --------------------------------------------------------------------------------- the store
def production_store(directory: Path, models: dict[str, pd.DataFrame]) -> Any:
    """A store with each model's version 1 in production, fitted (a stand-in model) on its
    frame: the training run recorded the frame's profile, as a tracked cell does."""
    from sklearn.dummy import DummyClassifier

    from mlops_jupyter.identity.allowed_signers import add_signer
    from mlops_jupyter.identity.keys import generate_key
    from mlops_jupyter.registry.policy import parse_policy
    from mlops_jupyter.registry.registry import Registry
    from mlops_jupyter.store import Store
    from mlops_jupyter.tracker import Tracker, TrackOptions

    store_dir = directory / ".mlops"
    store_dir.mkdir(parents=True)
    keys = {p: generate_key(directory / "keys" / p, comment=p) for p in ("ana", "bo")}
    for person, signer in keys.items():
        add_signer(store_dir / "allowed_signers", person, signer.key_blob)
    policy = parse_policy({"tiers": {"low": {"production": {"signoffs": 1}}}}, "benchmark")
    store = Store.open(store_dir)
    for name, frame in models.items():
        tracker = Tracker(store.directory)
        ctx = tracker.begin(TrackOptions(experiment=name, shap=False))
        ctx.log_data(frame, "train", "X")
        ctx.log_metric("accuracy", 0.9)
        ctx.log_model(DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1]))
        tracker.finish(ctx)
        tracker.close()
        Registry(store, keys["ana"], policy).register(ctx.run_id, name, risk_tier="low")
        request = Registry(store, keys["ana"], policy).request_promotion(name, 1, "production")
        Registry(store, keys["bo"], policy).approve(request.id)
    return store, Registry(store, keys["ana"], policy)


def training_profile(registry: Any, model: str) -> dict[str, Any]:
    """The profile of the training frame ``record_batch`` compares with."""
    from mlops_jupyter.monitoring.batch import training_data

    run = registry.store.get_run(registry.version(model, 1).run_id)
    features, _ = training_data(run, [])
    return features.profile or {}


# ---------------------------------------------------------------------------- the old profile
def before_quantiles_and_bins(values: Any) -> tuple[list[float], dict[str, list[Any]] | None]:
    """``_quantiles_and_bins`` as it was: numpy's quantile of 26 probabilities (a partition
    around every rank they need), then two comparisons of the whole column per edge."""
    array = np.asarray(values)
    if array.dtype.kind == "c":
        return [float("nan")] * 5, None
    array = array.astype(np.float64, copy=False)
    quantiles_at = profile_module.QUANTILES
    probabilities = np.concatenate([quantiles_at, np.linspace(0.0, 1.0, profile_module.BINS + 1)])
    points = np.quantile(array, probabilities)
    quantiles = [float(v) for v in points[: len(quantiles_at)]]
    if not np.isfinite(points).all():
        return quantiles, None
    edges = np.unique(points[len(quantiles_at) :])
    below = [int(np.count_nonzero(array < e)) for e in edges]
    at = [int(np.count_nonzero(array == e)) for e in edges]
    between = [below[i + 1] - below[i] - at[i] for i in range(len(edges) - 1)]
    return quantiles, {"edges": [float(e) for e in edges], "at": at, "between": between}


def describe_before(frame: pd.DataFrame) -> Any:
    """The profile as it was: numpy's quantile, and one column after another."""
    now, parallel = profile_module._quantiles_and_bins, profile_module.PARALLEL_CELLS
    profile_module._quantiles_and_bins = before_quantiles_and_bins  # type: ignore[assignment]
    profile_module.PARALLEL_CELLS = 1 << 62
    try:
        return describe(frame)
    finally:
        profile_module._quantiles_and_bins, profile_module.PARALLEL_CELLS = now, parallel


# ------------------------------------------------------------------------------- Evidently
def evidently_python(given: str | None) -> str:
    """A Python that imports Evidently (``given``, or the cached venv, made when missing)."""
    if given:
        return given
    python = EVIDENTLY_VENV / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas; print(evidently.__version__)"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == EVIDENTLY:
            return str(python)
    print(f"making {EVIDENTLY_VENV} (evidently=={EVIDENTLY}, pandas<3): a minute or two...",
          flush=True)  # fmt: skip
    base = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    steps = [
        [base, "-m", "venv", "--clear", str(EVIDENTLY_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", f"evidently=={EVIDENTLY}", "pandas<3",
         "pyarrow"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(
                f"monitor.py: cannot make the Evidently environment ({' '.join(step[:4])}...):\n"
                f"{done.stderr.strip()[-2000:]}\nGive one with --evidently-python PATH, a "
                f"Python with evidently=={EVIDENTLY} and pandas<3, or run --quick."
            )
    found = subprocess.run(check, capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit(f"monitor.py: Evidently does not import in {EVIDENTLY_VENV}:\n{found.stderr}")
    return str(python)


def run_evidently(
    python: str, reference: pd.DataFrame, current: pd.DataFrame, directory: Path, repeat: int
) -> dict[str, Any]:
    reference_path, current_path = directory / "reference.parquet", directory / "current.parquet"
    reference.to_parquet(reference_path)
    current.to_parquet(current_path)
    numeric = ",".join(name for name, _ in NUMERIC)
    categorical = ",".join(name for name, _ in CATEGORICAL)
    command = [python, str(HERE / "_evidently_worker.py"), str(reference_path),
               str(current_path), str(repeat), numeric, categorical]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"monitor.py: Evidently's report failed:\n{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- timing
def timed(fn: Callable[[], object], repeat: int) -> tuple[float, Any]:
    result: list[Any] = []

    def call() -> None:
        result[:] = [fn()]

    return best_of(call, repeat), result[0]


def parts(registry: Any, model: str, frame: pd.DataFrame, repeat: int) -> dict[str, float]:
    """``record_batch`` end to end and the functions it calls for its parts (best of each)."""
    reference = training_profile(registry, model)
    rules = registry.policy.monitoring
    out = {
        "hash": best_of(lambda: hash_data(frame), repeat),
        "profile": best_of(lambda: describe(frame), repeat),
        "drift": best_of(lambda: compare(reference, as_columns(frame), rules), repeat),
    }
    out["record"], report = timed(lambda: record_batch(registry, model, frame), repeat)
    out["report"] = report
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:,.1f} ms"


def run(quick: bool, python: str | None) -> str:
    rows = 50_000 if quick else 1_000_000
    big = (64 << 20) if quick else (1 << 30)
    repeat = 3
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    try:
        print(f"generating {rows:,} x 20 training and batch frames...", flush=True)
        training = make_frame(rows, seed=1, shifted=False)
        batch = make_frame(rows, seed=2, shifted=True)
        wide_training = wide_frame(min(big, 1 << 27), seed=3)  # 1,048,576 rows for 1 GiB
        wide_batch = wide_frame(big, seed=4)
        print("recording the training runs and registering the versions...", flush=True)
        store, registry = production_store(tmp, {"churn": training, "wide": wide_training})
        print(f"timing {rows:,} x 20...", flush=True)
        frame_parts = parts(registry, "churn", batch, repeat)
        before_s = best_of(lambda: describe_before(batch), repeat)
        assert describe_before(batch) == describe(batch), "the profile changed"
        print(f"timing the {big / 2**30:.2g} GiB batch...", flush=True)
        wide_parts = parts(registry, "wide", wide_batch, repeat)
        wide_before_s = best_of(lambda: describe_before(wide_batch), 1)
        store.close()
        evidently: dict[str, Any] | None = None
        if not quick:
            interpreter = evidently_python(python)
            print("Evidently's data-drift preset on the same frames (one run, then one with "
                  "its tests)...", flush=True)  # fmt: skip
            evidently = run_evidently(interpreter, training, batch, tmp, repeat=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    hash_s = frame_parts["hash"]
    name = f"batch {rows:,} x 20 (16 numeric, 4 string)"
    rows_out = [
        [name, "`hash_data` of the batch", ms(hash_s), "1.0x", "baseline"],
        [name, "**`record_batch`** end to end", ms(frame_parts["record"]),
         f"{frame_parts['record'] / hash_s:.1f}x", "goal: within 3x of hashing"],
        [name, "its hash (`hash_data`)", ms(hash_s), "1.0x", ""],
        [name, "its profile (`describe`)", ms(frame_parts["profile"]),
         f"{frame_parts['profile'] / hash_s:.1f}x", ""],
        [name, "its profile before (numpy's quantile, one column at a time)", ms(before_s),
         f"{before_s / hash_s:.1f}x", "the same profile"],
        [name, "its drift, 20 features (`compare`)", ms(frame_parts["drift"]),
         f"{frame_parts['drift'] / hash_s:.1f}x", "PSI + KS / chi-squared"],
    ]  # fmt: skip
    if evidently is not None:
        ev_s = float(evidently["seconds"])
        rows_out.append([
            name, f"Evidently {evidently['version']} `Report([DataDriftPreset()]).run`",
            ms(ev_s), f"{ev_s / hash_s:.1f}x",
            f"**{ev_s / frame_parts['record']:.1f}x** `record_batch`'s time (goal >= 10x)",
        ])  # fmt: skip
    else:
        rows_out.append([name, "Evidently `Report([DataDriftPreset()]).run`",
                         "not run (--quick)", "-", ""])  # fmt: skip
    wide_hash = wide_parts["hash"]
    wide = f"numeric {big / 2**30:.2g} GiB, {len(wide_batch):,} x 16 float64"
    rows_out += [
        [wide, "`hash_data` of the batch", ms(wide_hash), "1.0x", "baseline"],
        [wide, "**`record_batch`** end to end", ms(wide_parts["record"]),
         f"{wide_parts['record'] / wide_hash:.1f}x", ""],
        [wide, "its profile (`describe`)", ms(wide_parts["profile"]),
         f"{wide_parts['profile'] / wide_hash:.1f}x", ""],
        [wide, "its profile before", ms(wide_before_s), f"{wide_before_s / wide_hash:.1f}x",
         "one run"],
        [wide, "its drift, 16 features", ms(wide_parts["drift"]),
         f"{wide_parts['drift'] / wide_hash:.1f}x", ""],
    ]  # fmt: skip
    for row in rows_out:
        print("  " + " | ".join(row), flush=True)
    body = (
        f"Machine: {machine()}. numpy {np.__version__}, pandas {pd.__version__}"
        + (f"; Evidently {evidently['version']} with pandas {evidently['pandas']} in a Python "
           "of its own" if evidently else "") + ".\n\n"
        f"The training frame and the batch: {rows:,} rows each, the features below. Best of "
        f"{repeat} runs (the 1 GiB profile before, and Evidently: one run). `record_batch`'s parts "
        "are the functions it calls, timed alone (the rest: finding the version and its training "
        "profile, the row and its signed audit entry). "
        "Evidently's time is the report alone, the frames already in memory.\n\n"
        + table(["batch", "work", "time", "vs hashing", "note"], rows_out)
    )  # fmt: skip
    body += "\n\n" + agreement(frame_parts["report"], evidently)
    return body


def agreement(report: Any, evidently: dict[str, Any] | None) -> str:
    """Each feature: its known shift, our status (PSI, p-value) and Evidently's decision."""
    ours = {f["feature"]: f for f in report.features}
    rows: list[list[str]] = []
    agree = flagged_total = 0
    for name, shift in NUMERIC + CATEGORICAL:
        mine = ours[name]
        flagged = mine["status"] != "ok"
        theirs = (evidently or {}).get("columns", {}).get(name)
        if theirs is None:
            detected, method = "not run (--quick)", "-"
            same = "-"
        else:
            detected = "**drift**" if theirs["detected"] else "no drift"
            method = f"{theirs['method']} {theirs['score']:.3f} (threshold {theirs['threshold']})"
            same = "yes" if flagged == theirs["detected"] else "**no**"
            agree += flagged == theirs["detected"]
        flagged_total += 1
        test = "KS" if mine.get("test") == "ks" else "chi-squared"
        status = f"**{mine['status']}**" if flagged else "ok"
        extra = f"; {mine['unseen_rows']:,} unseen" if mine.get("unseen_rows") else ""
        rows.append([
            f"`{name}`", shift, status,
            f"{mine['psi']:.4f}", f"{test} p = {mine['p_value']:.2g}{extra}",
            detected, method, same,
        ])  # fmt: skip
    summary = (
        f"Agreement with Evidently: **{agree} of {flagged_total}** features (ours flagged, "
        "warn or drift, against Evidently's drift detected)."
        if evidently
        else "Agreement with Evidently: not run (--quick)."
    )
    return (
        summary
        + "\n\n"
        + table(
            [
                "feature",
                "batch vs training",
                "ours",
                "PSI",
                "test",
                "Evidently",
                "Evidently's method and score",
                "agree",
            ],
            rows,
        )  # fmt: skip
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows, no Evidently, print")
    parser.add_argument("--no-write", action="store_true", help="do not update README.md")
    parser.add_argument("--evidently-python", metavar="PATH",
                        help="a Python with evidently==0.7.23 and pandas<3 (default: made "
                        f"in {EVIDENTLY_VENV})")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("MLOPS_JUPYTER_USER", "benchmark")
    started = time.perf_counter()
    body = run(args.quick, args.evidently_python)
    print("\n" + body)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if not (args.quick or args.no_write):
        write_section("monitor", body)
        print("\nwrote benchmarks/README.md")


if __name__ == "__main__":
    main()
