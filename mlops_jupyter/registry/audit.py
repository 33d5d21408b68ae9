"""Verify the audit log: the hash chain, every signature against the allowed signers, the
registry tables against the signed statements, and the head anchored outside the store; and
export a bundle that someone without the store can verify (also with ``ssh-keygen -Y verify``).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.audit_chain import GENESIS
from .anchor import Anchor, read_anchor
from .ledger import Finding, Ledger, replay_entries, row_findings
from .statements import IMPORT, Entry, Invalid, imported

if TYPE_CHECKING:
    from ..store import Store
    from .registry import Registry

BUNDLE_ENTRIES = "entries.jsonl"
BUNDLE_SIGNERS = "allowed_signers"
BUNDLE_ANCHOR = "anchor.json"


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    head: str
    first_bad: int | None = None  # sequence number of the first entry that does not hold
    problem: str | None = None
    findings: list[Finding] = field(default_factory=list)
    signed: int = 0
    legacy: int = 0
    labelled: int = 0
    imported: int = 0
    principals: tuple[str, ...] = ()
    signers_path: str | None = None
    anchor: Anchor | None = None
    anchor_path: str | None = None

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.fatal]

    def __str__(self) -> str:
        lines = []
        if self.ok:
            lines.append(f"audit log OK: {self.entries} entries, head {self.head}")
        else:
            where = f" at entry {self.first_bad}" if self.first_bad is not None else ""
            lines.append(f"audit log BROKEN{where}: {self.problem}")
            lines += [f"  {f}" for f in self.problems[1:]]
        who = f" (principals: {', '.join(self.principals)})" if self.principals else ""
        lines.append(f"  {self.signed} signed statements verified against {self.signers_path}{who}")
        if self.legacy:
            lines.append(
                f"  {self.legacy} entries written before signing: checked by the hash chain only"
            )
        if self.labelled:
            lines.append(
                f"  {self.labelled} unsigned card edits and monitored batches: their authors "
                "are labels only"
            )
        if self.imported:
            lines.append(
                f"  {self.imported} entries imported from other stores (pushed), each checked in "
                "its own store's chain"
            )
        lines += [f"  note: {f}" for f in self.findings if not f.fatal]
        if self.anchor is not None:
            lines.append(f"  anchored: entry {self.anchor.seq} in {self.anchor_path}")
        else:
            lines.append(
                f"  no anchor for this store in {self.anchor_path}: a removed tail of entries "
                "cannot be detected (registry actions write the anchor; commit that file, or "
                "keep a head and pass --expect-head)"
            )
        return "\n".join(lines)


def verify(
    store: Store, expect_head: str | None = None, registry: Registry | None = None
) -> AuditReport:
    """Check the whole log from scratch (no cached state) and the tables against it.

    ``expect_head``, a head seen earlier (printed in promotion receipts and exported cards),
    proves the log still extends it, as the anchor file does for the latest head.
    """
    from .registry import Registry

    registry = registry or Registry(store)
    signers = registry.signers
    ledger = replay_entries([Entry.from_row(r) for r in store.audit_entries()], signers)
    findings = list(ledger.findings)
    if ledger.broken is None:
        findings += row_findings(store, ledger)
    anchor = read_anchor(registry.anchor_path, store.store_id)
    return _report(
        ledger, findings, anchor, registry.anchor_path, registry.allowed_signers_path, expect_head
    )


def _report(
    ledger: Ledger,
    findings: list[Finding],
    anchor: Anchor | None,
    anchor_path: Path,
    signers_path: Path,
    expect_head: str | None,
) -> AuditReport:
    if anchor is not None and ledger.hashes.get(anchor.seq) != anchor.head:
        findings.append(
            Finding(
                f"anchor {anchor_path}",
                f"the log does not contain the anchored head (entry {anchor.seq}, {anchor.head}): "
                "entries were removed or the log was rewritten",
            )
        )
    if (
        expect_head is not None
        and expect_head != GENESIS
        and expect_head not in ledger.hashes.values()
    ):
        findings.append(
            Finding(
                "--expect-head",
                f"the log does not contain head {expect_head}: entries after it were removed or "
                "the log was rewritten",
            )
        )
    fatal = [f for f in findings if f.fatal]
    first = fatal[0] if fatal else None
    return AuditReport(
        ok=not fatal,
        entries=ledger.seq if ledger.broken is None else ledger.broken.seq or 0,
        head=ledger.head,
        first_bad=first.seq if first else None,
        problem=(first.message if first.seq is not None else str(first)) if first else None,
        findings=findings,
        signed=ledger.signed,
        legacy=ledger.legacy,
        labelled=ledger.labelled,
        imported=ledger.imported,
        principals=tuple(sorted(ledger.principals)),
        signers_path=str(signers_path),
        anchor=anchor,
        anchor_path=str(anchor_path),
    )


def export(
    store: Store, directory: str | os.PathLike[str], registry: Registry | None = None
) -> Path:
    """Write a bundle someone without the store can verify: every entry, each signed statement
    with its signature (``NNNNNN-action.json`` / ``.sig``), the allowed signers, the anchor, a
    README and a script that checks each signature with ``ssh-keygen -Y verify``."""
    from .registry import Registry

    registry = registry or Registry(store)
    out = Path(directory)
    statements = out / "statements"
    statements.mkdir(parents=True, exist_ok=True)
    rows = [Entry.from_row(r) for r in store.audit_entries()]
    checks = []
    with open(out / BUNDLE_ENTRIES, "w", encoding="utf-8") as handle:
        for e in rows:
            handle.write(json.dumps(e.__dict__, ensure_ascii=False, sort_keys=True) + "\n")
            stem, signed = f"{e.seq:06d}-{e.action}", e
            if e.signature is None and e.action == IMPORT:  # the statement it carries
                try:
                    signed = imported(e).entry
                except Invalid:
                    continue
                stem = f"{e.seq:06d}-import-{signed.action}"
            if signed.signature is None:
                continue
            (statements / f"{stem}.json").write_bytes(signed.payload.encode("utf-8"))
            (statements / f"{stem}.sig").write_text(signed.signature, encoding="utf-8")
            checks.append(
                f"ssh-keygen -Y verify -f allowed_signers -I {shlex.quote(signed.actor)} "
                f"-n mlops-jupyter -s statements/{stem}.sig < statements/{stem}.json"
            )
    signers = registry.allowed_signers_path
    (out / BUNDLE_SIGNERS).write_text(
        signers.read_text(encoding="utf-8") if signers.is_file() else "", encoding="utf-8"
    )
    anchor = read_anchor(registry.anchor_path, store.store_id)
    (out / BUNDLE_ANCHOR).write_text(
        json.dumps(
            {
                "store_id": store.store_id,
                "entries": anchor.seq if anchor else None,
                "head": anchor.head if anchor else None,
                "exported_head": rows[-1].hash if rows else GENESIS,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    script = out / "verify-with-ssh-keygen.sh"
    script.write_text(
        "#!/bin/sh\n# Checks every signed statement with OpenSSH alone.\nset -e\n"
        'cd "$(dirname "$0")"\n' + "".join(f"{c}\n" for c in checks),
        encoding="utf-8",
    )
    script.chmod(0o755)
    (out / "README.txt").write_text(
        "mlops-jupyter audit bundle\n\n"
        f"{BUNDLE_ENTRIES}: every audit entry (hash chain, statements, signatures)\n"
        "statements/NNNNNN-ACTION.json: a signed statement, byte for byte as signed\n"
        "statements/NNNNNN-ACTION.sig: its SSHSIG signature (namespace mlops-jupyter)\n"
        f"{BUNDLE_SIGNERS}: who may sign (git's allowed-signers format)\n"
        f"{BUNDLE_ANCHOR}: the head anchored in the project at export\n\n"
        "Verify everything: mlops-jupyter audit verify --bundle THIS_DIRECTORY\n"
        "Verify the signatures with OpenSSH alone: sh verify-with-ssh-keygen.sh\n",
        encoding="utf-8",
    )
    return out


def verify_bundle(directory: str | os.PathLike[str]) -> AuditReport:
    """Verify an exported bundle: chain, signatures and its anchor, without the store."""
    from ..errors import MLOpsError
    from ..identity.allowed_signers import AllowedSigners

    where = Path(directory)
    try:
        lines = (where / BUNDLE_ENTRIES).read_text(encoding="utf-8").splitlines()
        meta: dict[str, Any] = json.loads((where / BUNDLE_ANCHOR).read_text(encoding="utf-8"))
        signers_text = (where / BUNDLE_SIGNERS).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise MLOpsError(f"{where} is not an audit bundle (see its README.txt): {exc}") from None
    entries = [Entry(**json.loads(line)) for line in lines if line.strip()]
    signers = AllowedSigners.parse(signers_text, where / BUNDLE_SIGNERS)
    ledger = replay_entries(entries, signers)
    anchor = (
        Anchor(meta["store_id"], int(meta["entries"]), meta["head"], where / BUNDLE_ANCHOR)
        if meta.get("head")
        else None
    )
    return _report(
        ledger, list(ledger.findings), anchor, where / BUNDLE_ANCHOR, where / BUNDLE_SIGNERS, None
    )
