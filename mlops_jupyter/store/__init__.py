"""The embedded store: SQLite (WAL) plus content-addressed blobs, in a ``.mlops/`` directory.

Plain Python: nothing here imports IPython, ipywidgets, jupyter_server or tornado.
"""

from .discovery import DB_FILENAME, STORE_DIRNAME, find_store_dir
from .records import Artifact, DatasetLink, Environment, Explanation, MetricPoint, Run
from .schema import LATEST_VERSION
from .store import Store

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
