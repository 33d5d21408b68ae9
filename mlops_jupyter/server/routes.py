"""REST handlers under ``<base_url>/mlops-jupyter/api/``.

Every handler requires an authenticated user, and every error has one JSON shape:
``{"error": {"status": <int>, "message": <str>}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.httputil import responses

from .._version import __version__
from ..config import settings
from ..errors import StorePermissionError
from ..store.discovery import DB_FILENAME, find_store_dir

API_PREFIX = "mlops-jupyter/api"
ROOT_SETTING = "mlops_jupyter_root_dir"
STORE_PATH_SETTING = "mlops_jupyter_store_path"


class BaseHandler(APIHandler):
    """The shared error shape and confinement to the server's root directory."""

    @property
    def root_dir(self) -> Path:
        return Path(self.settings[ROOT_SETTING]).resolve()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = responses.get(status_code, "Unknown HTTP Error")
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], tornado.web.HTTPError):
            error = exc_info[1]
            if error.log_message:
                message = error.log_message % error.args if error.args else error.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"status": status_code, "message": message}}))

    def directory_argument(self) -> Path:
        """The ``path`` query argument as an existing directory inside the root (else 403/404).

        Symlinks are resolved first, so a link pointing out of the root is refused too.
        """
        raw = self.get_argument("path", "")
        root = self.root_dir
        if "\x00" in raw or raw.startswith(("/", "\\")) or Path(raw).is_absolute():
            raise tornado.web.HTTPError(403, "path must be relative to the server root")
        directory = (root / raw).resolve()
        if not directory.is_relative_to(root):
            raise tornado.web.HTTPError(403, "path is outside the server root")
        if not directory.is_dir():
            raise tornado.web.HTTPError(404, "no such directory: %s", raw)
        return directory


class VersionHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"version": __version__})


class StoreHandler(BaseHandler):
    """The store a notebook in ``path`` records to, by the same rule as the kernel's."""

    @tornado.web.authenticated
    def get(self) -> None:
        start = self.directory_argument()
        root = self.root_dir
        try:
            store_dir = find_store_dir(start, root=root, explicit=self.settings[STORE_PATH_SETTING])
        except StorePermissionError as exc:
            raise tornado.web.HTTPError(403, "%s", str(exc)) from None
        db_path = store_dir / DB_FILENAME
        inside = store_dir.is_relative_to(root)
        self.finish(
            {
                "store_dir": str(store_dir),
                "db_path": str(db_path),
                "exists": db_path.is_file(),
                "root_dir": str(root),
                "relative_store_dir": store_dir.relative_to(root).as_posix() if inside else None,
            }
        )


def setup_handlers(web_app: Any, server_app: Any) -> None:
    """Add the routes to a jupyter_server web application, rooted at the contents root."""
    web_app.settings[ROOT_SETTING] = server_app.root_dir
    web_app.settings[STORE_PATH_SETTING] = settings(server_app.config).store_path
    base = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, API_PREFIX, "version"), VersionHandler),
            (url_path_join(base, API_PREFIX, "store"), StoreHandler),
        ],
    )
