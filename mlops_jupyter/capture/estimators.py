"""Parameters of scikit-learn-compatible estimators (duck-typed: no sklearn import here)."""

from __future__ import annotations

import math
from typing import Any


def is_estimator(obj: Any) -> bool:
    return callable(getattr(obj, "get_params", None)) and callable(getattr(obj, "fit", None))


def is_predictor(obj: Any) -> bool:
    return is_estimator(obj) and callable(getattr(obj, "predict", None))


def is_search(obj: Any) -> bool:
    """GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV... once fitted."""
    return is_estimator(obj) and hasattr(obj, "best_params_")


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def _numpy_scalar(value: Any) -> Any:
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def flat_params(estimator: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` without the nested estimator objects themselves.

    Nested estimators are already expanded into ``step__param`` keys; lists of steps are
    dropped for the same reason. Other values are kept as they are (the store encodes
    non-JSON values as a truncated, flagged repr).
    """
    try:
        params = estimator.get_params(deep=True)
    except Exception:  # a broken third-party get_params must not break capture
        params = estimator.get_params(deep=False)
    flat: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        value = _numpy_scalar(value)
        if is_estimator(value):
            continue
        if isinstance(value, list | tuple) and any(
            is_estimator(v) or (isinstance(v, tuple) and any(is_estimator(x) for x in v))
            for v in value
        ):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        flat[key] = value
    return flat


_SEARCH_SETTINGS = (
    "cv",
    "n_iter",
    "scoring",
    "refit",
    "param_grid",
    "param_distributions",
    "random_state",
    "factor",
    "resource",
)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """The parameters a fitted estimator ran with; for a search, those of its best model and
    the search's own settings (``search.cv``, ``search.param_grid``, ``search.n_iter``...)."""
    if is_search(estimator):
        best = getattr(estimator, "best_estimator_", None)
        params = flat_params(best) if best is not None else flat_params(estimator.estimator)
        for key, value in estimator.best_params_.items():
            params[key] = _numpy_scalar(value)
        try:
            own = estimator.get_params(deep=False)
        except Exception:
            own = {}
        for key in _SEARCH_SETTINGS:
            if key in own:
                params[f"search.{key}"] = _setting(own[key])
        return params
    return flat_params(estimator)


def _setting(value: Any) -> Any:
    """A search setting as plain data where it is (grids), else its repr (a KFold, a scorer)."""
    if isinstance(value, dict):
        return {str(k): _setting(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_setting(v) for v in value]
    value = _numpy_scalar(value)
    return value if _plain(value) else repr(value)


def search_candidates(search: Any) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Every candidate a fitted search tried: its parameters and its ``cv_results_`` numbers
    (mean/std/rank of each score, per-split scores, fit and score times)."""
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "params" not in results:
        return []
    out = []
    for index, candidate in enumerate(results["params"]):
        params = {str(k): _setting(v) for k, v in candidate.items()}
        metrics: dict[str, float] = {}
        for key, column in results.items():
            if key == "params" or key.startswith("param_"):
                continue
            try:
                value = _numpy_scalar(column[index])
            except (IndexError, TypeError, KeyError):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if isinstance(value, float) and math.isnan(value):
                continue
            metrics[key] = float(value)
        out.append((params, metrics))
    return out


def class_name(obj: Any) -> str:
    return type(obj).__name__
