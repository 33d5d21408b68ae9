"""Where the store lives: the discovery rule of DESIGN.md.

Explicit path (argument, ``MLOPS_JUPYTER_STORE``, config) wins; otherwise the nearest ``.mlops/``
walking up from the start directory; otherwise a new ``.mlops/`` at the git root when inside a git
work tree; otherwise ``.mlops/`` in the start directory. With ``root`` given (the server's root
directory) the rule is the same -- so the server names the store the kernel will really use --
and a result outside the root is refused rather than replaced by another store.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StorePermissionError

STORE_DIRNAME = ".mlops"
DB_FILENAME = "store.db"
ENV_STORE = "MLOPS_JUPYTER_STORE"


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def find_store_dir(
    start: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    explicit: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the ``.mlops`` directory to use for work started in ``start`` (default: cwd).

    ``explicit`` (or the ``MLOPS_JUPYTER_STORE`` environment variable) may name either a store
    directory or a ``store.db`` file inside one. Nothing is created here.
    """
    root_path = Path(root).resolve() if root is not None else None
    chosen = explicit if explicit is not None else os.environ.get(ENV_STORE) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if path.suffix == ".db" or path.name == DB_FILENAME:
            path = path.parent
        path = path.resolve()
        if root_path is not None and not _within(path, root_path):
            raise StorePermissionError(
                f"store {path} is outside the server root {root_path}; "
                "choose a store inside the root directory"
            )
        return path

    here = Path(start).expanduser().resolve() if start is not None else Path.cwd().resolve()
    if here.is_file():
        here = here.parent
    if root_path is not None and not _within(here, root_path):
        raise StorePermissionError(f"{here} is outside the server root {root_path}")

    found = _discover(here).resolve()  # a symlinked .mlops is where it points
    if root_path is not None and not _within(found, root_path):
        raise StorePermissionError(
            f"the store for {here} is {found}, outside the server root {root_path}; start the "
            "server higher up, or set MLOPS_JUPYTER_STORE to a store inside the root"
        )
    return found


def _discover(here: Path) -> Path:
    git_root: Path | None = None
    for directory in (here, *here.parents):
        candidate = directory / STORE_DIRNAME
        if (candidate / DB_FILENAME).is_file() or candidate.is_dir():
            return candidate
        if git_root is None and (directory / ".git").exists():
            git_root = directory
    if git_root is not None:
        return git_root / STORE_DIRNAME
    return here / STORE_DIRNAME
