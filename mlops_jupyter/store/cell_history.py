"""The cells a kernel ran before a tracked cell, stored once and shared between runs.

Each cell source is stored once, by content (``cells``). The sequence of executed cells is a
chain of nodes (``cell_history``): a node names its parent, the execution count and the cell,
and its id is the hash of the three, so the same session prefix is one chain however many runs
point into it. A run stores only the id of the newest node, so the bytes a run adds stay flat
however long the session grows (a list per run grew quadratically).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import blake3

from .sql import insert_new

_WALK = """
WITH RECURSIVE chain(id, parent, execution_count, cell, depth) AS (
    SELECT id, parent, execution_count, cell, depth FROM cell_history WHERE id = ?
    UNION ALL
    SELECT h.id, h.parent, h.execution_count, h.cell, h.depth
    FROM cell_history h JOIN chain c ON h.id = c.parent
)
SELECT c.execution_count, c.cell, s.source FROM chain c LEFT JOIN cells s ON s.hash = c.cell
ORDER BY c.depth
"""


def cell_hash(source: str) -> str:
    return blake3.blake3(source.encode("utf-8", "surrogatepass")).hexdigest()


def node_id(parent: str | None, execution_count: int | None, cell: str) -> str:
    text = f"{parent or ''}\n{'' if execution_count is None else execution_count}\n{cell}"
    return blake3.blake3(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Node:
    id: str
    parent: str | None
    execution_count: int | None
    cell: str
    depth: int
    source: str | None


@dataclass
class CellHistory:
    """The cells a kernel executed, in order; append as cells run, pass to a run's finish."""

    nodes: list[Node] = field(default_factory=list)

    def append(self, execution_count: int | None, source: str | None) -> None:
        self._add(execution_count, cell_hash(source or ""), source or "")

    def _add(self, execution_count: int | None, cell: str, source: str | None) -> None:
        parent = self.nodes[-1].id if self.nodes else None
        node = Node(
            node_id(parent, execution_count, cell),
            parent,
            execution_count,
            cell,
            len(self.nodes),
            source,
        )
        self.nodes.append(node)

    def before_last(self) -> CellHistory:
        """The history without its newest cell (the tracked cell itself), sharing nodes."""
        return CellHistory(self.nodes[:-1])

    @property
    def head(self) -> str | None:
        return self.nodes[-1].id if self.nodes else None

    def __len__(self) -> int:
        return len(self.nodes)

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> CellHistory:
        """From ``[{execution_count, source}]`` (or ``source_hash`` when only that is known)."""
        history = cls()
        for entry in entries:
            count = entry.get("execution_count")
            if entry.get("source") is not None:
                history.append(count, str(entry["source"]))
            else:
                history._add(count, str(entry.get("source_hash") or ""), None)
        return history


def write(conn: sqlite3.Connection, history: CellHistory) -> str | None:
    """Store the nodes (and cell sources) of ``history`` not yet stored; return its head.

    Walks back from the newest node and stops at the first one already stored, so a run
    normally writes only the cells executed since the previous tracked cell.
    """
    new: list[Node] = []
    for node in reversed(history.nodes):
        if conn.execute("SELECT 1 FROM cell_history WHERE id = ?", (node.id,)).fetchone():
            break
        new.append(node)
    if new:
        conn.executemany(
            insert_new("cells", ("hash", "source")),
            [(n.cell, n.source) for n in new if n.source is not None],
        )
        conn.executemany(
            insert_new("cell_history", ("id", "parent", "execution_count", "cell", "depth")),
            [(n.id, n.parent, n.execution_count, n.cell, n.depth) for n in new],
        )
    return history.head


def read(conn: sqlite3.Connection, head: str | None) -> list[dict[str, Any]]:
    """The cells before a run, oldest first: ``{execution_count, source_hash, source}``."""
    if not head:
        return []
    return [
        {"execution_count": count, "source_hash": cell[:16], "source": source}
        for count, cell, source in conn.execute(_WALK, (head,))
    ]


def migrate_lists(conn: sqlite3.Connection) -> None:
    """Turn the per-run JSON lists of earlier stores into shared chains (schema v5)."""
    import json

    rows = conn.execute("SELECT id, history FROM runs WHERE history IS NOT NULL").fetchall()
    for run_id, text in rows:
        try:
            entries = json.loads(text) or []
        except ValueError:
            continue
        history = CellHistory.from_entries(e for e in entries if isinstance(e, dict))
        head = write(conn, history)
        conn.execute(
            "UPDATE runs SET history_head = ?, history = NULL WHERE id = ?", (head, run_id)
        )
