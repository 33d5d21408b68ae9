"""Turn values a cell produced into metrics: scalars, reports, cross-validation results."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_SKIP_KEYS = frozenset({"support"})


def scalar(value: Any) -> float | None:
    """A real number (Python or numpy scalar, not bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    module = type(value).__module__
    if module == "numpy" and getattr(value, "shape", None) == () and value.dtype.kind in "iuf":
        return float(value)
    if module.split(".")[0] == "torch" and getattr(value, "ndim", None) == 0:  # loss tensor
        try:
            number = value.item()
        except Exception:
            return None
        return (
            float(number)
            if isinstance(number, int | float) and not isinstance(number, bool)
            else None
        )
    return None


def _key(text: Any) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(text)).strip("_").replace("-", "_")


def _array_stats(value: Any) -> tuple[float, float] | None:
    """Mean and std of a 1-D numeric array or list (cross-validation scores)."""
    module = type(value).__module__
    if module == "numpy" and getattr(value, "ndim", None) == 1 and value.dtype.kind in "iuf":
        if value.size == 0:
            return None
        return float(value.mean()), float(value.std())
    if isinstance(value, list | tuple) and value and all(scalar(v) is not None for v in value):
        numbers = [float(v) for v in value]
        mean = sum(numbers) / len(numbers)
        std = math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers))
        return mean, std
    return None


def metrics_from(name: str, value: Any, depth: int = 0) -> dict[str, float]:
    """Metrics in ``value`` named from ``name``.

    A scalar gives ``{name: value}``; a dict (``classification_report(output_dict=True)``)
    gives ``name.key`` entries, skipping supports; ``cross_validate`` results give the mean
    and std of each ``test_*``/``train_*`` array; an array of scores gives ``name_mean`` and
    ``name_std``.
    """
    number = scalar(value)
    if number is not None:
        return {name: number}
    if isinstance(value, Mapping) and depth < 3:
        out: dict[str, float] = {}
        cv_like = any(str(k).startswith(("test_", "train_")) for k in value)
        for key, item in value.items():
            key_text = _key(key)
            if key_text in _SKIP_KEYS or (cv_like and key_text in ("fit_time", "score_time")):
                continue
            stats = _array_stats(item)
            if stats is not None:
                prefix = key_text if cv_like or not name else f"{name}.{key_text}"
                out[f"{prefix}_mean"], out[f"{prefix}_std"] = stats
                continue
            child = key_text if (cv_like or not name) else f"{name}.{key_text}"
            out.update(metrics_from(child, item, depth + 1))
        return out
    stats = _array_stats(value) if depth == 0 else None
    if stats is not None:
        return {f"{name}_mean": stats[0], f"{name}_std": stats[1]}
    return {}


def metric_base_name(function_name: str) -> str:
    """``accuracy_score`` -> ``accuracy``; ``cross_val_score`` -> ``cv_score``."""
    if function_name == "cross_val_score":
        return "cv_score"
    if function_name in ("cross_validate", "classification_report"):
        return ""
    if function_name.endswith("_score"):
        return function_name[: -len("_score")]
    return function_name


LOWER_IS_BETTER = frozenset(
    {
        "loss",
        "losses",
        "error",
        "errors",
        "err",
        "rmse",
        "mse",
        "mae",
        "logloss",
        "deviance",
        "rmsle",
        "msle",
        "rae",
        "rse",
        "mape",
        "smape",
        "medae",
        "nll",
        "perplexity",
        "brier",
        "time",
        "seconds",
        "duration",
        "latency",
    }
)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better: losses, errors, times
    (``val_loss``, ``test_rmse``, ``train_time_s``, ``neg_`` scores excepted)."""
    tokens = re.split(r"[._\-]+", metric.lower())
    if tokens and tokens[0] == "neg":  # sklearn's neg_mean_squared_error: higher is better
        return False
    return any(t in LOWER_IS_BETTER for t in tokens) or any(
        metric.lower().endswith(t) for t in ("loss", "error", "rmse", "mse", "mae", "logloss")
    )
