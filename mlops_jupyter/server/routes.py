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
from ..store.discovery import DB_FILENAME
from .base import (
    ALLOWED_SIGNERS_SETTING,
    ROOT_SETTING,
    SIGNING_KEY_SETTING,
    STORE_PATH_SETTING,
    BaseHandler,
)
from .data import data_routes
from .experiment_settings import settings_routes

API_PREFIX = "mlops-jupyter/api"


class VersionHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"version": __version__})


class StoreHandler(BaseHandler):
    """The store a notebook in ``path`` records to, by the same rule as the kernel's."""

    @tornado.web.authenticated
    def get(self) -> None:
        location, _ = self.store_location()
        root = self.root_dir
        if isinstance(location, str):  # a team store on PostgreSQL
            from ..store.postgres import describe

            self.finish(
                {
                    "engine": "postgresql",
                    "team_store": describe(location),  # never the password
                    "store_dir": None,
                    "db_path": None,
                    "exists": True,
                    "root_dir": str(root),
                    "relative_store_dir": None,
                }
            )
            return
        db_path = location / DB_FILENAME
        inside = location.is_relative_to(root)
        self.finish(
            {
                "engine": "sqlite",
                "team_store": None,
                "store_dir": str(location),
                "db_path": str(db_path),
                "exists": db_path.is_file(),
                "root_dir": str(root),
                "relative_store_dir": location.relative_to(root).as_posix() if inside else None,
            }
        )


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
            *data_routes(base),
            *settings_routes(base),
        ],
    )
