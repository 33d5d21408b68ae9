"""``GET``/``POST experiments/settings`` and the primary metric in ``GET experiments``, against
a real Jupyter server on each engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from server_helpers import RunningServer, running_server

from mlops_jupyter.store import Store

pytestmark = pytest.mark.slow
SETTINGS = "mlops-jupyter/api/experiments/settings"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("settingsroot")
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.url(cluster.create_database())
        (root / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{url}"\n')
        store = Store.open(url, start=root)
    else:
        store = Store.open(root / ".mlops")
    with store:
        for i in range(3):
            store.record_run("churn", metrics={"auc": 0.7 + i / 10, "train_time_s": 3.0 - i})
        store.record_run("<b>other</b>", metrics={"auc": 0.5})
    (root / "empty" / ".mlops").mkdir(parents=True)  # a store directory, nothing tracked
    (root / "empty" / "pyproject.toml").write_text("[project]\nname = 'own'\n")
    home = tmp_path_factory.mktemp("settingshome")
    with running_server(root, home, env={"MLOPS_JUPYTER_USER": "server-owner"}) as running:
        yield running


def post(server: RunningServer, body: Any, **params: str) -> requests.Response:
    return requests.post(
        server.api(SETTINGS),
        params=params,
        json=body,
        headers={"Authorization": f"token {server.token}"},
        timeout=30,
    )


def error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["status"] == status
    return str(body["error"]["message"])


def test_set_read_replace_and_clear(server: RunningServer) -> None:
    answer = server.get(SETTINGS, experiment="churn").json()
    assert answer == {
        "experiment": "churn",
        "primary_metric": None,
        "directions": {},
        "settings": [],
    }
    done = post(server, {"experiment": "churn", "metric": "auc", "direction": "max",
                         "primary": True})  # fmt: skip
    assert done.status_code == 200, done.text
    body = done.json()
    assert {k: body[k] for k in ("experiment", "primary_metric", "directions")} == {
        "experiment": "churn",
        "primary_metric": "auc",
        "directions": {"auc": "max"},
    }
    [row] = body["settings"]
    assert (row["metric"], row["direction"], row["primary"], row["updated_by"]) == (
        "auc",
        "max",
        True,
        "server-owner",
    )
    assert row["updated_at"].endswith("+00:00")
    assert server.get(SETTINGS, experiment="churn").json() == body
    # the listing of experiments names the primary metric and its direction
    listed = server.get("mlops-jupyter/api/experiments").json()["experiments"]
    assert [(e["experiment"], e["primary_metric"], e["direction"]) for e in listed] == [
        ("<b>other</b>", None, None),
        ("churn", "auc", "max"),
    ]
    # another primary metric, its direction left as the name gives it; primary false keeps it
    body = post(server, {"experiment": "churn", "metric": "train_time_s", "primary": True}).json()
    assert (body["primary_metric"], body["directions"]) == ("train_time_s", {"auc": "max"})
    listed = server.get("mlops-jupyter/api/experiments").json()["experiments"]
    assert (listed[1]["primary_metric"], listed[1]["direction"]) == ("train_time_s", "min")
    columns = server.get("mlops-jupyter/api/columns", experiment="churn").json()
    assert columns["directions"] == {"auc": "max", "train_time_s": "min"}  # by its name
    body = post(server, {"experiment": "churn", "metric": "train_time_s", "direction": "max",
                         "primary": False}).json()  # fmt: skip
    columns = server.get("mlops-jupyter/api/columns", experiment="churn").json()
    assert columns["directions"] == {"auc": "max", "train_time_s": "max"}  # as set
    assert (body["primary_metric"], body["directions"]) == (
        "train_time_s",
        {"auc": "max", "train_time_s": "max"},
    )
    compare_ids = ",".join(server_run_ids(server, "churn")[:2])
    comparison = server.get("mlops-jupyter/api/compare", ids=compare_ids).json()
    assert [(m["key"], m["direction"], m["primary"]) for m in comparison["metrics"]] == [
        ("train_time_s", "max", True),
        ("auc", "max", False),
    ]
    cleared = post(server, {"experiment": "churn", "primary": None}).json()
    assert (cleared["primary_metric"], cleared["directions"]) == (
        None,
        {"auc": "max", "train_time_s": "max"},
    )
    other = post(server, {"experiment": "<b>other</b>", "metric": "auc", "direction": "min"})
    assert other.json()["directions"] == {"auc": "min"}


def server_run_ids(server: RunningServer, experiment: str) -> list[str]:
    page = server.get("mlops-jupyter/api/runs", experiment=experiment).json()
    return [run["run_id"] for run in page["runs"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"experiment": "churn", "metric": "auc", "direction": "up"}, "direction must be 'max'"),
        ({"experiment": "churn", "metric": "", "direction": "max"}, "metric must be a non-empty"),
        ({"experiment": "churn", "metric": "auc"}, "nothing to set for 'auc'"),
        ({"experiment": "churn", "metric": 3, "direction": "max"}, "metric must be a string"),
        ({"experiment": "churn", "metric": "auc", "direction": 1}, "direction must be 'max'"),
        ({"experiment": "", "metric": "auc", "direction": "max"}, "experiment must be a non-"),
        ({"metric": "auc", "direction": "max"}, "experiment must be a non-empty string"),
        ({"experiment": "churn", "metric": "auc", "primary": "yes"}, "primary must be true"),
        ({"experiment": "churn", "primary": None, "metric": "auc"}, "to clear the primary"),
        ({"experiment": "churn", "metric": "auc", "colour": "red"}, "unknown fields colour"),
        ([1, 2], "the body must be a JSON object"),
    ],
)
def test_bad_input_is_400(server: RunningServer, body: Any, message: str) -> None:
    assert message in error(post(server, body), 400)


def test_bad_json_missing_experiment_and_unknown_ones(server: RunningServer) -> None:
    headers = {"Authorization": f"token {server.token}"}
    bad = requests.post(server.api(SETTINGS), data=b"{nope", headers=headers, timeout=30)
    assert "the body must be JSON" in error(bad, 400)
    assert "experiment is required" in error(server.get(SETTINGS), 400)
    missing = error(server.get(SETTINGS, experiment="nope"), 404)
    assert missing == "no experiment named 'nope' in this store (experiments: <b>other</b>, churn)"
    created = post(server, {"experiment": "typo", "metric": "auc", "direction": "max"})
    assert "no experiment named 'typo'" in error(created, 404)  # a typo creates nothing
    names = [e["experiment"] for e in server.get("mlops-jupyter/api/experiments").json()[
        "experiments"]]  # fmt: skip
    assert "typo" not in names
    assert "no store yet" in error(server.get(SETTINGS, path="empty", experiment="churn"), 404)
    assert error(server.get(SETTINGS, auth=False, experiment="churn"), 403)


def test_a_cookie_session_post_needs_the_xsrf_token(server: RunningServer) -> None:
    session = requests.Session()
    session.get(server.api(f"lab?token={server.token}"), timeout=30)
    body = {"experiment": "churn", "metric": "f1", "direction": "max"}
    refused = session.post(server.api(SETTINGS), json=body, timeout=30)
    assert refused.status_code == 403
    assert "f1" not in server.get(SETTINGS, experiment="churn").json()["directions"]
    xsrf = {"X-XSRFToken": session.cookies["_xsrf"]}
    done = session.post(server.api(SETTINGS), json=body, headers=xsrf, timeout=30)
    assert done.status_code == 200, done.text
    assert done.json()["directions"]["f1"] == "max"
