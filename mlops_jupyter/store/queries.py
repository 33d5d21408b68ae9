"""Paged, sorted, filtered run listings (the REST API's ``runs`` endpoint and the side panel)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .records import json_number, utc

if TYPE_CHECKING:
    from .store import Store

MAX_PAGE = 1000
FEW_MATCHES = 5000
_FILTER = re.compile(r"^(params|metrics)\.([^=<>!]+?)\s*(=|!=|>=|<=|>|<)\s*(.*)$")


@dataclass(frozen=True)
class RunFilter:
    """``params.max_depth=4``, ``metrics.accuracy>=0.9``, ``params.model!=rf``."""

    kind: str
    key: str
    op: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        match = _FILTER.match(text.strip())
        if match is None:
            raise ValueError(
                f"bad filter {text!r}: use params.KEY=VALUE or metrics.KEY>=NUMBER "
                "(operators =, !=, >, >=, <, <=)"
            )
        kind, key, op, raw = match.groups()
        if kind == "metrics":
            try:
                value: Any = float(raw)
            except ValueError:
                raise ValueError(f"bad filter {text!r}: a metric compares with a number") from None
        else:
            if op not in ("=", "!="):
                raise ValueError(f"bad filter {text!r}: parameters compare with = or !=")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        return cls(kind, key.strip(), op, value)

    def count_sql(self) -> tuple[str, list[Any]]:
        """How many runs match, counted in the filter's own index alone."""
        if self.kind == "metrics":
            return (
                f"SELECT COUNT(*) FROM latest_metrics WHERE key = ? AND value {self.op} ?",
                [self.key, self.value],
            )
        matching = "(SELECT COUNT(*) FROM params WHERE key = ? AND value = ?)"
        args = [self.key, json.dumps(self.value, ensure_ascii=False)]
        if self.op == "!=":  # runs without the key match too
            return f"SELECT (SELECT COUNT(*) FROM runs) - {matching}", args
        return f"SELECT {matching}", args

    def sql(self, column: str = "r.id", per_row: bool = False) -> tuple[str, list[Any]]:
        """A condition on the run id ``column``: membership in a set from the (key, value) index
        (best to count), or ``per_row`` a primary-key probe (best while walking another index
        to a LIMIT)."""
        negate = "NOT " if self.op == "!=" else ""
        if self.kind == "metrics":
            table, value, op = "latest_metrics", self.value, self.op
            negate = ""
        else:
            table, value, op = "params", json.dumps(self.value, ensure_ascii=False), "="
        if per_row:
            return (
                f"{negate}EXISTS (SELECT 1 FROM {table} f WHERE f.run_id = {column} AND "
                f"f.key = ? AND f.value {op} ?)",
                [self.key, value],
            )
        return (
            f"{column} {negate}IN (SELECT run_id FROM {table} WHERE key = ? AND value {op} ?)",
            [self.key, value],
        )


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
    """One page of runs: ``{"total", "offset", "limit", "runs": [summaries]}``."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    from .store import run_conditions

    parsed = [RunFilter.parse(text) for text in filters or []]

    def conditions(column: str = "r.id", per_row: bool = False) -> tuple[list[str], list[Any]]:
        where, args = run_conditions(experiment, status)
        for run_filter in parsed:
            clause, clause_args = run_filter.sql(column, per_row)
            where.append(clause)
            args += clause_args
        return where, args

    where, args = conditions()
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    base = " FROM runs r JOIN experiments e ON e.id = r.experiment_id" + where_sql
    count_sql, count_args = _count_sql(experiment, status, parsed, where_sql, args)
    columns = "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s"
    key = (sort or "").lstrip("-")
    metric = key[len("metrics.") :] if key.startswith("metrics.") and len(key) > 8 else None
    with store._lock:
        conn = store.conn
        total = conn.execute(count_sql, count_args).fetchone()[0]
        if metric is not None:
            # walking the metric index to the page: few matches are checked against the
            # filter's set, built once; many are probed one by one (most probes hit)
            walk_where, walk_args = conditions("lm.run_id", per_row=total > FEW_MATCHES)
            rows = _metric_first(
                conn,
                columns,
                (walk_where, walk_args),
                (where, args),
                metric,
                (sort or "").startswith("-"),
                offset,
                limit,
            )
        else:
            order_sql, order_args = store._order_clause(sort)
            rows = conn.execute(
                columns + base + f" ORDER BY {order_sql} LIMIT ? OFFSET ?",
                [*args, *order_args, limit, offset],
            ).fetchall()
        params, metrics = store._values_for([row[0] for row in rows])
        hashes: dict[str, str] = {}
        ids = [row[0] for row in rows]
        if ids:
            marks = ",".join("?" * len(ids))
            for run_id, digest in conn.execute(
                f"SELECT run_id, MIN(dataset_hash) FROM run_datasets WHERE run_id IN ({marks}) "
                "AND role = 'train' GROUP BY run_id",
                ids,
            ):
                hashes[run_id] = digest
    return {
        "total": int(total),
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
            }
            for run_id, exp, name, run_status, started, duration in rows
        ],
    }


def _count_sql(
    experiment: str | None,
    status: str | None,
    filters: list[RunFilter],
    where_sql: str,
    args: list[Any],
) -> tuple[str, list[Any]]:
    """The cheapest exact count: one index alone for the panel's usual shapes (everything, one
    experiment, one filter), otherwise a probe of each candidate run."""
    if status is None and len(filters) <= 1:
        if experiment is None and not filters:
            return "SELECT COUNT(*) FROM runs", []
        if experiment is None:
            return filters[0].count_sql()
        if not filters:
            return (
                "SELECT COUNT(*) FROM runs WHERE experiment_id = "
                "(SELECT id FROM experiments WHERE name = ?)",
                [experiment],
            )
    return "SELECT COUNT(*) FROM runs r" + where_sql, args


def _metric_first(
    conn: Any,
    columns: str,
    walk: tuple[list[str], list[Any]],
    rest: tuple[list[str], list[Any]],
    metric: str,
    descending: bool,
    offset: int,
    limit: int,
) -> list[Any]:
    """Sort by a metric walking the (key, value, run_id) index: runs with the metric in value
    order (ties by run id), then the runs without it, newest first. ``walk`` holds conditions
    on ``lm.run_id``, ``rest`` the same conditions on ``r.id``."""
    direction = "DESC" if descending else "ASC"
    walk_where, walk_args = walk
    joined = (
        " FROM latest_metrics lm JOIN runs r ON r.id = lm.run_id JOIN experiments e "
        "ON e.id = r.experiment_id WHERE lm.key = ? AND lm.value IS NOT NULL"
        + "".join(f" AND {w}" for w in walk_where)
    )
    rows = conn.execute(
        columns + joined + f" ORDER BY lm.value {direction}, lm.run_id {direction} "
        "LIMIT ? OFFSET ?",
        [metric, *walk_args, limit, offset],
    ).fetchall()
    if len(rows) == limit:
        return list(rows)
    n_with = conn.execute("SELECT COUNT(*)" + joined, [metric, *walk_args]).fetchone()[0]
    rest_where, rest_args = rest
    missing = (
        " FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id NOT IN "
        "(SELECT run_id FROM latest_metrics WHERE key = ? AND value IS NOT NULL)"
        + "".join(f" AND {w}" for w in rest_where)
    )
    more = conn.execute(
        columns + missing + " ORDER BY r.started_at DESC, r.id LIMIT ? OFFSET ?",
        [metric, *rest_args, limit - len(rows), max(0, offset - n_with)],
    ).fetchall()
    return list(rows) + list(more)
