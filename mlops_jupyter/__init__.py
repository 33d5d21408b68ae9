"""mlops-jupyter: track, compare, explain and govern ML runs from Jupyter notebooks.

The public API is imported lazily so that ``%load_ext mlops_jupyter`` and the server extension
stay fast: nothing heavy (pandas, sqlite-utils, shap, scikit-learn) is imported until used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .capture.hashing import hash_data
    from .errors import (
        BlobIntegrityError,
        CorruptStoreError,
        MLOpsError,
        RunNotFoundError,
        StoreError,
        StoreVersionError,
    )
    from .store import Run, Store

__all__ = [
    "__version__",
    "hash_data",
    "Store",
    "Run",
    "MLOpsError",
    "StoreError",
    "CorruptStoreError",
    "StoreVersionError",
    "BlobIntegrityError",
    "RunNotFoundError",
]

_LAZY = {
    "hash_data": ".capture.hashing",
    "Store": ".store",
    "Run": ".store",
    "MLOpsError": ".errors",
    "StoreError": ".errors",
    "CorruptStoreError": ".errors",
    "StoreVersionError": ".errors",
    "BlobIntegrityError": ".errors",
    "RunNotFoundError": ".errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_jupyter' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "mlops-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_jupyter.server"}]
