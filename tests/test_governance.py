"""The attacks on the registry that one determined person tried, each refused or detected;
signed statements from real keys, revocation, gates run again, export, migration."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail
from test_registry import SECTIONS, train_run

from mlops_jupyter.cli import main as cli
from mlops_jupyter.errors import IdentityError, ImmutableArtifactError
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import Signer, generate_key, load_signer
from mlops_jupyter.identity.sshsig import sign
from mlops_jupyter.registry.audit import export, verify, verify_bundle
from mlops_jupyter.registry.policy import parse_policy
from mlops_jupyter.registry.registry import Registry, RegistryError, RegistryIntegrityError
from mlops_jupyter.store import Store
from mlops_jupyter.store.audit_chain import GENESIS, canonical, entry_hash
from mlops_jupyter.store.schema import MIGRATIONS

TWO = parse_policy({"tiers": {"low": {"production": {"signoffs": 2}}}}, "test")
ONE = parse_policy({"tiers": {"low": {"production": {"signoffs": 1}}}}, "test")


@pytest.fixture
def keys(tmp_path: Path, store: Store) -> dict[str, Signer]:
    made = {p: generate_key(tmp_path / "keys" / p, comment=p) for p in ("ana", "bo", "cy")}
    for person, signer in made.items():
        add_signer(store.directory / "allowed_signers", person, signer.key_blob)
    return made


def act(store: Store, keys: dict[str, Signer], who: str, policy: Any = ONE, **kw: Any) -> Any:
    return Registry(store, keys[who], policy, **kw)


def production_flow(store: Store, keys: dict[str, Signer], versions: int = 1) -> list[str]:
    """``versions`` versions of model m, each promoted to production with bo's sign-off."""
    runs = []
    for n in range(versions):
        run = train_run(store.directory, seed=n)
        runs.append(run)
        act(store, keys, "ana").register(run, "m", risk_tier="low")
        request = act(store, keys, "ana").request_promotion("m", n + 1, "production")
        assert act(store, keys, "bo").approve(request.id, "ok").status == "applied"
    return runs


def test_two_approvals_with_one_key_count_once_whatever_the_label(
    store: Store, keys: dict[str, Signer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train_run(store.directory)
    act(store, keys, "ana", TWO).register(run, "m", risk_tier="low")
    request = act(store, keys, "ana", TWO).request_promotion("m", 1, "production")
    assert act(store, keys, "bo", TWO, label="bo").approve(request.id).approvals == ["bo"]
    for label in ("bo-other", "carol"):
        with pytest.raises(RegistryError, match="bo already signed request #1"):
            act(store, keys, "bo", TWO, label=label).approve(request.id)
    # MLOPS_JUPYTER_USER and --user switch labels, never the key that signs
    (store.directory / "policy.toml").write_text("[tiers.low.production]\nsignoffs = 2\n")
    env = {"MLOPS_JUPYTER_KEY": str(tmp_path / "keys" / "ana")}
    for label in ("alice-other", "alice-third"):
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {**env, "MLOPS_JUPYTER_USER": label}.items():
                patch.setenv(name, value)
            assert cli(["--store", str(store.directory), "approve", "1", "--user", label]) == 1
        assert "ana requested #1 and cannot approve it (four eyes)" in capsys.readouterr().err
    final = Registry(store).request(request.id)
    assert (final.status, final.approvals, final.required_signoffs) == ("pending", ["bo"], 2)


def test_a_key_not_in_the_allowed_signers_cannot_act(
    store: Store, keys: dict[str, Signer], tmp_path: Path
) -> None:
    stranger = generate_key(tmp_path / "keys" / "mallory")
    run = train_run(store.directory)
    with pytest.raises(IdentityError) as info:
        Registry(store, stranger).register(run, "m")
    message = str(info.value)
    assert f"your key {stranger.fingerprint}" in message and "allowed_signers" in message
    assert "mlops-jupyter keys init --principal NAME" in message
    (store.directory / "allowed_signers").unlink()
    with pytest.raises(IdentityError, match="no allowed-signers file at .*keys init"):
        act(store, keys, "ana").register(run, "m")
    assert store._read("SELECT COUNT(*) FROM model_versions") == [(0,)]


def test_raw_sql_on_the_stage_is_detected(
    store: Store, keys: dict[str, Signer], capsys: pytest.CaptureFixture[str]
) -> None:
    production_flow(store, keys, versions=3)
    head = store.audit_head()
    assert Registry(store).current("m").version == 3
    store.conn.execute("UPDATE model_versions SET stage = 'archived' WHERE version = 3")
    store.conn.execute("UPDATE model_versions SET stage = 'production' WHERE version = 1")
    expected = (
        "model_versions m:1: stage is 'production' in the table but 'archived' in the signed log"
    )
    for read in (lambda r: r.current("m"), lambda r: r.load_model("m"), lambda r: r.models()):
        with pytest.raises(RegistryIntegrityError, match=expected):
            read(Registry(store))
    report = verify(store, expect_head=head)
    assert not report.ok and expected in str(report)
    assert "model_versions m:3: stage is 'archived' in the table but 'production'" in str(report)
    assert cli(["--store", str(store.directory), "audit", "verify", "--expect-head", head]) == 4
    assert expected in capsys.readouterr().out


class _Evil:
    """Unpickling this creates a directory: proof that a blob was (not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.mkdir, (str(self.marker),))


def test_a_swapped_blob_that_hashes_correctly_is_refused(
    store: Store, keys: dict[str, Signer], tmp_path: Path
) -> None:
    production_flow(store, keys)
    marker = tmp_path / "unpickled"
    swapped = store.blobs.put_bytes(pickle.dumps(_Evil(marker)))  # valid, under its own hash
    with pytest.raises(sqlite3.DatabaseError, match="run and model blob are immutable"):
        store.conn.execute("UPDATE model_versions SET blob = ?", (swapped,))
    store.conn.execute("DROP TRIGGER model_versions_fixed")
    store.conn.execute("UPDATE model_versions SET blob = ?", (swapped,))
    with pytest.raises(RegistryIntegrityError, match=f"model_versions m:1: blob is '{swapped}'"):
        Registry(store).load_model("m")
    assert not marker.exists()  # nothing was unpickled
    assert "blob is" in str(verify(store))


def test_the_model_artifact_of_a_registered_run_is_immutable(
    store: Store, keys: dict[str, Signer]
) -> None:
    [run] = production_flow(store, keys)
    with pytest.raises(ImmutableArtifactError, match="is the model of registered version m:1"):
        store.add_artifact(run, "model", pickle.dumps("another model"), kind="model")
    with pytest.raises(sqlite3.DatabaseError, match="registered version is immutable"):
        store.conn.execute("DELETE FROM artifacts WHERE run_id = ?", (run,))
    store.add_artifact(run, "notes", b"other artifacts of the run are fine")
    assert Registry(store).load_model("m").__class__.__name__ == "LogisticRegression"


def _rewrite(store: Store, change: Any) -> None:
    """Drop the guards and reinsert the whole log, each entry passed through ``change``,
    with every hash recomputed (what a determined person with write access can do)."""
    conn = store.conn
    for trigger in (
        "audit_log_no_update",
        "audit_log_no_delete",
        "signoffs_no_update",
        "signoffs_no_delete",
    ):
        conn.execute(f"DROP TRIGGER {trigger}")
    rows = store.audit_entries()
    conn.execute("DELETE FROM audit_log")
    prev = GENESIS
    for seq, ts, actor, action, subject, payload, _, _, signature in rows:
        actor, payload, signature = change(actor, action, payload, signature, prev)
        digest = entry_hash(prev, seq, ts, actor, action, subject, payload, signature)
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, actor, action, subject, payload, prev, digest, signature),
        )
        prev = digest
    conn.execute("UPDATE signoffs SET user = 'carol'")


def test_a_consistent_rewrite_of_the_whole_chain_is_detected(
    store: Store, keys: dict[str, Signer]
) -> None:
    production_flow(store, keys)

    def unsigned(actor: str, action: str, payload: str, signature: Any, prev: str) -> Any:
        return ("carol" if actor == "bo" else actor), payload.replace('"bo"', '"carol"'), None

    _rewrite(store, unsigned)
    report = verify(store)
    assert not report.ok
    assert "BROKEN at entry 1: unsigned: registry statements must be signed" in str(report)
    assert "entry 3 (approve on m:1): unsigned: registry statements must be signed" in str(report)
    assert "the log does not contain the anchored head" in str(report)
    with pytest.raises(RegistryIntegrityError, match="does not contain the head anchored"):
        Registry(store).current("m")


def test_a_rewrite_signed_with_the_requesters_own_key_is_detected(
    store: Store, keys: dict[str, Signer]
) -> None:
    production_flow(store, keys)
    (store.directory / "audit_anchor").unlink()  # even with no anchor at all

    def resign(actor: str, action: str, payload: str, signature: Any, prev: str) -> Any:
        fields = {**json.loads(payload), "prev": prev}
        text = canonical(fields)
        return actor, text, sign(keys["ana"], text.encode())  # ana signs as bo too

    _rewrite(store, resign)
    report = verify(store)
    assert not report.ok
    assert "may not sign as bo for mlops-jupyter" in str(report)
    assert f"key {keys['ana'].fingerprint}" in str(report)


def test_a_revoked_key_fails_later_and_is_reported_earlier(
    store: Store, keys: dict[str, Signer], tmp_path: Path
) -> None:
    production_flow(store, keys)  # bo signs off m:1
    stale = tmp_path / "stale_allowed_signers"  # a colleague who has not pulled the revocation
    shutil.copy(store.directory / "allowed_signers", stale)
    assert act(store, keys, "cy").revoke("bo", "laptop stolen") == [keys["bo"].fingerprint]
    lines = (store.directory / "allowed_signers").read_text().splitlines()
    assert [line.split()[0] for line in lines if not line.startswith("#")] == ["ana", "cy"]
    with pytest.raises(IdentityError, match="is not in the allowed signers"):
        act(store, keys, "bo").approve(1)
    run = train_run(store.directory, seed=5)
    act(store, keys, "ana").register(run, "m")
    request = act(store, keys, "ana").request_promotion("m", 2, "production")
    act(store, keys, "bo", allowed_signers=stale).approve(request.id)  # written by a stale client
    report = verify(store)
    assert not report.ok
    text = str(report)
    assert f"signed with bo's key {keys['bo'].fingerprint}, revoked at entry 5 by cy" in text
    assert "note: entry 3 (approve on m:1): signed by bo with a since-revoked key" in text
    moved = "model_versions m:1: stage is 'archived' in the table but 'production'"
    with pytest.raises(RegistryIntegrityError, match=moved):
        Registry(store).current("m")


def test_gates_run_again_at_approval(store: Store, keys: dict[str, Signer]) -> None:
    run = train_run(store.directory)
    for key, text in SECTIONS.items():
        store.set_card_section(run, key, text, "ana")
    ana = act(store, keys, "ana", None)  # the default policy: medium tier needs card sections
    ana.register(run, "m")
    request = ana.request_promotion("m", 1, "production")
    assert request.status == "pending"
    store.conn.execute("DELETE FROM card_sections WHERE section = 'owners'")
    with pytest.raises(RegistryError) as info:
        act(store, keys, "bo", None).approve(request.id)
    assert str(info.value) == (
        f"request #{request.id} is blocked: the evidence changed since the request (the card "
        "sections) and gates now failing: card_sections: card sections not written: owners "
        "(write them with %model_card REF --edit or mlops-jupyter card-sections). Nothing was "
        "approved; fix it and request the promotion again"
    )
    after = Registry(store).request(request.id)
    assert (after.status, after.approvals) == ("blocked", [])
    assert after.reason and after.reason.startswith("the evidence changed")
    assert [e["action"] for e in Registry(store).history("m")][-1] == "refused"
    assert verify(store).ok


def test_production_moving_after_the_request_refuses_the_transition(
    store: Store, keys: dict[str, Signer]
) -> None:
    production_flow(store, keys)  # m:1 in production
    for seed in (1, 2):
        act(store, keys, "ana").register(train_run(store.directory, seed=seed), "m")
    waiting = act(store, keys, "ana").request_promotion("m", 2, "production")
    other = act(store, keys, "ana").request_promotion("m", 3, "production")
    assert act(store, keys, "cy").approve(other.id).status == "applied"  # production moved
    with pytest.raises(RegistryError, match="evidence changed since the request \\(the production"):
        act(store, keys, "bo").approve(waiting.id)
    assert Registry(store).current("m").version == 3


def test_an_exported_bundle_verifies_with_ssh_keygen(
    store: Store, keys: dict[str, Signer], tmp_path: Path
) -> None:
    if shutil.which("ssh-keygen") is None:
        skip_or_fail("ssh-keygen not found (apt-get install openssh-client)")
    production_flow(store, keys)
    bundle = export(store, tmp_path / "bundle")
    assert verify_bundle(bundle).ok
    done = subprocess.run(
        ["sh", str(bundle / "verify-with-ssh-keygen.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    good = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Good")]
    assert len(good) == 4  # register, request, approve, transition
    assert (
        'Good "mlops-jupyter" signature for bo with ED25519 key ' + keys["bo"].fingerprint in good
    )
    statement = next((bundle / "statements").glob("*-approve.json"))
    statement.write_bytes(statement.read_bytes().replace(b'"ok"', b'"OK"'))
    tampered = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(bundle / "allowed_signers"),
            "-I",
            "bo",
            "-n",
            "mlops-jupyter",
            "-s",
            str(statement.with_suffix(".sig")),
        ],
        input=statement.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert tampered.returncode != 0
    lines = (bundle / "entries.jsonl").read_text().splitlines()
    entry = json.loads(lines[2])
    entry["actor"] = "cy"
    lines[2] = json.dumps(entry)
    (bundle / "entries.jsonl").write_text("\n".join(lines) + "\n")
    assert not verify_bundle(bundle).ok


def _v2_store(directory: Path) -> None:
    """A store as version 2 wrote it, with an applied and a pending unsigned request."""
    from mlops_jupyter.store.connection import _statements

    directory.mkdir(parents=True)
    conn = sqlite3.connect(directory / "store.db", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for migration in MIGRATIONS[:2]:
        for statement in _statements(migration.sql):
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO experiments VALUES (1, 'e', 0)")
    conn.execute(
        "INSERT INTO runs (id, experiment_id, status, started_at) VALUES "
        "('a' || hex(zeroblob(15)), 1, 'finished', 0)"
    )
    run = conn.execute("SELECT id FROM runs").fetchone()[0]
    conn.execute("INSERT INTO models VALUES ('old', 'low', NULL, 0, 'ana')")
    conn.execute(
        "INSERT INTO model_versions VALUES ('old', 1, ?, NULL, 'production', 0, 'ana')", (run,)
    )
    conn.execute("INSERT INTO model_versions VALUES ('old', 2, ?, NULL, 'none', 0, 'ana')", (run,))
    conn.execute(
        "INSERT INTO promotion_requests VALUES (1, 'old', 1, 'none', 'production', "
        "'applied', 'ana', '', '[]', 1, 0, 0)"
    )
    conn.execute(
        "INSERT INTO promotion_requests VALUES (2, 'old', 2, 'none', 'production', "
        "'pending', 'ana', '', '[]', 1, 0, NULL)"
    )
    conn.execute("INSERT INTO signoffs VALUES (1, 'bo', 'approve', '', 0)")
    log = [
        ("ana", "register", "old:1", {"run_id": run, "blob": None}),
        (
            "ana",
            "request",
            "old:1",
            {"request": 1, "to": "production", "comment": "", "tier": "low"},
        ),
        ("ana", "gates", "old:1", {"request": 1, "results": []}),
        ("bo", "approve", "old:1", {"request": 1, "comment": ""}),
        (
            "bo",
            "transition",
            "old:1",
            {"request": 1, "from": "none", "to": "production", "archived": None},
        ),
        ("ana", "register", "old:2", {"run_id": run, "blob": None}),
        (
            "ana",
            "request",
            "old:2",
            {"request": 2, "to": "production", "comment": "", "tier": "low"},
        ),
        ("ana", "gates", "old:2", {"request": 2, "results": []}),
    ]
    prev = GENESIS
    for seq, (actor, action, subject, payload) in enumerate(log, 1):
        text = canonical(payload)
        digest = entry_hash(prev, seq, float(seq), actor, action, subject, text)
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, float(seq), actor, action, subject, text, prev, digest),
        )
        prev = digest
    conn.close()


def test_an_old_store_migrates_and_stays_verifiable(tmp_path: Path, keys_dir: Path) -> None:
    _v2_store(tmp_path / ".mlops")
    with Store.open(tmp_path / ".mlops") as store:
        ana = generate_key(keys_dir / "ana")
        add_signer(store.directory / "allowed_signers", "ana", ana.key_blob)
        report = verify(store)
        assert report.ok, str(report)
        assert "8 entries written before signing: checked by the hash chain only" in str(report)
        registry = Registry(store, ana)
        assert registry.current("old").version == 1
        old = registry.request(1)
        assert [(s.principal, s.verified) for s in old.signoffs] == [("bo", False)]
        with pytest.raises(RegistryError, match="made before registry actions were signed"):
            registry.approve(2)
        marker = store._read("SELECT seq, action FROM audit_log WHERE seq = 9")
        assert marker == [(9, "signing")]
        run = store.record_run("e", name="new")
        store.add_artifact(run, "model", pickle.dumps("a model"), kind="model")
        assert registry.register(run, "old").version == 3  # signed, keeps the old tier
        assert registry.models()[0]["risk_tier"] == "low"
        assert verify(store).ok


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


def test_keys_init_gives_a_newcomer_a_key_and_a_principal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    store_dir = tmp_path / ".mlops"
    Store.open(store_dir).close()
    base = ["--store", str(store_dir)]
    assert cli([*base, "keys", "show"]) == 1
    assert "mlops-jupyter keys init" in capsys.readouterr().out
    assert cli([*base, "keys", "init", "--principal", "ana@example.com"]) == 0
    printed = capsys.readouterr().out
    key = tmp_path / "home" / ".ssh" / "id_ed25519"
    signer = load_signer(key)
    assert printed.startswith(f"created key {key} ({signer.fingerprint})\n")
    assert f"added ana@example.com to {store_dir / 'allowed_signers'}" in printed
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert cli([*base, "keys", "init", "--principal", "ana@example.com"]) == 0
    assert "using key" in (again := capsys.readouterr().out) and "is already in" in again
    assert cli([*base, "keys", "show"]) == 0
    assert "principal ana@example.com" in capsys.readouterr().out
