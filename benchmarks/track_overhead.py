"""Benchmark: what ``%%track`` adds to a cell, against an untracked cell and MLflow.

    python benchmarks/track_overhead.py            # writes the table into benchmarks/README.md
    python benchmarks/track_overhead.py --quick    # fewer repeats, prints only

Cells run in an in-process IPython shell (the same run_cell path a kernel uses, without the
messaging), in a fresh temporary directory, so the store is a fresh file. Each figure is the
median over the repeats. The cell logs 10 parameters and 5 metrics, as in the MLflow column.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, quiet_mlflow, table  # noqa: E402

PARAMS_AND_METRICS = "\n".join(
    [f"param_{i} = {i * 1.5}" for i in range(10)]
    + [f"val_{name} = 0.9{i}" for i, name in enumerate(["accuracy", "f1", "auc", "loss", "rmse"])]
)
WITH_DATA = PARAMS_AND_METRICS + "\nmodel.fit(X, y)\nval_accuracy = model.score(X, y)"
FORESTS = {  # label: (the fit cell, the data)
    "100-tree forest on 200 x 30": "forest.fit(Xs, ys)\nval_accuracy = forest.score(Xs, ys)",
    "500-tree forest on 2,000 x 30": "big.fit(Xb, yb)\nval_accuracy = big.score(Xb, yb)",
}
# a 10,000-step loop assigning three metrics per step: with a small numpy step (a stand-in for
# real work per step), and with nothing but the three assignments (the worst case)
LOOP_NUMPY = """
for step in range(10_000):
    w = w - 0.001 * (A @ w - b)
    train_loss = float(np.mean((A @ w - b) ** 2))
    val_loss = train_loss * 1.1
    val_accuracy = 1.0 - val_loss / 100
"""
LOOP_BARE = """
for step in range(10_000):
    train_loss = 1.0 / (step + 1)
    val_loss = train_loss * 1.1
    val_accuracy = 1.0 - val_loss / 2
"""
SETUP = """
import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
rng = np.random.default_rng(0)
X = rng.random((10_000, 20)); y = (X[:, 0] > 0.5).astype(int)
Xs = rng.random((200, 30)); ys = (Xs[:, 0] + Xs[:, 1] > 1).astype(int)
model = DummyClassifier()
forest = RandomForestClassifier(n_estimators=100, random_state=0)
Xb = rng.random((2_000, 30)); yb = (Xb[:, 0] + Xb[:, 1] > 1).astype(int)
big = RandomForestClassifier(n_estimators=500, random_state=0)
A = rng.random((32, 32)); b = rng.random(32); w = np.zeros(32)
"""


def median_ms(shell: object, cell: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            result = shell.run_cell(cell)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
        if not result.success:
            raise RuntimeError(f"benchmark cell failed: {result.error_in_exec!r}\n{cell}")
    return statistics.median(times) * 1000


def interleaved_ms(shell: object, plain: str, tracked: str, repeat: int) -> tuple[float, float]:
    """Medians of two cells run alternately, so drift in the machine's speed hits both."""
    a, b = [], []
    for _ in range(repeat):
        a.append(median_ms(shell, plain, 1))
        b.append(median_ms(shell, tracked, 1))
    return statistics.median(a), statistics.median(b)


def mlflow_ms(directory: Path, repeat: int) -> float | None:
    try:
        import mlflow
    except ImportError:
        return None
    quiet_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{directory / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    params = {f"param_{i}": i * 1.5 for i in range(10)}
    metrics = {f"val_{i}": 0.9 + i / 100 for i in range(5)}
    times = []
    for _ in range(repeat + 3):
        start = time.perf_counter()
        mlflow.start_run()
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.end_run()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:]) * 1000


def subprocess_seconds(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return float(out.stdout.strip().splitlines()[-1])


LOAD_EXT = (
    "import time\nfrom IPython.core.interactiveshell import InteractiveShell\n"
    "shell = InteractiveShell.instance()\nstart = time.perf_counter()\n"
    "shell.run_line_magic('load_ext', 'mlops_jupyter')\nprint(time.perf_counter() - start)"
)
IMPORT_MLFLOW = (
    "import time\nstart = time.perf_counter()\nimport mlflow\nprint(time.perf_counter() - start)"
)


def forest_times(shell: object, api: Any, cell: str, repeat: int) -> dict[str, float]:
    """A forest cell untracked, ``--no-shap`` and with SHAP (when it returns, when the
    explanation is stored), and the same fit untracked run at once after the SHAP cell; the
    variants interleaved, round after round, so that a slower spell of a shared machine falls
    on all of them alike."""
    median_ms(shell, "%%track\n" + cell, 1)  # the worker started, shap imported there
    api.wait()
    times: dict[str, list[float]] = {"plain": [], "no_shap": [], "shap": [], "stored": [],
                                     "next": []}  # fmt: skip

    def timed(code: str) -> float:
        start = time.perf_counter()
        shell.run_cell(code)  # type: ignore[attr-defined]
        return time.perf_counter() - start

    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(repeat):
            times["plain"].append(timed(cell))
            times["no_shap"].append(timed("%%track --no-shap\n" + cell))
            api.wait()
            start = time.perf_counter()
            times["shap"].append(timed("%%track\n" + cell))
            times["next"].append(timed(cell))  # while the explainer works
            api.wait()
            times["stored"].append(time.perf_counter() - start)
    return {key: statistics.median(values) * 1000 for key, values in times.items()}


def fresh_kernel_ms(kernels: int) -> tuple[float, float, float]:
    """In fresh real kernels (jupyter_client, as a notebook starts them), the medians of: an
    untracked ``pass``, ``%load_ext mlops_jupyter``, then at once the first ``%%track`` cell
    (a fresh store; the time the client waits for the reply)."""
    from jupyter_client.manager import start_new_kernel

    def timed(client: Any, code: str) -> float:
        start = time.perf_counter()
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda _: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed in the kernel: {reply['content']}")
        return (time.perf_counter() - start) * 1000

    results = []
    for _ in range(kernels):
        with tempfile.TemporaryDirectory() as tmp:
            manager, client = start_new_kernel(kernel_name="python3", cwd=tmp)
            try:
                timed(client, "pass")  # the kernel's own first execution
                results.append((timed(client, "pass"), timed(client, "%load_ext mlops_jupyter"),
                                timed(client, "%%track\nx = 1\n")))  # fmt: skip
            finally:
                client.stop_channels()
                manager.shutdown_kernel(now=True)
    return tuple(statistics.median(r[i] for r in results) for i in range(3))  # type: ignore[return-value]


def run(quick: bool) -> str:
    from IPython.core.interactiveshell import InteractiveShell

    repeat = 20 if quick else 200
    rows: list[list[str]] = []
    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            shell = InteractiveShell.instance()
            shell.run_cell(SETUP)
            shell.run_line_magic("load_ext", "mlops_jupyter")
            from mlops_jupyter import api

            shell.run_cell("%%track --no-shap\n" + PARAMS_AND_METRICS)  # store created
            api.wait()
            empty_magic = median_ms(shell, "%%capture\n" + PARAMS_AND_METRICS, repeat)
            plain = median_ms(shell, PARAMS_AND_METRICS, repeat)
            tracked = median_ms(shell, "%%track --no-shap\n" + PARAMS_AND_METRICS, repeat)
            plain_data = median_ms(shell, WITH_DATA, repeat)
            tracked_data = median_ms(shell, "%%track --no-shap\n" + WITH_DATA, repeat)
            shap_repeat = max(5, repeat // 20)
            forests = {  # a smoke run (--quick) times the small forest only
                label: forest_times(shell, api, cell, shap_repeat)
                for label, cell in list(FORESTS.items())[: 1 if quick else None]
            }
            loop_repeat = max(5, repeat // 4)
            loops = {
                label: interleaved_ms(shell, cell, "%%track --no-shap\n" + cell, loop_repeat)
                for label, cell in (("numpy step", LOOP_NUMPY), ("bare", LOOP_BARE))
            }
            mlflow = mlflow_ms(Path(tmp), repeat)
        finally:
            os.chdir(old_cwd)
    load_ms = statistics.median(subprocess_seconds(LOAD_EXT) for _ in range(3)) * 1000
    try:
        mlflow_import = (
            statistics.median(subprocess_seconds(IMPORT_MLFLOW) for _ in range(3)) * 1000
        )
    except subprocess.CalledProcessError:
        mlflow_import = None

    def row(label: str, ms: float, note: str) -> None:
        rows.append([label, f"{ms:.2f} ms", note])

    row("untracked cell (10 params, 5 metrics)", plain, "baseline")
    row("same cell under an empty cell magic (`%%capture`)", empty_magic, "IPython's own cost")
    row("**`%%track --no-shap`**, no data", tracked, f"overhead {tracked - plain:.2f} ms")
    row("untracked cell fitting a model on 10,000 x 20", plain_data, "baseline with data")
    row(
        "**`%%track --no-shap`**, data hashed + profiled + model saved",
        tracked_data,
        f"overhead {tracked_data - plain_data:.2f} ms",
    )
    for label, times in forests.items():
        row(f"untracked: {label}", times["plain"], "baseline for SHAP")
        row(
            f"`%%track --no-shap`, {label}",
            times["no_shap"],
            f"overhead {times['no_shap'] - times['plain']:.2f} ms",
        )
        row(
            f"**`%%track`** with SHAP, {label}: cell returns",
            times["shap"],
            f"SHAP off the critical path: {times['shap'] - times['no_shap']:+.2f} ms "
            f"({times['shap'] / times['no_shap'] - 1:+.1%}) vs --no-shap (goal <= 5 %)",
        )
        row(
            f"`%%track` with SHAP, {label}: explanation stored",
            times["stored"],
            "`mlops_jupyter.wait()`; the next cell ran meanwhile",
        )
        row("the same fit untracked, right after the SHAP cell (SHAP still running)",
            times["next"], f"{times['next'] / times['plain'] - 1:+.1%} vs alone: the explainer "
            "yields (nice 10)")  # fmt: skip
    for label, (untracked_loop, tracked_loop) in loops.items():
        row(f"untracked 10,000-step loop, 3 metrics per step ({label})", untracked_loop, "baseline")
        ratio = tracked_loop / untracked_loop
        row(
            f"**`%%track --no-shap`**, same loop: 3 curves of 10,000 points ({label})",
            tracked_loop,
            f"{ratio:.2f}x (goal <= 1.5x)",
        )
    if mlflow is not None:
        ratio = mlflow / max(tracked - plain, 1e-9)
        row(
            "MLflow start_run + log_params + log_metrics + end_run",
            mlflow,
            f"{ratio:.0f}x our overhead",
        )
    row("`%load_ext mlops_jupyter` in a fresh process", load_ms, "goal <= 150 ms")
    kernel_pass, kernel_load, kernel_first = fresh_kernel_ms(3 if quick else 9)
    row("untracked `pass` in a fresh kernel (client round trip)", kernel_pass, "baseline")
    row("`%load_ext mlops_jupyter` in a fresh kernel", kernel_load, "goal <= 150 ms")
    row("**first `%%track` cell** in that kernel, right after `%load_ext`", kernel_first,
        "goal <= 100 ms (a new store, package versions)")  # fmt: skip
    if mlflow_import is not None:
        row("`import mlflow` in a fresh process", mlflow_import, "for comparison")
    return (
        f"Machine: {machine()}. Median of {repeat} runs ({shap_repeat} for the forest cells, "
        f"{loop_repeat} for the loops).\n\n" + table(["what", "time", "note"], rows)
    )


def main() -> None:
    cli_main(__doc__, "track-overhead", run, quick_help="fewer repeats, print only")


if __name__ == "__main__":
    main()
