"""The data and review endpoints against a real Jupyter server and a real store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from server_helpers import RunningServer, running_server

from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store

pytestmark = pytest.mark.slow
API = "mlops-jupyter/api/"


def seed_store(root: Path) -> dict[str, Any]:
    """25 runs over two experiments with params and metrics, plus one registered model."""
    rng = random.Random(7)
    ids = []
    with Store.open(root / ".mlops") as store:
        for i in range(25):
            ids.append(
                store.record_run(
                    "exp-a" if i % 5 else "exp-b",
                    name=f"run-{i:02d}",
                    params={"depth": [2, 4, 8][i % 3], "model": "rf" if i % 2 else "lr"},
                    metrics={"accuracy": round(rng.random(), 6), "loss": round(rng.random(), 6)},
                    started_at=1_800_000_000 + i,
                    ended_at=1_800_000_000 + i + 1.5,
                )
            )
        store.add_artifact(ids[0], "model", b"not really a model", kind="model")
        (root / ".mlops" / "policy.toml").write_text("[tiers.low.production]\nsignoffs = 1\n")
        registry = Registry(store, "ana")
        registry.register(ids[0], "churn", risk_tier="low")
        request = registry.request_promotion("churn", 1, "production", "please")
        runs = {run_id: store.get_run(run_id) for run_id in ids}
    return {"ids": ids, "runs": runs, "request": request.id}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("restroot")
    seeded = seed_store(root)
    broken = root / "broken" / ".mlops"
    broken.mkdir(parents=True)
    (broken / "store.db").write_bytes(b"definitely not sqlite" * 20)
    (root / "fresh" / ".mlops").mkdir(parents=True)  # a store directory, nothing tracked yet
    with running_server(root, tmp_path_factory.mktemp("resthome")) as running:
        yield running, seeded


def get(server: RunningServer, endpoint: str, **params: Any) -> requests.Response:
    return requests.get(
        server.api(API + endpoint),
        params=params,
        headers={"Authorization": f"token {server.token}"},
        timeout=30,
    )


def error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["status"] == status
    return str(body["error"]["message"])


def test_experiments(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    body = get(running, "experiments").json()["experiments"]
    assert [(e["experiment"], e["runs"]) for e in body] == [("exp-a", 20), ("exp-b", 5)]


def test_runs_pagination_and_sort_match_the_store(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    runs = seeded["runs"].values()
    expected = [r.run_id for r in sorted(runs, key=lambda r: -r.metrics["accuracy"])]
    page1 = get(running, "runs", sort="-metrics.accuracy", limit=10).json()
    page2 = get(running, "runs", sort="-metrics.accuracy", limit=10, offset=10).json()
    page3 = get(running, "runs", sort="-metrics.accuracy", limit=10, offset=20).json()
    assert page1["total"] == 25 and page3["offset"] == 20
    got = [r["run_id"] for p in (page1, page2, page3) for r in p["runs"]]
    assert got == expected
    first = page1["runs"][0]
    assert first["metrics"] == seeded["runs"][first["run_id"]].metrics
    assert first["params"] == seeded["runs"][first["run_id"]].params
    by_name = get(running, "runs", sort="name", limit=3).json()["runs"]
    assert [r["name"] for r in by_name] == ["run-00", "run-01", "run-02"]


def test_runs_filters(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    runs = list(seeded["runs"].values())
    depth4 = get(running, "runs", filter="params.depth=4", limit=100).json()
    assert depth4["total"] == sum(1 for r in runs if r.params["depth"] == 4)
    good = requests.get(
        running.api(API + "runs"),
        params=[
            ("filter", "metrics.accuracy>=0.5"),
            ("filter", "params.model=rf"),
            ("experiment", "exp-a"),
        ],
        headers={"Authorization": f"token {running.token}"},
        timeout=30,
    ).json()
    assert {r["run_id"] for r in good["runs"]} == {
        r.run_id
        for r in runs
        if r.metrics["accuracy"] >= 0.5 and r.params["model"] == "rf" and r.experiment == "exp-a"
    }
    assert get(running, "runs", status="failed").json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "ten"}, "limit must be an integer, got 'ten'"),
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"offset": -1}, "offset must be >= 0, got -1"),
        ({"filter": "depth=4"}, "bad filter 'depth=4'"),
        ({"filter": "metrics.accuracy>=high"}, "a metric compares with a number"),
        ({"sort": "-nonsense"}, "cannot order runs by '-nonsense'"),
    ],
)
def test_malformed_run_queries_are_400(
    server: tuple[RunningServer, dict[str, Any]], params: dict[str, Any], message: str
) -> None:
    running, _ = server
    assert message in error(get(running, "runs", **params), 400)


def test_one_run_and_unknown_ids(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    run_id = seeded["ids"][3]
    body = get(running, f"runs/{run_id[:8]}").json()
    assert body["run_id"] == run_id and body["params"] == seeded["runs"][run_id].params
    assert "no run with id 'ffffffff'" in error(get(running, "runs/ffffffff"), 404)
    assert get(running, "runs/not-hex").status_code == 404  # no such route


def test_compare(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    a, b = seeded["ids"][1], seeded["ids"][2]  # depth 4 vs 8, model rf vs lr
    body = get(running, "compare", ids=f"{a},{b}").json()
    assert [r["run_id"] for r in body["runs"]] == [a, b]
    differing = {p["key"]: p["values"] for p in body["params"] if p["differs"]}
    assert differing == {"depth": [4, 8], "model": ["rf", "lr"]}
    accuracy = next(m for m in body["metrics"] if m["key"] == "accuracy")
    values = [seeded["runs"][a].metrics["accuracy"], seeded["runs"][b].metrics["accuracy"]]
    assert accuracy["values"] == values and accuracy["best"] == values.index(max(values))
    assert "compare takes 2 to 10 runs, got 1" in error(get(running, "compare", ids=a), 400)


def test_card_is_html_under_a_strict_policy(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    response = get(running, f"cards/{seeded['ids'][0]}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert "Model card: run-00" in response.text
    assert "no such registered model version" in error(get(running, "cards/churn:9"), 404)


def test_models_requests_and_approval_as_the_jupyter_user(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    models = get(running, "models").json()["models"]
    assert [(m["model"], m["versions"]) for m in models] == [("churn", 1)]
    [version] = models[0]["versions_list"]
    assert (version["version"], version["run_id"]) == (1, seeded["ids"][0])
    # a browser-style session: the login cookie keeps one Jupyter identity across requests
    session = requests.Session()
    session.get(running.api(f"lab?token={running.token}"), timeout=30)
    answer = session.get(running.api(API + "requests"), params={"status": "pending"}).json()
    pending = answer["requests"]
    assert [r["id"] for r in pending] == [seeded["request"]]
    assert pending[0]["requester"] == "ana" and pending[0]["required_signoffs"] == 1
    reviewer = answer["reviewer"]
    assert reviewer["name"].startswith("Anonymous ")  # jupyter_server's token login
    assert "status must be one of pending, blocked" in error(
        get(running, "requests", status="open"), 400
    )
    assert "limit must be between 1 and 1000" in error(get(running, "requests", limit=0), 400)
    url = running.api(API + f"requests/{seeded['request']}/approve")
    # without the XSRF token the POST is refused before the handler runs
    assert session.post(url, json={"comment": "x"}, timeout=30).status_code == 403
    xsrf = {"X-XSRFToken": session.cookies["_xsrf"]}
    bad = session.post(url, data=b"{not json", headers=xsrf, timeout=30)
    assert "the body must be JSON" in error(bad, 400)
    done = session.post(url, json={"comment": "reviewed"}, headers=xsrf, timeout=30).json()
    assert done["status"] == "applied"
    assert done["approvals"] == [reviewer["username"]]  # the approver is the Jupyter user
    again = session.post(url, json={}, headers=xsrf, timeout=30)
    assert "is applied, no longer open" in error(again, 409)
    headers = {"Authorization": f"token {running.token}"}
    missing = requests.post(
        running.api(API + "requests/999/reject"),
        json={"comment": "no"},
        headers=headers,
        timeout=30,
    )
    assert "no promotion request #999" in error(missing, 404)


def test_auth_paths_and_broken_stores(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    for endpoint in ("experiments", "runs", "compare", "models", "requests", "cards/abcd"):
        assert requests.get(running.api(API + endpoint), timeout=30).status_code == 403
    assert requests.post(running.api(API + "requests/1/approve"), timeout=30).status_code == 403
    assert "outside the server root" in error(get(running, "runs", path="../.."), 403)
    assert "no store yet" in error(get(running, "runs", path="fresh"), 404)
    message = error(get(running, "runs", path="broken"), 500)
    assert message.startswith("the store cannot be read:") and "store.db" in message
    assert get(running, "runs").status_code == 200  # the server keeps serving
    assert "Traceback" not in running.log()
