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
_FILTER = re.compile(r"^(params|metrics)\.([^=<>!]+?)\s*(=|!=|>=|<=|>|<)\s*(.*)$")
_LATEST = (
    "(SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.key = ? "
    "ORDER BY m.step DESC LIMIT 1)"
)


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

    def sql(self) -> tuple[str, list[Any]]:
        if self.kind == "metrics":
            return f"{_LATEST} {self.op} ?", [self.key, self.value]
        clause = (
            "EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ? AND p.value = ?)"
        )
        encoded = json.dumps(self.value, ensure_ascii=False)
        if self.op == "!=":
            clause = "NOT " + clause
        return clause, [self.key, encoded]


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

    where, args = run_conditions(experiment, status)
    for text in filters or []:
        clause, clause_args = RunFilter.parse(text).sql()
        where.append(clause)
        args += clause_args
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    base = " FROM runs r JOIN experiments e ON e.id = r.experiment_id" + where_sql
    order_sql, order_args = store._order_clause(sort)
    with store._lock:
        conn = store.conn
        total = conn.execute("SELECT COUNT(*)" + base, args).fetchone()[0]
        rows = conn.execute(
            "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s"
            + base
            + f" ORDER BY {order_sql} LIMIT ? OFFSET ?",
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
