"""magics/track.ipynb in a real kernel: every value the store recorded, checked exactly.

Expected values are recomputed here, in the test process, with the same (seeded) code, so the
assertions compare what the kernel captured with what the cell really computed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_notebooks import execute, text_output

from mlops_jupyter import hash_data
from mlops_jupyter.store import Run, Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, dict[str, Run], list[Run]]]:
    workdir = tmp_path_factory.mktemp("track")
    nb = execute("track.ipynb", workdir)
    with Store.open(workdir / ".mlops", create=False) as store:
        table = store.runs(order_by="started_at")
        every = {
            name: store.get_run(run_id)
            for name, run_id in zip(table.name, table.run_id, strict=True)
        }
    runs = {name: run for name, run in every.items() if "parent_run" not in run.tags}
    children = [run for run in every.values() if "parent_run" in run.tags]  # search candidates
    yield nb, runs, children


def datasets(run: Run) -> dict[tuple[str, str], str]:
    return {(d.role, d.variable): d.hash for d in run.datasets}


def cell(nb: Any, first_line: str) -> Any:
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(first_line))


# ------------------------------------------------------------------ the same code, here
def breast_cancer() -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = RandomForestClassifier(n_estimators=50, max_depth=4, random_state=0)
    model.fit(X_train, y_train)
    pred = model.predict(X_test)
    return dict(
        X=X,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        pred=pred,
        acc=accuracy_score(y_test, pred),
        f1=f1_score(y_test, pred),
    )


def test_all_runs_recorded_with_their_status(
    tracked: tuple[Any, dict[str, Run], list[Run]],
) -> None:
    _, runs, *_ = tracked
    assert {name: run.status for name, run in runs.items()} == {
        "forest": "finished",
        "churn-pipeline": "finished",
        "tree-search": "finished",
        "wine-logreg": "finished",
        "diabetes-gbr": "finished",
        "broken": "failed",
        "odd-input": "finished",
    }
    assert {run.experiment for run in runs.values()} == {"track"}  # the notebook's name
    for run in runs.values():
        assert run.code is not None and run.code.startswith("%%track -n ")
        assert run.environment is not None
        assert run.environment.python == sys.version.split()[0]
        assert run.notebook_path is not None and run.notebook_path.endswith("track.ipynb")
        assert run.execution_count is not None and run.execution_count >= 2


def test_forest_run(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    nb, runs, *_ = tracked
    run = runs["forest"]
    want = breast_cancer()
    assert run.params["n_estimators"] == 50
    assert run.params["max_depth"] == 4
    assert run.params["random_state"] == 0
    assert run.params["criterion"] == "gini"
    assert run.param_sources["max_depth"] == "estimator"
    assert run.metrics == {"acc": want["acc"], "f1": want["f1"]}
    assert datasets(run) == {
        ("train", "X_train"): hash_data(want["X_train"]),
        ("train", "y_train"): hash_data(want["y_train"]),
        ("eval", "X_test"): hash_data(want["X_test"]),
        ("eval", "y_test"): hash_data(want["y_test"]),
        ("eval", "pred"): hash_data(want["pred"]),
    }
    x_train = next(d for d in run.datasets if d.variable == "X_train")
    assert x_train.shape == [426, 30]
    assert x_train.profile is not None and x_train.profile["rows"] == 426
    assert x_train.profile["columns"]["mean radius"]["min"] == float(
        want["X_train"]["mean radius"].min()
    )
    assert [a.name for a in run.artifacts] == ["model"] and run.artifacts[0].kind == "model"
    explanation = run.explanation
    assert explanation is not None and explanation.status == "ok"
    assert explanation.explainer == "TreeExplainer"
    assert explanation.feature_names == list(want["X"].columns)
    assert explanation.classes == [0, 1]
    assert explanation.n_rows == 143  # the whole evaluation set: fewer than --shap-rows 200
    # the cell's own result is untouched: its last expression, f1_score(...)
    outputs = cell(nb, "%%track -n forest").outputs
    assert outputs[0].output_type == "execute_result"
    assert outputs[0].data["text/plain"] == repr(want["f1"])
    assert outputs[1].output_type == "display_data"  # then the run summary
    assert outputs[1].data["text/plain"].startswith(f"run: {run.run_id[:8]} · track · forest")


def churn() -> dict[str, Any]:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import classification_report, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    n = 600
    customers = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "monthly_spend": rng.gamma(2.0, 30.0, n).round(2),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n)),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    churned = ((customers["plan"] == "basic") & (customers["monthly_spend"] < 50)) | (
        rng.random(n) < 0.1
    )
    train, test = customers.iloc[:450], customers.iloc[450:]
    y_tr, y_te = churned.iloc[:450], churned.iloc[450:]
    pipeline = make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["age", "monthly_spend"]),
            (OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ),
        LogisticRegression(C=0.5, max_iter=1000),
    )
    pipeline.fit(train, y_tr)
    return dict(
        train=train,
        test=test,
        y_tr=y_tr,
        y_te=y_te,
        roc_auc=roc_auc_score(y_te, pipeline.predict_proba(test)[:, 1]),
        report=classification_report(y_te, pipeline.predict(test), output_dict=True),
    )


def test_pipeline_run(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    _, runs, *_ = tracked
    want = churn()
    run = runs["churn-pipeline"]
    assert run.tags == {"owner": "ds-team"}
    assert run.params["logisticregression__C"] == 0.5
    assert run.params["columntransformer__onehotencoder__handle_unknown"] == "ignore"
    assert "columntransformer__transformers" not in run.params  # estimator lists are expanded
    assert run.metrics["roc_auc"] == want["roc_auc"]
    report = want["report"]
    assert run.metrics["report.accuracy"] == report["accuracy"]
    assert run.metrics["report.True.recall"] == report["True"]["recall"]
    assert run.metrics["report.macro_avg.f1_score"] == report["macro avg"]["f1-score"]
    assert not any(key.endswith("support") for key in run.metrics)
    found = datasets(run)
    for role, variable in [
        ("train", "train"),
        ("train", "y_tr"),
        ("eval", "test"),
        ("eval", "y_te"),
    ]:
        assert found[(role, variable)] == hash_data(want[variable])
    explanation = run.explanation
    assert explanation is not None and explanation.status == "ok"
    assert explanation.explainer == "LinearExplainer"
    assert explanation.feature_names == [
        "standardscaler__age",
        "standardscaler__monthly_spend",
        "onehotencoder__plan_basic",
        "onehotencoder__plan_plus",
        "onehotencoder__plan_pro",
        "onehotencoder__region_east",
        "onehotencoder__region_north",
        "onehotencoder__region_south",
        "onehotencoder__region_west",
    ]


def test_search_run(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    _, runs, *_ = tracked
    want = breast_cancer()
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3, 4, 5]}, cv=3)
    search.fit(want["X_train"], want["y_train"])
    run = runs["tree-search"]
    assert run.params["max_depth"] == search.best_params_["max_depth"]
    assert run.params["search.param_grid"] == {"max_depth": [2, 3, 4, 5]}
    assert run.metrics == {
        "test_accuracy": search.score(want["X_test"], want["y_test"]),
        "best_score": search.best_score_,
    }
    _, _, children = tracked  # every candidate is a run, tagged with the search's run
    mine = sorted(
        (c for c in children if c.tags["parent_run"] == run.run_id),
        key=lambda c: int(c.tags["candidate"]),
    )
    assert [c.params for c in mine] == search.cv_results_["params"]
    assert [c.metrics["mean_test_score"] for c in mine] == list(
        search.cv_results_["mean_test_score"]
    )


def test_multiclass_run(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_validate, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, runs, *_ = tracked
    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    Xw_train, Xw_test, yw_train, yw_test = train_test_split(Xw, yw, test_size=0.3, random_state=1)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = cross_validate(logreg, Xw_train, yw_train, cv=5, scoring=["accuracy", "f1_macro"])
    logreg.fit(Xw_train, yw_train)
    run = runs["wine-logreg"]
    assert run.metrics["test_accuracy_mean"] == pytest.approx(cv["test_accuracy"].mean(), abs=1e-12)
    assert run.metrics["test_f1_macro_std"] == pytest.approx(cv["test_f1_macro"].std(), abs=1e-12)
    assert run.metrics["wine_accuracy"] == logreg.score(Xw_test, yw_test)
    assert "fit_time_mean" not in run.metrics
    assert datasets(run) == {
        ("train", "Xw_train"): hash_data(Xw_train),
        ("train", "yw_train"): hash_data(yw_train),
        ("eval", "Xw_test"): hash_data(Xw_test),
        ("eval", "yw_test"): hash_data(yw_test),
    }
    explanation = run.explanation
    assert explanation is not None and explanation.status == "ok"
    assert explanation.classes == [0, 1, 2]
    assert set(explanation.mean_abs) == {"0", "1", "2"}
    assert explanation.feature_names == list(Xw.columns)


def test_regressor_run_with_a_curve(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.metrics import mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    _, runs, *_ = tracked
    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    Xd_train, Xd_test, yd_train, yd_test = train_test_split(Xd, yd, test_size=0.25, random_state=2)
    regressor = GradientBoostingRegressor(n_estimators=60, learning_rate=0.1, random_state=0)
    regressor.fit(Xd_train, yd_train)
    staged = list(regressor.staged_predict(Xd_test))
    run = runs["diabetes-gbr"]
    assert run.params["dataset"] == "diabetes" and run.param_sources["dataset"] == "option"
    assert run.metrics["rmse"] == mean_squared_error(yd_test, regressor.predict(Xd_test)) ** 0.5
    assert run.metrics["r2"] == r2_score(yd_test, regressor.predict(Xd_test))
    curve = [(p.step, p.value) for p in run.metric_history["test_mse_curve"]]
    assert curve == [(i, mean_squared_error(yd_test, staged[s])) for i, s in enumerate((0, 20, 40))]
    # the MSE inside `rmse = ... ** 0.5` is recorded too (computed in the cell, on test data);
    # the ones passed to log_metric are the user's own curve, not recorded twice
    test_mse = mean_squared_error(yd_test, regressor.predict(Xd_test))
    assert run.metrics["mean_squared_error"] == test_mse
    assert len(run.metric_history["mean_squared_error"]) == 1
    assert not [k for k in run.metrics if k.startswith("mean_squared_error_")]
    assert ("eval", "staged") not in datasets(run)  # a curve's steps are not snapshots


def test_failed_run_keeps_the_traceback(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    nb, runs, *_ = tracked
    run = runs["broken"]
    assert run.error is not None
    assert run.error.splitlines()[-1] == (
        "ValueError: Found input variables with inconsistent numbers of samples: [426, 10]"
    )
    outputs = cell(nb, "%%track -n broken").outputs
    errors = [o for o in outputs if o.output_type == "error"]
    assert [(e.ename, e.evalue) for e in errors] == [
        ("ValueError", "Found input variables with inconsistent numbers of samples: [426, 10]")
    ]
    assert run.explanation is None  # no SHAP for a failed run


def test_unhashable_data_is_a_capture_error_not_a_failure(
    tracked: tuple[Any, dict[str, Run], list[Run]],
) -> None:
    nb, runs, *_ = tracked
    run = runs["odd-input"]
    assert run.status == "finished"
    assert len(run.capture_errors) == 1
    assert run.capture_errors[0]["step"] == "data"
    assert run.capture_errors[0]["error"].startswith("TypeError: X_records (ndarray) not hashed")
    outputs = cell(nb, "%%track -n odd-input").outputs
    assert outputs[0].data["text/plain"] == "[0, 1]"  # the cell's own result stands
    shown = text_output(cell(nb, "%%track -n odd-input"))
    warnings = [line for line in shown.splitlines() if line.startswith("mlops-jupyter: capture")]
    assert len(warnings) == 1
    assert [(d.role, d.variable) for d in run.datasets] == [("train", "y_train")]


def test_runs_magic_returns_the_table(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    nb, runs, *_ = tracked
    table = text_output(cell(nb, "import mlops_jupyter as mj"))
    for name in runs:
        assert name in table


def test_history_lists_earlier_cells(tracked: tuple[Any, dict[str, Run], list[Run]]) -> None:
    _, runs, *_ = tracked
    forest, pipeline = runs["forest"], runs["churn-pipeline"]
    assert [h["execution_count"] for h in forest.history] == [1]
    assert [h["execution_count"] for h in pipeline.history] == [1, 2]
    assert pipeline.history[1]["source_hash"] != pipeline.history[0]["source_hash"]
