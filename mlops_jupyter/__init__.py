"""mlops-jupyter: track, compare, explain and govern ML runs from Jupyter notebooks.

The public API is imported lazily so that ``%load_ext mlops_jupyter`` and the server extension
stay fast: nothing heavy (pandas, sqlite-utils, shap, scikit-learn) is imported until used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import (
        approve,
        as_user,
        current,
        enroll,
        explain,
        history,
        last_run_id,
        load_model,
        log_data,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        model_card,
        models,
        monitor,
        register,
        reject,
        request_promotion,
        set_card_sections,
        sign_with,
        start_run,
        techdoc,
        use_key,
        wait,
    )
    from .capture.hashing import hash_data
    from .errors import (
        BlobIntegrityError,
        CorruptStoreError,
        IdentityError,
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
    "start_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "log_data",
    "log_model",
    "explain",
    "wait",
    "model_card",
    "techdoc",
    "last_run_id",
    "set_card_sections",
    "register",
    "request_promotion",
    "approve",
    "reject",
    "current",
    "history",
    "models",
    "load_model",
    "monitor",
    "as_user",
    "sign_with",
    "use_key",
    "enroll",
    "IdentityError",
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
    "start_run": ".api",
    "log_param": ".api",
    "log_params": ".api",
    "log_metric": ".api",
    "log_metrics": ".api",
    "log_data": ".api",
    "log_model": ".api",
    "explain": ".api",
    "wait": ".api",
    "model_card": ".api",
    "techdoc": ".api",
    "last_run_id": ".api",
    "set_card_sections": ".api",
    "register": ".api",
    "request_promotion": ".api",
    "approve": ".api",
    "reject": ".api",
    "current": ".api",
    "history": ".api",
    "models": ".api",
    "load_model": ".api",
    "monitor": ".api",
    "as_user": ".api",
    "sign_with": ".api",
    "use_key": ".api",
    "enroll": ".api",
    "IdentityError": ".errors",
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


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mlops_jupyter``: register ``%%track`` and ``%runs``."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "mlops-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_jupyter.server"}]
