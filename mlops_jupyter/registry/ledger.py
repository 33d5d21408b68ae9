"""Registry state derived from the signed audit log, and the check of the tables against it.

The tables (``model_versions``, ``promotion_requests``, ``signoffs``) are an index for queries;
the truth is the log. :func:`replay` walks the chain, checks each signature against the
allowed signers and applies only statements that hold, enforcing the rules again (four eyes,
distinct principals, the required number of sign-offs, the evidence the approvals name).
:func:`row_findings` names every row that disagrees with the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..store.audit_chain import GENESIS, canonical, entry_hash
from ..store.schema import SIGNING_MARKER
from .statements import (
    IMPORT,
    LABELLED_ACTIONS,
    Entry,
    Imported,
    Invalid,
    Signed,
    check_statement,
    imported,
    signature_checks,
)

VERSIONED_ACTIONS = ("register", "request", "approve", "reject", "transition", "refused")

if TYPE_CHECKING:
    from ..identity.allowed_signers import AllowedSigners
    from ..store import Store


@dataclass(frozen=True)
class Finding:
    """Something wrong (``fatal``) or worth knowing about one entry or row."""

    where: str
    message: str
    seq: int | None = None
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class VersionState:
    model: str
    version: int
    run_id: str
    blob: str | None
    stage: str
    registered_by: str
    registered_at: float
    fingerprint: str | None  # None: an unsigned entry written before signing existed
    seq: int


@dataclass
class Signoff:
    principal: str
    decision: str  # approve | reject
    comment: str
    time: float
    seq: int
    fingerprint: str | None
    note: str | None = None  # e.g. signed with a since-revoked key

    @property
    def verified(self) -> bool:
        return self.fingerprint is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "decision": self.decision,
            "comment": self.comment,
            "time": self.time,
            "fingerprint": self.fingerprint,
            "verified": self.verified,
            "note": self.note,
        }


@dataclass
class RequestState:
    id: int
    model: str
    version: int
    from_stage: str
    to_stage: str
    status: str
    requester: str
    requester_key: str | None
    required: int | None  # None for requests made before signing
    comment: str
    time: float
    seq: int
    evidence: dict[str, Any] | None = None
    evidence_digest: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    signoffs: list[Signoff] = field(default_factory=list)
    reason: str | None = None  # why it was refused at approval or transition
    not_counted: list[tuple[str, float, str]] = field(default_factory=list)  # who, when, why
    answers: list[dict[str, Any]] = field(default_factory=list)  # monitored batches it answers

    @property
    def signed(self) -> bool:
        return self.requester_key is not None

    @property
    def approvals(self) -> list[Signoff]:
        return [s for s in self.signoffs if s.decision == "approve"]


@dataclass(frozen=True)
class Revocation:
    seq: int
    principal: str
    by: str


@dataclass
class Ledger:
    """The registry as the log says it is, up to entry ``seq`` (hash ``head``)."""

    signers: AllowedSigners | None
    marker: int | None = None  # seq of the "signing" marker: unsigned entries before it are old
    seq: int = 0
    head: str = GENESIS
    tiers: dict[str, str | None] = field(default_factory=dict)
    versions: dict[tuple[str, int], VersionState] = field(default_factory=dict)
    requests: dict[int, RequestState] = field(default_factory=dict)
    revoked: dict[str, Revocation] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    broken: Finding | None = None  # the first break of the hash chain; nothing after it counts
    signed: int = 0
    legacy: int = 0
    labelled: int = 0
    principals: set[str] = field(default_factory=set)
    hashes: dict[int, str] = field(default_factory=dict)
    checks: dict[str, bytes | str] = field(default_factory=dict)  # signature results by hash
    # entries imported from other stores: how far each store's own chain got (seq, hash), the
    # stores whose chain broke, and what their versions and requests are numbered here
    origins: dict[str, tuple[int, str]] = field(default_factory=dict)
    broken_origins: set[str] = field(default_factory=set)
    version_numbers: dict[tuple[str, str, int], int] = field(default_factory=dict)
    request_numbers: dict[tuple[str, int], int] = field(default_factory=dict)
    imported: int = 0

    # ----------------------------------------------------------------- walking
    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if self.broken is not None:
                return
            if not self._chained(entry):
                return
            self.seq, self.head = entry.seq, entry.hash
            self.hashes[entry.seq] = entry.hash
            self._take(entry)

    def _chained(self, entry: Entry) -> bool:
        problem = chain_problem(entry, self.seq, self.head)
        if problem is None:
            return True
        self.broken = Finding(f"entry {entry.seq}", problem, entry.seq)
        self.findings.append(self.broken)
        return False

    def _take(self, entry: Entry) -> None:
        if entry.signature is None and entry.action == IMPORT:
            self._import(entry)
            return
        if entry.signature is None:
            if self.marker is not None and entry.seq < self.marker:
                self.legacy += 1
                self._apply(entry, entry.fields(), None)
            elif entry.action == SIGNING_MARKER and entry.seq == self.marker:
                pass
            elif entry.action in LABELLED_ACTIONS:
                self.labelled += 1
            else:
                self._fail(entry, "unsigned: registry statements must be signed")
            return
        try:
            fields, key = check_statement(entry, self.checks.pop(entry.hash, None))
            signed = self.identify(entry, key)
        except Invalid as exc:
            self._fail(entry, str(exc))
            return
        self.signed += 1
        self.principals.add(signed.principal)
        if signed.note:
            self.findings.append(Finding(entry.where, signed.note, entry.seq, fatal=False))
        try:
            self._apply(entry, fields, signed)
        except Invalid as exc:
            self._fail(entry, str(exc))

    def _import(self, wrapper: Entry) -> None:
        """An entry pushed from another store: it must continue that store's own chain, its
        signature must hold, and, renumbered, it must hold here like a statement made here."""
        try:
            item = imported(wrapper)
        except Invalid as exc:
            self._fail(wrapper, str(exc))
            return
        inner, origin = item.entry, item.origin
        seq, head = self.origins.get(origin, (0, GENESIS))
        problem = chain_problem(inner, seq, head, carried=True)
        if origin in self.broken_origins:
            problem = "an earlier entry of that store did not hold"
        if problem is not None:
            self.broken_origins.add(origin)
            self._fail(wrapper, f"imported from {item.source}: {problem}")
            return
        self.origins[origin] = (inner.seq, inner.hash)
        self.imported += 1
        view = replace(inner, seq=wrapper.seq)  # ordered, and reported, by its place here
        if inner.signature is None:
            if inner.action in LABELLED_ACTIONS:
                self.labelled += 1
            elif inner.action != SIGNING_MARKER:
                self._fail(view, f"imported from {item.source} unsigned: statements must be signed")
            return
        try:
            fields, subject = self.renumbered(item, inner.fields())
            if subject != wrapper.subject:
                raise Invalid(f"the import entry names {wrapper.subject}, its statement {subject}")
        except Invalid as exc:
            self._fail(replace(view, payload="{}"), f"imported from {item.source}: {exc}")
            return
        here = replace(view, subject=subject, payload=canonical(fields))
        try:
            _, key = check_statement(inner)
            signed = self.identify(view, key)
        except Invalid as exc:
            self._fail(here, f"imported from {item.source}: {exc}")
            return
        self._keep_numbers(item, fields)
        self.signed += 1
        self.principals.add(signed.principal)
        if signed.note:
            self.findings.append(Finding(here.where, signed.note, here.seq, fatal=False))
        try:
            self._apply(here, fields, signed)
        except Invalid as exc:
            self._fail(here, f"imported from {item.source}: {exc}")

    def _keep_numbers(self, item: Imported, here: dict[str, Any]) -> None:
        """Remember the numbers a register or request statement got here (``here``: its
        renumbered fields), for the statements of that store that name them later."""
        theirs = item.entry.fields()
        if item.entry.action == "register":
            key = (item.origin, str(theirs.get("model")), int(theirs["version"]))
            self.version_numbers[key] = int(here["version"])
        elif item.entry.action == "request":
            self.request_numbers[(item.origin, int(theirs["request"]))] = int(here["request"])

    def renumbered(self, item: Imported, fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """An imported statement's fields with the version and request numbers they have
        here, and its subject here."""
        action = item.entry.action
        if action not in VERSIONED_ACTIONS:  # a card edit of a version follows its number
            model, _, number = item.entry.subject.rpartition(":")
            if number.isdigit() and (item.origin, model, int(number)) in self.version_numbers:
                return fields, f"{model}:{self.version_numbers[(item.origin, model, int(number))]}"
            return fields, item.entry.subject
        model = str(fields.get("model"))
        out = dict(fields)
        try:
            theirs = int(fields.get("version"))  # type: ignore[arg-type]
            asked = int(fields.get("request", 0))
        except (TypeError, ValueError):
            raise Invalid("the statement names no version number") from None
        key = (item.origin, model, theirs)
        if action == "register":
            version = item.renumber.get("version")
            if version is None or version < 1:
                raise Invalid(f"the import entry gives {model}:{theirs} no version number here")
        elif key in self.version_numbers:
            version = self.version_numbers[key]
        else:
            raise Invalid(f"names {model}:{theirs} of {item.source}, which was not imported")
        out["version"] = version
        if action != "register":
            if action == "request":
                request = item.renumber.get("request")
                if request is None or request < 1:
                    raise Invalid(f"the import entry gives request #{asked} no number here")
            elif (item.origin, asked) in self.request_numbers:
                request = self.request_numbers[(item.origin, asked)]
            else:
                raise Invalid(f"names request #{asked} of {item.source}, which was not imported")
            out["request"] = request
        return out, f"{model}:{version}"

    def identify(self, entry: Entry, key: bytes) -> Signed:
        """The principal that signed ``entry`` with ``key``, by the allowed signers."""
        from ..identity.sshsig import fingerprint

        fp = fingerprint(key)
        signers = self.signers
        if signers is None:
            raise Invalid(f"signed by key {fp}, but there is no allowed-signers file to check it")
        if entry.actor in signers.principals_for(key, at=entry.ts):
            return Signed(entry.actor, fp, key)
        lines = signers.for_key(key)
        if lines:
            shown = ", ".join(f"line {s.line_no}: {','.join(s.principals)}" for s in lines)
            raise Invalid(
                f"key {fp} may not sign as {entry.actor} for mlops-jupyter at that time "
                f"({signers.path} {shown})"
            )
        revocation = self.revoked.get(fp)
        if revocation is not None and revocation.principal == entry.actor:
            if entry.seq < revocation.seq:
                note = (
                    f"signed by {entry.actor} with a since-revoked key {fp} (revoked at entry "
                    f"{revocation.seq} by {revocation.by})"
                )
                return Signed(entry.actor, fp, key, note)
            raise Invalid(
                f"signed with {entry.actor}'s key {fp}, revoked at entry {revocation.seq} by "
                f"{revocation.by}"
            )
        raise Invalid(
            f"signed as {entry.actor} by key {fp}, which is not in the allowed signers "
            f"({signers.path})"
        )

    def _fail(self, entry: Entry, message: str) -> None:
        self.findings.append(Finding(entry.where, message, entry.seq))
        if entry.action in ("approve", "reject"):  # shown beside the request: "not counted"
            try:
                request = self.requests.get(int(entry.fields().get("request", 0)))
            except (ValueError, TypeError):
                request = None
            if request is not None:
                request.not_counted.append((entry.actor, entry.ts, message))

    # ---------------------------------------------------------------- applying
    def _apply(self, entry: Entry, fields: dict[str, Any], signed: Signed | None) -> None:
        action = entry.action
        if action in ("register", "request", "approve", "reject", "transition", "refused"):
            model, _, number = entry.subject.rpartition(":")
            if not model or not number.isdigit():
                raise Invalid(f"subject {entry.subject!r} is not MODEL:VERSION")
            version = int(number)
            if signed is not None and (fields.get("model"), fields.get("version")) != (
                model,
                version,
            ):
                raise Invalid("the signed statement names another model version than its entry")
            getattr(self, f"_{action}")(entry, fields, signed, model, version)
        elif action == "gates" and signed is None:  # before signing: gate results on their own
            request = self.requests.get(int(fields.get("request", 0)))
            if request is not None:
                request.gates = list(fields.get("results") or [])
                if not all(g.get("passed") for g in request.gates):
                    request.status = "blocked"

    def _register(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        if (model, version) in self.versions:
            raise Invalid(f"registers {model}:{version} a second time")
        known = self.tiers.get(model)
        if s is not None and known is not None and f.get("tier") != known:
            raise Invalid(f"gives {model} risk tier {f.get('tier')}, set earlier as {known}")
        if known is None:  # unsigned registrations before v3 named no tier
            self.tiers[model] = f.get("tier")
        self.versions[(model, version)] = VersionState(
            model,
            version,
            str(f.get("run_id")),
            f.get("blob"),
            "none",
            entry.actor,
            entry.ts,
            s.fingerprint if s else None,
            entry.seq,
        )

    def _request(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        target = self._version(model, version)
        request_id = int(f.get("request", 0))
        if request_id in self.requests:
            raise Invalid(f"opens request #{request_id} a second time")
        if s is None:  # before signing
            if self.tiers.get(model) is None:
                self.tiers[model] = f.get("tier")
            self.requests[request_id] = RequestState(
                request_id,
                model,
                version,
                target.stage,
                str(f.get("to")),
                "pending",
                entry.actor,
                None,
                None,
                str(f.get("comment") or ""),
                entry.ts,
                entry.seq,
            )
            return
        if f.get("from") != target.stage:
            raise Invalid(
                f"requests from stage {f.get('from')}, but {model}:{version} is in {target.stage}"
            )
        self.requests[request_id] = RequestState(
            request_id,
            model,
            version,
            target.stage,
            str(f.get("to")),
            "pending" if f.get("gates_passed") else "blocked",
            entry.actor,
            s.fingerprint,
            int(f.get("required", 0)),
            str(f.get("comment") or ""),
            entry.ts,
            entry.seq,
            f.get("evidence"),
            f.get("evidence_digest"),
            list(f.get("gates") or []),
            answers=list(f.get("answers") or []),
        )

    def _open_request(self, f: dict[str, Any], model: str, version: int) -> RequestState:
        request_id = int(f.get("request", 0))
        request = self.requests.get(request_id)
        if request is None or (request.model, request.version) != (model, version):
            raise Invalid(
                f"names request #{request_id}, which the log does not open for {model}:{version}"
            )
        if request.status != "pending":
            raise Invalid(f"acts on request #{request_id}, which is {request.status}")
        return request

    def _approve(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        request = self._open_request(f, model, version)
        comment = str(f.get("comment") or "")
        if s is not None:
            if not request.signed:
                raise Invalid(
                    f"approves request #{request.id}, made before signing existed: "
                    "it does not count"
                )
            if s.principal == request.requester or s.fingerprint == request.requester_key:
                raise Invalid(
                    f"{s.principal} requested #{request.id}: their own approval "
                    "does not count (four eyes)"
                )
            for other in request.approvals:
                if s.principal == other.principal or s.fingerprint == other.fingerprint:
                    raise Invalid(f"{s.principal} already approved #{request.id}: counted once")
            if f.get("evidence_digest") != request.evidence_digest:
                raise Invalid(f"approves other evidence than request #{request.id} names")
        request.signoffs.append(_signoff(entry, "approve", comment, s))

    def _reject(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        request = self._open_request(f, model, version)
        request.status = "rejected"
        request.signoffs.append(_signoff(entry, "reject", str(f.get("comment") or ""), s))

    def _refused(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        request = self._open_request(f, model, version)
        request.status = "blocked"
        request.reason = str(f.get("reason") or "")

    def _transition(
        self, entry: Entry, f: dict[str, Any], s: Signed | None, model: str, version: int
    ) -> None:
        request = self._open_request(f, model, version)
        target = self._version(model, version)
        if s is not None:
            if not request.signed:
                raise Invalid(f"applies request #{request.id}, made before signing existed")
            have, need = len(request.approvals), request.required or 0
            if have < need:
                raise Invalid(
                    f"applies request #{request.id} with {have} of the {need} sign-offs it needs"
                )
            if f.get("evidence_digest") != request.evidence_digest:
                raise Invalid(f"applies request #{request.id} on other evidence than it names")
            if f.get("from") != target.stage:
                raise Invalid(
                    f"moves {model}:{version} from {f.get('from')}, but it is in {target.stage}"
                )
        if request.to_stage == "production":
            for other in self.versions.values():
                if other.model == model and other.stage == "production" and other is not target:
                    other.stage = "archived"
        target.stage = request.to_stage
        request.status = "applied"

    def _version(self, model: str, version: int) -> VersionState:
        target = self.versions.get((model, version))
        if target is None:
            raise Invalid(f"names {model}:{version}, which no register statement creates")
        return target

    # -------------------------------------------------------------- questions
    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.fatal]

    def production(self, model: str) -> VersionState | None:
        return next(
            (v for v in self.versions.values() if v.model == model and v.stage == "production"),
            None,
        )


def chain_problem(entry: Entry, seq: int, head: str, carried: bool = False) -> str | None:
    """Why ``entry`` does not follow entry ``seq`` (hash ``head``) of its chain, if it does
    not; ``carried``: the chain is another store's, carried in import entries."""
    if entry.seq != seq + 1:
        return f"{'its entry' if carried else 'entry'} {seq + 1} is missing"
    if entry.prev_hash != head:
        before = "that store's entry" if carried else "the entry"
        return f"its previous-hash does not match {before} before"
    digest = entry_hash(
        entry.prev_hash, entry.seq, entry.ts, entry.actor, entry.action, entry.subject,
        entry.payload, entry.signature,
    )  # fmt: skip
    if digest != entry.hash:
        return f"its content was changed ({entry.action} on {entry.subject})"
    return None


def _signoff(entry: Entry, decision: str, comment: str, signed: Signed | None) -> Signoff:
    return Signoff(
        entry.actor,
        decision,
        comment,
        entry.ts,
        entry.seq,
        signed.fingerprint if signed else None,
        signed.note if signed else None,
    )


def revocations(entries: Iterable[Entry], ledger: Ledger) -> None:
    """Record the log's signed ``revoke`` statements (a first pass: they speak for earlier
    entries signed with the revoked key)."""
    for entry in entries:
        if entry.action == IMPORT and entry.signature is None:
            try:
                carried = imported(entry).entry
            except Invalid:
                continue
            if carried.action == "revoke" and carried.signature is not None:
                _revocation(replace(carried, seq=entry.seq), ledger, check=True)
            continue
        if entry.action != "revoke" or entry.signature is None:
            continue
        _revocation(entry, ledger)


def _revocation(entry: Entry, ledger: Ledger, check: bool = False) -> None:
    from ..identity.sshsig import fingerprint, parse_key_line

    try:
        fields, key = check_statement(entry, None if check else ledger.checks.get(entry.hash))
        ledger.identify(entry, key)
        revoked = parse_key_line(str(fields.get("key")))
    except Exception:  # an invalid revocation is reported by the main pass
        return
    ledger.revoked.setdefault(
        fingerprint(revoked),
        Revocation(entry.seq, str(fields.get("revoked_principal")), entry.actor),
    )


def replay(store: Store, signers: AllowedSigners | None, cached: Ledger | None = None) -> Ledger:
    """The ledger of ``store``'s whole log; reuses ``cached`` when the log only grew since."""
    if (
        cached is not None
        and cached.signers is signers
        and cached.broken is None
        and (
            cached.seq == 0
            or store._read("SELECT hash FROM audit_log WHERE seq = ?", (cached.seq,))
            == [(cached.head,)]
        )
    ):
        new = [Entry.from_row(r) for r in store.audit_entries(after=cached.seq)]
        if not any(e.action == "revoke" or e.action == IMPORT for e in new):
            cached.extend(new)
            return cached
    return replay_entries([Entry.from_row(r) for r in store.audit_entries()], signers)


def replay_entries(entries: list[Entry], signers: AllowedSigners | None) -> Ledger:
    """The ledger of a whole log given as entries (a store's, or an exported bundle's)."""
    marker = next(
        (e.seq for e in entries if e.action == SIGNING_MARKER and e.signature is None), None
    )
    ledger = Ledger(signers, marker)
    ledger.checks = signature_checks(entries)
    revocations(entries, ledger)
    ledger.extend(entries)
    ledger.checks.clear()  # entries after a break of the chain are not needed either
    return ledger


def row_findings(store: Store, ledger: Ledger) -> list[Finding]:
    """Every table row that disagrees with the signed log, naming model, version and field."""
    out: list[Finding] = []
    rows = {
        (m, int(v)): (r, b, st)
        for m, v, r, b, st in store._read(
            "SELECT model_name, version, run_id, blob, stage FROM model_versions"
        )
    }
    for key, (run_id, blob, stage) in rows.items():
        ref = f"{key[0]}:{key[1]}"
        state = ledger.versions.get(key)
        if state is None:
            out.append(Finding(f"model_versions {ref}", "no signed register statement names it"))
            continue
        for name, table, logged in (
            ("run_id", run_id, state.run_id),
            ("blob", blob, state.blob),
            ("stage", stage, state.stage),
        ):
            if table != logged:
                out.append(
                    Finding(
                        f"model_versions {ref}",
                        f"{name} is {table!r} in the table but {logged!r} in the signed log",
                    )
                )
    for key in ledger.versions.keys() - rows.keys():
        out.append(Finding(f"model_versions {key[0]}:{key[1]}", "missing from the table"))
    for name, tier in store._read("SELECT name, risk_tier FROM models"):
        logged = ledger.tiers.get(name)
        if logged is not None and tier != logged:
            out.append(
                Finding(
                    f"models {name}",
                    f"risk_tier is {tier!r} in the table but {logged!r} in the signed log",
                )
            )
    signoffs: dict[int, set[tuple[str, str]]] = {}
    for request_id, user, decision in store._read(
        'SELECT request_id, "user", decision FROM signoffs'
    ):
        signoffs.setdefault(int(request_id), set()).add((user, decision))
    for request_id, model, version, status in store._read(
        "SELECT id, model_name, version, status FROM promotion_requests"
    ):
        where = f"promotion_requests #{request_id} ({model}:{version})"
        request = ledger.requests.get(int(request_id))
        if request is None:
            out.append(Finding(where, "no signed request statement opens it"))
            continue
        if status != request.status:
            out.append(
                Finding(
                    where,
                    f"status is {status!r} in the table but {request.status!r} in the signed log",
                )
            )
        logged_signoffs = {(s.principal, s.decision) for s in request.signoffs}
        table_signoffs = signoffs.get(int(request_id), set())
        if table_signoffs != logged_signoffs:
            extra = sorted(f"{u} ({d})" for u, d in table_signoffs - logged_signoffs)
            missing = sorted(f"{u} ({d})" for u, d in logged_signoffs - table_signoffs)
            detail = "; ".join(
                part
                for part in (
                    f"not in the signed log: {', '.join(extra)}" if extra else "",
                    f"missing from the table: {', '.join(missing)}" if missing else "",
                )
                if part
            )
            out.append(Finding(f"signoffs of request #{request_id} ({model}:{version})", detail))
    return out
