"""The history of a finished run's tags: which tag changed, from what to what, who and when.

Tags written while a run records (the tracker's notes) are part of the record. Once the run
has finished, every edit (:meth:`Store.edit_tags`: the panel's run view, ``POST
runs/<id>/tags``, the Python API) appends one row per key it changed to ``tag_edits`` (schema
v14): the value after (``None``: removed), the value before, who and when. Rows are never
updated or deleted (triggers on both engines; a team store's writers may only add). Each row's
id is unique across stores, so ``push`` and ``pull`` carry an edit once, and a run edited in
two stores converges: per key, the latest edit (by time, then id) wins, whichever way the
copy goes. The SQL is what both engines speak.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ("id", "run_id", "key", "value", "previous", "user", "at")
_SELECT = 'id, run_id, key, value, previous, "user", at'


def record(
    conn: Any,
    run_id: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
    user: str,
    at: float,
) -> int:
    """Append a row for each key whose value differs between ``before`` and ``after``."""
    rows = [
        (uuid.uuid4().hex, run_id, key, after.get(key), before.get(key), user, at)
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
    if rows:
        conn.executemany(
            f"INSERT INTO tag_edits ({_SELECT}) VALUES ({','.join('?' * len(COLUMNS))})", rows
        )
    return len(rows)


def history(store: Any, run_id: str) -> list[dict[str, Any]]:
    """A run's tag edits, oldest first: ``{"key", "value", "previous", "user", "at"}``
    (``value`` ``None``: the tag was removed; ``previous`` ``None``: it was new)."""
    rows = store._read(
        f"SELECT {_SELECT} FROM tag_edits WHERE run_id = ? ORDER BY at, key, id", (run_id,)
    )
    return [
        {"key": key, "value": value, "previous": previous, "user": user, "at": at}
        for _, _, key, value, previous, user, at in rows
    ]


def copy(source: Any, conn: Any, run_ids: Sequence[str]) -> int:
    """Add to the target (``conn``, in its transaction) the tag edits of ``run_ids`` that
    ``source`` holds and it lacks, then set those runs' tags to what their edits say (per
    key the latest edit wins). Returns how many edits were added."""
    if not run_ids:
        return 0
    marks = ",".join("?" * len(run_ids))
    theirs = source._read(
        f"SELECT {_SELECT} FROM tag_edits WHERE run_id IN ({marks})", list(run_ids)
    )
    if not theirs:
        return 0
    edited = sorted({row[1] for row in theirs})
    marks = ",".join("?" * len(edited))
    known = {
        row[0]
        for row in conn.execute(
            f"SELECT id FROM tag_edits WHERE run_id IN ({marks})", edited
        ).fetchall()
    }
    new = [row for row in theirs if row[0] not in known]
    if not new:
        return 0
    conn.executemany(
        f"INSERT INTO tag_edits ({_SELECT}) VALUES ({','.join('?' * len(COLUMNS))})", new
    )
    for run_id in sorted({row[1] for row in new}):
        _settle(conn, run_id)
    return len(new)


def _settle(conn: Any, run_id: str) -> None:
    """Set a run's tags to what its edits say: per key, the latest edit's value."""
    row = conn.execute("SELECT tags FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return
    tags = json.loads(row[0]) if row[0] else {}
    latest: dict[str, str | None] = {}
    for key, value in conn.execute(
        "SELECT key, value FROM tag_edits WHERE run_id = ? ORDER BY at, key, id", (run_id,)
    ).fetchall():
        latest[key] = value
    settled = {k: v for k, v in {**tags, **latest}.items() if v is not None}
    if settled != tags:
        conn.execute(
            "UPDATE runs SET tags = ? WHERE id = ?",
            (json.dumps(settled, sort_keys=True, ensure_ascii=False) if settled else None, run_id),
        )
