"""Model versions and their promotion through policy gates and four-eyes sign-off.

Every state change happens in one write transaction together with its audit entries, so two
approvals racing from two processes apply exactly one transition.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MLOpsError
from ..store import audit_chain
from .gates import GateResult, evaluate
from .policy import STAGES, TIERS, Policy, load_policy

if TYPE_CHECKING:
    import sqlite3

    from ..store import Store


class RegistryError(MLOpsError):
    """A registry action was refused (the message says why and what to do)."""


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    run_id: str
    stage: str
    blob: str | None
    created_by: str | None
    created_at: float

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
    approvals: list[str] = field(default_factory=list)
    audit_head: str = ""

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


class Registry:
    """The registry of one store, acting as ``user``."""

    def __init__(self, store: Store, user: str, policy: Policy | None = None) -> None:
        self.store = store
        self.user = user
        self._policy = policy

    @property
    def policy(self) -> Policy:
        return self._policy or load_policy(self.store.directory)

    # ----------------------------------------------------------------- versions
    def register(self, run_id: str, model: str, risk_tier: str | None = None) -> ModelVersion:
        """Register the model a run saved as the next version of ``model``."""
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
        now = time.time()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT risk_tier FROM models WHERE name = ?", (model,)).fetchone()
            if row is None:
                tier = risk_tier or "medium"
                conn.execute(
                    "INSERT INTO models (name, risk_tier, created_at, created_by) "
                    "VALUES (?, ?, ?, ?)",
                    (model, tier, now, self.user),
                )
            elif risk_tier is not None and risk_tier != row[0]:
                raise RegistryError(
                    f"model {model} is registered with risk tier {row[0]}; the tier is set once"
                )
            version = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_name = ?",
                (model,),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO model_versions (model_name, version, run_id, blob, stage, "
                "created_at, created_by) VALUES (?, ?, ?, ?, 'none', ?, ?)",
                (model, version, run.run_id, artifact.blob, now, self.user),
            )
            audit_chain.append(
                conn,
                self.user,
                "register",
                f"{model}:{version}",
                {"run_id": run.run_id, "blob": artifact.blob},
            )
        return self.version(model, int(version))

    def version(self, model: str, version: int) -> ModelVersion:
        rows = self.store._read(
            "SELECT model_name, version, run_id, stage, blob, created_by, created_at "
            "FROM model_versions WHERE model_name = ? AND version = ?",
            (model, int(version)),
        )
        if not rows:
            raise RegistryError(f"no version {version} of model {model!r}")
        name, number, run_id, stage, blob, by, at = rows[0]
        return ModelVersion(name, int(number), run_id, stage, blob, by, at)

    def current(self, model: str, stage: str = "production") -> ModelVersion | None:
        rows = self.store._read(
            "SELECT version FROM model_versions WHERE model_name = ? AND stage = ? "
            "ORDER BY version DESC LIMIT 1",
            (model, stage),
        )
        return self.version(model, rows[0][0]) if rows else None

    def models(self) -> list[dict[str, Any]]:
        rows = self.store._read(
            "SELECT m.name, m.risk_tier, COUNT(v.version), "
            "MAX(CASE WHEN v.stage = 'production' THEN v.version END), "
            "MAX(CASE WHEN v.stage = 'staging' THEN v.version END) "
            "FROM models m LEFT JOIN model_versions v ON v.model_name = m.name "
            "GROUP BY m.name ORDER BY m.name"
        )
        return [
            {"model": n, "risk_tier": t, "versions": c, "production": p, "staging": s}
            for n, t, c, p, s in rows
        ]

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of the model, oldest first."""
        rows = self.store._read(
            "SELECT model_name, version, run_id, stage, blob, created_by, created_at "
            "FROM model_versions WHERE model_name = ? ORDER BY version",
            (model,),
        )
        return [ModelVersion(n, int(v), r, st, b, by, at) for n, v, r, st, b, by, at in rows]

    def requests(self, status: str | None = None, limit: int = 200) -> list[PromotionRequest]:
        """Promotion requests, newest first; ``status`` keeps one kind (``pending``...)."""
        rows = self.store._read(
            "SELECT id FROM promotion_requests WHERE (? IS NULL OR status = ?) "
            "ORDER BY id DESC LIMIT ?",
            (status, status, int(limit)),
        )
        return [self.request(r[0]) for r in rows]

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every audit entry about the model's versions and requests, oldest first."""
        rows = self.store._read(
            "SELECT seq, ts, actor, action, subject, payload FROM audit_log "
            "WHERE subject LIKE ? ORDER BY seq",
            (f"{model}:%",),
        )
        return [
            {"seq": s, "ts": t, "actor": a, "action": act, "subject": sub, **json.loads(p)}
            for s, t, a, act, sub, p in rows
        ]

    # --------------------------------------------------------------- promotion
    def request_promotion(
        self, model: str, version: int, to_stage: str, comment: str = ""
    ) -> PromotionRequest:
        """Run the gates for ``model:version`` -> ``to_stage``; open a request if they pass."""
        if to_stage not in STAGES:
            raise RegistryError(f"target stage must be one of {', '.join(STAGES)}")
        target = self.version(model, version)
        if target.stage == to_stage:
            raise RegistryError(f"{target.ref} is already in {to_stage}")
        tier = self.store._read("SELECT risk_tier FROM models WHERE name = ?", (model,))[0][0]
        rules = self.policy.for_stage(tier, to_stage)
        run = self.store.get_run(target.run_id)
        sections = {k: v["content"] for k, v in self.store.card_sections(run.run_id).items()}
        sections.update({k: v["content"] for k, v in self.store.card_sections(target.ref).items()})
        current = self.current(model, "production")
        production = None
        if current is not None and current.version != version:
            production = self.store.get_run(current.run_id)
        gates = evaluate(rules, run, sections, production)
        passed = all(g.passed for g in gates)
        status = "pending" if passed else "blocked"
        now = time.time()
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO promotion_requests (model_name, version, from_stage, to_stage, "
                "status, requester, comment, gate_results, required_signoffs, created_at, "
                "closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    version,
                    target.stage,
                    to_stage,
                    status,
                    self.user,
                    comment,
                    json.dumps([g.to_dict() for g in gates]),
                    rules.signoffs,
                    now,
                    None if passed else now,
                ),
            )
            request_id = int(cursor.lastrowid or 0)
            subject = f"{model}:{version}"
            audit_chain.append(
                conn,
                self.user,
                "request",
                subject,
                {"request": request_id, "to": to_stage, "comment": comment, "tier": tier},
            )
            audit_chain.append(
                conn,
                self.user,
                "gates",
                subject,
                {"request": request_id, "results": [g.to_dict() for g in gates]},
            )
            if passed and rules.signoffs == 0:
                self._apply(conn, request_id, model, version, to_stage)
        return self.request(request_id)

    def approve(self, request_id: int, comment: str = "") -> PromotionRequest:
        """Sign off; the transition applies when the required number of approvals is reached."""
        with self.store.transaction() as conn:
            req = self._pending(conn, request_id)
            model, version, to_stage, requester, required = req
            if self.user == requester:
                raise RegistryError(
                    f"{self.user} requested #{request_id} and cannot approve it (four eyes): "
                    "another person must sign off"
                )
            tier = conn.execute("SELECT risk_tier FROM models WHERE name = ?", (model,)).fetchone()
            approvers = self.policy.for_stage(tier[0], to_stage).approvers
            if approvers and self.user not in approvers:
                raise RegistryError(
                    f"{self.user} may not approve {to_stage} promotions of {tier[0]}-risk models; "
                    f"approvers: {', '.join(approvers)}"
                )
            done = conn.execute(
                "SELECT 1 FROM signoffs WHERE request_id = ? AND user = ?",
                (request_id, self.user),
            ).fetchone()
            if done:
                raise RegistryError(f"{self.user} already signed request #{request_id}")
            conn.execute(
                "INSERT INTO signoffs (request_id, user, decision, comment, created_at) "
                "VALUES (?, ?, 'approve', ?, ?)",
                (request_id, self.user, comment, time.time()),
            )
            audit_chain.append(
                conn,
                self.user,
                "approve",
                f"{model}:{version}",
                {"request": request_id, "comment": comment},
            )
            approvals = conn.execute(
                "SELECT COUNT(*) FROM signoffs WHERE request_id = ? AND decision = 'approve'",
                (request_id,),
            ).fetchone()[0]
            if approvals >= required:
                self._apply(conn, request_id, model, version, to_stage)
        return self.request(request_id)

    def reject(self, request_id: int, comment: str) -> PromotionRequest:
        """One rejection closes the request."""
        if not comment.strip():
            raise RegistryError("a rejection needs a comment saying why")
        with self.store.transaction() as conn:
            model, version, _, requester, _ = self._pending(conn, request_id)
            conn.execute(
                "INSERT INTO signoffs (request_id, user, decision, comment, created_at) "
                "VALUES (?, ?, 'reject', ?, ?) ON CONFLICT (request_id, user) DO UPDATE SET "
                "decision = 'reject', comment = excluded.comment",
                (request_id, self.user, comment, time.time()),
            )
            conn.execute(
                "UPDATE promotion_requests SET status = 'rejected', closed_at = ? WHERE id = ?",
                (time.time(), request_id),
            )
            audit_chain.append(
                conn,
                self.user,
                "reject",
                f"{model}:{version}",
                {"request": request_id, "comment": comment},
            )
        return self.request(request_id)

    def request(self, request_id: int) -> PromotionRequest:
        rows = self.store._read(
            "SELECT id, model_name, version, from_stage, to_stage, status, requester, comment, "
            "gate_results, required_signoffs FROM promotion_requests WHERE id = ?",
            (request_id,),
        )
        if not rows:
            raise RegistryError(f"no promotion request #{request_id}")
        rid, model, version, from_stage, to_stage, status, requester, comment, gates, n = rows[0]
        approvals = [
            r[0]
            for r in self.store._read(
                "SELECT user FROM signoffs WHERE request_id = ? AND decision = 'approve' "
                "ORDER BY created_at",
                (request_id,),
            )
        ]
        return PromotionRequest(
            rid,
            model,
            int(version),
            from_stage,
            to_stage,
            status,
            requester,
            comment,
            [GateResult(**g) for g in json.loads(gates or "[]")],
            int(n),
            approvals,
            self.store.audit_head(),
        )

    # ---------------------------------------------------------------- internals
    def _pending(self, conn: sqlite3.Connection, request_id: int) -> tuple[str, int, str, str, int]:
        row = conn.execute(
            "SELECT model_name, version, to_stage, requester, required_signoffs, status "
            "FROM promotion_requests WHERE id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            raise RegistryError(f"no promotion request #{request_id}")
        if row[5] != "pending":
            raise RegistryError(f"request #{request_id} is {row[5]}, no longer open")
        return row[0], int(row[1]), row[2], row[3], int(row[4])

    def _apply(
        self, conn: sqlite3.Connection, request_id: int, model: str, version: int, to_stage: str
    ) -> None:
        """Move the version; in production, the previous production version is archived."""
        previous = None
        if to_stage == "production":
            row = conn.execute(
                "SELECT version FROM model_versions WHERE model_name = ? AND stage = 'production'",
                (model,),
            ).fetchone()
            if row is not None and int(row[0]) != version:
                previous = int(row[0])
                conn.execute(
                    "UPDATE model_versions SET stage = 'archived' WHERE model_name = ? "
                    "AND version = ?",
                    (model, previous),
                )
        from_stage = conn.execute(
            "SELECT stage FROM model_versions WHERE model_name = ? AND version = ?",
            (model, version),
        ).fetchone()[0]
        conn.execute(
            "UPDATE model_versions SET stage = ? WHERE model_name = ? AND version = ?",
            (to_stage, model, version),
        )
        conn.execute(
            "UPDATE promotion_requests SET status = 'applied', closed_at = ? WHERE id = ?",
            (time.time(), request_id),
        )
        audit_chain.append(
            conn,
            self.user,
            "transition",
            f"{model}:{version}",
            {"request": request_id, "from": from_stage, "to": to_stage, "archived": previous},
        )

    def load_model(
        self, model: str, stage: str | None = "production", version: int | None = None
    ) -> Any:
        """Unpickle a registered model, only after checking its blob against its hash."""
        import pickle

        from ..errors import BlobIntegrityError

        target = self.version(model, version) if version is not None else None
        if target is None:
            target = self.current(model, stage or "production")
            if target is None:
                raise RegistryError(f"model {model} has no version in {stage}")
        if not target.blob:
            raise RegistryError(f"{target.ref} has no model blob")
        try:
            data = self.store.blobs.get_bytes(target.blob)
        except BlobIntegrityError as exc:
            raise RegistryError(
                f"refusing to load {target.ref}: its model file does not match its recorded "
                f"hash ({exc}); nothing was unpickled"
            ) from None
        return pickle.loads(data)
