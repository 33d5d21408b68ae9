"""The endpoints of the panel's analysis views against a real Jupyter server, on an SQLite
store and on a PostgreSQL team store: tag and note edits (XSRF-checked), several runs' curves
and sparklines, the code diff of two runs, the CSV export of a filtered listing, the run view's
fields, and the models view's times and "compare with production"."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from server_helpers import RunningServer, running_server
from test_rest import API, error, get, open_project, server_key

from mlops_jupyter.capture.hashing import hash_data
from mlops_jupyter.capture.profile import describe
from mlops_jupyter.config import current_user
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store.records import DatasetLink

pytestmark = pytest.mark.slow

LONG_STEPS = 10_000
POLICY = """[tiers.low.production]
signoffs = 1
[tiers.medium.production]
signoffs = 1
metrics = ["val_auc >= 0.99"]
"""


def _loss(step: int) -> float:
    return 2.0 / (step + 1) + math.sin(step / 50) / 10


def seed(root: Path, home: Path, team_store: str | None) -> dict[str, Any]:
    """Runs A (a 10,000-step loss, data, environment, code), B (a 200-step loss with a NaN,
    other code), C (no loss, no code) and 50 runs with a 40-step loss; a model ``churn`` whose
    v1 (run A) was promoted and then archived by v2 (run B), v3 (run C) pending and v4 (run
    C) rejected; a model ``strict`` whose request its gates blocked."""
    root.mkdir(parents=True, exist_ok=True)
    if team_store is not None:
        (root / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{team_store}"\n')
    (root / ".mlops").mkdir(exist_ok=True)
    (root / ".mlops" / "policy.toml").write_text(POLICY)
    bo = server_key(root, home, "bo")
    ana = generate_key(root.parent / f"{root.name}-keys" / "ana", comment="ana")
    add_signer(root / ".mlops" / "allowed_signers", "ana", ana.key_blob)
    frame = pd.DataFrame({"age": [31, 45, 27, 60], "plan": ["a", "b", "a", "c"]})
    shape, schema, profile = describe(frame)
    data = DatasetLink(hash_data(frame), "train", "X", "DataFrame", shape, schema, profile)
    history = [
        {"execution_count": 1, "source": "import pandas as pd"},
        {"execution_count": 2, "source": "X = load()\ny = X.pop('churn')"},
    ]
    out: dict[str, Any] = {}
    with open_project(root) as store:
        a = store.create_run(
            "churn",
            name="base",
            source="%%track\nfit(X, y, lr=0.1)",
            execution_count=3,
            started_at=1_800_000_000,
        )
        store.finish_run(
            a,
            params={"lr": 0.1, "feature_set": "base"},
            metrics=[*(("loss", _loss(s), s) for s in range(LONG_STEPS)), ("val_auc", 0.81, 0)],
            datasets=[data],
            environment={
                "python": "3.11.2",
                "platform": "Linux-x86_64",
                "packages": {"scikit-learn": "1.5.0", "pandas": "2.2.2"},
            },
            git_commit="0123456789abcdef0123456789abcdef01234567",
            git_dirty=True,
            history=history,
            ended_at=1_800_000_012.5,
        )
        store.add_tags(a, {"owner": "ana", "stage": "draft"})
        store.add_artifact(a, "model", b"the model of run a", kind="model")
        store.add_artifact(
            a, "roc.png", b"\x89PNG not really", kind="figure", media_type="image/png"
        )
        b = store.create_run(
            "churn", name="=1+2", source="%%track\nfit(X, y, lr=0.01)", started_at=1_800_000_100
        )
        points = [("loss", _loss(s), s) for s in range(200)]
        points[50] = ("loss", float("nan"), 50)
        store.finish_run(
            b,
            params={"lr": 0.01, "feature_set": "-usage"},
            metrics=[*points, ("val_auc", -0.5, 0)],
            history=[*history[:1], {"execution_count": 2, "source": "X = load2()"}],
        )
        store.add_artifact(b, "model", b"the model of run b", kind="model")
        c = store.record_run(
            "churn",
            name="no code",
            params={"lr": 1.0},
            metrics={"val_auc": 0.7},
            started_at=1_800_000_200,
        )
        store.add_artifact(c, "model", b"the model of run c", kind="model")
        many = [
            store.record_run(
                "sweep",
                name=f"s{i}",
                params={"lr": i / 100},
                metrics=[("loss", (i + 1) / (s + 1), s) for s in range(40)],
                started_at=1_800_001_000 + i,
            )
            for i in range(50)
        ]
        as_ana, as_bo = Registry(store, ana), Registry(store, bo)
        for run_id in (a, b):
            version = as_ana.register(run_id, "churn", risk_tier="low").version
            request = as_ana.request_promotion("churn", version, "production", f"v{version}")
            assert as_bo.approve(request.id, f"fine, v{version}").status == "applied"
        as_ana.register(c, "churn")
        pending = as_ana.request_promotion("churn", 3, "production", "v3 please")
        as_ana.register(c, "churn")
        rejected = as_ana.request_promotion("churn", 4, "production", "v4 please")
        assert as_bo.reject(rejected.id, "not this one").status == "rejected"
        as_ana.register(c, "strict", risk_tier="medium")
        blocked = as_ana.request_promotion("strict", 1, "production", "strict please")
        assert blocked.status == "blocked"
        out["audit"] = store.audit_entries()
    out.update(
        a=a,
        b=b,
        c=c,
        many=many,
        data=data,
        pending=pending.id,
        rejected=rejected.id,
        blocked=blocked.id,
    )
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("analysisroot")
    home = tmp_path_factory.mktemp("analysishome")
    team_store = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        team_store = cluster.url(cluster.create_database())
    seeded = seed(root, home, team_store)
    with running_server(root, home) as running:
        yield running, seeded
        log = running.log()
    assert "Traceback" not in log, log


def post(server: RunningServer, endpoint: str, body: Any, **params: Any) -> requests.Response:
    return requests.post(
        server.api(API + endpoint),
        params=params,
        data=body if isinstance(body, bytes) else json.dumps(body),
        headers={"Authorization": f"token {server.token}"},
        timeout=30,
    )


# --------------------------------------------------------------------- the panel's view
def test_the_panel_view_is_the_five_answers_in_one(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    """`GET panel` answers what `store`, `experiments`, `columns`, `experiments/settings` and
    `runs` answer, asked apart with the same arguments."""
    running, _ = server
    query = {"experiment": "churn", "sort": "-metrics.val_auc", "limit": "2", "offset": "1"}
    view = get(running, "panel", **query, filter="metrics.val_auc >= -1")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["store"] == get(running, "store").json()
    assert body["experiments"] == get(running, "experiments").json()["experiments"]
    assert body["experiment"] == "churn"
    assert body["columns"] == get(running, "columns", experiment="churn").json()
    settings = get(running, "experiments/settings", experiment="churn").json()
    assert body["settings"] == {
        "experiment": "churn",
        "primary_metric": settings["primary_metric"],
        "directions": settings["directions"],
    }
    runs = get(running, "runs", **query, filter="metrics.val_auc >= -1").json()
    assert body["runs"] == runs and len(runs["runs"]) == 2, runs
    assert body["runs_error"] is None


def test_the_panel_view_of_a_gone_experiment_is_all_of_them(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, _ = server
    body = get(running, "panel", experiment="deleted-since", limit="3").json()
    assert (body["experiment"], body["settings"]) == ("", None)
    assert body["columns"] == get(running, "columns").json()
    assert body["runs"] == get(running, "runs", limit="3").json()


def test_a_bad_filter_in_the_panel_view_says_why_and_answers_the_rest(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, _ = server
    bad = "metrics.val_auc >= high"
    body = get(running, "panel", experiment="churn", filter=bad).json()
    assert body["runs"] is None
    assert body["runs_error"] == error(get(running, "runs", filter=bad), 400)
    assert body["runs_error"].startswith("bad filter")
    assert body["experiment"] == "churn" and body["columns"]["metrics"]


# --------------------------------------------------------------------------- tags
def test_a_tag_edit_persists_and_the_listing_follows_it(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    a = seeded["a"]
    assert get(running, "runs", filter="tags.owner = ana").json()["total"] == 1  # warm index
    note = "Tried the base feature set.\n" + "x" * 4000
    done = post(
        running,
        f"runs/{a[:8]}/tags",
        {"set": {"note": note, "owner": "bo"}, "delete": ["stage", "never-there"]},
    )
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["run_id"], answer["tags"]) == (a, {"note": note, "owner": "bo"})
    # the seeding's edit, then this one: a key per row, with who (the server's owner) and when
    edits = [(e["key"], e["value"], e["previous"], e["user"]) for e in answer["tag_history"]]
    owner = answer["tag_history"][0]["user"]
    assert owner == current_user()
    assert edits == [
        ("owner", "ana", None, owner),
        ("stage", "draft", None, owner),
        ("note", note, None, owner),
        ("owner", "bo", "ana", owner),
        ("stage", None, "draft", owner),
    ]
    seeded_at, edited_at = (datetime.fromisoformat(answer["tag_history"][i]["at"]) for i in (0, 2))
    assert seeded_at.tzinfo == timezone.utc and seeded_at <= edited_at
    body = get(running, f"runs/{a}", history="0").json()
    assert body["tags"] == {"note": note, "owner": "bo"}
    assert body["tag_history"] == answer["tag_history"]
    assert get(running, "runs", filter="tags.owner = ana").json()["total"] == 0
    [listed] = get(running, "runs", filter="tags.owner = bo").json()["runs"]
    assert listed["run_id"] == a and listed["tags"]["note"] == note
    back = post(
        running, f"runs/{a}/tags", {"set": {"owner": "ana", "stage": "draft"}, "delete": ["note"]}
    )
    assert back.json()["tags"] == {"owner": "ana", "stage": "draft"}
    assert post(running, f"runs/{a}/tags", {}).json()["tags"] == {"owner": "ana", "stage": "draft"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "the body must be JSON"),
        ([1], "the body must be a JSON object"),
        ({"add": {}}, "unknown field 'add'"),
        ({"set": ["a"]}, '"set" must be an object of tag names to text values'),
        ({"delete": "a"}, '"delete" must be a list of tag names'),
        ({"set": {"": "x"}}, "a tag name must be a non-empty string, got ''"),
        ({"delete": [" "]}, "a tag name must be a non-empty string"),
        ({"delete": [3]}, "a tag name must be a non-empty string, got '3'"),
        ({"set": {"k" * 251: "x"}}, "is 251 characters long; at most 250 are accepted"),
        ({"set": {"owner": 3}}, "the value of tag 'owner' must be a string, got int"),
        ({"set": {"owner": None}}, "the value of tag 'owner' must be a string, got null"),
        ({"set": {"note": "x" * 5001}}, "tag 'note' is 5001 characters long; at most 5000"),
        (
            {"set": {f"k{i}": "v" for i in range(60)}, "delete": [f"d{i}" for i in range(41)]},
            "at most 100 tags can be set or deleted at once, got 101",
        ),
        ({"set": {"owner": "x"}, "delete": ["owner"]}, "tag 'owner' is both set and deleted"),
    ],
)
def test_bad_tag_edits_are_400(
    server: tuple[RunningServer, dict[str, Any]], body: Any, message: str
) -> None:
    running, seeded = server
    assert message in error(post(running, f"runs/{seeded['c']}/tags", body), 400)
    assert get(running, f"runs/{seeded['c']}").json()["tags"] == {}


def test_a_tag_edit_of_an_unknown_run_is_404(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, _ = server
    response = post(running, "runs/ffffffff/tags", {"set": {"a": "b"}})
    assert "no run with id 'ffffffff'" in error(response, 404)


def test_tag_posts_need_the_xsrf_token_of_a_cookie_session(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    url = running.api(API + f"runs/{seeded['c']}/tags")
    body = {"set": {"reviewed": "yes"}}
    assert requests.post(url, json=body, timeout=30).status_code == 403  # nobody
    session = requests.Session()
    session.get(running.api(f"lab?token={running.token}"), timeout=30)  # a browser's login
    refused = session.post(url, json=body, timeout=30)
    assert refused.status_code == 403
    assert get(running, f"runs/{seeded['c']}").json()["tags"] == {}
    xsrf = {"X-XSRFToken": session.cookies["_xsrf"]}
    done = session.post(url, json=body, headers=xsrf, timeout=30)
    assert done.status_code == 200 and done.json()["tags"] == {"reviewed": "yes"}
    undone = post(running, f"runs/{seeded['c']}/tags", {"delete": ["reviewed"]})  # token auth
    assert undone.status_code == 200 and undone.json()["tags"] == {}


# ------------------------------------------------------------------------- curves
def test_curves_of_several_runs(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    a, b, c = seeded["a"], seeded["b"], seeded["c"]
    body = get(running, "curves", ids=f"{a[:8]},{b},{c}", key="loss").json()
    assert body["key"] == "loss"
    assert [(r["run_id"], r["name"], r["total"]) for r in body["runs"]] == [
        (a, "base", LONG_STEPS),
        (b, "=1+2", 200),
        (c, "no code", 0),
    ]
    long, short, empty = body["runs"]
    raw = [_loss(s) for s in range(LONG_STEPS)]
    assert len(long["steps"]) <= 5000
    assert long["steps"][0] == 0 and long["steps"][-1] == LONG_STEPS - 1
    assert all(x < y for x, y in zip(long["steps"], long["steps"][1:], strict=False))
    assert long["values"] == [raw[s] for s in long["steps"]]
    assert (min(long["values"]), max(long["values"])) == (min(raw), max(raw))
    assert short["steps"] == list(range(200)) and short["values"][50] == "NaN"
    assert short["values"][:50] == [_loss(s) for s in range(50)]
    assert (empty["steps"], empty["values"]) == ([], [])
    few = get(running, "curves", ids=a, key="loss", points=100).json()["runs"][0]
    assert len(few["steps"]) <= 100 and few["total"] == LONG_STEPS
    assert (min(few["values"]), max(few["values"])) == (min(raw), max(raw))
    whole = get(running, "curves", ids=a, key="loss", points=100_000).json()["runs"][0]
    assert whole["steps"] == list(range(LONG_STEPS)) and whole["values"] == raw


def test_sparklines_of_fifty_runs(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    ids = seeded["many"]
    runs = get(running, "curves", ids=",".join(ids), key="loss", points=32).json()["runs"]
    assert [r["run_id"] for r in runs] == ids
    for i, run in enumerate(runs):
        assert run["total"] == 40 and len(run["steps"]) <= 32
        assert (run["steps"][0], run["steps"][-1]) == (0, 39)
        assert (max(run["values"]), min(run["values"])) == (i + 1.0, (i + 1) / 40)


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"key": "loss"}, 400, "ids is required: run ids separated by commas"),
        (
            {"ids": ",".join(f"{i:08x}" for i in range(101)), "key": "loss"},
            400,
            "ids takes at most 100 runs, got 101",
        ),
        ({"ids": "RUN_A"}, 400, "Missing argument key"),
        ({"ids": "RUN_A", "key": "loss", "points": 1}, 400, "points must be between 2 and 100000"),
        ({"ids": "RUN_A", "key": "loss", "points": 100_001}, 400, "got 100001"),
        ({"ids": "RUN_A", "key": "loss", "points": "many"}, 400, "points must be an integer"),
        ({"ids": "RUN_A,ffffffff", "key": "loss"}, 404, "no run with id 'ffffffff'"),
        ({"ids": "not-hex", "key": "loss"}, 404, "run ids are hexadecimal"),
    ],
)
def test_bad_curve_queries(
    server: tuple[RunningServer, dict[str, Any]], params: dict[str, Any], status: int, message: str
) -> None:
    running, seeded = server
    params = {k: str(v).replace("RUN_A", seeded["a"]) for k, v in params.items()}
    assert message in error(get(running, "curves", **params), status)


def test_curve_keys_are_the_metrics_with_curves(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    a, b, c = seeded["a"], seeded["b"], seeded["c"]
    assert get(running, "curves/keys", ids=f"{a},{c}").json() == {"keys": ["loss"]}
    assert get(running, "curves/keys", ids=c).json() == {"keys": []}
    assert get(running, "curves/keys", ids=",".join(seeded["many"][:3])).json()["keys"] == ["loss"]
    assert "no run with id 'ffffffff'" in error(
        get(running, "curves/keys", ids=f"{b},ffffffff"), 404
    )


# ---------------------------------------------------------------------- code diff
def test_the_code_diff_of_two_runs(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    a, b, c = seeded["a"], seeded["b"], seeded["c"]
    body = get(running, "diff", a=a[:8], b=b).json()
    assert body["a"] == {"run_id": a, "name": "base", "started_at": "2027-01-15T08:00:00+00:00"}
    assert body["b"] == {"run_id": b, "name": "=1+2", "started_at": "2027-01-15T08:01:40+00:00"}
    assert (body["same_cell"], body["same_history"]) == (False, False)
    assert body["cell"] == {
        "lines": [
            {"op": " ", "a": 1, "b": 1, "text": "%%track"},
            {"op": "-", "a": 2, "b": None, "text": "fit(X, y, lr=0.1)"},
            {"op": "+", "a": None, "b": 2, "text": "fit(X, y, lr=0.01)"},
        ],
        "added": 1,
        "removed": 1,
    }
    assert body["history"] == {
        "lines": [
            {"op": "@@", "a": None, "b": None, "text": "@@ -2,5 +2,4 @@"},
            {"op": " ", "a": 2, "b": 2, "text": "import pandas as pd"},
            {"op": " ", "a": 3, "b": 3, "text": ""},
            {"op": " ", "a": 4, "b": 4, "text": "# In [2]:"},
            {"op": "-", "a": 5, "b": None, "text": "X = load()"},
            {"op": "-", "a": 6, "b": None, "text": "y = X.pop('churn')"},
            {"op": "+", "a": None, "b": 5, "text": "X = load2()"},
        ],
        "added": 1,
        "removed": 2,
    }
    bare = get(running, "diff", a=c, b=c).json()
    assert bare["cell"] == {"lines": [], "added": 0, "removed": 0} and bare["same_cell"]
    assert bare["history"]["lines"] == [] and bare["same_history"]
    assert "no run with id 'ffffffff'" in error(get(running, "diff", a=a, b="ffffffff"), 404)
    assert "Missing argument b" in error(get(running, "diff", a=a), 400)


# ---------------------------------------------------------------------------- CSV
def _csv(response: requests.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def _all_pages(running: RunningServer, **params: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    while True:
        page = get(running, "runs", limit=7, offset=len(runs), **params).json()
        runs += page["runs"]
        if len(runs) >= page["total"]:
            return runs


def test_the_csv_export_is_the_filtered_listing(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    query = {"filter": "metrics.loss < 0.5", "sort": "-params.lr"}
    columns = "params.lr,metrics.loss,metrics.val_auc,tags.owner,train_hash"
    response = get(running, "runs.csv", columns=columns, **query)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="runs-all.csv"'
    rows = _csv(response)
    assert rows[0] == [
        "run_id",
        "name",
        "experiment",
        "status",
        "started_at",
        "duration_s",
        *columns.split(","),
    ]
    listed = _all_pages(running, **query)
    assert len(listed) == 21  # 19 sweep runs with a last loss under 0.5, and runs A and B
    assert [r[0] for r in rows[1:]] == [r["run_id"] for r in listed]
    for row, run in zip(rows[1:], listed, strict=True):
        assert row[4] == run["started_at"] and row[6] == repr(run["params"]["lr"])
        assert row[7] == repr(run["metrics"]["loss"])
    by_id = {r[0]: r for r in rows[1:]}
    a, b = by_id[seeded["a"]], by_id[seeded["b"]]
    assert a[1:6] == ["base", "churn", "finished", "2027-01-15T08:00:00+00:00", "12.5"]
    assert a[8:] == ["0.81", "ana", seeded["data"].hash]
    assert (b[1], b[8], b[9], b[10]) == ("'=1+2", "-0.5", "", "")  # text guarded, number not


def test_the_csv_export_of_one_experiment(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    response = get(running, "runs.csv", experiment="churn", columns="params.feature_set")
    assert response.headers["Content-Disposition"] == 'attachment; filename="runs-churn.csv"'
    rows = _csv(response)
    assert [r[0] for r in rows[1:]] == [seeded["c"], seeded["b"], seeded["a"]]  # newest first
    assert [r[6] for r in rows[1:]] == ["", "'-usage", "base"]
    odd = get(running, "runs.csv", experiment='Q3 "final"/é')
    assert odd.headers["Content-Disposition"] == (
        'attachment; filename="runs-Q3 _final___.csv"; '
        "filename*=UTF-8''runs-Q3%20%22final%22%2F%C3%A9.csv"
    )
    assert _csv(odd) == [["run_id", "name", "experiment", "status", "started_at", "duration_s"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "oops"}, "bad filter 'oops'"),
        ({"sort": "nope"}, "cannot order runs by 'nope'"),
        ({"columns": "params.lr,lr"}, "bad column 'lr': use params.KEY, metrics.KEY, tags.KEY"),
        ({"columns": "metrics."}, "bad column 'metrics.'"),
    ],
)
def test_a_bad_csv_export_is_a_json_400(
    server: tuple[RunningServer, dict[str, Any]], params: dict[str, str], message: str
) -> None:
    running, _ = server
    response = get(running, "runs.csv", **params)
    assert response.headers["Content-Type"] == "application/json"
    assert message in error(response, 400)


# ----------------------------------------------------------------------- run view
def test_the_run_view_has_everything_it_shows(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    a = seeded["a"]
    body = get(running, f"runs/{a}").json()
    assert body["params"] == {"feature_set": "base", "lr": 0.1}
    assert body["metrics"]["val_auc"] == 0.81 and body["metrics"]["loss"] == _loss(LONG_STEPS - 1)
    assert len(body["metric_history"]["loss"]) == LONG_STEPS  # the default is unchanged
    assert body["curves"] == {"loss": LONG_STEPS, "val_auc": 1}
    assert body["tags"]["owner"] == "ana"
    assert [{k: h[k] for k in ("execution_count", "source")} for h in body["history"]] == [
        {"execution_count": 1, "source": "import pandas as pd"},
        {"execution_count": 2, "source": "X = load()\ny = X.pop('churn')"},
    ]
    assert (body["code"], body["execution_count"]) == ("%%track\nfit(X, y, lr=0.1)", 3)
    [data] = body["datasets"]
    assert (data["hash"], data["role"], data["variable"], data["shape"]) == (
        seeded["data"].hash,
        "train",
        "X",
        [4, 2],
    )
    assert data["profile"]["columns"]["age"]["max"] == 60
    assert data["profile"]["columns"]["plan"]["top"][0] == ["a", 2]
    assert [(x["name"], x["kind"], x["size"], x["media_type"]) for x in body["artifacts"]] == [
        ("model", "model", 18, None),
        ("roc.png", "figure", 15, "image/png"),
    ]
    assert body["environment"]["python"] == "3.11.2"
    assert body["environment"]["packages"] == {"pandas": "2.2.2", "scikit-learn": "1.5.0"}
    assert (body["git_commit"], body["git_dirty"]) == ("0123456789abcdef" * 2 + "01234567", True)
    assert body["model_versions"] == [
        {"model": "churn", "version": 1, "stage": "archived", "blob": body["artifacts"][0]["blob"]}
    ]
    assert body["registry_problem"] is None
    small = get(running, f"runs/{a}", history="0").json()
    assert "metric_history" not in small and small["curves"] == body["curves"]
    assert {k: v for k, v in small.items() if k != "metric_history"} == {
        k: v for k, v in body.items() if k != "metric_history"
    }
    assert len(json.dumps(small)) < len(json.dumps(body)) / 10
    assert "history must be 0 or 1, got 'maybe'" in error(
        get(running, f"runs/{a}", history="maybe"), 400
    )
    nan = get(running, f"runs/{seeded['b']}", history="0").json()
    assert nan["metrics"]["loss"] == _loss(199) and nan["curves"]["loss"] == 200


# --------------------------------------------------------------------- models view
def test_requests_and_versions_carry_their_times(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    when = {(e[3], json.loads(e[5]).get("request")): (e[1], e[2]) for e in seeded["audit"]}
    requests_ = {r["id"]: r for r in get(running, "requests").json()["requests"]}
    assert len(requests_) == 5
    for request in requests_.values():
        assert request["created_at"] == when[("request", request["id"])][0]
    first, second = requests_[1], requests_[2]
    assert (first["status"], first["decided_at"], first["decided_by"]) == (
        "applied",
        when[("transition", 1)][0],
        "bo",
    )
    [signoff] = first["signoffs"]
    assert (signoff["comment"], signoff["time"]) == ("fine, v1", when[("approve", 1)][0])
    assert first["comment"] == "v1"
    assert second["decided_at"] == when[("transition", 2)][0]
    pending, rejected = requests_[seeded["pending"]], requests_[seeded["rejected"]]
    assert (pending["status"], pending["decided_at"], pending["decided_by"]) == (
        "pending",
        None,
        None,
    )
    assert (rejected["decided_at"], rejected["decided_by"]) == (
        when[("reject", seeded["rejected"])][0],
        "bo",
    )
    assert rejected["signoffs"][0]["comment"] == "not this one"
    blocked = requests_[seeded["blocked"]]
    assert (blocked["status"], blocked["decided_at"]) == ("blocked", blocked["created_at"])
    [churn, strict] = get(running, "models").json()["models"]
    moved = {v["version"]: (v["stage"], v["stage_changed_at"]) for v in churn["versions_list"]}
    assert moved == {
        1: ("archived", when[("transition", 2)][0]),  # archived when v2 went to production
        2: ("production", when[("transition", 2)][0]),
        3: ("none", None),
        4: ("none", None),
    }
    assert strict["versions_list"][0]["stage_changed_at"] is None


def test_compare_with_production(server: tuple[RunningServer, dict[str, Any]]) -> None:
    running, seeded = server
    answer = get(running, "models/churn/versions/3/production").json()
    assert answer == {
        "model": "churn",
        "candidate": {"version": 3, "run_id": seeded["c"], "stage": "none"},
        "production": {"version": 2, "run_id": seeded["b"], "stage": "production"},
    }
    own = get(running, "models/churn/versions/2/production").json()
    assert own["candidate"] == own["production"]
    assert get(running, "models/strict/versions/1/production").json()["production"] is None
    assert "no version 9 of model 'churn'" in error(
        get(running, "models/churn/versions/9/production"), 404
    )
    assert "no model named 'nope' is registered" in error(
        get(running, "models/nope/versions/1/production"), 404
    )
    compared = get(running, "compare", ids="churn:3,churn:2").json()
    assert [r["run_id"] for r in compared["runs"]] == [seeded["c"], seeded["b"]]
    mixed = get(running, "compare", ids=f"{seeded['a']},churn:2").json()
    assert [r["run_id"] for r in mixed["runs"]] == [seeded["a"], seeded["b"]]
    assert "no version 9 of model 'churn'" in error(
        get(running, "compare", ids="churn:9,churn:1"), 404
    )
    assert "the version of 'churn:x' must be an integer" in error(
        get(running, "compare", ids="churn:x,churn:1"), 400
    )


def test_the_new_endpoints_need_authentication(
    server: tuple[RunningServer, dict[str, Any]],
) -> None:
    running, seeded = server
    for endpoint in (
        f"curves?ids={seeded['a']}&key=loss",
        f"curves/keys?ids={seeded['a']}",
        f"diff?a={seeded['a']}&b={seeded['b']}",
        "runs.csv",
        "models/churn/versions/1/production",
        f"runs/{seeded['a']}?history=0",
    ):
        assert requests.get(running.api(API + endpoint), timeout=30).status_code == 403
