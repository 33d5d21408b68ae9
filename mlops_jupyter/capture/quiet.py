"""Warnings raised in our background threads are kept for the run, never printed.

A warning goes to ``sys.stderr``, which in a kernel is the output of whichever cell runs at that
moment: a warning from importing shap in the SHAP worker would land in the user's *next* cell.
``warnings.showwarning`` is process-wide, so it is wrapped once and decides per thread: in a
thread inside :func:`kept_warnings` the warning is kept; anywhere else it is shown exactly as
before (the user's own warnings are untouched, and filters are never changed).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_state = threading.local()
_lock = threading.Lock()
_previous: Callable[..., Any] | None = None


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    kept: list[str] | None = getattr(_state, "kept", None)
    if kept is not None:
        kept.append(f"{category.__name__}: {message}")
        return
    show = _previous or warnings._showwarning_orig  # type: ignore[attr-defined]
    show(message, category, filename, lineno, file, line)


def _install() -> None:
    global _previous
    with _lock:
        if warnings.showwarning is not _show:
            _previous = warnings.showwarning
            warnings.showwarning = _show


@contextmanager
def kept_warnings() -> Iterator[list[str]]:
    """Within the block, warnings this thread raises are appended to the yielded list."""
    _install()
    kept: list[str] = []
    _state.kept = kept
    try:
        yield kept
    finally:
        _state.kept = None
