"""The audit head anchored outside the store: a small file committed with the project.

One line per store (stores are named by their id)::

    <store id> <entries> <head hash>

After each registry action the new head is written here (only ever forward), and reads and
``audit verify`` check that the store's log still holds that entry with that hash, so a
removed tail or a rewritten log is caught even when the chain itself is consistent.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import MLOpsError

ANCHOR_FILENAME = "audit_anchor"
_LINE = re.compile(r"^([0-9a-f]{32})\s+([0-9]+)\s+([0-9a-f]{64})$")
_HEADER = (
    "# mlops-jupyter audit anchor: the newest audit-log head of each store (store id, entries,\n"
    "# head hash). Commit this file with the project; `mlops-jupyter audit verify` checks that\n"
    "# the store's log still contains this head, so a removed tail or a rewrite is detected.\n"
)


class AnchorError(MLOpsError):
    """The anchor file cannot be read or written."""


@dataclass(frozen=True)
class Anchor:
    store_id: str
    seq: int
    head: str
    path: Path


def _read(path: Path) -> dict[str, tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AnchorError(f"cannot read the audit anchor {path}: {exc.strerror}") from None
    out: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise AnchorError(
                f"{path}:{number}: expected 'STORE_ID ENTRIES HEAD' (32 hex, a number, 64 hex), "
                f"got {line!r}"
            )
        out[match.group(1)] = (int(match.group(2)), match.group(3))
    return out


def read_anchor(path: Path, store_id: str) -> Anchor | None:
    """The anchored head of ``store_id`` in ``path``, or None when it has none."""
    found = _read(path).get(store_id)
    return Anchor(store_id, found[0], found[1], path) if found else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: single writer assumed
        yield
        return
    lock = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def write_anchor(path: Path, store_id: str, seq: int, head: str) -> None:
    """Record ``head`` (entry ``seq``) for ``store_id``, unless the file already holds a later
    one (two processes finishing in the other order never move the anchor back)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            heads = _read(path)
            if store_id in heads and heads[store_id][0] >= seq:
                return
            heads[store_id] = (seq, head)
            body = _HEADER + "".join(f"{k} {n} {h}\n" for k, (n, h) in sorted(heads.items()))
            fd, tmp = tempfile.mkstemp(prefix=".audit_anchor-", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(body)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise AnchorError(f"cannot write the audit anchor {path}: {exc.strerror}") from None
