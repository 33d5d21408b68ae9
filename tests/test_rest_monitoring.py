"""``GET models/<name>/monitoring``: a model's monitored batches per version, for the Models
view's drift strip, against a real Jupyter server and batches recorded with ``record_batch``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from monitoring_helpers import (
    FEATURES,
    POLICY,
    add_labels,
    batch_of,
    expected_feature,
    in_production,
    record_three,
    signers,
)
from server_helpers import RunningServer, running_server

from mlops_jupyter.monitoring import BatchReport, record_batch
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.server.monitoring import monitoring_payload
from mlops_jupyter.store import Store

pytestmark = pytest.mark.slow
API = "mlops-jupyter/api/"
PREDICTION = ("feature", "status", "psi", "test", "statistic", "p_value")  # what is sent of it


@pytest.fixture(scope="module")
def monitored(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    """churn:1 in production with three batches (the second drifting in age, its labels
    arriving twice later), a model "idle" without batches, and a running server."""
    root = tmp_path_factory.mktemp("monitorroot")
    keys = signers(root.parent / f"{root.name}-keys", root / ".mlops")
    with Store.open(root / ".mlops") as store:
        in_production(store, keys)
        reports = record_three(store, keys)
        add_labels(store, keys["ana"], "2030-01-02", 0.5)
        latest_labels = add_labels(store, keys["ana"], "2030-01-02", 0.75)
        in_production(store, keys, model="idle")
    (root / "fresh" / ".mlops").mkdir(parents=True)  # a project of its own, nothing tracked
    (root / "fresh" / "pyproject.toml").write_text("[project]\nname = 'fresh'\n")
    home = tmp_path_factory.mktemp("monitorhome")
    with running_server(root, home) as running:
        yield running, {"reports": reports, "labels": latest_labels, "keys": keys}
        assert "Traceback" not in running.log()


def get(server: RunningServer, endpoint: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"token {server.token}"}
    return requests.get(server.api(API + endpoint), params=params, headers=headers, timeout=30)


def error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["status"] == status
    return str(body["error"]["message"])


def expected_batch(report: BatchReport, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    prediction = report.predictions
    return {
        "id": report.id,
        "batch_id": report.batch_id,
        "created_at": report.created_at,
        "n_rows": report.rows,
        "stage": "production",
        "decision": report.decision,
        "drift_share": report.drift_share,
        "features": [expected_feature(f) for f in report.features],
        "predictions": None if prediction is None else {k: prediction[k] for k in PREDICTION},
        "performance": report.performance,
        "labels": labels,
        "recorded_by": "ana",
    }


def test_the_payload_is_every_batch_oldest_first_with_its_labels(
    monitored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, seeded = monitored
    calm, drifting, small = seeded["reports"]
    response = get(server, "models/churn/monitoring")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["limit"]) == ("churn", 50)
    [version] = body["versions"]
    assert {k: version[k] for k in ("version", "stage", "total", "shown", "features")} == {
        "version": 1, "stage": "production", "total": 3, "shown": 3, "features": FEATURES,
    }  # fmt: skip
    assert version["latest"] == {"id": small.id, "created_at": small.created_at,
                                 "decision": "ok", "drift_share": 0.0}  # fmt: skip
    labels = seeded["labels"]  # the later of the two labels rows of the drifting batch
    merged = {k: labels[k] for k in ("id", "created_at", "n_rows", "decision", "performance")}
    merged.update(predictions=None, recorded_by="ana")
    assert version["batches"] == [
        expected_batch(calm),
        expected_batch(drifting, merged),
        expected_batch(small),
    ]
    # the recorded batches themselves: age drifts in the second only, which is why it drifts
    statuses = [[f["status"] for f in b["features"]] for b in version["batches"]]
    assert statuses == [["ok", "ok", "ok"], ["drift", "ok", "ok"], ["ok", "ok", "ok"]]
    shifted = version["batches"][1]
    assert [b["drift_share"] for b in version["batches"]] == [0.0, 1 / 3, 0.0]
    assert shifted["decision"] == "drift"  # the predictions drift too (always 0)
    assert shifted["features"][0]["psi"] == drifting.features[0]["psi"] > 0.25
    assert shifted["features"][0]["test"] == "ks" and shifted["features"][0]["p_value"] < 0.01
    assert shifted["features"][2]["test"] == "chi2"
    assert shifted["predictions"]["feature"] == "churned"
    assert shifted["predictions"]["status"] == "drift"
    assert shifted["performance"]["metrics"]["accuracy"]["reference"] == 0.7
    assert shifted["labels"]["performance"]["metrics"]["accuracy"]["value"] == 0.75
    assert "profile" not in shifted and "thresholds" not in shifted  # never sent


def test_limit_keeps_the_latest_batches_and_counts_all(
    monitored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, seeded = monitored
    [version] = get(server, "models/churn/monitoring", limit="2").json()["versions"]
    assert (version["total"], version["shown"]) == (3, 2)
    assert [b["id"] for b in version["batches"]] == [r.id for r in seeded["reports"][1:]]
    for bad, message in [
        ("0", "limit must be >= 1, got 0"),
        ("501", "limit must be between 1 and 500, got 501"),
        ("many", "limit must be an integer, got 'many'"),
    ]:
        assert error(get(server, "models/churn/monitoring", limit=bad), 400) == message


def test_a_model_without_batches_has_no_versions_to_show(
    monitored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, _ = monitored
    response = get(server, "models/idle/monitoring")
    assert response.status_code == 200, response.text
    assert response.json() == {"model": "idle", "limit": 50, "versions": []}


def test_an_unknown_model_is_a_404_and_every_request_needs_authentication(
    monitored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, _ = monitored
    message = error(get(server, "models/no%20such%3Cmodel%3E/monitoring"), 404)
    assert message == "no model named 'no such<model>' is registered"
    assert "no store yet" in error(get(server, "models/churn/monitoring", path="fresh"), 404)
    anonymous = requests.get(server.api(API + "models/churn/monitoring"), timeout=30)
    assert anonymous.status_code == 403
    assert anonymous.json()["error"]["status"] == 403
    assert "outside the server root" in error(
        get(server, "models/churn/monitoring", path="../.."), 403
    )


def test_a_batch_recorded_while_the_server_runs_shows_on_the_next_request(
    monitored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, seeded = monitored
    assert get(server, "models/churn/monitoring").json()["versions"][0]["total"] == 3
    with Store.open(server.root / ".mlops", create=False) as store:
        registry = Registry(store, seeded["keys"]["ana"], POLICY)
        added = record_batch(registry, "idle", batch_of(9, n=200), batch_id="late")
    [version] = get(server, "models/idle/monitoring").json()["versions"]
    assert (version["total"], [b["batch_id"] for b in version["batches"]]) == (1, ["late"])
    assert version["latest"]["id"] == added.id
    assert get(server, "models/churn/monitoring").json()["versions"][0]["total"] == 3


def _row(version: int, batch_id: str, created_at: float, kind: str | None) -> dict[str, Any]:
    row = {"id": f"{batch_id}-{kind}-{created_at}", "version": version, "batch_id": batch_id,
           "created_at": created_at, "n_rows": 10, "stage": "production", "decision": "ok",
           "drift_share": 0.0, "features": [], "predictions": None,
           "performance": {"n": int(created_at)}, "recorded_by": "ana"}  # fmt: skip
    if kind is not None:  # a row written before labels rows existed has no kind
        row["kind"] = kind
    return row


def test_versions_production_first_and_labels_rows_never_in_the_strip() -> None:
    rows = [  # newest first, as the store gives them
        _row(1, "b", 9.0, "labels"),
        _row(2, "a", 8.0, "batch"),
        _row(1, "b", 7.0, "labels"),
        _row(1, "b", 6.0, None),
        _row(3, "c", 5.0, "batch"),
        _row(1, "a", 4.0, None),
    ]
    stages = {1: "archived", 2: "staging", 3: "production", 4: "none"}
    payload = monitoring_payload("m", stages, rows, limit=50)
    assert [(v["version"], v["stage"], v["total"]) for v in payload["versions"]] == [
        (3, "production", 1), (2, "staging", 1), (1, "archived", 2),
    ]  # fmt: skip
    old = payload["versions"][2]
    assert [b["batch_id"] for b in old["batches"]] == ["a", "b"]  # oldest first
    assert [b["labels"] and b["labels"]["id"] for b in old["batches"]] == [None, "b-labels-9.0"]
    assert old["batches"][1]["labels"]["performance"] == {"n": 9}  # the latest labels row
    assert payload["versions"][1]["batches"][0]["labels"] is None  # another version's labels
