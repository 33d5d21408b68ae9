"""Content-addressed blob files: ``.mlops/blobs/ab/<64 hex>``, named by their BLAKE3 digest.

Writes are atomic (temporary file in the same directory, fsync, then rename), so a reader never
sees half a blob and a killed writer leaves at most a stray ``.tmp-*`` file. Reads verify the
content against the name and raise :class:`BlobIntegrityError` on a mismatch, so nothing is ever
deserialised from a blob that was altered on disk.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

import blake3

from ..errors import BlobIntegrityError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"not a blob digest (64 lowercase hex characters): {digest!r}")
    return digest


class BlobStore:
    """Blobs under ``root`` (the store's ``blobs/`` directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        digest = _check_digest(digest)
        return self.root / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data``; return its digest. Storing the same bytes twice writes once."""
        digest = blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
        target = self.path(digest)
        if not target.is_file():
            self._write_atomic(target, lambda f: f.write(data))
        return digest

    def put_file(self, source: str | os.PathLike[str]) -> str:
        """Copy the file at ``source`` into the store; return its digest."""
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                hasher.update(chunk)
        digest = hasher.hexdigest()
        target = self.path(digest)
        if not target.is_file():

            def copy(out: BinaryIO) -> None:
                with open(source, "rb") as src:
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        out.write(chunk)

            self._write_atomic(target, copy)
            if self._digest_of(target) != digest:  # the source changed while we copied it
                target.unlink()
                raise BlobIntegrityError(f"{source} changed while it was being stored; try again")
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes after checking they hash to ``digest``."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobIntegrityError(f"blob {digest} is missing from {self.root}") from None
        actual = blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
        if actual != digest:
            raise BlobIntegrityError(
                f"blob {path} is corrupt: its content hashes to {actual}, not to its name; "
                "it was modified on disk and will not be used"
            )
        return data

    def _digest_of(self, path: Path) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                hasher.update(chunk)
        return hasher.hexdigest()

    def _write_atomic(self, target: Path, write: object) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)  # type: ignore[operator]
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
