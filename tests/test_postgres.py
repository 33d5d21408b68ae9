"""The store on a real PostgreSQL server: the same contract as the SQLite file, and what only
a server has (migrations racing, blobs in the database, restarts, wrong passwords, many
writers)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter import Store
from mlops_jupyter.errors import BlobIntegrityError, StoreError, StoreVersionError
from mlops_jupyter.store import postgres_schema, schema

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    root = str(Path(__file__).parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_both_engines_are_at_the_same_schema_version() -> None:
    assert postgres_schema.LATEST_VERSION == schema.LATEST_VERSION


def test_every_sqlite_table_and_column_exists_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    import sqlite3

    Store.open(tmp_path / ".mlops").close()
    lite = sqlite3.connect(tmp_path / ".mlops" / "store.db")
    tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    expected = {t: {r[1] for r in lite.execute(f"PRAGMA table_info({t})")} for t in tables}
    lite.close()
    with Store.open(pg_url, start=tmp_path) as store:
        rows = store._read(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    for table, columns in expected.items():
        assert columns <= found.get(table, set()), table


def test_a_url_is_never_taken_for_a_folder(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open(pg_url) as store:
        store.record_run("e")
    assert not any(p.name.startswith("postgres") for p in tmp_path.rglob("*"))
    assert store.directory == tmp_path / ".mlops"  # the project's governance folder


def test_env_and_project_file_name_the_team_store(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{pg_url}"\n')
    (tmp_path / "nb").mkdir()
    with Store.open(start=tmp_path / "nb") as store:
        assert store.engine.name == "postgresql"
        run_id = store.record_run("from-project-file")
    monkeypatch.setenv("MLOPS_JUPYTER_STORE", pg_url)
    elsewhere = tmp_path / "elsewhere"  # no project file here: the environment names it
    elsewhere.mkdir()
    with Store.open(start=elsewhere) as store:
        assert store.get_run(run_id).experiment == "from-project-file"


def test_blobs_are_chunked_rows_checked_on_every_read(pg_url: str, tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 17)  # three chunks
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    with Store.open(pg_url, start=tmp_path) as store:
        digest = store.blobs.put_file(source)
        assert store.blobs.put_bytes(data) == digest  # stored once
        assert store._read("SELECT size, chunks FROM blobs") == [(len(data), 3)]
        assert store.blobs.get_bytes(digest) == data
        store.blobs.verify(digest)
        with store.transaction() as conn:
            conn.execute(
                "UPDATE blob_chunks SET data = ? WHERE digest = ? AND seq = 1",
                (b"tampered", digest),
            )
        with pytest.raises(BlobIntegrityError, match="is corrupt: its content hashes to"):
            store.blobs.get_bytes(digest)
        with pytest.raises(BlobIntegrityError, match="is missing from"):
            store.blobs.get_bytes("ab" * 32)


def test_a_newer_schema_is_refused_untouched(pg_url: str, tmp_path: Path) -> None:
    Store.open(pg_url, start=tmp_path).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreVersionError, match="has schema version 999, newer than"):
        Store.open(pg_url, start=tmp_path)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert (
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            == "999"
        )


RACE = """
import sys, time
from mlops_jupyter import Store
url, start_at, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
while time.time() < start_at:
    pass
store = Store.open(url, start=sys.argv[4])
for i in range(n):
    print(store.record_run("race", params={f"p{j}": i * j for j in range(10)},
                           metrics={f"m{j}": i + j / 10 for j in range(5)}), flush=True)
store.close()
"""


def test_eight_writers_on_a_fresh_database_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    start_at = time.time() + 3.0  # schema creation races too
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, pg_url, repr(start_at), "100", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )  # fmt: skip
        for _ in range(8)
    ]
    results = [w.communicate(timeout=300) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert err == ""
    written = {line for out, _ in results for line in out.split()}
    assert len(written) == 800
    with Store.open(pg_url, start=tmp_path) as store:
        assert store.counts()["runs"] == 800
        assert store.counts()["params"] == 8000
        assert {r[0] for r in store._read("SELECT id FROM runs")} == written


def test_unreachable_host_and_wrong_password_fail_fast_and_clearly(
    pg_cluster: Any, tmp_path: Path
) -> None:
    from server_helpers import free_port

    from mlops_jupyter.store.postgres import StoreConnectionError

    port = free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(StoreConnectionError) as refused:
        Store.open(f"postgresql://ana:secret@127.0.0.1:{port}/team", start=tmp_path)
    assert time.monotonic() - start < 5
    assert str(refused.value).startswith(
        f"cannot connect to the PostgreSQL store at ana@127.0.0.1:{port}/team: "
    )
    assert "Connection refused" in str(refused.value) and "secret" not in str(refused.value)
    pg_cluster.admin("CREATE ROLE ana LOGIN PASSWORD 'right'")
    try:
        pg_cluster.admin("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
        hba = pg_cluster.root / "data" / "pg_hba.conf"
        original = hba.read_text()
        hba.write_text("host all ana 127.0.0.1/32 scram-sha-256\n" + original)
        pg_cluster.admin("SELECT pg_reload_conf()")
        url = f"postgresql://ana:wrong@127.0.0.1:{pg_cluster.port}/postgres"
        with pytest.raises(StoreConnectionError) as info:
            Store.open(url, start=tmp_path)
        message = str(info.value)
        assert f"ana@127.0.0.1:{pg_cluster.port}/postgres" in message
        assert "password authentication failed" in message and "wrong" not in message
    finally:
        hba.write_text(original)
        pg_cluster.admin("SELECT pg_reload_conf()")
        pg_cluster.admin("DROP ROLE ana")


def test_a_server_restart_costs_one_write_and_the_next_one_works(
    pg_cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    with Store.open(pg_url, start=tmp_path) as store:
        before = store.record_run("e", name="before")
        pg_cluster.stop("fast")
        with pytest.raises(StoreError, match="lost the connection to the PostgreSQL store"):
            store.record_run("e", name="during")
        pg_cluster.start()
        after = store.record_run("e", name="after")
        assert [store.get_run(r).name for r in (before, after)] == ["before", "after"]
        assert store.counts()["runs"] == 2  # nothing half-written


def test_the_audit_log_cannot_be_edited_on_the_server(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    from mlops_jupyter.store import audit_chain

    with Store.open(pg_url, start=tmp_path) as store:
        with store.transaction() as conn:
            audit_chain.append(conn, "ana", "note", "x", {"a": 1})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
                conn.execute(sql)
        assert conn.execute("SELECT actor FROM audit_log").fetchall() == [("ana",)]


def test_a_tracked_cell_records_into_the_team_store(pg_url: str, tmp_path: Path) -> None:
    from test_magics import Kernel

    kernel = Kernel(tmp_path, env={"MLOPS_JUPYTER_STORE": pg_url})
    try:
        kernel.run("%load_ext mlops_jupyter")
        reply, outputs = kernel.run(
            "%%track -e team -n forest\n"
            "from sklearn.datasets import load_breast_cancer\n"
            "from sklearn.ensemble import RandomForestClassifier\n"
            "from sklearn.model_selection import train_test_split\n"
            "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "model = RandomForestClassifier(n_estimators=20, random_state=0)\n"
            "model.fit(X_train, y_train)\n"
            "print(round(model.score(X_test, y_test), 3))"
        )
        assert reply["status"] == "ok"
        assert [o["text"] for o in outputs if o["type"] == "stream"] == ["0.951\n"]
        kernel.run("import mlops_jupyter as mj; mj.wait(120)")
    finally:
        kernel.shutdown()
    with Store.open(pg_url, start=tmp_path) as store:
        [run_id] = store.runs(experiment="team").run_id
        run = store.get_run(run_id)
        assert run.status == "finished" and run.params["n_estimators"] == 20
        assert list(run.metrics) == ["score"], run.metrics
        assert run.metrics["score"] == pytest.approx(0.951, abs=5e-4)
        assert {d.role for d in run.datasets} == {"train", "eval"}
        [model] = [a for a in run.artifacts if a.kind == "model"]
        import pickle

        assert type(pickle.loads(store.blobs.get_bytes(model.blob))).__name__ == (
            "RandomForestClassifier"
        )
        assert run.explanation is not None and run.explanation.status == "ok"
        assert run.history and run.history[-1]["source"] == "%load_ext mlops_jupyter"


def test_the_rest_api_serves_the_team_store(pg_url: str, tmp_path: Path) -> None:
    from server_helpers import running_server

    with Store.open(pg_url, start=tmp_path) as store:
        run_id = store.record_run("team", name="shared", metrics={"auc": 0.9})
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    (root / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{pg_url}"\n')
    with running_server(root, home) as server:
        body = server.get("mlops-jupyter/api/store").json()
        assert body["engine"] == "postgresql" and body["exists"] is True
        assert body["team_store"] == pg_url.split("//", 1)[1]  # user@host:port/db
        runs = server.get("mlops-jupyter/api/runs", experiment="team").json()
        assert [r["run_id"] for r in runs["runs"]] == [run_id]
        assert server.get(f"mlops-jupyter/api/runs/{run_id}").json()["metrics"] == {"auc": 0.9}
        assert server.get("mlops-jupyter/api/experiments").json()["experiments"][0][
            "experiment"
        ] == ("team")


def test_team_init_makes_roles_whose_writers_cannot_edit_the_log(
    pg_cluster: Any, tmp_path: Path
) -> None:
    import psycopg

    from mlops_jupyter.cli import main as cli
    from mlops_jupyter.errors import StorePermissionError

    db = pg_cluster.create_database()
    for login in ("ana_w", "ursula"):
        pg_cluster.admin(f"DROP ROLE IF EXISTS {login}")
        pg_cluster.admin(f"CREATE ROLE {login} LOGIN")
    owner = pg_cluster.url(db)
    assert cli(["team", "init", owner, "--writer", "ana_w"]) == 0
    assert cli(["team", "init", owner, "--writer", "ana_w"]) == 0  # idempotent
    writer = pg_cluster.url(db, user="ana_w")

    with Store.open(writer, start=tmp_path) as store:  # a writer does the day's work
        run_id = store.record_run("team", params={"a": 1}, metrics={"acc": 0.5})
        store.log_metric(run_id, "acc", 0.6, step=1)
        digest = store.add_artifact(run_id, "model", b"weights", kind="model")
        store.record_explanation(run_id, status="pending")
        store.record_explanation(run_id, status="failed", reason="x")
        from mlops_jupyter.store import audit_chain

        with store.transaction() as conn:
            audit_chain.append(conn, "ana", "note", run_id, {"a": 1})
            conn.execute("INSERT INTO models (name, created_at) VALUES ('m', 0)")
            conn.execute(
                "INSERT INTO model_versions (model_name, version, run_id, blob, created_at) "
                "VALUES ('m', 1, ?, ?, 0)",
                (run_id, digest),
            )
        for sql in (
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DELETE FROM blob_chunks",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        ):
            with pytest.raises(
                StorePermissionError, match="refused this: .*(permission denied|must be owner)"
            ):
                with store.transaction() as conn:
                    conn.execute(sql)
        with pytest.raises(StoreError, match="registered version m:1 and cannot be replaced"):
            store.add_artifact(run_id, "model", b"other weights", kind="model")
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="is immutable"):
            with store.transaction() as conn:  # behind the store's back: the trigger holds
                conn.execute("UPDATE artifacts SET blob = ? WHERE run_id = ?", ("ab" * 32, run_id))
        assert store.get_run(run_id).metrics == {"acc": 0.6}
    with psycopg.connect(owner) as conn:
        assert conn.execute("SELECT actor FROM audit_log").fetchall() == [("ana",)]
    with pytest.raises(StorePermissionError, match="permission denied for table meta"):
        Store.open(pg_cluster.url(db, user="ursula"), start=tmp_path)  # no role, no access


def test_the_server_stopping_mid_cell_costs_that_run_only(
    pg_cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    from test_magics import Kernel

    go = tmp_path / "go"
    kernel = Kernel(tmp_path, env={"MLOPS_JUPYTER_STORE": pg_url})
    try:
        kernel.run("%load_ext mlops_jupyter")
        msg = kernel.send(
            "%%track -n cut --no-shap\nimport os, time\nx = 6 * 7\n"
            f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.01)\nprint(x)"
        )
        with Store.open(pg_url, start=tmp_path) as store:  # the run is open...
            deadline = time.monotonic() + 60
            while store.counts()["runs"] == 0:
                assert time.monotonic() < deadline
        pg_cluster.stop("fast")  # ...when the server goes away
        go.touch()
        reply, outputs = kernel.collect(msg)
        assert reply["status"] == "ok"
        assert [o["text"] for o in outputs if o.get("name") == "stdout"] == ["42\n"]
        stderr = [o["text"] for o in outputs if o.get("name") == "stderr"]
        assert len(stderr) == 1 and stderr[0].count("\n") == 1
        assert (
            stderr[0].startswith("mlops-jupyter: run ")
            and "not saved: lost the connection" in stderr[0]
        )
        pg_cluster.start()
        reply, outputs = kernel.run("%%track -n after --quiet\ny = 1")
        assert reply["status"] == "ok" and outputs == []
    finally:
        kernel.shutdown()
        if pg_cluster.pg_ctl("status").returncode != 0:
            pg_cluster.start()
    with Store.open(pg_url, start=tmp_path) as store:
        runs = dict(zip(store.runs().name, store.runs().status, strict=True))
        assert runs == {"cut": "failed", "after": "finished"}
        cut = store.get_run(store.runs().query("name == 'cut'").run_id.iloc[0])
        assert cut.error.startswith("could not be saved: lost the connection")
        assert cut.params == {} and cut.metrics == {}  # nothing half-written


def test_blobs_can_live_in_a_shared_directory(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "share" / "blobs"
    monkeypatch.setenv("MLOPS_JUPYTER_BLOB_DIR", str(shared))
    with Store.open(pg_url, start=tmp_path) as store:
        run_id = store.record_run("e")
        digest = store.add_artifact(run_id, "model", b"weights on the share", kind="model")
        assert (shared / digest[:2] / digest).read_bytes() == b"weights on the share"
        assert store._read("SELECT COUNT(*) FROM blobs") == [(0,)]
        assert store.blobs.get_bytes(digest) == b"weights on the share"
        (shared / digest[:2] / digest).chmod(0o644)
        (shared / digest[:2] / digest).write_bytes(b"weights on the shore")
        with pytest.raises(BlobIntegrityError, match="is corrupt"):
            store.blobs.get_bytes(digest)
