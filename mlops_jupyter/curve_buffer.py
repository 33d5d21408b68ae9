"""Points a run logs, written to the store in batches while the run goes on.

``log_metric`` only appends to in-memory arrays; a background thread writes what was logged
once its oldest point is ``FLUSH_SECONDS`` old or ``FLUSH_POINTS`` points are waiting, each
batch as one packed row per metric (:mod:`mlops_jupyter.store.curves`). So a training loop is
not slowed by the store, and a kernel killed at epoch 90 of 100 keeps the curve up to about a
second before it died. A batch the store refuses (a full disk, a lost server) stays in memory
and goes with the run's final write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from .store.curves import Points
from .store.records import metric_number

FLUSH_SECONDS = 1.0
FLUSH_POINTS = 10_000

Writer = Callable[[Mapping[str, Points]], None]


class CurveBuffer:
    """Logged points of one run, waiting to be written by ``write`` (called in a thread;
    without one, everything waits for :meth:`close`)."""

    def __init__(
        self,
        write: Writer | None = None,
        *,
        seconds: float = FLUSH_SECONDS,
        points: int = FLUSH_POINTS,
    ) -> None:
        self._write = write
        self._seconds = seconds
        self._max_points = points
        self._lock = threading.Lock()
        self._pending: dict[str, Points] = {}
        self._count = 0
        self._oldest = 0.0  # time.monotonic() of the oldest pending point
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None  # why the latest background write failed

    def add(self, key: str, step: int, value: object) -> None:
        """Buffer one point; ``TypeError`` if ``value`` is not a number."""
        number = metric_number(value)
        when = time.time()
        with self._lock:
            batch = self._pending.get(key)
            if batch is None:
                batch = self._pending[key] = Points()
            batch.add(step, number, when)
            self._count += 1
            if self._count == 1:
                self._oldest = time.monotonic()
                if self._thread is None and not self._closed and self._write is not None:
                    self._start()
            if self._count >= self._max_points:
                self._wake.set()

    def close(self) -> dict[str, Points]:
        """Stop the thread (after its current write) and return what is still unwritten."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        with self._lock:
            rest, self._pending, self._count = self._pending, {}, 0
        return rest

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlops-jupyter-curves", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake-up from now on is not lost
            with self._lock:
                closed = self._closed
                due = self._count >= self._max_points or (
                    self._count and time.monotonic() - self._oldest >= self._seconds
                )
                wait = self._seconds - (time.monotonic() - self._oldest) if self._count else None
            if closed:
                return
            if due:
                self._flush()
                continue
            self._wake.wait(wait)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending, self._count = self._pending, {}, 0
        try:
            assert self._write is not None  # the thread runs only with a writer
            self._write(batch)
        except Exception as exc:  # kept for the run's final write; never raised into a cell
            self.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                for key, later in self._pending.items():
                    batch.setdefault(key, Points()).extend(later)
                self._pending = batch
                self._count = sum(len(p) for p in batch.values())
                self._oldest = time.monotonic()  # try again a period later
        else:
            self.last_error = None
