"""Jupyter server extension: the REST API the side panel talks to (``/mlops-jupyter/api/``).

Auto-enabled by ``jupyter-config/server-config/mlops_jupyter.json`` on install. Tornado and
jupyter_server are imported only when the server loads the extension.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_jupyter.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the handlers on the running server."""
    from .._version import __version__
    from .routes import setup_handlers

    setup_handlers(server_app.web_app, server_app)
    server_app.log.info(
        "mlops-jupyter %s: REST API at %smlops-jupyter/api/", __version__, server_app.base_url
    )
