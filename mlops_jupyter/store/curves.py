"""Logged metric curves, stored packed: one row per metric per write, not one per point.

A run's logged points reach the store in batches while the run goes on (see
:class:`mlops_jupyter.curve_buffer.CurveBuffer`). Each batch is one ``metric_chunks`` row per
metric holding its steps (int64), values (float64: NaN and infinities as themselves) and
times (float64 seconds), little-endian; the point with the highest step of the batch is also an
ordinary ``metrics`` row, so the latest value, listings, sorting and filtering see it. Reading
a curve merges the chunks with the metric's ``metrics`` rows: one value per step, the most
recently logged one winning, as an upsert would.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import metric_number

CHUNK_COLUMNS = ("run_id", "key", "seq", "n", "steps", "values", "times")


@dataclass
class Points:
    """The points of one metric, as three parallel arrays."""

    steps: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))
    times: array = field(default_factory=lambda: array("d"))

    def add(self, step: int, value: float, when: float) -> None:
        self.steps.append(step)
        self.values.append(value)
        self.times.append(when)

    def extend(self, other: Points) -> None:
        self.steps.extend(other.steps)
        self.values.extend(other.values)
        self.times.extend(other.times)

    def __len__(self) -> int:
        return len(self.steps)

    def last(self) -> int:
        """The index of the point with the highest step (the last such one)."""
        top = max(self.steps)
        return len(self.steps) - 1 - self.steps[::-1].index(top)


def points_from(triples: Iterable[tuple[str, Any, int]], when: float) -> dict[str, Points]:
    """``(key, value, step)`` triples, all logged at ``when``, grouped by metric."""
    grouped: dict[str, Points] = {}
    for key, value, step in triples:
        points = grouped.get(key)
        if points is None:
            points = grouped[key] = Points()
        points.add(int(step), metric_number(value), when)
    return grouped


def pack(values: array) -> bytes:
    """An array's items, little-endian on every machine."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def chunk_row(run_id: str, key: str, seq: int, points: Points) -> tuple[Any, ...]:
    return (
        run_id, key, seq, len(points), pack(points.steps), pack(points.values), pack(points.times)
    )  # fmt: skip


@dataclass(frozen=True)
class Curve:
    """One metric of a run: numpy arrays of its steps (int64), values and times (float64)."""

    key: str
    steps: Any
    values: Any
    times: Any

    def __len__(self) -> int:
        return len(self.steps)


def merge(
    key: str,
    rows: Iterable[tuple[int, float, float]],
    chunks: Iterable[tuple[bytes, bytes, bytes]],
) -> Curve:
    """A curve from ``metrics`` rows ``(step, value, time)`` and packed chunks ``(steps,
    values, times)``: sorted by step, one value per step (the most recently logged)."""
    import numpy as np

    parts: list[tuple[Any, Any, Any]] = []
    rows = list(rows)
    if rows:
        row_steps, row_values, row_times = zip(*rows, strict=True)
        parts.append((
            np.asarray(row_steps, dtype=np.int64), np.asarray(row_values, dtype=np.float64),
            np.asarray(row_times, dtype=np.float64),
        ))  # fmt: skip
    for packed_steps, packed_values, packed_times in chunks:
        parts.append((
            np.frombuffer(packed_steps, dtype="<i8"), np.frombuffer(packed_values, dtype="<f8"),
            np.frombuffer(packed_times, dtype="<f8"),
        ))  # fmt: skip
    if not parts:
        empty = np.empty(0)
        return Curve(key, empty.astype(np.int64), empty, empty)
    steps = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    times = np.concatenate([p[2] for p in parts])
    order = np.lexsort((times, steps))  # by step, then by time: the newest of a step last
    steps, values, times = steps[order], values[order], times[order]
    keep = np.ones(steps.size, dtype=bool)
    keep[:-1] = steps[1:] != steps[:-1]
    if not keep.all():
        steps, values, times = steps[keep], values[keep], times[keep]
    return Curve(key, steps, values, times)  # copies (the indexing above): writable


def by_key(chunks: Iterable[tuple[str, bytes, bytes, bytes]]) -> Mapping[str, list[Any]]:
    """``(key, steps, values, times)`` chunk rows as ``{key: [(steps, values, times)]}``."""
    grouped: dict[str, list[Any]] = {}
    for key, *packed in chunks:
        grouped.setdefault(key, []).append(packed)
    return grouped


def downsample(steps: Any, values: Any, points: int) -> tuple[Any, Any]:
    """At most ``points`` of a curve (numpy arrays sorted by step), keeping its shape: the
    curve is cut into ``points // 4`` runs of consecutive points and each keeps its first,
    lowest, highest and last point, in step order (``points // 5`` runs, each also keeping
    its first NaN, when the curve has NaN). The curve's lowest and highest values are always
    among those kept; a curve of ``points`` or fewer is returned as it is. ``points`` < 4
    keeps the lowest and the highest point (then the first and the last, room allowing)."""
    import numpy as np

    n = len(steps)
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if n <= points:
        return steps, values
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    has_nan = bool(nan.any())
    low_values = np.where(nan, np.inf, values)  # NaN is neither the lowest nor the highest
    high_values = np.where(nan, -np.inf, values)
    if points < 4:
        chosen = [int(np.argmin(low_values)), int(np.argmax(high_values)), 0, n - 1]
        keep = np.array(sorted(list(dict.fromkeys(chosen))[:points]), dtype=np.int64)
        return steps[keep], values[keep]
    per = 5 if has_nan and points >= 5 else 4
    buckets = points // per
    starts = (np.arange(buckets, dtype=np.int64) * n) // buckets
    ends = np.append(starts[1:], n)  # each bucket [start, end), none empty since n > buckets
    position = np.arange(n, dtype=np.int64)
    bucket_of = np.repeat(np.arange(buckets), ends - starts)
    lowest = np.minimum.reduceat(low_values, starts)
    highest = np.maximum.reduceat(high_values, starts)
    at_low = np.where(low_values == lowest[bucket_of], position, n)
    at_high = np.where(high_values == highest[bucket_of], position, n)
    parts = [starts, ends - 1, np.minimum.reduceat(at_low, starts),
             np.minimum.reduceat(at_high, starts)]  # fmt: skip
    if per == 5:
        parts.append(np.minimum.reduceat(np.where(nan, position, n), starts))
    kept = np.unique(np.concatenate(parts))
    kept = kept[kept < n]
    return steps[kept], values[kept]
