"""The framed, canonical byte stream that :func:`hash_data` feeds to BLAKE3.

Every piece of hashed data is a *frame*: a one-byte kind, the payload length as an unsigned
64-bit little-endian integer, then the payload. Metadata frames carry canonical JSON (sorted
keys, no whitespace); buffer frames carry raw little-endian values, streamed in pieces whose
total is declared up front. Framing makes the encoding unambiguous: no two different inputs can
produce the same byte stream by shifting bytes between neighbouring fields.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import queue
import struct
import threading
from collections.abc import Iterable
from typing import Any

import blake3
import numpy as np

SCHEME = "mj1-blake3"

_META = b"M"
_BUFFER = b"B"
_U64 = struct.Struct("<Q")
_FLUSH_AT = 1 << 20
BACKGROUND_BYTES = 32 << 20  # below this a worker thread costs more than it saves


class FrameWriter:
    """Feeds frames to a multithreaded BLAKE3 hasher.

    Small data is hashed inline. From the first buffer of ``BACKGROUND_BYTES`` on, hashing
    moves to a worker thread fed through a one-piece queue, so the caller canonicalises the
    next piece (NaN scan, copies, the next column) while the worker hashes the current one;
    numpy and BLAKE3 release the GIL, so the two overlap. Call :meth:`close` when done (it
    stops the worker; :meth:`hexdigest` waits for it first).
    """

    def __init__(self) -> None:
        self._hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        self._pending = bytearray()
        self._worker: _HashWorker | None = None

    def meta(self, **fields: Any) -> None:
        """A metadata frame: canonical JSON of ``fields``."""
        payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        data = payload.encode("utf-8")
        self._small(_META + _U64.pack(len(data)) + data)

    def buffer(self, pieces: Iterable[Any], total: int) -> None:
        """A buffer frame of ``total`` bytes, streamed from ``pieces`` (buffer-protocol objects)."""
        self._small(_BUFFER + _U64.pack(total))
        if total >= BACKGROUND_BYTES and self._worker is None:
            self._worker = _HashWorker(self._hasher)
        self._flush()
        seen = 0
        for piece in pieces:
            view = memoryview(piece).cast("B")
            seen += view.nbytes
            if view.nbytes:
                self._update(view)
        if seen != total:  # a bug in an encoder, never user input
            raise AssertionError(f"buffer frame declared {total} bytes but streamed {seen}")

    def file(self, path: str, size: int) -> None:
        """A buffer frame with a file's content (memory-mapped, multithreaded)."""
        self._small(_BUFFER + _U64.pack(size))
        self._flush()
        if size:
            if self._worker is not None:
                self._worker.put(path)
            else:
                self._hasher.update_mmap(path)

    def values(self, items: Iterable[Any]) -> None:
        """A frame of Python values in the type-tagged encoding of :func:`encode_value`."""
        out = bytearray()
        count = 0
        for item in items:
            encode_value(item, out)
            count += 1
        self.meta(values=count)
        self.buffer([out], len(out))

    def hexdigest(self) -> str:
        self._flush()
        if self._worker is not None:
            self._worker.finish()
        return f"{SCHEME}:{self._hasher.hexdigest()}"

    def close(self) -> None:
        """Stop the worker thread, if one was started (idempotent)."""
        if self._worker is not None:
            self._worker.stop()

    def _update(self, data: Any) -> None:
        if self._worker is not None:
            self._worker.put(data)
        else:
            self._hasher.update(data)

    def _small(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._update(bytes(self._pending))
            self._pending = bytearray()


class _HashWorker:
    """A thread that feeds queued pieces (buffers, or file paths to memory-map) to a hasher."""

    def __init__(self, hasher: Any) -> None:
        self._hasher = hasher
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlops-jupyter-hash", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def finish(self) -> None:
        """Wait until every queued piece is hashed; re-raise the worker's error, if any."""
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is not None:
                continue  # drain: the caller learns of the error on its next put or finish
            try:
                if isinstance(item, str):
                    self._hasher.update_mmap(item)
                else:
                    self._hasher.update(item)
            except BaseException as error:  # handed to the caller's thread
                self._error = error


_END = object()


def is_missing(value: Any) -> bool:
    """True for the values pandas treats as missing: None, NaN, NaT, pd.NA."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    name = type(value).__name__
    return name in ("NAType", "NaTType")


def _tagged(out: bytearray, tag: bytes, payload: bytes) -> None:
    out += tag + _U64.pack(len(payload)) + payload


def encode_value(value: Any, out: bytearray) -> None:
    """Append a deterministic, type-tagged encoding of one Python value to ``out``.

    Used where no buffer exists (object columns of mixed types, labels, nested values). Missing
    values (None, NaN, NaT, pd.NA) share one encoding, as they do in pandas.
    """
    if is_missing(value):
        out += b"N"
    elif isinstance(value, bool | np.bool_):
        out += b"T" if value else b"F"
    elif isinstance(value, int | np.integer):
        _tagged(out, b"i", str(int(value)).encode())
    elif isinstance(value, float | np.floating):
        if isinstance(value, np.longdouble):
            raise TypeError("hash_data cannot hash long double values; convert them to float64")
        _tagged(out, b"f", struct.pack("<d", float(value)))
    elif isinstance(value, complex | np.complexfloating):
        _tagged(out, b"c", struct.pack("<dd", value.real, value.imag))
    elif isinstance(value, str | np.str_):
        _tagged(out, b"s", str(value).encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes | bytearray | memoryview | np.bytes_):
        _tagged(out, b"y", bytes(value))
    elif isinstance(value, decimal.Decimal):
        _tagged(out, b"d", str(value).encode())
    elif _is_timestamp(value):
        tz = str(value.tz) if value.tz is not None else ""
        _tagged(out, b"P", f"{value.value}@{value.unit}@{tz}".encode())
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        _tagged(out, b"D", f"{type(value).__name__}:{value.isoformat()}".encode())
    elif _is_timedelta(value):
        _tagged(out, b"Q", f"{value.value}@{value.unit}".encode())
    elif isinstance(value, dt.timedelta):
        _tagged(out, b"q", f"{value.days}:{value.seconds}:{value.microseconds}".encode())
    elif isinstance(value, np.datetime64 | np.timedelta64):
        _tagged(out, b"m", f"{value.dtype.str}:{value.astype(np.int64)}".encode())
    elif isinstance(value, tuple | list):
        inner = bytearray()
        for item in value:
            encode_value(item, inner)
        _tagged(out, b"t" if isinstance(value, tuple) else b"l", bytes(inner))
    elif isinstance(value, dict):
        _tagged(out, b"o", _sorted_items((k, v) for k, v in value.items()))
    elif isinstance(value, set | frozenset):
        _tagged(out, b"e", _sorted_items((k, None) for k in value))
    elif isinstance(value, np.ndarray) or _is_pandas_data(value):
        from .hashing import hash_data  # an array inside a cell: its own hash

        _tagged(out, b"a", hash_data(value).encode())
    else:
        raise TypeError(
            f"hash_data cannot hash a value of type {type(value).__module__}."
            f"{type(value).__qualname__}; convert the column to strings, numbers or dates first"
        )


def _sorted_items(items: Iterable[tuple[Any, Any]]) -> bytes:
    encoded = []
    for key, value in items:
        part = bytearray()
        encode_value(key, part)
        if value is not None:
            encode_value(value, part)
        encoded.append(bytes(part))
    return b"".join(sorted(encoded))


def _is_timestamp(value: Any) -> bool:
    return type(value).__name__ == "Timestamp" and hasattr(value, "tz")


def _is_timedelta(value: Any) -> bool:
    return type(value).__name__ == "Timedelta" and hasattr(value, "unit")


def _is_pandas_data(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "dtype")


def label(value: Any) -> str:
    """A column/index name as canonical text (hex of its tagged encoding)."""
    out = bytearray()
    encode_value(value, out)
    return out.hex()
