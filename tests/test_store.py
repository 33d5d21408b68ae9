"""The store on a real SQLite file: layout, read API, writes, migrations, bad input."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops_jupyter import Store
from mlops_jupyter.errors import (
    AmbiguousRunError,
    BlobIntegrityError,
    CorruptStoreError,
    RunNotFoundError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
    StoreVersionError,
)
from mlops_jupyter.store import DatasetLink, find_store_dir, schema
from mlops_jupyter.store.cell_history import cell_hash

TABLES = {
    "meta", "experiments", "runs", "params", "metrics", "datasets", "run_datasets",
    "explanations", "artifacts", "environments", "models", "model_versions",
    "promotion_requests", "signoffs", "card_sections", "audit_log",
}  # fmt: skip


@pytest.fixture
def file_store(store_dir: Path) -> Iterator[Store]:
    """An SQLite store, for what only a file has (pragmas, blob files, sqlite-utils)."""
    with Store.open(store_dir) as opened:
        yield opened


@pytest.fixture
def store(any_store: Store) -> Store:
    """The store tests of this module run on both engines (SQLite file, PostgreSQL)."""
    return any_store


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- discovery
def test_discovery_prefers_nearest_existing_store(tmp_path: Path) -> None:
    (tmp_path / ".mlops").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_store_dir(deep) == (tmp_path / ".mlops").resolve()
    (tmp_path / "a" / ".mlops").mkdir()
    assert find_store_dir(deep) == (tmp_path / "a" / ".mlops").resolve()


def test_discovery_uses_git_root_then_cwd(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    nb_dir = tmp_path / "repo" / "notebooks"
    nb_dir.mkdir()
    assert find_store_dir(nb_dir) == (tmp_path / "repo" / ".mlops").resolve()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert find_store_dir(plain) == (plain / ".mlops").resolve()


def test_discovery_explicit_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_store_dir(explicit=tmp_path / "x" / "store.db") == (tmp_path / "x").resolve()
    monkeypatch.setenv("MLOPS_JUPYTER_STORE", str(tmp_path / "envstore"))
    assert find_store_dir(tmp_path) == (tmp_path / "envstore").resolve()
    assert find_store_dir(tmp_path, explicit=tmp_path / "arg") == (tmp_path / "arg").resolve()


def test_discovery_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "nb").mkdir(parents=True)
    assert find_store_dir(root / "nb", root=root) == (root / "nb" / ".mlops").resolve()
    # the kernel would use a store above the root: refused by name, never swapped for another
    (tmp_path / ".mlops").mkdir()
    above = str((tmp_path / ".mlops").resolve())
    with pytest.raises(StorePermissionError, match=f"is {above}, outside the server root"):
        find_store_dir(root / "nb", root=root)
    with pytest.raises(StorePermissionError, match="outside the server root"):
        find_store_dir(tmp_path, root=root)
    with pytest.raises(StorePermissionError, match="outside the server root"):
        find_store_dir(root, root=root, explicit=tmp_path / ".mlops")


# ------------------------------------------------------------------------------ layout
def test_open_creates_layout_and_pragmas(file_store: Store, store_dir: Path) -> None:
    assert (store_dir / "store.db").is_file()
    conn = file_store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -32768  # KiB
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert TABLES <= names
    assert file_store.schema_version == schema.LATEST_VERSION
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(schema.LATEST_VERSION)
    assert meta["written_by"] == __import__("mlops_jupyter").__version__


def test_open_is_idempotent(store_dir: Path) -> None:
    with Store.open(store_dir) as first:
        run_id = first.record_run("e", params={"a": 1})
    with Store.open(store_dir) as second:
        assert second.get_run(run_id).params == {"a": 1}
        assert second.schema_version == schema.LATEST_VERSION


def test_open_without_create_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match=str(tmp_path / "nothing")):
        Store.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_closed_store_raises(store_dir: Path) -> None:
    opened = Store.open(store_dir)
    opened.close()
    with pytest.raises(StoreError, match="closed"):
        opened.runs()


def test_sqlite_utils_view(file_store: Store) -> None:
    file_store.record_run("e", name="r1")
    assert file_store.db["runs"].count == 1
    assert "params" in file_store.db.table_names()


# ------------------------------------------------------------------------ reads/writes
@pytest.fixture
def populated(store: Store) -> dict[str, str]:
    ids = {}
    ids["a"] = store.record_run(
        "exp1", name="a", started_at=1000.0, ended_at=1002.5,
        params={"lr": 0.1, "depth": 3, "kind": "rf"}, metrics={"accuracy": 0.9, "loss": 0.3},
    )  # fmt: skip
    ids["b"] = store.record_run(
        "exp1", name="b", started_at=2000.0, ended_at=2001.0,
        params={"lr": 0.01, "depth": 5}, metrics={"accuracy": 0.95},
    )  # fmt: skip
    ids["c"] = store.record_run(
        "exp2", name="c", started_at=3000.0, ended_at=3004.0, status="failed",
        params={"lr": 0.5}, metrics={"loss": 1.5}, error="Traceback...\nValueError: boom",
    )  # fmt: skip
    return ids


def test_runs_frame_columns_and_values(store: Store, populated: dict[str, str]) -> None:
    frame = store.runs()
    assert list(frame.columns) == [
        "run_id", "experiment", "name", "status", "started_at", "duration_s",
        "params.depth", "params.kind", "params.lr", "metrics.accuracy", "metrics.loss",
    ]  # fmt: skip
    assert list(frame["name"]) == ["c", "b", "a"]  # newest first
    assert list(frame["run_id"]) == [populated["c"], populated["b"], populated["a"]]
    assert list(frame["status"]) == ["failed", "finished", "finished"]
    assert list(frame["duration_s"]) == [4.0, 1.0, 2.5]
    assert frame["started_at"].iloc[2] == pd.Timestamp(1000.0, unit="s", tz="UTC")
    assert frame["params.lr"].tolist() == [0.5, 0.01, 0.1]
    assert frame["params.depth"].tolist() == [None, 5, 3]
    assert frame["params.kind"].tolist() == [None, None, "rf"]
    acc = frame["metrics.accuracy"].tolist()
    assert math.isnan(acc[0]) and acc[1:] == [0.95, 0.9]
    assert frame["metrics.accuracy"].dtype == "float64"


def test_runs_filters_limit_and_order(store: Store, populated: dict[str, str]) -> None:
    assert list(store.runs(experiment="exp1")["name"]) == ["b", "a"]
    assert list(store.runs(status="failed")["name"]) == ["c"]
    assert list(store.runs(limit=1)["name"]) == ["c"]
    assert list(store.runs(order_by="metrics.accuracy")["name"]) == ["a", "b", "c"]
    assert list(store.runs(order_by="-metrics.accuracy")["name"]) == ["b", "a", "c"]
    assert list(store.runs(order_by="-metrics.loss", limit=2)["name"]) == ["c", "a"]
    assert list(store.runs(order_by="duration_s")["name"]) == ["b", "a", "c"]
    assert list(store.runs(order_by="-params.depth")["name"]) == ["b", "a", "c"]
    assert list(store.runs(order_by="name")["name"]) == ["a", "b", "c"]
    assert store.runs(experiment="nope").empty
    assert list(store.runs(experiment="nope").columns) == [
        "run_id", "experiment", "name", "status", "started_at", "duration_s",
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ["bogus", "metrics.", "-", "params."])
def test_runs_rejects_unknown_order(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="cannot order runs by"):
        store.runs(order_by=bad)


def test_experiments(store: Store, populated: dict[str, str]) -> None:
    frame = store.experiments()
    assert list(frame["experiment"]) == ["exp1", "exp2"]
    assert list(frame["runs"]) == [2, 1]
    assert frame["last_run_at"].iloc[0] == pd.Timestamp(2000.0, unit="s", tz="UTC")


def test_get_run_full_record(store: Store) -> None:
    run_id = store.create_run(
        "exp", name="full", source="model.fit(X, y)", execution_count=7,
        notebook_path="nb/train.ipynb", kernel_id="k-1", user="ada", tags={"team": "risk"},
    )  # fmt: skip
    store.log_metric(run_id, "loss", 0.9, step=0)
    store.log_metric(run_id, "loss", 0.5, step=1)
    link = DatasetLink(
        hash="mj1-blake3:" + "ab" * 32, role="train", variable="X", kind="DataFrame",
        shape=[10, 3], schema=[{"name": "a", "dtype": "int64"}], profile={"a": {"nulls": 0}},
    )  # fmt: skip
    digest = store.add_artifact(run_id, "model", b"model-bytes", kind="model")
    store.finish_run(
        run_id, params={"n": 10, "name": "rf", "flags": [1, "x", None], "obj": object()},
        param_sources={"n": "estimator"}, metrics={"acc": 0.8}, datasets=[link],
        environment={"python": "3.11.7", "platform": "linux", "packages": {"numpy": "2.0"}},
        git_commit="abc123", git_dirty=True, history=[{"execution_count": 1, "source": "x = 1"}],
        capture_errors=[{"step": "shap", "error": "boom"}],
    )  # fmt: skip
    run = store.get_run(run_id)
    assert run.run_id == run_id and run.experiment == "exp" and run.name == "full"
    assert run.status == "finished" and run.duration_s is not None and run.duration_s >= 0
    assert run.params["n"] == 10 and run.params["flags"] == [1, "x", None]
    assert run.params["obj"].startswith("<object object at")
    assert run.truncated_params == frozenset({"obj"})
    assert run.param_sources == {"n": "estimator", "name": "user", "flags": "user", "obj": "user"}
    assert run.metrics == {"acc": 0.8, "loss": 0.5}
    assert [(p.step, p.value) for p in run.metric_history["loss"]] == [(0, 0.9), (1, 0.5)]
    assert run.datasets == [link]
    assert [(a.name, a.kind, a.blob, a.size) for a in run.artifacts] == [
        ("model", "model", digest, 11)
    ]
    assert store.blobs.get_bytes(digest) == b"model-bytes"
    assert run.environment is not None and run.environment.packages == {"numpy": "2.0"}
    assert (run.code, run.execution_count, run.notebook_path) == (
        "model.fit(X, y)",
        7,
        "nb/train.ipynb",
    )
    assert (run.kernel_id, run.user, run.git_commit, run.git_dirty) == (
        "k-1",
        "ada",
        "abc123",
        True,
    )
    assert run.tags == {"team": "risk"}
    assert run.history == [
        {"execution_count": 1, "source_hash": cell_hash("x = 1")[:16], "source": "x = 1"}
    ]
    assert run.capture_errors == [{"step": "shap", "error": "boom"}]
    assert run.to_dict()["metric_history"]["loss"][1]["value"] == 0.5


def test_environment_rows_are_shared(store: Store) -> None:
    env = {"python": "3.11", "platform": "linux", "packages": {"a": "1"}}
    first = store.record_run("e", environment=env)
    second = store.record_run("e", environment=dict(env))
    env_a, env_b = store.get_run(first).environment, store.get_run(second).environment
    assert env_a is not None and env_a == env_b
    assert store.conn.execute("SELECT COUNT(*) FROM environments").fetchone()[0] == 1


def test_nan_and_inf_metrics_are_stored_and_flagged(store: Store) -> None:
    run_id = store.record_run(
        "e", metrics={"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf, "ok": 1}
    )
    run = store.get_run(run_id)
    assert math.isnan(run.metrics["nan"])
    assert run.metrics["inf"] == math.inf and run.metrics["ninf"] == -math.inf
    assert run.metrics["ok"] == 1.0
    flags = dict(store.conn.execute("SELECT key, flag FROM metrics WHERE run_id = ?", (run_id,)))
    assert flags == {"nan": "nan", "inf": "inf", "ninf": "-inf", "ok": None}
    assert run.to_dict()["metrics"] == {
        "inf": "Infinity", "nan": "NaN", "ninf": "-Infinity", "ok": 1.0,
    }  # fmt: skip


def test_param_types_round_trip(store: Store) -> None:
    import numpy as np

    params = {"i": 3, "f": 0.25, "s": "gini", "b": True, "n": None, "t": (1, 2), "np": np.int64(7)}
    run = store.get_run(store.record_run("e", params=params))
    assert run.params == {
        "i": 3,
        "f": 0.25,
        "s": "gini",
        "b": True,
        "n": None,
        "t": [1, 2],
        "np": 7,
    }
    assert type(run.params["np"]) is int and run.truncated_params == frozenset()
    long = store.get_run(store.record_run("e", params={"big": "x" * 10, "obj": [object()] * 200}))
    assert len(long.params["obj"]) == 500 and long.params["obj"].endswith("...")
    assert long.truncated_params == frozenset({"obj"})


def test_get_run_by_prefix_and_unknown_ids(store: Store) -> None:
    run_id = store.record_run("e")
    assert store.get_run(run_id[:6]).run_id == run_id
    assert store.get_run(run_id.upper()).run_id == run_id
    with pytest.raises(RunNotFoundError, match="deadbeef") as info:
        store.get_run("deadbeef")
    assert isinstance(info.value, KeyError) and info.value.run_id == "deadbeef"
    with pytest.raises(KeyError, match="not-hex!"):
        store.get_run("not-hex!")
    with pytest.raises(KeyError, match="at least 4"):
        store.get_run(run_id[:3])


def test_ambiguous_prefix(store: Store) -> None:
    ids = [store.record_run("e") for _ in range(40)]
    prefix = min((a for a in ids for b in ids if a != b and a[0] == b[0]), default=None)
    assert prefix is not None  # 40 ids over 16 first letters must collide
    store.conn.execute("UPDATE runs SET id = 'aaaa' || substr(id, 5) WHERE id IN (?, ?)", ids[:2])
    with pytest.raises(AmbiguousRunError, match="matches 2 runs"):
        store.get_run("aaaa")


def test_finish_unknown_run_raises(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="feedface"):
        store.finish_run("feedface")


def test_nested_transaction_rolls_back_inner_only(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO experiments (name, created_at) VALUES ('outer', 0)")
        with pytest.raises(RuntimeError):
            with store.transaction() as inner:
                inner.execute("INSERT INTO experiments (name, created_at) VALUES ('inner', 0)")
                raise RuntimeError("undo inner")
    names = [r[0] for r in store.conn.execute("SELECT name FROM experiments")]
    assert names == ["outer"]


def test_dead_process_runs_become_interrupted(store_dir: Path) -> None:
    code = (
        "import os, sys; from mlops_jupyter.store import Store; "
        f"s = Store.open({str(store_dir)!r}); print(s.create_run('e', name='dies'), flush=True); "
        "os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    run_id = out.stdout.strip()
    with Store.open(store_dir) as reopened:
        run = reopened.get_run(run_id)
        assert run.status == "interrupted"
        assert run.error == "the process running it exited"
        live = reopened.create_run("e", name="alive")  # our own process: left running
        assert reopened.mark_dead_runs_interrupted() == []
        assert reopened.get_run(live).status == "running"


# --------------------------------------------------------------------------- migrations
def test_older_store_is_migrated(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(store_dir) as old:
        run_id = old.record_run("e", params={"a": 1})
    n = schema.LATEST_VERSION + 1
    later = schema.Migration(n, "add notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, x);")
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, later))
    monkeypatch.setattr(schema, "LATEST_VERSION", n)
    with Store.open(store_dir) as new:
        assert new.schema_version == n
        assert new.db["notes"].exists()
        assert new.get_run(run_id).params == {"a": 1}


def test_migration_failure_rolls_back(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store.open(store_dir).close()
    n = schema.LATEST_VERSION + 1
    bad = schema.Migration(n, "broken", "CREATE TABLE ok_table (x);\nCREATE TABLE runs (x);")
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, bad))
    monkeypatch.setattr(schema, "LATEST_VERSION", n)
    with pytest.raises(StoreError, match=rf"migration {n} \(broken\) failed .*already exists"):
        Store.open(store_dir)
    conn = sqlite3.connect(store_dir / "store.db")
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(n - 1),)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='ok_table'").fetchone() is None
    conn.close()


def test_newer_store_is_refused_untouched(store_dir: Path) -> None:
    Store.open(store_dir).close()
    conn = sqlite3.connect(store_dir / "store.db")
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = file_digest(store_dir / "store.db")
    with pytest.raises(StoreVersionError, match="schema version 999, newer") as info:
        Store.open(store_dir)
    assert str(store_dir / "store.db") in str(info.value)
    assert file_digest(store_dir / "store.db") == before


# ---------------------------------------------------------------------------- bad input
def test_non_sqlite_file_is_refused_untouched(store_dir: Path) -> None:
    store_dir.mkdir()
    db = store_dir / "store.db"
    db.write_bytes(b"this is a CSV, not a database\n" * 100)
    before = file_digest(db)
    with pytest.raises(CorruptStoreError, match="not an SQLite database") as info:
        Store.open(store_dir)
    assert str(db) in str(info.value)
    assert file_digest(db) == before
    assert sorted(p.name for p in store_dir.iterdir()) == ["store.db"]


def test_truncated_store_is_refused_untouched(store_dir: Path) -> None:
    with Store.open(store_dir) as full:
        for _ in range(300):
            full.record_run("e", params={f"p{j}": "v" * 50 for j in range(10)})
        full.checkpoint()
    db = store_dir / "store.db"
    for extra in ("store.db-wal", "store.db-shm"):
        (store_dir / extra).unlink(missing_ok=True)
    data = db.read_bytes()
    assert len(data) > 8192
    db.write_bytes(data[: len(data) // 2])
    before = file_digest(db)
    with pytest.raises(CorruptStoreError, match="truncated") as info:
        Store.open(store_dir)
    assert str(db) in str(info.value)
    assert file_digest(db) == before


def test_damaged_pages_give_corrupt_store_error(store_dir: Path) -> None:
    with Store.open(store_dir) as full:
        full.record_run("e", params={"a": 1})
        full.checkpoint()
    db = store_dir / "store.db"
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page, keep the header
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=str(db)):
        Store.open(store_dir)


def _run_without_dac_override(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` so that file permissions apply even to root (CAP_DAC_OVERRIDE dropped)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})


def test_uncreatable_store_directory_gives_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        code = (
            "from mlops_jupyter import Store\n"
            f"try:\n    Store.open({str(locked / '.mlops')!r})\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n"
        )
        out = _run_without_dac_override(code)
    finally:
        locked.chmod(0o755)
    assert out.stdout.startswith("StorePermissionError cannot create the store directory"), (
        out.stdout + out.stderr
    )


# -------------------------------------------------------------------------------- blobs
def test_blobs_are_content_addressed_and_atomic(file_store: Store) -> None:
    digest = file_store.blobs.put_bytes(b"hello")
    again = file_store.blobs.put_bytes(b"hello")
    path = file_store.blobs.path(digest)
    assert digest == again and len(digest) == 64
    assert path.parent.name == digest[:2] and path.name == digest
    assert file_store.blobs.get_bytes(digest) == b"hello"
    assert [p.name for p in path.parent.iterdir()] == [digest]  # no temp files left


def test_blob_from_file(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 5))
    digest = store.blobs.put_file(source)
    assert store.blobs.get_bytes(digest) == source.read_bytes()
    assert digest == store.blobs.put_bytes(source.read_bytes())


def test_tampered_blob_is_refused(file_store: Store) -> None:
    digest = file_store.blobs.put_bytes(b"trusted model")
    path = file_store.blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"evil model")
    with pytest.raises(BlobIntegrityError, match="corrupt") as info:
        file_store.blobs.get_bytes(digest)
    assert str(path) in str(info.value)
    path.unlink()
    with pytest.raises(BlobIntegrityError, match="missing"):
        file_store.blobs.get_bytes(digest)


@pytest.mark.parametrize("bad", ["", "ABC", "../../etc/passwd", "g" * 64, "a" * 63])
def test_blob_digest_is_validated(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="not a blob digest"):
        store.blobs.exists(bad)
    with pytest.raises(ValueError, match="not a blob digest"):
        store.blobs.get_bytes(bad)


def test_latest_metric_index_and_paged_sorting(store: Store) -> None:
    from mlops_jupyter.store.queries import run_page

    a = store.record_run("e", name="a", metrics={"acc": 0.5})
    b = store.record_run("e", name="b", metrics={"acc": 0.9})
    store.record_run("e", name="c", params={"depth": 3})  # no metric: sorts last
    store.log_metric(a, "acc", 0.95, step=1)  # a curve: its latest step counts
    store.log_metric(a, "acc", 0.1, step=0)  # an older step written late changes nothing
    latest = dict(store.conn.execute("SELECT run_id, value FROM latest_metrics").fetchall())
    assert latest == {a: 0.95, b: 0.9}
    names = [r["name"] for r in run_page(store, sort="-metrics.acc", limit=10)["runs"]]
    assert names == ["a", "b", "c"]
    assert [r["name"] for r in run_page(store, sort="metrics.acc", limit=10)["runs"]] == [
        "b",
        "a",
        "c",
    ]
    second = run_page(store, sort="-metrics.acc", limit=2, offset=2)
    assert (second["total"], [r["name"] for r in second["runs"]]) == (3, ["c"])
    assert [r["name"] for r in run_page(store, filters=["metrics.acc>0.92"])["runs"]] == ["a"]
    assert [r["name"] for r in run_page(store, filters=["params.depth=3"])["runs"]] == ["c"]
    assert run_page(store, filters=["params.depth!=3"])["total"] == 2


def test_run_page_agrees_with_a_plain_python_listing(store: Store) -> None:
    """Every query shape the panel sends, against the listing done by hand."""
    import random

    from mlops_jupyter.store import queries

    rng = random.Random(7)
    runs = []
    for i in range(60):
        params = {"group": ["a", "b", "c"][i % 3], "depth": i % 4}
        if i % 7 == 0:
            del params["depth"]  # runs without a parameter match its != filter
        metrics: dict[str, float] = {"acc": round(rng.random(), 3)}
        if i % 5 == 0:
            metrics = {} if i % 10 == 0 else {"acc": math.nan}  # no value sorts last
        record = {
            "experiment": "one" if i % 2 else "two",
            "status": "failed" if i % 9 == 0 else "finished",
            "params": params,
            "acc": metrics.get("acc"),
            "started": 1_800_000_000 + i,
        }
        record["id"] = store.record_run(
            record["experiment"],
            name=f"r{i}",
            params=params,
            metrics=metrics,
            status=record["status"],
            started_at=record["started"],
            ended_at=record["started"] + 1,
        )
        runs.append(record)

    def has_value(r: dict[str, Any]) -> bool:
        return r["acc"] is not None and not math.isnan(r["acc"])

    def expected(keep: Any, descending: bool) -> list[str]:
        chosen = [r for r in runs if keep(r)]
        valued = sorted(
            (r for r in chosen if has_value(r)),
            key=lambda r: (r["acc"], r["id"]),
            reverse=descending,
        )
        rest = sorted((r for r in chosen if not has_value(r)), key=lambda r: -r["started"])
        return [r["id"] for r in valued + rest]

    shapes: list[tuple[dict[str, Any], Any]] = [
        ({}, lambda r: True),
        ({"experiment": "one"}, lambda r: r["experiment"] == "one"),
        ({"status": "failed"}, lambda r: r["status"] == "failed"),
        ({"filters": ["params.group=b"]}, lambda r: r["params"]["group"] == "b"),
        ({"filters": ["params.depth!=2"]}, lambda r: r["params"].get("depth") != 2),
        ({"filters": ["metrics.acc>0.5"]}, lambda r: has_value(r) and r["acc"] > 0.5),
        (
            {"experiment": "two", "filters": ["params.group=a", "params.depth=0"]},
            lambda r: r["experiment"] == "two" and r["params"] == {"group": "a", "depth": 0},
        ),
        (
            {"experiment": "one", "filters": ["params.group=c"]},
            lambda r: r["experiment"] == "one" and r["params"]["group"] == "c",
        ),
        (
            {"status": "finished", "filters": ["params.depth!=1", "metrics.acc<0.7"]},
            lambda r: (
                r["status"] == "finished"
                and r["params"].get("depth") != 1
                and has_value(r)
                and r["acc"] < 0.7
            ),
        ),
        (
            {"experiment": "two", "status": "failed"},
            lambda r: r["experiment"] == "two" and r["status"] == "failed",
        ),
        ({"experiment": "nobody"}, lambda r: False),
        (  # a condition every run meets narrows nothing
            {"experiment": "one", "filters": ["params.group!=z"]},
            lambda r: r["experiment"] == "one",
        ),
        ({"filters": ["params.group!=z", "metrics.acc>-1"]}, has_value),
    ]
    for query, keep in shapes:
        for descending in (True, False):
            want = expected(keep, descending)
            sort = ("-" if descending else "") + "metrics.acc"
            got: list[str] = []
            for offset in range(0, len(want) + 7, 7):
                page = queries.run_page(store, sort=sort, offset=offset, limit=7, **query)
                assert page["total"] == len(want), (query, page["total"], len(want))
                got += [r["run_id"] for r in page["runs"]]
            assert got == want, (query, sort)
        newest = queries.run_page(store, sort="-started_at", limit=1000, **query)
        by_start = sorted((r for r in runs if keep(r)), key=lambda r: -r["started"])
        assert [r["run_id"] for r in newest["runs"]] == [r["id"] for r in by_start]


def test_curves_are_stored_packed_and_read_back_point_by_point(store: Store) -> None:
    run_id = store.create_run("curves")
    loss = [1.0 / (i + 1) for i in range(1000)] + [float("nan"), 0.25]
    store.finish_run(run_id, metrics={"acc": 0.9}, series={"loss": loss, "lr": [0.1, 0.01]})
    run = store.get_run(run_id)
    points = run.metric_history["loss"]
    assert [p.step for p in points] == list(range(1002))
    assert [p.value for p in points][:1000] == loss[:1000]
    assert math.isnan(points[1000].value) and points[1001].value == 0.25
    assert run.metrics == {"acc": 0.9, "loss": 0.25, "lr": 0.01}  # the last point is the metric
    assert store._read("SELECT COUNT(*) FROM metric_series") == [(2,)]  # one row per curve
    assert store._read(
        "SELECT step, value FROM latest_metrics WHERE run_id = ? AND key = 'loss'", (run_id,)
    ) == [(1001, 0.25)]
    frame = store.runs(experiment="curves", order_by="-metrics.loss")
    assert frame["metrics.loss"].tolist() == [0.25]


def test_a_point_logged_again_moves_the_latest_value(store: Store) -> None:
    run_id = store.record_run("e")
    store.log_metric(run_id, "loss", 0.9, step=0)
    store.log_metric(run_id, "loss", 0.7, step=1)
    store.log_metric(run_id, "loss", 0.5, step=1)  # the same step again: replaced
    store.log_metric(run_id, "loss", 0.1, step=0)  # an earlier step: not the latest
    assert [(p.step, p.value) for p in store.get_run(run_id).metric_history["loss"]] == [
        (0, 0.1),
        (1, 0.5),
    ]
    assert store.runs()["metrics.loss"].tolist() == [0.5]
    assert store._read("SELECT step, value FROM latest_metrics") == [(1, 0.5)]
