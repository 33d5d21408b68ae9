"""Model versions and their promotion through policy gates and four-eyes sign-off.

Every registry action is a statement signed with the actor's SSH key (see
:mod:`mlops_jupyter.registry.statements`); the actor is the principal the project's
allowed-signers file gives that key, never a typed name. State is read from the signed log
(:mod:`mlops_jupyter.registry.ledger`) and the tables are checked against it on every read.
Each state change happens in one write transaction together with its signed audit entry, so
two approvals racing from two processes apply exactly one transition; afterwards the new head
is written to the anchor file committed with the project.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BlobIntegrityError, IdentityError, MLOpsError
from ..store import audit_chain
from .anchor import ANCHOR_FILENAME, read_anchor, write_anchor
from .gates import GateResult, evaluate, fairness
from .ledger import Ledger, RequestState, Signoff, VersionState, replay, row_findings
from .policy import STAGES, TIERS, FairnessRule, Policy, governance_dir, load_policy
from .statements import IMPORT, digest

if TYPE_CHECKING:
    import sqlite3

    from ..identity.allowed_signers import AllowedSigners
    from ..identity.keys import Signer
    from ..store import Store

ALLOWED_SIGNERS_FILENAME = "allowed_signers"
_EVIDENCE_NAMES = {
    "run_id": "the run",
    "blob": "the model file",
    "train": "the training data",
    "eval": "the evaluation data",
    "sections": "the card sections",
    "explanation": "the SHAP explanation",
    "production": "the production version",
    "rules": "the policy for this stage",
    "gates": "the gate results",
}


class RegistryError(MLOpsError):
    """A registry action was refused (the message says why and what to do)."""


class RegistryIntegrityError(RegistryError):
    """The registry tables, the audit log and its anchor do not agree: something was changed
    outside mlops-jupyter. The message names the model, version and field."""


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    run_id: str
    stage: str
    blob: str | None
    created_by: str | None
    created_at: float
    fingerprint: str | None = None  # the registering key; None before signing existed

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass
class PromotionRequest:
    id: int
    model: str
    version: int
    from_stage: str
    to_stage: str
    status: str  # pending | blocked | rejected | applied
    requester: str
    comment: str | None
    gates: list[GateResult] = field(default_factory=list)
    required_signoffs: int = 0
    approvals: list[str] = field(default_factory=list)  # principals whose sign-off counts
    audit_head: str = ""
    requester_key: str | None = None
    signoffs: list[Signoff] = field(default_factory=list)
    not_counted: list[tuple[str, float, str]] = field(default_factory=list)
    reason: str | None = None
    created_at: float = 0.0
    answers: list[dict[str, Any]] = field(default_factory=list)  # the drift it answers

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def __repr__(self) -> str:
        gates = ", ".join(f"{g.gate}: {'ok' if g.passed else 'FAILED'}" for g in self.gates)
        return (
            f"<PromotionRequest #{self.id} {self.model}:{self.version} {self.from_stage} -> "
            f"{self.to_stage} {self.status}; approvals {len(self.approvals)}/"
            f"{self.required_signoffs}; {gates or 'no gates'}>"
        )


_SIGNERS_CACHE: dict[Path, tuple[bytes, AllowedSigners]] = {}


def load_allowed_signers(path: Path) -> AllowedSigners | None:
    """The allowed signers at ``path`` (one object per file content), None if there is none."""
    from ..identity.allowed_signers import AllowedSigners

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IdentityError(
            f"cannot read the allowed-signers file {path}: {exc.strerror}"
        ) from None
    cached = _SIGNERS_CACHE.get(path)
    if cached is not None and cached[0] == data:
        return cached[1]
    signers = AllowedSigners.parse(data.decode("utf-8"), path)
    _SIGNERS_CACHE[path] = (data, signers)
    return signers


class Registry:
    """The registry of one store. Reads need no key; actions sign with ``signer`` (default:
    the configured key, ``~/.ssh/id_ed25519`` or ssh-agent). ``label`` is recorded beside the
    principal, never in place of it."""

    def __init__(
        self,
        store: Store,
        signer: Signer | None = None,
        policy: Policy | None = None,
        *,
        label: str | None = None,
        allowed_signers: str | Path | None = None,
    ) -> None:
        if isinstance(signer, str):
            raise TypeError(
                "Registry(store, signer): identities are keys, not names; pass a Signer "
                "(mlops_jupyter.identity.load_signer(PATH)) or None for the configured key"
            )
        from ..config import settings

        configured = settings()
        self.store = store
        self.label = label
        self._signer = signer
        self._key_path = configured.signing_key
        self._policy = policy
        self.directory = governance_dir(store.directory)
        chosen = allowed_signers or configured.allowed_signers
        self.allowed_signers_path = (
            Path(chosen).expanduser() if chosen else self.directory / ALLOWED_SIGNERS_FILENAME
        )
        self.anchor_path = self.directory / ANCHOR_FILENAME

    @property
    def policy(self) -> Policy:
        return self._policy or load_policy(self.store.directory)

    # ----------------------------------------------------------------- identity
    @property
    def signers(self) -> AllowedSigners | None:
        return load_allowed_signers(self.allowed_signers_path)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            from ..identity.keys import load_signer

            self._signer = load_signer(self._key_path)
        return self._signer

    @property
    def principal(self) -> str:
        """Who this registry acts as: the allowed signers' principal of the signing key."""
        from ..identity.sshsig import key_line

        signer = self.signer
        signers = self.signers
        if signers is None:
            raise IdentityError(
                f"no allowed-signers file at {self.allowed_signers_path}: nobody may sign "
                "registry actions yet. Add yourself with `mlops-jupyter keys init --principal "
                "NAME` and commit the file with the project"
            )
        principals = signers.principals_for(signer.key_blob, at=time.time())
        if not principals:
            raise IdentityError(
                f"your key {signer.fingerprint} ({signer.source}) is not in the allowed signers "
                f'{self.allowed_signers_path}: add the line `NAME namespaces="mlops-jupyter" '
                f"{key_line(signer.key_blob)}` (or run `mlops-jupyter keys init --principal "
                "NAME`) and have it committed"
            )
        return principals[0]

    def whoami(self) -> dict[str, Any]:
        """The acting identity, or the reason there is none (for panels and receipts)."""
        try:
            return {
                "principal": self.principal,
                "fingerprint": self.signer.fingerprint,
                "source": self.signer.source,
                "problem": None,
            }
        except IdentityError as exc:
            fingerprint = self._signer.fingerprint if self._signer is not None else None
            return {
                "principal": None,
                "fingerprint": fingerprint,
                "source": None,
                "problem": str(exc),
            }

    # ------------------------------------------------------------------ ledger
    def ledger(self) -> Ledger:
        """The registry as the signed log says it is (cached while the log only grows)."""
        ledger = replay(self.store, self.signers, self.store.cache.get("ledger"))
        self.store.cache["ledger"] = ledger
        return ledger

    def checked(self) -> Ledger:
        """The ledger, after checking the chain, the anchor and every registry row against it;
        raises :class:`RegistryIntegrityError` naming what disagrees."""
        ledger = self.ledger()
        hint = "; run `mlops-jupyter audit verify` for the full report"
        if ledger.broken is not None:
            raise RegistryIntegrityError(f"the audit log is broken at {ledger.broken}{hint}")
        anchor = read_anchor(self.anchor_path, self.store.store_id)
        if anchor is not None and ledger.hashes.get(anchor.seq) != anchor.head:
            raise RegistryIntegrityError(
                f"the audit log does not contain the head anchored in {anchor.path} (entry "
                f"{anchor.seq}, {anchor.head[:16]}…): entries were removed or the log was "
                f"rewritten{hint}"
            )
        problems = row_findings(self.store, ledger)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RegistryIntegrityError(
                f"the registry does not match its signed audit log: {problems[0]}{more}{hint}"
            )
        return ledger

    def _append(self, conn: sqlite3.Connection, action: str, subject: str, **fields: Any) -> str:
        from ..identity import sshsig

        signer, principal = self.signer, self.principal
        payload = {"action": action, "principal": principal, "key": signer.fingerprint, **fields}
        if self.label and self.label != principal:
            payload["label"] = self.label
        return audit_chain.append(
            conn, principal, action, subject, payload, lambda data: sshsig.sign(signer, data)
        )

    def anchor(self) -> None:
        """Write the current head to the anchor file (only ever forward)."""
        seq, head = audit_chain.last(self.store.conn)
        write_anchor(self.anchor_path, self.store.store_id, seq, head)

    # ----------------------------------------------------------------- versions
    def register(self, run_id: str, model: str, risk_tier: str | None = None) -> ModelVersion:
        """Register the model a run saved as the next version of ``model`` (signed)."""
        if not model or not model.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise RegistryError(
                f"invalid model name {model!r}: use letters, digits, '-', '_' and '.'"
            )
        if risk_tier is not None and risk_tier not in TIERS:
            raise RegistryError(f"risk tier must be one of {', '.join(TIERS)}, not {risk_tier!r}")
        run = self.store.get_run(run_id)
        artifact = next((a for a in run.artifacts if a.kind == "model"), None)
        if artifact is None:
            raise RegistryError(
                f"run {run.run_id[:8]} saved no model: track the cell that fits it first"
            )
        if run.status != "finished":
            raise RegistryError(f"run {run.run_id[:8]} is {run.status}, not finished")
        try:
            self.store.blobs.verify(artifact.blob)
        except BlobIntegrityError as exc:
            raise RegistryError(
                f"run {run.run_id[:8]}'s model cannot be registered: {exc}. Track the cell "
                "that fits it again and register the new run"
            ) from exc
        principal = self.principal  # a missing key is refused before anything is written
        now = time.time()
        with self.store.transaction() as conn:
            ledger = self.checked()
            known = model in ledger.tiers
            tier = ledger.tiers.get(model) or self._table_tier(model) or risk_tier or "medium"
            if known and risk_tier is not None and risk_tier != tier:
                raise RegistryError(
                    f"model {model} is registered with risk tier {tier}; the tier is set once"
                )
            if not known:
                conn.execute(
                    "INSERT INTO models (name, risk_tier, created_at, created_by) "
                    "VALUES (?, ?, ?, ?)",
                    (model, tier, now, principal),
                )
            version = 1 + max((v for m, v in ledger.versions if m == model), default=0)
            conn.execute(
                "INSERT INTO model_versions (model_name, version, run_id, blob, stage, "
                "created_at, created_by) VALUES (?, ?, ?, ?, 'none', ?, ?)",
                (model, version, run.run_id, artifact.blob, now, principal),
            )
            self._append(
                conn,
                "register",
                f"{model}:{version}",
                model=model,
                version=version,
                run_id=run.run_id,
                blob=artifact.blob,
                tier=tier,
                **_data_hashes(run),
            )
        self.anchor()
        return self.version(model, version)

    def version(self, model: str, version: int) -> ModelVersion:
        state = self.checked().versions.get((model, int(version)))
        if state is None:
            raise RegistryError(f"no version {version} of model {model!r}")
        return _model_version(state)

    def current(self, model: str, stage: str = "production") -> ModelVersion | None:
        found = [
            v for v in self.checked().versions.values() if v.model == model and v.stage == stage
        ]
        return _model_version(max(found, key=lambda v: v.version)) if found else None

    def models(self) -> list[dict[str, Any]]:
        ledger = self.checked()
        out = []
        for name in sorted(ledger.tiers):
            versions = [v for v in ledger.versions.values() if v.model == name]
            stages = {v.stage: v.version for v in sorted(versions, key=lambda v: v.version)}
            out.append(
                {
                    "model": name,
                    "risk_tier": ledger.tiers[name] or self._table_tier(name),
                    "versions": len(versions),
                    "production": stages.get("production"),
                    "staging": stages.get("staging"),
                }
            )
        return out

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of the model, oldest first."""
        found = [v for v in self.checked().versions.values() if v.model == model]
        return [_model_version(v) for v in sorted(found, key=lambda v: v.version)]

    def requests(self, status: str | None = None, limit: int = 200) -> list[PromotionRequest]:
        """Promotion requests, newest first; ``status`` keeps one kind (``pending``...)."""
        ledger = self.checked()
        chosen = [r for r in ledger.requests.values() if status is None or r.status == status]
        chosen.sort(key=lambda r: r.id, reverse=True)
        head = ledger.head
        return [_request(r, head) for r in chosen[: int(limit)]]

    def request(self, request_id: int) -> PromotionRequest:
        ledger = self.checked()
        state = ledger.requests.get(int(request_id))
        if state is None:
            raise RegistryError(f"no promotion request #{request_id}")
        return _request(state, ledger.head)

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every audit entry about the model's versions and requests, oldest first, with
        whether its signature verified (``verified``) and, if not, why (``problem``)."""
        ledger = self.checked()
        problems = {f.seq: f.message for f in ledger.findings if f.fatal and f.seq is not None}
        out = []
        for seq, ts, actor, action, subject, payload, signature in self.store._read(
            "SELECT seq, ts, actor, action, subject, payload, signature FROM audit_log "
            "WHERE subject LIKE ? ORDER BY seq",
            (f"{model}:%",),
        ):
            fields = json.loads(payload)
            origin = None
            if action == IMPORT and signature is None:  # pushed from another store
                carried = fields.get("entry") or {}
                origin = {"store": fields.get("origin"), "where": fields.get("source"),
                          "seq": carried.get("seq")}  # fmt: skip
                action, signature = carried.get("action"), carried.get("signature")
                fields = json.loads(carried.get("payload") or "{}")
                fields["version"] = int(subject.rpartition(":")[2])  # its numbers here
                if "request" in fields:
                    key = (str(origin["store"]), int(fields["request"]))
                    fields["request"] = ledger.request_numbers.get(key, fields["request"])
            for name in ("prev", "time", "principal", "action"):
                fields.pop(name, None)
            out.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "actor": actor,
                    "action": action,
                    "subject": subject,
                    "signed": signature is not None,
                    "verified": signature is not None and seq not in problems,
                    "problem": problems.get(seq),
                    "imported_from": origin,
                    **fields,
                }
            )
        return out

    # --------------------------------------------------------------- promotion
    def request_promotion(
        self,
        model: str,
        version: int,
        to_stage: str,
        comment: str = "",
        answers: Sequence[str] = (),
    ) -> PromotionRequest:
        """Run the gates for ``model:version`` -> ``to_stage``; open a request if they pass.

        ``answers``: monitored batches of the model (batch ids or row ids) that drifted or
        warned, which this version answers; the signed request cites them."""
        if to_stage not in STAGES:
            raise RegistryError(f"target stage must be one of {', '.join(STAGES)}")
        cited = [self._cited_batch(model, int(version), name) for name in answers]
        principal = self.principal
        with self.store.transaction() as conn:
            ledger = self.checked()
            target = ledger.versions.get((model, int(version)))
            if target is None:
                raise RegistryError(f"no version {version} of model {model!r}")
            if target.stage == to_stage:
                raise RegistryError(f"{model}:{version} is already in {to_stage}")
            tier = ledger.tiers.get(model) or self._table_tier(model) or "medium"
            rules = self.policy.for_stage(tier, to_stage)
            evidence, gates = self._evidence(ledger, target, tier, to_stage)
            passed = all(g.passed for g in gates)
            now = time.time()
            results = [g.to_dict() for g in gates]
            cursor = conn.execute(
                "INSERT INTO promotion_requests (model_name, version, from_stage, to_stage, "
                "status, requester, comment, gate_results, required_signoffs, created_at, "
                "closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    model,
                    version,
                    target.stage,
                    to_stage,
                    "pending" if passed else "blocked",
                    principal,
                    comment,
                    json.dumps(results),
                    rules.signoffs,
                    now,
                    None if passed else now,
                ),
            )
            request_id = int(cursor.fetchone()[0])
            self._append(
                conn,
                "request",
                f"{model}:{version}",
                model=model,
                version=int(version),
                request=request_id,
                to=to_stage,
                tier=tier,
                required=rules.signoffs,
                comment=comment,
                gates=results,
                gates_passed=passed,
                evidence=evidence,
                evidence_digest=digest(evidence),
                **{"from": target.stage},
                **({"answers": cited} if cited else {}),
            )
            if passed and rules.signoffs == 0:
                self._transition(conn, ledger, request_id, target, to_stage, digest(evidence))
        self.anchor()
        return self.request(request_id)

    def _cited_batch(self, model: str, version: int, name: str) -> dict[str, Any]:
        """What a request cites of the monitored batch ``name`` (its batch id or row id)."""
        rows = self.store.monitor_batches(model, batch_id=name, limit=1)
        if not rows:
            rows = [b for b in self.store.monitor_batches(model) if b["id"] == name]
        if not rows:
            recent = [b["batch_id"] for b in self.store.monitor_batches(model, limit=5)]
            raise RegistryError(
                f"no monitored batch {name!r} of model {model!r} to answer (recent: "
                f"{', '.join(dict.fromkeys(recent)) or 'none'})"
            )
        batch = rows[0]
        if batch["decision"] == "ok":
            raise RegistryError(
                f"batch {name!r} of {model}:{batch['version']} decided ok: there is no drift "
                "for a new version to answer"
            )
        if int(batch["version"]) == version:
            raise RegistryError(
                f"batch {name!r} was served by {model}:{version} itself; a version answers "
                "the drift of another"
            )
        return {
            "batch": batch["id"],
            "batch_id": batch["batch_id"],
            "version": int(batch["version"]),
            "data_hash": batch["data_hash"],
            "decision": batch["decision"],
            "drift_share": batch["drift_share"],
            "drifting": [
                f["feature"] for f in batch["features"] or [] if f.get("status") == "drift"
            ],
            "recorded_at": batch["created_at"],
        }

    def approve(self, request_id: int, comment: str = "") -> PromotionRequest:
        """Sign off; the gates run again, and the transition applies when the required number
        of distinct principals (never the requester) has signed."""
        principal, fingerprint = self.principal, self.signer.fingerprint
        refused = None
        with self.store.transaction() as conn:
            ledger = self.checked()
            request = self._open(ledger, request_id)
            if principal == request.requester or fingerprint == request.requester_key:
                raise RegistryError(
                    f"{principal} requested #{request_id} and cannot approve it (four eyes): "
                    "another person must sign off with their own key"
                )
            tier = ledger.tiers.get(request.model) or self._table_tier(request.model) or "medium"
            approvers = self.policy.for_stage(tier, request.to_stage).approvers
            if approvers and principal not in approvers:
                raise RegistryError(
                    f"{principal} may not approve {request.to_stage} promotions of {tier}-risk "
                    f"models; approvers: {', '.join(approvers)}"
                )
            for other in request.approvals:
                if principal == other.principal or fingerprint == other.fingerprint:
                    raise RegistryError(f"{principal} already signed request #{request_id}")
            target = ledger.versions[(request.model, request.version)]
            evidence, gates = self._evidence(ledger, target, tier, request.to_stage)
            refused = _what_changed(request, evidence, gates)
            subject = f"{request.model}:{request.version}"
            if refused is not None:
                self._refuse(conn, request, subject, refused, evidence)
            else:
                conn.execute(
                    'INSERT INTO signoffs (request_id, "user", decision, comment, created_at) '
                    "VALUES (?, ?, 'approve', ?, ?)",
                    (request_id, principal, comment, time.time()),
                )
                self._append(
                    conn,
                    "approve",
                    subject,
                    model=request.model,
                    version=request.version,
                    request=request_id,
                    comment=comment,
                    blob=target.blob,
                    run_id=target.run_id,
                    evidence_digest=request.evidence_digest,
                )
                if len(request.approvals) + 1 >= (request.required or 0):
                    self._transition(
                        conn,
                        ledger,
                        request_id,
                        target,
                        request.to_stage,
                        request.evidence_digest or "",
                    )
        self.anchor()
        if refused is not None:
            raise RegistryError(
                f"request #{request_id} is blocked: {refused}. Nothing was approved; fix it and "
                "request the promotion again"
            )
        return self.request(request_id)

    def reject(self, request_id: int, comment: str) -> PromotionRequest:
        """One rejection closes the request."""
        if not comment.strip():
            raise RegistryError("a rejection needs a comment saying why")
        principal = self.principal
        with self.store.transaction() as conn:
            ledger = self.checked()
            request = self._open(ledger, request_id)
            if any(s.principal == principal for s in request.signoffs):
                raise RegistryError(f"{principal} already signed request #{request_id}")
            conn.execute(
                'INSERT INTO signoffs (request_id, "user", decision, comment, created_at) '
                "VALUES (?, ?, 'reject', ?, ?)",
                (request_id, principal, comment, time.time()),
            )
            conn.execute(
                "UPDATE promotion_requests SET status = 'rejected', closed_at = ? WHERE id = ?",
                (time.time(), request_id),
            )
            self._append(
                conn,
                "reject",
                f"{request.model}:{request.version}",
                model=request.model,
                version=request.version,
                request=request_id,
                comment=comment,
            )
        self.anchor()
        return self.request(request_id)

    def revoke(self, who: str, reason: str = "") -> list[str]:
        """Revoke a principal's key(s), or one key by fingerprint (``SHA256:...``): a signed
        ``revoke`` statement records when, then the lines leave the allowed signers. Statements
        signed with the key before stay valid ("signed with a since-revoked key"); later ones
        fail. A key already removed by hand is found by its fingerprint in the log."""
        from ..identity.allowed_signers import remove_signer
        from ..identity.sshsig import fingerprint, key_line, signature_key

        signers = self.signers
        targets: dict[str, tuple[str, bytes]] = {}  # fingerprint -> (principal, key)
        for line in signers.entries if signers is not None else []:
            if who in (line.fingerprint, *line.principals):
                targets[line.fingerprint] = (line.principal, line.key_blob)
        if not targets and who.startswith("SHA256:"):
            for row in self.store._read(
                "SELECT actor, signature FROM audit_log WHERE signature IS NOT NULL"
            ):
                key = signature_key(row[1])
                if fingerprint(key) == who:
                    targets[who] = (str(row[0]), key)
                    break
        if not targets:
            raise RegistryError(
                f"nothing to revoke: {who!r} is neither a principal nor a key fingerprint in "
                f"{self.allowed_signers_path} or the audit log"
            )
        me = self.signer.fingerprint
        if me in targets:
            raise RegistryError(
                "you cannot revoke the key you sign with: another allowed signer must (or add "
                "your new key first and sign the revocation with it)"
            )
        with self.store.transaction() as conn:
            self.checked()
            for fp, (principal, key) in sorted(targets.items()):
                self._append(
                    conn,
                    "revoke",
                    f"key:{fp}",
                    revoked_principal=principal,
                    key=key_line(key),
                    fingerprint=fp,
                    reason=reason,
                )
        for fp in targets:
            remove_signer(self.allowed_signers_path, fp)
        self.anchor()
        return sorted(targets)

    # ---------------------------------------------------------------- internals
    def _table_tier(self, model: str) -> str | None:
        """The tier in the models table: the only record of it for models registered before
        registry statements were signed."""
        rows = self.store._read("SELECT risk_tier FROM models WHERE name = ?", (model,))
        return str(rows[0][0]) if rows else None

    def _open(self, ledger: Ledger, request_id: int) -> RequestState:
        request = ledger.requests.get(int(request_id))
        if request is None:
            raise RegistryError(f"no promotion request #{request_id}")
        if request.status != "pending":
            raise RegistryError(f"request #{request_id} is {request.status}, no longer open")
        if not request.signed:
            raise RegistryError(
                f"request #{request_id} was made before registry actions were signed and cannot "
                "be signed off; request the promotion again"
            )
        return request

    def _evidence(
        self, ledger: Ledger, target: VersionState, tier: str, to_stage: str
    ) -> tuple[dict[str, Any], list[GateResult]]:
        """What the gates look at, and their results, as of now."""
        rules = self.policy.for_stage(tier, to_stage)
        run = self.store.get_run(target.run_id)
        ref = f"{target.model}:{target.version}"
        written = self.store.card_sections_of(ref, run.run_id)  # what the version's card shows
        sections = {k: v["content"] for k, v in written.items()}
        current = ledger.production(target.model)
        production = None
        if current is not None and current is not target:
            production = self.store.get_run(current.run_id)
        directions = self.store.metric_directions(run.experiment)["directions"]
        gates = evaluate(rules, run, sections, production, directions)
        if rules.fairness is not None:
            gates.append(self._fairness(rules.fairness, target, run, sections))
        explanation = run.explanation
        evidence = {
            "run_id": run.run_id,
            "blob": target.blob,
            **_data_hashes(run),
            "sections": digest(sections),
            "explanation": None
            if explanation is None
            else {"status": explanation.status, "blob": explanation.blob},
            "production": None
            if current is None or current is target
            else {"version": current.version, "blob": current.blob},
            "rules": digest(asdict(rules)),
            "gates": digest([g.to_dict() for g in gates]),
        }
        return evidence, gates

    def _fairness(
        self, rule: FairnessRule, target: VersionState, run: Any, sections: dict[str, Any]
    ) -> GateResult:
        """The fairness gate, on the evaluation rows stored with the run (hash-verified) and
        the model loaded only through the signed register statement's hash."""
        import numpy as np

        from ..cards.evaluation import by_group, positive_class
        from ..cards.model import _column_values, group_values, sensitive_column, stored_eval_data

        try:
            X, y = stored_eval_data(self.store, run)
        except LookupError as exc:
            return GateResult("fairness", False, str(exc))
        except BlobIntegrityError as exc:
            return GateResult("fairness", False, f"stored evaluation rows refused: {exc}")
        column, names = sensitive_column(sections.get("sensitive_column"))
        values = group_values(X, rule.attribute, names if column == rule.attribute else {})
        if values is None:
            return GateResult(
                "fairness",
                False,
                f"the evaluation data has no column {rule.attribute!r}: evaluate on data that "
                "carries it (or name the policy's fairness attribute after one of its columns)",
            )
        try:
            model = self._verified_model(target)
            predictions = np.asarray(model.predict(X))
        except Exception as exc:  # refused, unpicklable here, or predict failed
            return GateResult(
                "fairness", False, f"could not load or run {target.model}:{target.version}: {exc}"
            )
        truth = _column_values(y, None)
        classifier = hasattr(model, "classes_")
        positive = positive_class(truth.tolist(), predictions.tolist()) if classifier else None
        groups = by_group(
            rule.attribute, values, truth, predictions, classifier=classifier, positive=positive
        )
        return fairness(rule, groups)

    def _refuse(
        self,
        conn: sqlite3.Connection,
        request: RequestState,
        subject: str,
        reason: str,
        evidence: dict[str, Any],
    ) -> None:
        conn.execute(
            "UPDATE promotion_requests SET status = 'blocked', closed_at = ? WHERE id = ?",
            (time.time(), request.id),
        )
        self._append(
            conn,
            "refused",
            subject,
            model=request.model,
            version=request.version,
            request=request.id,
            reason=reason,
            evidence=evidence,
            evidence_digest=digest(evidence),
        )

    def _transition(
        self,
        conn: sqlite3.Connection,
        ledger: Ledger,
        request_id: int,
        target: VersionState,
        to_stage: str,
        evidence_digest: str,
    ) -> None:
        """Move the version; in production, the previous production version is archived."""
        previous = ledger.production(target.model) if to_stage == "production" else None
        if previous is not None and previous is not target:
            conn.execute(
                "UPDATE model_versions SET stage = 'archived' WHERE model_name = ? AND version = ?",
                (target.model, previous.version),
            )
        else:
            previous = None
        conn.execute(
            "UPDATE model_versions SET stage = ? WHERE model_name = ? AND version = ?",
            (to_stage, target.model, target.version),
        )
        conn.execute(
            "UPDATE promotion_requests SET status = 'applied', closed_at = ? WHERE id = ?",
            (time.time(), request_id),
        )
        self._append(
            conn,
            "transition",
            f"{target.model}:{target.version}",
            model=target.model,
            version=target.version,
            request=request_id,
            to=to_stage,
            archived=previous.version if previous else None,
            blob=target.blob,
            evidence_digest=evidence_digest,
            **{"from": target.stage},
        )

    def load_model(
        self, model: str, stage: str | None = "production", version: int | None = None
    ) -> Any:
        """Unpickle a registered model, only after checking its blob against the hash in the
        signed ``register`` statement."""
        if version is not None:
            target = self.version(model, version)
        else:
            found = self.current(model, stage or "production")
            if found is None:
                raise RegistryError(f"model {model} has no version in {stage}")
            target = found
        return self._verified_model(target)

    def _verified_model(self, target: ModelVersion | VersionState) -> Any:
        """Unpickle a version's model once its blob hashes to the signed statement's hash."""
        import pickle

        ref = f"{target.model}:{target.version}"
        if not target.blob:
            raise RegistryError(f"{ref} has no model blob")
        try:
            data = self.store.blobs.get_bytes(target.blob)
        except BlobIntegrityError as exc:
            raise RegistryError(
                f"refusing to load {ref}: its model file does not match its recorded "
                f"hash ({exc}); nothing was unpickled"
            ) from None
        return pickle.loads(data)


def _data_hashes(run: Any) -> dict[str, list[str]]:
    return {
        "train": sorted({d.hash for d in run.datasets if d.role in ("train", "data")}),
        "eval": sorted({d.hash for d in run.datasets if d.role == "eval"}),
    }


def _what_changed(
    request: RequestState, evidence: dict[str, Any], gates: list[GateResult]
) -> str | None:
    """None when the evidence is what the request was made on and every gate passes."""
    failing = [f"{g.gate}: {g.message}" for g in gates if not g.passed]
    old = request.evidence or {}
    changed = [
        _EVIDENCE_NAMES.get(key, key)
        for key in _EVIDENCE_NAMES
        if key != "gates" and old.get(key) != evidence.get(key)
    ]
    if not changed and not failing and digest(evidence) == request.evidence_digest:
        return None
    parts = []
    if changed:
        parts.append(f"the evidence changed since the request ({', '.join(changed)})")
    elif not failing:
        parts.append("the evidence changed since the request (the gate results)")
    if failing:
        parts.append("gates now failing: " + "; ".join(failing))
    return " and ".join(parts)


def _model_version(state: VersionState) -> ModelVersion:
    return ModelVersion(
        state.model,
        state.version,
        state.run_id,
        state.stage,
        state.blob,
        state.registered_by,
        state.registered_at,
        state.fingerprint,
    )


def _request(state: RequestState, head: str) -> PromotionRequest:
    return PromotionRequest(
        state.id,
        state.model,
        state.version,
        state.from_stage,
        state.to_stage,
        state.status,
        state.requester,
        state.comment,
        [GateResult(**g) for g in state.gates],
        state.required or 0,
        [s.principal for s in state.approvals],
        head,
        state.requester_key,
        list(state.signoffs),
        list(state.not_counted),
        state.reason,
        state.time,
        list(state.answers),
    )


@dataclass(frozen=True)
class Enrolment:
    signer: Signer
    principal: str
    allowed_signers: Path
    created_key: bool
    added: bool

    def __str__(self) -> str:
        from ..identity.sshsig import key_line

        key = "created" if self.created_key else "using"
        signers = (
            f"added {self.principal} to {self.allowed_signers}: commit this file with the project"
            if self.added
            else f"{self.principal} is already in {self.allowed_signers}"
        )
        return (
            f"{key} key {self.signer.source} ({self.signer.fingerprint})\n{signers}\n"
            f'  {self.principal} namespaces="mlops-jupyter" {key_line(self.signer.key_blob)}'
        )


def enroll(allowed_signers: Path, principal: str, key: str | Path | None = None) -> Enrolment:
    """Make ``principal`` able to sign: the key at ``key`` (default: ``~/.ssh/id_ed25519``,
    else ssh-agent's), created when there is none, added to the allowed-signers file."""
    from ..identity.allowed_signers import add_signer
    from ..identity.keys import default_key_path, generate_key, load_signer

    path = Path(key).expanduser() if key is not None else None
    created = False
    try:
        signer = load_signer(path)
    except IdentityError:
        target = path or default_key_path()
        if target.exists():  # a key that cannot be used (encrypted, not Ed25519): keep it
            raise
        signer, created = generate_key(target, comment=principal), True
    added = add_signer(allowed_signers, principal, signer.key_blob)
    return Enrolment(signer, principal, allowed_signers, created, added)
