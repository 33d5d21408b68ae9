"""The PostgreSQL engine: a team's store on a database server (``postgresql://...``).

Everything engine-specific for PostgreSQL is here and in ``postgres_schema.py``: connecting
(psycopg 3, a 5 s connect timeout, reconnecting after a server restart), the placeholder
style, serialising writers (one advisory lock per write transaction, as SQLite's write lock
does), migrations under an advisory lock, error translation, and blobs stored in the database
in 1 MiB chunks. The store's logic above it is the same for both engines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import blake3

from ..errors import (
    BlobIntegrityError,
    StoreError,
    StorePermissionError,
    StoreVersionError,
)
from . import postgres_schema
from .sql import POSTGRES

if TYPE_CHECKING:
    from .store import Store

CONNECT_TIMEOUT_S = 5
_WRITE_LOCK = 0x6D6A5F7772697465  # "mj_write": one writer at a time, like SQLite's lock
_MIGRATION_LOCK = 0x6D6A5F6D69677261  # "mj_migra"
CHUNK = 1 << 20


class StoreConnectionError(StoreError):
    """The PostgreSQL server of a store cannot be reached, or refused the login."""


def describe(url: str) -> str:
    """``user@host:port/dbname`` of a URL, never its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "an unparseable PostgreSQL URL"
    host = info.get("host") or "localhost"
    where = f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
    return f"{info['user']}@{where}" if info.get("user") else where


def describe_without_psycopg(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


_VALUES = re.compile(r"VALUES (\(\?(?:, \?)*\))")
_MAX_PARAMS = 30_000  # PostgreSQL takes up to 65,535 parameters in one statement


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """``?`` placeholders (the SQL both engines share) as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """The small part of the DB-API the store uses, over a psycopg connection in autocommit
    mode with explicit transactions; reconnects when the server went away between uses."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self._conn: Any = None
        self.reconnect()

    def reconnect(self) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                f"{describe_without_psycopg(self.url)} is a PostgreSQL store; install its "
                "driver with: pip install 'mlops-jupyter[team]' (psycopg 3)"
            ) from None

        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        try:
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c lock_timeout={int(self.busy_timeout * 1000)}",
            )
        except psycopg.OperationalError as exc:
            raise StoreConnectionError(
                f"cannot connect to the PostgreSQL store at {describe(self.url)}: "
                f"{_first_line(exc)}"
            ) from None

    def ensure(self) -> None:
        """Reconnect if the connection broke (the server restarted) and no transaction is
        open on it."""
        if self._conn.closed or self._conn.broken:
            self.reconnect()

    @property
    def in_transaction(self) -> bool:
        from psycopg import pq

        return bool(self._conn.info.transaction_status != pq.TransactionStatus.IDLE)

    def execute(self, sql: str, params: Sequence[Any] | Iterable[Any] = ()) -> Any:
        args = tuple(params)
        if not args:  # no placeholders: psycopg sends the text as it is
            return self._conn.execute(sql)
        return self._conn.execute(_pg(sql), args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        """Many rows of an ``INSERT ... VALUES (?, ...)`` go as one multi-row statement per
        chunk (one round trip instead of a pipeline sync per call); other statements as
        psycopg's executemany. Upserts must not repeat a key within one call."""
        rows = [tuple(r) for r in rows]
        match = _VALUES.search(sql)
        if match is None or not rows:
            cursor = self._conn.cursor()
            cursor.executemany(_pg(sql), rows)
            return cursor
        group = match.group(1)
        per = max(1, _MAX_PARAMS // len(rows[0]))
        cursor = None
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            many = sql[: match.start(1)] + ", ".join([group] * len(chunk)) + sql[match.end(1) :]
            cursor = self._conn.execute(_pg(many), [v for row in chunk for v in row])
        return cursor

    def script(self, sql: str) -> None:
        """Run several statements (a migration) in one round trip."""
        self._conn.execute(sql)

    def close(self) -> None:
        self._conn.close()


class PostgresEngine:
    """What the store asks of an engine, for PostgreSQL."""

    dialect = POSTGRES
    name = "postgresql"

    def __init__(self, url: str, busy_timeout: float) -> None:
        self.url = url.strip()
        self.busy_timeout = busy_timeout

    def where(self) -> str:
        return f"the PostgreSQL store at {describe(self.url)}"

    def committed(self) -> None:
        """Nothing to do after a commit: the server checkpoints on its own."""

    def close(self) -> None:
        """Nothing held beyond the store's connection."""

    def checkpoint(self, conn: PgConnection) -> None:
        """Nothing to do: the server keeps its own write-ahead log."""

    def connect(self) -> PgConnection:
        return PgConnection(self.url, self.busy_timeout)

    def begin_read(self, conn: PgConnection) -> None:
        """A read-only transaction on one snapshot of the database."""
        conn.ensure()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def begin(self, conn: PgConnection) -> None:
        conn.ensure()
        try:  # one round trip: the lock waits at most lock_timeout (set at connect)
            conn.script(f"BEGIN; SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
        except Exception as exc:
            raise self.translate(exc) or exc from exc

    def read_schema_version(self, conn: PgConnection) -> int:
        if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def migrate(self, conn: PgConnection, app_version: str) -> int:
        """Create or upgrade the schema; several clients at once wait for one another."""
        import uuid

        found = self.read_schema_version(conn)
        self._refuse_newer(found)
        if found == postgres_schema.LATEST_VERSION:
            return found
        conn.execute("SELECT pg_advisory_lock(?)", (_MIGRATION_LOCK,))
        try:
            current = self.read_schema_version(conn)
            self._refuse_newer(current)
            conn.execute("BEGIN")
            try:
                conn.script("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                for migration in postgres_schema.MIGRATIONS:
                    if migration.version > current:
                        conn.script(migration.sql)
                for key, value in (
                    ("schema_version", str(postgres_schema.LATEST_VERSION)),
                    ("written_by", app_version),
                ):
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                for key, value in (
                    ("created_at", repr(time.time())),
                    ("store_id", uuid.uuid4().hex),
                ):
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (key, value),
                    )
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                translated = self.translate(exc)
                if translated is not None:
                    raise translated from exc
                raise StoreError(
                    f"creating the schema of {self.where()} failed: {_first_line(exc)}; "
                    "nothing was changed"
                ) from exc
            return current
        finally:
            conn.execute("SELECT pg_advisory_unlock(?)", (_MIGRATION_LOCK,))

    def _refuse_newer(self, version: int) -> None:
        if version > postgres_schema.LATEST_VERSION:
            raise StoreVersionError(
                f"{self.where()} has schema version {version}, newer than this mlops-jupyter "
                f"understands ({postgres_schema.LATEST_VERSION}). Upgrade mlops-jupyter "
                "(pip install -U mlops-jupyter); the store was not modified."
            )

    def translate(self, exc: BaseException) -> StoreError | None:
        """The store error a psycopg failure means, or None if it is none of ours."""
        import psycopg
        from psycopg import errors

        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, errors.DiskFull):
            return StoreError(
                f"the disk of {self.where()} is full, so nothing of this write was saved; "
                "ask whoever runs the database server to free space"
            )
        if isinstance(exc, errors.InsufficientPrivilege):
            return StorePermissionError(
                f"{self.where()} refused this: {_first_line(exc)} (the role you connect with "
                "lacks the privilege; see mlops-jupyter team init)"
            )
        if isinstance(exc, errors.LockNotAvailable):
            return StoreError(
                f"{self.where()} stayed locked by another writer for {self.busy_timeout:.0f} s; "
                "nothing was written"
            )
        if isinstance(exc, psycopg.OperationalError):
            return StoreConnectionError(
                f"lost the connection to {self.where()}: {_first_line(exc)}; nothing of this "
                "write was saved (the next one reconnects)"
            )
        return None

    def blobs(self, store: Store) -> Any:
        """Blobs as rows of the database, or files in the shared ``blob_dir`` when set."""
        from pathlib import Path

        from ..config import settings

        shared = settings().blob_dir
        if shared:
            from .blobs import BlobStore

            return BlobStore(Path(shared).expanduser())
        return PgBlobStore(store)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PgBlobStore:
    """Content-addressed blobs in the database, in 1 MiB chunks: a large model is written and
    read a chunk at a time, and its hash is checked on every read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.engine.where()

    def exists(self, digest: str) -> bool:
        from .blobs import _check_digest

        rows = self.store._read("SELECT 1 FROM blobs WHERE digest = ?", (_check_digest(digest),))
        return bool(rows)

    def path(self, digest: str) -> Any:
        raise StoreError(f"blobs of {self.root} are rows of its database, not files")

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        view = memoryview(data)
        digest = blake3.blake3(view, max_threads=blake3.blake3.AUTO).hexdigest()
        self._put(digest, len(view), (view[i : i + CHUNK] for i in range(0, len(view), CHUNK)))
        return digest

    def put_file(self, source: Any) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        size = 0
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                hasher.update(chunk)
                size += len(chunk)
        digest = hasher.hexdigest()

        def chunks() -> Iterator[bytes]:
            with open(source, "rb") as f:
                yield from iter(lambda: f.read(CHUNK), b"")

        self._put(digest, size, chunks())
        if self._digest(digest) != digest:
            raise BlobIntegrityError(f"{source} changed while it was being stored; try again")
        return digest

    def _put(self, digest: str, size: int | None, chunks: Iterable[Any]) -> int:
        """Write the chunks and the blob's row in one transaction; with ``size`` None the
        content is hashed on the way and refused unless it hashes to ``digest``."""
        if self.exists(digest):
            return int(self.store._read("SELECT size FROM blobs WHERE digest = ?", (digest,))[0][0])
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO) if size is None else None
        with self.store.transaction() as conn:
            row = conn.execute("SELECT size FROM blobs WHERE digest = ?", (digest,)).fetchone()
            if row:
                return int(row[0])
            n, total = 0, 0
            for n, chunk in enumerate(chunks, 1):
                if hasher is not None:
                    hasher.update(chunk)
                total += len(chunk)
                conn.execute(
                    "INSERT INTO blob_chunks (digest, seq, data) VALUES (?, ?, ?)",
                    (digest, n - 1, bytes(chunk)),
                )
            if hasher is not None and hasher.hexdigest() != digest:
                raise BlobIntegrityError(
                    f"blob {digest} arrived with content hashing to {hasher.hexdigest()}; "
                    "it was not stored"
                )
            conn.execute(
                "INSERT INTO blobs (digest, size, chunks, created_at) VALUES (?, ?, ?, ?)",
                (digest, total, n, time.time()),
            )
        return total

    def iter_chunks(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes, chunk by chunk (not checked: :meth:`put_chunks` checks)."""
        return self._chunks(digest)

    def put_chunks(self, digest: str, chunks: Iterable[bytes]) -> int:
        from .blobs import _check_digest

        return self._put(_check_digest(digest), None, chunks)

    def _chunks(self, digest: str) -> Iterator[bytes]:
        from .blobs import _check_digest

        row = self.store._read(
            "SELECT chunks FROM blobs WHERE digest = ?", (_check_digest(digest),)
        )
        if not row:
            raise BlobIntegrityError(f"blob {digest} is missing from {self.root}")
        for seq in range(int(row[0][0])):
            data = self.store._read(
                "SELECT data FROM blob_chunks WHERE digest = ? AND seq = ?", (digest, seq)
            )
            if not data:
                raise BlobIntegrityError(f"blob {digest} in {self.root} is missing chunk {seq}")
            yield bytes(data[0][0])

    def _digest(self, digest: str) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        for chunk in self._chunks(digest):
            hasher.update(chunk)
        return str(hasher.hexdigest())

    def get_bytes(self, digest: str) -> bytes:
        data = b"".join(self._chunks(digest))
        actual = blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
        if actual != digest:
            raise BlobIntegrityError(
                f"blob {digest} in {self.root} is corrupt: its content hashes to {actual}; it "
                "was modified in the database and will not be used"
            )
        return data

    def verify(self, digest: str) -> None:
        actual = self._digest(digest)
        if actual != digest:
            raise BlobIntegrityError(f"blob {digest} in {self.root} hashes to {actual}")

    def clean_temporary(self) -> int:
        return 0  # a blob is written in one transaction: nothing half-written is left


def team_init(
    url: str,
    writers: Sequence[str] = (),
    readers: Sequence[str] = (),
    busy_timeout: float = 30.0,
) -> list[str]:
    """Create (or upgrade) the team store's schema as its owner, the writer and reader roles
    with their grants, and make the given login roles members; return what was done."""
    from .._version import __version__

    for login in (*writers, *readers):
        if not login.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"not a role name: {login!r}")
    engine = PostgresEngine(url, busy_timeout)
    conn = engine.connect()
    done = []
    try:
        before = engine.migrate(conn, __version__)
        after = engine.read_schema_version(conn)
        done.append(
            f"schema version {after}" + (" (created)" if before == 0 else f" (was {before})")
        )
        try:
            conn.script(postgres_schema.roles_sql())
            for role, logins in (
                (postgres_schema.WRITER_ROLE, writers),
                (postgres_schema.READER_ROLE, readers),
            ):
                for login in logins:
                    conn.script(f'GRANT {role} TO "{login}"')
        except Exception as exc:
            raise engine.translate(exc) or StoreError(
                f"setting up the roles of {engine.where()} failed: {_first_line(exc)}"
            ) from exc
        done.append(
            f"roles {postgres_schema.WRITER_ROLE} (runs, registry, audit entries; no edits of "
            f"the log) and {postgres_schema.READER_ROLE} (read only)"
        )
        done += [f"{login} is a {postgres_schema.WRITER_ROLE}" for login in writers]
        done += [f"{login} is a {postgres_schema.READER_ROLE}" for login in readers]
    finally:
        conn.close()
    return done
