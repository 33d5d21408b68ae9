"""SHAP runs in a process of its own, at a lower priority, beside the kernel.

In the kernel's own thread it competed with the user's next cell for the GIL (unpickling a
500-tree forest and building its explainer are Python work) and kept shap and its
dependencies in the kernel's memory. Here one worker process, started on first use and
reused, takes jobs over a pipe: the pickled model (our own bytes, pickled a moment ago by
this kernel), the rows to explain and the background rows; it answers with an
:class:`ExplanationResult` and the warnings it kept, or says it cannot unpickle the model (a
class defined in the notebook exists only in the kernel, which then explains it itself). It
is started with ``python -m`` (so nothing of the user's script is imported again), with
``nice`` 10, its output and errors discarded (nothing of ours prints), and ends when the
kernel does (its pipe closes).
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from .explain import ExplanationResult

NICENESS = 10
_HEADER = struct.Struct("<Q")


def _send(pipe: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_HEADER.pack(len(data)) + data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> Any:
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the explainer process exited")
    (size,) = _HEADER.unpack(header)
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError("the explainer process exited mid-answer")
    return pickle.loads(data)  # our own worker's answer


class ExplainerProcess:
    """The worker, seen from the kernel: ``explain(...)`` blocks the calling thread (not the
    GIL) until the answer comes; a worker that died is started again for the next job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def explain(
        self,
        model_bytes: bytes,
        X: Any,
        background: Any,
        max_rows: int,
        feature_names: list[str] | None,
    ) -> tuple[ExplanationResult | None, list[str]]:
        """The explanation and the warnings kept, or ``None`` when the model cannot be
        unpickled outside the kernel (its class was defined in the notebook)."""
        with self._lock:
            process = self._started()
            try:
                assert process.stdin is not None and process.stdout is not None
                _send(process.stdin, (model_bytes, X, background, max_rows, feature_names))
                result, kept = _receive(process.stdout)
            except (EOFError, OSError, pickle.PickleError) as exc:
                self._stop()
                code = process.poll()
                ended = f" (exit code {code})" if code is not None else ""
                return ExplanationResult("failed", f"{exc}{ended}"), []
            return result, kept

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for pipe in (process.stdin, process.stdout):
            try:
                if pipe is not None:
                    pipe.close()  # the worker reads the end of its jobs and exits
            except OSError:
                pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        with self._lock:
            self._stop()


def _serve() -> None:
    """The worker's loop: a job in, an answer out, until the kernel closes the pipe."""
    from .explain import explain
    from .quiet import kept_warnings

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes where errors go (nowhere), not to us
    jobs = sys.stdin.buffer
    try:
        os.nice(NICENESS)
    except (AttributeError, OSError):  # no nice (Windows): the job still runs
        pass
    while True:
        try:
            model_bytes, X, background, max_rows, names = _receive(jobs)
        except EOFError:
            return
        try:
            model = pickle.loads(model_bytes)  # our kernel's own pickle of its model
        except Exception:  # noqa: BLE001 - e.g. a class defined in the notebook: not here
            _send(answers, (None, []))
            continue
        with kept_warnings() as kept:
            try:
                result = explain(model, X, background, max_rows=max_rows, feature_names=names)
            except Exception as exc:  # noqa: BLE001 - any failure is the job's answer
                result = ExplanationResult("failed", f"{type(exc).__name__}: {exc}")
        _send(answers, (result, list(kept)))


if __name__ == "__main__":
    _serve()
