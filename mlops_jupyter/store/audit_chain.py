"""The hash-chained audit log: appending (inside the caller's transaction) and hashing.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``; the entry includes
its sequence number, so removing or reordering entries breaks the chain. Since schema v3 an
entry may carry an SSHSIG ``signature`` over its payload, and then the signature is part of
what is hashed; the signed payload itself names the previous head and the time, so a signed
statement is bound to its place in the chain. Entries written before v3 keep their original
hash (no signature). Verification lives in :mod:`mlops_jupyter.registry.audit`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    prev_hash: str,
    seq: int,
    ts: float,
    actor: str,
    action: str,
    subject: str,
    payload: str,
    signature: str | None = None,
) -> str:
    fields: dict[str, Any] = {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
    }
    if signature is not None:
        fields["signature"] = signature
    return hashlib.sha256((prev_hash + canonical(fields)).encode("utf-8")).hexdigest()


def append(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any],
    sign: Callable[[bytes], str] | None = None,
) -> str:
    """Append one entry; call inside a write transaction. Returns the new head hash.

    With ``sign``, the payload becomes a statement: it gets the ``action``, the ``principal``
    (``actor``), ``prev`` (the head it extends) and ``time``, and ``sign`` is called with its
    canonical bytes to produce the stored signature.
    """
    seq, prev = last(conn)
    seq += 1
    ts = time.time()
    signature = None
    if sign is not None:
        payload = {**payload, "action": action, "principal": actor, "prev": prev, "time": ts}
    text = canonical(payload)
    if sign is not None:
        signature = sign(text.encode("utf-8"))
    digest = entry_hash(prev, seq, ts, actor, action, subject, text, signature)
    conn.execute(
        "INSERT INTO audit_log (seq, ts, actor, action, subject, payload, prev_hash, hash, "
        "signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, actor, action, subject, text, prev, digest, signature),
    )
    return digest


def last(conn: sqlite3.Connection) -> tuple[int, str]:
    """The newest entry's sequence number and hash (0 and the genesis hash when empty)."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def head(conn: sqlite3.Connection) -> str:
    return last(conn)[1]
