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


URL_PREFIXES = ("postgresql://", "postgres://")


def is_url(value: object) -> bool:
    """Whether a store location is a database URL (a team store), never a folder name."""
    return isinstance(value, str) and value.strip().lower().startswith(URL_PREFIXES)


def find_store(
    start: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    explicit: str | os.PathLike[str] | None = None,
) -> Path | str:
    """The store for work started in ``start``: a ``postgresql://`` URL (from ``explicit``,
    ``MLOPS_JUPYTER_STORE``, or the ``store`` of ``[tool.mlops-jupyter]`` in the nearest
    ``pyproject.toml``), else the ``.mlops`` directory :func:`find_store_dir` finds."""
    chosen = explicit if explicit is not None else os.environ.get(ENV_STORE) or None
    if chosen is None:
        chosen = project_store(start)
    if is_url(chosen):
        return str(chosen).strip()
    return find_store_dir(start, root=root, explicit=chosen)


def project_store(start: str | os.PathLike[str] | None = None) -> str | None:
    """The team store a repository names: ``store = "postgresql://..."`` under
    ``[tool.mlops-jupyter]`` in the nearest ``pyproject.toml`` (credentials stay out of it:
    ``~/.pgpass`` or ``PGPASSWORD``)."""
    here = Path(start).expanduser().resolve() if start is not None else Path.cwd().resolve()
    for directory in (here, *here.parents):
        pyproject = directory / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            section = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = section.get("tool", {}).get("mlops-jupyter", {}).get("store")
        return str(value) if value else None
    return None


def find_store_dir(
    start: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    explicit: str | os.PathLike[str] | None = None,
    use_env: bool = True,
) -> Path:
    """Return the ``.mlops`` directory to use for work started in ``start`` (default: cwd).

    ``explicit`` (or the ``MLOPS_JUPYTER_STORE`` environment variable, unless ``use_env`` is
    false) may name either a store directory or a ``store.db`` file inside one. Nothing is
    created here. A database URL is refused: it is not a folder (see :func:`find_store`).
    """
    root_path = Path(root).resolve() if root is not None else None
    chosen = explicit if explicit is not None else (os.environ.get(ENV_STORE) if use_env else None)
    chosen = chosen or None
    if is_url(chosen):
        if explicit is None:  # a team store in the environment: the project's own folder
            return find_store_dir(start, root=root, use_env=False)
        raise StorePermissionError(
            f"{explicit!r} is a database URL, not a store directory; open it with Store.open"
        )
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
