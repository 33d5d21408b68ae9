"""OpenSSH SSHSIG signatures with Ed25519 keys (the format of ``ssh-keygen -Y sign``).

A signature made here is byte-identical to ``ssh-keygen -Y sign -n mlops-jupyter`` with the same
key (Ed25519 is deterministic), so ``ssh-keygen -Y verify`` checks it; and ``verify`` accepts what
``ssh-keygen`` or git's SSH signing produce. See OpenSSH's PROTOCOL.sshsig::

    blob   = "SSHSIG" uint32(1) string(publickey) string(namespace) string(reserved)
             string(hash_algorithm) string(signature)
    signed = "SSHSIG" string(namespace) string("") string(hash_algorithm) string(H(message))

Only ``ssh-ed25519`` keys are supported. Key blobs are in SSH wire format:
``string("ssh-ed25519") string(32-byte public key)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import IdentityError, SignatureError

if TYPE_CHECKING:
    from .keys import Signer

__all__ = [
    "KEY_TYPE",
    "NAMESPACE",
    "fingerprint",
    "key_line",
    "parse_key_line",
    "sign",
    "signature_key",
    "verify",
]

NAMESPACE = "mlops-jupyter"
KEY_TYPE = "ssh-ed25519"

_U32 = struct.Struct(">I")
_MAGIC = b"SSHSIG"
_VERSION = 1
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_WRAP = 70  # ssh-keygen wraps the base64 body at 70 columns
_HASHES = {b"sha512": hashlib.sha512, b"sha256": hashlib.sha256}


def _string(data: bytes) -> bytes:
    """SSH wire ``string``: uint32 length + bytes."""
    return _U32.pack(len(data)) + data


_KEY_PREFIX = _string(KEY_TYPE.encode()) + _U32.pack(32)  # blob = prefix + 32-byte key
_SIG_PREFIX = _string(KEY_TYPE.encode()) + _U32.pack(64)  # signature = prefix + 64 bytes
_KEY_LEN = len(_KEY_PREFIX) + 32
_SIG_LEN = len(_SIG_PREFIX) + 64
_EMPTY = _string(b"")
_SHA512 = _string(b"sha512")
_VERSION_BYTES = _U32.pack(_VERSION)


class _Truncated(ValueError):
    """Raised by :class:`_Reader` when the data ends early."""


class _Reader:
    """Sequential reader of SSH wire-format data."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise _Truncated("data ends inside a uint32")
        (value,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def string(self) -> bytes:
        size = self.uint32()
        end = self.pos + size
        if end > len(self.data):
            raise _Truncated(f"a {size}-byte string runs past the end of the data")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def raw(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Truncated("data too short")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def _is_ed25519(blob: bytes) -> bool:
    return len(blob) == _KEY_LEN and blob.startswith(_KEY_PREFIX)


def _blob_type(blob: bytes) -> str:
    """The key type named inside a public key blob ("?" if unreadable)."""
    try:
        return _Reader(blob).string().decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return "?"


def _ed25519_blob(raw: bytes) -> bytes:
    """Public key blob of a raw 32-byte Ed25519 public key."""
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return _KEY_PREFIX + raw


@lru_cache(maxsize=1024)
def _public_key(blob: bytes) -> Ed25519PublicKey:
    """The verifying key of an Ed25519 blob, cached: audit logs repeat a few keys many times."""
    return Ed25519PublicKey.from_public_bytes(blob[len(_KEY_PREFIX) :])


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode("ascii")
    lines = [body[i : i + _WRAP] for i in range(0, len(body), _WRAP)]
    return _BEGIN + "\n" + "\n".join(lines) + "\n" + _END + "\n"


def sign(signer: Signer, message: bytes, namespace: str = NAMESPACE) -> str:
    """Armored SSHSIG signature of ``message`` (sha512), as ``ssh-keygen -Y sign -n namespace``."""
    if not namespace:
        raise ValueError("a signature namespace is required (e.g. 'mlops-jupyter')")
    if not _is_ed25519(signer.key_blob):
        raise IdentityError(
            f"cannot sign with a {_blob_type(signer.key_blob)} key: only Ed25519 keys are "
            "supported; create one with `mlops-jupyter keys init`"
        )
    ns = _string(namespace.encode("utf-8"))
    digest = _string(hashlib.sha512(message).digest())
    raw = signer.sign_raw(_MAGIC + ns + _EMPTY + _SHA512 + digest)
    if len(raw) != 64:
        raise IdentityError(
            f"the signing key ({signer.source}) returned a {len(raw)}-byte signature instead of "
            "a 64-byte Ed25519 one; check the key or the ssh-agent"
        )
    blob = (
        _MAGIC
        + _VERSION_BYTES
        + _string(signer.key_blob)
        + ns
        + _EMPTY
        + _SHA512
        + _string(_SIG_PREFIX + raw)
    )
    return _armor(blob)


def _dearmor(armored: str) -> bytes:
    if not isinstance(armored, str):
        raise SignatureError(
            f"an SSH signature is armored text, not {type(armored).__name__}: pass the "
            "'-----BEGIN SSH SIGNATURE-----' text as a str"
        )
    text = armored.strip()
    if not text.startswith(_BEGIN):
        raise SignatureError(
            f"malformed SSH signature: it does not start with {_BEGIN!r}; pass the armored "
            "text written by `ssh-keygen -Y sign` or mlops-jupyter"
        )
    if not text.endswith(_END):
        raise SignatureError(
            f"malformed SSH signature: it does not end with {_END!r} (truncated?); copy the "
            "whole signature"
        )
    body = "".join(text[len(_BEGIN) : -len(_END)].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(
            "malformed SSH signature: its body is not valid base64 (was it edited or truncated?)"
        ) from None


def _parse(armored: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(public key blob, namespace, hash algorithm, signature blob) of an armored signature."""
    blob = _dearmor(armored)
    reader = _Reader(blob)
    try:
        if reader.raw(6) != _MAGIC:
            raise SignatureError(
                "malformed SSH signature: the blob does not start with 'SSHSIG' (not an "
                "`ssh-keygen -Y sign` signature)"
            )
        version = reader.uint32()
        if version != _VERSION:
            raise SignatureError(
                f"unsupported SSH signature version {version}: only version {_VERSION} exists; "
                "re-sign with `ssh-keygen -Y sign` or mlops-jupyter"
            )
        key_blob = reader.string()
        namespace = reader.string()
        reader.string()  # reserved
        hash_alg = reader.string()
        sig_blob = reader.string()
    except _Truncated as exc:
        raise SignatureError(f"malformed SSH signature: the blob is truncated ({exc})") from None
    if not reader.at_end():
        raise SignatureError(
            f"malformed SSH signature: {len(blob) - reader.pos} unexpected bytes after the "
            "signature"
        )
    return key_blob, namespace, hash_alg, sig_blob


def _show(value: bytes) -> str:
    return repr(value.decode("utf-8", "replace"))


def verify(armored: str, message: bytes, namespace: str = NAMESPACE) -> bytes:
    """Check an armored SSHSIG signature over ``message``; return the signer's public key blob.

    Raises :class:`SignatureError` saying why: malformed armor or blob, unsupported version,
    another namespace, a hash other than sha256/sha512, a key other than ssh-ed25519, or a
    signature that does not match.
    """
    key_blob, sig_ns, hash_alg, sig_blob = _parse(armored)
    if sig_ns != namespace.encode("utf-8"):
        raise SignatureError(
            f"the signature is for namespace {_show(sig_ns)}, not {namespace!r}: it was made "
            f"for another purpose; sign with `-n {namespace}`"
        )
    hash_fn = _HASHES.get(hash_alg)
    if hash_fn is None:
        raise SignatureError(
            f"unsupported signature hash algorithm {_show(hash_alg)}: only sha512 and sha256 "
            "are accepted; re-sign with `ssh-keygen -Y sign` or mlops-jupyter"
        )
    if not _is_ed25519(key_blob):
        raise SignatureError(
            f"unsupported signing key type {_blob_type(key_blob)!r}: only ssh-ed25519 "
            "signatures are accepted; sign with an Ed25519 key (`mlops-jupyter keys init`)"
        )
    if len(sig_blob) != _SIG_LEN or not sig_blob.startswith(_SIG_PREFIX):
        raise SignatureError(
            f"malformed SSH signature: expected an ssh-ed25519 signature, got a "
            f"{_blob_type(sig_blob)!r} one of {len(sig_blob)} bytes"
        )
    signed = (
        _MAGIC + _string(sig_ns) + _EMPTY + _string(hash_alg) + _string(hash_fn(message).digest())
    )
    try:
        _public_key(key_blob).verify(sig_blob[len(_SIG_PREFIX) :], signed)
    except InvalidSignature:
        raise SignatureError(
            f"bad signature by {fingerprint(key_blob)}: it does not match the message, so the "
            "message or its signature was changed; re-sign the original or treat it as tampered"
        ) from None
    except ValueError as exc:  # a public key OpenSSL rejects
        raise SignatureError(f"bad signature: unusable Ed25519 public key ({exc})") from None
    return key_blob


def signature_key(armored: str) -> bytes:
    """The public key blob inside an armored signature, without verifying anything."""
    return _parse(armored)[0]


def fingerprint(key_blob: bytes) -> str:
    """``SHA256:<unpadded base64>`` of the blob, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def key_line(key_blob: bytes) -> str:
    """``<type> <base64 blob>``, the public key line of ``.pub`` files and allowed signers."""
    key_type = _blob_type(key_blob)
    if key_type == "?":
        raise IdentityError(
            "malformed public key blob: expected SSH wire format (string type, key data); "
            "use the blob returned by load_signer or verify"
        )
    return f"{key_type} {base64.b64encode(key_blob).decode('ascii')}"


def parse_key_line(text: str) -> bytes:
    """Blob of ``ssh-ed25519 AAAA... [comment]``; :class:`IdentityError` if not that."""
    fields = text.strip().split(None, 2)
    if len(fields) < 2:
        raise IdentityError(
            f"expected a public key line 'ssh-ed25519 AAAA... [comment]', got {text.strip()!r}"
        )
    key_type, b64 = fields[0], fields[1]
    if key_type != KEY_TYPE:
        raise IdentityError(
            f"{key_type} keys are not supported, only {KEY_TYPE}: create an Ed25519 key with "
            "`mlops-jupyter keys init` (or `ssh-keygen -t ed25519`)"
        )
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise IdentityError(
            f"malformed {KEY_TYPE} public key: {b64[:20]!r}... is not valid base64; copy the "
            "whole line of the .pub file"
        ) from None
    if not _is_ed25519(blob):
        raise IdentityError(
            f"malformed {KEY_TYPE} public key: its data is a {_blob_type(blob)!r} blob of "
            f"{len(blob)} bytes, expected {_KEY_LEN}; copy the whole line of the .pub file"
        )
    return blob
