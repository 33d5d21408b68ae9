"""A registered model version in production with a training data profile, and batches of
generated data recorded against it (for the REST and browser tests of the drift strip)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_jupyter.identity import sshsig
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import Signer, generate_key
from mlops_jupyter.monitoring import BatchReport, record_batch
from mlops_jupyter.registry.policy import parse_policy
from mlops_jupyter.registry.registry import ALLOWED_SIGNERS_FILENAME, Registry
from mlops_jupyter.store import Store
from mlops_jupyter.tracker import Tracker, TrackOptions

POLICY = parse_policy({"tiers": {"low": {"production": {"signoffs": 1}}}}, "test")
FEATURES = ["age", "income", "plan"]  # the training data's column order


def training_frame(rng: np.random.Generator, n: int = 3000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50_000, 8_000, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def batch_of(seed: int, n: int = 1000, age_shift: float = 0.0) -> pd.DataFrame:
    batch = training_frame(np.random.default_rng(seed), n)
    batch["age"] += age_shift
    return batch


def signers(keys_dir: Path, store_dir: Path) -> dict[str, Signer]:
    """ana (requests, records batches) and bo (approves), both allowed to sign in the store."""
    made = {p: generate_key(keys_dir / p, comment=p) for p in ("ana", "bo")}
    store_dir.mkdir(parents=True, exist_ok=True)
    for person, signer in made.items():
        add_signer(store_dir / ALLOWED_SIGNERS_FILENAME, person, signer.key_blob)
    return made


def tracked_training_run(
    store: Store, model: str = "churn", seed: int = 0, accuracy: float = 0.7
) -> tuple[str, pd.DataFrame]:
    """A finished run of experiment ``model`` that fitted a stand-in model on a generated frame
    (its profile recorded, as a tracked cell records it): its id and the frame."""
    from sklearn.dummy import DummyClassifier

    rng = np.random.default_rng(seed)
    X = training_frame(rng)
    y = pd.Series((rng.random(len(X)) < 0.3).astype(int), name="churned")
    tracker = Tracker(store.engine.url if store.engine.name == "postgresql" else store.directory)
    ctx = tracker.begin(TrackOptions(experiment=model, shap=False))
    ctx.log_data(X, "train", "X")
    ctx.log_data(y, "train", "y")
    ctx.log_metric("accuracy", accuracy)
    ctx.log_model(DummyClassifier(strategy="most_frequent").fit(X, y))
    tracker.finish(ctx)
    tracker.close()
    return ctx.run_id, X


def in_production(
    store: Store, keys: dict[str, Signer], model: str = "churn", seed: int = 0
) -> pd.DataFrame:
    """``model``:1 in production (ana requests, bo approves); the frame it was trained on."""
    run_id, X = tracked_training_run(store, model, seed)
    Registry(store, keys["ana"], POLICY).register(run_id, model, risk_tier="low")
    request = Registry(store, keys["ana"], POLICY).request_promotion(model, 1, "production")
    assert Registry(store, keys["bo"], POLICY).approve(request.id).status == "applied"
    return X


def record_three(
    store: Store, keys: dict[str, Signer], drifting_id: str = "2030-01-02"
) -> list[BatchReport]:
    """Three batches of churn:1, oldest first: calm; drifting in age (0.8 standard deviations,
    with labels and predictions: the model predicts 0 every time) named ``drifting_id``; calm
    again, named "2030-01-03"."""
    model = "churn"
    registry = Registry(store, keys["ana"], POLICY)
    drifting = batch_of(2, age_shift=8.0)
    y_true = (np.random.default_rng(5).random(len(drifting)) < 0.3).astype(int)
    return [
        record_batch(registry, model, batch_of(1)),
        record_batch(registry, model, drifting, predictions=np.zeros(len(drifting), dtype=int),
                     y_true=y_true, batch_id=drifting_id),
        record_batch(registry, model, batch_of(3, n=500), batch_id="2030-01-03"),
    ]  # fmt: skip


def add_labels(store: Store, signer: Signer, batch_id: str, accuracy: float) -> dict[str, Any]:
    """A ``labels`` row of churn:1: the labels of an earlier batch, arriving later (its
    performance only, no feature drift)."""
    estimate = {"value": accuracy, "interval": [0.6, 0.8]}
    performance = {"n": 1000, "task": "classification", "status": "ok",
                   "metrics": {"accuracy": estimate}}  # fmt: skip
    row = {
        "id": uuid.uuid4().hex, "model_name": "churn", "version": 1, "stage": "production",
        "batch_id": batch_id, "data_hash": f"labels-{accuracy}", "reference_hash": None,
        "created_at": time.time(), "n_rows": 1000, "profile": {}, "features": [],
        "decision": "ok", "drift_share": 0.0, "predictions": None, "performance": performance,
        "thresholds": {}, "recorded_by": "ana", "kind": "labels",
    }  # fmt: skip
    audit = {"model": "churn", "version": 1, "batch": row["id"], "batch_id": batch_id}
    store.add_monitor_batch(row, "ana", audit, lambda data: sshsig.sign(signer, data))
    return row


def expected_feature(result: dict[str, Any]) -> dict[str, Any]:
    """A feature result as the monitoring endpoint sends it."""
    keys = ("feature", "kind", "status", "psi", "test", "statistic", "p_value", "schema", "note",
            "missing", "unseen_rows")  # fmt: skip
    return {k: result.get(k) for k in keys}
