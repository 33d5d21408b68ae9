"""Benchmark: generating a model card for a run with SHAP ready (30 features).

    python benchmarks/card_generation.py            # writes the table into benchmarks/README.md
    python benchmarks/card_generation.py --quick    # fewer repeats, prints only

Each figure is the median over the repeats of reading the run from the store and rendering.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, median_ms, table  # noqa: E402


def tracked_run(directory: Path) -> str:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    from mlops_jupyter.tracker import Tracker, TrackOptions

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((1000, 30)), columns=[f"feature_{i}" for i in range(30)])
    y = (X["feature_0"] + X["feature_1"] > 1).astype(int)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X[:800], y[:800])
    tracker = Tracker(directory)
    ctx = tracker.begin(TrackOptions(experiment="bench", name="forest"))
    ctx.log_params(model.get_params())
    ctx.log_metric("accuracy", float(model.score(X[800:], y[800:])))
    ctx.log_data(X[:800], "train", "X_train")
    ctx.log_data(X[800:], "eval", "X_test")
    ctx.log_model(model)
    ctx.explain(model, X[800:])
    tracker.finish(ctx)
    tracker.wait()
    tracker.close()
    return ctx.run_id


def run(quick: bool) -> str:
    from mlops_jupyter.cards.model import build_card
    from mlops_jupyter.store import Store

    repeat = 5 if quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        run_id = tracked_run(Path(tmp) / ".mlops")
        with Store.open(Path(tmp) / ".mlops", create=False) as store:
            card = build_card(run_id, store=store)
            size = len(card.to_html().encode())
            rows = [
                [
                    "read the run from the store",
                    median_ms(lambda: build_card(run_id, store=store), repeat),
                ],
                [
                    "**HTML** (read + render)",
                    median_ms(lambda: build_card(run_id, store=store).to_html(), repeat),
                ],
                [
                    "MCT JSON (read + render)",
                    median_ms(lambda: build_card(run_id, store=store).to_json(), repeat),
                ],
                [
                    "Markdown (read + render)",
                    median_ms(lambda: build_card(run_id, store=store).to_markdown(), repeat),
                ],
            ]
    body = table(["step", "median time"], [[label, f"{ms:.1f} ms"] for label, ms in rows])
    return (
        f"Machine: {machine()}. A run with 30 features, 100-tree forest, SHAP ready; "
        f"median of {repeat}. HTML size: {size / 1024:.0f} KiB (goal: < 1 MB, < 300 ms).\n\n" + body
    )


def main() -> None:
    cli_main(__doc__, "card-generation", run, quick_help="fewer repeats, print only")


if __name__ == "__main__":
    main()
