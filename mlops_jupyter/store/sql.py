"""SQL both engines speak: statements are written once, with ``?`` placeholders, in the subset
SQLite and PostgreSQL share (``ON CONFLICT`` upserts, ``RETURNING``, ``WHERE TRUE``). What an
engine says differently lives in its :class:`Dialect`; the PostgreSQL connection rewrites the
placeholders (see :mod:`mlops_jupyter.store.postgres`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any


@cache
def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` setting every non-key column."""
    cols = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" * len(columns))
    updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) "
        f"DO UPDATE SET {updates}"
    )


@cache
def insert_new(table: str, columns: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT DO NOTHING``: rows already there are kept as they are."""
    cols = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def _quote(column: str) -> str:
    return f'"{column}"' if column in ("values", "user") else column


@dataclass(frozen=True)
class Dialect:
    """The few phrases the engines say differently."""

    name: str
    # a list of ids as one array parameter (``= ANY(?)``) rather than a placeholder each
    array_params: bool = False
    # after rows were inserted with their ids given, the next generated id follows them
    identity_reset: str = ""

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values``: the condition and its arguments."""
        if self.array_params:
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)


SQLITE = Dialect("sqlite")
POSTGRES = Dialect(
    "postgresql",
    array_params=True,
    identity_reset="SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
    "(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)",
)
