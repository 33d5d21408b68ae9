"""The store: one SQLite file plus content-addressed blobs in a ``.mlops/`` directory.

Read API (public): :meth:`Store.open`, :meth:`Store.experiments`, :meth:`Store.runs`,
:meth:`Store.get_run`. The write methods are used by the tracker and the registry; each is one
short ``BEGIN IMMEDIATE`` transaction, so many kernels, the server and the CLI can write at once.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import (
    AmbiguousRunError,
    BlobIntegrityError,
    ImmutableArtifactError,
    MetricNotFoundError,
    RunNotFoundError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
)
from . import audit_chain, cell_history, connection, curves
from .blobs import _alive
from .cell_history import CellHistory
from .curves import Curve, Points
from .discovery import DB_FILENAME, find_store, find_store_dir
from .records import (
    Artifact,
    DatasetLink,
    Environment,
    Explanation,
    MetricPoint,
    Run,
    decode_metric,
    encode_metric,
    encode_param,
    json_number,
    utc,
)
from .schema import LATEST_VERSION
from .sql import insert_new, upsert

if TYPE_CHECKING:
    import pandas as pd
    import sqlite_utils

    from .run_index import RunIndex

DEFAULT_BUSY_TIMEOUT = 30.0
RUN_COLUMNS = ["run_id", "experiment", "name", "status", "started_at", "duration_s"]
_PARAM_KEY = ("run_id", "key")
_METRIC_COLUMNS = ("run_id", "key", "step", "value", "flag", "timestamp")
_METRIC_KEY = ("run_id", "key", "step")
_DATASET_COLUMNS = (
    "hash", "kind", "shape", "schema", "profile", "source_path", "source_hash", "created_at",
    "rows_blob",
)  # fmt: skip
_ARTIFACT_COLUMNS = (
    "run_id", "name", "kind", "blob", "size", "media_type", "meta", "created_at"
)  # fmt: skip

MONITOR_BATCH_COLUMNS = (
    "id", "model_name", "version", "stage", "batch_id", "data_hash", "reference_hash",
    "created_at", "n_rows", "profile", "features", "decision", "drift_share", "predictions",
    "performance", "thresholds", "recorded_by", "kind", "sample",
)  # fmt: skip
MONITOR_JSON_COLUMNS = frozenset(
    ("profile", "features", "predictions", "performance", "thresholds")
)

_RUN_SORT_COLUMNS = {
    "run_id": "r.id",
    "experiment": "e.name",
    "name": "r.name",
    "status": "r.status",
    "started_at": "r.started_at",
    "ended_at": "r.ended_at",
    "duration_s": "r.duration_s",
}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _unjson(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class _ScalarMemo:
    """``_unjson`` that decodes each distinct scalar once (a page of runs repeats its values)."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def __call__(self, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return self._seen[text]
        except KeyError:
            value = json.loads(text)
            if not isinstance(value, (list, dict)):  # containers are mutable: never shared
                self._seen[text] = value
            return value


def new_run_id() -> str:
    return uuid.uuid4().hex


class Store:
    """An open mlops-jupyter store. Use :meth:`Store.open`; close it (or use ``with``)."""

    def __init__(self, directory: Path, conn: Any, busy_timeout: float, engine: Any = None) -> None:
        self.directory = directory  # the project's .mlops: policy, allowed signers, anchor
        self.db_path = directory / DB_FILENAME
        self.engine = engine or connection.SQLiteEngine(self.db_path, busy_timeout)
        self.dialect = self.engine.dialect
        self.blobs = self.engine.blobs(self)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._depth = 0
        self._run_index: RunIndex | None = None
        self.read_only = False  # opened read-only: this process may not write the store
        self._experiments: dict[str, int] = {}
        self._new_experiments: dict[str, int] = {}
        self.cache: dict[str, Any] = {}  # derived state kept by the layers above (registry)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        start: str | os.PathLike[str] | None = None,
        busy_timeout: float | None = None,
    ) -> Store:
        """Open (and create or migrate, as needed) the store.

        ``path`` is a ``.mlops`` directory or its ``store.db``; without it the store is found by
        the discovery rule (``MLOPS_JUPYTER_STORE``, else the nearest ``.mlops/`` upward from
        ``start`` or the working directory, else the git root, else the working directory).
        With ``create=False`` a missing store raises :class:`StoreNotFoundError`.
        """
        if busy_timeout is None:
            from ..config import settings

            busy_timeout = settings().busy_timeout
        timeout = float(busy_timeout)
        location = find_store(start, explicit=path)
        if isinstance(location, str):
            return cls._open_postgres(location, start, timeout)
        directory = location
        db_path = directory / DB_FILENAME
        if not create and not db_path.is_file():
            raise StoreNotFoundError(
                f"no mlops-jupyter store at {directory} (looked for {db_path}); run a tracked "
                "cell first, or pass --store / set MLOPS_JUPYTER_STORE"
            )
        connection.validate_file(db_path)
        if db_path.is_file() and not connection.writable(directory, db_path):
            return cls._open_read_only(directory, db_path, timeout)
        connection.ensure_writable_dir(directory)
        conn = connection.connect(db_path, timeout)
        try:
            connection.migrate(conn, db_path, __version__, timeout)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise connection.translate(exc, db_path) or connection.corrupt(db_path, exc) from exc
        except BaseException:
            conn.close()
            raise
        store = cls(directory, conn, timeout)
        store.mark_dead_runs_interrupted()
        store.blobs.clean_temporary()
        return store

    @classmethod
    def _open_postgres(
        cls, url: str, start: str | os.PathLike[str] | None, timeout: float
    ) -> Store:
        """A team store on a PostgreSQL server; the project's governance files (policy,
        allowed signers, anchor) stay in its local ``.mlops`` directory."""
        from .postgres import PostgresEngine

        engine = PostgresEngine(url, timeout)
        conn = engine.connect()
        try:
            engine.migrate(conn, __version__)
        except BaseException as exc:
            conn.close()
            translated = engine.translate(exc) if isinstance(exc, Exception) else None
            if translated is not None and translated is not exc:
                raise translated from exc
            raise
        store = cls(find_store_dir(start, use_env=False), conn, timeout, engine)
        store.mark_dead_runs_interrupted()
        return store

    @classmethod
    def _open_read_only(cls, directory: Path, db_path: Path, timeout: float) -> Store:
        """A store this process may read but not write: reads work, writes say why not."""
        conn = connection.connect_read_only(db_path, timeout)
        try:
            version = connection.read_schema_version(conn)
            connection.refuse_newer(version, db_path)
            if version < LATEST_VERSION:
                raise StorePermissionError(
                    f"the store at {db_path} has schema version {version} and must be migrated "
                    f"to {LATEST_VERSION} before it can be read, but it is read-only here; open "
                    "it once where it is writable"
                )
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise connection.corrupt(db_path, exc) from exc
        except BaseException:
            conn.close()
            raise
        store = cls(directory, conn, timeout)
        store.read_only = True
        return store

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.directory} is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self.engine.close()

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into ``store.db`` and empty it, so that the file alone
        holds every commit (before copying it by hand, or measuring it). A background thread
        does this continually; this waits for it. Nothing to do on PostgreSQL."""
        with self._lock:
            self.engine.checkpoint(self.conn)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        where = self.directory if self.engine.name == "sqlite" else self.engine.where()
        return f"<Store {str(where)!r} {state}>"

    @property
    def schema_version(self) -> int:
        return int(self.engine.read_schema_version(self.conn))

    @property
    def db(self) -> sqlite_utils.Database:
        """A ``sqlite_utils.Database`` on this store's connection, for ad-hoc queries."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # ------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints."""
        if self.read_only:
            raise StorePermissionError(
                f"the store {self.directory} is read-only here (it was opened for reading); "
                "nothing was written. Make it writable, or set MLOPS_JUPYTER_STORE to a "
                "writable store."
            )
        with self._lock:
            conn = self.conn
            if self._depth:
                name = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield conn
                except BaseException:
                    self._new_experiments = {}  # maybe rolled back: look them up again
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                    raise
                else:
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                finally:
                    self._depth -= 1
                return
            self.engine.begin(conn)
            self._depth = 1
            self._new_experiments = {}
            try:
                yield conn
                conn.execute("COMMIT")
                self._experiments.update(self._new_experiments)
                self.engine.committed()
            except BaseException as exc:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except Exception:  # rolled back already (a full disk, a lost connection)
                    pass
                translated = self.engine.translate(exc) if isinstance(exc, Exception) else None
                if translated is not None and translated is not exc:
                    raise translated from exc
                raise
            finally:
                self._depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view of the store across several reads (a read transaction;
        inside a write transaction, that transaction's view)."""
        with self._lock:
            conn = self.conn
            if self._depth or conn.in_transaction:
                yield
                return
            self.engine.begin_read(conn)
            try:
                yield
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def run_index(self) -> RunIndex:
        """The runs listing's in-memory index, brought up to date (use inside
        :meth:`snapshot`, so that what is read next agrees with it)."""
        if self._run_index is None:
            from .run_index import RunIndex  # numpy: imported when a listing first needs it

            self._run_index = RunIndex()
        self._run_index.refresh(self)
        return self._run_index

    def load_run_index(self) -> None:
        """Build the listing index now (a server does this off its event loop when it opens
        a store, so that the first listing of a big store does not wait for it)."""
        with self._lock, self.snapshot():
            self.run_index()

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self.conn.execute(sql, tuple(params)).fetchall())
            except Exception as exc:
                translated = self.engine.translate(exc)
                if translated is None or translated is exc:
                    raise
                raise translated from exc

    # -------------------------------------------------------------------- writes
    def _experiment_id(self, conn: sqlite3.Connection, name: str) -> int:
        """The experiment's id, created if new (ids of committed experiments are cached:
        experiments are never deleted, and a write saves two round trips to a server)."""
        known = self._experiments.get(name)
        if known is not None:
            return known
        conn.execute(insert_new("experiments", ("name", "created_at")), (name, time.time()))
        found = int(
            conn.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()[0]
        )
        self._new_experiments[name] = found  # cached once the transaction commits
        return found

    def create_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        run_id: str | None = None,
        started_at: float | None = None,
        source: str | None = None,
        execution_count: int | None = None,
        notebook_path: str | None = None,
        kernel_id: str | None = None,
        user: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Insert a run with status ``running`` (evidence survives a crash); return its id."""
        run_id = run_id or new_run_id()
        with self.transaction() as conn:
            self._insert_run(
                conn,
                run_id,
                experiment,
                name,
                started_at,
                source,
                execution_count,
                notebook_path,
                kernel_id,
                user,
                tags,
            )
        return run_id

    def _insert_run(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        experiment: str,
        name: str | None,
        started_at: float | None,
        source: str | None,
        execution_count: int | None,
        notebook_path: str | None,
        kernel_id: str | None,
        user: str | None,
        tags: Mapping[str, str] | None,
    ) -> None:
        conn.execute(
            "INSERT INTO runs (id, experiment_id, name, status, started_at, source, "
            'execution_count, notebook_path, kernel_id, "user", host, pid, tags) '
            "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                self._experiment_id(conn, experiment),
                name,
                time.time() if started_at is None else started_at,
                source,
                execution_count,
                notebook_path,
                kernel_id,
                user,
                socket.gethostname(),
                os.getpid(),
                _json(dict(tags)) if tags else None,
            ),
        )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str = "finished",
        ended_at: float | None = None,
        params: Mapping[str, Any] | None = None,
        param_sources: Mapping[str, str] | None = None,
        metrics: Mapping[str, Any] | Iterable[tuple[str, Any, int]] | None = None,
        datasets: Iterable[DatasetLink] = (),
        environment: Mapping[str, Any] | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        history: CellHistory | Iterable[Mapping[str, Any]] | None = None,
        error: str | None = None,
        capture_errors: list[dict[str, Any]] | None = None,
        series: Mapping[str, Sequence[float]] | None = None,
        points: Mapping[str, Points] | None = None,
    ) -> None:
        """Record everything a run captured and its final status, in one transaction.

        ``series`` are curves (one value per step from 0), stored packed, one row per key; the
        last point of each is also the metric's value. ``points`` are logged points not yet
        written (see :meth:`append_metric_points`). ``history`` is the cells run before (a
        :class:`CellHistory`, or ``[{execution_count, source}]``), each stored once.
        """
        with self.transaction() as conn:
            self._finish(
                conn,
                run_id,
                status,
                ended_at,
                params,
                param_sources,
                metrics,
                datasets,
                environment,
                git_commit,
                git_dirty,
                history,
                error,
                capture_errors,
            )
            if series:
                self._series(conn, run_id, series)
            if points:
                self._write_points(conn, run_id, points)

    def append_metric_points(self, run_id: str, points: Mapping[str, Points]) -> None:
        """Write a batch of logged points of a run while it goes on, in one transaction: one
        packed row per metric (see :mod:`.curves`), its highest step also a ``metrics`` row."""
        with self.transaction() as conn:
            self._write_points(conn, run_id, points)

    def _write_points(
        self, conn: sqlite3.Connection, run_id: str, points: Mapping[str, Points]
    ) -> None:
        latest, chunks = [], []
        for key, batch in points.items():
            if not len(batch):
                continue
            top = batch.last()
            value, flag = encode_metric(batch.values[top])
            latest.append((run_id, key, batch.steps[top], value, flag, batch.times[top]))
            if len(batch) > 1:
                (seq,) = conn.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM metric_chunks "
                    "WHERE run_id = ? AND key = ?",
                    (run_id, key),
                ).fetchone()
                chunks.append(curves.chunk_row(run_id, key, seq, batch))
        conn.executemany(upsert("metrics", _METRIC_COLUMNS, _METRIC_KEY), latest)
        if chunks:
            conn.executemany(insert_new("metric_chunks", curves.CHUNK_COLUMNS), chunks)

    def record_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | Iterable[tuple[str, Any, int]] | None = None,
        status: str = "finished",
        started_at: float | None = None,
        ended_at: float | None = None,
        **fields: Any,
    ) -> str:
        """Create and finish a run in one transaction (scripts, imports, benchmarks)."""
        run_id = new_run_id()
        started = time.time() if started_at is None else started_at
        create_keys = {"source", "execution_count", "notebook_path", "kernel_id", "user", "tags"}
        create = {k: fields.pop(k, None) for k in create_keys}
        with self.transaction() as conn:
            self._insert_run(
                conn,
                run_id,
                experiment,
                name,
                started,
                create["source"],
                create["execution_count"],
                create["notebook_path"],
                create["kernel_id"],
                create["user"],
                create["tags"],
            )
            self._finish(
                conn,
                run_id,
                status,
                ended_at,
                params,
                fields.get("param_sources"),
                metrics,
                fields.get("datasets", ()),
                fields.get("environment"),
                fields.get("git_commit"),
                fields.get("git_dirty"),
                fields.get("history"),
                fields.get("error"),
                fields.get("capture_errors"),
            )
        return run_id

    def _finish(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        status: str,
        ended_at: float | None,
        params: Mapping[str, Any] | None,
        param_sources: Mapping[str, str] | None,
        metrics: Mapping[str, Any] | Iterable[tuple[str, Any, int]] | None,
        datasets: Iterable[DatasetLink],
        environment: Mapping[str, Any] | None,
        git_commit: str | None,
        git_dirty: bool | None,
        history: CellHistory | Iterable[Mapping[str, Any]] | None,
        error: str | None,
        capture_errors: list[dict[str, Any]] | None,
    ) -> None:
        now = time.time()
        ended = now if ended_at is None else ended_at
        env_id = self._environment_id(conn, environment) if environment else None
        head = None
        if history is not None:
            if not isinstance(history, CellHistory):
                history = CellHistory.from_entries(history)
            head = cell_history.write(conn, history)
        updated = conn.execute(
            "UPDATE runs SET status = ?, ended_at = ?, duration_s = ? - started_at, "
            "environment_id = COALESCE(?, environment_id), git_commit = COALESCE(?, "
            "git_commit), git_dirty = COALESCE(?, git_dirty), history_head = COALESCE(?, "
            "history_head), error = ?, capture_errors = ? WHERE id = ?",
            (
                status,
                ended,
                ended,
                env_id,
                git_commit,
                None if git_dirty is None else int(git_dirty),
                head,
                error,
                _json(capture_errors) if capture_errors else None,
                run_id,
            ),
        )
        if updated.rowcount == 0:
            raise RunNotFoundError(run_id)
        if params:
            sources = param_sources or {}
            rows = []
            for key, value in params.items():
                text, truncated = encode_param(value)
                rows.append((run_id, str(key), text, sources.get(key, "user"), int(truncated)))
            conn.executemany(
                upsert("params", ("run_id", "key", "value", "source", "truncated"), _PARAM_KEY),
                rows,
            )
        if metrics:
            triples: Iterable[tuple[str, Any, int]] = (
                [(k, v, 0) for k, v in metrics.items()] if isinstance(metrics, Mapping) else metrics
            )
            latest = {(str(k), int(s)): v for k, v, s in triples}  # a point given twice: the last
            grouped = curves.points_from(((k, v, s) for (k, s), v in latest.items()), now)
            self._write_points(conn, run_id, grouped)
        for link in datasets:
            self._link_dataset(conn, run_id, link, now)

    def _series(
        self, conn: sqlite3.Connection, run_id: str, series: Mapping[str, Sequence[float]]
    ) -> None:
        now = time.time()
        rows, last = [], []
        for key, points in series.items():
            values = array("d", points if isinstance(points, list) else list(points))
            if not values:
                continue
            if sys.byteorder == "big":  # stored little-endian on every machine
                values.byteswap()
            rows.append((run_id, str(key), len(values), values.tobytes(), now))
            last.append((run_id, str(key), len(values) - 1, *encode_metric(points[-1]), now))
        conn.executemany(
            upsert("metric_series", ("run_id", "key", "n", "values", "timestamp"), _PARAM_KEY),
            rows,
        )
        conn.executemany(upsert("metrics", _METRIC_COLUMNS, _METRIC_KEY), last)

    def _environment_id(self, conn: sqlite3.Connection, env: Mapping[str, Any]) -> str:
        import hashlib

        packages = dict(env.get("packages") or {})
        body = {
            "python": str(env["python"]),
            "platform": str(env["platform"]),
            "packages": packages,
        }
        env_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        conn.execute(
            insert_new("environments", ("id", "python", "platform", "packages", "created_at")),
            (env_id, body["python"], body["platform"], _json(packages), time.time()),
        )
        return env_id

    def _link_dataset(
        self, conn: sqlite3.Connection, run_id: str, link: DatasetLink, now: float
    ) -> None:
        conn.execute(
            insert_new("datasets", _DATASET_COLUMNS),
            (
                link.hash,
                link.kind,
                _json(link.shape),
                _json(link.schema),
                _json(link.profile),
                link.source_path,
                link.source_hash,
                now,
                link.rows_blob,
            ),
        )
        if link.rows_blob:  # a snapshot stored before without its rows gets them
            conn.execute(
                "UPDATE datasets SET rows_blob = ? WHERE hash = ? AND rows_blob IS NULL",
                (link.rows_blob, link.hash),
            )
        conn.execute(
            insert_new("run_datasets", ("run_id", "dataset_hash", "role", "variable")),
            (run_id, link.hash, link.role, link.variable),
        )

    def add_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Merge ``tags`` into a run's tags (a tag given again is replaced)."""
        self.edit_tags(run_id, tags)

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        """Remove the tags ``keys`` from a run (a key it does not have is no error)."""
        self.edit_tags(run_id, remove=keys)

    def edit_tags(
        self,
        run_id: str,
        add: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        *,
        user: str | None = None,
    ) -> dict[str, str]:
        """Set the tags ``add`` and remove the tags ``remove`` of a run in one transaction;
        return its tags after the edit. A key in both is a ``ValueError``. The edit is an
        update of the run's row, so the runs listing's index (its tag filters and sorts)
        follows it in this process and in every other one. Once the run has finished, each
        key changed is added to its tag history (:meth:`tag_history`) with ``user`` (the
        ``user`` setting or the OS user by default) and the time."""
        from . import tag_history

        added = {str(k): str(v) for k, v in (add or {}).items()}
        removed = {str(k) for k in remove}
        both = sorted(removed & added.keys())
        if both:
            raise ValueError(f"tags both set and removed: {', '.join(map(repr, both))}")
        with self.transaction() as conn:
            row = conn.execute("SELECT tags, status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            before = _unjson(row[0]) or {}
            merged = {k: v for k, v in {**before, **added}.items() if k not in removed}
            if merged != before:
                conn.execute(
                    "UPDATE runs SET tags = ? WHERE id = ?", (_json(merged or None), run_id)
                )
                if row[1] != "running":
                    who = user or self._acting_user()
                    tag_history.record(conn, run_id, before, merged, who, time.time())
        return dict(sorted(merged.items()))

    def tag_history(self, run_id: str) -> list[dict[str, Any]]:
        """The edits of a finished run's tags, oldest first: ``{"key", "value", "previous",
        "user", "at"}`` (``value`` ``None``: removed; ``previous`` ``None``: a new tag;
        ``at`` seconds since the epoch). Tags written while the run recorded are not edits."""
        from . import tag_history

        return tag_history.history(self, self.resolve_run_id(run_id))

    def log_metric(self, run_id: str, key: str, value: Any, step: int = 0) -> None:
        """Append one metric value (e.g. a point of a training curve) to a run."""
        stored, flag = encode_metric(value)
        with self.transaction() as conn:
            conn.execute(
                upsert("metrics", _METRIC_COLUMNS, _METRIC_KEY),
                (run_id, key, int(step), stored, flag, time.time()),
            )

    def add_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes,
        *,
        kind: str = "file",
        media_type: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``data`` as a blob and attach it to the run; return the blob digest.

        The model artifact of a registered version is immutable: replacing it raises
        :class:`ImmutableArtifactError` (register a new version instead).
        """
        digest = self.blobs.put_bytes(data)
        self.attach_artifact(
            run_id, name, digest, len(data), kind=kind, media_type=media_type, meta=meta
        )
        return digest

    def attach_artifact(
        self,
        run_id: str,
        name: str,
        digest: str,
        size: int,
        *,
        kind: str = "file",
        media_type: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Attach a stored blob to the run as an artifact (see :meth:`add_artifact`)."""
        if not self.blobs.exists(digest):
            raise StoreError(f"blob {digest} is not in {self.blobs.root}; store it first")
        with self.transaction() as conn:
            registered = conn.execute(
                "SELECT v.model_name, v.version FROM artifacts a JOIN model_versions v ON "
                "v.run_id = a.run_id AND v.blob = a.blob WHERE a.run_id = ? AND a.name = ? "
                "ORDER BY v.model_name, v.version LIMIT 1",
                (run_id, name),
            ).fetchone()
            if registered is not None:
                raise ImmutableArtifactError(
                    f"run {run_id[:8]}'s {name!r} artifact is the model of registered version "
                    f"{registered[0]}:{registered[1]} and cannot be replaced; track a new run "
                    "and register it as a new version"
                )
            conn.execute(
                upsert("artifacts", _ARTIFACT_COLUMNS, ("run_id", "name")),
                (run_id, name, kind, digest, int(size), media_type, _json(meta), time.time()),
            )

    def record_explanation(
        self,
        run_id: str,
        *,
        status: str,
        reason: str | None = None,
        explainer: str | None = None,
        feature_names: list[str] | None = None,
        classes: list[Any] | None = None,
        mean_abs: Any = None,
        base_values: Any = None,
        n_rows: int | None = None,
        matrix: bytes | None = None,
    ) -> None:
        """Store a run's explanation (replacing a pending one); the SHAP matrix goes to a blob."""
        digest = self.blobs.put_bytes(matrix) if matrix is not None else None
        with self.transaction() as conn:
            conn.execute("DELETE FROM explanations WHERE run_id = ?", (run_id,))
            conn.execute(
                "INSERT INTO explanations (run_id, status, reason, explainer, feature_names, "
                "classes, mean_abs, base_values, n_rows, blob, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    status,
                    reason,
                    explainer,
                    _json(feature_names),
                    _json(classes),
                    _json(mean_abs),
                    _json(base_values),
                    n_rows,
                    digest,
                    time.time(),
                ),
            )

    def set_card_section(
        self,
        subject: str,
        section: str,
        content: str,
        author: str,
        sign: Callable[[bytes], str] | None = None,
    ) -> int:
        """Save a new revision of a human-written card section; return its revision number.

        ``author`` is a label; with ``sign`` (see :mod:`mlops_jupyter.registry.registry`) the
        audit entry is a signed statement, and ``author`` should be the signer's principal.
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(revision), 0) FROM card_sections "
                "WHERE subject = ? AND section = ?",
                (subject, section),
            ).fetchone()
            revision = int(row[0]) + 1
            conn.execute(
                "INSERT INTO card_sections (subject, section, content, author, revision, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (subject, section, content, author, revision, time.time()),
            )
            audit_chain.append(
                conn,
                author,
                "card_edit",
                subject,
                {"section": section, "revision": revision, "content": content},
                sign,
            )
        return revision

    def add_monitor_batch(
        self,
        batch: Mapping[str, Any],
        actor: str,
        audit: Mapping[str, Any],
        sign: Callable[[bytes], str] | None = None,
    ) -> None:
        """Store one monitored batch (``MONITOR_BATCH_COLUMNS``; JSON-able values for the
        ``MONITOR_JSON_COLUMNS``) with its ``monitor`` audit entry, in one transaction.

        ``actor`` is the signer's principal with ``sign``, else a label (as for card edits).
        """
        values = [
            _json(batch.get(c)) if c in MONITOR_JSON_COLUMNS else batch.get(c)
            for c in MONITOR_BATCH_COLUMNS
        ]
        subject = f"{batch['model_name']}:{batch['version']}"
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO monitor_batches ({', '.join(MONITOR_BATCH_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(MONITOR_BATCH_COLUMNS))})",
                values,
            )
            audit_chain.append(conn, actor, "monitor", subject, dict(audit), sign)

    def monitor_batches(
        self,
        model: str,
        version: int | None = None,
        limit: int | None = None,
        *,
        batch_id: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rows recorded for a model's batches (one version or all; one batch id or all;
        ``kind`` ``batch`` or ``labels``, or both), newest first."""
        where, args = "model_name = ?", list[Any]([model])
        for column, value in (("version", version), ("batch_id", batch_id), ("kind", kind)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(int(value) if column == "version" else value)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self._read(
            f"SELECT {', '.join(MONITOR_BATCH_COLUMNS)} FROM monitor_batches WHERE {where} "
            f"ORDER BY created_at DESC, id{tail}",
            args,
        )
        return [
            {
                c: _unjson(v) if c in MONITOR_JSON_COLUMNS else v
                for c, v in zip(MONITOR_BATCH_COLUMNS, row, strict=True)
            }
            for row in rows
        ]

    @property
    def store_id(self) -> str:
        """This store's id (an anchor file names the store it anchors by it)."""
        return str(self._read("SELECT value FROM meta WHERE key = 'store_id'")[0][0])

    def audit_entries(self, after: int = 0) -> list[tuple[Any, ...]]:
        """Audit entries with ``seq > after``, oldest first: ``(seq, ts, actor, action,
        subject, payload, prev_hash, hash, signature)``."""
        return self._read(
            "SELECT seq, ts, actor, action, subject, payload, prev_hash, hash, signature "
            "FROM audit_log WHERE seq > ? ORDER BY seq",
            (int(after),),
        )

    def audit_head(self) -> str:
        """The hash of the newest audit entry (anchor it outside the store to detect rewrites)."""
        with self._lock:
            return audit_chain.head(self.conn)

    def card_sections(self, subject: str) -> dict[str, dict[str, Any]]:
        """The latest revision of each human-written section of a card subject."""
        rows = self._read(
            "SELECT section, content, author, revision, created_at FROM card_sections c "
            "WHERE subject = ? AND revision = (SELECT MAX(revision) FROM card_sections "
            "WHERE subject = c.subject AND section = c.section) ORDER BY section",
            (subject,),
        )
        return {
            section: {"content": content, "author": author, "revision": rev, "created_at": ts}
            for section, content, author, rev, ts in rows
        }

    def card_sections_of(self, subject: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The sections the card of ``subject`` shows and the policy gates judge: those written
        on the run behind it, each replaced by a revision written on ``subject`` itself (a
        registered version), if any. Each says which subject it was written on (``on``)."""
        merged = {k: {**v, "on": run_id} for k, v in self.card_sections(run_id).items()}
        if subject != run_id:
            merged.update({k: {**v, "on": subject} for k, v in self.card_sections(subject).items()})
        return dict(sorted(merged.items()))

    def card_section_history(self, subject: str, section: str) -> list[dict[str, Any]]:
        """Every revision of one section, oldest first (who wrote what, when)."""
        rows = self._read(
            "SELECT content, author, revision, created_at FROM card_sections "
            "WHERE subject = ? AND section = ? ORDER BY revision",
            (subject, section),
        )
        return [{"content": c, "author": a, "revision": r, "created_at": t} for c, a, r, t in rows]

    def model_version_run(self, model: str, version: int) -> str:
        """The run a registered model version points at."""
        rows = self._read(
            "SELECT run_id FROM model_versions WHERE model_name = ? AND version = ?",
            (model, int(version)),
        )
        if not rows:
            raise RunNotFoundError(f"{model}:{version}", "no such registered model version")
        return str(rows[0][0])

    def has_dataset(self, digest: str) -> bool:
        """Whether a data snapshot with this hash is already stored (its profile too)."""
        return bool(self._read("SELECT 1 FROM datasets WHERE hash = ?", (digest,)))

    def has_dataset_rows(self, digest: str) -> bool:
        """Whether the data snapshot with this hash is stored with its rows."""
        return bool(
            self._read("SELECT 1 FROM datasets WHERE hash = ? AND rows_blob IS NOT NULL", (digest,))
        )

    def dataset_rows(self, digest: str) -> Any:
        """The stored rows of a data snapshot, decoded (never unpickled) and checked:
        ``hash_data`` of what is returned equals ``digest``, or ``BlobIntegrityError``."""
        from ..capture.hashing import hash_data
        from .rows import decode_rows

        found = self._read("SELECT rows_blob FROM datasets WHERE hash = ?", (digest,))
        if not found or not found[0][0]:
            raise StoreError(
                f"data snapshot {digest} is stored without its rows; record the run again "
                "with this version of mlops-jupyter to keep them"
            )
        blob = str(found[0][0])
        try:
            rows = decode_rows(self.blobs.get_bytes(blob))
        except ValueError as exc:
            raise BlobIntegrityError(f"rows blob {blob} of {digest}: {exc}") from None
        if hash_data(rows) != digest:
            raise BlobIntegrityError(
                f"the rows in blob {blob} do not hash to data snapshot {digest}: "
                "they were changed after they were stored"
            )
        return rows

    def mark_unsaved(self, run_id: str, reason: str) -> None:
        """A run whose results could not be stored (e.g. the disk was full) -> failed."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = 'failed', ended_at = ?, duration_s = ? - started_at, "
                "error = ? WHERE id = ? AND status = 'running'",
                (now, now, f"could not be saved: {reason}", run_id),
            )

    def mark_dead_runs_interrupted(self) -> list[str]:
        """Runs left ``running`` by a process of this host that no longer exists -> interrupted."""
        host = socket.gethostname()
        rows = self._read("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,))
        dead = [run_id for run_id, pid in rows if pid is not None and not _alive(int(pid))]
        if dead:
            now = time.time()
            with self.transaction() as conn:
                conn.executemany(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?, duration_s = ? - "
                    "started_at, error = COALESCE(error, 'the process running it exited') "
                    "WHERE id = ? AND status = 'running'",
                    [(now, now, run_id) for run_id in dead],
                )
        return dead

    # --------------------------------------------------------------------- reads
    def experiments(self) -> pd.DataFrame:
        """Experiments with their run counts, last run time, primary metric (``None`` when
        none is set) and that metric's ``direction`` (``"max"`` or ``"min"``, as set or by
        its name; ``None`` without a primary metric)."""
        import pandas as pd

        from .metric_settings import direction_of

        rows = self._read(
            "SELECT e.name, e.created_at, COUNT(r.id), MAX(r.started_at), (SELECT s.metric "
            "FROM metric_settings s WHERE s.experiment_id = e.id AND s.is_primary = 1), "
            "(SELECT s.direction FROM metric_settings s WHERE s.experiment_id = e.id AND "
            "s.is_primary = 1) FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id "
            "GROUP BY e.id ORDER BY e.name"
        )
        records = [
            (*row[:5], None if row[4] is None else direction_of(row[4], {row[4]: row[5]}))
            for row in rows
        ]
        columns = ["experiment", "created_at", "runs", "last_run_at", "primary_metric", "direction"]
        frame = pd.DataFrame(records, columns=columns)
        for column in ("created_at", "last_run_at"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        frame["runs"] = frame["runs"].astype("int64")
        for column in ("primary_metric", "direction"):
            frame[column] = frame[column].astype("object")
        return frame

    # ------------------------------------------------------------ metric settings
    def metric_directions(self, experiment: str) -> dict[str, Any]:
        """What was set for ``experiment``'s metrics: ``{"primary_metric": KEY or None,
        "directions": {KEY: "min" or "max"}}`` (only the metrics someone set a direction
        for; :func:`~.metric_settings.direction_of` gives any metric's)."""
        from . import metric_settings

        return metric_settings.directions(self, experiment)

    def metric_settings(self, experiment: str) -> list[dict[str, Any]]:
        """Each metric setting of ``experiment`` with who set it and when: ``{"metric",
        "direction" (None: not set), "primary", "updated_by", "updated_at"}``."""
        from . import metric_settings

        return metric_settings.settings(self, experiment)

    def set_metric_direction(
        self,
        experiment: str,
        metric: str,
        direction: str | None,
        primary: bool = False,
        *,
        user: str | None = None,
    ) -> None:
        """Set which way is better for ``metric`` in ``experiment``: ``"max"`` (higher is
        better) or ``"min"`` (lower is better); with ``primary=True`` it also becomes the
        experiment's primary metric, and the previous one stops being it (``direction``
        ``None`` then keeps the metric's direction as it was). ``primary=False`` leaves the
        primary metric as it is (see :meth:`clear_primary_metric`). A new experiment is
        created. ``user`` (who set it; the ``user`` setting or the OS user by default) and
        the time are recorded. A bad direction or an empty name is a ``ValueError``."""
        from . import metric_settings

        metric_settings.set_direction(
            self, experiment, metric, direction, primary, user or self._acting_user()
        )

    def clear_primary_metric(self, experiment: str, *, user: str | None = None) -> None:
        """``experiment`` has no primary metric any more (directions stay as they are)."""
        from . import metric_settings

        metric_settings.clear_primary(self, experiment, user or self._acting_user())

    @staticmethod
    def _acting_user() -> str:
        from ..config import current_user

        return current_user()

    def explanation_statuses(self, run_ids: Sequence[str]) -> dict[str, str | None]:
        """The status of each run's explanation (full ids): ``pending``, ``ok``, ``failed``,
        ``unsupported``, or ``None`` when none is recorded. One query, for polling."""
        ids = list(dict.fromkeys(run_ids))
        found: dict[str, str | None] = dict.fromkeys(ids)
        if ids:
            among, args = self.dialect.among("run_id", ids)
            for run_id, status in self._read(
                f"SELECT run_id, status FROM explanations WHERE {among} ORDER BY id", args
            ):
                found[run_id] = status
        return found

    def runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        """Runs as a DataFrame: ``run_id, experiment, name, status, started_at, duration_s``,
        then ``params.<key>`` and ``metrics.<key>`` columns (latest step of each metric).

        ``order_by`` is a column name (``started_at``, ``duration_s``, ``metrics.accuracy``,
        ``params.max_depth``...), prefixed with ``-`` for descending; default newest first.
        Runs without the sort key come last.
        """
        import pandas as pd

        base, params, metrics = self._select_runs(experiment, status, limit, order_by)
        ids = [row[0] for row in base]
        frame = pd.DataFrame(base, columns=RUN_COLUMNS)
        frame["started_at"] = pd.to_datetime(frame["started_at"], unit="s", utc=True)
        frame["duration_s"] = frame["duration_s"].astype("float64")
        extra: dict[str, Any] = {}
        for key in sorted({k for values in params.values() for k in values}):
            extra[f"params.{key}"] = pd.Series(
                [params.get(i, {}).get(key) for i in ids], dtype="object"
            )
        for key in sorted({k for values in metrics.values() for k in values}):
            extra[f"metrics.{key}"] = pd.Series(
                [metrics.get(i, {}).get(key, float("nan")) for i in ids], dtype="float64"
            )
        if extra:
            frame = pd.concat([frame, pd.DataFrame(extra)], axis=1)
        return frame

    def run_summaries(
        self,
        experiment: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """The same selection as :meth:`runs`, as JSON-ready dicts with ``params`` and
        ``metrics`` sub-dicts holding only what each run logged (NaN as ``"NaN"``)."""
        base, params, metrics = self._select_runs(experiment, status, limit, order_by)
        return [
            {
                "run_id": run_id,
                "experiment": exp,
                "name": name,
                "status": run_status,
                "started_at": utc(started).isoformat(),  # type: ignore[union-attr]
                "duration_s": duration,
                "params": params.get(run_id, {}),
                "metrics": {k: json_number(v) for k, v in metrics.get(run_id, {}).items()},
            }
            for run_id, exp, name, run_status, started, duration in base
        ]

    def _select_runs(
        self,
        experiment: str | None,
        status: str | None,
        limit: int | None,
        order_by: str | None,
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
        where_sql, args = "", list[Any]()
        if status is not None:
            where_sql, args = " AND r.status = ?", [status]
        if experiment is not None:
            where_sql += " AND r.experiment_id = (SELECT id FROM experiments WHERE name = ?)"
            args.append(experiment)
        order_sql, order_args = self._order_clause(order_by)
        self._check_sort_key(order_by)
        sql = (
            "SELECT r.id, e.name, r.name, r.status, r.started_at, r.duration_s FROM runs r JOIN "
            f"experiments e ON e.id = r.experiment_id WHERE TRUE{where_sql} ORDER BY {order_sql}"
        )
        args = args + order_args
        if limit is not None:
            if int(limit) < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            base = self.conn.execute(sql, args).fetchall()
            params, metrics = self._values_for([row[0] for row in base])
        return base, params, metrics

    def _check_sort_key(self, order_by: str | None) -> None:
        """A ``metrics.KEY`` / ``params.KEY`` no run has is a mistake (a typo), not a no-op."""
        key = (order_by or "").lstrip("-")
        for prefix, table, what in (
            ("metrics.", "latest_metrics", "metric"),
            ("params.", "params", "parameter"),
        ):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            if self._read(f"SELECT 1 FROM {table} WHERE key = ? LIMIT 1", (name,)):
                return
            known = [r[0] for r in self._read(f"SELECT DISTINCT key FROM {table} LIMIT 31")]
            listed = ", ".join(prefix + k for k in sorted(known)[:30]) or "none yet"
            raise ValueError(
                f"cannot order runs by {order_by!r}: no run has a {what} {name!r}. Known "
                f"{what}s: {listed}{', ...' if len(known) > 30 else ''}; or one of "
                f"{', '.join(sorted(_RUN_SORT_COLUMNS))} (a leading '-' for descending)"
            )

    def _order_clause(self, order_by: str | None) -> tuple[str, list[Any]]:
        if not order_by:
            return "r.started_at DESC, r.id", []
        descending = order_by.startswith("-")
        key = order_by.lstrip("-")
        direction = "DESC" if descending else "ASC"
        if key in _RUN_SORT_COLUMNS:
            column, args = _RUN_SORT_COLUMNS[key], []
        elif key.startswith("metrics.") and len(key) > 8:
            column = (
                "(SELECT lm.value FROM latest_metrics lm WHERE lm.run_id = r.id AND lm.key = ?)"
            )
            args = [key[8:]]
        elif key.startswith("params.") and len(key) > 7:
            column = "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = ?)"
            args = [key[7:]]
        else:
            known = ", ".join(sorted(_RUN_SORT_COLUMNS))
            raise ValueError(
                f"cannot order runs by {order_by!r}; use one of {known}, "
                "'metrics.<key>' or 'params.<key>', with a leading '-' for descending"
            )
        return f"{column} IS NULL, {column} {direction}, r.started_at DESC, r.id", args + args

    def _values_for(
        self, ids: list[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
        params: dict[str, dict[str, Any]] = {}
        metrics: dict[str, dict[str, float]] = {}
        conn = self.conn
        unjson = _ScalarMemo()
        for start in range(0, len(ids), 500):
            among, args = self.dialect.among("run_id", ids[start : start + 500])
            for table, run_id, key, text, number in conn.execute(
                f"SELECT 0, run_id, key, value, NULL FROM params WHERE {among} UNION ALL "
                f"SELECT 1, run_id, key, NULL, value FROM latest_metrics WHERE {among}",
                args + args,
            ).fetchall():
                if table == 0:
                    params.setdefault(run_id, {})[key] = unjson(text)
                else:  # NULL is NaN; infinities are stored as themselves
                    metrics.setdefault(run_id, {})[key] = math.nan if number is None else number
        return params, metrics

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names (a full id or a unique prefix of 4+ chars)."""
        text = str(run_id).strip().lower()
        if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
            raise RunNotFoundError(run_id, "run ids are hexadecimal; give at least 4 characters")
        rows = self._read(
            "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
            (text, text + "g"),
        )
        if not rows:
            raise RunNotFoundError(run_id)
        if len(rows) > 1 and rows[0][0] != text:
            raise AmbiguousRunError(run_id, [r[0] for r in rows])
        return str(rows[0][0])

    def metric_curve(self, run_id: str, key: str) -> Curve:
        """One metric of a run as numpy arrays (steps, values, times), sorted by step: only
        that metric is read, and no object is made per point. Raises
        :class:`MetricNotFoundError` if the run has no such metric."""
        import numpy as np

        full_id = self.resolve_run_id(run_id)
        with self._lock, self.snapshot():
            conn = self.conn
            series = conn.execute(
                'SELECT "values", timestamp FROM metric_series WHERE run_id = ? AND key = ?',
                (full_id, key),
            ).fetchone()
            rows = conn.execute(
                "SELECT step, value, flag, timestamp FROM metrics WHERE run_id = ? AND key = ?",
                (full_id, key),
            ).fetchall()
            chunks = conn.execute(
                'SELECT steps, "values", times FROM metric_chunks WHERE run_id = ? AND key = ? '
                "ORDER BY seq",
                (full_id, key),
            ).fetchall()
            known = None
            if series is None and not rows and not chunks:
                known = [k for (k,) in conn.execute(
                    "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", (full_id,)
                )]  # fmt: skip
        if known is not None:
            raise MetricNotFoundError(full_id, key, known)
        if series is not None:  # a curve captured from the cell: every step from 0
            values = np.frombuffer(series[0], dtype="<f8").astype(np.float64)
            steps = np.arange(values.size, dtype=np.int64)
            return Curve(key, steps, values, np.full(values.size, float(series[1])))
        points = [(step, decode_metric(value, flag), ts) for step, value, flag, ts in rows]
        return curves.merge(key, points, chunks)

    def run_names(self, run_ids: Sequence[str]) -> dict[str, str | None]:
        """The full ids and names of the runs ``run_ids`` name (full ids or unique prefixes),
        in their order: full ids in one query, prefixes one each. Raises
        :class:`RunNotFoundError` for an unknown one."""
        wanted = [str(i).strip().lower() for i in run_ids]
        full = sorted({i for i in wanted if len(i) == 32})
        names: dict[str, str | None] = {}
        for start in range(0, len(full), 500):
            among, args = self.dialect.among("id", full[start : start + 500])
            names.update(self._read(f"SELECT id, name FROM runs WHERE {among}", args))
        out: dict[str, str | None] = {}
        for text in wanted:
            if text not in names:
                found = self.resolve_run_id(text)
                if found not in names:
                    names.update(self._read("SELECT id, name FROM runs WHERE id = ?", (found,)))
                text = found
            out[text] = names[text]
        return out

    def metric_curves(self, run_ids: Sequence[str], key: str) -> dict[str, Curve]:
        """One metric of several runs (full ids), as :meth:`metric_curve` reads it, in one
        query for all of them; a run without that metric gets an empty curve."""
        import numpy as np

        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return {}
        among, args = self.dialect.among("run_id", ids)
        # chunks first: PostgreSQL types a UNION's columns pair by pair, and a column of
        # NULLs only takes the type of a column beside it that has one
        rows = self._read(
            'SELECT 2, run_id, seq, NULL, NULL, NULL, steps, "values", times FROM metric_chunks '
            f"WHERE {among} AND key = ? UNION ALL "
            "SELECT 1, run_id, step, value, flag, timestamp, NULL, NULL, NULL FROM metrics "
            f"WHERE {among} AND key = ? UNION ALL "
            'SELECT 0, run_id, 0, NULL, NULL, timestamp, "values", NULL, NULL FROM metric_series '
            f"WHERE {among} AND key = ? ORDER BY 1, 3",
            [*args, key, *args, key, *args, key],
        )
        series: dict[str, tuple[bytes, float]] = {}
        points: dict[str, list[tuple[int, float, float]]] = {}
        chunks: dict[str, list[tuple[bytes, bytes, bytes]]] = {}
        for kind, run_id, number, value, flag, ts, first, second, third in rows:
            if kind == 0:
                series[run_id] = (first, ts)
            elif kind == 1:
                points.setdefault(run_id, []).append((number, decode_metric(value, flag), ts))
            else:
                chunks.setdefault(run_id, []).append((first, second, third))
        out: dict[str, Curve] = {}
        for run_id in ids:
            if run_id in series:  # a captured curve: every step from 0
                packed, ts = series[run_id]
                values = np.frombuffer(packed, dtype="<f8").astype(np.float64)
                steps = np.arange(values.size, dtype=np.int64)
                out[run_id] = Curve(key, steps, values, np.full(values.size, float(ts)))
            else:
                out[run_id] = curves.merge(key, points.get(run_id, []), chunks.get(run_id, []))
        return out

    def curve_keys(self, run_ids: Sequence[str]) -> list[str]:
        """The metric keys that have more than one step in any of the runs (full ids),
        sorted: the metrics a chart can draw as curves."""
        import numpy as np

        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        among, args = self.dialect.among("run_id", ids)
        with self._lock, self.snapshot():
            found = {
                key
                for (key,) in self._read(
                    f"SELECT DISTINCT key FROM metric_series WHERE {among} AND n > 1", args
                )
            }
            spans: dict[tuple[str, str], tuple[int, int]] = {
                (run_id, key): (low, high)
                for run_id, key, low, high in self._read(
                    f"SELECT run_id, key, MIN(step), MAX(step) FROM metrics WHERE {among} "
                    "GROUP BY run_id, key",
                    args,
                )
            }
            chunk_rows = self._read(
                f"SELECT run_id, key, steps FROM metric_chunks WHERE {among}", args
            )
        for run_id, key, packed in chunk_rows:  # the steps of logged batches widen the span
            if key in found:
                continue
            steps = np.frombuffer(packed, dtype="<i8")
            if not steps.size:
                continue
            low, high = spans.get((run_id, key), (int(steps[0]), int(steps[0])))
            spans[(run_id, key)] = (min(low, int(steps.min())), max(high, int(steps.max())))
        found.update(key for (_, key), (low, high) in spans.items() if low != high)
        return sorted(found)

    def get_run(self, run_id: str) -> Run:
        """Everything recorded about one run; raises :class:`RunNotFoundError` if unknown."""
        full_id = self.resolve_run_id(run_id)
        with self._lock:
            conn = self.conn
            row = conn.execute(
                "SELECT r.id, e.name, r.name, r.status, r.started_at, r.ended_at, r.duration_s, "
                'r.source, r.execution_count, r.notebook_path, r.kernel_id, r."user", r.host, '
                "r.git_commit, r.git_dirty, r.history_head, r.tags, r.error, r.capture_errors, "
                "r.environment_id FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                "WHERE r.id = ?",
                (full_id,),
            ).fetchone()
            param_rows = conn.execute(
                "SELECT key, value, source, truncated FROM params WHERE run_id = ? ORDER BY key",
                (full_id,),
            ).fetchall()
            metric_rows = conn.execute(
                "SELECT key, step, value, flag, timestamp FROM metrics WHERE run_id = ? "
                "ORDER BY key, step",
                (full_id,),
            ).fetchall()
            series_rows = conn.execute(
                'SELECT key, "values", timestamp FROM metric_series WHERE run_id = ? ORDER BY key',
                (full_id,),
            ).fetchall()
            chunk_rows = conn.execute(
                'SELECT key, steps, "values", times FROM metric_chunks WHERE run_id = ? '
                "ORDER BY key, seq",
                (full_id,),
            ).fetchall()
            data_rows = conn.execute(
                "SELECT d.hash, rd.role, rd.variable, d.kind, d.shape, d.schema, d.profile, "
                "d.source_path, d.source_hash, d.rows_blob FROM run_datasets rd JOIN datasets d "
                "ON d.hash = rd.dataset_hash WHERE rd.run_id = ? ORDER BY rd.role DESC, "
                "rd.variable",
                (full_id,),
            ).fetchall()
            explanation_row = conn.execute(
                "SELECT status, reason, explainer, feature_names, classes, mean_abs, base_values, "
                "n_rows, blob, created_at FROM explanations WHERE run_id = ? "
                "ORDER BY id DESC LIMIT 1",
                (full_id,),
            ).fetchone()
            artifact_rows = conn.execute(
                "SELECT name, kind, blob, size, media_type, meta FROM artifacts WHERE run_id = ? "
                "ORDER BY name",
                (full_id,),
            ).fetchall()
            earlier = cell_history.read(conn, row[15])
            env_row = (
                conn.execute(
                    "SELECT id, python, platform, packages FROM environments WHERE id = ?",
                    (row[19],),
                ).fetchone()
                if row[19]
                else None
            )
        history: dict[str, list[MetricPoint]] = {}
        for key, step, value, flag, ts in metric_rows:
            history.setdefault(key, []).append(MetricPoint(step, decode_metric(value, flag), ts))
        for key, chunks in curves.by_key(chunk_rows).items():  # logged in batches: merged
            rows = [(p.step, p.value, p.timestamp) for p in history.get(key, [])]
            curve = curves.merge(key, rows, chunks)
            history[key] = [
                MetricPoint(step, value, ts)
                for step, value, ts in zip(
                    curve.steps.tolist(), curve.values.tolist(), curve.times.tolist(), strict=True
                )
            ]
        for key, packed, ts in series_rows:  # a captured curve: every step, packed
            values = array("d")
            values.frombytes(packed)
            if sys.byteorder == "big":
                values.byteswap()
            history[key] = [MetricPoint(step, v, ts) for step, v in enumerate(values)]
        return Run(
            run_id=row[0],
            experiment=row[1],
            name=row[2],
            status=row[3],
            started_at=utc(row[4]),  # type: ignore[arg-type]
            ended_at=utc(row[5]),
            duration_s=row[6],
            params={k: _unjson(v) for k, v, _, _ in param_rows},
            param_sources={k: s for k, _, s, _ in param_rows},
            truncated_params=frozenset(k for k, _, _, t in param_rows if t),
            metrics={k: points[-1].value for k, points in history.items()},
            metric_history=history,
            datasets=[
                DatasetLink(
                    h,
                    role,
                    var,
                    kind,
                    _unjson(shape),
                    _unjson(schema),
                    _unjson(prof),
                    spath,
                    shash,
                    rows,
                )
                for h, role, var, kind, shape, schema, prof, spath, shash, rows in data_rows
            ],
            explanation=(
                Explanation(
                    explanation_row[0],
                    explanation_row[1],
                    explanation_row[2],
                    _unjson(explanation_row[3]),
                    _unjson(explanation_row[4]),
                    _unjson(explanation_row[5]),
                    _unjson(explanation_row[6]),
                    explanation_row[7],
                    explanation_row[8],
                    explanation_row[9],
                )
                if explanation_row
                else None
            ),
            artifacts=[
                Artifact(n, k, b, s, mt, _unjson(meta)) for n, k, b, s, mt, meta in artifact_rows
            ],
            environment=(
                Environment(env_row[0], env_row[1], env_row[2], _unjson(env_row[3]))
                if env_row
                else None
            ),
            code=row[7],
            execution_count=row[8],
            notebook_path=row[9],
            kernel_id=row[10],
            user=row[11],
            host=row[12],
            git_commit=row[13],
            git_dirty=None if row[14] is None else bool(row[14]),
            history=earlier,
            tags=_unjson(row[16]) or {},
            error=row[17],
            capture_errors=_unjson(row[18]) or [],
        )

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (diagnostics, tests)."""
        tables = ("experiments", "runs", "params", "metrics", "datasets", "run_datasets")
        return {t: int(self._read(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


__all__ = ["Store", "LATEST_VERSION", "new_run_id"]
