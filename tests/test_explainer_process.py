"""The SHAP worker process: explains a real model, survives its own death, never prints."""

from __future__ import annotations

import os
import pickle

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from mlops_jupyter.capture.explainer_process import ExplainerProcess


class _ExitsWhenUnpickled:
    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (3,))  # the worker dies in the middle of a job


def _forest() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((120, 4))
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, X[:, 0] > 0.5)
    return pickle.dumps(model), X


def test_the_worker_explains_and_is_started_again_after_it_died() -> None:
    model, X = _forest()
    worker = ExplainerProcess()
    try:
        result, kept = worker.explain(model, X, X, 50, ["a", "b", "c", "d"])
        assert result is not None and result.status == "ok", result
        assert (result.explainer, result.n_rows, result.feature_names) == (
            "TreeExplainer", 50, ["a", "b", "c", "d"]
        )  # fmt: skip
        first = worker.pid
        assert first is not None and first != os.getpid()

        died, _ = worker.explain(pickle.dumps(_ExitsWhenUnpickled()), X, X, 50, None)
        assert died is not None and died.status == "failed"
        assert died.reason == "the explainer process exited (exit code 3)"

        again, _ = worker.explain(model, X, X, 10, None)  # a new worker takes the next job
        assert again is not None and again.status == "ok" and again.n_rows == 10
        assert worker.pid not in (None, first)
    finally:
        worker.close()
    assert worker.pid is None


def test_a_model_the_worker_cannot_unpickle_is_handed_back() -> None:
    worker = ExplainerProcess()
    try:
        answer = worker.explain(b"not a pickle", np.zeros((3, 2)), None, 3, None)
        assert answer == (None, [])
    finally:
        worker.close()
