"""Data snapshot hash: ``hash_data(obj) -> "mj1-blake3:<hex>"``.

The hash covers every value of every row and column, the column names, dtypes, shape and index.
It is computed over a canonical, framed encoding (see :mod:`.hash_frames`) so that equal data
gives equal hashes whatever its memory layout, block consolidation, Arrow chunking, sparse
format, process or machine. Numeric data is hashed from its raw buffers, Arrow-backed strings
(pandas, pyarrow, polars) from their Arrow buffers; only object columns of mixed types and nested
Arrow types fall back to a value-by-value encoding. Nothing is cached, so an in-place mutation
can never return a stale hash. polars, pyarrow and scipy are imported only when an object of
theirs is hashed.

Conventions a reviewer may want to know:

* NaN has one bit pattern (all NaNs hash alike); ``-0.0`` and ``0.0`` differ.
* In object columns, None, NaN, NaT and pd.NA are all "missing" and hash alike, as in pandas.
* Column labels are compared by value: an ``object`` and a ``str`` column index with the same
  names hash alike. Data columns keep their dtype: ``int64`` and ``float64`` differ.
* A file hashes by content only (its name is not part of the hash); a directory by the relative
  paths and contents of the files below it. Only a single ``str`` or ``os.PathLike`` is a path:
  a list or tuple of strings (documents, labels, tokens) is data, hashed as a string column.
* A polars DataFrame is hashed through its Arrow export, exactly as a pyarrow Table: the same
  columns with the same Arrow types hash alike in either library (a Table and a RecordBatch
  too). ``string``, ``large_string`` and ``string_view`` (and the binary and list variants) are
  one type; dictionary encoding (polars ``Categorical``/``Enum``) is a type of its own, and an
  Enum's categories are part of its hash. A polars Series is hashed with its name, a pyarrow
  Array or ChunkedArray without one; neither equals a pandas object (which has an index).
* A scipy.sparse matrix or array hashes by its canonical CSR form, whatever its format:
  duplicates summed, explicit zeros dropped, indices sorted. It does not hash like the dense
  numpy array with the same values (that is another kind of object).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np

from .hash_buffers import (
    CHUNK_BYTES,
    arrow_array,
    arrow_column,
    numpy_array,
    object_values,
    sparse_matrix,
)
from .hash_frames import SCHEME, FrameWriter, label

__all__ = ["SCHEME", "hash_data"]

_SUPPORTED = (
    "a pandas DataFrame, Series or Index, a numpy array, a polars DataFrame or Series, a pyarrow "
    "Table, RecordBatch, ChunkedArray or Array, a scipy.sparse matrix, a file or directory path, "
    "a list/tuple of strings, or a list/tuple of those"
)


def hash_data(obj: Any) -> str:
    """Return the content hash of ``obj`` as ``"mj1-blake3:<64 hex digits>"``.

    Accepts a pandas DataFrame, Series or Index, a numpy array, a polars DataFrame or Series, a
    pyarrow Table, RecordBatch, ChunkedArray or Array, a scipy.sparse matrix or array (any
    format), a path (a single ``str`` or ``os.PathLike``) to a file or directory, a list/tuple
    of strings (hashed as a string column, never as paths), or a list/tuple of data objects.
    Raises ``TypeError`` for anything else and ``FileNotFoundError`` for a path that does not
    exist.
    """
    writer = FrameWriter()
    try:
        _hash_into(writer, obj)
        return writer.hexdigest()
    finally:
        writer.close()


def _hash_into(w: FrameWriter, obj: Any) -> None:
    if isinstance(obj, str | os.PathLike):
        _path(w, Path(os.fsdecode(obj)))
    elif isinstance(obj, np.ndarray):
        numpy_array(w, obj)
    elif isinstance(obj, list | tuple):
        _sequence(w, obj)
    else:
        module = type(obj).__module__
        if module.startswith("pandas"):
            _pandas(w, obj)
        elif module == "polars" or module.startswith("polars."):
            _polars(w, obj)
        elif module == "pyarrow" or module.startswith("pyarrow."):
            _arrow(w, obj)
        elif module.startswith("scipy.sparse"):
            _sparse(w, obj)
        else:
            raise TypeError(
                f"hash_data() takes {_SUPPORTED}; got {module}.{type(obj).__qualname__}"
            )


def _sequence(w: FrameWriter, items: list[Any] | tuple[Any, ...]) -> None:
    """A list/tuple of strings is a string column; any other list/tuple holds data objects."""
    if _all_strings(items):
        w.meta(kind=type(items).__name__, length=len(items), values="strings")
        _strings(w, items)
        return
    w.meta(kind=type(items).__name__, length=len(items))
    for item in items:
        if isinstance(item, str | os.PathLike):
            raise TypeError(
                "hash_data: a list/tuple mixes strings or paths with other items; only a single "
                "str or os.PathLike is a path (hash each file on its own), and a list of strings "
                "is hashed as a string column"
            )
        _hash_into(w, item)


def _pandas(w: FrameWriter, obj: Any) -> None:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        w.meta(kind="DataFrame", shape=list(obj.shape))
        _labels(w, obj.columns)
        _index(w, obj.index)
        for position in range(obj.shape[1]):
            _values(w, obj.iloc[:, position])
    elif isinstance(obj, pd.Series):
        w.meta(kind="Series", name=label(obj.name), length=len(obj))
        _index(w, obj.index)
        _values(w, obj)
    elif isinstance(obj, pd.Index):
        _index(w, obj)
    else:
        raise TypeError(f"hash_data() takes {_SUPPORTED}; got pandas {type(obj).__qualname__}")


def _all_strings(items: list[Any] | tuple[Any, ...]) -> bool:
    """Only strings and None, at least one string (an empty list stays an empty list)."""
    types = set(map(type, items))  # C speed for the common case: exactly str
    if str in types and types <= {str, type(None)}:
        return True
    return any(isinstance(item, str) for item in items) and all(
        isinstance(item, str) or item is None for item in items
    )


def _strings(w: FrameWriter, items: list[Any] | tuple[Any, ...]) -> None:
    """A string column (None is missing) from its Arrow buffers, value by value only when a
    string has no UTF-8 form (a lone surrogate)."""
    import pyarrow as pa

    try:
        arrow = pa.array(items, type=pa.large_string())
    except (pa.ArrowException, UnicodeError):
        w.values(items)
        return
    arrow_array(w, arrow)


def _table_meta(w: FrameWriter, names: list[Any], rows: int) -> None:
    """A pyarrow Table/RecordBatch or polars DataFrame: shape and column names (no index)."""
    w.meta(kind="table", shape=[int(rows), len(names)], columns=[label(name) for name in names])


def _arrow(w: FrameWriter, obj: Any) -> None:
    import pyarrow as pa

    if isinstance(obj, pa.Table | pa.RecordBatch):
        _table_meta(w, obj.schema.names, obj.num_rows)
        for column in obj.columns:
            arrow_column(w, column)
    elif isinstance(obj, pa.ChunkedArray | pa.Array):
        arrow_column(w, obj)
    else:
        raise TypeError(f"hash_data() takes {_SUPPORTED}; got pyarrow {type(obj).__qualname__}")


def _polars(w: FrameWriter, obj: Any) -> None:
    import polars as pl

    if isinstance(obj, pl.DataFrame):
        _table_meta(w, obj.columns, obj.height)
        table = None
        if not any(_polars_values_only(dtype) for dtype in obj.schema.values()):
            try:
                table = obj.to_arrow()  # zero-copy for numeric columns, keeps the chunks
            except (ValueError, TypeError, NotImplementedError, pl.exceptions.PolarsError):
                table = None
        for position, series in enumerate(obj.get_columns()):
            _polars_column(w, series, table.column(position) if table is not None else None)
    elif isinstance(obj, pl.Series):
        w.meta(kind="named column", name=label(obj.name), length=len(obj))
        _polars_column(w, obj, None)
    elif isinstance(obj, pl.LazyFrame):
        raise TypeError("hash_data() takes a polars DataFrame, not a LazyFrame: collect() it first")
    else:
        raise TypeError(f"hash_data() takes {_SUPPORTED}; got polars {type(obj).__qualname__}")


def _polars_values_only(dtype: Any) -> bool:
    """Dtypes whose Arrow export is unusable: Object columns export their PyObject pointers."""
    import polars as pl

    if isinstance(dtype, pl.Object):
        return True
    if isinstance(dtype, pl.List | pl.Array):
        return _polars_values_only(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_polars_values_only(field.dtype) for field in dtype.fields)
    return False


def _polars_column(w: FrameWriter, series: Any, arrow: Any) -> None:
    import polars as pl

    if arrow is None and not _polars_values_only(series.dtype):
        try:
            arrow = series.to_frame().to_arrow().column(0)  # keeps the chunks (no rechunk)
        except (ValueError, TypeError, NotImplementedError, pl.exceptions.PolarsError):
            arrow = None  # e.g. Int128: no Arrow type
    if arrow is None:
        w.meta(kind="polars column", dtype=str(series.dtype), length=len(series))
        w.values(series.to_list())
    elif isinstance(series.dtype, pl.Enum):  # its categories are part of the dtype
        arrow_column(w, arrow, categories=series.dtype.categories.to_list())
    else:
        arrow_column(w, arrow)


def _sparse(w: FrameWriter, obj: Any) -> None:
    from scipy import sparse

    if not sparse.issparse(obj):
        raise TypeError(f"hash_data() takes {_SUPPORTED}; got scipy {type(obj).__qualname__}")
    sparse_matrix(w, obj)


def _labels(w: FrameWriter, columns: Any) -> None:
    """Column labels, by value (their index dtype is not part of the hash)."""
    w.meta(
        kind="columns",
        labels=[label(name) for name in columns],
        names=[label(name) for name in columns.names],
    )


def _index(w: FrameWriter, index: Any) -> None:
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        w.meta(kind="MultiIndex", names=[label(n) for n in index.names], levels=index.nlevels)
        for level in range(index.nlevels):
            _values(w, index.get_level_values(level))
        return
    w.meta(kind="Index", name=label(index.name))
    if isinstance(index, pd.RangeIndex):
        _range(w, index)
    else:
        _values(w, index)


def _range(w: FrameWriter, index: Any) -> None:
    """A RangeIndex hashes exactly like the int64 Index it stands for, generated in chunks."""
    start, step, n = index.start, index.step, len(index)
    w.meta(kind="ndarray", dtype="<i8", shape=[n])
    per_chunk = CHUNK_BYTES // 8
    pieces = (
        np.arange(start + i * step, start + min(i + per_chunk, n) * step, step, dtype="<i8")
        for i in range(0, n, per_chunk)
    )
    w.buffer(pieces, n * 8)


def _values(w: FrameWriter, data: Any) -> None:
    """The values of a Series or Index, whatever their dtype."""
    import pandas as pd

    dtype = data.dtype
    if isinstance(dtype, np.dtype):
        if dtype.hasobject:
            object_values(w, np.asarray(data, dtype=object))
        else:
            numpy_array(w, data.to_numpy(copy=False))
        return
    w.meta(kind="pandas", dtype=str(dtype))  # names the unit and zone, or the frequency
    array = data.array
    if isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        numpy_array(w, array.asi8)  # the int64 values in place (NaT as its own int64)
    elif isinstance(dtype, pd.CategoricalDtype):
        w.meta(ordered=bool(dtype.ordered))
        _values(w, dtype.categories)
        numpy_array(w, np.asarray(array.codes))
    elif isinstance(dtype, pd.IntervalDtype):
        w.meta(closed=str(dtype.closed))
        _values(w, pd.Index(array.left))
        _values(w, pd.Index(array.right))
    elif isinstance(dtype, pd.SparseDtype):
        numpy_array(w, np.asarray(array))
    elif hasattr(array, "__arrow_array__"):
        arrow_array(w, array.__arrow_array__())
    else:
        object_values(w, np.asarray(array, dtype=object))


def _path(w: FrameWriter, path: Path) -> None:
    if path.is_file():
        size = path.stat().st_size
        w.meta(kind="file", size=size)
        w.file(str(path), size)
    elif path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).parts
        )
        w.meta(kind="directory", files=len(files))
        for file in files:
            size = file.stat().st_size
            w.meta(path=file.relative_to(path).as_posix(), size=size)
            w.file(str(file), size)
    elif not path.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            "hash_data: no such file or directory (a single string is hashed as a path; "
            "a list of strings is hashed as data)",
            str(path),
        )
    else:
        raise TypeError(f"hash_data: {path} is neither a regular file nor a directory")
