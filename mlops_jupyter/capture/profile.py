"""Shape, schema and a per-column profile of a data snapshot (computed once per distinct hash)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

MAX_PROFILED_COLUMNS = 200
PARALLEL_CELLS = 1_000_000  # from this many values columns are profiled on several threads
T = TypeVar("T")
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
    names = frame.columns[:MAX_PROFILED_COLUMNS]
    series = [frame.iloc[:, position] for position in range(len(names))]
    profiles = map_columns(_column_profile, series, len(frame))
    columns = {str(name): column for name, column in zip(names, profiles, strict=True)}
    profile: dict[str, Any] = {"rows": int(len(frame)), "columns": columns}
    if frame.shape[1] > MAX_PROFILED_COLUMNS:
        profile["note"] = f"first {MAX_PROFILED_COLUMNS} of {frame.shape[1]} columns profiled"
    return shape, schema, profile


def map_columns(fn: Callable[[Any], T], columns: Sequence[Any], rows: int) -> list[T]:
    """``fn`` of each column, in order; on threads, one per core, when the columns hold at least
    ``PARALLEL_CELLS`` values (numpy and pandas release the GIL while they count and search)."""
    workers = min(os.cpu_count() or 1, len(columns), 8)
    if workers < 2 or rows * len(columns) < PARALLEL_CELLS:
        return [fn(column) for column in columns]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="mlops-jupyter-profile") as pool:
        return list(pool.map(fn, columns))


def _column_profile(column: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {"dtype": str(column.dtype), "nulls": int(column.isna().sum())}
    is_numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )
    if is_numeric:
        values = column.dropna()
        if len(values):
            with np.errstate(all="ignore"):  # a mean or spread past a float's range: no value
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
    """The profile's quantiles and ``BINS`` equal-frequency bins: the ``edges`` (numpy's
    quantiles, linear method; equal ones merged), how many values are ``at`` each edge and how
    many ``between`` each edge and the next; no bins when a value is not finite."""
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind == "c":  # complex numbers have no order
        return [math.nan] * len(QUANTILES), None
    array = array.astype(np.float64, copy=False)
    probabilities = np.concatenate([QUANTILES, np.linspace(0.0, 1.0, BINS + 1)])
    lo, hi = array.min(), array.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):  # infinities or NaN: numpy as it is
        ranked = None
        points = np.quantile(array, probabilities)
    else:
        previous, following, gamma = _virtual_indexes(len(array), probabilities)
        ranks = np.unique(np.concatenate([previous, following]))
        ranked = _Ranked(array, lo, hi, ranks)
        points = ranked.quantiles(previous, following, gamma, ranks)
    quantiles = [float(v) for v in points[: len(QUANTILES)]]
    if ranked is None or not np.isfinite(points).all():
        return quantiles, None
    edges = np.unique(points[len(QUANTILES) :])
    below, at = ranked.counts(edges)
    between = [below[i + 1] - below[i] - at[i] for i in range(len(edges) - 1)]
    return quantiles, {"edges": [float(e) for e in edges], "at": at, "between": between}


def _virtual_indexes(n: int, probabilities: Any) -> tuple[Any, Any, Any]:
    """The ranks below and above each probability's virtual index and the weight of the upper
    one, as ``np.quantile`` (linear method) computes them."""
    import numpy as np

    virtual = (n - 1) * probabilities
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1  # numpy takes the last value (index -1) for both
    previous[above], following[above] = -1, -1
    previous, following = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - previous
    previous[above], following[above] = n - 1, n - 1
    return previous, following, gamma


class _Ranked:
    """What sorting a 1-D float64 array of finite values would tell -- values at given ranks,
    and how many values lie below and at given points -- without sorting it, nor partitioning
    it around the 40-odd ranks 26 quantiles need (numpy's ``quantile``: most of a profile's
    time on a large column).

    One pass puts every value in one of ``BUCKETS`` buckets of equal width (a monotone
    function of the value, so the buckets are in the values' order; the band they cover is a
    sample's 1-99 % range, values outside it go to the first or the last bucket). The count of
    each bucket says in which bucket each wanted rank lies, and only the values of those
    buckets are partitioned; a count at a point needs only the values of that point's bucket.
    Results are exact whatever the data (up to the sign of a zero among equal zeros, which
    numpy's partition leaves unspecified too); only the speed depends on it. Small arrays, and
    those whose sample says the wanted buckets would hold most values (few distinct values, a
    heavy tail), are partitioned whole as numpy does."""

    BUCKETS = 4096
    SMALL = 1 << 15
    SAMPLE = 1 << 14

    def __init__(self, array: Any, lo: Any, hi: Any, ranks: Any) -> None:
        import numpy as np

        self.array, self.lo, self.hi, self.n = array, lo, hi, len(array)
        self.counted: Any = None  # values per bucket
        self.chosen: Any = None  # the values of the buckets the wanted ranks are in, as found
        if self.n <= self.SMALL or lo == hi:
            return
        sample = np.sort(array[:: max(1, self.n // self.SAMPLE)])
        start, stop = sample[len(sample) // 100], sample[-1 - len(sample) // 100]
        if not start < stop:
            start, stop = lo, hi
        with np.errstate(over="ignore"):
            scale = self.BUCKETS / (stop - start)
        if not (np.isfinite(stop - start) and np.isfinite(scale)):
            return
        self.start, self.scale = start, scale
        # few distinct values, or most of them in a few buckets (ties, a heavy tail): the
        # buckets the ranks fall in would hold most values, and partitioning all is cheaper
        in_sample = self.bucket_of(sample)
        inner = ranks[(ranks > 0) & (ranks < self.n - 1)]  # the first and last: lo and hi
        at = in_sample[(inner * (len(sample) - 1)) // (self.n - 1)]
        if np.count_nonzero(np.isin(in_sample, at)) > len(sample) // 4:
            return
        self.index = self.bucket_of(array)
        self.counted = np.bincount(self.index, minlength=self.BUCKETS)
        self.ends = np.cumsum(self.counted)

    def bucket_of(self, values: Any) -> Any:
        """Each value's bucket (non-decreasing in the value: rounding is monotone)."""
        import numpy as np

        with np.errstate(over="ignore"):
            position = np.subtract(values, self.start)
            position *= self.scale
        np.clip(position, 0, self.BUCKETS - 1, out=position)
        return position.astype(np.intp)

    def select(self, ranks: Any) -> Any:
        """The values at ``ranks`` (sorted, distinct) of the sorted array."""
        import numpy as np

        out = np.empty(len(ranks))
        first, last = ranks == 0, ranks == self.n - 1
        out[first], out[last] = self.lo, self.hi
        inner = ranks[~(first | last)]
        if not len(inner):
            return out
        if self.counted is None:
            out[~(first | last)] = np.partition(self.array, inner)[inner]
            return out
        bucket = np.searchsorted(self.ends, inner, side="right")
        needed = np.unique(bucket)
        wanted = np.zeros(self.BUCKETS, dtype=bool)
        wanted[needed] = True
        chosen = self.array[wanted[self.index]]
        # values in the needed buckets before each bucket (they come first among the chosen)
        offset = np.zeros(self.BUCKETS, dtype=np.intp)
        offset[needed] = np.cumsum(self.counted[needed]) - self.counted[needed]
        self.chosen, self.needed, self.offset = chosen, wanted, offset
        inside = offset[bucket] + inner - (self.ends[bucket] - self.counted[bucket])
        out[~(first | last)] = np.partition(chosen, inside)[inside]
        return out

    def quantiles(self, previous: Any, following: Any, gamma: Any, ranks: Any) -> Any:
        """``np.quantile`` (linear method) as numpy computes it from the two order statistics
        around each virtual index (see :func:`_virtual_indexes`)."""
        import numpy as np

        found = self.select(ranks)
        a, b = found[np.searchsorted(ranks, previous)], found[np.searchsorted(ranks, following)]
        with np.errstate(over="ignore", invalid="ignore"):  # data spanning more than a float
            difference = b - a
            result = np.add(a, difference * gamma)
            np.subtract(b, difference * (1 - gamma), out=result, where=gamma >= 0.5)
        return result

    def counts(self, points: Any) -> tuple[list[int], list[int]]:
        """How many values are below and how many at each point; after :meth:`quantiles`, the
        points between order statistics it found are counted among the values it chose."""
        import numpy as np

        below: list[int] = []
        at: list[int] = []
        buckets = self.bucket_of(points) if self.chosen is not None else None
        for i, point in enumerate(points):
            if point == self.lo or point == self.hi:
                equal = int(np.count_nonzero(self.array == point))
                below.append(0 if point == self.lo else self.n - equal)
                at.append(equal)
            elif buckets is not None and self.needed[buckets[i]]:
                b = buckets[i]
                start = int(self.ends[b] - self.counted[b])
                smaller = int(np.count_nonzero(self.chosen < point)) - int(self.offset[b])
                below.append(start + smaller)
                at.append(int(np.count_nonzero(self.chosen == point)))
            elif buckets is not None and not self.counted[buckets[i]]:
                below.append(int(self.ends[buckets[i]]))  # an empty bucket: all before it
                at.append(0)
            else:
                below.append(int(np.count_nonzero(self.array < point)))
                at.append(int(np.count_nonzero(self.array == point)))
        return below, at
