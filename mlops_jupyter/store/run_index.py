"""The runs listing's index: every run's sort and filter values as columns in memory.

A listing of a million runs with two broad conditions cannot be counted from row indexes in
the 20 ms a panel has (each match is one probe); as columns it is a few vectorised passes.
The index holds, per run (a position): its id, experiment, status and start time, and each
column a listing asked about -- a parameter, a metric's latest value, the run's name, end or
duration -- loaded on first use (the least recently used dropped beyond ``MAX_COLUMNS``).
It follows the store through ``run_changes``: triggers give a run a new change number
whenever its row, a parameter or a metric is written (writes are serialised, so numbers are
in commit order), and each listing first re-reads the runs numbered above the last one it
saw, in the same read snapshot as the rest of the listing. Nothing here is engine-specific:
both engines answer the same SQL. A million runs take about 40 MB, plus 4-8 MB per column.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .store import Store

MAX_COLUMNS = 32  # loaded columns kept at once
STATUSES = ("running", "finished", "failed", "interrupted")
_STATUS_CODE = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUSES))
_BASE = f"SELECT id, experiment_id, CASE status {_STATUS_CODE} END, started_at FROM runs"
_TEXT_COLUMNS = {"name"}
_FLOAT_COLUMNS = {"ended_at", "duration_s"}
_CHUNK = 5000  # run ids per IN/ANY query
Column = tuple[str, str]  # ("params" | "latest_metrics" | "runs" | "tags", key or column)


@dataclass
class Labels:
    """A text-valued column (a parameter's JSON, a run's name): a code per run (-1: none)
    into ``values``, and each code's rank in text order, computed when first needed after
    new values arrived."""

    codes: np.ndarray
    values: list[str] = field(default_factory=list)
    code_of: dict[str, int] = field(default_factory=dict)
    _rank: np.ndarray | None = None  # per code
    _ranks: np.ndarray | None = None  # per run, until a value changes

    def code(self, value: str) -> int:
        found = self.code_of.get(value)
        if found is None:
            found = self.code_of[value] = len(self.values)
            self.values.append(value)
            self._rank = None
        return found

    def set(self, positions: np.ndarray, values: np.ndarray) -> None:
        import pandas as pd

        local, uniques = pd.factorize(np.asarray(values, dtype=object))
        mapping = np.array([self.code(u) for u in uniques] + [-1], dtype=np.int32)
        self.codes[positions] = mapping[local]  # -1 (no value) picks the trailing -1
        self._ranks = None

    def clear(self, positions: np.ndarray) -> None:
        self.codes[positions] = -1
        self._ranks = None

    def rank(self, n: int) -> np.ndarray:
        """The first ``n`` runs' rank of their value in text (code point) order; -1: none."""
        if self._rank is None or len(self._rank) != len(self.values) + 1:
            order = sorted(range(len(self.values)), key=self.values.__getitem__)
            self._rank = np.empty(len(self.values) + 1, dtype=np.int64)
            self._rank[order] = np.arange(len(order))
            self._rank[-1] = -1  # code -1
            self._ranks = None
        if self._ranks is None or len(self._ranks) != n:
            self._ranks = self._rank[self.codes[:n]]
        return self._ranks

    def grown(self, size: int) -> Labels:
        self.codes = _grown(self.codes, size, -1)
        self._ranks = None
        return self


def _grown(array: np.ndarray, size: int, fill: Any) -> np.ndarray:
    if len(array) >= size:
        return array
    grown = np.full(max(size, len(array) * 2, 1024), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _high_bits(ids: Sequence[str]) -> tuple[np.ndarray, bool]:
    """The first 64 bits of each 32-hex run id, to look runs up by number (an id of another
    form by its hash), and whether every id was 32 hex digits (the bits are in id order)."""
    try:
        raw = bytes.fromhex("".join(ids))
        lengths = set(map(len, ids))
        if lengths == {32}:
            return np.frombuffer(raw, dtype=">u8")[::2].astype(np.uint64), True
    except ValueError:
        pass
    return np.array([_bits_of(i) for i in ids], dtype=np.uint64), False


def _bits_of(run_id: str) -> int:
    if len(run_id) == 32 and all(c in "0123456789abcdefABCDEF" for c in run_id):
        return int(run_id[:16], 16)
    return hash(run_id) & 0xFFFFFFFFFFFFFFFF


class RunIndex:
    """The columns of every run of one store (see the module docstring)."""

    def __init__(self) -> None:
        self.n = 0
        self.seen = -1  # the highest change number read; -1 before the first load
        self.ids = np.empty(0, dtype="S32")
        self._sorted_hi = np.empty(0, dtype=np.uint64)  # ids' high bits in order, positions
        self._sorted_pos = np.empty(0, dtype=np.int64)
        self._id_rank: np.ndarray | None = None
        self._hashed = False  # an id that is not 32 hex digits was indexed
        self.experiment = np.empty(0, dtype=np.int64)
        self.status = np.empty(0, dtype=np.int8)
        self.started = np.empty(0, dtype=np.float64)
        self.columns: OrderedDict[Column, Labels | np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ following the store
    def refresh(self, store: Store) -> None:
        """Bring the index up to the store's state (call inside ``store.snapshot()``).

        Runs numbered at or above the last number seen are read again: a write to the run
        that holds the highest number keeps it (the triggers skip it), so it is re-read."""
        conn = store.conn
        if self.seen < 0:
            last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM run_changes").fetchone()[0]
            self.__init__()  # type: ignore[misc]
            self._place(conn.execute(_BASE).fetchall())
            self.seen = int(last)
            return
        rows = conn.execute(
            "SELECT run_id, seq FROM run_changes WHERE seq >= ?", (self.seen,)
        ).fetchall()
        changed = [row[0] for row in rows]
        for start in range(0, len(changed), _CHUNK):
            self._reload(store, changed[start : start + _CHUNK])
        self.seen = max((int(row[1]) for row in rows), default=self.seen)

    def _reload(self, store: Store, run_ids: list[str]) -> None:
        """Read the runs again: their own row, then every loaded column's values for them,
        one query per table."""
        dialect = store.dialect
        among, args = dialect.among("id", run_ids)
        positions = self._place(store.conn.execute(f"{_BASE} WHERE {among}", args).fetchall())
        for values in self.columns.values():
            if isinstance(values, Labels):
                values.clear(positions)
            else:
                values[positions] = np.nan
        run_columns = [key for table, key in self.columns if table == "runs"]
        if run_columns:
            rows = store.conn.execute(
                f"SELECT id, {', '.join(run_columns)} FROM runs WHERE {among}", args
            ).fetchall()
            for i, key in enumerate(run_columns, 1):
                self._fill(("runs", key), [(row[0], row[i]) for row in rows if row[i] is not None])
        tag_keys = [key for table, key in self.columns if table == "tags"]
        if tag_keys:
            rows = store.conn.execute(
                f"SELECT id, tags FROM runs WHERE tags IS NOT NULL AND {among}", args
            ).fetchall()
            for key in tag_keys:
                self._fill(("tags", key), _tag_values(rows, key))
        for table in ("params", "latest_metrics"):
            keys = [key for t, key in self.columns if t == table]
            if not keys:
                continue
            of_keys, key_args = dialect.among("key", keys)
            of_runs, run_args = dialect.among("run_id", run_ids)
            by_key: dict[str, list[Any]] = {key: [] for key in keys}
            for run_id, key, value in store.conn.execute(
                f"SELECT run_id, key, value FROM {table} WHERE {of_keys} AND {of_runs}",
                [*key_args, *run_args],
            ).fetchall():
                by_key[key].append((run_id, value))
            for key, pairs in by_key.items():
                self._fill((table, key), pairs)

    def _place(self, rows: list[Any]) -> np.ndarray:
        """Write runs' own columns, adding the runs not indexed yet; their positions."""
        if not rows:
            return np.empty(0, dtype=np.int64)
        ids, experiments, statuses, started = zip(*rows, strict=True)
        positions = self.positions(ids)
        new = positions < 0
        if new.any():
            positions[new] = np.arange(self.n, self.n + int(new.sum()))
            self._add([i for i, is_new in zip(ids, new, strict=True) if is_new], positions[new])
        self.experiment[positions] = experiments
        self.status[positions] = statuses
        self.started[positions] = started
        return positions

    def _add(self, ids: list[str], positions: np.ndarray) -> None:
        size = self.n + len(ids)
        self.ids = _grown(self.ids, size, b"")
        self.ids[positions] = ids
        self.experiment = _grown(self.experiment, size, -1)
        self.status = _grown(self.status, size, 0)
        self.started = _grown(self.started, size, np.nan)
        for column, values in self.columns.items():
            self.columns[column] = (
                values.grown(size) if isinstance(values, Labels) else _grown(values, size, np.nan)
            )
        high, exact = _high_bits(ids)
        self._hashed = self._hashed or not exact
        order = np.argsort(high, kind="stable")
        at = np.searchsorted(self._sorted_hi, high[order])
        self._sorted_hi = np.insert(self._sorted_hi, at, high[order])
        self._sorted_pos = np.insert(self._sorted_pos, at, positions[order])
        self._id_rank = None
        self.n = size

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """The positions of run ids, -1 where a run is not indexed."""
        found = np.full(len(ids), -1, dtype=np.int64)
        if not self.n or not len(ids):
            return found
        high, _ = _high_bits(ids)
        wanted = np.array(ids, dtype="S32")
        at = np.minimum(np.searchsorted(self._sorted_hi, high), self.n - 1)
        same_high = self._sorted_hi[at] == high
        hit = same_high & (self.ids[self._sorted_pos[at]] == wanted)
        found[hit] = self._sorted_pos[at[hit]]
        for i in np.flatnonzero(same_high & ~hit):  # two ids sharing their high bits
            j = at[i] + 1
            while j < self.n and self._sorted_hi[j] == high[i]:
                if self.ids[self._sorted_pos[j]] == wanted[i]:
                    found[i] = self._sorted_pos[j]
                    break
                j += 1
        return found

    def id_rank(self) -> np.ndarray:
        """Each run's rank in run id order: the order of the ids' high bits, unless two ids
        share them or one is not hexadecimal."""
        if self._id_rank is None:
            hi = self._sorted_hi
            if self._hashed or (len(hi) > 1 and not np.all(hi[1:] > hi[:-1])):
                order = np.argsort(self.ids[: self.n], kind="stable")
            else:
                order = self._sorted_pos
            self._id_rank = np.empty(self.n, dtype=np.int64)
            self._id_rank[order] = np.arange(self.n)
        return self._id_rank

    # ------------------------------------------------------------------ loaded columns
    def param(self, store: Store, key: str) -> Labels:
        """A parameter's column (its JSON text per run)."""
        return self._column(store, ("params", key))  # type: ignore[return-value]

    def metric(self, store: Store, key: str) -> np.ndarray:
        """A metric's latest values per run (NaN: no value, or NaN)."""
        return self._column(store, ("latest_metrics", key))[: self.n]  # type: ignore[index]

    def tag(self, store: Store, key: str) -> Labels:
        """A tag's column (its text per run)."""
        return self._column(store, ("tags", key))  # type: ignore[return-value]

    def run_column(self, store: Store, name: str) -> Labels | np.ndarray:
        """``name``, ``ended_at`` or ``duration_s`` per run (NaN or -1: none)."""
        if name not in _TEXT_COLUMNS | _FLOAT_COLUMNS:
            raise ValueError(f"not an indexed run column: {name!r}")
        return self._column(store, ("runs", name))

    def _column(self, store: Store, column: Column) -> Labels | np.ndarray:
        if column not in self.columns:
            size = max(self.n, 1024)
            text = column[0] in ("params", "tags") or (
                column[0] == "runs" and column[1] in _TEXT_COLUMNS
            )
            self.columns[column] = (
                Labels(np.full(size, -1, dtype=np.int32)) if text else np.full(size, np.nan)
            )
            self._load(store, column)
            while len(self.columns) > MAX_COLUMNS:
                self.columns.popitem(last=False)
        self.columns.move_to_end(column)
        return self.columns[column]

    def _load(self, store: Store, column: Column) -> None:
        """Read a column's values of every run."""
        table, key = column
        if table == "tags":
            rows = store.conn.execute("SELECT id, tags FROM runs WHERE tags IS NOT NULL")
            self._fill(column, _tag_values(rows.fetchall(), key))
            return
        if table == "runs":
            sql, args = f"SELECT id, {key} FROM runs WHERE {key} IS NOT NULL", []
        else:
            sql, args = f"SELECT run_id, value FROM {table} WHERE key = ?", [key]
        self._fill(column, store.conn.execute(sql, args).fetchall())

    def _fill(self, column: Column, rows: Sequence[Any]) -> None:
        """Set a column's values from (run id, value) rows."""
        if not rows:
            return
        ids, values = zip(*rows, strict=True)
        positions = self.positions(ids)
        keep = positions >= 0
        target = self.columns[column]
        if isinstance(target, Labels):
            target.set(positions[keep], np.asarray(values, dtype=object)[keep])
        else:
            target[positions[keep]] = np.asarray(values, dtype=np.float64)[keep]


def _tag_values(rows: Sequence[Any], key: str) -> list[tuple[str, str]]:
    """(run id, the tag's text) of the runs among ``(id, tags JSON)`` rows that have it."""
    import json

    out = []
    for run_id, text in rows:
        tags = json.loads(text) if text else None
        if isinstance(tags, dict) and key in tags:
            out.append((run_id, str(tags[key])))
    return out
