"""The hash-chained audit log: appending (inside the caller's transaction) and hashing.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``; the entry includes
its sequence number, so removing or reordering entries breaks the chain. Verification lives
in :mod:`mlops_jupyter.registry.audit`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    prev_hash: str, seq: int, ts: float, actor: str, action: str, subject: str, payload: str
) -> str:
    body = canonical(
        {
            "seq": seq,
            "ts": ts,
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, actor: str, action: str, subject: str, payload: Any) -> str:
    """Append one entry; call inside a write transaction. Returns the new head hash."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
    ts = time.time()
    text = canonical(payload)
    digest = entry_hash(prev, seq, ts, actor, action, subject, text)
    conn.execute(
        "INSERT INTO audit_log (seq, ts, actor, action, subject, payload, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, actor, action, subject, text, prev, digest),
    )
    return digest


def head(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return str(row[0]) if row else GENESIS
