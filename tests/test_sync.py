"""push / pull between a laptop's SQLite store and a team store on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter import Store
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key
from mlops_jupyter.registry.audit import verify
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store.cell_history import CellHistory
from mlops_jupyter.store.records import DatasetLink
from mlops_jupyter.store.sync import SyncConflictError, copy_runs

pytestmark = pytest.mark.slow
BIG = os.urandom(3 * (1 << 20) + 11)  # a model of three chunks


def laptop(directory: Path, n: int = 1000) -> dict[str, Any]:
    """A store as a long week leaves it: n runs with params, metrics, curves, data, a model
    each (one of them 3 MB), explanations, one session's chain of earlier cells."""
    history = CellHistory()
    ids = []
    with Store.open(directory) as store:
        for i in range(n):
            history.append(i + 1, f"x = {i}\n")
            run_id = store.create_run(f"exp-{i % 3}", name=f"run-{i}", source=f"fit({i})")
            digest = store.add_artifact(
                run_id, "model", BIG if i == 7 else f"model {i % 50}".encode(), kind="model"
            )
            store.finish_run(
                run_id,
                params={"depth": i % 7, "lr": 0.1},
                metrics={"accuracy": (i % 97) / 97},
                series={"loss": [1.0 / (s + 1 + i % 5) for s in range(20)]},
                datasets=[
                    DatasetLink(
                        f"mj1-blake3:{i % 10:064x}",
                        "train",
                        "X",
                        "ndarray",
                        [10, 2],
                        None,
                        {"x": {"nulls": 0}},
                    )
                ],  # fmt: skip
                history=history.before_last(),
                environment={"python": "3.11", "platform": "linux", "packages": {"a": "1"}},
            )
            store.record_explanation(
                run_id, status="ok", explainer="tree", feature_names=["a"], mean_abs=[0.5],
                matrix=f"shap {i % 20}".encode(),
            )  # fmt: skip
            ids.append(run_id)
        running = store.create_run("exp-0", name="still running")
        assert digest
    return {"ids": ids, "running": running}


def registry_history(project: Path, run_id: str) -> int:
    """ana registers the run's model and bo signs off its promotion; the entries written."""
    keys = {p: generate_key(project / "keys" / p, comment=p) for p in ("ana", "bo")}
    for person, key in keys.items():
        add_signer(project / ".mlops" / "allowed_signers", person, key.key_blob)
    with Store.open(project / ".mlops") as store:
        for section in ("overview", "owners", "intended_use"):
            store.set_card_section(run_id, section, f"{section} text", "ana")
        Registry(store, keys["ana"]).register(run_id, "churn")
        request = Registry(store, keys["ana"]).request_promotion("churn", 1, "production")
        Registry(store, keys["bo"]).approve(request.id)
        return len(store.audit_entries())


def same_runs(a: Store, b: Store, ids: list[str]) -> None:
    for run_id in ids:
        left, right = a.get_run(run_id).to_dict(), b.get_run(run_id).to_dict()
        assert left == right, run_id
        for artifact in b.get_run(run_id).artifacts:
            b.blobs.verify(artifact.blob)


KILL_AFTER = """
import os, signal, sys
from mlops_jupyter import Store
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import generate_key
from mlops_jupyter.registry.audit import verify
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store.sync import copy_runs

def die_halfway(report, total):
    if report.copied >= total // 2:
        os.kill(os.getpid(), signal.SIGKILL)

with Store.open(sys.argv[1], create=False) as local, Store.open(sys.argv[2]) as team:
    copy_runs(local, team, progress=die_halfway)
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_jupyter", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_push_interrupted_halfway_resumes_and_twice_adds_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    made = laptop(tmp_path / ".mlops")
    history = registry_history(tmp_path, made["ids"][3])
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(tmp_path / ".mlops"), pg_url],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    with Store.open(pg_url, start=tmp_path) as team:
        halfway = team.counts()["runs"]
    assert 500 <= halfway < 1000 and halfway % 100 == 0  # whole batches, nothing half-written

    first = cli("push", "--to", pg_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout.strip()
        == (
            f"pushed to the PostgreSQL store at {pg_url.split('//')[1]}: {1000 - halfway} runs "
            f"copied, {halfway} already there, 1 still running (copied next time), "
        )
        + first.stdout.strip().split("(copied next time), ")[1]
    )
    assert "pushed 1000/1000 runs" in first.stderr
    assert f"; {history} audit entries imported" in first.stdout
    again = cli("push", "--to", pg_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 runs copied, 1000 already there" in again.stdout and "0 blobs, 0.0 MB" in again.stdout
    assert "registry already up to date" in again.stdout

    with Store.open(tmp_path / ".mlops") as local, Store.open(pg_url, start=tmp_path) as team:
        counts = {k: v for k, v in local.counts().items()}
        counts["runs"] -= 1  # the running one stays home
        assert team.counts() == counts
        assert team._read("SELECT COUNT(*) FROM blobs")[0][0] == 51 + 20
        assert team._read("SELECT COUNT(*) FROM cell_history")[0][0] == 999
        same_runs(local, team, made["ids"][::37] + [made["ids"][7]])
        big = next(a for a in team.get_run(made["ids"][7]).artifacts if a.name == "model")
        assert team._read("SELECT chunks FROM blobs WHERE digest = ?", (big.blob,)) == [(4,)]
        assert team.blobs.get_bytes(big.blob) == BIG
        registry = Registry(team)
        assert verify(team, registry=registry).ok  # every imported signature checked again
        assert (registry.current("churn").run_id, registry.request(1).approvals) == (
            made["ids"][3],
            ["bo"],
        )


def test_a_conflicting_run_id_is_an_error_naming_it(pg_url: str, tmp_path: Path) -> None:
    made = laptop(tmp_path / ".mlops", n=3)
    with Store.open(pg_url, start=tmp_path) as team:
        team.conn.execute("BEGIN")
        team.conn.execute("INSERT INTO experiments (name, created_at) VALUES ('elsewhere', 0)")
        team.conn.execute(
            "INSERT INTO runs (id, experiment_id, status, started_at) VALUES "
            "(?, (SELECT id FROM experiments WHERE name = 'elsewhere'), 'finished', 1)",
            (made["ids"][1],),
        )
        team.conn.execute("COMMIT")
    out = cli("push", "--to", pg_url, cwd=tmp_path)
    assert out.returncode == 1
    assert f"run {made['ids'][1]} is a different run in the PostgreSQL store" in out.stderr
    with Store.open(tmp_path / ".mlops") as local, Store.open(pg_url, start=tmp_path) as team:
        with pytest.raises(SyncConflictError):
            copy_runs(local, team)
        assert team.counts()["runs"] == 1  # the batch with the conflict wrote nothing


def test_pull_brings_registered_runs_and_experiments_down(pg_url: str, tmp_path: Path) -> None:
    team_side = tmp_path / "team-laptop"
    made = laptop(team_side / ".mlops", n=12)
    with Store.open(team_side / ".mlops") as local, Store.open(pg_url, start=team_side) as team:
        copy_runs(local, team)
        with team.transaction() as conn:  # a registered version, as the registry writes it
            conn.execute("INSERT INTO models (name, created_at) VALUES ('churn', 0)")
            conn.execute(
                "INSERT INTO model_versions (model_name, version, run_id, created_at) "
                "VALUES ('churn', 1, ?, 0)",
                (made["ids"][4],),
            )
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    out = cli("pull", "--from", pg_url, cwd=reviewer)
    assert out.returncode == 0, out.stderr
    assert "1 runs copied, 0 already there" in out.stdout
    more = cli("pull", "--from", pg_url, "-e", "exp-2", cwd=reviewer)
    assert "4 runs copied, 0 already there" in more.stdout, more.stdout + more.stderr
    with Store.open(reviewer / ".mlops") as local, Store.open(pg_url, start=reviewer) as team:
        assert local.counts()["runs"] == 5
        same_runs(team, local, [made["ids"][4], made["ids"][2], made["ids"][11]])
        card = __import__("mlops_jupyter").model_card(made["ids"][4], store=local)
        assert "run-4" in card.to_html()
