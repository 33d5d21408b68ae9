"""How the model does on a batch once its labels are known, beside the training run's metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
MAX_CLASSES = 50  # more distinct integer values than this: a regression target


def is_classification(values: Any) -> bool:
    """Labels (strings, booleans, categories, integers or whole floats with at most
    ``MAX_CLASSES`` values) rather than quantities."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series):
        return True
    present = series.dropna().to_numpy(dtype=np.float64)
    whole = bool(np.all(np.isfinite(present)) and np.all(present == np.round(present)))
    return whole and len(np.unique(present)) <= MAX_CLASSES


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score 95 % interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _reference(metrics: Mapping[str, float], names: tuple[str, ...]) -> tuple[str, float] | None:
    """The training run's metric of this kind: an exact name first, else one containing it."""
    for name in names:
        if name in metrics:
            return name, float(metrics[name])
    for key in sorted(metrics):
        if any(name in key.lower() for name in names):
            return key, float(metrics[key])
    return None


def performance(y_true: Any, y_pred: Any, training: Mapping[str, float]) -> dict[str, Any]:
    """Accuracy (classification) or MAE and RMSE (regression) with 95 % intervals, and the
    training run's value of the same metric; ``warn`` when that value lies outside the interval
    on the bad side."""
    import numpy as np
    import pandas as pd

    truth, predicted = pd.Series(y_true).reset_index(drop=True), pd.Series(y_pred)
    predicted = predicted.reset_index(drop=True)
    known = truth.notna() & predicted.notna()
    truth, predicted = truth[known], predicted[known]
    n = len(truth)
    out: dict[str, Any] = {"n": n, "metrics": {}}
    if is_classification(truth):
        numeric = all(pd.api.types.is_numeric_dtype(s.dtype) for s in (truth, predicted))
        pair = (truth, predicted) if numeric else (truth.astype(str), predicted.astype(str))
        hits = int((pair[0].to_numpy() == pair[1].to_numpy()).sum())
        low, high = wilson(hits, n)
        entry: dict[str, Any] = {"value": hits / n if n else math.nan, "interval": [low, high]}
        found = _reference(training, ("accuracy", "acc"))
        worse = False
        if found is not None:
            entry["reference"], entry["reference_metric"] = found[1], found[0]
            worse = found[1] > high
        out.update(task="classification", status="warn" if worse else "ok")
        out["metrics"]["accuracy"] = entry
        return out
    errors = truth.to_numpy(dtype=np.float64) - predicted.to_numpy(dtype=np.float64)
    absolute = np.abs(errors)
    mae = float(absolute.mean()) if n else math.nan
    spread = Z95 * float(absolute.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    entries: dict[str, dict[str, Any]] = {
        "mae": {"value": mae, "interval": [mae - spread, mae + spread]},
        "rmse": {"value": float(np.sqrt(np.mean(errors**2))) if n else math.nan},
    }
    worse = False
    for name, aliases in (("mae", ("mae", "mean_absolute_error")), ("rmse", ("rmse",))):
        found = _reference(training, aliases)
        if found is not None:
            entries[name]["reference"], entries[name]["reference_metric"] = found[1], found[0]
    ref_mae = entries["mae"].get("reference")
    if ref_mae is not None and not math.isnan(spread):
        worse = float(ref_mae) < mae - spread
    out.update(task="regression", status="warn" if worse else "ok", metrics=entries)
    return out
