"""Evaluation rows kept as a blob: written without pickle, read back only if their hash holds.

A pandas DataFrame or Series, a polars DataFrame or a pyarrow Table is written as Parquet; a
numeric or boolean numpy array as ``.npy`` (``allow_pickle=False``). The first bytes say which
(``MJROWS1 <format>\\n``), so reading never guesses and never unpickles. An object that cannot be
written that way, or whose round trip would change its ``hash_data``, is not kept (``None``).
Parquet is written without dictionary pages: five times faster on float columns (a 100,000 x 20
frame in ~40 ms), and the round trip still keeps categorical dtypes (Arrow's schema says so).
"""

from __future__ import annotations

import io
from typing import Any

MAX_ROW_CELLS = 2_000_000  # larger evaluation sets keep their hash and profile, not their rows
_MAGIC = b"MJROWS1 "
_FORMATS = ("pandas-frame", "pandas-series", "polars-frame", "arrow-table", "numpy")


def encode_rows(obj: Any, digest: str) -> bytes | None:
    """The blob bytes of ``obj``'s rows, or ``None`` when they cannot (or should not) be kept.

    ``digest`` is ``hash_data(obj)``: bytes are returned only when decoding them gives it back.
    """
    from ..capture.hashing import hash_data

    try:
        encoded = _encode(obj)
        if encoded is None:
            return None
        return encoded if hash_data(decode_rows(encoded)) == digest else None
    except Exception:  # a type Parquet cannot write, an object column...: not kept
        return None


def decode_rows(data: bytes) -> Any:
    """The object a blob of :func:`encode_rows` holds (raises ``ValueError`` on another blob)."""
    head, sep, body = data.partition(b"\n")
    fmt = head[len(_MAGIC) :].decode("ascii", "replace")
    if not sep or not head.startswith(_MAGIC) or fmt not in _FORMATS:
        raise ValueError("not a blob of evaluation rows")
    buffer = io.BytesIO(body)
    if fmt == "numpy":
        import numpy as np

        return np.load(buffer, allow_pickle=False)
    if fmt == "arrow-table":
        import pyarrow.parquet as pq

        return pq.read_table(buffer)
    if fmt == "polars-frame":
        import polars as pl

        return pl.read_parquet(buffer)
    import pandas as pd

    frame = pd.read_parquet(buffer)
    if fmt == "pandas-series":
        series = frame.iloc[:, 0]
        name = frame.attrs.get("mj_series_name", series.name)
        return series.rename(None if name == "__mj_unnamed__" else name)
    return frame


def _encode(obj: Any) -> bytes | None:
    module = type(obj).__module__.split(".")[0]
    shape = getattr(obj, "shape", None)
    if not isinstance(shape, tuple) or not shape:
        return None
    cells = 1
    for n in shape:
        cells *= int(n)
    if cells > MAX_ROW_CELLS:
        return None
    buffer = io.BytesIO()
    if module == "numpy":
        import numpy as np

        if not isinstance(obj, np.ndarray) or obj.dtype.kind not in "biuf":
            return None
        np.save(buffer, obj, allow_pickle=False)
        fmt = "numpy"
    elif module == "pandas":
        import pandas as pd

        if isinstance(obj, pd.Series):
            frame = obj.to_frame(name="__mj_unnamed__" if obj.name is None else obj.name)
            frame.attrs["mj_series_name"] = "__mj_unnamed__" if obj.name is None else obj.name
            frame.to_parquet(buffer, use_dictionary=False)
            fmt = "pandas-series"
        elif isinstance(obj, pd.DataFrame):
            obj.to_parquet(buffer, use_dictionary=False)
            fmt = "pandas-frame"
        else:
            return None
    elif module == "polars" and hasattr(obj, "write_parquet") and hasattr(obj, "columns"):
        obj.write_parquet(buffer)
        fmt = "polars-frame"
    elif module == "pyarrow" and hasattr(obj, "column_names") and hasattr(obj, "num_rows"):
        import pyarrow.parquet as pq

        pq.write_table(obj, buffer, use_dictionary=False)
        fmt = "arrow-table"
    else:
        return None
    return _MAGIC + fmt.encode() + b"\n" + buffer.getvalue()
