"""A minimal ssh-agent client (OpenSSH PROTOCOL.agent) over the UNIX socket in ``SSH_AUTH_SOCK``.

Only what signing needs: list the agent's keys, and ask it to sign with one. Private keys never
leave the agent, so passphrase-protected keys work without mlops-jupyter asking for passphrases.
"""

from __future__ import annotations

import os
import socket

from ..errors import IdentityError
from .sshsig import (
    _SIG_LEN,
    _SIG_PREFIX,
    _U32,
    _blob_type,
    _Reader,
    _string,
    _Truncated,
    fingerprint,
)

__all__ = ["available", "identities", "sign", "socket_path"]

SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
_FAILURES = {SSH_AGENT_FAILURE, 30, 102}  # 30, 102: failure codes of other agents
_MAX_REPLY = 256 * 1024  # OpenSSH's AGENT_MAX_LEN
_TIMEOUT = 60.0  # the agent may be waiting for the user to confirm (`ssh-add -c`)
_START_HINT = 'start one with `eval "$(ssh-agent)"` and add your key with `ssh-add PATH`'


def socket_path() -> str | None:
    """The agent socket named by ``SSH_AUTH_SOCK``, or None."""
    return os.environ.get("SSH_AUTH_SOCK") or None


def _connect() -> tuple[socket.socket, str]:
    path = socket_path()
    if path is None:
        raise IdentityError(f"no ssh-agent (SSH_AUTH_SOCK is not set): {_START_HINT}")
    family = getattr(socket, "AF_UNIX", None)
    if family is None:
        raise IdentityError(
            "ssh-agent sockets are not supported on this platform: use an unencrypted key file"
        )
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(_TIMEOUT)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise IdentityError(
            f"cannot reach ssh-agent at {path} (SSH_AUTH_SOCK): {exc.strerror or exc}; "
            f"{_START_HINT}, or unset SSH_AUTH_SOCK"
        ) from None
    return sock, path


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 65536))
        if not chunk:
            raise ConnectionError("the agent closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _request(message: bytes) -> tuple[int, bytes]:
    """Send one request; return (reply type, reply body)."""
    sock, path = _connect()
    with sock:
        try:
            sock.sendall(_U32.pack(len(message)) + message)
            (size,) = _U32.unpack(_recv_exact(sock, 4))
            if not 0 < size <= _MAX_REPLY:
                raise IdentityError(
                    f"ssh-agent at {path} sent a malformed reply ({size} bytes): restart the agent"
                )
            reply = _recv_exact(sock, size)
        except OSError as exc:  # includes timeouts and closed connections
            raise IdentityError(
                f"ssh-agent at {path} did not answer ({exc}): check it is running ({_START_HINT})"
            ) from None
    return reply[0], reply[1:]


def available() -> bool:
    """Whether an ssh-agent answers at ``SSH_AUTH_SOCK``."""
    try:
        sock, _ = _connect()
    except IdentityError:
        return False
    sock.close()
    return True


def identities() -> list[tuple[bytes, str]]:
    """The agent's keys as (public key blob, comment), in the agent's order."""
    kind, body = _request(bytes([SSH_AGENTC_REQUEST_IDENTITIES]))
    if kind != SSH_AGENT_IDENTITIES_ANSWER:
        raise IdentityError(
            f"ssh-agent refused to list its keys (reply type {kind}): check `ssh-add -l`"
        )
    reader = _Reader(body)
    keys: list[tuple[bytes, str]] = []
    try:
        for _ in range(reader.uint32()):
            blob = reader.string()
            comment = reader.string().decode("utf-8", "replace")
            keys.append((blob, comment))
    except _Truncated:
        raise IdentityError(
            "ssh-agent sent a malformed key list: check `ssh-add -l`, or restart the agent"
        ) from None
    return keys


def sign(key_blob: bytes, data: bytes) -> bytes:
    """Raw 64-byte Ed25519 signature of ``data`` by the agent's key ``key_blob``."""
    request = bytes([SSH_AGENTC_SIGN_REQUEST]) + _string(key_blob) + _string(data) + _U32.pack(0)
    kind, body = _request(request)
    if kind in _FAILURES:
        raise IdentityError(
            f"ssh-agent refused to sign with {fingerprint(key_blob)}: the key is not in the "
            "agent (add it with `ssh-add PATH`), or its confirmation prompt was declined"
        )
    if kind != SSH_AGENT_SIGN_RESPONSE:
        raise IdentityError(
            f"ssh-agent sent an unexpected reply (type {kind}) to a signing request: restart it"
        )
    try:
        signature = _Reader(body).string()
    except _Truncated:
        raise IdentityError("ssh-agent sent a malformed signature: restart the agent") from None
    if len(signature) != _SIG_LEN or not signature.startswith(_SIG_PREFIX):
        raise IdentityError(
            f"ssh-agent returned a {_blob_type(signature)!r} signature, expected ssh-ed25519: "
            "sign with an Ed25519 key"
        )
    return signature[len(_SIG_PREFIX) :]
