"""The environment a run ran in: Python, platform, installed packages, git state.

Package versions are read once per process (they do not change under a running kernel unless
someone pip-installs; ``refresh()`` forgets them). Git state is cached per directory and
re-read when the repository's HEAD or index changes, or after ``GIT_TTL_S`` seconds, so a cell
never waits for ``git status`` twice in a row.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIT_TTL_S = 10.0

_lock = threading.Lock()
_environment: dict[str, Any] | None = None
_git_cache: dict[str, tuple[float, tuple[float, ...], GitState]] = {}


@dataclass(frozen=True)
class GitState:
    root: str | None
    commit: str | None
    dirty: bool | None


def environment() -> dict[str, Any]:
    """``{"python", "platform", "packages": {name: version}}``, computed once per process."""
    global _environment
    with _lock:
        if _environment is None:
            _environment = {
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "packages": dict(sorted(installed_packages().items())),
            }
        return _environment


def installed_packages() -> dict[str, str]:
    """``{name: version}`` of the distributions on ``sys.path`` (names lower-case, ``_`` as
    ``-``; the first found wins, as for imports). Read from the names of the ``.dist-info``
    directories, which carry both (a few milliseconds, where parsing every METADATA file
    takes a hundred); only an entry whose name does not say its version is parsed."""
    from importlib import metadata

    packages: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or not dot:
                continue
            project, dash, version = stem.partition("-")
            if suffix == "egg-info" or not dash:  # name[-version[-pyX.Y]]: read its metadata
                try:
                    found = metadata.Distribution.at(os.path.join(entry or ".", name))
                    project, version = found.metadata["Name"] or "", found.version
                except Exception:  # noqa: BLE001 - an unreadable entry is not a package
                    continue
            key = project.lower().replace("_", "-")
            if key and version:
                packages.setdefault(key, version)
    return packages


def refresh() -> None:
    """Forget cached package versions and git states (after a ``pip install``, say)."""
    global _environment
    with _lock:
        _environment = None
        _git_cache.clear()


def _git_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def _stamp(root: Path) -> tuple[float, ...]:
    stamps = []
    for name in ("HEAD", "index"):
        try:
            stamps.append((root / ".git" / name).stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(directory: str | os.PathLike[str] | None = None) -> GitState:
    """Commit and dirty flag of the repository containing ``directory`` (cached, see above)."""
    start = Path(directory or os.getcwd()).resolve()
    root = _git_root(start)
    if root is None:
        return GitState(None, None, None)
    key = str(root)
    stamp = _stamp(root)
    now = time.monotonic()
    with _lock:
        cached = _git_cache.get(key)
        if cached is not None and cached[1] == stamp and now - cached[0] < GIT_TTL_S:
            return cached[2]
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    state = GitState(key, commit, None if status is None else bool(status))
    with _lock:
        _git_cache[key] = (now, stamp, state)
    return state
