"""Shape, schema and a per-column profile of a data snapshot (computed once per distinct hash)."""

from __future__ import annotations

import math
from typing import Any

MAX_PROFILED_COLUMNS = 200
TOP_CATEGORIES = 5
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# the finer reference summary monitoring compares production batches with (see
# :mod:`mlops_jupyter.monitoring.drift`): equal-frequency bins of numeric columns, and the counts
# of the most frequent categories with the rest counted as "other"
BINS = 20
MAX_CATEGORIES = 50


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def kind_of(obj: Any) -> str:
    """``DataFrame``, ``ndarray``, ``list``...; polars, pyarrow and scipy objects are prefixed
    with their library (``polars.DataFrame``, ``pyarrow.Table``, ``scipy.csr_matrix``)."""
    if isinstance(obj, list | tuple):
        return "list"
    library = _library(obj)
    name = type(obj).__name__
    return f"{library}.{name}" if library else name


def _library(obj: Any) -> str | None:
    """``polars``, ``pyarrow`` or ``scipy`` (sparse) for their objects, else None (no imports)."""
    module = type(obj).__module__
    for library in ("polars", "pyarrow"):
        if module == library or module.startswith(library + "."):
            return library
    if module.startswith("scipy.sparse"):
        return "scipy"
    return None


def _arrow_like_columns(obj: Any) -> tuple[list[int], list[tuple[str, str, Any]]] | None:
    """``(shape, [(name, dtype, column)])`` of a polars or pyarrow object, with the real column
    names and the library's own dtype names; None for an object of theirs that is not data."""
    library = _library(obj)
    if library == "polars":
        import polars as pl

        if isinstance(obj, pl.DataFrame):
            columns = [(s.name, str(s.dtype), s) for s in obj.get_columns()]
            return [obj.height, obj.width], columns
        if isinstance(obj, pl.Series):
            return [len(obj)], [(obj.name, str(obj.dtype), obj)]
    elif library == "pyarrow":
        import pyarrow as pa

        if isinstance(obj, pa.Table | pa.RecordBatch):
            fields = list(obj.schema)
            columns = [(f.name, str(f.type), obj.column(i)) for i, f in enumerate(fields)]
            return [obj.num_rows, obj.num_columns], columns
        if isinstance(obj, pa.Array | pa.ChunkedArray):
            return [len(obj)], [("0", str(obj.type), obj)]
    return None


def _describe_columns(
    shape: list[int], columns: list[tuple[str, str, Any]]
) -> tuple[list[int], list[dict[str, Any]], dict[str, Any]]:
    """Profile polars/pyarrow columns one at a time (never the whole frame converted at once)."""
    schema = [{"name": str(name), "dtype": dtype} for name, dtype, _ in columns]
    profiled: dict[str, Any] = {}
    for name, dtype, column in columns[:MAX_PROFILED_COLUMNS]:
        try:
            values = column.to_pandas()
        except Exception as exc:  # a type pandas cannot hold (e.g. polars Int128)
            profiled[str(name)] = {"dtype": dtype, "note": f"not profiled ({type(exc).__name__})"}
            continue
        profiled[str(name)] = {**_column_profile(values), "dtype": dtype}
    profile: dict[str, Any] = {"rows": int(shape[0]), "columns": profiled}
    if len(columns) > MAX_PROFILED_COLUMNS:
        profile["note"] = f"first {MAX_PROFILED_COLUMNS} of {len(columns)} columns profiled"
    return shape, schema, profile


def _describe_sparse(matrix: Any) -> tuple[list[int], None, dict[str, Any]]:
    shape = [int(n) for n in matrix.shape]
    size = 1
    for n in shape:
        size *= n
    nnz = int(matrix.count_nonzero())
    profile = {
        "rows": shape[0],
        "dtype": str(matrix.dtype),
        "nonzeros": nnz,
        "density": nnz / size if size else 0.0,
        "note": f"sparse {matrix.format} data: no per-column profile",
    }
    return shape, None, profile


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
    """``(shape, schema, profile)`` of a DataFrame, Series, array or list (pandas, polars or
    pyarrow; their own column names and dtypes), or of a scipy.sparse matrix."""
    import numpy as np

    library = _library(obj)
    if library == "scipy" and hasattr(obj, "count_nonzero") and hasattr(obj, "format"):
        return _describe_sparse(obj)
    if library is not None:
        found = _arrow_like_columns(obj)
        if found is not None:
            return _describe_columns(*found)
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
            quantiles, bins = _quantiles_and_bins(values)
            out["quantiles"] = {
                str(q): _number(v) for q, v in zip(QUANTILES, quantiles, strict=True)
            }
            if bins is not None:
                out["bins"] = bins
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
    kept = counts.head(MAX_CATEGORIES)
    out["categories"] = [[str(k), int(v)] for k, v in kept.items()]
    out["other"] = int(counts.sum() - kept.sum())
    return out


def _quantiles_and_bins(values: Any) -> tuple[list[float], dict[str, list[Any]] | None]:
    """The profile's quantiles and ``BINS`` equal-frequency bins from one pass of numpy's
    quantiles: the ``edges`` (equal ones merged), how many values are ``at`` each edge and how
    many ``between`` each edge and the next; no bins when a value is not finite."""
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind == "c":  # complex numbers have no order
        return [math.nan] * len(QUANTILES), None
    array = array.astype(np.float64, copy=False)
    probabilities = np.concatenate([QUANTILES, np.linspace(0.0, 1.0, BINS + 1)])
    points = np.quantile(array, probabilities)
    quantiles = [float(v) for v in points[: len(QUANTILES)]]
    if not np.isfinite(points).all():
        return quantiles, None
    edges = np.unique(points[len(QUANTILES) :])
    # one vectorised comparison per edge and count: several times faster than a binary search
    # of every value among the edges
    below = [int(np.count_nonzero(array < e)) for e in edges]
    at = [int(np.count_nonzero(array == e)) for e in edges]
    between = [below[i + 1] - below[i] - at[i] for i in range(len(edges) - 1)]
    return quantiles, {"edges": [float(e) for e in edges], "at": at, "between": between}
