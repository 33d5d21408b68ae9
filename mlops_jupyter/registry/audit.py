"""Verify the hash-chained audit log (see :mod:`mlops_jupyter.store.audit_chain`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..store.audit_chain import GENESIS, entry_hash

if TYPE_CHECKING:
    from ..store import Store


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    head: str
    first_bad: int | None = None  # sequence number of the first entry that does not match
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit log OK: {self.entries} entries, head {self.head}"
        where = f" at entry {self.first_bad}" if self.first_bad is not None else ""
        return f"audit log BROKEN{where}: {self.problem}"


def verify(store: Store, expect_head: str | None = None) -> AuditReport:
    """Recompute the chain; with ``expect_head``, also prove the log still extends that head.

    A chain alone cannot see its newest entries deleted or the whole log rewritten; a head hash
    seen earlier (printed in promotion receipts and exported cards) can.
    """
    rows = store._read(
        "SELECT seq, ts, actor, action, subject, payload, prev_hash, hash FROM audit_log "
        "ORDER BY seq"
    )
    prev = GENESIS
    hashes = set()
    for index, (seq, ts, actor, action, subject, payload, prev_hash, digest) in enumerate(rows):
        if seq != index + 1:
            return AuditReport(False, len(rows), prev, seq, f"entry {index + 1} is missing")
        if prev_hash != prev:
            return AuditReport(
                False, len(rows), prev, seq, "its previous-hash does not match the entry before"
            )
        if entry_hash(prev_hash, seq, ts, actor, action, subject, payload) != digest:
            return AuditReport(
                False, len(rows), prev, seq, f"its content was changed ({action} on {subject})"
            )
        prev = digest
        hashes.add(digest)
    if expect_head is not None and expect_head != GENESIS and expect_head not in hashes:
        return AuditReport(
            False,
            len(rows),
            prev,
            None,
            f"the log does not contain head {expect_head}: entries after it were removed or "
            "the log was rewritten",
        )
    return AuditReport(True, len(rows), prev)
