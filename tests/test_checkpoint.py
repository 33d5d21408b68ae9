"""The SQLite log is checkpointed by a background thread, not by the commit that fills it."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from mlops_jupyter import Store
from mlops_jupyter.store.checkpointer import BACKSTOP_PAGES


def _runs_in_file_alone(store: Store, tmp_path: Path) -> int:
    """How many runs ``store.db`` holds without its log (what a checkpoint copied into it)."""
    copy = tmp_path / "copy" / "store.db"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(store.db_path, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


def _write(store: Store, n: int) -> None:
    for i in range(n):
        store.record_run("e", params={f"p{j}": f"{i}-{j}" * 20 for j in range(10)})


def test_commits_reach_the_file_through_the_background_checkpoint(
    store_dir: Path, tmp_path: Path
) -> None:
    with Store.open(store_dir) as store:
        _write(store, 30)
        checkpointer = store.engine.checkpointer
        assert checkpointer.wait(timeout=30)
        assert checkpointer.running
        assert checkpointer.error is None
        assert checkpointer.last is not None
        busy, log_pages, copied = checkpointer.last
        assert (busy, copied) == (0, log_pages) and log_pages > 0
        assert _runs_in_file_alone(store, tmp_path) == 30


def test_a_commit_leaves_the_checkpoint_to_the_background(store_dir: Path, tmp_path: Path) -> None:
    with Store.open(store_dir) as store:
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (BACKSTOP_PAGES,)
        _write(store, 1)
        store.checkpoint()
        store.engine.checkpointer.close()  # no background: what the commits alone do
        _write(store, 300)  # several thousand log pages: SQLite's default checkpoints at 1,000
        log = Path(f"{store.db_path}-wal").stat().st_size
        assert log > 1000 * 4096
        assert _runs_in_file_alone(store, tmp_path) == 1
        store.checkpoint()
        assert Path(f"{store.db_path}-wal").stat().st_size == 0
        assert _runs_in_file_alone(store, tmp_path) == 301


def test_closing_the_store_stops_the_thread(store_dir: Path, tmp_path: Path) -> None:
    store = Store.open(store_dir)
    _write(store, 5)
    checkpointer = store.engine.checkpointer
    assert checkpointer.running
    store.close()
    assert not checkpointer.running
    assert not Path(f"{store.db_path}-wal").exists()  # the last connection folded the log in
    assert _runs_in_file_alone(store, tmp_path) == 5


def test_reads_alone_start_no_thread(store_dir: Path) -> None:
    with Store.open(store_dir) as store:
        _write(store, 2)
    with Store.open(store_dir) as store:
        assert len(store.runs()) == 2
        store.get_run(store.runs().run_id[0])
        assert not store.engine.checkpointer.running


def test_a_failing_checkpoint_is_recorded_not_raised_or_printed(
    store_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_bytes(b"these are notes, not a database\n" * 200)
    with Store.open(store_dir) as store:
        checkpointer = store.engine.checkpointer
        checkpointer.db_path = not_a_store  # what its connection opens on first use
        _write(store, 3)
        assert checkpointer.wait(timeout=30)
        assert checkpointer.error == "DatabaseError: file is not a database"
        _write(store, 2)  # the writer goes on; the backstop still bounds the log
        assert len(store.runs()) == 5
    assert capfd.readouterr() == ("", "")
    with Store.open(store_dir) as store:
        assert _runs_in_file_alone(store, tmp_path) == 5


def test_a_commit_stands_when_no_thread_can_be_started(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with Store.open(store_dir) as store:
        monkeypatch.setattr(threading.Thread, "start", refuse)  # what a thread limit does
        _write(store, 2)
        monkeypatch.undo()
        checkpointer = store.engine.checkpointer
        assert not checkpointer.running
        assert checkpointer.error == (
            f"no checkpoint thread (can't start new thread); the writer checkpoints past "
            f"{BACKSTOP_PAGES} pages"
        )
        assert len(store.runs()) == 2
        _write(store, 1)  # threads again: the next commit starts one
        assert checkpointer.wait(timeout=30) and checkpointer.running
        assert _runs_in_file_alone(store, tmp_path) == 3


def test_a_file_behind_its_header_is_not_refused_while_a_log_is_being_copied(
    tmp_path: Path,
) -> None:
    """Mid-checkpoint, page 1 (the new page count) is in the file before the pages after it."""
    from mlops_jupyter.errors import CorruptStoreError
    from mlops_jupyter.store.connection import validate_file

    db = tmp_path / "store.db"
    header = bytearray(b"SQLite format 3\x00" + bytes(84))
    header[16:18] = (4096).to_bytes(2, "big")
    header[24:28] = header[92:96] = (7).to_bytes(4, "big")
    header[28:32] = (47).to_bytes(4, "big")  # 47 pages described, 44 written so far
    db.write_bytes(bytes(header) + bytes(44 * 4096 - 100))
    with pytest.raises(CorruptStoreError, match="47 pages of 4096 bytes"):
        validate_file(db)
    (tmp_path / "store.db-wal").write_bytes(bytes(4096 + 32))  # a log with frames beside it
    validate_file(db)
