"""Data snapshot hash: ``hash_data(obj) -> "mj1-blake3:<hex>"``.

The hash covers every value of every row and column, the column names, dtypes, shape and index.
It is computed over a canonical, framed encoding (see :mod:`.hash_frames`) so that equal data
gives equal hashes whatever its memory layout, block consolidation, Arrow chunking, process or
machine. Numeric data is hashed from its raw buffers, Arrow-backed strings from their Arrow
buffers; only object columns of mixed types fall back to a value-by-value encoding. Nothing is
cached, so an in-place mutation can never return a stale hash.

Conventions a reviewer may want to know:

* NaN has one bit pattern (all NaNs hash alike); ``-0.0`` and ``0.0`` differ.
* In object columns, None, NaN, NaT and pd.NA are all "missing" and hash alike, as in pandas.
* Column labels are compared by value: an ``object`` and a ``str`` column index with the same
  names hash alike. Data columns keep their dtype: ``int64`` and ``float64`` differ.
* A file hashes by content only (its name is not part of the hash); a directory by the relative
  paths and contents of the files below it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np

from .hash_buffers import CHUNK_BYTES, arrow_array, numpy_array, object_values
from .hash_frames import SCHEME, FrameWriter, label

__all__ = ["SCHEME", "hash_data"]

_SUPPORTED = (
    "a pandas DataFrame, Series or Index, a numpy array, a file or directory path, "
    "or a list/tuple of those"
)


def hash_data(obj: Any) -> str:
    """Return the content hash of ``obj`` as ``"mj1-blake3:<64 hex digits>"``.

    Accepts a pandas DataFrame, Series or Index, a numpy array, a path (``str`` or
    ``os.PathLike``) to a file or directory, or a list/tuple of those. Raises ``TypeError`` for
    anything else and ``FileNotFoundError`` for a path that does not exist.
    """
    writer = FrameWriter()
    _hash_into(writer, obj)
    return writer.hexdigest()


def _hash_into(w: FrameWriter, obj: Any) -> None:
    if isinstance(obj, str | os.PathLike):
        _path(w, Path(os.fsdecode(obj)))
    elif isinstance(obj, np.ndarray):
        numpy_array(w, obj)
    elif isinstance(obj, list | tuple):
        w.meta(kind=type(obj).__name__, length=len(obj))
        for item in obj:
            _hash_into(w, item)
    elif type(obj).__module__.startswith("pandas"):
        _pandas(w, obj)
    else:
        raise TypeError(
            f"hash_data() takes {_SUPPORTED}; got {type(obj).__module__}.{type(obj).__qualname__}"
        )


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
    w.meta(kind="pandas", dtype=str(dtype))
    array = data.array
    if isinstance(dtype, pd.CategoricalDtype):
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
            "hash_data: no such file or directory (strings are hashed as paths)",
            str(path),
        )
    else:
        raise TypeError(f"hash_data: {path} is neither a regular file nor a directory")
