"""Registry statements between stores: ``push`` a laptop's signed history to the team store,
``pull`` the team's down for offline review.

A signed statement names the audit head it extends (``prev``), so it belongs to the chain of
the store it was made in and cannot simply be re-appended to another. Pushing therefore wraps
each of the laptop's entries, verbatim, in an ``import`` entry of the team's log: the ledger
checks that the imported entries of one store continue that store's own chain (none left out,
none changed: a rejection cannot be dropped on the way), checks each signature against the
allowed signers, and applies the statement under the team's rules with the version and request
numbers it got there (``churn:1`` on the laptop may be ``churn:3`` on the team store; the
import entry records the numbers, and the ledger holds them to it). Before anything is written
the statements are replayed against the team's registry; one that would not hold there (the
team already moved the version, another tier for the model) refuses the whole push, naming it.
Pushing again imports only what is new; a laptop whose pushed history was rewritten is refused.

Pulling copies the team's log entry for entry (same sequence numbers, same hashes) into a store
that has no registry history of its own, or that holds an earlier pull: the copy verifies like
the original. Statements signed in such a copy (a reviewer approving offline) continue the
team's chain, and ``push`` appends them as they are while the team's head has not moved.

Both directions write the registry tables from the ledger and copy the card sections of the
runs and versions they carry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..store import audit_chain
from ..store.schema import SIGNING_MARKER
from ..store.sql import insert_new
from ..store.sync import SECTION_COLUMNS
from .ledger import Ledger, replay_entries, row_findings
from .statements import IMPORT, LABELLED_ACTIONS, Entry, Imported

if TYPE_CHECKING:
    from ..identity.allowed_signers import AllowedSigners
    from ..store import Store

AUDIT_COLUMNS = (
    "seq", "ts", "actor", "action", "subject", "payload", "prev_hash", "hash", "signature"
)  # fmt: skip


class StatementConflictError(StoreError):
    """Statements that cannot be carried to the other store; nothing was written."""


@dataclass
class StatementReport:
    imported: int = 0  # wrapped in import entries
    appended: int = 0  # copied entry for entry
    sections: int = 0
    renumbered: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = []
        if self.imported:
            parts.append(f"{self.imported} audit entries imported")
        if self.appended:
            parts.append(f"{self.appended} audit entries copied")
        if not parts:
            parts.append("registry already up to date")
        if self.sections:
            parts.append(f"{self.sections} version card section revisions")
        if self.renumbered:
            parts.append("numbered there: " + ", ".join(self.renumbered))
        return ", ".join(parts)


def _entries(store: Store) -> list[Entry]:
    return [Entry.from_row(r) for r in store.audit_entries()]


def _shares_history(ours: list[Entry], theirs: list[Entry]) -> bool:
    return bool(ours and theirs) and ours[0].hash == theirs[0].hash


def push_statements(
    local: Store,
    team: Store,
    signers: AllowedSigners | None,
    copy_runs: Callable[[list[str]], Any] | None = None,
) -> StatementReport:
    """Carry ``local``'s registry history to ``team`` (see the module docstring).
    ``copy_runs(ids)`` copies the runs the statements name that ``team`` lacks."""
    report = StatementReport()
    ours = _entries(local)
    if not ours:
        return report
    with team.transaction() as conn:
        theirs = _entries(team)
        known = replay_entries(theirs, signers)
        _intact(known, team)
        shared = _shares_history(ours, theirs)
        if shared:
            ledger = _append_continuation(conn, ours, theirs, signers, report)
        else:
            ledger = _import(conn, local, team, ours, known, report, copy_runs)
        if ledger is None:
            return report
        write_rows(conn, team, ledger)
        report.sections = _copy_sections(local, conn, ledger, None if shared else local.store_id)
        problems = row_findings(team, ledger)
        if problems:
            raise StatementConflictError(f"after the push the registry would not match: "
                                         f"{problems[0]}; nothing was pushed")  # fmt: skip
    return report


def pull_statements(
    team: Store,
    local: Store,
    signers: AllowedSigners | None,
    copy_runs: Callable[[list[str]], Any] | None = None,
) -> StatementReport:
    """Copy ``team``'s log, entry for entry, into ``local`` (see the module docstring).
    ``copy_runs(ids)`` copies the runs of versions that ``local`` lacks."""
    report = StatementReport()
    theirs = _entries(team)
    ledger = replay_entries(theirs, signers)
    _intact(ledger, team)
    _ensure_runs(local, sorted({v.run_id for v in ledger.versions.values()}), copy_runs)
    with local.transaction() as conn:
        ours = _entries(local)
        if ours and not _shares_history(ours, theirs):
            raise StatementConflictError(
                f"{local.engine.where()} has its own registry history ({len(ours)} audit "
                "entries), so the team's cannot be copied into it; push it instead, and pull "
                "into a store of its own for offline review: mlops-jupyter pull --store DIR"
            )
        if len(ours) > len(theirs) or (ours and theirs[len(ours) - 1].hash != ours[-1].hash):
            raise StatementConflictError(
                f"{local.engine.where()} holds registry statements the team store does not "
                f"(after entry {_common(ours, theirs)}): push them first"
            )
        new = theirs[len(ours) :]
        _insert_entries(conn, new)
        report.appended = len(new)
        write_rows(conn, local, ledger)
        report.sections = _copy_sections(team, conn, ledger, None)
    return report


def _ensure_runs(
    store: Store, runs: list[str], copy_runs: Callable[[list[str]], Any] | None
) -> None:
    missing = [r for r in runs if not store._read("SELECT 1 FROM runs WHERE id = ?", (r,))]
    if missing and copy_runs is not None:
        copy_runs(missing)
    missing = [r for r in missing if not store._read("SELECT 1 FROM runs WHERE id = ?", (r,))]
    if missing:
        raise StatementConflictError(
            f"{len(missing)} registered versions' runs are not in {store.engine.where()} and "
            f"could not be copied (first: {missing[0]}): nothing of the registry was copied"
        )


def _common(ours: list[Entry], theirs: list[Entry]) -> int:
    n = 0
    for a, b in zip(ours, theirs, strict=False):
        if a.hash != b.hash:
            break
        n = a.seq
    return n


def _intact(ledger: Ledger, store: Store) -> None:
    if ledger.broken is not None:
        raise StatementConflictError(
            f"the audit log of {store.engine.where()} is broken at {ledger.broken}: nothing "
            "was copied; run `mlops-jupyter audit verify` there"
        )


def _insert_entries(conn: Any, entries: list[Entry]) -> None:
    """Entries as they are in the other store (a duplicate sequence number fails loudly)."""
    marks = ", ".join("?" * len(AUDIT_COLUMNS))
    sql = f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({marks})"
    conn.executemany(sql, [tuple(e.to_dict()[c] for c in AUDIT_COLUMNS) for e in entries])


def _append_continuation(
    conn: Any,
    ours: list[Entry],
    theirs: list[Entry],
    signers: AllowedSigners | None,
    report: StatementReport,
) -> Ledger | None:
    """``local`` holds a pull of ``team``: its new entries continue the team's chain as they
    are, if the team's head has not moved since."""
    common = _common(ours, theirs)
    if common == len(ours):
        return None  # nothing of ours the team lacks
    if common != len(theirs):
        raise StatementConflictError(
            f"the team store moved on since this store pulled it (both continue entry {common}:"
            f" the team store to {len(theirs)}, this one to {len(ours)}); entries signed here "
            "name the old head, so they cannot be carried: pull into a new store and sign again"
        )
    new = ours[common:]
    ledger = replay_entries(theirs + new, signers)
    _refuse_findings(ledger, common, lambda seq: ours[seq - 1])
    _insert_entries(conn, new)
    report.appended = len(new)
    return ledger


def _import(
    conn: Any,
    local: Store,
    team: Store,
    ours: list[Entry],
    ledger: Ledger,
    report: StatementReport,
    copy_runs: Callable[[list[str]], Any] | None,
) -> Ledger | None:
    origin, source = local.store_id, local.engine.where()
    done, head = ledger.origins.get(origin, (0, audit_chain.GENESIS))
    if done > len(ours) or (done and ours[done - 1].hash != head):
        raise StatementConflictError(
            f"the registry history of {source} was rewritten after entry {done} was pushed "
            "(the team store holds another entry there): nothing was pushed"
        )
    new = ours[done:]
    if not new:
        return None
    for entry in new:
        if entry.action == IMPORT:
            raise StatementConflictError(
                f"{entry.where} of {source} was itself imported from another store: push from "
                "the store it was made in"
            )
        if entry.signature is None and entry.action not in (SIGNING_MARKER, *LABELLED_ACTIONS):
            raise StatementConflictError(
                f"{entry.where} of {source} was written before registry statements were "
                "signed; such a history cannot be pushed (register the model again)"
            )
    runs = sorted({str(e.fields().get("run_id")) for e in new if e.action == "register"})
    _ensure_runs(team, runs, copy_runs)
    next_request = 1 + max(
        [0, *ledger.requests, *(r for (r,) in team._read("SELECT id FROM promotion_requests"))]
    )
    start = len(ledger.findings)
    for entry in new:
        fields = entry.fields()
        renumber: dict[str, int] = {}
        if entry.action == "register":
            model = str(fields.get("model"))
            renumber["version"] = 1 + max((v for m, v in ledger.versions if m == model), default=0)
        elif entry.action == "request":
            renumber["request"] = next_request
            next_request += 1
        item = Imported(origin, source, entry, renumber)
        _, subject = ledger.renumbered(item, fields)
        audit_chain.append(
            conn, entry.actor, IMPORT, subject,
            {"origin": origin, "source": source, "entry": entry.to_dict(), "renumber": renumber},
        )  # fmt: skip
        row = conn.execute(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        ledger.extend([Entry.from_row(tuple(row))])
        fatal = [f for f in ledger.findings[start:] if f.fatal]
        if fatal:
            raise StatementConflictError(
                f"{entry.where} of {source} does not hold in {team.engine.where()}: "
                f"{fatal[0].message.removeprefix(f'imported from {source}: ')}; nothing was "
                "pushed"
            )
        report.imported += 1
        ours_ref = f"{fields.get('model')}:{fields.get('version')}"
        if renumber.get("version") not in (None, fields.get("version")):
            report.renumbered.append(f"{ours_ref} -> {subject}")
        if renumber.get("request") not in (None, fields.get("request")):
            report.renumbered.append(f"request #{fields.get('request')} -> #{renumber['request']}")
    return ledger


def _refuse_findings(ledger: Ledger, after: int, entry_at: Callable[[int], Entry]) -> None:
    if ledger.broken is not None and (ledger.broken.seq or 0) > after:
        raise StatementConflictError(f"{ledger.broken}; nothing was pushed")
    fatal = [f for f in ledger.findings if f.fatal and (f.seq or 0) > after]
    if fatal:
        entry = entry_at(fatal[0].seq or 0)
        raise StatementConflictError(
            f"{entry.where} does not hold on the team store: {fatal[0].message}; nothing was pushed"
        )


# ------------------------------------------------------------------------------- rows
def write_rows(conn: Any, store: Store, ledger: Ledger) -> None:
    """Make the registry tables say what ``ledger`` says: rows it lacks are added (with the
    numbers the log gives them), stages and statuses set; rows already right are untouched."""
    versions = sorted(ledger.versions.values(), key=lambda v: v.seq)
    first: dict[str, Any] = {}
    for v in versions:
        first.setdefault(v.model, v)
    conn.executemany(
        insert_new("models", ("name", "risk_tier", "created_at", "created_by")),
        [(m, ledger.tiers.get(m) or "medium", v.registered_at, v.registered_by)
         for m, v in first.items()],
    )  # fmt: skip
    conn.executemany(
        insert_new("model_versions", ("model_name", "version", "run_id", "blob", "stage",
                                      "created_at", "created_by")),
        [(v.model, v.version, v.run_id, v.blob, "none", v.registered_at, v.registered_by)
         for v in versions],
    )  # fmt: skip
    stages = {
        (m, int(n)): s for m, n, s in conn.execute(
            "SELECT model_name, version, stage FROM model_versions").fetchall()
    }  # fmt: skip
    moves = [v for v in versions if stages.get((v.model, v.version)) != v.stage]
    for v in sorted(moves, key=lambda v: v.stage == "production"):  # leave production last
        conn.execute(
            "UPDATE model_versions SET stage = ? WHERE model_name = ? AND version = ?",
            (v.stage, v.model, v.version),
        )
    requests = sorted(ledger.requests.values(), key=lambda r: r.id)
    conn.executemany(
        insert_new("promotion_requests", (
            "id", "model_name", "version", "from_stage", "to_stage", "status", "requester",
            "comment", "gate_results", "required_signoffs", "created_at", "closed_at")),
        [(r.id, r.model, r.version, r.from_stage, r.to_stage, r.status, r.requester, r.comment,
          json.dumps(r.gates), r.required or 0, r.time, _closed(r)) for r in requests],
    )  # fmt: skip
    status = dict(conn.execute("SELECT id, status FROM promotion_requests").fetchall())
    for r in requests:
        if status.get(r.id) != r.status:
            conn.execute(
                "UPDATE promotion_requests SET status = ?, closed_at = ? WHERE id = ?",
                (r.status, _closed(r), r.id),
            )
    conn.executemany(
        insert_new("signoffs", ("request_id", "user", "decision", "comment", "created_at")),
        [(r.id, s.principal, s.decision, s.comment, s.time) for r in requests for s in r.signoffs],
    )
    if store.dialect.identity_reset:
        conn.execute(store.dialect.identity_reset.format(table="promotion_requests"))


def _closed(request: Any) -> float | None:
    if request.status == "pending":
        return None
    return max([request.time, *(s.time for s in request.signoffs)])


def _copy_sections(source: Store, conn: Any, ledger: Ledger, origin: str | None) -> int:
    """The card sections of the runs and versions the registry names, under their names in
    the target (a version renumbered on import gets its sections under its new number).
    Revisions already there are kept as they are."""
    names: dict[str, str] = {}
    for v in ledger.versions.values():
        names[v.run_id] = v.run_id
    if origin is None:
        names.update({f"{m}:{n}": f"{m}:{n}" for m, n in ledger.versions})
    else:
        for (o, model, theirs), ours in ledger.version_numbers.items():
            if o == origin:
                names[f"{model}:{theirs}"] = f"{model}:{ours}"
    if not names:
        return 0
    rows = []
    subjects = sorted(names)
    for start in range(0, len(subjects), 500):
        chunk = subjects[start : start + 500]
        rows += source._read(
            f"SELECT {', '.join(SECTION_COLUMNS)} FROM card_sections WHERE subject IN "
            f"({','.join('?' * len(chunk))}) ORDER BY id",
            chunk,
        )
    before = conn.execute("SELECT COUNT(*) FROM card_sections").fetchone()[0]
    conn.executemany(
        insert_new("card_sections", SECTION_COLUMNS), [(names[r[0]], *r[1:]) for r in rows]
    )
    return int(conn.execute("SELECT COUNT(*) FROM card_sections").fetchone()[0] - before)
