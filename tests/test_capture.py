"""Capture rules, one by one, without a kernel: what is captured and what must not be."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_jupyter.capture.cell_source import analyse, is_metric_name
from mlops_jupyter.capture.estimators import estimator_params, flat_params
from mlops_jupyter.capture.instrument import TAPS, Taps, instrument
from mlops_jupyter.capture.metric_values import metric_base_name, metrics_from
from mlops_jupyter.store import Store
from mlops_jupyter.tracker import Tracker, UsageError, parse_options


def run_cell(source: str, namespace: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Instrument and execute ``source`` the way a tracked cell runs; return what was seen."""
    tree = ast.parse(source)
    facts = analyse(tree)  # before instrument(), which changes the tree in place
    new_tree, sites = instrument(tree)
    taps = Taps()
    namespace = {} if namespace is None else namespace
    namespace[TAPS] = taps
    taps.start()
    exec(compile(new_tree, "<cell>", "exec"), namespace)
    return facts, sites, taps.stop(), namespace


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name",
    [
        "acc",
        "accuracy",
        "val_accuracy",
        "test_f1_macro",
        "roc_auc",
        "rmse",
        "r2",
        "train_loss",
        "best_score",
        "auc",
        "logloss",
        "precision_weighted",
        "rmsle_test",
        "rae_test",
        "mape",
        "r2_adj",
        "val_error",
    ],
)
def test_metric_like_names(name: str) -> None:
    assert is_metric_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "i",
        "ratio",
        "n_estimators",
        "loss_weight",
        "score_threshold",
        "accumulator",
        "scores_list",
        "n_scores",
        "learning_rate",
        "scoring",
    ],
)
def test_names_that_are_not_metrics(name: str) -> None:
    assert not is_metric_name(name)


# ------------------------------------------------------------------------- literals
def test_top_level_literals_are_params_loop_counters_are_not() -> None:
    facts = analyse(
        ast.parse(
            "alpha = 0.1\nlayers = [64, 32]\nname: str = 'exp'\nseed = -3\nflag = None\n"
            "for epoch in range(3):\n    i = 3\n    lr = 0.5\n"
            "computed = alpha * 2\n_private = 1\nx, y = 1, 2\n"
        )
    )
    assert facts.literals == {
        "alpha": 0.1,
        "layers": [64, 32],
        "name": "exp",
        "seed": -3,
        "flag": None,
    }


def test_read_calls_on_literal_paths() -> None:
    facts = analyse(ast.parse("df = pd.read_csv('data/train.csv')\nother = load(path)\n"))
    assert facts.reads == {"df": "data/train.csv"}


# ------------------------------------------------------------------------ call taps
class Model:
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"depth": 3}

    def fit(self, X: Any, y: Any = None) -> Model:
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> Any:
        return np.zeros(len(X))

    def score(self, X: Any, y: Any) -> float:
        return 0.75


def test_taps_see_receivers_arguments_and_results() -> None:
    X, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    facts, sites, records, ns = run_cell(
        "m = Model().fit(X, y=y)\np = m.predict(X)\ns = m.score(X, y)\nm.score(X, y)\n",
        {"Model": Model, "X": X, "y": y},
    )
    assert [(s.kind, s.method, s.receiver_name, s.assigned_to) for s in sites] == [
        ("fit", "fit", "Model()", "m"),
        ("eval", "predict", "m", "p"),
        ("eval", "score", "m", "s"),
        ("eval", "score", "m", None),
    ]
    assert records[0].receiver is ns["m"] and records[0].args == {0: X, "y": y}
    assert records[2].result == 0.75 and records[3].result == 0.75
    assert sites[3].is_result and not sites[1].in_loop
    assert facts.assigned == ["m", "p", "s"]


def test_taps_leave_functions_alone_and_record_nothing_when_inactive() -> None:
    source = "def train(m, X):\n    return m.fit(X)\n"
    _, sites, _, ns = run_cell(source, {})
    assert sites == []
    taps = ns[TAPS]
    assert taps.recv(0, "value") == "value" and taps.records == {}  # inert between runs


def test_instrumented_code_keeps_line_numbers_and_exceptions() -> None:
    source = "x = 1\n\ny = Model().predict(None)\n"
    with pytest.raises(TypeError) as info:
        run_cell(source, {"Model": Model})
    frames = [f for f in __import__("traceback").extract_tb(info.tb) if f.filename == "<cell>"]
    assert [f.lineno for f in frames] == [3]


# ---------------------------------------------------------------------------- values
def test_metrics_from_values() -> None:
    assert metrics_from("acc", np.float64(0.5)) == {"acc": 0.5}
    assert metrics_from("acc", True) == {}
    assert metrics_from("acc", "0.9") == {}
    report = {
        "0": {"precision": 0.5, "support": 10},
        "accuracy": 0.8,
        "macro avg": {"f1-score": 0.6},
    }
    assert metrics_from("report", report) == {
        "report.0.precision": 0.5,
        "report.accuracy": 0.8,
        "report.macro_avg.f1_score": 0.6,
    }
    cv = {"fit_time": np.array([1.0, 2.0]), "test_score": np.array([0.5, 0.7])}
    out = metrics_from("cv", cv)
    assert out == {"test_score_mean": 0.6, "test_score_std": pytest.approx(0.1)}
    assert metrics_from("scores", [0.5, 0.7]) == {
        "scores_mean": 0.6,
        "scores_std": pytest.approx(0.1),
    }
    nan = metrics_from("loss", float("nan"))
    assert math.isnan(nan["loss"])


def test_metric_base_names() -> None:
    assert metric_base_name("accuracy_score") == "accuracy"
    assert metric_base_name("mean_squared_error") == "mean_squared_error"
    assert metric_base_name("cross_val_score") == "cv_score"


# ------------------------------------------------------------------------ estimators
def test_pipeline_params_are_flat_and_search_uses_best() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=2.0))
    params = flat_params(pipe)
    assert params["logisticregression__C"] == 2.0
    assert params["standardscaler__with_mean"] is True
    assert "steps" not in params and "logisticregression" not in params
    X = np.random.default_rng(0).random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 10.0]}, cv=2).fit(X, y)
    assert estimator_params(search)["C"] == search.best_params_["C"]


# ------------------------------------------------------------------------- options
def test_parse_options() -> None:
    options = parse_options(
        "-e exp -n 'my run' --data X,y --data Z --metric m1 --param lr=0.1 --param tag=abc "
        "--tag team=ml --no-shap --shap-rows 50 --quiet"
    )
    assert options.experiment == "exp" and options.name == "my run"
    assert options.data == ["X", "y", "Z"] and options.metrics == ["m1"]
    assert options.params == {"lr": 0.1, "tag": "abc"} and options.tags == {"team": "ml"}
    assert (options.shap, options.shap_rows, options.quiet) == (False, 50, True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--param novalue", "--param takes KEY=VALUE"),
        ("--shap-rows 0", "--shap-rows must be at least 1"),
        ("-n 'unclosed", "No closing quotation"),
    ],
)
def test_bad_options_are_clear(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_options(line)


# ----------------------------------------------------------------------- script API
def test_start_run_records_a_script_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_jupyter import api

    monkeypatch.setattr(api, "_default", Tracker(tmp_path / ".mlops"))
    with pytest.raises(UsageError, match="no active run"):
        api.log_metric("loss", 1.0)
    X = np.arange(20.0).reshape(10, 2)
    with api.start_run("scripts", "baseline", params={"lr": 0.1}) as run:
        api.log_metric("loss", 1.0)
        api.log_metric("loss", 0.5)
        api.log_params({"layers": 2})
        run.log_data(X, role="train", name="X")
    with pytest.raises(RuntimeError, match="boom"), api.start_run("scripts", "broken"):
        raise RuntimeError("boom")
    api.default_tracker().close()
    with Store.open(tmp_path / ".mlops", create=False) as store:
        runs = store.runs(order_by="started_at")
        assert list(runs["name"]) == ["baseline", "broken"]
        assert list(runs["status"]) == ["finished", "failed"]
        done = store.get_run(runs.run_id[0])
    assert done.params == {"lr": 0.1, "layers": 2}
    assert [(p.step, p.value) for p in done.metric_history["loss"]] == [(0, 1.0), (1, 0.5)]
    from mlops_jupyter import hash_data

    assert [(d.role, d.variable, d.hash) for d in done.datasets] == [("train", "X", hash_data(X))]


# ----------------------------------------------------------------------- explanations
class Broken:
    """A predictor whose predictions fail once fitted (the explainer must survive it)."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any) -> Broken:
        return self

    def predict(self, X: Any) -> Any:
        raise ArithmeticError("cannot predict today")


def test_explanation_failures_are_stored_with_their_reason(tmp_path: Path) -> None:
    tracker = Tracker(tmp_path / ".mlops")
    X = np.random.default_rng(0).random((30, 3))
    ctx = tracker.begin(parse_options("-n broken-model"))
    ctx.explain(Broken(), X)
    summary = tracker.finish(ctx)
    assert summary.shap == "pending"
    assert tracker.wait(timeout=120)
    run = tracker.store.get_run(ctx.run_id)
    tracker.close()
    assert run.explanation is not None
    assert run.explanation.status == "failed"
    assert run.explanation.reason == "ArithmeticError: cannot predict today"
    assert run.status == "finished"  # the run itself is fine


def test_summary_escapes_user_strings() -> None:
    from mlops_jupyter.summary import RunSummary

    summary = RunSummary(
        run_id="0123456789abcdef",
        experiment="<b>exp</b>",
        name="<script>alert(1)</script>",
        status="finished",
        duration_s=0.5,
        metrics={"<i>acc</i>": 0.5},
        capture_errors=[{"step": "data", "error": "<img src=x onerror=alert(1)>"}],
    )
    page = summary._repr_html_()
    assert "<script>" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    text = repr(summary)
    assert text.splitlines()[0] == "run: 01234567 · <b>exp</b> · <script>alert(1)</script>"
    assert text.splitlines()[-1] == "mlops-jupyter: capture data: <img src=x onerror=alert(1)>"


def test_installed_packages_read_from_directory_names_match_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package list a run records: the same names and versions importlib.metadata parses
    (first on sys.path wins), read from the .dist-info names; an egg-info is parsed."""
    from importlib import metadata

    from mlops_jupyter.capture.environment import installed_packages

    parsed: dict[str, str] = {}
    for dist in metadata.distributions():
        if dist.metadata["Name"]:
            parsed.setdefault(dist.metadata["Name"].lower().replace("_", "-"), dist.version)
    assert installed_packages() == parsed and "numpy" in parsed

    (tmp_path / "My_Pkg-1.2.post3.dist-info").mkdir()
    egg = tmp_path / "legacy.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: Legacy-Thing\nVersion: 0.9\n")
    (tmp_path / "broken.egg-info").mkdir()  # no metadata: not a package
    (tmp_path / "numpy-0.0.1.dist-info").mkdir()  # shadowed by nothing: it comes first
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    found = installed_packages()
    assert found["my-pkg"] == "1.2.post3" and found["legacy-thing"] == "0.9"
    assert found["numpy"] == "0.0.1" and "broken" not in found
