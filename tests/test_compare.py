"""Run comparison: the core model, its HTML rendering, and %compare in the reference notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter.compare import compare_runs
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store
from mlops_jupyter.widgets.compare import comparison_html


def test_compare_runs_and_escaping(tmp_path: Path) -> None:
    with Store.open(tmp_path / ".mlops") as store:
        a = store.record_run(
            "e",
            name="<b>a</b>",
            params={"depth": 2, "seed": 1},
            metrics={"accuracy": 0.8, "val_loss": 0.3},
        )
        b = store.record_run(
            "e",
            name="b",
            params={"depth": 8, "seed": 1, "<x>": "<img>"},
            metrics={"accuracy": 0.9, "val_loss": 0.4},
        )
        comparison = compare_runs(store, [a[:6], b])
        with pytest.raises(ValueError, match="compare takes 2 to 10 runs, got 1"):
            compare_runs(store, [a])
        with pytest.raises(ValueError, match="the same run is listed twice"):
            compare_runs(store, [a, a[:8]])
    params = {p["key"]: (p["values"], p["differs"]) for p in comparison["params"]}
    assert params == {
        "<x>": ([None, "<img>"], True),
        "depth": ([2, 8], True),
        "seed": ([1, 1], False),
    }
    assert [p["key"] for p in comparison["params"]][-1] == "seed"  # differences first
    metrics = {m["key"]: (m["values"], m["best"]) for m in comparison["metrics"]}
    assert metrics == {"accuracy": ([0.8, 0.9], 1), "val_loss": ([0.3, 0.4], 0)}  # lower wins
    assert comparison["data"]["train"] == {"hashes": [[], []], "same": False}
    page = comparison_html(comparison)
    assert "<b>a</b>" not in page and "&lt;b&gt;a&lt;/b&gt;" in page
    assert "<img>" not in page and "&lt;img&gt;" in page
    assert "1 identical parameters hidden" in page and ">seed<" not in page
    assert ">seed<" in comparison_html(comparison, show_all=True)


@pytest.mark.slow
def test_reference_notebook_compares_its_runs(tmp_path: Path) -> None:
    from test_notebooks import execute

    nb = execute("compare.ipynb", tmp_path)
    compare, review = [c for c in nb.cells if c.cell_type == "code"][-2:]
    html = next(o for o in compare.outputs if "text/html" in o.get("data", {}))
    assert "max_depth" in html["data"]["text/html"] and "deep" in html["data"]["text/html"]
    assert "train data</th><td colspan='2'>same data" in html["data"]["text/html"]
    result = next(o for o in review.outputs if o.get("output_type") == "execute_result")
    assert result["data"]["text/plain"] == "('pending', 1)"
    with Store.open(tmp_path / ".mlops", create=False) as store:
        [request] = Registry(store).requests()
        version = Registry(store).version("breast-cancer", 1)
        runs = store.runs(experiment="compare")
    assert (request.model, request.version, request.to_stage) == ("breast-cancer", 1, "production")
    best = runs.loc[runs["metrics.accuracy"].idxmax(), "run_id"]
    assert version.run_id == best


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("val_loss", True),
        ("test_rmse", True),
        ("train_time_s", True),
        ("mean_fit_time", True),
        ("error_rate", True),
        ("logloss", True),
        ("valid_0.l2", False),
        ("neg_mean_squared_error", False),
        ("accuracy", False),
        ("f1_macro", False),
        ("r2", False),
        ("roc_auc", False),
    ],
)
def test_lower_is_better_is_one_rule(metric: str, lower: bool) -> None:
    from mlops_jupyter.capture.metric_values import lower_is_better

    assert lower_is_better(metric) is lower


def test_compare_marks_the_fastest_run_best_for_a_time(store: Any) -> None:
    from mlops_jupyter.compare import compare_runs

    slow = store.record_run("t", name="slow", metrics={"train_time_s": 9.0, "accuracy": 0.9})
    fast = store.record_run("t", name="fast", metrics={"train_time_s": 2.0, "accuracy": 0.8})
    metrics = {m["key"]: m for m in compare_runs(store, [slow, fast])["metrics"]}
    assert metrics["train_time_s"]["best"] == 1 and metrics["train_time_s"]["lower_is_better"]
    assert metrics["accuracy"]["best"] == 0


GATED_CELL = """%%track -n {name} -e gated
import threading
import numpy as np, pandas as pd
from sklearn.neighbors import KNeighborsClassifier
if "gate" not in globals():
    gate = threading.Event()
class Gated(KNeighborsClassifier):
    def predict_proba(self, X):
        gate.wait(300)  # SHAP calls this in the kernel's worker thread: held until the test says
        return super().predict_proba(X)
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.random((60, 3)), columns=["alpha", "beta", "gamma"])
y = (X["alpha"] > 0.5).astype(int)
model = Gated(n_neighbors={k}).fit(X, y)
accuracy = 0.5 + {k} / 100  # not model.score: that would call predict_proba, held too
"""


@pytest.mark.slow
def test_compare_widget_updates_when_shap_lands(tmp_path: Path) -> None:
    """``%compare`` run while SHAP is still computing shows it pending; once the explanations
    are stored the widget's HTML (sent to the front end as a comm update) shows the
    features, and nothing was printed into any cell meanwhile."""
    from test_magics import Kernel

    kernel = Kernel(tmp_path)
    try:
        for code in ("%load_ext mlops_jupyter", GATED_CELL.format(name="three", k=3),
                     GATED_CELL.format(name="five", k=5)):  # fmt: skip
            reply, _ = kernel.run(code)
            assert reply["status"] == "ok"
        reply, outputs = kernel.run("view = %compare -e gated --last 2\nview")
        assert reply["status"] == "ok"
        [shown] = [o for o in outputs if o["type"] == "execute_result"]
        assert "application/vnd.jupyter.widget-view+json" in shown["data"]
        page = shown["data"]["text/html"]
        assert page.count("<td class='mj-shap-pending'>pending</td>") == 2
        _, outputs = kernel.run("view.watching, 'alpha' in view.body.value")
        assert outputs[-1]["data"]["text/plain"] == "(True, False)"
        # let SHAP finish, and wait for the view to stop watching; collect every message
        msg_id = kernel.send("gate.set()\nview.wait(120), view.watching")
        updates, cell_outputs = [], []
        while True:
            msg = kernel.client.get_iopub_msg(timeout=180)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_msg" and content["data"].get("method") == "update":
                updates.append(content["data"]["state"])
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind in ("stream", "execute_result", "display_data", "error"):
                cell_outputs.append((kind, content))
            if kind == "status" and content["execution_state"] == "idle":
                break
        assert [kind for kind, _ in cell_outputs] == ["execute_result"]  # nothing printed
        assert cell_outputs[0][1]["data"]["text/plain"] == "(True, False)"
        values = [state["value"] for state in updates if "value" in state]
        assert values and "<td class='mj-shap-ok'>" in values[-1]
        assert "pending" not in values[-1].split("data-shap")[1]
        with Store.open(tmp_path / ".mlops", create=False) as store:
            runs = store.runs(experiment="gated", order_by="started_at")
            explained = [store.get_run(i).explanation for i in runs["run_id"]]
        assert [e.status for e in explained if e is not None] == ["ok", "ok"]
        for run_id, e in zip(runs["run_id"], explained, strict=True):
            assert e is not None and e.feature_names == ["alpha", "beta", "gamma"]
            assert run_id[:8] in values[-1]
        shap_row = values[-1].split("<tr data-shap>")[1].split("</tr>")[0]
        assert shap_row.count("<td class='mj-shap-ok'>") == 2
        assert all(name in shap_row for name in ("alpha", "beta", "gamma"))
        _, outputs = kernel.run("view.body.value == view.html()")
        assert outputs[-1]["data"]["text/plain"] == "True"
    finally:
        kernel.shutdown()
