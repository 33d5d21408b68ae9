"""Issue 16, the bias gate: evaluation rows kept with the run (hash-verified), the fairness gate
computed on them through the signed model blob, and the version card's numbers without eval_data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import tamper_blob

from mlops_jupyter.capture.hashing import hash_data
from mlops_jupyter.cards.model import build_card
from mlops_jupyter.errors import BlobIntegrityError, StoreError
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key, load_signer
from mlops_jupyter.registry.policy import PolicyError, parse_policy
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store, postgres_schema, rows, schema
from mlops_jupyter.tracker import Tracker, TrackOptions

NAMES = "region: 0=north, 1=south"


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def location(store: Store) -> Any:
    return store.engine.url if store.engine.name == "postgresql" else store.directory


def data(seed: int, n: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "region": rng.integers(0, 2, n)})
    noise = rng.random(n) < np.where(X["region"] == 1, 0.3, 0.05)  # south: noisier labels
    return X, pd.Series(((X["a"] > 0.5) ^ noise).astype(int), name="churned")


def tracked_run(store: Store, *, eval_X: Any = None, eval_y: Any = None) -> str:
    """A finished run with a model, its training data and its evaluation data logged."""
    from sklearn.linear_model import LogisticRegression

    X, y = data(0, 300)
    X_eval, y_eval = data(1, 100)
    model = LogisticRegression().fit(X, y)
    tracker = Tracker(location(store))
    ctx = tracker.begin(TrackOptions(experiment="churn", name="fair", shap=False))
    ctx.log_data(X, "train", "X")
    ctx.log_data(X_eval if eval_X is None else eval_X, "eval", "X_eval")
    ctx.log_data(y_eval if eval_y is None else eval_y, "eval", "y_eval")
    ctx.log_model(model)
    tracker.finish(ctx)
    tracker.close()
    return ctx.run_id


def registry(store: Store, tmp_path: Path, fairness: dict[str, Any] | None) -> Registry:
    key = generate_key(tmp_path / "keys" / "ana", comment="ana")
    add_signer(store.directory / "allowed_signers", "ana", key.key_blob)
    rules: dict[str, Any] = {"signoffs": 0}
    if fairness is not None:
        rules["fairness"] = fairness
    policy = parse_policy({"tiers": {"low": {"production": rules}}}, "test policy")
    return Registry(store, load_signer(tmp_path / "keys" / "ana"), policy)


def expected_recall_message(limit: float) -> tuple[str, bool]:
    """The gate's message, recomputed with sklearn from the same data and model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score

    X, y = data(0, 300)
    X_eval, y_eval = data(1, 100)
    predicted = LogisticRegression().fit(X, y).predict(X_eval)
    parts, values = [], []
    for code, name in ((0, "north"), (1, "south")):
        mask = (X_eval["region"] == code).to_numpy()
        value = float(recall_score(y_eval[mask], predicted[mask]))
        values.append(value)
        parts.append(f"{name} {value:.3g} (n={int(mask.sum())})")
    gap = max(values) - min(values)
    assert gap > 0.01  # the data makes the groups differ
    ok = gap <= limit
    verdict = f"gap {gap:.3g} {'<=' if ok else '>'} {limit:g}"
    return f"recall by region: {', '.join(parts)}; {verdict}", ok


# ------------------------------------------------------------------------- kept rows
def test_evaluation_rows_are_kept_and_read_back_verified(store: Store) -> None:
    run_id = tracked_run(store)
    X_eval, y_eval = data(1, 100)
    links = {d.variable: d for d in store.get_run(run_id).datasets}
    assert links["X"].rows_blob is None  # training data: hash and profile only
    for name, original in (("X_eval", X_eval), ("y_eval", y_eval)):
        link = links[name]
        assert link.hash == hash_data(original) and link.rows_blob
        back = store.dataset_rows(link.hash)
        assert hash_data(back) == link.hash
        if isinstance(original, pd.DataFrame):
            pd.testing.assert_frame_equal(back, original)
        else:
            pd.testing.assert_series_equal(back, original)


def test_a_tampered_rows_blob_is_refused(store: Store) -> None:
    run_id = tracked_run(store)
    links = {d.variable: d for d in store.get_run(run_id).datasets}
    X_link, y_link = links["X_eval"], links["y_eval"]
    tamper_blob(store, X_link.rows_blob)
    with pytest.raises(BlobIntegrityError, match="corrupt|modified|does not match"):
        store.dataset_rows(X_link.hash)
    with store.transaction() as conn:  # a valid blob of other rows named for this snapshot
        conn.execute(
            "UPDATE datasets SET rows_blob = ? WHERE hash = ?", (y_link.rows_blob, X_link.hash)
        )
    with pytest.raises(BlobIntegrityError, match="do not hash to data snapshot"):
        store.dataset_rows(X_link.hash)


def test_numpy_rows_round_trip_and_what_is_not_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    X_eval, y_eval = data(1, 100)
    X_np, y_np = X_eval.to_numpy(dtype=float), y_eval.to_numpy().astype(bool)
    run_id = tracked_run(store, eval_X=X_np, eval_y=y_np)
    links = {d.variable: d for d in store.get_run(run_id).datasets}
    np.testing.assert_array_equal(store.dataset_rows(links["X_eval"].hash), X_np)
    assert store.dataset_rows(links["y_eval"].hash).dtype == np.bool_

    objects = np.array(["x", 1] * 50, dtype=object)
    assert rows.encode_rows(objects, hash_data(objects)) is None  # would need pickle
    monkeypatch.setattr(rows, "MAX_ROW_CELLS", 299)  # X_eval has 300 cells
    other_X = X_eval.assign(a=X_eval["a"] + 1)
    big = tracked_run(store, eval_X=other_X)
    link = next(d for d in store.get_run(big).datasets if d.variable == "X_eval")
    assert link.rows_blob is None and store.get_run(big).capture_errors == []
    with pytest.raises(StoreError, match="stored without its rows"):
        store.dataset_rows(link.hash)
    monkeypatch.setattr(rows, "MAX_ROW_CELLS", 2_000_000)
    again = tracked_run(store, eval_X=other_X)  # a later run with the same data keeps them
    assert store.get_run(again).datasets and store.has_dataset_rows(link.hash)
    assert next(d for d in store.get_run(big).datasets if d.variable == "X_eval").rows_blob


# ------------------------------------------------------------------------- the gate
@pytest.mark.parametrize("limit", [0.0, 1.0])
def test_fairness_gate_on_the_stored_rows(store: Store, tmp_path: Path, limit: float) -> None:
    run_id = tracked_run(store)
    store.set_card_section(run_id, "sensitive_column", NAMES, "ana")
    reg = registry(store, tmp_path, {"attribute": "region", "metric": "recall", "max_gap": limit})
    reg.register(run_id, "churn", risk_tier="low")
    request = reg.request_promotion("churn", 1, "production")
    [gate] = [g for g in request.gates if g.gate == "fairness"]
    message, ok = expected_recall_message(limit)
    assert (gate.passed, gate.message) == (ok, message)
    assert request.status == ("applied" if ok else "blocked")
    # the audit log keeps the numbers (in the signed request statement's gate results)
    logged = [g for e in reg.history("churn") for g in e.get("gates") or e.get("results") or []]
    assert {"gate": "fairness", "passed": ok, "message": message} in logged
    # and the version's card shows them in its governance section, escaped
    import html

    assert html.escape(message) in build_card("churn:1", store=store).to_html()


def test_fairness_gate_fails_saying_what_to_do(store: Store, tmp_path: Path) -> None:
    X_eval, _ = data(1, 100)
    run_id = tracked_run(store, eval_X=X_eval.drop(columns="region").assign(region=0.0))
    rule = {"attribute": "segment", "metric": "accuracy", "max_gap": 0.1}
    reg = registry(store, tmp_path, rule)
    reg.register(run_id, "churn", risk_tier="low")
    [gate] = [g for g in reg.request_promotion("churn", 1, "production").gates]
    assert not gate.passed
    assert gate.message.startswith("the evaluation data has no column 'segment'")

    store.set_card_section(run_id, "sensitive_column", "region", "ana")
    with store.transaction() as conn:  # rows that were never kept
        conn.execute("UPDATE datasets SET rows_blob = NULL")
    reg2 = registry(store, tmp_path / "2", {**rule, "attribute": "region"})
    [gate] = [g for g in reg2.request_promotion("churn", 1, "production").gates]
    assert not gate.passed and "stored no evaluation rows" in gate.message


@pytest.mark.parametrize(
    ("fairness", "error"),
    [
        ("region", "tiers.low.production.fairness: expected a table"),
        ({"metric": "recall", "max_gap": 0.1}, "fairness.attribute: expected a non-empty string"),
        ({"attribute": " ", "metric": "recall", "max_gap": 0.1}, "fairness.attribute"),
        (
            {"attribute": "r", "metric": "f1", "max_gap": 0.1},
            "fairness.metric: expected one of accuracy, recall, fpr, precision, mae, got 'f1'",
        ),  # fmt: skip
        (
            {"attribute": "r", "metric": "fpr", "max_gap": -0.1},
            "fairness.max_gap: expected a number >= 0",
        ),  # fmt: skip
        ({"attribute": "r", "metric": "fpr", "max_gap": True}, "fairness.max_gap"),
        ({"attribute": "r", "metric": "fpr", "max_gap": 0, "gap": 1}, "fairness.gap: expected"),
    ],
)
def test_fairness_policy_is_validated(fairness: Any, error: str) -> None:
    spec = {"tiers": {"low": {"production": {"fairness": fairness}}}}
    with pytest.raises(PolicyError) as caught:
        parse_policy(spec, "policy.toml")
    assert str(caught.value).startswith("policy.toml: ")
    assert error in str(caught.value)


def test_fairness_policy_is_read() -> None:
    rule = {"attribute": "region", "metric": "precision", "max_gap": 0}
    policy = parse_policy({"tiers": {"high": {"production": {"fairness": rule}}}}, "p")
    fair = policy.for_stage("high", "production").fairness
    assert fair is not None
    assert (fair.attribute, fair.metric, fair.max_gap) == ("region", "precision", 0.0)


# ------------------------------------------------------------------------- the card
def test_version_card_has_the_evaluation_numbers_without_eval_data(
    store: Store, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    run_id = tracked_run(store)
    store.set_card_section(run_id, "sensitive_column", NAMES, "ana")
    reg = registry(store, tmp_path, None)
    reg.register(run_id, "churn", risk_tier="low")
    run_card = build_card(run_id, store=store)
    assert run_card.evaluation is None and run_card.group_metrics == []
    card = build_card("churn:1", store=store)
    X, y = data(0, 300)
    X_eval, y_eval = data(1, 100)
    predicted = LogisticRegression().fit(X, y).predict(X_eval)
    assert card.evaluation is not None
    assert card.evaluation.metrics["accuracy"]["value"] == float(np.mean(predicted == y_eval))
    [groups] = card.group_metrics
    assert groups.counts == {
        "north": int((X_eval["region"] == 0).sum()),
        "south": int((X_eval["region"] == 1).sum()),
    }
    for code, name in ((0, "north"), (1, "south")):
        mask = (X_eval["region"] == code).to_numpy()
        assert groups.groups[name] == float(np.mean(predicted[mask] == y_eval[mask]))


# ------------------------------------------------------------------------- migration
def test_v12_on_both_engines(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert schema.LATEST_VERSION == postgres_schema.LATEST_VERSION >= 12
    assert store.schema_version == schema.LATEST_VERSION
    X_eval, _ = data(1, 100)
    digest = hash_data(X_eval)
    with store.transaction() as conn:  # a snapshot stored by a version 11 store: no rows
        conn.execute(
            "INSERT INTO datasets (hash, kind, created_at) VALUES (?, 'DataFrame', 0)", (digest,)
        )
    assert store.has_dataset(digest) and not store.has_dataset_rows(digest)
    tracked_run(store)
    assert store.has_dataset_rows(digest)


def test_sqlite_store_at_v11_is_migrated(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:11])
        m.setattr(schema, "LATEST_VERSION", 11)
        with Store.open(store_dir) as old:
            assert old.schema_version == 11
            with old.transaction() as conn:
                conn.execute("INSERT INTO datasets (hash, kind, created_at) VALUES ('h', 'x', 0)")
    with Store.open(store_dir) as new:
        assert new.schema_version == schema.LATEST_VERSION
        assert new._read("SELECT hash, rows_blob FROM datasets") == [("h", None)]


def test_postgres_store_at_v11_is_migrated(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        older = tuple(v for v in postgres_schema.MIGRATIONS if v.version <= 11)
        m.setattr(postgres_schema, "MIGRATIONS", older)
        m.setattr(postgres_schema, "LATEST_VERSION", 11)
        with Store.open(pg_url, start=tmp_path) as old:
            assert old.schema_version == 11
            with old.transaction() as conn:
                conn.execute("INSERT INTO datasets (hash, kind, created_at) VALUES ('h', 'x', 0)")
    with Store.open(pg_url, start=tmp_path) as new:
        assert new.schema_version == postgres_schema.LATEST_VERSION
        assert [tuple(r) for r in new._read("SELECT hash, rows_blob FROM datasets")] == [
            ("h", None)
        ]


def test_push_copies_the_rows_blob(pg_url: str, tmp_path: Path) -> None:
    from mlops_jupyter.store.sync import copy_runs

    with (
        Store.open(tmp_path / "laptop" / ".mlops") as local,
        Store.open(pg_url, start=tmp_path) as team,
    ):
        run_id = tracked_run(local)
        link = next(d for d in local.get_run(run_id).datasets if d.variable == "X_eval")
        copy_runs(local, team)
        pushed = next(d for d in team.get_run(run_id).datasets if d.variable == "X_eval")
        assert pushed.rows_blob == link.rows_blob
        pd.testing.assert_frame_equal(team.dataset_rows(link.hash), data(1, 100)[0])


@pytest.mark.parametrize(
    ("metric", "passed", "message"),
    [
        ("accuracy", True, "accuracy by region: north 0.9 (n=10), south 0.85 (n=20); "
                           "gap 0.05 <= 0.05"),
        ("recall", False, "recall by region: north 0.8 (n=10), south 0.6 (n=20); gap 0.2 > 0.05"),
        ("fpr", False, "see below"),
        ("precision", True, "precision by region: north 0.7 (n=10), south 0.72 (n=20); "
                            "gap 0.02 <= 0.05"),
        ("mae", False, "mae by region needs a regression model"),
    ],
)  # fmt: skip
def test_fairness_gate_from_group_metrics(metric: str, passed: bool, message: str) -> None:
    from mlops_jupyter.cards.evaluation import GroupMetrics
    from mlops_jupyter.registry.gates import fairness
    from mlops_jupyter.registry.policy import FairnessRule

    groups = GroupMetrics(
        "region",
        "accuracy",
        {"north": 0.9, "south": 0.85},
        {"north": 10, "south": 20},
        rates={"tpr": {"north": 0.8, "south": 0.6}, "fpr": {"north": 0.1, "south": float("nan")}},
        precision={"north": 0.7, "south": 0.72},
    )
    result = fairness(FairnessRule("region", metric, 0.05), groups)
    if metric == "fpr":  # one group without negatives: no gap to judge
        assert not result.passed
        assert result.message == (
            "fpr by region: fewer than two groups with a value (north, south); "
            "evaluate on data holding every group"
        )
        return
    assert (result.gate, result.passed, result.message) == ("fairness", passed, message)
