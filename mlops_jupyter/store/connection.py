"""Opening the SQLite file safely: validate, connect, set pragmas, migrate.

Everything that touches the file before it is known to be a healthy store lives here, so the
rules for corrupt files, read-only directories, newer schemas and racing first opens are in one
place. Nothing here writes to a file that failed validation.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptStoreError,
    StoreBusyError,
    StoreError,
    StoreFullError,
    StorePermissionError,
    StoreVersionError,
)
from . import schema
from .checkpointer import BACKSTOP_PAGES, LOG_SIZE_LIMIT, Checkpointer
from .sql import SQLITE

SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_WORDS = ("database is locked", "database is busy", "database table is locked")


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc) for w in _BUSY_WORDS)


def validate_file(db_path: Path) -> None:
    """Refuse a file that is not an SQLite database, or is shorter than its header says.

    A missing or empty file is fine (SQLite initialises it). Reads only the 100-byte header.
    """
    try:
        size = db_path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    try:
        with open(db_path, "rb") as f:
            header = f.read(100)
    except PermissionError as exc:
        raise StorePermissionError(f"cannot read the store file {db_path}: {exc}") from exc
    if not header.startswith(SQLITE_MAGIC):
        raise CorruptStoreError(
            f"{db_path} is not an SQLite database, so it cannot be an mlops-jupyter store. "
            "It was left untouched; move it aside or point MLOPS_JUPYTER_STORE at another store."
        )
    if len(header) < 100:
        raise CorruptStoreError(f"{db_path} is truncated ({size} bytes, shorter than its header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    # a checkpoint copies page 1 (with the new page count) before the pages that extend the
    # file, so while a log with frames sits beside it the file may be shorter than its header
    try:
        copying = db_path.with_name(db_path.name + "-wal").stat().st_size > 0
    except OSError:
        copying = False
    short = counter_valid and not copying and size < pages * page_size
    if page_size < 512 or size % page_size or short:
        raise CorruptStoreError(
            f"{db_path} is truncated or damaged: {size} bytes, but its header describes "
            f"{pages} pages of {page_size} bytes. It was left untouched; restore it from a "
            "backup or move it aside to start a new store."
        )


def corrupt(db_path: Path, exc: sqlite3.DatabaseError) -> CorruptStoreError:
    return CorruptStoreError(f"{db_path} is not a readable mlops-jupyter store ({exc})")


def disk_full(where: Path) -> StoreFullError:
    return StoreFullError(
        f"the disk holding the store {where} is full, so nothing of this write was saved "
        f"(what was stored before is intact). Free space there (df -h {where}) or set "
        "MLOPS_JUPYTER_STORE to a store on another disk."
    )


def translate(exc: sqlite3.Error, db_path: Path) -> StoreError | None:
    """The store error an SQLite failure of a write means, or None if it is none of ours."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return disk_full(db_path.parent)
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return StorePermissionError(
            f"the store {db_path.parent} is read-only here ({exc}); nothing was written. "
            "Make it writable, or set MLOPS_JUPYTER_STORE to a writable store."
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return corrupt(db_path, exc)  # type: ignore[arg-type]
    if name.startswith("SQLITE_IOERR"):
        return StoreError(f"reading or writing the store {db_path} failed: {exc}")
    return None


def connect_read_only(db_path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open a store that this process cannot write (read-only file or directory).

    A WAL database needs its ``-shm`` file; when none exists and none can be made here (no
    writer has the store open), the file is opened as immutable, which is what it is to us.
    """
    for query in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(
            f"{db_path.resolve().as_uri()}?{query}",
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            wal = db_path.with_name(db_path.name + "-wal")
            if "readonly" not in str(exc) and "unable to open" not in str(exc):
                raise corrupt(db_path, exc) from exc
            if wal.is_file() and wal.stat().st_size > 0:
                raise StorePermissionError(
                    f"cannot read the store at {db_path}: it is read-only here and its "
                    f"write-ahead log {wal.name} cannot be opened ({exc})"
                ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise corrupt(db_path, exc) from exc
    raise StorePermissionError(f"cannot open the store at {db_path} read-only")


def writable(directory: Path, db_path: Path) -> bool:
    """Whether this process may write the store (SQLite writes -wal/-shm beside the file)."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    return not db_path.exists() or os.access(db_path, os.W_OK)


def connect(db_path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Connect with WAL, foreign keys, a busy timeout and a 32 MiB page cache; autocommit mode
    (explicit BEGINs). The connection checkpoints the log only past a backstop: a
    :class:`Checkpointer` does it in the background."""
    conn = sqlite3.connect(
        db_path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        _retry_busy(lambda: _enable_wal(conn, db_path), busy_timeout)
        conn.execute("PRAGMA synchronous = NORMAL")
        # up to 32 MiB of pages, filled as read: the panel's listings at 100,000 runs probe
        # pages all over the params index; SQLite's 2 MiB default rereads them each query
        conn.execute("PRAGMA cache_size = -32768")
        conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {LOG_SIZE_LIMIT}")
    except sqlite3.OperationalError as exc:
        conn.close()
        if "readonly" in str(exc) or "unable to open" in str(exc):
            raise StorePermissionError(
                f"cannot write the store at {db_path} ({exc}); the store directory must be "
                "writable (SQLite keeps its -wal and -shm files beside the database)"
            ) from exc
        if is_busy(exc):
            raise StoreBusyError(f"{db_path} stayed locked for {busy_timeout:.0f} s") from exc
        raise corrupt(db_path, exc) from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise corrupt(db_path, exc) from exc
    return conn


def _enable_wal(conn: sqlite3.Connection, db_path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorePermissionError(f"could not switch {db_path} to WAL mode (got {mode!r})")


def _retry_busy(action, timeout: float):  # type: ignore[no-untyped-def]
    """Run ``action``, retrying while SQLite reports the database busy (up to ``timeout``).

    SQLite does not call its busy handler in a few places (switching journal mode, upgrading a
    read transaction to a write), so a short retry loop here is what keeps "database is locked"
    from ever reaching a user.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_schema_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, db_path: Path, app_version: str, timeout: float) -> int:
    """Bring the schema to the latest version; return the version found before.

    Safe when several processes open a fresh store at the same moment: the check and the
    migrations run under one ``BEGIN IMMEDIATE`` write lock, and the version is read again
    once the lock is held.
    """
    found = read_schema_version(conn)
    refuse_newer(found, db_path)
    if found == schema.LATEST_VERSION:
        return found

    def run() -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = read_schema_version(conn)
            refuse_newer(current, db_path)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            for migration in schema.MIGRATIONS:
                if migration.version > current:
                    # executescript would COMMIT our transaction; run statement by statement
                    try:
                        for statement in _statements(migration.sql):
                            conn.execute(statement)
                        if migration.after is not None:
                            migration.after(conn)
                    except sqlite3.Error as exc:
                        raise StoreError(
                            f"migration {migration.version} ({migration.name}) failed on "
                            f"{db_path}: {exc}. The store was left unchanged at schema "
                            f"version {current}."
                        ) from exc
            now = repr(time.time())
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("schema_version", str(schema.LATEST_VERSION)), ("written_by", app_version)],
            )
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (now,))
            conn.execute("COMMIT")
            return current
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    try:
        return _retry_busy(run, timeout)
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise StoreBusyError(f"{db_path} stayed locked for {timeout:.0f} s") from exc
        if "readonly" in str(exc):
            raise StorePermissionError(f"cannot write the store at {db_path} ({exc})") from exc
        raise


def refuse_newer(version: int, db_path: Path) -> None:
    if version > schema.LATEST_VERSION:
        raise StoreVersionError(
            f"{db_path} has schema version {version}, newer than this mlops-jupyter understands "
            f"({schema.LATEST_VERSION}). Upgrade mlops-jupyter (pip install -U mlops-jupyter); "
            "the store was not modified."
        )


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers contain inner ``;``)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer:
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def ensure_writable_dir(directory: Path) -> None:
    """Create the store directory, or explain why it cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise StorePermissionError(
            f"cannot create the store directory {directory}: permission denied. Set "
            "MLOPS_JUPYTER_STORE (or --store) to a writable location."
        ) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StorePermissionError(
            f"the store directory {directory} is read-only; SQLite needs to write its -wal and "
            "-shm files there. Make it writable or set MLOPS_JUPYTER_STORE to a writable copy."
        )


class SQLiteEngine:
    """What the store asks of an engine, for an SQLite file (the embedded default)."""

    dialect = SQLITE
    name = "sqlite"

    def __init__(self, db_path: Path, busy_timeout: float) -> None:
        self.db_path = db_path
        self.busy_timeout = busy_timeout
        self.checkpointer = Checkpointer(db_path)

    def where(self) -> str:
        return str(self.db_path)

    def committed(self) -> None:
        """A write transaction committed: have the log copied into the file soon, off the
        writer's thread (``checkpointer.py``)."""
        self.checkpointer.nudge()

    def close(self) -> None:
        self.checkpointer.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the whole log into the file and truncate it, after the background checkpoint
        in flight (a checkpoint cannot start while another runs)."""
        deadline = time.monotonic() + self.busy_timeout
        self.checkpointer.wait(self.busy_timeout)
        while True:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise StoreBusyError(
                    f"{self.db_path}: the log could not be checkpointed within "
                    f"{self.busy_timeout:.0f} s (another connection is reading or checkpointing)"
                )
            time.sleep(0.01)

    def begin_read(self, conn: sqlite3.Connection) -> None:
        """A read transaction: every read until COMMIT sees one snapshot (WAL)."""
        conn.execute("BEGIN DEFERRED")

    def begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``: take the write lock now, waiting up to the busy timeout."""
        try:
            _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), self.busy_timeout)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise StoreBusyError(
                    f"{self.db_path} stayed locked by another process for "
                    f"{self.busy_timeout:.0f} s; nothing was written"
                ) from exc
            raise (translate(exc, self.db_path) or exc) from exc

    def read_schema_version(self, conn: sqlite3.Connection) -> int:
        return read_schema_version(conn)

    def translate(self, exc: BaseException) -> StoreError | None:
        return translate(exc, self.db_path) if isinstance(exc, sqlite3.Error) else None

    def blobs(self, store: Any) -> Any:
        from .blobs import BlobStore

        return BlobStore(store.directory / "blobs")
