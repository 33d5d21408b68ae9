"""Signed registry statements: what a registry action signs, and checking one log entry.

A statement is the canonical JSON payload of an audit entry: the action, model, version, the
model blob's hash, the run, the training/evaluation data hashes, the digest of the evidence
the gates saw, the previous audit head (``prev``), the time and the principal. It is signed
with the actor's SSH key in OpenSSH's SSHSIG format (namespace ``mlops-jupyter``), so
``ssh-keygen -Y verify`` can check it against the project's allowed-signers file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..store.audit_chain import canonical

SIGNED_ACTIONS = ("register", "request", "approve", "reject", "transition", "refused", "revoke")
# may be unsigned (no key at hand, e.g. a scheduled monitoring job): the author is then a label
LABELLED_ACTIONS = ("card_edit", "monitor")
# an entry carrying another store's entry (pushed from a laptop), verbatim: its trust is the
# signature inside, checked in that store's own chain (see :mod:`.transfer`)
IMPORT = "import"


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One audit-log row."""

    seq: int
    ts: float
    actor: str
    action: str
    subject: str
    payload: str
    prev_hash: str
    hash: str
    signature: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Entry:
        return cls(int(row[0]), float(row[1]), *row[2:9])

    def fields(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        return value if isinstance(value, dict) else {}

    @property
    def where(self) -> str:
        return f"entry {self.seq} ({self.action} on {self.subject})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Imported:
    """What an ``import`` entry carries: another store's entry as it is in that store's log,
    the store (``origin``, its id; ``source``, where it was), and the numbers the model version
    or request got here (``renumber``: ``{"version": N}`` or ``{"request": N}``)."""

    origin: str
    source: str
    entry: Entry
    renumber: dict[str, int]


def imported(entry: Entry) -> Imported:
    """The entry an ``import`` entry carries; raises :class:`Invalid` if it carries none."""
    fields = entry.fields()
    inner = fields.get("entry")
    try:
        assert isinstance(inner, dict) and isinstance(fields.get("origin"), str)
        text = {k: str(inner[k]) for k in ("actor", "action", "subject", "payload", "prev_hash")}
        carried = Entry(
            seq=int(inner["seq"]),
            ts=float(inner["ts"]),
            hash=str(inner["hash"]),
            signature=None if inner.get("signature") is None else str(inner["signature"]),
            **text,
        )
        renumber = {str(k): int(v) for k, v in dict(fields.get("renumber") or {}).items()}
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"an import entry that carries no well-formed entry ({exc!r})") from None
    return Imported(str(fields["origin"]), str(fields.get("source") or "?"), carried, renumber)


@dataclass(frozen=True)
class Signed:
    """Who signed an entry, once the signature and the allowed signers were checked."""

    principal: str
    fingerprint: str
    key: bytes
    note: str | None = None  # e.g. "signed with a since-revoked key"


class Invalid(Exception):
    """An entry whose signature or statement does not hold (``str`` says why)."""


def signature_check(entry: Entry) -> bytes | str:
    """The signing key of a signed entry, or why its signature does not verify."""
    from ..errors import SignatureError
    from ..identity import sshsig

    assert entry.signature is not None
    try:
        return sshsig.verify(entry.signature, entry.payload.encode("utf-8"))
    except SignatureError as exc:
        return f"signature invalid: {exc}"


_PARALLEL_FROM = 256  # below this, a thread pool costs more than it saves


def signature_checks(entries: list[Entry]) -> dict[str, bytes | str]:
    """:func:`signature_check` of every signed entry, by entry hash, on all cores (OpenSSL
    releases the GIL while it verifies, so threads do run in parallel)."""
    import os

    signed = [e for e in entries if e.signature is not None]
    workers = min(os.cpu_count() or 1, 8)
    if len(signed) < _PARALLEL_FROM or workers == 1:
        return {e.hash: signature_check(e) for e in signed}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(signature_check, signed, chunksize=128)
        return {e.hash: r for e, r in zip(signed, results, strict=True)}


def check_statement(
    entry: Entry, checked: bytes | str | None = None
) -> tuple[dict[str, Any], bytes]:
    """The statement's fields and signing key, after checking the signature over the payload
    (``checked``: the result of :func:`signature_check`, if already known) and that the
    statement agrees with its log entry; raises :class:`Invalid`."""
    assert entry.signature is not None
    key = signature_check(entry) if checked is None else checked
    if isinstance(key, str):
        raise Invalid(key)
    fields = entry.fields()
    expected = {
        "action": entry.action,
        "prev": entry.prev_hash,
        "time": entry.ts,
        "principal": entry.actor,
    }
    for name, value in expected.items():
        if fields.get(name) != value:
            raise Invalid(
                f"the signed statement's {name} ({fields.get(name)!r}) does not match the log "
                f"entry ({value!r})"
            )
    return fields, key
