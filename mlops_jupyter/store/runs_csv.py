"""A runs listing as CSV: every run a filter selects, in its sort order, a chunk at a time.

The runs and their order are those :func:`~mlops_jupyter.store.queries.run_page` pages through
with the same ``experiment``, ``status``, ``filters`` and ``sort`` (:func:`~.queries.run_ids`,
one read snapshot: a run recorded meanwhile is not in it, none is written twice); then ``PAGE``
runs at a time, each chunk one read of only the columns asked for, so that a hundred thousand
runs never become one string. The columns are ``run_id, name, experiment, status, started_at,
duration_s`` and then ``params.KEY``, ``metrics.KEY`` (the latest value), ``tags.KEY`` or
``train_hash``, as the listing shows them. Numbers are written exactly (``repr`` of the float:
``0.1``, ``nan``, ``inf``), other parameter values as JSON (``true``, ``null``, ``[1, 2]``),
anything missing as an empty cell. A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return gets a leading ``'`` so that a spreadsheet shows it rather than running
it as a formula (numbers are not text: ``-0.5`` stays as it is).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from .queries import MAX_PAGE, run_ids
from .records import json_number, utc
from .store import _ScalarMemo

if TYPE_CHECKING:
    from .store import Store

BASE_COLUMNS = ("run_id", "name", "experiment", "status", "started_at", "duration_s")
PAGE = MAX_PAGE
MAX_COLUMNS = 500
_PREFIXES = ("params.", "metrics.", "tags.")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_columns(texts: Sequence[str]) -> list[str]:
    """The extra columns named in ``texts`` (each comma-separated), in order; a
    ``ValueError`` naming a column that is none of ``params.KEY``, ``metrics.KEY``,
    ``tags.KEY``, ``train_hash``."""
    columns = [c.strip() for text in texts for c in text.split(",") if c.strip()]
    for column in columns:
        prefix = next((p for p in _PREFIXES if column.startswith(p)), None)
        if column != "train_hash" and (prefix is None or not column[len(prefix) :].strip()):
            raise ValueError(
                f"bad column {column[:100]!r}: use params.KEY, metrics.KEY, tags.KEY or "
                "train_hash, separated by commas"
            )
    if len(columns) > MAX_COLUMNS:
        raise ValueError(f"at most {MAX_COLUMNS} columns can be exported, got {len(columns)}")
    return columns


def text_cell(value: str) -> str:
    """A text cell as a spreadsheet should show it (a formula's first character escaped)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def number_cell(value: Any) -> str:
    """A number exactly (``repr``), NaN and infinities as ``nan``/``inf``/``-inf``."""
    if value is None:
        return ""
    if isinstance(value, str):  # json_number's spelling of a non-finite float
        value = float(value.replace("Infinity", "inf"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    return repr(number) if math.isfinite(number) else str(number)


def param_cell(value: Any) -> str:
    if isinstance(value, str):
        return text_cell(value)
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return number_cell(value)


def row(run: dict[str, Any], columns: Sequence[str]) -> list[str]:
    """One run summary of :func:`run_page` as CSV cells."""
    cells = [
        run["run_id"],
        text_cell(run["name"] or ""),
        text_cell(run["experiment"]),
        run["status"],
        run["started_at"],
        number_cell(run["duration_s"]),
    ]
    for column in columns:
        if column == "train_hash":
            cells.append(run.get("train_hash") or "")
            continue
        kind, _, key = column.partition(".")
        values = run.get(kind) or {}
        if key not in values:
            cells.append("")
        elif kind == "params":
            cells.append(param_cell(values[key]))
        elif kind == "metrics":
            cells.append(number_cell(values[key]))
        else:
            cells.append(text_cell(str(values[key])))
    return cells


def _text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)  # RFC 4180: quoted as needed, lines end in \r\n
    return out.getvalue()


def summaries(store: Store, ids: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The runs ``ids`` (in that order; one gone meanwhile is left out) as the listing's
    summaries, holding only the values ``columns`` name: one read snapshot, one query per
    table."""
    keys: dict[str, list[str]] = {"params": [], "metrics": []}
    for column in columns:
        kind, _, key = column.partition(".")
        if kind in keys and key not in keys[kind]:
            keys[kind].append(key)
    dialect = store.dialect
    among, args = dialect.among("r.id", list(ids))
    values: dict[tuple[str, str], dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    unjson = _ScalarMemo()  # a chunk repeats its parameters' values
    with store._lock, store.snapshot():
        conn = store.conn
        base = conn.execute(
            "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s, r.tags FROM runs "
            f"r JOIN experiments e ON e.id = r.experiment_id WHERE {among}",
            args,
        ).fetchall()
        of_runs, run_args = dialect.among("run_id", list(ids))
        for kind, table in (("params", "params"), ("metrics", "latest_metrics")):
            if not keys[kind]:
                continue
            of_keys, key_args = dialect.among("key", keys[kind])
            for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM {table} WHERE {of_runs} AND {of_keys}",
                [*run_args, *key_args],
            ).fetchall():
                if kind == "params":
                    value = unjson(value)
                else:  # NULL is NaN; infinities are stored as themselves
                    value = json_number(math.nan if value is None else value)
                values.setdefault((kind, run_id), {})[key] = value
        if "train_hash" in columns:
            hashes = dict(
                conn.execute(
                    f"SELECT run_id, MIN(dataset_hash) FROM run_datasets WHERE {of_runs} "
                    "AND role = 'train' GROUP BY run_id",
                    run_args,
                ).fetchall()
            )
    rows = {row[0]: row for row in base}
    out = []
    for run_id in ids:
        if run_id not in rows:
            continue
        _, experiment, name, status, started, duration, tags = rows[run_id]
        out.append({
            "run_id": run_id, "experiment": experiment, "name": name, "status": status,
            "started_at": utc(started).isoformat(),  # type: ignore[union-attr]
            "duration_s": duration, "train_hash": hashes.get(run_id),
            "params": values.get(("params", run_id), {}),
            "metrics": values.get(("metrics", run_id), {}),
            "tags": json.loads(tags) if tags else {},
        })  # fmt: skip
    return out


def csv_pages(
    store: Store,
    columns: Sequence[str],
    *,
    experiment: str | None = None,
    status: str | None = None,
    filters: list[str] | None = None,
    sort: str | None = None,
) -> Generator[str, None, None]:
    """The CSV text of the listing, ``PAGE`` runs at a time (the header with the first
    chunk). The runs are chosen and ordered when the first item is asked for, so a bad
    filter or sort raises its ``ValueError`` before anything is written."""
    ids = run_ids(store, experiment=experiment, status=status, filters=filters, sort=sort)
    header = [*BASE_COLUMNS, *columns]
    if not ids:
        yield _text([header])
    for start in range(0, len(ids), PAGE):
        runs = summaries(store, ids[start : start + PAGE], columns)
        rows = [row(r, columns) for r in runs]
        yield _text([header, *rows] if start == 0 else rows)
