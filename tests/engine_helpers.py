"""What tests do behind the store's back, in each engine's own words (tampering on purpose)."""

from __future__ import annotations

from typing import Any


def allow_audit_edits(store: Any, what: str) -> None:
    """Remove the rule that stops ``what`` ("update" or "delete") of audit entries, as
    someone with the database's owner rights could."""
    if store.engine.name == "sqlite":
        store.conn.execute(f"DROP TRIGGER audit_log_no_{what}")
    else:
        store.conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")


def tamper_blob(store: Any, digest: str) -> None:
    """Flip a byte of a stored blob where it lies."""
    if store.engine.name == "sqlite":
        path = store.blobs.path(digest)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    data = bytearray(store._read("SELECT data FROM blob_chunks WHERE digest = ? AND seq = 0",
                                 (digest,))[0][0])  # fmt: skip
    data[-5] ^= 0xFF
    with store.transaction() as conn:
        conn.execute(
            "UPDATE blob_chunks SET data = ? WHERE digest = ? AND seq = 0", (bytes(data), digest)
        )


def remove_blob(store: Any, digest: str) -> None:
    if store.engine.name == "sqlite":
        store.blobs.path(digest).unlink()
        return
    with store.transaction() as conn:
        conn.execute("DELETE FROM blob_chunks WHERE digest = ?", (digest,))
        conn.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
