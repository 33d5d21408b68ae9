"""The data and review endpoints against a real Jupyter server and a real store."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from server_helpers import RunningServer, running_server

from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store
from mlops_jupyter.store.discovery import find_store

pytestmark = pytest.mark.slow
API = "mlops-jupyter/api/"


def open_project(root: Path, **options: Any) -> Store:
    """The store of the project at ``root``, as the server finds it (a team store when the
    project's pyproject.toml names one)."""
    found = find_store(root)
    return Store.open(found, start=root, **options)


def seed_store(root: Path, team_store: str | None = None) -> dict[str, Any]:
    """25 runs over two experiments with params and metrics, plus one registered model; on
    ``team_store`` (a PostgreSQL URL the project's pyproject.toml names) when given."""
    rng = random.Random(7)
    ids = []
    root.mkdir(parents=True, exist_ok=True)
    if team_store is not None:
        (root / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{team_store}"\n')
    (root / ".mlops").mkdir(exist_ok=True)
    with open_project(root) as store:
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
        curve = [("val loss", 1.0 / (step + 1), step) for step in range(300)]
        store.log_metric(ids[3], "val loss", float("nan"), step=300)
        store.finish_run(ids[3], metrics=curve)
        (root / ".mlops" / "policy.toml").write_text(
            "[tiers.low.production]\nsignoffs = 1\n[tiers.medium.production]\nsignoffs = 2\n"
        )
        ana = generate_key(root.parent / f"{root.name}-keys" / "ana", comment="ana")
        add_signer(root / ".mlops" / "allowed_signers", "ana", ana.key_blob)
        registry = Registry(store, ana)
        registry.register(ids[0], "churn", risk_tier="low")
        request = registry.request_promotion("churn", 1, "production", "please")
        registry.register(ids[0], "twice", risk_tier="medium")
        twice = registry.request_promotion("twice", 1, "production", "two people, please")
        runs = {run_id: store.get_run(run_id) for run_id in ids}
    return {"ids": ids, "runs": runs, "request": request.id, "twice": twice.id}


def server_key(root: Path, home: Path, principal: str) -> Any:
    """The key of the person the server runs for, named in its config and allowed to sign."""
    reviewer = generate_key(home / "keys" / principal, comment=principal)
    add_signer(root / ".mlops" / "allowed_signers", principal, reviewer.key_blob)
    (home / "config").mkdir(parents=True, exist_ok=True)
    config = {"MLOpsJupyter": {"signing_key": str(home / "keys" / principal)}}
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    return reviewer


OWN_PROJECT = "[project]\nname = 'own'\n"  # a nested project: its own .mlops, not the team's


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    """One server per engine: the root project's store is an SQLite file, or a team store on
    PostgreSQL named by its pyproject.toml; nested projects keep SQLite stores."""
    root = tmp_path_factory.mktemp("restroot")
    team_store = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        team_store = cluster.url(cluster.create_database())
    seeded = seed_store(root, team_store)
    seeded["engine"] = request.param
    broken = root / "broken" / ".mlops"
    broken.mkdir(parents=True)
    (broken / "store.db").write_bytes(b"definitely not sqlite" * 20)
    (root / "fresh" / ".mlops").mkdir(parents=True)  # a store directory, nothing tracked yet
    for nested in ("broken", "fresh", "elsewhere"):
        (root / nested).mkdir(exist_ok=True)
        (root / nested / "pyproject.toml").write_text(OWN_PROJECT)
    home = tmp_path_factory.mktemp("resthome")
    seeded["reviewer"] = server_key(root, home, "bo")
    elsewhere = root / "elsewhere"  # a project whose allowed signers do not list the server's key
    seeded["elsewhere"] = seed_store(elsewhere)
    with running_server(root, home) as running:
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
    running, seeded = server
    body = get(running, "experiments").json()["experiments"]
    assert [(e["experiment"], e["runs"]) for e in body] == [("exp-a", 20), ("exp-b", 5)]
    store = get(running, "store").json()
    engine = seeded["engine"]
    assert store["engine"] == engine
    if engine == "sqlite":
        assert store["team_store"] is None
    else:  # user@host:port/database, never a password
        assert store["team_store"].startswith("postgres@127.0.0.1:")


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
    line = get(running, "runs", filter="metrics.accuracy >= 0.5 params.model = rf", limit=100)
    assert line.json()["total"] == sum(
        1 for r in runs if r.metrics["accuracy"] >= 0.5 and r.params["model"] == "rf"
    )
    assert all(r["tags"] == {} for r in line.json()["runs"])


def test_run_columns(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    everything = {"params": ["depth", "model"], "metrics": ["accuracy", "loss", "val loss"],
                  "tags": [],  # each metric's direction, read from its name here
                  "directions": {"accuracy": "max", "loss": "min", "val loss": "min"}}  # fmt: skip
    assert get(running, "columns").json() == everything
    assert get(running, "columns", experiment="exp-b").json() == {
        "params": ["depth", "model"], "metrics": ["accuracy", "loss"], "tags": [],
        "directions": {"accuracy": "max", "loss": "min"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "ten"}, "limit must be an integer, got 'ten'"),
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"offset": -1}, "offset must be >= 0, got -1"),
        ({"filter": "depth=4"}, "bad filter 'depth=4'"),
        ({"filter": "metrics.accuracy>=high"}, "a metric compares with a number"),
        ({"filter": "tags.owner >= ana"}, "tags compare with = or !="),
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


def test_one_metric_curve(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    run_id = seeded["ids"][3]
    body = get(running, f"runs/{run_id[:8]}/metrics/val%20loss").json()
    assert body["key"] == "val loss" and body["steps"] == list(range(301))
    assert body["values"][:300] == [1.0 / (step + 1) for step in range(300)]
    assert body["values"][300] == "NaN"
    assert get(running, f"runs/{run_id}/metrics/accuracy").json()["steps"] == [0]
    message = error(get(running, f"runs/{run_id}/metrics/nope"), 404)
    assert message.startswith(f"run {run_id} has no metric 'nope' (it has: accuracy, loss,")
    assert "no run with id 'ffffffff'" in error(get(running, "runs/ffffffff/metrics/loss"), 404)


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


def test_models_requests_and_approval_signed_as_the_server_owner(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    reviewer = seeded["reviewer"]
    models = get(running, "models").json()["models"]
    assert [(m["model"], m["versions"]) for m in models] == [("churn", 1), ("twice", 1)]
    [version] = models[0]["versions_list"]
    assert (version["version"], version["run_id"]) == (1, seeded["ids"][0])
    # a browser-style session: the login cookie keeps one Jupyter identity across requests
    session = requests.Session()
    session.get(running.api(f"lab?token={running.token}"), timeout=30)
    answer = session.get(running.api(API + "requests"), params={"status": "pending"}).json()
    pending = answer["requests"]
    assert [r["id"] for r in pending] == [seeded["twice"], seeded["request"]]
    assert pending[1]["requester"] == "ana" and pending[1]["required_signoffs"] == 1
    assert pending[1]["requester_key"].startswith("SHA256:")
    me = answer["reviewer"]
    assert me["name"].startswith("Anonymous ")  # jupyter_server's token login...
    assert (me["principal"], me["fingerprint"], me["problem"]) == (
        "bo",
        reviewer.fingerprint,
        None,
    )  # ...signs as its owner
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
    assert done["status"] == "applied" and done["approvals"] == ["bo"]
    [signoff] = done["signoffs"]
    assert (signoff["principal"], signoff["fingerprint"], signoff["verified"]) == (
        "bo",
        reviewer.fingerprint,
        True,
    )
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


def test_two_sessions_on_one_token_are_one_person(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    url = running.api(API + f"requests/{seeded['twice']}/approve")
    answers = []
    for _ in range(2):  # two fresh browser sessions, each a new anonymous Jupyter user
        session = requests.Session()
        session.get(running.api(f"lab?token={running.token}"), timeout=30)
        xsrf = {"X-XSRFToken": session.cookies["_xsrf"]}
        answers.append(session.post(url, json={"comment": "me"}, headers=xsrf, timeout=30))
    assert answers[0].status_code == 200
    assert (answers[0].json()["status"], answers[0].json()["approvals"]) == ("pending", ["bo"])
    assert f"bo already signed request #{seeded['twice']}" in error(answers[1], 409)
    with open_project(running.root) as store:
        request = Registry(store).request(seeded["twice"])
    assert (request.status, request.approvals, request.required_signoffs) == ("pending", ["bo"], 2)


def test_an_approval_the_server_cannot_attribute_is_refused(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    headers = {"Authorization": f"token {running.token}"}
    answer = get(running, "requests", path="elsewhere").json()
    assert answer["reviewer"]["principal"] is None
    assert "is not in the allowed signers" in answer["reviewer"]["problem"]
    refused = requests.post(
        running.api(API + f"requests/{seeded['elsewhere']['request']}/approve"),
        params={"path": "elsewhere"},
        json={"comment": "x"},
        headers=headers,
        timeout=30,
    )
    message = error(refused, 403)
    assert message.startswith("this server cannot sign for you: your key SHA256:")
    assert "mlops-jupyter keys init --principal NAME" in message
    assert message.endswith("To sign from a terminal instead: mlops-jupyter approve 1 -m COMMENT")
    with Store.open(running.root / "elsewhere" / ".mlops", create=False) as store:
        assert Registry(store).request(seeded["elsewhere"]["request"]).status == "pending"


def test_on_a_hub_server_only_its_owner_may_sign(tmp_path: Path) -> None:
    """Behind JupyterHub the server signs as the hub user it belongs to; a request from any
    other Jupyter identity (here: the token's anonymous user) is refused, saying why."""
    root, home = tmp_path / "root", tmp_path / "home"
    seeded = seed_store(root)
    server_key(root, home, "bo")
    with running_server(root, home, env={"JUPYTERHUB_USER": "bo"}) as running:
        answer = get(running, "requests").json()["reviewer"]
        assert answer["principal"] is None
        assert answer["problem"].endswith(
            "on bo's server, which signs as bo: approve from your own server, or with "
            "`mlops-jupyter approve` and your own key"
        )
        refused = requests.post(
            running.api(API + f"requests/{seeded['request']}/approve"),
            json={"comment": "x"},
            headers={"Authorization": f"token {running.token}"},
            timeout=30,
        )
        assert "on bo's server, which signs as bo" in error(refused, 403)
    with Store.open(root / ".mlops", create=False) as store:
        assert Registry(store).request(seeded["request"]).approvals == []


def test_auth_paths_and_broken_stores(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    for endpoint in (
        "experiments", "runs", "columns", "compare", "models", "requests", "cards/abcd",
        "runs/abcd/metrics/x",
    ):  # fmt: skip
        assert requests.get(running.api(API + endpoint), timeout=30).status_code == 403
    assert requests.post(running.api(API + "requests/1/approve"), timeout=30).status_code == 403
    assert "outside the server root" in error(get(running, "runs", path="../.."), 403)
    assert "no store yet" in error(get(running, "runs", path="fresh"), 404)
    message = error(get(running, "runs", path="broken"), 500)
    assert message.startswith("the store cannot be read:") and "store.db" in message
    assert get(running, "runs").status_code == 200  # the server keeps serving
    assert "Traceback" not in running.log()


LONG = "a" * 5000
HOSTILE = [
    ("runs", {"offset": "9223372036854775808"}, "offset must be at most 9223372036854775807"),
    ("runs", {"offset": "1" + "0" * 40}, "offset must be an integer"),
    ("runs", {"limit": "-9223372036854775809"}, "limit must be >= 0"),
    ("runs", {"path": LONG}, "path is 5000 characters long; at most 1024"),
    ("runs", {"path": "/".join(["b" * 300] * 3)}, "bad path: File name too long"),
    ("experiments", {"path": LONG}, "path is 5000 characters long"),
    ("store", {"path": LONG}, "path is 5000 characters long"),
    ("models", {"path": LONG}, "path is 5000 characters long"),
    ("requests", {"limit": "99999999999999999999999"}, "limit must be an integer"),
    ("runs", {"filter": "metrics.accuracy>=1e999999"}, ""),
    ("runs", {"filter": "params.depth=" + "9" * 40}, ""),
]


@pytest.mark.parametrize(("endpoint", "params", "message"), HOSTILE)
def test_oversized_input_is_400_not_500(
    server: tuple[RunningServer, dict[str, Any]],
    endpoint: str,
    params: dict[str, str],
    message: str,
) -> None:
    running, _ = server
    response = get(running, endpoint, **params)
    if message:
        assert message in error(response, 400)
    else:  # a valid query that matches nothing
        assert response.status_code in (200, 400), response.text
    assert "Traceback" not in running.log()


def test_oversized_ids_are_400_not_500(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    response = requests.post(
        running.api(API + "requests/" + "9" * 40 + "/approve"),
        json={"comment": "x"},
        headers={"Authorization": f"token {running.token}"},
        timeout=30,
    )
    assert "the request id must be an integer, got '99999" in error(response, 400)
    assert "no run with id" in error(get(running, "runs/" + "f" * 64), 404)
    assert error(get(running, "cards/" + "x" * 5000), 404)
    assert "Traceback" not in running.log()


def test_a_symlinked_store_outside_the_root_is_refused(
    server: tuple[RunningServer, dict[str, Any]], tmp_path: Path
) -> None:
    running, _ = server
    with Store.open(tmp_path / "elsewhere" / ".mlops") as outside:
        outside.record_run("SECRET-outside-root")
    notebook_dir = running.root / "nb2"
    notebook_dir.mkdir()
    (notebook_dir / "pyproject.toml").write_text(OWN_PROJECT)
    (notebook_dir / ".mlops").symlink_to(tmp_path / "elsewhere" / ".mlops")
    for endpoint in ("experiments", "runs", "models", "store"):
        message = error(get(running, endpoint, path="nb2"), 403)
        assert "outside the server root" in message and str(tmp_path / "elsewhere") in message
    assert "SECRET" not in running.log()


def test_a_killed_kernels_run_is_interrupted_while_the_server_keeps_the_store_open(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    import signal
    import subprocess
    import sys
    import time

    running, _ = server
    assert get(running, "runs").status_code == 200  # the server has the store open now
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom mlops_jupyter import Store\n"
         f"store = Store.open({str(find_store(running.root))!r}, start={str(running.root)!r})\n"
         "print(store.create_run('killed-kernel', name='victim'), flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    run_id = writer.stdout.readline().strip()
    assert get(running, f"runs/{run_id}").json()["status"] == "running"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    killed_at = time.monotonic()
    status = "running"
    while status == "running" and time.monotonic() - killed_at < 5:
        status = get(running, f"runs/{run_id}").json()["status"]
    assert status == "interrupted"
    body = get(running, f"runs/{run_id}").json()
    assert body["error"] == "the process running it exited"
