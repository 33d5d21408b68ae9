"""Patterns from other people's notebooks, each run untracked and tracked in a real kernel:
the cell's outputs are the same, and the store holds what the code computed (recomputed here,
independently)."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_magics import Kernel, user_outputs

from mlops_jupyter.store import Run, Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("patterns"))
    reply, _ = k.run("%load_ext mlops_jupyter")
    assert reply["status"] == "ok"
    yield k
    k.shutdown()


def tracked(kernel: Kernel, name: str, body: str) -> Run:
    """Run ``body`` untracked, then tracked; same outputs; return the run."""
    reply, plain = kernel.run(body)
    assert reply["status"] == "ok", plain
    reply, outputs = kernel.run(f"%%track -n {name} --no-shap\n{body}")
    assert reply["status"] == "ok", outputs
    assert user_outputs(outputs) == user_outputs(plain)
    with Store.open(Path(kernel.workdir) / ".mlops", create=False) as store:
        table = store.runs()
        [run_id] = table.loc[table["name"] == name, "run_id"]
        return store.get_run(run_id)


def children_of(kernel: Kernel, run: Run, order: str) -> list[Run]:
    """The runs tagged with ``run`` as their parent, by their ``order`` tag."""
    with Store.open(Path(kernel.workdir) / ".mlops", create=False) as store:
        every = [store.get_run(r) for r in store.runs()["run_id"]]
    children = [c for c in every if c.tags.get("parent_run") == run.run_id]
    return sorted(children, key=lambda c: int(c.tags[order]))


def curve(run: Run, key: str) -> list[float]:
    return [p.value for p in run.metric_history[key]]


def test_printed_and_shown_scores_are_metrics(kernel: Kernel) -> None:
    body = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, mean_squared_error\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "clf = LogisticRegression(max_iter=5000).fit(X_train, y_train)\n"
        'print("model score: %.3f" % clf.score(X_test, y_test))\n'
        "pred = clf.predict(X_test)\n"
        'print(f"MSE {mean_squared_error(y_test, pred)}")\n'
        "accuracy_score(y_train, clf.predict(X_train)), accuracy_score(y_test, pred)\n"
    )
    run = tracked(kernel, "printed", body)
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, mean_squared_error
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    clf = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    pred = clf.predict(X_test)
    assert run.metrics == {
        "score": clf.score(X_test, y_test),
        "mean_squared_error": mean_squared_error(y_test, pred),
        "accuracy_y_train": accuracy_score(y_train, clf.predict(X_train)),
        "accuracy_y_test": accuracy_score(y_test, pred),
    }


def test_a_numpy_training_loop_records_its_curve_and_hyperparameters(kernel: Kernel) -> None:
    body = (
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 3))\n"
        "y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)\n"
        "learning_rate = 0.1\n"
        "epochs = 40\n"
        "w = np.zeros(3)\n"
        "for epoch in range(epochs):\n"
        "    w -= learning_rate * 2 * X.T @ (X @ w - y) / len(y)\n"
        "    train_loss = float(np.mean((X @ w - y) ** 2))\n"
        "    val_loss, val_mae = train_loss * 1.1, float(np.mean(np.abs(X @ w - y)))\n"
    )
    run = tracked(kernel, "numpy-loop", body)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)
    w, losses, maes = np.zeros(3), [], []
    for _ in range(40):
        w -= 0.1 * 2 * X.T @ (X @ w - y) / len(y)
        losses.append(float(np.mean((X @ w - y) ** 2)))
        maes.append(float(np.mean(np.abs(X @ w - y))))
    assert curve(run, "train_loss") == losses
    assert curve(run, "val_loss") == [v * 1.1 for v in losses]
    assert curve(run, "val_mae") == maes
    assert run.metrics["train_loss"] == losses[-1]  # the final value is the metric
    assert {"learning_rate": 0.1, "epochs": 40}.items() <= run.params.items()


def test_staged_errors_and_validation_curves_are_curves(kernel: Kernel) -> None:
    body = (
        "import numpy as np\n"
        "from sklearn.datasets import load_diabetes, load_digits\n"
        "from sklearn.ensemble import GradientBoostingRegressor\n"
        "from sklearn.metrics import mean_squared_error\n"
        "from sklearn.model_selection import train_test_split, validation_curve\n"
        "from sklearn.naive_bayes import GaussianNB\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=13)\n"
        "reg = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X_train, y_train)\n"
        "test_score = np.zeros((30,), dtype=np.float64)\n"
        "for i, y_pred in enumerate(reg.staged_predict(X_test)):\n"
        "    test_score[i] = mean_squared_error(y_test, y_pred)\n"
        "Xd, yd = load_digits(return_X_y=True)\n"
        "param_range = np.logspace(-11, -7, 4)\n"
        "train_scores, test_scores = validation_curve(\n"
        '    GaussianNB(), Xd, yd, param_name="var_smoothing", param_range=param_range, cv=3\n'
        ")\n"
    )
    run = tracked(kernel, "curves", body)
    from sklearn.datasets import load_diabetes, load_digits
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split, validation_curve
    from sklearn.naive_bayes import GaussianNB

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=13)
    reg = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X_train, y_train)
    staged = [mean_squared_error(y_test, p) for p in reg.staged_predict(X_test)]
    assert curve(run, "test_score") == staged  # not test_score_mean / _std
    assert "test_score_mean" not in run.metrics and run.metrics["test_score"] == staged[-1]
    assert curve(run, "mean_squared_error") == staged
    Xd, yd = load_digits(return_X_y=True)
    param_range = np.logspace(-11, -7, 4)
    train, test = validation_curve(
        GaussianNB(), Xd, yd, param_name="var_smoothing", param_range=param_range, cv=3
    )
    assert curve(run, "validation_curve.train_score") == train.mean(axis=1).tolist()
    assert curve(run, "validation_curve.test_score") == test.mean(axis=1).tolist()
    assert curve(run, "validation_curve.var_smoothing") == param_range.tolist()


def test_values_passed_to_log_metric_are_not_recorded_twice(kernel: Kernel) -> None:
    body = (
        "import mlops_jupyter as mj\n"
        "from sklearn.metrics import r2_score\n"
        "for step in range(3):\n"
        "    mj.log_metric('r2_curve', r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0 + step]))\n"
    )
    run = tracked(kernel, "logged", body.replace("mj.log_metric", "print"))
    assert len(curve(run, "r2")) == 3  # computed in a loop and printed: a curve
    reply, _ = kernel.run(f"%%track -n logged-self --no-shap\n{body}")
    assert reply["status"] == "ok"
    with Store.open(Path(kernel.workdir) / ".mlops", create=False) as store:
        table = store.runs()
        [run_id] = table.loc[table["name"] == "logged-self", "run_id"]
        run = store.get_run(run_id)
    assert sorted(run.metric_history) == ["r2_curve"]


def test_partial_fit_is_a_fit_and_accumulators_are_not_params(kernel: Kernel) -> None:
    body = (
        "import numpy as np\n"
        "from sklearn.datasets import load_digits\n"
        "from sklearn.linear_model import SGDClassifier\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_digits(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        'clf = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)\n'
        "classes = np.unique(y)\n"
        "val_losses = []\n"
        "for epoch in range(5):\n"
        "    clf.partial_fit(X_train, y_train, classes=classes)\n"
        "    val_losses.append(1 - clf.score(X_test, y_test))\n"
    )
    run = tracked(kernel, "partial-fit", body)
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split

    from mlops_jupyter import hash_data

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    clf = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
    scores = []
    for _ in range(5):
        clf.partial_fit(X_train, y_train, classes=np.unique(y))
        scores.append(clf.score(X_test, y_test))
    assert "val_losses" not in run.params  # the [] the cell started with, then filled
    assert (run.params["loss"], run.params["alpha"]) == ("log_loss", 1e-3)
    assert curve(run, "score") == scores
    assert curve(run, "val_losses") == [1 - s for s in scores]
    assert [a.kind for a in run.artifacts] == ["model"]
    roles = {(d.role, d.variable): d.hash for d in run.datasets}
    assert roles[("train", "X_train")] == hash_data(X_train)
    assert roles[("eval", "X_test")] == hash_data(X_test)


def test_xgboost_eval_set_is_eval_data_and_its_history_a_curve(kernel: Kernel) -> None:
    body = (
        "import xgboost as xgb\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)\n"
        "clf = xgb.XGBClassifier(n_estimators=30, max_depth=3, eval_metric='logloss',\n"
        "                        early_stopping_rounds=5, n_jobs=1)\n"
        "clf.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False);\n"
    )
    run = tracked(kernel, "xgb", body)
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from mlops_jupyter import hash_data

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)
    clf = xgb.XGBClassifier(
        n_estimators=30, max_depth=3, eval_metric="logloss", early_stopping_rounds=5, n_jobs=1
    )
    clf.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False)
    history = clf.evals_result()["validation_0"]["logloss"]
    assert curve(run, "validation_0.logloss") == pytest.approx(history, rel=1e-12)
    assert run.metrics["best_iteration"] == clf.best_iteration
    assert run.metrics["best_score"] == pytest.approx(clf.best_score, rel=1e-12)
    roles = {(d.role, d.variable): d.hash for d in run.datasets}
    assert roles[("eval", "X_test")] == hash_data(X_test)
    assert roles[("eval", "y_test")] == hash_data(y_test)
    assert roles[("train", "X_train")] == hash_data(X_train)
    assert (run.params["max_depth"], run.params["n_estimators"]) == (3, 30)


def test_lightgbm_eval_set_and_early_stopping(kernel: Kernel) -> None:
    body = (
        "import lightgbm as lgb\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=2)\n"
        "reg = lgb.LGBMRegressor(n_estimators=40, learning_rate=0.1, verbose=-1, n_jobs=1)\n"
        "reg.fit(X_train, y_train, eval_set=[(X_val, y_val)], eval_metric='l1',\n"
        "        callbacks=[lgb.early_stopping(5, verbose=False)]);\n"
    )
    run = tracked(kernel, "lgbm", body)
    import lightgbm as lgb
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=2)
    reg = lgb.LGBMRegressor(n_estimators=40, learning_rate=0.1, verbose=-1, n_jobs=1)
    with warnings.catch_warnings():  # eval_set is deprecated in lightgbm 4.7, still common
        warnings.simplefilter("ignore", FutureWarning)
        reg.fit(
            X_train,
            y_train,
            eval_set=[(X_val, y_val)],
            eval_metric="l1",
            callbacks=[lgb.early_stopping(5, verbose=False)],
        )
    for metric in ("l1", "l2"):
        assert curve(run, f"valid_0.{metric}") == pytest.approx(
            reg.evals_result_["valid_0"][metric], rel=1e-12
        )
        assert run.metrics[f"best_score.valid_0.{metric}"] == pytest.approx(
            reg.best_score_["valid_0"][metric], rel=1e-12
        )
    assert run.metrics["best_iteration"] == reg.best_iteration_
    assert ("eval", "X_val") in {(d.role, d.variable) for d in run.datasets}


def test_lightgbm_eval_x_and_eval_y(kernel: Kernel) -> None:
    body = (
        "import lightgbm as lgb\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.model_selection import train_test_split\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=3)\n"
        "reg = lgb.LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1)\n"
        "reg.fit(X_train, y_train, eval_X=(X_val,), eval_y=(y_val,));\n"
    )
    run = tracked(kernel, "lgbm-new", body)
    assert {("eval", "X_val"), ("eval", "y_val")} <= {(d.role, d.variable) for d in run.datasets}
    assert len(curve(run, "valid_0.l2")) == 10


def test_every_search_candidate_is_a_child_run(kernel: Kernel) -> None:
    body = (
        "from sklearn.datasets import load_iris\n"
        "from sklearn.model_selection import GridSearchCV\n"
        "from sklearn.svm import SVC\n"
        "X, y = load_iris(return_X_y=True)\n"
        "search = GridSearchCV(SVC(), {'C': [0.1, 1, 10], 'kernel': ['linear', 'rbf']}, cv=3)\n"
        "search.fit(X, y);\n"
    )
    run = tracked(kernel, "grid", body)
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(SVC(), {"C": [0.1, 1, 10], "kernel": ["linear", "rbf"]}, cv=3)
    search.fit(X, y)
    results = search.cv_results_
    assert run.params["search.cv"] == 3
    assert run.params["search.param_grid"] == {"C": [0.1, 1, 10], "kernel": ["linear", "rbf"]}
    assert run.metrics["best_score"] == search.best_score_
    children = children_of(kernel, run, "candidate")
    assert [c.params for c in children] == results["params"]
    assert [c.metrics["mean_test_score"] for c in children] == list(results["mean_test_score"])
    assert [c.metrics["rank_test_score"] for c in children] == list(results["rank_test_score"])
    assert [c.metrics["split2_test_score"] for c in children] == list(results["split2_test_score"])
    assert [c.name for c in children] == [f"grid candidate {i}" for i in range(6)]
    assert {c.experiment for c in children} == {run.experiment}


def test_a_file_read_in_an_earlier_untracked_cell_is_the_source(kernel: Kernel) -> None:
    for code in (
        "import numpy as np\nimport pandas as pd\n"
        "rng = np.random.default_rng(0)\n"
        "pd.DataFrame({'a': rng.random(50), 'b': rng.random(50), 'y': rng.integers(0, 2, 50)})"
        ".to_csv('churn.csv', index=False)\n"
        "df = pd.read_csv('churn.csv')\n",
        "X = df.drop(columns='y')\ny = df['y']\n",
    ):
        reply, _ = kernel.run(code)
        assert reply["status"] == "ok"
    run = tracked(
        kernel,
        "earlier-source",
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression().fit(X, y)\n",
    )
    from mlops_jupyter import hash_data

    digest = hash_data(Path(kernel.workdir) / "churn.csv")
    links = {(d.role, d.variable): d for d in run.datasets}
    assert links[("source", "df")].hash == digest
    assert links[("source", "df")].source_path == "churn.csv"
    for variable in ("X", "y"):
        link = links[("train", variable)]
        assert (link.source_path, link.source_hash) == ("churn.csv", digest)


def test_each_fit_in_a_loop_over_folds_is_a_run(kernel: Kernel) -> None:
    body = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import KFold\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "kf = KFold(n_splits=3, shuffle=True, random_state=0)\n"
        "for train_index, test_index in kf.split(X):\n"
        "    m = DecisionTreeClassifier(max_depth=3, random_state=0)\n"
        "    m.fit(X[train_index], y[train_index])\n"
        "    print(accuracy_score(y[test_index], m.predict(X[test_index])))\n"
    )
    run = tracked(kernel, "folds", body)
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import KFold
    from sklearn.tree import DecisionTreeClassifier

    from mlops_jupyter import hash_data

    X, y = load_breast_cancer(return_X_y=True)
    folds = list(KFold(n_splits=3, shuffle=True, random_state=0).split(X))
    scores = []
    for tr, te in folds:
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X[tr], y[tr])
        scores.append(accuracy_score(y[te], model.predict(X[te])))
    assert curve(run, "accuracy") == scores and run.metrics["accuracy"] == scores[-1]
    assert run.tags["model_choice"].startswith("the last of 3 fits of m in a loop")
    assert run.tags["model_choice"].endswith(f"parent_run={run.run_id[:8]}")
    assert run.tags["metric_choice"].startswith("accuracy: computed once per fit")
    children = children_of(kernel, run, "fit")
    assert [c.name for c in children] == ["folds fit 0", "folds fit 1", "folds fit 2"]
    for child, (tr, te), score in zip(children, folds, scores, strict=True):
        links = {(d.role, d.variable): d.hash for d in child.datasets}
        assert links[("train", "X[train_index]")] == hash_data(X[tr])
        assert links[("train", "y[train_index]")] == hash_data(y[tr])
        assert links[("eval", "X[test_index]")] == hash_data(X[te])
        assert child.metrics == {"accuracy": score}
        assert child.params["max_depth"] == 3


def test_shap_explains_the_features_the_model_saw(kernel: Kernel) -> None:
    body = (
        "from sklearn.feature_extraction.text import TfidfVectorizer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "texts = ['good great fine film', 'bad awful poor film', 'great good acting',\n"
        "         'poor bad plot', 'fine good music', 'awful bad music'] * 5\n"
        "labels = [1, 0, 1, 0, 1, 0] * 5\n"
        "vectorizer = TfidfVectorizer()\n"
        "T = vectorizer.fit_transform(texts)\n"
        "clf = LogisticRegression().fit(T, labels)\n"
    )
    reply, outputs = kernel.run(f"%%track -n text\n{body}")
    assert reply["status"] == "ok", outputs
    reply, outputs = kernel.run("import mlops_jupyter\nmlops_jupyter.wait(120)")
    assert [o.get("data", {}).get("text/plain") for o in outputs] == ["True"]
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mlops_jupyter import hash_data

    texts = [
        "good great fine film",
        "bad awful poor film",
        "great good acting",
        "poor bad plot",
        "fine good music",
        "awful bad music",
    ] * 5
    vectorizer = TfidfVectorizer()
    T = vectorizer.fit_transform(texts)
    with Store.open(Path(kernel.workdir) / ".mlops", create=False) as store:
        table = store.runs()
        [run_id] = table.loc[table["name"] == "text", "run_id"]
        run = store.get_run(run_id)
    explanation = run.explanation
    assert explanation is not None and explanation.status == "ok", explanation
    assert explanation.explainer == "LinearExplainer"
    assert explanation.feature_names == list(vectorizer.get_feature_names_out())
    assert explanation.reason == (
        "explained on training rows: the cell evaluated the model on no data"
    )
    links = {(d.role, d.variable): d.hash for d in run.datasets}
    assert links[("train", "T")] == hash_data(T)
    assert links[("train", "texts")] == hash_data(texts)  # documents are data, not paths


TORCH_LOOP = (
    "import torch\n"
    "from torch import nn\n"
    "torch.manual_seed(0)\n"
    "w_true = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])\n"
    "X_train = torch.randn(256, 4)\n"
    "y_train = X_train @ w_true + 0.1 * torch.randn(256, 1)\n"
    "X_val = torch.randn(64, 4)\n"
    "y_val = X_val @ w_true\n"
    "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
    "loss_fn = nn.MSELoss()\n"
    "epochs = 15\n"
    "for epoch in range(epochs):\n"
    "    optimizer.zero_grad()\n"
    "    loss = loss_fn(model(X_train), y_train)\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
    "    train_loss = loss.item()\n"
    "    with torch.no_grad():\n"
    "        val_loss = loss_fn(model(X_val), y_val).item()\n"
)


def test_a_pytorch_training_loop(kernel: Kernel) -> None:
    try:
        import torch
    except ImportError:
        from conftest import skip_or_fail

        skip_or_fail("torch is not installed (pip install -e '.[test]' installs the CPU build)")
    run = tracked(kernel, "torch-loop", TORCH_LOOP)
    from torch import nn

    from mlops_jupyter import hash_data

    torch.manual_seed(0)  # the same loop, here, keeping every step's losses
    w_true = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    X_train = torch.randn(256, 4)
    y_train = X_train @ w_true + 0.1 * torch.randn(256, 1)
    X_val = torch.randn(64, 4)
    y_val = X_val @ w_true
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.MSELoss()
    train, val = [], []
    for _ in range(15):
        optimizer.zero_grad()
        loss = loss_fn(model(X_train), y_train)
        loss.backward()
        optimizer.step()
        train.append(loss.item())
        with torch.no_grad():
            val.append(loss_fn(model(X_val), y_val).item())
    assert curve(run, "train_loss") == train and curve(run, "val_loss") == val
    assert run.metrics["val_loss"] == val[-1]
    assert {
        "optimizer.class": "SGD",
        "optimizer.lr": 0.05,
        "optimizer.momentum": 0.9,
        "model.class": "Sequential",
        "model.n_parameters": 4 * 8 + 8 + 8 + 1,
        "loss_fn.class": "MSELoss",
        "epochs": 15,
    }.items() <= run.params.items()
    links = {(d.role, d.variable): d.hash for d in run.datasets}
    assert links[("train", "X_train")] == hash_data(X_train.numpy())
    assert links[("train", "y_train")] == hash_data(y_train.numpy())
    assert links[("eval", "X_val")] == hash_data(X_val.numpy())
    assert ("train", "loss") not in links  # a tensor computed with a graph is not data
    [artifact] = [a for a in run.artifacts if a.kind == "model"]
    assert artifact.meta == {"class": "torch.nn.modules.container.Sequential"}
    with Store.open(Path(kernel.workdir) / ".mlops", create=False) as store:
        saved = pickle.loads(store.blobs.get_bytes(artifact.blob))  # our own test blob
    for key, weights in model.state_dict().items():  # the final weights
        assert torch.equal(saved.state_dict()[key], weights)


def test_two_models_on_swapped_halves_are_two_child_runs(kernel: Kernel) -> None:
    body = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "half = len(X) // 2\n"
        "X_a, y_a, X_b, y_b = X[:half], y[:half], X[half:], y[half:]\n"
        "m1 = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_a, y_a)\n"
        "m2 = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X_b, y_b)\n"
        "s1 = m1.score(X_b, y_b)\n"
        "s2 = m2.score(X_a, y_a)\n"
    )
    run = tracked(kernel, "halves", body)
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    from mlops_jupyter import hash_data

    X, y = load_breast_cancer(return_X_y=True)
    half = len(X) // 2
    X_a, y_a, X_b, y_b = X[:half], y[:half], X[half:], y[half:]
    m1 = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_a, y_a)
    m2 = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X_b, y_b)
    assert run.tags["model_choice"].startswith("m2, of 2 models fitted (m1, m2)")
    children = {c.tags["model"]: c for c in children_of(kernel, run, "fit")}
    assert sorted(children) == ["m1", "m2"]
    one, two = children["m1"], children["m2"]
    assert {(d.role, d.variable): d.hash for d in one.datasets} == {
        ("train", "X_a"): hash_data(X_a),
        ("train", "y_a"): hash_data(y_a),
        ("eval", "X_b"): hash_data(X_b),
        ("eval", "y_b"): hash_data(y_b),
    }
    assert {(d.role, d.variable) for d in two.datasets} == {
        ("train", "X_b"),
        ("train", "y_b"),
        ("eval", "X_a"),
        ("eval", "y_a"),
    }
    assert one.metrics == {"score": m1.score(X_b, y_b)} and one.params["max_depth"] == 2
    assert two.metrics == {"score": m2.score(X_a, y_a)} and two.params["max_depth"] == 4


def test_metric_functions_on_each_models_predictions_go_to_its_child_run(
    kernel: Kernel,
) -> None:
    body = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, f1_score\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "half = len(X) // 2\n"
        "X_a, y_a, X_b, y_b = X[:half], y[:half], X[half:], y[half:]\n"
        "tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_a, y_a)\n"
        "linear = LogisticRegression(max_iter=5000).fit(X_b, y_b)\n"
        "p_tree = tree.predict(X_b)\n"
        "tree_f1 = f1_score(y_b, p_tree)\n"
        "print('tree', accuracy_score(y_b, p_tree))\n"
        "print('linear', accuracy_score(y_a, linear.predict(X_a)))\n"
    )
    run = tracked(kernel, "per-model-metrics", body)
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True)
    half = len(X) // 2
    X_a, y_a, X_b, y_b = X[:half], y[:half], X[half:], y[half:]
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_a, y_a)
    linear = LogisticRegression(max_iter=5000).fit(X_b, y_b)
    p_tree = tree.predict(X_b)
    children = {c.tags["model"]: c for c in children_of(kernel, run, "fit")}
    assert sorted(children) == ["linear", "tree"]
    assert children["tree"].metrics == {
        "tree_f1": f1_score(y_b, p_tree),
        "accuracy": accuracy_score(y_b, p_tree),
    }
    assert children["linear"].metrics == {"accuracy": accuracy_score(y_a, linear.predict(X_a))}
