"""Paged, sorted, filtered run listings (the REST API's ``runs`` endpoint and the side panel)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .records import json_number, utc
from .sql import SQLITE, Dialect

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

    def as_set(self) -> RunSet:
        """The runs this filter selects, from the (key, value) index of its table."""
        if self.kind == "metrics":
            return RunSet(
                "latest_metrics",
                "run_id",
                f"{{t}}.key = ? AND {{t}}.value {self.op} ?",
                [self.key, self.value],
            )
        value = json.dumps(self.value, ensure_ascii=False)
        # != keeps runs without the key too: the complement of the runs with key = value
        return RunSet(
            "params", "run_id", "{t}.key = ? AND {t}.value = ?", [self.key, value], self.op == "!="
        )


@dataclass(frozen=True)
class RunSet:
    """A condition on runs as the set of run ids that one indexed query yields (rows of
    ``table`` where ``where`` holds, ``{t}`` standing for the table's alias; their
    ``id_column``), or its complement."""

    table: str
    id_column: str
    where: str
    args: list[Any]
    negate: bool = False

    @classmethod
    def experiment(cls, name: str) -> RunSet:
        return cls(
            "runs", "id", "{t}.experiment_id = (SELECT id FROM experiments WHERE name = ?)", [name]
        )

    @classmethod
    def status(cls, status: str) -> RunSet:
        return cls("runs", "id", "{t}.status = ?", [status])

    def members(self) -> str:
        """The query of the member run ids (as ``run_id``) from the set's index."""
        return f"SELECT t.{self.id_column} AS run_id FROM {self.table} t WHERE {self._where('t')}"

    def count(self) -> tuple[str, list[Any]]:
        """How many runs are in the set, counted in its own index alone."""
        matching = f"(SELECT COUNT(*) FROM {self.table} t WHERE {self._where('t')})"
        if self.negate:
            return f"SELECT (SELECT COUNT(*) FROM runs) - {matching}", list(self.args)
        return f"SELECT {matching}", list(self.args)

    def on_runs(self) -> tuple[str, list[Any]]:
        """The condition over ``runs r``: on its own columns, or a set test of ``r.id``."""
        if self.table == "runs" and not self.negate:
            return self._where("r"), list(self.args)
        return self.test("r.id")

    def test(
        self, column: str, per_row: bool = False, dialect: Dialect = SQLITE
    ) -> tuple[str, list[Any]]:
        """A condition on the run id ``column``: membership in the set built once from the
        index (best when counting), or ``per_row`` a primary-key probe (best while walking
        another index to a LIMIT; a scalar subquery where the planner would turn EXISTS into
        a join that builds the whole set first)."""
        negate = "NOT " if self.negate else ""
        if per_row:
            probe = f"SELECT 1 FROM {self.table} t WHERE t.{self.id_column} = {column}"
            if dialect.scalar_probe:
                null = "NULL" if self.negate else "NOT NULL"
                return f"({probe} AND {self._where('t')} LIMIT 1) IS {null}", list(self.args)
            return f"{negate}EXISTS ({probe} AND {self._where('t')})", list(self.args)
        return f"{column} {negate}IN ({self.members()})", list(self.args)

    def ids(self) -> tuple[str, list[Any]]:
        """The member run ids as ``run_id``, to drive a join from."""
        if self.negate:
            complement = f"SELECT id AS run_id FROM runs WHERE id NOT IN ({self.members()})"
            return complement, list(self.args)
        return self.members(), list(self.args)

    def _where(self, alias: str) -> str:
        return self.where.format(t=alias)


def _all(conditions: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """`` AND c1 AND c2 ...`` and their arguments."""
    return "".join(f" AND {c}" for c, _ in conditions), [a for _, args in conditions for a in args]


def run_sets(
    experiment: str | None, status: str | None, filters: list[str] | None = None
) -> list[RunSet]:
    """The conditions of a runs listing, status and experiment first."""
    sets = [RunFilter.parse(text).as_set() for text in filters or []]
    if experiment is not None:
        sets.insert(0, RunSet.experiment(experiment))
    if status is not None:
        sets.insert(0, RunSet.status(status))
    return sets


def on_runs(sets: list[RunSet]) -> tuple[str, list[Any]]:
    """`` AND ...`` over ``runs r`` for every set, and their arguments."""
    return _all([s.on_runs() for s in sets])


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
    sets = run_sets(experiment, status, filters)
    columns = "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s"
    key = (sort or "").lstrip("-")
    metric = key[len("metrics.") :] if key.startswith("metrics.") and len(key) > 8 else None
    with store._lock:
        conn = store.conn
        n_runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        sets, driver = _plan(conn, sets, n_runs)
        total = (
            n_runs
            if driver is None
            else conn.execute(*_count(sets, driver, store.dialect)).fetchone()[0]
        )
        where_sql, args = on_runs(sets)
        if metric is not None:
            if driver is not None and start_from_matches(total, n_runs, offset, limit):
                ranked = _from_matches(sets, driver, metric, store.dialect)
            else:  # few matches are tested against their set, built once; many are probed
                tests, test_args = _all(
                    [s.test("lm.run_id", total > FEW_MATCHES, store.dialect) for s in sets]
                )
                ranked = (
                    " FROM latest_metrics lm WHERE lm.key = ? AND lm.value IS NOT NULL" + tests,
                    [metric, *test_args],
                )
            rows = _metric_first(
                conn,
                columns,
                ranked,
                (where_sql, args),
                metric,
                (sort or "").startswith("-"),
                offset,
                limit,
                store.dialect.ordered_join,
            )
        else:
            order_sql, order_args = store._order_clause(sort)
            rows = conn.execute(
                columns
                + " FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE TRUE"
                + where_sql
                + f" ORDER BY {order_sql} LIMIT ? OFFSET ?",
                [*args, *order_args, limit, offset],
            ).fetchall()
        ids = [row[0] for row in rows]
        params, metrics = store._values_for(ids)
        hashes: dict[str, str] = {}
        if ids:
            among, among_args = store.dialect.among("run_id", ids)
            for run_id, digest in conn.execute(
                f"SELECT run_id, MIN(dataset_hash) FROM run_datasets WHERE {among} "
                "AND role = 'train' GROUP BY run_id",
                among_args,
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


def start_from_matches(matches: int, runs: int, offset: int, limit: int) -> bool:
    """Sorting by a metric, walking its index to the page visits about
    ``(offset + limit) * runs / matches`` entries; starting from the matches visits each once."""
    return matches * matches < (offset + limit) * runs


def _plan(conn: Any, sets: list[RunSet], n_runs: int) -> tuple[list[RunSet], RunSet | None]:
    """The conditions that narrow anything (a set holding every run is dropped) and the one
    with the fewest runs, each counted in its own index, to drive from."""
    if len(sets) <= 1:
        return sets, (sets[0] if sets else None)
    sizes = [conn.execute(*s.count()).fetchone()[0] for s in sets]
    narrowing = [(size, i) for i, size in enumerate(sizes) if size < n_runs]
    if not narrowing:
        return [], None
    kept = [sets[i] for _, i in narrowing]
    return kept, sets[min(narrowing)[1]]


def _others(
    sets: list[RunSet], driver: RunSet | None, column: str, dialect: Dialect
) -> tuple[str, list[Any]]:
    """The conditions besides the driver's, probed run by run on ``column``."""
    return _all([s.test(column, True, dialect) for s in sets if s is not driver])


def _count(sets: list[RunSet], driver: RunSet, dialect: Dialect) -> tuple[str, list[Any]]:
    """The exact count: from the driver's index alone when it is the only condition, else over
    the driver's runs probing the other conditions."""
    if len(sets) == 1:
        return driver.count()
    driver_sql, driver_args = driver.ids()
    tests, test_args = _others(sets, driver, "d.run_id", dialect)
    return (
        f"SELECT COUNT(*) FROM ({driver_sql}{dialect.fence}) d WHERE TRUE" + tests,
        [*driver_args, *test_args],
    )


def _from_matches(
    sets: list[RunSet], driver: RunSet, metric: str, dialect: Dialect
) -> tuple[str, list[Any]]:
    """Runs with the metric that meet every condition, driven from ``driver``'s runs (the
    driver kept first: a join order the planner must not change)."""
    driver_sql, driver_args = driver.ids()
    tests, test_args = _others(sets, driver, "lm.run_id", dialect)
    return (
        f" FROM ({driver_sql}{dialect.fence}) d {dialect.ordered_join} latest_metrics lm "
        "ON lm.run_id = d.run_id AND lm.key = ? WHERE lm.value IS NOT NULL" + tests,
        [*driver_args, metric, *test_args],
    )


def _metric_first(
    conn: Any,
    columns: str,
    ranked: tuple[str, list[Any]],
    rest: tuple[str, list[Any]],
    metric: str,
    descending: bool,
    offset: int,
    limit: int,
    join: str,
) -> list[Any]:
    """Sort by a metric: the ``ranked`` runs (a FROM/WHERE over ``lm``, the metric's latest
    values) in value order, ties by run id, then the runs without a value meeting the
    conditions ``rest`` (over ``runs r``), newest first."""
    direction = "DESC" if descending else "ASC"
    ranked_sql, ranked_args = ranked
    rows = conn.execute(
        f"{columns} FROM (SELECT lm.run_id, lm.value{ranked_sql} ORDER BY lm.value {direction}, "
        f"lm.run_id {direction} LIMIT ? OFFSET ?) p {join} runs r ON r.id = p.run_id "
        f"JOIN experiments e ON e.id = r.experiment_id ORDER BY p.value {direction}, "
        f"p.run_id {direction}",
        [*ranked_args, limit, offset],
    ).fetchall()
    if len(rows) == limit:
        return list(rows)
    n_with = conn.execute("SELECT COUNT(*)" + ranked_sql, ranked_args).fetchone()[0]
    rest_sql, rest_args = rest
    more = conn.execute(
        columns + " FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id NOT IN "
        "(SELECT run_id FROM latest_metrics WHERE key = ? AND value IS NOT NULL)"
        + rest_sql
        + " ORDER BY r.started_at DESC, r.id LIMIT ? OFFSET ?",
        [metric, *rest_args, limit - len(rows), max(0, offset - n_with)],
    ).fetchall()
    return list(rows) + list(more)
