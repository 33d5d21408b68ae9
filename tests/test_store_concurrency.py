"""Several processes writing one store: nothing lost, nobody sees "database is locked"."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_jupyter import Store

WORKER = Path(__file__).with_name("store_worker.py")


def _env() -> dict[str, str]:
    root = str(Path(__file__).parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _spawn(store_dir: Path, n: int, start_at: float, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(store_dir), str(n), repr(start_at), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def test_four_processes_race_on_a_fresh_store(tmp_path: Path) -> None:
    store_dir = tmp_path / ".mlops"  # does not exist yet: creation and migrations race too
    start_at = time.time() + 3.0  # time for four interpreters to import
    workers = [_spawn(store_dir, 100, start_at, f"w{i}") for i in range(4)]
    results = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert err == ""
        assert len(out.split()) == 100
    with Store.open(store_dir) as store:
        assert store.counts() == {
            "experiments": 4,
            "runs": 400,
            "params": 4000,
            "metrics": 2000,
            "datasets": 0,
            "run_datasets": 0,
        }
        written = {line for out, _ in results for line in out.split()}
        stored = {r[0] for r in store.conn.execute("SELECT id FROM runs")}
        assert written == stored
        assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        run = store.get_run(next(iter(written)))
        assert len(run.params) == 10 and len(run.metrics) == 5


def test_writer_killed_mid_loop_loses_nothing_it_returned(tmp_path: Path) -> None:
    store_dir = tmp_path / ".mlops"
    Store.open(store_dir).close()
    victim = _spawn(store_dir, 0, time.time(), "victim")
    assert victim.stdout is not None
    returned: list[str] = []
    while len(returned) < 300:
        line = victim.stdout.readline()
        assert line, victim.stderr.read() if victim.stderr else "worker exited"
        returned.append(line.strip())
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    # read through the same buffered reader: lines it already read ahead count too
    returned += victim.stdout.read().split()  # printed before the kill: their commits returned
    victim.stdout.close()
    if victim.stderr is not None:
        victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL

    conn = sqlite3.connect(store_dir / "store.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    with Store.open(store_dir) as store:
        stored = {r[0] for r in store.conn.execute("SELECT id FROM runs")}
        assert set(returned) <= stored
        assert len(stored) - len(returned) in (0, 1)  # at most the one in flight
        n_params = store.conn.execute("SELECT COUNT(*) FROM params").fetchone()[0]
        assert n_params == 10 * len(stored)  # no half-written run
        after = store.record_run("after", params={"ok": True})
        assert store.get_run(after).params == {"ok": True}


TRACK_WORKER = Path(__file__).with_name("track_worker.py")


def _finished_runs_are_whole(store: Store) -> dict[str, str]:
    """Every run is finished with its model, metric and data, or marked interrupted."""
    statuses = dict(store.conn.execute("SELECT id, status FROM runs").fetchall())
    for run_id, status in statuses.items():
        run = store.get_run(run_id)
        if status == "finished":
            model = [a for a in run.artifacts if a.name == "model"]
            assert len(model) == 1, f"{run_id} finished without its model"
            assert store.blobs.exists(model[0].blob)
            assert set(run.metrics) == {"accuracy"}
            assert [d.role for d in run.datasets] == ["train"]
        else:
            assert status == "interrupted", (run_id, status)
            assert run.artifacts == [] and run.metrics == {} and run.datasets == []
    return statuses


@pytest.mark.parametrize("kill_at", ["blob", "commit"])
def test_kill_while_finishing_leaves_no_finished_run_without_its_model(
    tmp_path: Path, kill_at: str
) -> None:
    store_dir = tmp_path / ".mlops"
    Store.open(store_dir).close()
    worker = subprocess.run(
        [sys.executable, str(TRACK_WORKER), str(store_dir), "1", kill_at],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr
    assert worker.stdout == ""
    with Store.open(store_dir) as store:  # opening marks the dead process's run interrupted
        assert list(_finished_runs_are_whole(store).values()) == ["interrupted"]
        blobs = store.directory / "blobs"
        assert not [p for p in blobs.rglob(".tmp-*")], "a killed writer's temporary file stayed"


def test_tracking_killed_at_random_moments_keeps_every_run_whole(tmp_path: Path) -> None:
    store_dir = tmp_path / ".mlops"
    Store.open(store_dir).close()
    returned: list[str] = []
    for round_ in range(6):
        victim = subprocess.Popen(
            [sys.executable, str(TRACK_WORKER), str(store_dir), "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert victim.stdout is not None and victim.stderr is not None
        for _ in range(3 + round_ * 2):  # kill after a different number of runs each round
            line = victim.stdout.readline()
            assert line, victim.stderr.read()
            returned.append(line.strip())
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        returned += victim.stdout.read().split()
        victim.stdout.close()
        victim.stderr.close()
    with Store.open(store_dir) as store:
        statuses = _finished_runs_are_whole(store)
        assert all(statuses[run_id] == "finished" for run_id in returned)
