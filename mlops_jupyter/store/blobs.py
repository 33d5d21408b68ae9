"""Content-addressed blob files: ``.mlops/blobs/ab/<64 hex>``, named by their BLAKE3 digest.

Writes are atomic (temporary file in the same directory, fsync, then rename), so a reader never
sees half a blob and a killed writer leaves at most a stray ``.tmp-*`` file, removed by the
next :meth:`BlobStore.clean_temporary` (run when a store is opened). Reads verify the
content against the name and raise :class:`BlobIntegrityError` on a mismatch, so nothing is ever
deserialised from a blob that was altered on disk.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import blake3

from ..errors import BlobIntegrityError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TMP = ".tmp-"
_LEGACY_TMP_AGE_S = 3600.0  # temporary files not naming their writer: removed after an hour


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

    def iter_chunks(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes, 1 MiB at a time (not checked: :meth:`put_chunks` checks)."""
        try:
            handle = open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobIntegrityError(f"blob {digest} is missing from {self.root}") from None
        with handle:
            yield from iter(lambda: handle.read(_CHUNK), b"")

    def put_chunks(self, digest: str, chunks: Iterable[bytes]) -> int:
        """Store a blob arriving in chunks under the digest it must have; the content is
        hashed as it is written and refused (nothing kept) if it hashes to anything else.
        Returns its size."""
        target = self.path(digest)
        if target.is_file():
            return target.stat().st_size
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        size = 0

        def copy(out: BinaryIO) -> None:
            nonlocal size
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
            if hasher.hexdigest() != digest:
                raise BlobIntegrityError(
                    f"blob {digest} arrived with content hashing to {hasher.hexdigest()}; "
                    "it was not stored"
                )

        self._write_atomic(target, copy)
        return size

    def verify(self, digest: str) -> None:
        """Check that the blob exists and hashes to its name (streamed, any size)."""
        path = self.path(digest)
        try:
            actual = self._digest_of(path)
        except FileNotFoundError:
            raise BlobIntegrityError(f"blob {digest} is missing from {self.root}") from None
        if actual != digest:
            raise BlobIntegrityError(
                f"blob {path} is corrupt: its content hashes to {actual}, not to its name"
            )

    def _digest_of(self, path: Path) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                hasher.update(chunk)
        return hasher.hexdigest()

    def clean_temporary(self) -> int:
        """Remove temporary files left by killed writers; return how many were removed.

        A temporary file names its host and process (``.tmp-HOST-PID-*``), so only files of
        processes of this host that no longer exist are removed, never a live writer's.
        """
        host, removed, now = socket.gethostname(), 0, time.time()
        try:
            shards = [e.path for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return 0
        for shard in shards:
            with os.scandir(shard) as entries:
                stray = [e for e in entries if e.name.startswith(_TMP)]
            for entry in stray:
                writer = entry.name[len(_TMP) :].rsplit("-", 2)
                if len(writer) == 3 and writer[1].isdigit():
                    if writer[0] != host or _alive(int(writer[1])):
                        continue
                else:
                    try:
                        if now - entry.stat().st_mtime < _LEGACY_TMP_AGE_S:
                            continue
                    except FileNotFoundError:
                        continue
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:  # gone already, or a read-only store: leave it
                    pass
        return removed

    def _write_atomic(self, target: Path, write: object) -> None:
        try:
            self._write_new(target, write)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                from .connection import disk_full

                raise disk_full(self.root.parent) from exc
            raise

    def _write_new(self, target: Path, write: object) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f"{_TMP}{socket.gethostname()}-{os.getpid()}-"
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=target.parent)
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
