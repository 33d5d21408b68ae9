"""REST handlers under ``<base_url>/mlops-jupyter/api/``.

Every handler requires an authenticated user, and every error has one JSON shape:
``{"error": {"status": <int>, "message": <str>}}``.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.utils import url_path_join

from .._version import __version__
from ..config import settings
from .base import (
    ALLOWED_SIGNERS_SETTING,
    ROOT_SETTING,
    SIGNING_KEY_SETTING,
    STORE_PATH_SETTING,
    BaseHandler,
)
from .data import data_routes
from .experiment_settings import settings_routes
from .panel_view import PanelViewHandler, store_info

API_PREFIX = "mlops-jupyter/api"


class VersionHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"version": __version__})


class StoreHandler(BaseHandler):
    """The store a notebook in ``path`` records to, by the same rule as the kernel's."""

    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(store_info(self))


def setup_handlers(web_app: Any, server_app: Any) -> None:
    """Add the routes to a jupyter_server web application, rooted at the contents root."""
    web_app.settings[ROOT_SETTING] = server_app.root_dir
    configured = settings(server_app.config)
    web_app.settings[STORE_PATH_SETTING] = configured.store_path
    web_app.settings[SIGNING_KEY_SETTING] = configured.signing_key
    web_app.settings[ALLOWED_SIGNERS_SETTING] = configured.allowed_signers
    base = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, API_PREFIX, "version"), VersionHandler),
            (url_path_join(base, API_PREFIX, "store"), StoreHandler),
            (url_path_join(base, API_PREFIX, "panel"), PanelViewHandler),
            *data_routes(base),
            *settings_routes(base),
        ],
    )
