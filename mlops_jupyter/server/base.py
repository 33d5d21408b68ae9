"""The base handler: one JSON error shape, confinement to the server root, store resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.httputil import responses

from ..errors import StorePermissionError
from ..store.discovery import find_store

ROOT_SETTING = "mlops_jupyter_root_dir"
STORE_PATH_SETTING = "mlops_jupyter_store_path"
SIGNING_KEY_SETTING = "mlops_jupyter_signing_key"
ALLOWED_SIGNERS_SETTING = "mlops_jupyter_allowed_signers"
MAX_PATH_CHARS = 1024  # a directory below the root; longer is never a real notebook folder
INT64_MAX = 2**63 - 1  # the largest integer the store can hold


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
        if len(raw) > MAX_PATH_CHARS:
            raise tornado.web.HTTPError(
                400, "path is %d characters long; at most %d are accepted", len(raw), MAX_PATH_CHARS
            )
        if "\x00" in raw or raw.startswith(("/", "\\")) or Path(raw).is_absolute():
            raise tornado.web.HTTPError(403, "path must be relative to the server root")
        try:
            directory = (root / raw).resolve()
            if not directory.is_relative_to(root):
                raise tornado.web.HTTPError(403, "path is outside the server root")
            is_dir = directory.is_dir()
        except OSError as exc:  # a component too long, a symlink loop...
            raise tornado.web.HTTPError(400, "bad path: %s", exc.strerror or str(exc)) from None
        if not is_dir:
            raise tornado.web.HTTPError(404, "no such directory: %s", raw)
        return directory

    def int_argument(self, name: str, default: int, minimum: int = 0) -> int:
        """An integer query argument in ``[minimum, 2**63 - 1]``, else 400."""
        raw = self.get_argument(name, str(default))
        return bounded_int(name, raw, minimum)

    def store_location(self) -> tuple[Path | str, Path]:
        """The store for the ``path`` argument's directory -- a ``.mlops`` directory inside
        the root (403 outside it), or the team store's ``postgresql://`` URL that the
        settings, the environment or the project's ``pyproject.toml`` name -- and that
        directory."""
        start = self.directory_argument()
        try:
            found = find_store(
                start, root=self.root_dir, explicit=self.settings[STORE_PATH_SETTING]
            )
        except StorePermissionError as exc:
            raise tornado.web.HTTPError(403, "%s", str(exc)) from None
        return found, start


def bounded_int(name: str, raw: str, minimum: int = 0) -> int:
    """``raw`` as an integer the store can hold (400 otherwise, naming ``name``)."""
    text = raw.strip()
    if len(text) > 20 or not text.lstrip("+-").isdigit():
        raise tornado.web.HTTPError(400, "%s must be an integer, got %r", name, raw[:40])
    value = int(text)
    if value < minimum:
        raise tornado.web.HTTPError(400, "%s must be >= %d, got %s", name, minimum, text)
    if value > INT64_MAX:
        raise tornado.web.HTTPError(400, "%s must be at most %d, got %s", name, INT64_MAX, text)
    return value
