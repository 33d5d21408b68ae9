"""Signed registry history between a laptop's store and a team store on PostgreSQL: push
imports it (renumbered, re-checked under the team's rules), pull mirrors the team's log for
offline review, and tampering on either side is found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_registry import SECTIONS, train_run

from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import Signer, generate_key, load_signer
from mlops_jupyter.registry.audit import export, verify
from mlops_jupyter.registry.ledger import replay_entries
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.registry.statements import Entry
from mlops_jupyter.registry.transfer import StatementConflictError, push_statements
from mlops_jupyter.store import Store
from mlops_jupyter.store.audit_chain import GENESIS, canonical, entry_hash

pytestmark = pytest.mark.slow
PEOPLE = ("ana", "bo", "cy")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_jupyter", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a laptop store and three allowed signers (the keys live beside it)."""
    root = tmp_path / "project"
    (root / ".mlops").mkdir(parents=True)
    for person in PEOPLE:
        key = generate_key(tmp_path / "keys" / person, comment=person)
        add_signer(root / ".mlops" / "allowed_signers", person, key.key_blob)
    monkeypatch.chdir(root)
    return root


def count(store: Store, *tables: str) -> dict[str, int]:
    return {t: int(store._read(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


REGISTRY = ("audit_log", "model_versions", "models", "promotion_requests", "signoffs")


def signer(project: Path, person: str) -> Signer:
    return load_signer(project.parent / "keys" / person)


def as_user(store: Store, person: str) -> Registry:
    return Registry(store, signer(store.directory.parent, person))


def sectioned_run(location: object, seed: int) -> str:
    run = train_run(location, seed=seed)
    with Store.open(location if isinstance(location, str) else location) as store:
        for key, text in SECTIONS.items():
            store.set_card_section(run, key, text, "ana")
    return run


def test_push_imports_signed_history_renumbered_and_the_team_finishes_it(
    project: Path, pg_url: str
) -> None:
    # the team store already has churn:1 and request #1, so the laptop's must be renumbered
    team_run = sectioned_run(pg_url, seed=5)
    with Store.open(pg_url) as team:
        as_user(team, "cy").register(team_run, "churn")
        as_user(team, "cy").request_promotion("churn", 1, "staging")
    laptop_run = sectioned_run(project / ".mlops", seed=1)
    with Store.open(project / ".mlops") as local:
        ana = as_user(local, "ana")
        ana.register(laptop_run, "churn")
        local.set_card_section("churn:1", "caveats", "Only for EU customers.", "ana")
        request = ana.request_promotion("churn", 1, "production", "first release")
        assert (request.id, request.status) == (1, "pending")

    out = cli("push", "--to", pg_url, cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(
        "6 audit entries imported, 1 version card section revisions, numbered there: "
        "churn:1 -> churn:2, request #1 -> #2"
    ), out.stdout
    with Store.open(pg_url) as team:
        bo = as_user(team, "bo")
        pending = bo.request(2)
        assert (pending.model, pending.version, pending.status, pending.requester) == (
            "churn",
            2,
            "pending",
            "ana",
        )
        assert bo.version("churn", 2).run_id == laptop_run
        assert team.card_sections("churn:2")["caveats"]["content"] == "Only for EU customers."
        # the reviewer signs off on the team store: the gates run again there, and it applies
        applied = bo.approve(2, "reviewed on the team store")
        assert (applied.status, applied.approvals) == ("applied", ["bo"])
        assert bo.current("churn").version == 2
        report = verify(team, registry=bo)
        assert report.ok, str(report)
        assert report.signed == 7 and report.principals == ("ana", "bo", "cy")
        history = bo.history("churn")
        assert [(h["action"], h["subject"], h.get("imported_from") is not None)
                for h in history] == [
            ("register", "churn:1", False), ("request", "churn:1", False),
            ("transition", "churn:1", False),  # staging needs no sign-off
            ("register", "churn:2", True), ("card_edit", "churn:2", True),
            ("request", "churn:2", True), ("approve", "churn:2", False),
            ("transition", "churn:2", False),
        ]  # fmt: skip
        assert all(h["verified"] for h in history if h["action"] != "card_edit")
        assert history[5]["request"] == 2 and history[5]["imported_from"]["seq"] == 6
        entries = count(team, "audit_log")["audit_log"]
        assert report.imported == 6 and "6 entries imported from other stores" in str(report)
        bundle = export(team, project / "bundle")  # the laptop's statements too, for OpenSSH
    checked = subprocess.run(["sh", str(bundle / "verify-with-ssh-keygen.sh")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    good = [x for x in (checked.stdout + checked.stderr).splitlines() if x.startswith("Good")]
    assert len(good) == 7 and sum("signature for ana" in x for x in good) == 2
    assert sorted(p.name for p in (bundle / "statements").glob("*-import-*.sig")) == [
        "000010-import-register.sig", "000012-import-request.sig"
    ]  # fmt: skip

    again = cli("push", "--to", pg_url, cwd=project)
    assert again.returncode == 0 and "registry already up to date" in again.stdout
    with Store.open(project / ".mlops") as local:  # the laptop goes on, and pushes again
        as_user(local, "ana").register(sectioned_run(project / ".mlops", seed=2), "churn")
    third = cli("push", "--to", pg_url, cwd=project)
    assert "4 audit entries imported" in third.stdout and "churn:2 -> churn:3" in third.stdout
    with Store.open(pg_url) as team:
        assert count(team, "audit_log")["audit_log"] == entries + 4
        assert [v.version for v in Registry(team).versions("churn")] == [1, 2, 3]
        assert verify(team).ok


def test_a_statement_that_does_not_hold_on_the_team_store_refuses_the_push(
    project: Path, pg_url: str
) -> None:
    team_run = sectioned_run(pg_url, seed=5)
    with Store.open(pg_url) as team:
        as_user(team, "cy").register(team_run, "churn", risk_tier="low")
        before = count(team, *REGISTRY)
    with Store.open(project / ".mlops") as local:
        as_user(local, "ana").register(sectioned_run(project / ".mlops", seed=1), "churn",
                                       risk_tier="high")  # fmt: skip
    out = cli("push", "--to", pg_url, cwd=project)
    assert out.returncode == 1
    assert (
        "entry 4 (register on churn:1) of " in out.stderr
        and "gives churn risk tier high, set earlier as low; nothing was pushed" in out.stderr
    ), out.stderr
    with Store.open(pg_url) as team:
        assert count(team, *REGISTRY) == before
        assert verify(team).ok


def test_pull_mirrors_the_team_log_and_an_offline_approval_pushes_back(
    project: Path, pg_url: str, tmp_path: Path
) -> None:
    with Store.open(pg_url) as team:
        ana = as_user(team, "ana")
        ana.register(sectioned_run(pg_url, seed=1), "churn")
        team.set_card_section("churn:1", "caveats", "EU only.", "ana")
        request = ana.request_promotion("churn", 1, "production")
    reviewer = tmp_path / "reviewer"
    (reviewer / ".mlops").mkdir(parents=True)
    shutil.copy(project / ".mlops" / "allowed_signers", reviewer / ".mlops")  # from git
    out = cli("pull", "--from", pg_url, cwd=reviewer)
    assert out.returncode == 0, out.stderr
    assert "1 runs copied" in out.stdout and "audit entries copied" in out.stdout
    with Store.open(reviewer / ".mlops") as mirror, Store.open(pg_url) as team:
        assert [e[:8] for e in mirror.audit_entries()] == [e[:8] for e in team.audit_entries()]
        assert verify(mirror).ok
        bo = Registry(mirror, signer(project, "bo"))
        assert bo.request(request.id).status == "pending"
        card = __import__("mlops_jupyter").model_card("churn:1", store=mirror).to_html()
        assert "EU only." in card
        bo.approve(request.id, "read offline")  # signed offline, continuing the team's chain
        assert bo.current("churn").version == 1
    back = cli("push", "--to", pg_url, cwd=reviewer)
    assert back.returncode == 0, back.stderr
    assert "2 audit entries copied" in back.stdout
    with Store.open(pg_url) as team:
        assert Registry(team).current("churn").version == 1
        assert verify(team).ok
    assert "registry already up to date" in cli("pull", "--from", pg_url, cwd=reviewer).stdout

    # the team moves on (archiving needs no sign-off): an offline statement naming the old
    # head cannot be carried
    with Store.open(pg_url) as team:
        as_user(team, "ana").request_promotion("churn", 1, "archived")
    with Store.open(reviewer / ".mlops") as mirror:
        Registry(mirror, signer(project, "cy")).request_promotion("churn", 1, "archived")
    moved = cli("push", "--to", pg_url, cwd=reviewer)
    assert moved.returncode == 1 and "the team store moved on since this store pulled" in (
        moved.stderr
    ), moved.stderr
    # a pull into a folder outside the project takes its governance files along
    elsewhere = cli("pull", "--from", pg_url, "--store", str(tmp_path / "plane" / ".mlops"),
                    cwd=project)  # fmt: skip
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "allowed_signers to " in elsewhere.stderr
    with Store.open(tmp_path / "plane" / ".mlops") as plane:
        assert verify(plane).ok, str(verify(plane))
        assert [v.stage for v in Registry(plane).versions("churn")] == ["archived"]
    # a store with a registry history of its own is not overwritten by a pull
    with Store.open(project / ".mlops") as local:
        as_user(local, "ana").register(sectioned_run(project / ".mlops", seed=3), "other")
    refused = cli("pull", "--from", pg_url, cwd=project)
    assert refused.returncode == 1
    assert "registry not pulled:" in refused.stdout and "has its own registry history" in (
        refused.stdout
    )


def test_the_ledger_finds_a_dropped_or_changed_imported_statement(
    project: Path, pg_url: str
) -> None:
    """Someone with the database's owner rights can rewrite the unsigned import entries and
    recompute the team's chain; the laptop's own chain inside them still gives them away."""
    with Store.open(project / ".mlops") as local:
        ana = as_user(local, "ana")
        ana.register(sectioned_run(project / ".mlops", seed=1), "churn")
        request = ana.request_promotion("churn", 1, "production")
        as_user(local, "bo").reject(request.id, "not yet: the EU data is missing")
        with Store.open(pg_url) as team:
            from mlops_jupyter.store.sync import copy_runs

            registry = Registry(team)
            push_statements(local, team, registry.signers,
                            lambda ids: copy_runs(local, team, run_ids=ids))  # fmt: skip
            entries = [Entry.from_row(r) for r in team.audit_entries()]
            signers = registry.signers
    ledger = replay_entries(entries, signers)
    assert not ledger.fatal and ledger.requests[1].status == "rejected"

    def rechained(kept: list[Entry]) -> list[Entry]:
        out, prev = [], GENESIS
        for seq, e in enumerate(kept, 1):
            h = entry_hash(prev, seq, e.ts, e.actor, e.action, e.subject, e.payload, e.signature)
            out.append(replace(e, seq=seq, prev_hash=prev, hash=h))
            prev = h
        return out

    carried = [json.loads(e.payload)["entry"] for e in entries]
    at = {c["action"]: i for i, c in enumerate(carried)}  # register, request, reject
    assert [c["action"] for c in carried] == ["card_edit"] * 3 + ["register", "request", "reject"]
    # the request dropped on the way (so the rejection after it names nothing)
    gap = replay_entries(rechained(entries[: at["request"]] + entries[at["reject"] :]), signers)
    assert [f.message for f in gap.fatal] == [
        f"imported from {local.engine.where()}: its entry 5 is missing"
    ]
    assert gap.versions[("churn", 1)].stage == "none" and not gap.requests
    # the signed statement inside changed (and its hash recomputed): the signature fails
    wrapper = json.loads(entries[at["register"]].payload)
    inner = json.loads(wrapper["entry"]["payload"])
    inner["blob"] = "sha256:" + "0" * 64
    e = wrapper["entry"]
    e["payload"] = canonical(inner)
    e["hash"] = entry_hash(e["prev_hash"], e["seq"], e["ts"], e["actor"], e["action"],
                           e["subject"], e["payload"], e["signature"])  # fmt: skip
    forged = replace(entries[at["register"]], payload=canonical(wrapper))
    changed = replay_entries(
        rechained(entries[: at["register"]] + [forged] + entries[at["register"] + 1 :]), signers
    )
    assert "signature invalid" in changed.fatal[0].message
    assert "was changed" in changed.fatal[0].message
    assert ("churn", 1) not in changed.versions
    with pytest.raises(StatementConflictError, match="rewritten after entry 6 was pushed"):
        with Store.open(project / ".mlops") as local, Store.open(pg_url) as team:
            # a laptop log that no longer holds what was pushed
            from engine_helpers import allow_audit_edits

            allow_audit_edits(local, "update")
            local.conn.execute("UPDATE audit_log SET hash = ? WHERE seq = 6", ("f" * 64,))
            push_statements(local, team, Registry(team).signers)
