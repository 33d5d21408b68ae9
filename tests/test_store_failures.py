"""The store's failure modes: growth with long sessions, stray files, read-only and full disks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_jupyter import Store
from mlops_jupyter.store import schema
from mlops_jupyter.store.cell_history import CellHistory, cell_hash


def _session(store: Store, n: int, history: CellHistory) -> None:
    """n tracked cells, one after another, each with every earlier cell before it."""
    for i in range(len(history), len(history) + n):
        history.append(i + 1, f"x_{i} = {i} * 2\nprint(x_{i})\n")
        store.record_run("long-session", execution_count=i + 1, history=history.before_last())


def test_bytes_per_run_stay_flat_over_a_long_session(tmp_path: Path) -> None:
    with Store.open(tmp_path / ".mlops") as store:
        history = CellHistory()
        sizes = []
        for _ in range(3):  # at 300, 600 and 900 cells
            _session(store, 300, history)
            store.checkpoint()
            sizes.append((store.db_path).stat().st_size)
        first, last = sizes[1] - sizes[0], sizes[2] - sizes[1]
        assert last <= first * 1.25, sizes  # a list per run: the last 300 cost 5/3 the first
        run = store.get_run(store.runs(order_by="-started_at", limit=1).run_id[0])
        assert len(run.history) == 899
        assert run.history[0] == {
            "execution_count": 1,
            "source_hash": cell_hash("x_0 = 0 * 2\nprint(x_0)\n")[:16],
            "source": "x_0 = 0 * 2\nprint(x_0)\n",
        }
        assert [h["execution_count"] for h in run.history] == list(range(1, 900))
        # each source once, one node per executed cell, however many runs point into the chain
        assert store.conn.execute("SELECT COUNT(*) FROM cells").fetchone() == (899,)
        assert store.conn.execute("SELECT COUNT(*) FROM cell_history").fetchone() == (899,)


def test_a_rerun_cell_is_stored_once_and_sessions_share_prefixes(store: Store) -> None:
    a, b = CellHistory(), CellHistory()
    for count, source in [(1, "import numpy"), (2, "x = 1"), (3, "x = 1")]:
        a.append(count, source)
    for count, source in [(1, "import numpy"), (2, "y = 2")]:
        b.append(count, source)
    first = store.record_run("e", history=a)
    second = store.record_run("e", history=b)
    assert [h["source"] for h in store.get_run(first).history] == ["import numpy", "x = 1", "x = 1"]
    assert [h["source"] for h in store.get_run(second).history] == ["import numpy", "y = 2"]
    assert store.conn.execute("SELECT COUNT(*) FROM cells").fetchone() == (3,)
    assert store.conn.execute("SELECT COUNT(*) FROM cell_history").fetchone() == (4,)


def test_per_run_history_lists_of_a_v4_store_become_shared_chains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / ".mlops"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        patch.setattr(schema, "LATEST_VERSION", 4)
        with Store.open(store_dir) as old:
            ids = []
            for n in range(1, 4):
                run_id = old.create_run("e")
                entries = [{"execution_count": i, "source_hash": f"{i:016x}"} for i in range(n)]
                old.conn.execute(
                    "UPDATE runs SET history = ? WHERE id = ?", (json.dumps(entries), run_id)
                )
                ids.append(run_id)
            assert old.schema_version == 4
    with Store.open(store_dir) as new:
        assert new.schema_version == schema.LATEST_VERSION
        assert new.get_run(ids[2]).history == [
            {"execution_count": i, "source_hash": f"{i:016x}", "source": None} for i in range(3)
        ]
        assert new.get_run(ids[0]).history == [
            {"execution_count": 0, "source_hash": f"{0:016x}", "source": None}
        ]
        assert (
            new.conn.execute("SELECT COUNT(*) FROM runs WHERE history IS NOT NULL").fetchone()[0]
            == 0
        )
        assert new.conn.execute("SELECT COUNT(*) FROM cell_history").fetchone() == (3,)


# ------------------------------------------------------------------------- stray temporary files
def test_only_dead_writers_temporary_blob_files_are_removed(store_dir: Path) -> None:
    import socket

    Store.open(store_dir).close()
    shard = store_dir / "blobs" / "ab"
    shard.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    stray = shard / f".tmp-{host}-{dead.stdout.strip()}-x1y2z3"
    live = shard / f".tmp-{host}-{os.getpid()}-a1b2c3"  # this process: still writing
    other_host = shard / f".tmp-elsewhere-{dead.stdout.strip()}-q1w2e3"
    legacy_old, legacy_new = shard / ".tmp-old12345", shard / ".tmp-new12345"
    for path in (stray, live, other_host, legacy_old, legacy_new):
        path.write_bytes(b"partial")
    os.utime(legacy_old, (1_000_000_000, 1_000_000_000))
    with Store.open(store_dir):
        left = sorted(p.name for p in shard.iterdir())
    assert left == sorted([live.name, other_host.name, legacy_new.name])


# ------------------------------------------------------------------------------ read-only stores
def _without_dac_override(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` so that file permissions apply even to root (CAP_DAC_OVERRIDE dropped)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})


@pytest.mark.parametrize("what", ["directory", "file"])
def test_a_read_only_store_is_read_and_refuses_writes_clearly(store_dir: Path, what: str) -> None:
    with Store.open(store_dir) as store:
        run_id = store.record_run("e", name="kept", params={"a": 1}, metrics={"acc": 0.5})
        store.checkpoint()
    for extra in ("store.db-wal", "store.db-shm"):
        (store_dir / extra).unlink(missing_ok=True)
    before = (store_dir / "store.db").read_bytes()
    locked = store_dir if what == "directory" else store_dir / "store.db"
    locked.chmod(0o555 if what == "directory" else 0o444)
    code = f"""
from mlops_jupyter import Store
from mlops_jupyter.errors import StorePermissionError
with Store.open({str(store_dir)!r}) as store:
    run = store.get_run({run_id[:8]!r})
    print(run.name, run.params, run.metrics, len(store.runs()))
    try:
        store.record_run("e")
    except StorePermissionError as exc:
        print("REFUSED", exc)
"""
    try:
        out = _without_dac_override(code)
        cli = subprocess.run(
            ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] * (os.geteuid() == 0)
            + [sys.executable, "-m", "mlops_jupyter", "--store", str(store_dir), "runs"],
            capture_output=True,
            text=True,
        )
    finally:
        locked.chmod(0o755 if what == "directory" else 0o644)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "kept {'a': 1} {'acc': 0.5} 1"
    assert lines[1].startswith(f"REFUSED the store {store_dir} is read-only here")
    assert cli.returncode == 0, cli.stderr
    assert "kept" in cli.stdout and run_id[:8] in cli.stdout
    assert (store_dir / "store.db").read_bytes() == before


# ---------------------------------------------------------------------------------- a full disk
FULL_DISK = """
import os, sys
from mlops_jupyter import Store
from mlops_jupyter.errors import StoreFullError
store_dir = sys.argv[1]
store = Store.open(store_dir)
kept = store.record_run("e", name="before", params={"a": 1})
store.checkpoint()
filler = os.path.join(os.path.dirname(store_dir), "filler")


def fill_the_disk():
    with open(filler, "ab", buffering=0) as f:  # take every free byte of the small disk
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass


from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.user_ns["fill_the_disk"] = fill_the_disk
shell.run_cell("%load_ext mlops_jupyter")
# the cell itself fills the disk: the run was opened, its results (600 kB of params, more
# than the log's pages a background checkpoint lets the next write reuse) cannot be saved
result = shell.run_cell(
    "%%track -n filled --no-shap\\nimport mlops_jupyter\\n"
    "mlops_jupyter.log_params({f'w{i}': 'x' * 300 for i in range(2000)})\\n"
    "fill_the_disk()\\nprint('cell ran')"
)
print("cell ok", result.success)
for name, write in [
    ("run", lambda: store.record_run("e", params={f"p{i}": "v" * 500 for i in range(400)})),
    ("blob", lambda: store.add_artifact(kept, "big", os.urandom(1 << 20))),
]:
    try:
        write()
        print(name, "WROTE")
    except StoreFullError as exc:
        print(name, "FULL", exc)
# cannot even be opened: its 600 kB of source is more than the log's reusable pages
result = shell.run_cell("%%track -n later\\n# " + "x" * 600_000 + "\\nprint('later cell ran')")
print("cell ok", result.success)
os.unlink(filler)
shell.run_cell("%%track -n later --quiet\\nx = 1")  # space again: the unsaved run is settled
print("after", store.get_run(kept).name, store.record_run("e") is not None)
filled = store.get_run(store.runs().query("name == 'filled'").run_id.iloc[0])
print("filled", filled.status, filled.error.split(" /")[0])
print("runs", sorted(zip(store.runs().name.map(str), store.runs().status)))
"""


def test_a_full_disk_is_a_clear_store_error_and_loses_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    env = {**os.environ, "MLOPS_JUPYTER_STORE": str(disk / ".mlops"), "PYTHONWARNINGS": "error"}
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs -o size=3m tmpfs "{disk}" && exec "{sys.executable}" "{script}" '
         f'"{disk / ".mlops"}"'],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    message = f"the disk holding the store {disk / '.mlops'} is full"
    assert lines[:2] == ["cell ran", "cell ok True"], out.stdout
    assert lines[2].startswith("run FULL " + message), out.stdout
    assert lines[3].startswith("blob FULL " + message), out.stdout
    assert lines[4:] == [
        "later cell ran",
        "cell ok True",
        "after before True",
        "filled failed could not be saved: the disk holding the store",
        "runs [('before', 'finished'), ('filled', 'failed'), ('later', 'finished'), "
        "('nan', 'finished')]",
    ]
    ours = [line for line in out.stderr.splitlines() if "mlops-jupyter" in line]
    assert len(ours) == 2, out.stderr  # one line per cell, nothing else
    assert ours[0].startswith("mlops-jupyter: run ") and f"not saved: {message}" in ours[0]
    assert ours[1].startswith(f"mlops-jupyter: not tracked: {message}"), ours[1]
    assert "Traceback" not in out.stderr and "OperationalError" not in out.stderr
