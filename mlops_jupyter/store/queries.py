"""Paged, sorted, filtered run listings (the REST API's ``runs`` endpoint and the side panel)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .records import encode_param, json_number, utc
from .run_index import STATUSES, RunIndex
from .store import _RUN_SORT_COLUMNS

if TYPE_CHECKING:
    from .store import Store

MAX_PAGE = 1000
_FILTER = re.compile(r"^(params|metrics|tags)\.([^=<>!]+?)\s*(=|!=|>=|<=|>|<)\s*(.*)$", re.S)
_CONDITION_START = re.compile(r"(?:^|\s)(?:and\s+)?(?=(?:params|metrics|tags)\.)", re.I)
FILTER_SYNTAX = (
    "params.KEY = VALUE, metrics.KEY >= NUMBER or tags.KEY = TEXT, one after the other "
    "(operators =, !=, >, >=, <, <=; parameters and tags compare with = or !=)"
)


@dataclass(frozen=True)
class RunFilter:
    """``params.max_depth=4``, ``metrics.accuracy>=0.9``, ``params.model!=rf``,
    ``tags.owner = ana``."""

    kind: str
    key: str
    op: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        match = _FILTER.match(text.strip())
        if match is None:
            raise ValueError(f"bad filter {text.strip()!r}: use {FILTER_SYNTAX}")
        kind, key, op, raw = match.groups()
        raw = raw.strip()
        if not raw:
            raise ValueError(f"bad filter {text.strip()!r}: a value is missing after {op}")
        if kind == "metrics":
            try:
                value: Any = float(raw)
            except ValueError:
                raise ValueError(f"bad filter {text!r}: a metric compares with a number") from None
        else:
            if op not in ("=", "!="):
                what = "parameters" if kind == "params" else "tags"
                raise ValueError(f"bad filter {text.strip()!r}: {what} compare with = or !=")
            if kind == "tags":
                quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'"
                value = raw[1:-1] if quoted else raw
            else:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
        return cls(kind, key.strip(), op, value)

    @classmethod
    def parse_all(cls, text: str) -> list[RunFilter]:
        """Every condition of a filter line, e.g. ``metrics.val_auc >= 0.88
        params.feature_set = base+usage tags.owner = ana`` (an ``and`` between is allowed); a
        value runs up to the next condition."""
        starts = [m.end() for m in _CONDITION_START.finditer(text)]
        if not text.strip():
            return []
        head = text[: starts[0]] if starts else text
        if not starts or head.strip():
            bad = head.strip() or text.strip()
            raise ValueError(f"bad filter {bad!r}: use {FILTER_SYNTAX}")
        parts = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
        return [cls.parse(re.sub(r"\s+and\s*$", "", part, flags=re.I)) for part in parts]

    def mask(self, index: RunIndex, store: Store) -> np.ndarray:
        """Which indexed runs this filter selects (a metric without a value never does; a
        parameter's ``!=`` keeps the runs without that parameter)."""
        if self.kind == "metrics":
            values = index.metric(store, self.key)
            with np.errstate(invalid="ignore"):
                return np.asarray(_COMPARE[self.op](values, self.value))
        if self.kind == "tags":
            labels = index.tag(store, self.key)
            code = labels.code_of.get(str(self.value), -2)
        else:
            labels = index.param(store, self.key)
            code = labels.code_of.get(encode_param(self.value)[0], -2)  # as it is stored
        codes = labels.codes[: index.n]
        return codes != code if self.op == "!=" else codes == code


_COMPARE = {
    "=": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}


def run_page(
    store: Store,
    *,
    experiment: str | None = None,
    status: str | None = None,
    filters: list[str] | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of runs: ``{"total", "offset", "limit", "runs": [summaries]}``.

    Sorted by ``sort`` (a run column, ``metrics.KEY`` or ``params.KEY``, ``-`` for
    descending; newest first by default). Runs without the sort key come last, newest first;
    runs with equal values newest first too, except that runs tied on a metric keep run id
    order in the sort's direction."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    parsed = [condition for text in filters or [] for condition in RunFilter.parse_all(text)]
    with store._lock, store.snapshot():
        index = store.run_index()
        chosen = _chosen(store, index, experiment, status, parsed)
        positions = page_of(chosen, _order(store, index, sort), offset, limit)
        ids = [raw.decode() for raw in index.ids[positions]]
        rows = _run_rows(store, ids)
        params, metrics = store._values_for(ids)
        hashes: dict[str, str] = {}
        if ids:
            among, among_args = store.dialect.among("run_id", ids)
            for run_id, digest in store.conn.execute(
                f"SELECT run_id, MIN(dataset_hash) FROM run_datasets WHERE {among} "
                "AND role = 'train' GROUP BY run_id",
                among_args,
            ).fetchall():
                hashes[run_id] = digest
    return {
        "total": len(chosen),
        "offset": offset,
        "limit": limit,
        "runs": [
            {
                "run_id": run_id,
                "experiment": exp,
                "name": name,
                "status": run_status,
                "started_at": utc(started).isoformat(),  # type: ignore[union-attr]
                "duration_s": duration,
                "train_hash": hashes.get(run_id),
                "params": params.get(run_id, {}),
                "metrics": {k: json_number(v) for k, v in metrics.get(run_id, {}).items()},
                "tags": json.loads(tags) if tags else {},
            }
            for run_id, exp, name, run_status, started, duration, tags in (rows[i] for i in ids)
        ],
    }


def run_ids(
    store: Store,
    *,
    experiment: str | None = None,
    status: str | None = None,
    filters: list[str] | None = None,
    sort: str | None = None,
) -> list[str]:
    """The ids of every run :func:`run_page` pages through with the same arguments, in its
    order, from one read snapshot (the CSV export: one ordering, then the rows by chunks)."""
    parsed = [condition for text in filters or [] for condition in RunFilter.parse_all(text)]
    with store._lock, store.snapshot():
        index = store.run_index()
        chosen = _chosen(store, index, experiment, status, parsed)
        positions = page_of(chosen, _order(store, index, sort), 0, len(chosen))
        return [raw.decode() for raw in index.ids[positions]]


def _chosen(
    store: Store,
    index: RunIndex,
    experiment: str | None,
    status: str | None,
    parsed: list[RunFilter],
) -> np.ndarray:
    """The positions of the indexed runs a listing selects."""
    mask = np.ones(index.n, dtype=bool)
    if experiment is not None:
        found = store.conn.execute(
            "SELECT id FROM experiments WHERE name = ?", (experiment,)
        ).fetchone()
        mask &= index.experiment[: index.n] == (found[0] if found else -1)
    if status is not None:
        code = STATUSES.index(status) if status in STATUSES else -1
        mask &= index.status[: index.n] == code
    for condition in parsed:
        mask &= condition.mask(index, store)
    return np.flatnonzero(mask)


def _run_rows(store: Store, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    if not ids:
        return {}
    among, args = store.dialect.among("r.id", ids)
    rows = store.conn.execute(
        "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s, r.tags FROM runs r "
        f"JOIN experiments e ON e.id = r.experiment_id WHERE {among}",
        args,
    ).fetchall()
    return {row[0]: tuple(row) for row in rows}


Keys = list[tuple[np.ndarray, int]]  # sort keys over all positions, primary first: (values,
# 1 for ascending or -1 for descending)


def _order(store: Store, index: RunIndex, sort: str | None) -> list[tuple[np.ndarray, Keys]]:
    """The listing order as groups, listed one after the other: (which runs belong, their
    keys). Runs without the sort key form the last group, newest first."""
    n = index.n
    key = (sort or "-started_at").lstrip("-")
    sign = -1 if (sort or "-").startswith("-") else 1
    newest: Keys = [(index.started[:n], -1), (index.id_rank(), 1)]
    everyone = np.ones(n, dtype=bool)
    if key.startswith("metrics.") and len(key) > 8:
        values = index.metric(store, key[8:])
        has = ~np.isnan(values)
        return [(has, [(values, sign), (index.id_rank(), sign)]), (~has, newest)]
    if key.startswith("params.") and len(key) > 7:
        ranks = index.param(store, key[7:]).rank(n)
        return _with_nulls_last(ranks >= 0, (ranks, sign), newest)
    if key.startswith("tags.") and len(key) > 5:
        ranks = index.tag(store, key[5:]).rank(n)
        return _with_nulls_last(ranks >= 0, (ranks, sign), newest)
    if key == "name":
        ranks = index.run_column(store, "name").rank(n)  # type: ignore[union-attr]
        return _with_nulls_last(ranks >= 0, (ranks, sign), newest)
    if key == "run_id":
        return [(everyone, [(index.id_rank(), sign)])]
    if key == "experiment":
        names = dict(store.conn.execute("SELECT id, name FROM experiments").fetchall())
        lookup = np.zeros(max(names, default=0) + 1, dtype=np.int64)
        lookup[sorted(names, key=names.__getitem__)] = np.arange(len(names))
        return [(everyone, [(lookup[index.experiment[:n]], sign), *newest])]
    if key == "status":
        ranks = np.argsort(np.argsort(STATUSES))[index.status[:n]]
        return [(everyone, [(ranks, sign), *newest])]
    if key == "started_at":
        values = index.started[:n]
    elif key in ("ended_at", "duration_s"):
        values = index.run_column(store, key)[:n]  # type: ignore[index]
    else:
        raise ValueError(
            f"cannot order runs by {sort!r}; use one of {', '.join(sorted(SORT_COLUMNS))}, "
            "'metrics.<key>', 'params.<key>' or 'tags.<key>', with a leading '-' for descending"
        )
    return _with_nulls_last(~np.isnan(values), (values, sign), newest)


SORT_COLUMNS = tuple(_RUN_SORT_COLUMNS)


def _with_nulls_last(
    has: np.ndarray, primary: tuple[np.ndarray, int], newest: Keys
) -> list[tuple[np.ndarray, Keys]]:
    return [(has, [primary, *newest]), (~has, newest)]


def page_of(
    chosen: np.ndarray, groups: list[tuple[np.ndarray, Keys]], offset: int, limit: int
) -> np.ndarray:
    """The positions ``offset .. offset+limit`` of ``chosen`` (sorted positions) in the
    order ``groups`` define: each group's runs by its keys, one group after the other."""
    page: list[np.ndarray] = []
    for member, keys in groups:
        if limit <= 0:
            break
        group = chosen if len(chosen) == len(member) and member.all() else chosen[member[chosen]]
        if offset >= len(group):
            offset -= len(group)
            continue
        first = smallest(group, keys, offset + limit)[offset:]
        page.append(first)
        limit -= len(first)
        offset = 0
    return np.concatenate(page) if page else np.empty(0, dtype=np.int64)


SAMPLE = 4096  # values sampled to guess a bound on the first k


def smallest(positions: np.ndarray, keys: Keys, k: int) -> np.ndarray:
    """The ``k`` positions first in the lexicographic order of ``keys``, in that order.

    Linear in the positions: a bound guessed from an evenly spaced sample keeps the few
    candidates below it (all of them, when the guess is too low), a partition finds the
    k-th value among those, and only the runs tied at that value are separated by the next
    key."""
    if not keys:
        return positions[:k]
    if len(positions) <= max(k, 256):
        order = np.lexsort([values[positions] * sign for values, sign in reversed(keys)])
        return positions[order[:k]]
    values, sign = keys[0]
    everyone = len(positions) == len(values)  # sorted and distinct: 0 .. n-1
    primary = (values if sign > 0 else -values) if everyone else values[positions]
    if sign < 0 and not everyone:
        np.negative(primary, out=primary)
    if k * 16 < len(primary):
        sample = primary[:: max(1, len(primary) // SAMPLE)]
        rank = min(len(sample) - 1, 2 * k * len(sample) // len(primary) + 8)
        bound = np.partition(sample, rank)[rank]
        below = primary <= bound
        if np.count_nonzero(below) >= k:
            positions = np.flatnonzero(below) if everyone else positions[below]
            primary = primary[below]
    boundary = np.partition(primary, k - 1)[k - 1]
    before = positions[primary < boundary]
    tied = positions[primary == boundary]
    return np.concatenate(
        [smallest(before, keys, len(before)), smallest(tied, keys[1:], k - len(before))]
    )


def _keys(store: Store, table: str) -> list[str]:
    """The distinct keys of ``params`` or ``latest_metrics``: one index probe per key (a
    skip scan of the ``(key, value)`` index), not a pass over every value."""
    sql = (
        f"WITH RECURSIVE k(key) AS (SELECT MIN(key) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN(key) FROM {table} WHERE key > k.key) FROM k WHERE k.key IS NOT NULL) "
        "SELECT key FROM k WHERE key IS NOT NULL"
    )
    return [str(row[0]) for row in store.conn.execute(sql).fetchall()]


KEY_PROBE = 2000  # rows of a key looked at before scanning the experiment's runs instead


def _key_in_experiment(store: Store, table: str, key: str, experiment_id: Any) -> bool:
    """Whether a run of the experiment has ``key`` in ``table``. The key's first rows are
    probed first (a key only a few runs logged costs a few lookups, not a scan of the
    experiment's 100,000 runs); only a key with more rows than that, none of them in the
    experiment's, falls back to the experiment's runs (where a common key is found at once)."""
    seen, hit = store.conn.execute(
        "SELECT count(*), coalesce(max(CASE WHEN r.experiment_id = ? THEN 1 ELSE 0 END), 0) "
        f"FROM (SELECT run_id FROM {table} WHERE key = ? LIMIT {KEY_PROBE}) t "
        "JOIN runs r ON r.id = t.run_id",
        (experiment_id, key),
    ).fetchone()
    if hit:
        return True
    if seen < KEY_PROBE:
        return False
    row = store.conn.execute(
        f"SELECT 1 FROM {table} t JOIN runs r ON r.id = t.run_id "
        "WHERE t.key = ? AND r.experiment_id = ? LIMIT 1",
        (key, experiment_id),
    ).fetchone()
    return row is not None


def run_columns(store: Store, experiment: str | None = None) -> dict[str, list[str]]:
    """The keys a runs table can show as columns, sorted: ``{"params", "metrics", "tags"}``
    of every run, or of one experiment's runs."""
    with store._lock, store.snapshot():
        found = None
        if experiment is not None:
            found = store.conn.execute(
                "SELECT id FROM experiments WHERE name = ?", (experiment,)
            ).fetchone()
            if found is None:
                return {"params": [], "metrics": [], "tags": []}
        out: dict[str, list[str]] = {}
        for kind, table in (("params", "params"), ("metrics", "latest_metrics")):
            keys = _keys(store, table)
            if found is not None:
                keys = [key for key in keys if _key_in_experiment(store, table, key, found[0])]
            out[kind] = keys
        sql = "SELECT DISTINCT tags FROM runs WHERE tags IS NOT NULL"
        args: tuple[Any, ...] = ()
        if found is not None:
            sql, args = sql + " AND experiment_id = ?", (found[0],)
        tags: set[str] = set()
        for (text,) in store.conn.execute(sql, args).fetchall():
            value = json.loads(text)
            if isinstance(value, dict):
                tags.update(str(k) for k in value)
        out["tags"] = sorted(tags)
    return out
