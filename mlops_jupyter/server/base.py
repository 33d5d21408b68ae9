"""The base handler: one JSON error shape, confinement to the server root, store resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.httputil import responses

from ..errors import StorePermissionError
from ..store.discovery import find_store_dir

ROOT_SETTING = "mlops_jupyter_root_dir"
STORE_PATH_SETTING = "mlops_jupyter_store_path"
SIGNING_KEY_SETTING = "mlops_jupyter_signing_key"
ALLOWED_SIGNERS_SETTING = "mlops_jupyter_allowed_signers"


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

    def store_dir(self) -> Path:
        """The store for the ``path`` argument's directory (403 outside the root)."""
        start = self.directory_argument()
        try:
            return find_store_dir(
                start, root=self.root_dir, explicit=self.settings[STORE_PATH_SETTING]
            )
        except StorePermissionError as exc:
            raise tornado.web.HTTPError(403, "%s", str(exc)) from None
