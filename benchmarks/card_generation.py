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


def evaluated_run(directory: Path, rows: int) -> tuple[str, object, object, object]:
    """A run whose evaluation data has ``rows`` rows and a 4-valued ``region``: its id, the
    evaluation data (X, y) and its model."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlops_jupyter.tracker import Tracker, TrackOptions

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.random((2000 + rows, 10)), columns=[f"feature_{i}" for i in range(10)])
    X["region"] = rng.integers(0, 4, len(X))
    y = ((X["feature_0"] + X["feature_1"] > 1) ^ (rng.random(len(X)) < 0.1)).astype(int)
    X_train, y_train, X_test, y_test = X[:2000], y[:2000], X[2000:], y[2000:]
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    tracker = Tracker(directory)
    ctx = tracker.begin(TrackOptions(experiment="bench", name="evaluated", shap=False))
    ctx.log_metric("accuracy", float(model.score(X_test, y_test)))
    ctx.log_data(X_train, "train", "X_train")
    ctx.log_data(X_test, "eval", "X_test")
    ctx.log_data(y_test, "eval", "y_test")
    ctx.log_model(model)
    tracker.finish(ctx)
    tracker.close()
    return ctx.run_id, X_test, y_test, model


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
    from mlops_jupyter.cards.evaluation import by_group, evaluate
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
        eval_rows = 2_000 if quick else 10_000
        ev_id, X_test, y_test, model = evaluated_run(Path(tmp) / "evaluated" / ".mlops", eval_rows)
        with Store.open(Path(tmp) / "evaluated" / ".mlops", create=False) as store:
            store.set_card_section(ev_id, "sensitive_column", "region", "bench")
            data = (X_test, y_test)
            truth, predicted = y_test.to_numpy(), model.predict(X_test)  # type: ignore[attr-defined]
            rows += [
                [
                    f"**HTML with intervals**, {eval_rows:,} evaluation rows (hash check, "
                    "predict, intervals, 4 groups, render)",
                    median_ms(
                        lambda: build_card(ev_id, store=store, eval_data=data).to_html(), repeat
                    ),
                ],
                [
                    "timed alone: the overall numbers (`cards.evaluation.evaluate`, "
                    "1,000 resamples)",
                    median_ms(lambda: evaluate(truth, predicted, classifier=True), repeat),
                ],
                [
                    "timed alone: the 4 groups (`cards.evaluation.by_group`)",
                    median_ms(
                        lambda: by_group(
                            "region", X_test["region"].to_numpy(), truth, predicted,  # type: ignore[index]
                            classifier=True, positive=1,
                        ),
                        repeat,
                    ),
                ],
            ]  # fmt: skip
    body = table(["step", "median time"], [[label, f"{ms:.1f} ms"] for label, ms in rows])
    return (
        f"Machine: {machine()}. A run with 30 features, 100-tree forest, SHAP ready; "
        f"median of {repeat}. HTML size: {size / 1024:.0f} KiB (goal: < 1 MB, < 300 ms). "
        f"With intervals: a logistic regression on 10 features and `region`, its "
        f"{eval_rows:,} evaluation rows passed as `eval_data` (goal: < 300 ms).\n\n" + body
    )


def main() -> None:
    cli_main(__doc__, "card-generation", run, quick_help="fewer repeats, print only")


if __name__ == "__main__":
    main()
