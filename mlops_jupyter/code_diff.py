"""The code of two runs side by side: the tracked cell and the cells run before it.

Plain Python on two :class:`~mlops_jupyter.store.records.Run` records (no Jupyter imports):
the REST API's ``GET diff`` only serialises :func:`code_diff`. A diff is ``{"lines": [...],
"added", "removed"}``; each line is ``{"op", "a", "b", "text"}`` with ``op`` ``" "`` (in both),
``"-"`` (only in a), ``"+"`` (only in b) and the 1-based line numbers it has on each side
(``None`` on the side without it), or a hunk header ``{"op": "@@", "a": None, "b": None,
"text": "@@ -3,7 +3,8 @@"}`` as ``diff -u`` writes it. The cell is diffed with every line shown
(it is short and read whole); the cells before it, joined as ``# In [n]:`` blocks, with 3
lines of context around each change (a session's history is long and mostly the same).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

HISTORY_CONTEXT = 3


def diff_lines(a: str, b: str, context: int | None = None) -> dict[str, Any]:
    """The line diff of ``a`` and ``b``: every line with ``context=None``, else only the
    changes with ``context`` lines around them, each hunk after its ``@@`` header (no
    lines at all when the texts are equal)."""
    old, new = a.splitlines(), b.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    lines: list[dict[str, Any]] = []
    added = removed = 0
    groups: list[list[tuple[str, int, int, int, int]]] = []
    if context is None and (old or new):
        groups = [list(matcher.get_opcodes())]
    elif context is not None and old != new:
        groups = [list(g) for g in matcher.get_grouped_opcodes(context)]
    for group in groups:
        if context is not None:
            first, last = group[0], group[-1]
            lines.append({
                "op": "@@", "a": None, "b": None,
                "text": f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@",
            })  # fmt: skip
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                    lines.append({"op": " ", "a": i + 1, "b": j + 1, "text": old[i]})
                continue
            for i in range(i1, i2):  # replace = the old lines out, then the new lines in
                lines.append({"op": "-", "a": i + 1, "b": None, "text": old[i]})
            for j in range(j1, j2):
                lines.append({"op": "+", "a": None, "b": j + 1, "text": new[j]})
            removed += i2 - i1
            added += j2 - j1
    return {"lines": lines, "added": added, "removed": removed}


def _range(start: int, stop: int) -> str:
    """A hunk side as ``diff -u`` writes it: ``first,count`` (1-based; ``start,0`` when the
    side is empty, naming the line before)."""
    length = stop - start
    first = start + 1
    if length == 1:
        return str(first)
    if not length:
        first -= 1
    return f"{first},{length}"


def history_text(history: Iterable[Mapping[str, Any]]) -> str:
    """The cells run before a tracked cell as one text: a ``# In [n]:`` line then the cell's
    source, per cell in order, a blank line between (a cell whose source was not stored
    shows its hash)."""
    blocks = []
    for cell in history:
        count = cell.get("execution_count")
        source = cell.get("source")
        if source is None:
            source = f"# (source not stored; cell {cell.get('source_hash') or '?'})"
        blocks.append(f"# In [{'' if count is None else count}]:\n{source}")
    return "\n\n".join(blocks)


def _side(run: Any) -> dict[str, Any]:
    return {"run_id": run.run_id, "name": run.name, "started_at": run.started_at.isoformat()}


def code_diff(a: Any, b: Any) -> dict[str, Any]:
    """The code of run ``a`` against run ``b`` (``Run`` records): ``{"a", "b", "cell",
    "history", "same_cell", "same_history"}``. A run without recorded code is an empty
    side."""
    cell_a, cell_b = a.code or "", b.code or ""
    history_a, history_b = history_text(a.history), history_text(b.history)
    return {
        "a": _side(a),
        "b": _side(b),
        "cell": diff_lines(cell_a, cell_b),
        "history": diff_lines(history_a, history_b, HISTORY_CONTEXT),
        "same_cell": cell_a == cell_b,
        "same_history": history_a == history_b,
    }
