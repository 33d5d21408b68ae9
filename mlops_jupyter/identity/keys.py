"""Signing keys: Ed25519 SSH private key files, or keys held by ssh-agent.

:func:`load_signer` finds the key to sign with (a given file, else ``~/.ssh/id_ed25519``, else the
first Ed25519 key of ssh-agent); :func:`generate_key` makes a new one. Passphrase-protected files
are used through ssh-agent: mlops-jupyter never asks for or handles passphrases.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ..errors import IdentityError
from . import agent
from .sshsig import _blob_type, _ed25519_blob, _is_ed25519, _Reader, fingerprint, key_line

__all__ = ["DEFAULT_KEY", "Signer", "default_key_path", "generate_key", "load_signer"]

AGENT_SOURCE = "ssh-agent"
_INIT_HINT = "`mlops-jupyter keys init`"
_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"

DEFAULT_KEY: Path  # provided by __getattr__, computed at each access (tests change HOME)


def __getattr__(name: str) -> Path:
    if name == "DEFAULT_KEY":
        return default_key_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_key_path() -> Path:
    """``~/.ssh/id_ed25519`` for the current ``HOME``."""
    return Path.home() / ".ssh" / "id_ed25519"


@dataclass(frozen=True)
class Signer:
    """A key that can sign: its public key blob, where it lives, and a raw signing function."""

    key_blob: bytes
    source: str  # the private key's path, or "ssh-agent"
    _sign: Callable[[bytes], bytes] = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
        return fingerprint(self.key_blob)

    def sign_raw(self, data: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature over ``data``."""
        return self._sign(data)


def _agent_signer(blob: bytes) -> Signer:
    return Signer(blob, AGENT_SOURCE, partial(agent.sign, blob))


def _kind(key: object) -> str:
    """A readable name of a loaded private key's type."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA (ssh-rsa)"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"ECDSA (ecdsa-sha2-nistp{key.curve.key_size})"
    if isinstance(key, dsa.DSAPrivateKey):
        return "DSA (ssh-dss)"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "Ed448"
    return type(key).__name__


def _not_ed25519(path: Path, kind: str) -> IdentityError:
    return IdentityError(
        f"{path} holds a key of type {kind}, but only Ed25519 keys are supported: create one with "
        f"{_INIT_HINT} (or `ssh-keygen -t ed25519`)"
    )


def _openssh_public_blob(data: bytes) -> bytes | None:
    """The public key stored unencrypted in the header of an OpenSSH private key file."""
    start = data.find(_OPENSSH_BEGIN)
    end = data.find(_OPENSSH_END)
    if start < 0 or end < start:
        return None
    try:
        raw = base64.b64decode(b"".join(data[start + len(_OPENSSH_BEGIN) : end].split()))
        if not raw.startswith(_OPENSSH_MAGIC):
            return None
        reader = _Reader(raw)
        reader.pos = len(_OPENSSH_MAGIC)
        reader.string()  # cipher
        reader.string()  # kdf
        reader.string()  # kdf options
        if reader.uint32() < 1:
            return None
        return reader.string()
    except (binascii.Error, ValueError):
        return None


def _pub_file_blob(path: Path) -> bytes | None:
    """The key blob of ``path.pub`` (any key type), if readable."""
    try:
        fields = Path(str(path) + ".pub").read_text(encoding="utf-8").split()
        return base64.b64decode(fields[1], validate=True)
    except (OSError, UnicodeDecodeError, IndexError, binascii.Error, ValueError):
        return None


def _encrypted_signer(path: Path, data: bytes) -> Signer:
    """Sign with a passphrase-protected file's key through ssh-agent, if the agent holds it."""
    blob = _openssh_public_blob(data) or _pub_file_blob(path)
    if blob is not None and not _is_ed25519(blob):
        raise _not_ed25519(path, _blob_type(blob))
    add_hint = f"{path} is passphrase-protected: add it to ssh-agent with `ssh-add {path}`"
    if blob is None:
        raise IdentityError(
            f"{add_hint}, and put its public key next to it as {path}.pub so mlops-jupyter can "
            "find it in the agent (`ssh-keygen -y -f PATH > PATH.pub`)"
        )
    try:
        held = [key for key, _ in agent.identities()]
    except IdentityError as exc:
        raise IdentityError(f"{add_hint} ({exc})") from None
    if blob not in held:
        raise IdentityError(f"{add_hint} (the running ssh-agent does not hold it)")
    return _agent_signer(blob)


def _load_file(path: Path) -> Signer:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(
            f"no private key at {path}: create one with {_INIT_HINT}, or give the path of an "
            "existing Ed25519 private key"
        ) from None
    except OSError as exc:
        raise IdentityError(
            f"cannot read the private key {path}: {exc.strerror or exc}; check the path and its "
            "permissions"
        ) from None
    head = data.lstrip()[:40]
    if head.startswith((b"ssh-", b"ecdsa-", b"sk-")):
        raise IdentityError(
            f"{path} is a public key: give the private key file (the same path without .pub)"
        )
    key: object
    try:
        if _OPENSSH_BEGIN in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # "password-protected" / "private key is encrypted"
        return _encrypted_signer(path, data)
    except UnsupportedAlgorithm as exc:
        raise IdentityError(
            f"{path} holds an unsupported key type ({exc}); only Ed25519 keys are supported: "
            f"create one with {_INIT_HINT}"
        ) from None
    except ValueError as exc:
        raise IdentityError(
            f"{path} is not a readable private key ({exc}); give an Ed25519 key in OpenSSH or "
            f"PEM format, or create one with {_INIT_HINT}"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise _not_ed25519(path, _kind(key))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Signer(_ed25519_blob(raw), str(path), key.sign)


def load_signer(path: str | os.PathLike[str] | None = None) -> Signer:
    """The key to sign with.

    ``path`` given: that private key file (OpenSSH or PEM; if passphrase-protected, the same key
    in ssh-agent). ``None``: ``~/.ssh/id_ed25519`` if it exists, else the first Ed25519 key of
    ssh-agent. Raises :class:`IdentityError` saying what to do when there is no usable key.
    """
    if path is not None:
        return _load_file(Path(path).expanduser())
    default = default_key_path()
    if default.exists() or default.is_symlink():
        return _load_file(default)
    if agent.socket_path() is None:
        reason = "no ssh-agent is running (SSH_AUTH_SOCK is not set)"
    else:
        try:
            keys = agent.identities()
        except IdentityError as exc:
            reason = f"the ssh-agent is unusable ({exc})"
        else:
            for blob, _comment in keys:
                if _is_ed25519(blob):
                    return _agent_signer(blob)
            reason = f"the ssh-agent holds no Ed25519 key ({len(keys)} of other types)"
    raise IdentityError(
        f"no signing key: there is no {default} and {reason}; run {_INIT_HINT} to create an "
        "Ed25519 key (or `ssh-add` an existing Ed25519 key to your ssh-agent)"
    )


def _make_parents(directory: Path) -> None:
    """Create missing directories of ``directory`` with mode 0700 (like ``~/.ssh``)."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(new, 0o700)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (O_EXCL), with exactly ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key(path: str | os.PathLike[str], comment: str = "") -> Signer:
    """Write a new unencrypted Ed25519 key at ``path`` (0600, OpenSSH format) and ``path.pub``.

    Missing parent directories are created with mode 0700. Never overwrites: an existing key
    or ``.pub`` file raises :class:`IdentityError`.
    """
    path = Path(path).expanduser()
    pub = Path(str(path) + ".pub")
    if "\n" in comment or "\r" in comment:
        raise IdentityError("a key comment must be a single line: remove the line breaks")
    for existing in (path, pub):
        if existing.exists() or existing.is_symlink():
            raise IdentityError(
                f"{existing} already exists: not overwriting it; use that key (`load_signer`) or "
                "choose another path"
            )
    _make_parents(path.parent)
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = _ed25519_blob(raw)
    line = key_line(blob) + (f" {comment}" if comment else "") + "\n"
    try:
        _write_new(path, private, 0o600)
    except FileExistsError:
        raise IdentityError(f"{path} already exists: not overwriting it") from None
    try:
        _write_new(pub, line.encode("utf-8"), 0o644)
    except OSError as exc:
        path.unlink()
        if exc.errno == errno.EEXIST:
            raise IdentityError(f"{pub} already exists: not overwriting it") from None
        raise
    return Signer(blob, str(path), key.sign)
