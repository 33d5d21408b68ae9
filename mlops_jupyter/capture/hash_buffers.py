"""Canonical buffers for numpy arrays and Arrow arrays, streamed in bounded chunks.

Canonical means: C order, little-endian, one NaN bit pattern, false/true as 0/1, null slots
zeroed and recorded in a validity frame, string offsets replaced by lengths (so slicing and
chunking of Arrow data never change the bytes). Contiguous data is hashed in place; anything
else is copied at most ``CHUNK_BYTES`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .hash_frames import FrameWriter

CHUNK_BYTES = 16 << 20  # bounds copies; small enough to pipeline NaN scans with hashing


def numpy_array(w: FrameWriter, arr: np.ndarray) -> None:
    """Hash a numpy array of any dtype, order or strides."""
    dtype = arr.dtype
    if dtype.hasobject:
        object_values(w, arr.reshape(-1, order="C"), shape=list(arr.shape))
        return
    if dtype.names:
        w.meta(kind="structured", shape=list(arr.shape), fields=list(dtype.names))
        for name in dtype.names:
            numpy_array(w, arr[name])
        return
    if dtype.type in (np.longdouble, np.clongdouble) and np.dtype(np.longdouble).itemsize > 8:
        raise TypeError(
            f"hash_data cannot hash {dtype} arrays (their padding bytes are undefined); "
            "convert them to float64 first"
        )
    canonical = dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype
    w.meta(kind="ndarray", dtype=canonical.str, shape=list(arr.shape))
    w.buffer(_canonical_pieces(arr, canonical), arr.size * dtype.itemsize)


def _canonical_pieces(arr: np.ndarray, canonical: np.dtype) -> Iterator[np.ndarray]:
    for piece in _c_order_pieces(arr):
        yield _canonical_values(piece, canonical)


def _c_order_pieces(arr: np.ndarray) -> Iterator[np.ndarray]:
    """Pieces of ``arr`` in C order, each at most CHUNK_BYTES (copied only if not contiguous)."""
    if arr.size == 0:
        return
    itemsize = arr.dtype.itemsize
    if arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        step = max(1, CHUNK_BYTES // itemsize)
        for start in range(0, flat.size, step):
            yield flat[start : start + step]
        return
    if arr.ndim == 1:
        step = max(1, CHUNK_BYTES // itemsize)
        for start in range(0, arr.size, step):
            yield np.ascontiguousarray(arr[start : start + step])
        return
    row_bytes = (arr.size // arr.shape[0]) * itemsize
    if row_bytes > CHUNK_BYTES:
        for row in arr:
            yield from _c_order_pieces(row)
        return
    rows = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, arr.shape[0], rows):
        yield np.ascontiguousarray(arr[start : start + rows]).reshape(-1)


def _canonical_values(piece: np.ndarray, canonical: np.dtype) -> np.ndarray:
    if piece.dtype != canonical:
        piece = piece.astype(canonical)
    kind = canonical.kind
    if kind in "fc" and piece.size:
        floats = piece.view(piece.real.dtype) if kind == "c" else piece
        if np.isnan(floats.max()):  # max propagates NaN: one read-only pass
            floats = floats.copy()
            floats[np.isnan(floats)] = np.nan
            piece = floats.view(canonical) if kind == "c" else floats
    elif kind == "b" and piece.size and piece.view(np.uint8).max() > 1:
        piece = piece.view(np.uint8) != 0
    elif kind in "mM":  # no buffer protocol for datetimes: hash their int64 ticks
        piece = piece.view("<i8")
    return piece


def object_values(w: FrameWriter, values: np.ndarray, shape: list[int] | None = None) -> None:
    """Hash an object array: through Arrow when its values have one type, else value by value.

    Missing values (None, NaN, NaT, pd.NA) hash as missing whichever of them is used.
    """
    import pyarrow as pa

    w.meta(kind="object", shape=shape if shape is not None else [len(values)])
    try:
        arrow = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        arrow = None
    if arrow is not None and _hashable_by_buffers(arrow.type):
        arrow_array(w, arrow)
    else:
        w.values(values)


def _hashable_by_buffers(arrow_type: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(
        _is_binary_like(arrow_type)
        or t.is_boolean(arrow_type)
        or t.is_integer(arrow_type)
        or t.is_floating(arrow_type)
        or t.is_temporal(arrow_type)
        or t.is_decimal(arrow_type)
        or t.is_null(arrow_type)
    )


def arrow_array(w: FrameWriter, data: Any) -> None:
    """Hash an Arrow Array or ChunkedArray independently of its chunking and offsets."""
    import pyarrow as pa

    chunks = list(data.chunks) if isinstance(data, pa.ChunkedArray) else [data]
    arrow_type = data.type
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
        chunks = [c.storage for c in chunks]
    if pa.types.is_dictionary(arrow_type):
        chunks = [c.dictionary_decode() for c in chunks]
        arrow_type = arrow_type.value_type
    length = sum(len(c) for c in chunks)
    nulls = sum(c.null_count for c in chunks)
    w.meta(kind="arrow", type=_type_name(arrow_type), length=length, nulls=nulls)
    if nulls:
        w.buffer((np.asarray(c.is_valid(), dtype=np.bool_) for c in chunks), length)
    if not _hashable_by_buffers(arrow_type):
        w.values(_python_values(chunks))
    elif pa.types.is_null(arrow_type):
        return
    elif _is_binary_like(arrow_type):
        _binary_chunks(w, chunks, length)
    elif pa.types.is_boolean(arrow_type):
        filled = [_fill_nulls(c, False) for c in chunks]
        w.buffer((np.asarray(c, dtype=np.bool_) for c in filled), length)
    else:
        _fixed_width_chunks(w, chunks, arrow_type, length)


def _type_name(arrow_type: Any) -> str:
    if _is_binary_like(arrow_type):
        import pyarrow as pa

        is_text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
        return "utf8" if is_text else "binary"
    return str(arrow_type)


def _is_binary_like(arrow_type: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(
        t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type)
    )


def _fill_nulls(chunk: Any, value: Any) -> Any:
    import pyarrow as pa

    if not chunk.null_count:
        return chunk
    return chunk.fill_null(pa.scalar(value, type=chunk.type))


def _binary_chunks(w: FrameWriter, chunks: list[Any], length: int) -> None:
    """Strings and bytes: per-value lengths (int64), then the value bytes, from Arrow buffers."""
    filled = [_fill_nulls(c, "" if _type_name(c.type) == "utf8" else b"") for c in chunks]
    offsets = [_offsets(c) for c in filled]
    w.buffer((np.diff(o).astype("<i8", copy=False) for o in offsets), length * 8)
    total = sum(int(o[-1] - o[0]) for o in offsets if o.size)
    pieces = (
        c.buffers()[2][int(o[0]) : int(o[-1])]
        for c, o in zip(filled, offsets, strict=True)
        if o.size and o[-1] > o[0]
    )
    w.buffer(pieces, total)


def _offsets(chunk: Any) -> np.ndarray:
    import pyarrow as pa

    t = pa.types
    large = t.is_large_string(chunk.type) or t.is_large_binary(chunk.type)
    buffer = chunk.buffers()[1]
    if buffer is None:  # an empty chunk may have no offsets buffer
        return np.zeros(1, dtype=np.int64)
    raw = np.frombuffer(buffer, dtype="<i8" if large else "<i4")
    return raw[chunk.offset : chunk.offset + len(chunk) + 1]


def _fixed_width_chunks(w: FrameWriter, chunks: list[Any], arrow_type: Any, length: int) -> None:
    """Fixed-width values straight from the values buffer, null slots zeroed."""
    import pyarrow as pa

    width = arrow_type.bit_width // 8
    if pa.types.is_floating(arrow_type):
        view_dtype = np.dtype(f"<f{width}")
    elif width in (1, 2, 4, 8):
        view_dtype = np.dtype(f"<u{width}")
    else:
        view_dtype = np.dtype(f"V{width}")

    def pieces() -> Iterator[np.ndarray]:
        for chunk in chunks:
            if not len(chunk):
                continue
            raw = np.frombuffer(chunk.buffers()[1], dtype=view_dtype)
            values = raw[chunk.offset : chunk.offset + len(chunk)]
            if chunk.null_count:
                values = values.copy()
                values[~np.asarray(chunk.is_valid(), dtype=np.bool_)] = np.zeros(1, view_dtype)
            yield _canonical_values(values, view_dtype)

    w.buffer(pieces(), length * width)


def _python_values(chunks: list[Any]) -> Iterator[Any]:
    for chunk in chunks:
        yield from chunk.to_pylist()
