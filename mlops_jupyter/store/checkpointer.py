"""Checkpointing an SQLite store's write-ahead log on a background thread.

A commit in WAL mode appends pages to ``store.db-wal``; a checkpoint copies them into
``store.db`` and fsyncs it. SQLite's default runs that checkpoint inside the commit that takes
the log past 1,000 pages, and at a million runs it costs more than the write: each run dirties
about 30 pages spread over the file (the runs, params and metric indexes are keyed by random run
ids and by values), so the commit that checkpoints writes thousands of scattered pages and waits
for the disk. Here a thread with its own connection checkpoints shortly after commits instead,
and the writer's connection checkpoints only as a backstop, when a long burst of writes takes
the log past :data:`BACKSTOP_PAGES` faster than this thread can copy it.

The checkpoint is SQLite's ``PASSIVE`` one: it never blocks a writer or a reader, and stops at
the oldest snapshot still being read. A failure is kept in :attr:`Checkpointer.error` (the
backstop still bounds the log); nothing is printed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

# the writer checkpoints itself past 32,768 pages (128 MiB of log at 4 KiB pages); and after a
# checkpoint lets the log start over, SQLite truncates a larger file back to 16 MiB
BACKSTOP_PAGES = 32768
LOG_SIZE_LIMIT = 16 * 1024 * 1024


class Checkpointer:
    """A daemon thread that checkpoints ``db_path``'s log after :meth:`nudge`, at most once per
    ``interval`` seconds (commits in between are copied together)."""

    def __init__(self, db_path: Path, interval: float = 0.05) -> None:
        self.db_path = db_path
        self.interval = interval
        self.error: str | None = None  # the last failure, if the last checkpoint failed
        self.last: tuple[int, int, int] | None = None  # (busy, log pages, checkpointed pages)
        self.seconds = 0.0  # spent checkpointing, in total (what the commits no longer wait for)
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # nudges not yet covered by a finished checkpoint
        self._closing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        """A commit happened: checkpoint soon (starts the thread on first use). Never raises:
        the commit it follows has already happened."""
        with self._idle:
            if self._closing:
                return
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._pending = 0
                self._wake.clear()
                thread = threading.Thread(
                    target=self._run, name="mlops-jupyter checkpoint", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread to be had: the commit stands anyway
                    self.error = (
                        f"no checkpoint thread ({exc}); the writer checkpoints past "
                        f"{BACKSTOP_PAGES} pages"
                    )
                    return
                self._thread = thread
            self._pending += 1
        self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every nudge so far is covered by a finished checkpoint attempt; False on
        timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0 or not self.running, timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        with self._idle:
            self._closing = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._idle:
                if self._closing:
                    break
                covered = self._pending
            try:
                if conn is None:
                    conn = sqlite3.connect(self.db_path, isolation_level=None)
                    conn.execute("PRAGMA synchronous = NORMAL")
                started = time.perf_counter()
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.seconds += time.perf_counter() - started
                self.last = (int(row[0]), int(row[1]), int(row[2]))
                self.error = None
            except sqlite3.Error as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            with self._idle:
                self._pending -= covered
                self._idle.notify_all()
                if self._closing:
                    break
            self._stop.wait(self.interval)  # let the next commits gather into one checkpoint
        if conn is not None:
            conn.close()
        with self._idle:
            self._pending = 0
            self._idle.notify_all()
