"""The no_regression gate's direction: the policy states it or the metric's name decides; an
experiment's unsigned setting never decides, and one contradicting the name fails the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key, load_signer
from mlops_jupyter.registry.policy import (
    PolicyError,
    RegressionRule,
    load_policy,
    parse_policy,
)
from mlops_jupyter.registry.registry import Registry, RegistryError
from mlops_jupyter.store import Store
from mlops_jupyter.tracker import Tracker, TrackOptions

X_EVAL = pd.DataFrame(np.arange(40, dtype=float).reshape(10, 4), columns=["a", "b", "c", "d"])
UNCLEAR = (
    "direction of score unclear: the experiment 'churn' says lower is better, the name rule "
    'says higher; state it in the policy: no_regression = { score = "min" }'
)


@pytest.fixture
def store(any_store: Store, tmp_path: Path) -> Store:
    """Both engines; ana and bo may sign registry actions."""
    for person in ("ana", "bo"):
        signer = generate_key(tmp_path / "keys" / person, comment=person)
        add_signer(any_store.directory / "allowed_signers", person, signer.key_blob)
    return any_store


def as_user(store: Store, user: str, policy: Any = None) -> Registry:
    return Registry(store, load_signer(store.directory.parent / "keys" / user), policy)


def run_with(store: Store, **metrics: float) -> str:
    """A finished run of experiment churn with a model, these metrics, and the one
    evaluation data every run here shares (so versions are comparable)."""
    from sklearn.dummy import DummyClassifier

    where = store.engine.url if store.engine.name == "postgresql" else store.directory
    tracker = Tracker(where)
    ctx = tracker.begin(TrackOptions(experiment="churn"))
    for key, value in metrics.items():
        ctx.log_metric(key, value)
    ctx.log_data(X_EVAL, "eval", "X_eval")
    ctx.log_model(DummyClassifier().fit(X_EVAL, [0, 1] * 5))
    tracker.finish(ctx)
    assert tracker.wait(timeout=120)
    tracker.close()
    return ctx.run_id


def policy(no_regression: Any, signoffs: int = 0) -> Any:
    stage = {"no_regression": no_regression, "signoffs": signoffs}
    return parse_policy({"tiers": {"low": {"production": stage}}}, "test")


def gate_of(registry: Registry, run_id: str) -> tuple[bool, str]:
    """Register ``run_id`` as the next version of m and request production: the
    no_regression gate's result."""
    version = registry.register(run_id, "m", risk_tier="low").version
    request = registry.request_promotion("m", version, "production")
    (gate,) = [g for g in request.gates if g.gate == "no_regression"]
    return gate.passed, gate.message


def test_the_list_form_lets_the_names_decide(store: Store) -> None:
    ana = as_user(store, "ana", policy(["accuracy", "train_time_s"]))
    assert gate_of(ana, run_with(store, accuracy=0.8, train_time_s=10.0)) == (
        True,
        "no production version to compare with",
    )
    assert gate_of(ana, run_with(store, accuracy=0.9, train_time_s=9.0)) == (
        True,
        "no regression on accuracy (higher is better, name rule), "
        "train_time_s (lower is better, name rule)",
    )
    assert gate_of(ana, run_with(store, accuracy=0.7, train_time_s=12.5)) == (
        False,
        "regression: accuracy 0.7 vs production 0.9 (higher is better, name rule); "
        "train_time_s 12.5 vs production 9 (lower is better, name rule)",
    )
    assert ana.policy.for_stage("low", "production").no_regression == (
        RegressionRule("accuracy", None),
        RegressionRule("train_time_s", None),
    )


def test_the_table_form_states_the_direction(store: Store) -> None:
    (store.directory / "policy.toml").write_text(
        "[tiers.low.production]\n"
        'no_regression = { val_auc = "max", train_time_s = "min", score = "min" }\n'
    )
    ana = as_user(store, "ana")  # the policy file beside the store
    assert ana.policy.for_stage("low", "production").no_regression == (
        RegressionRule("val_auc", "max"),
        RegressionRule("train_time_s", "min"),
        RegressionRule("score", "min"),
    )
    first = run_with(store, val_auc=0.8, train_time_s=10.1, score=10.1)
    assert gate_of(ana, first) == (True, "no production version to compare with")
    # score's name says higher is better: the policy says lower, and lower it is
    assert gate_of(ana, run_with(store, val_auc=0.8, train_time_s=10.1, score=12.3)) == (
        False,
        "regression: score 12.3 vs production 10.1 (lower is better, policy)",
    )
    assert gate_of(ana, run_with(store, val_auc=0.85, train_time_s=12.3, score=9.0)) == (
        False,
        "regression: train_time_s 12.3 vs production 10.1 (lower is better, policy)",
    )
    assert gate_of(ana, run_with(store, val_auc=0.85, train_time_s=9.5, score=9.0)) == (
        True,
        "no regression on val_auc (higher is better, policy), train_time_s (lower is better, "
        "policy), score (lower is better, policy)",
    )


def test_an_experiment_direction_against_the_name_fails_closed(store: Store) -> None:
    ana = as_user(store, "ana", policy(["score"]))
    assert gate_of(ana, run_with(store, score=10.0))[0]
    store.set_metric_direction("churn", "score", "min", user="ana")
    # higher: better by the name, worse by the experiment; the gate picks neither
    assert gate_of(ana, run_with(store, score=12.0)) == (False, UNCLEAR)
    assert gate_of(ana, run_with(store, score=8.0)) == (False, UNCLEAR)
    store.set_metric_direction("churn", "score", "max", user="ana")  # agrees with the name
    assert gate_of(ana, run_with(store, score=12.0)) == (
        True,
        "no regression on score (higher is better, name rule)",
    )


def test_the_fix_names_every_metric_of_the_gate(store: Store) -> None:
    ana = as_user(store, "ana", policy(["accuracy", "val.score", "log_loss"]))
    assert gate_of(ana, run_with(store, accuracy=0.9, **{"val.score": 1.0}, log_loss=0.3))[0]
    store.set_metric_direction("churn", "val.score", "min", user="bo")
    store.set_metric_direction("churn", "log_loss", "min", user="bo")  # the name agrees
    assert gate_of(ana, run_with(store, accuracy=0.8, **{"val.score": 1.0}, log_loss=0.3)) == (
        False,
        "direction of val.score unclear: the experiment 'churn' says lower is better, the name "
        'rule says higher; state it in the policy: no_regression = { accuracy = "max", '
        '"val.score" = "min", log_loss = "min" }; '
        "regression: accuracy 0.8 vs production 0.9 (higher is better, name rule)",
    )


def test_a_direction_in_the_policy_overrides_the_experiment(store: Store) -> None:
    ana = as_user(store, "ana", policy({"score": "max"}))
    assert gate_of(ana, run_with(store, score=10.0))[0]
    store.set_metric_direction("churn", "score", "min", user="ana")
    assert gate_of(ana, run_with(store, score=12.0)) == (
        True,
        "no regression on score (higher is better, policy)",
    )
    assert gate_of(ana, run_with(store, score=11.0)) == (
        False,
        "regression: score 11 vs production 12 (higher is better, policy)",
    )


def test_a_conflict_set_after_the_request_blocks_the_approval(store: Store) -> None:
    assert gate_of(as_user(store, "ana", policy(["score"])), run_with(store, score=10.0))[0]
    strict = policy(["score"], signoffs=1)
    ana, bo = as_user(store, "ana", strict), as_user(store, "bo", strict)
    version = ana.register(run_with(store, score=11.0), "m").version
    request = ana.request_promotion("m", version, "production")
    assert request.status == "pending"
    store.set_metric_direction("churn", "score", "min", user="ana")
    with pytest.raises(RegistryError) as info:
        bo.approve(request.id)
    assert str(info.value) == (
        f"request #{request.id} is blocked: gates now failing: no_regression: {UNCLEAR}. "
        "Nothing was approved; fix it and request the promotion again"
    )
    assert ana.current("m").version == 1


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        (
            'no_regression = { score = "up" }',
            "no_regression.score",
            'expected "max" (higher is better) or "min" (lower is better), got \'up\'',
        ),
        (
            "no_regression = { score = 1 }",
            "no_regression.score",
            'expected "max" (higher is better) or "min" (lower is better), got 1',
        ),
        (
            "no_regression = 5",
            "no_regression",
            'expected a list of metric names or a table of metric = "max" or "min", got 5',
        ),
        (
            'no_regression = ["accuracy", ""]',
            "no_regression",
            "expected a list of non-empty metric names, got ['accuracy', '']",
        ),
        (
            'no_regression = { "" = "max" }',
            "no_regression",
            "expected non-empty metric names, got ''",
        ),
    ],
)
def test_an_invalid_direction_is_refused(
    tmp_path: Path, line: str, field: str, expected: str
) -> None:
    store_dir = tmp_path / ".mlops"
    store_dir.mkdir()
    path = store_dir / "policy.toml"
    path.write_text(f"[tiers.low.production]\n{line}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(store_dir)
    assert str(info.value) == f"{path}: tiers.low.production.{field}: {expected}"
