"""Shape, schema and a per-column profile of a data snapshot (computed once per distinct hash)."""

from __future__ import annotations

import math
from typing import Any

MAX_PROFILED_COLUMNS = 200
TOP_CATEGORIES = 5
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def kind_of(obj: Any) -> str:
    return type(obj).__name__ if not isinstance(obj, list | tuple) else "list"


def _as_frame(obj: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, pd.Series):
        return obj.to_frame(name=obj.name if obj.name is not None else 0)
    if isinstance(obj, pd.Index):
        return obj.to_frame(index=False)
    array = np.asarray(obj)
    if array.ndim == 1:
        return pd.DataFrame({0: array})
    if array.ndim == 2:
        return pd.DataFrame(array)
    return None


def describe(obj: Any) -> tuple[list[int] | None, list[dict[str, Any]] | None, dict[str, Any]]:
    """``(shape, schema, profile)`` of a DataFrame, Series, array or list."""
    import numpy as np

    shape = [int(n) for n in np.shape(obj)] if not isinstance(obj, str) else None
    frame = _as_frame(obj)
    if frame is None:
        return shape, None, {"note": f"no profile for {len(shape or [])}-D data"}
    schema = [{"name": str(name), "dtype": str(dtype)} for name, dtype in frame.dtypes.items()]
    columns: dict[str, Any] = {}
    for position, name in enumerate(frame.columns[:MAX_PROFILED_COLUMNS]):
        columns[str(name)] = _column_profile(frame.iloc[:, position])
    profile: dict[str, Any] = {"rows": int(len(frame)), "columns": columns}
    if frame.shape[1] > MAX_PROFILED_COLUMNS:
        profile["note"] = f"first {MAX_PROFILED_COLUMNS} of {frame.shape[1]} columns profiled"
    return shape, schema, profile


def _column_profile(column: Any) -> dict[str, Any]:
    import pandas as pd

    out: dict[str, Any] = {"dtype": str(column.dtype), "nulls": int(column.isna().sum())}
    is_numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )
    if is_numeric:
        values = column.dropna()
        if len(values):
            out["min"] = _number(values.min())
            out["max"] = _number(values.max())
            out["mean"] = _number(values.mean())
            out["std"] = _number(values.std()) if len(values) > 1 else 0.0
            quantiles = values.quantile(list(QUANTILES))
            out["quantiles"] = {
                str(q): _number(v) for q, v in zip(QUANTILES, quantiles, strict=True)
            }
        return out
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        values = column.dropna()
        if len(values):
            out["min"] = str(values.min())
            out["max"] = str(values.max())
        return out
    try:
        counts = column.value_counts(dropna=True)
    except TypeError:  # unhashable cells (lists, dicts)
        return out
    out["unique"] = int(len(counts))
    out["top"] = [[str(k), int(v)] for k, v in counts.head(TOP_CATEGORIES).items()]
    return out
