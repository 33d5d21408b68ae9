"""Canonical buffers for numpy arrays and Arrow arrays, streamed in bounded chunks.

Canonical means: C order, little-endian, one NaN bit pattern, false/true as 0/1, null slots
zeroed and recorded in a validity frame, string offsets replaced by lengths (so slicing and
chunking of Arrow data never change the bytes). Contiguous data is hashed in place, in views of
``VIEW_BYTES``; anything else is copied at most ``CHUNK_BYTES`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .hash_frames import FrameWriter

CHUNK_BYTES = 16 << 20  # bounds copies; small enough to pipeline NaN scans with hashing
VIEW_BYTES = 64 << 20  # contiguous data is hashed in place in pieces of this size


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
    """Canonical pieces of ``arr``: contiguous data in place where it is already canonical (the
    common case), else canonical copies of at most CHUNK_BYTES each."""
    for piece in _c_order_pieces(arr):
        if piece.dtype == canonical and _is_canonical(piece):
            yield piece
            continue
        step = max(1, CHUNK_BYTES // piece.dtype.itemsize)
        for start in range(0, piece.size, step):
            yield _canonical_values(piece[start : start + step], canonical)


def _c_order_pieces(arr: np.ndarray) -> Iterator[np.ndarray]:
    """Pieces of ``arr`` in C order: views of at most VIEW_BYTES where it is contiguous, else
    copies of at most CHUNK_BYTES (2-D arrays stored column-major copied tile by tile)."""
    if arr.size == 0:
        return
    itemsize = arr.dtype.itemsize
    if arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        step = max(1, VIEW_BYTES // itemsize)
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
    tiled = arr.ndim == 2 and arr.shape[1] > _TILE and abs(arr.strides[0]) < abs(arr.strides[1])
    for start in range(0, arr.shape[0], rows):
        block = arr[start : start + rows]
        yield _transposed_copy(block) if tiled else np.ascontiguousarray(block).reshape(-1)


_TILE = 16  # columns per tile when transposing: both the reads and the writes stay in cache


def _transposed_copy(block: np.ndarray) -> np.ndarray:
    """A C-order copy of a 2-D block stored column-major, made a few columns at a time (about
    three times faster than one strided copy of a wide block)."""
    out = np.empty(block.shape, dtype=block.dtype)
    for column in range(0, block.shape[1], _TILE):
        out[:, column : column + _TILE] = block[:, column : column + _TILE]
    return out.reshape(-1)


def _is_canonical(piece: np.ndarray) -> bool:
    """No NaN of another bit pattern, no bool byte other than 0/1, hashable as it is."""
    kind = piece.dtype.kind
    if kind in "fc" and piece.size:
        floats = piece.view(piece.real.dtype) if kind == "c" else piece
        return not np.isnan(floats.max())  # max propagates NaN: one read-only pass
    if kind == "b" and piece.size:
        return not piece.view(np.uint8).max() > 1
    return kind not in "mM"  # datetimes have no buffer protocol: hashed as int64 ticks


def _canonical_values(piece: np.ndarray, canonical: np.dtype) -> np.ndarray:
    if piece.dtype != canonical:
        piece = piece.astype(canonical)
    if _is_canonical(piece):
        return piece
    kind = canonical.kind
    if kind in "fc":
        floats = (piece.view(piece.real.dtype) if kind == "c" else piece).copy()
        floats[np.isnan(floats)] = np.nan
        return floats.view(canonical) if kind == "c" else floats
    if kind == "b":
        return piece.view(np.uint8) != 0
    return piece.view("<i8")  # datetimes and timedeltas


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


def arrow_column(w: FrameWriter, data: Any, **extra: Any) -> None:
    """Hash a column of a pyarrow or polars table (an Array or ChunkedArray).

    Layout never changes the bytes: chunking, offsets, ``string``/``large_string``/
    ``string_view`` (and the binary and list equivalents), nested field names and nullability
    flags, dictionary index width and per-chunk dictionaries. The type does: dictionary
    encoding (a categorical column) and its ``ordered`` flag are recorded, an extension type by
    its name, and ``extra`` (e.g. a polars Enum's categories) in the column's metadata frame.
    """
    import pyarrow as pa

    chunks = list(data.chunks) if isinstance(data, pa.ChunkedArray) else [data]
    arrow_type = data.type
    extension = None
    if isinstance(arrow_type, pa.ExtensionType):
        extension = arrow_type.extension_name
        arrow_type = arrow_type.storage_type
        chunks = [c.storage for c in chunks]
    dictionary = pa.types.is_dictionary(arrow_type)
    ordered = bool(arrow_type.ordered) if dictionary else False
    if dictionary:
        chunks = [_decoded(c) for c in chunks]
        arrow_type = chunks[0].type if chunks else canonical_arrow_type(arrow_type.value_type)
    w.meta(
        kind="arrow column", dictionary=dictionary, ordered=ordered, extension=extension, **extra
    )
    target = canonical_arrow_type(arrow_type)
    if target != arrow_type and not _is_binary_like(arrow_type):  # string/large_string agree
        try:
            chunks = [c.cast(target) for c in chunks]
            arrow_type = target
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # hashed by its own type name
            pass
    arrow_array(w, pa.chunked_array(chunks, type=arrow_type))


def _decoded(chunk: Any) -> Any:
    """A dictionary-encoded chunk as plain values (the dictionary cast first: pyarrow cannot
    decode every value type, e.g. ``string_view``)."""
    import pyarrow as pa

    target = canonical_arrow_type(chunk.type.value_type)
    dictionary = chunk.dictionary
    if dictionary.type != target:
        dictionary = dictionary.cast(target)
    return pa.DictionaryArray.from_arrays(chunk.indices, dictionary).dictionary_decode()


def canonical_arrow_type(arrow_type: Any) -> Any:
    """The type ``arrow_type`` is hashed as: large offsets, no views, no dictionaries, nested
    fields named as pyarrow names them by default and nullable."""
    import pyarrow as pa

    t = pa.types
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return pa.large_string()
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_binary_view(arrow_type):
        return pa.large_binary()
    if (
        t.is_list(arrow_type)
        or t.is_large_list(arrow_type)
        or t.is_list_view(arrow_type)
        or t.is_large_list_view(arrow_type)
    ):
        return pa.large_list(canonical_arrow_type(arrow_type.value_type))
    if t.is_fixed_size_list(arrow_type):
        return pa.list_(canonical_arrow_type(arrow_type.value_type), arrow_type.list_size)
    if t.is_map(arrow_type):
        return pa.map_(
            canonical_arrow_type(arrow_type.key_type),
            canonical_arrow_type(arrow_type.item_type),
            keys_sorted=arrow_type.keys_sorted,
        )
    if t.is_struct(arrow_type):
        fields = [arrow_type.field(i) for i in range(arrow_type.num_fields)]
        return pa.struct([pa.field(f.name, canonical_arrow_type(f.type)) for f in fields])
    if t.is_dictionary(arrow_type):
        return canonical_arrow_type(arrow_type.value_type)
    return arrow_type


def sparse_matrix(w: FrameWriter, matrix: Any) -> None:
    """Hash a scipy.sparse matrix or array of any format by its canonical CSR form.

    Canonical: duplicate entries summed, explicit zeros dropped (``-0.0`` is a zero), column
    indices sorted within each row, all indices as int64. So csr, csc, coo, lil, dok, bsr and
    dia forms of the same matrix, and a ``*_matrix`` and a ``*_array``, hash alike. Arrays of
    other than two dimensions are hashed as the 2-D matrix of their last axis (their shape is
    recorded). Never the same hash as the dense array: the encoding differs.
    """
    from scipy import sparse

    shape = [int(n) for n in matrix.shape]
    if len(shape) == 2:
        csr = matrix if matrix.format == "csr" else matrix.tocsr()
    else:
        coo = matrix.tocoo()
        coords = coo.coords
        rows = (
            np.ravel_multi_index(coords[:-1], shape[:-1])
            if len(shape) > 1
            else np.zeros(coo.nnz, dtype=np.int64)
        )
        flat = (int(np.prod(shape[:-1])), shape[-1])
        csr = sparse.csr_array((coo.data, (rows, coords[-1])), shape=flat)
    csr = _canonical_csr(csr)
    nnz = int(csr.indptr[-1])
    w.meta(kind="sparse", shape=shape, nnz=nnz)
    _int64_array(w, csr.indptr)
    _int64_array(w, csr.indices[:nnz])
    numpy_array(w, csr.data[:nnz])


def _canonical_csr(csr: Any) -> Any:
    """``csr`` if already canonical, else a canonical copy (the input is never modified).

    The check is done here on the index arrays, never trusting scipy's cached
    ``has_canonical_format`` flag, which an in-place edit of ``indices`` leaves stale."""
    from scipy import sparse

    nnz = int(csr.indptr[-1])
    indptr, indices, data = csr.indptr, csr.indices[:nnz], csr.data[:nnz]
    if _sorted_within_rows(indptr, indices) and not np.any(data == 0):
        return csr
    fresh = sparse.csr_array((data.copy(), indices.copy(), indptr.copy()), shape=csr.shape)
    fresh.sum_duplicates()  # a fresh object: its format flag is computed, not cached
    fresh.eliminate_zeros()
    return fresh


def _sorted_within_rows(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """Column indices strictly increasing within every row (sorted, no duplicates)."""
    if indices.size < 2:
        return True
    increasing = indices[1:] > indices[:-1]  # no copy, no overflow, whatever the index width
    starts = indptr[1:-1].astype(np.int64, copy=False)
    starts = starts[(starts > 0) & (starts < indices.size)]
    increasing[starts - 1] = True  # a row's first entry may be smaller than the last one's
    return bool(increasing.all())


def _int64_array(w: FrameWriter, values: np.ndarray) -> None:
    """Hash integer ``values`` exactly as ``numpy_array`` hashes them cast to int64, in chunks."""
    n = int(values.size)
    w.meta(kind="ndarray", dtype="<i8", shape=[n])
    step = max(1, CHUNK_BYTES // 8)
    pieces = (values[i : i + step].astype("<i8", copy=False) for i in range(0, n, step))
    w.buffer(pieces, n * 8)
