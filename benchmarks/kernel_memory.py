"""Benchmark: the memory a kernel holds after many tracked cells, against an untracked kernel.

    python benchmarks/kernel_memory.py            # writes the table into benchmarks/README.md
    python benchmarks/kernel_memory.py --quick    # 50 cells, prints only

Two fresh real kernels (jupyter_client) do the same work: import scikit-learn and pandas, then
N cells each fitting a logistic regression on 500 x 10 and computing its accuracy (10
parameters, 5 metrics). One of them first loads the extension and tracks every cell (the first
with a SHAP explanation, the rest ``--no-shap``). The resident memory of each kernel
(``VmRSS``) is read after the imports, after the first tracked cell, and after all N.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, table  # noqa: E402

SETUP = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.random((500, 10)), columns=[f"x{i}" for i in range(10)])
y = (X["x0"] + rng.normal(0, 0.1, 500) > 0.5).astype(int)
"""
CELL = """
model = LogisticRegression(C=1.0, max_iter=200).fit(X, y)
predicted = model.predict(X)
accuracy = accuracy_score(y, predicted)
f1 = f1_score(y, predicted)
precision = precision_score(y, predicted)
recall = recall_score(y, predicted)
score = model.score(X, y)
"""
RSS = (
    "print(next(int(line.split()[1]) for line in open('/proc/self/status') "
    "if line.startswith('VmRSS')))"
)


def kernel_rss_mib(cells: int, tracked: bool) -> tuple[float, float, float]:
    """RSS in MiB after the setup, after the first cell, after all ``cells``."""
    from jupyter_client.manager import start_new_kernel

    with tempfile.TemporaryDirectory() as tmp:
        manager, client = start_new_kernel(kernel_name="python3", cwd=tmp)
        out: list[str] = []

        def run(code: str) -> None:
            def hook(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])

            reply = client.execute_interactive(code, timeout=300, output_hook=hook)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"failed in the kernel: {reply['content']}")

        def rss() -> float:
            out.clear()
            run(RSS)
            return int(out[-1]) / 1024

        try:
            run(SETUP)
            if tracked:
                run("%load_ext mlops_jupyter")
            base = rss()
            run(("%%track\n" if tracked else "") + CELL)
            if tracked:
                run("import mlops_jupyter; assert mlops_jupyter.wait(300)")
            first = rss()
            for _ in range(cells - 1):
                run(("%%track --no-shap\n" if tracked else "") + CELL)
            return base, first, rss()
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def run(quick: bool) -> str:
    cells = 50 if quick else 1_000
    plain = kernel_rss_mib(cells, tracked=False)
    print(f"  untracked kernel: {plain[0]:.0f} / {plain[1]:.0f} / {plain[2]:.0f} MiB", flush=True)
    tracked = kernel_rss_mib(cells, tracked=True)
    print(f"  tracked kernel:   {tracked[0]:.0f} / {tracked[1]:.0f} / {tracked[2]:.0f} MiB")
    rows = [
        [label, f"{p:.0f} MiB", f"{t:.0f} MiB", f"{t - p:+.0f} MiB"]
        for label, p, t in zip(
            ["after importing scikit-learn and pandas (and `%load_ext`)", "after the first cell "
             "(tracked: with its SHAP explanation)", f"after {cells:,} cells"],
            plain, tracked, strict=True,
        )
    ]  # fmt: skip
    return (
        f"Machine: {machine()}. Resident memory (VmRSS) of two fresh kernels doing the same "
        f"cells; goal: at most +60 MB after {cells:,} tracked runs.\n\n"
        + table(["when", "untracked kernel", "tracked kernel", "difference"], rows)
    )


def main() -> None:
    cli_main(__doc__, "kernel-memory", run, quick_help="50 cells, print only")


if __name__ == "__main__":
    main()
