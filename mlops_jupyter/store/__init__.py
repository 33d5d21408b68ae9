"""The embedded store: SQLite (WAL) plus content-addressed blobs, in a ``.mlops/`` directory.

Plain Python: nothing here imports IPython, ipywidgets, jupyter_server or tornado.
"""

from typing import TYPE_CHECKING, Any

from .discovery import DB_FILENAME, STORE_DIRNAME, find_store_dir
from .records import Artifact, DatasetLink, Environment, Explanation, MetricPoint, Run
from .schema import LATEST_VERSION

if TYPE_CHECKING:
    from .store import Store


def __getattr__(name: str) -> Any:
    """``Store`` is imported on first use (its imports cost a kernel's first cell ~50 ms)."""
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Store",
    "Run",
    "MetricPoint",
    "DatasetLink",
    "Explanation",
    "Artifact",
    "Environment",
    "find_store_dir",
    "STORE_DIRNAME",
    "DB_FILENAME",
    "LATEST_VERSION",
]
