"""The history of a finished run's tags on both engines: what an edit records, that it is
append-only, the v14 migration, a team writer's rights, and push/pull carrying edits made
after a run was copied (converging per key, latest edit first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter.errors import StorePermissionError
from mlops_jupyter.store import Store, postgres_schema, schema
from mlops_jupyter.store.queries import run_ids
from mlops_jupyter.store.sync import copy_runs


def _edits(store: Any, run_id: str) -> list[tuple[str, str | None, str | None, str]]:
    return [(e["key"], e["value"], e["previous"], e["user"]) for e in store.tag_history(run_id)]


# ------------------------------------------------------------------------------- store API
def test_edits_of_a_finished_run_are_recorded_with_who_and_when(any_store: Any) -> None:
    store = any_store
    run_id = store.create_run("exp", tags={"owner": "ana"})
    store.add_tags(run_id, {"capture": "a note the tracker writes"})  # still recording
    assert store.tag_history(run_id) == []
    store.finish_run(run_id, metrics={"auc": 0.8})
    assert store.tag_history(run_id) == []  # what the run recorded is not an edit

    tags = store.edit_tags(
        run_id, {"owner": "bo", "stage": "<b>candidate</b>"}, ["capture"], user="bo"
    )
    assert tags == {"owner": "bo", "stage": "<b>candidate</b>"}
    assert _edits(store, run_id) == [
        ("capture", None, "a note the tracker writes", "bo"),
        ("owner", "bo", "ana", "bo"),
        ("stage", "<b>candidate</b>", None, "bo"),
    ]
    first = store.tag_history(run_id)[0]["at"]
    store.edit_tags(run_id, {"owner": "bo"}, ["never-there"], user="cy")  # changes nothing
    assert len(store.tag_history(run_id)) == 3
    store.remove_tags(run_id, ["stage"])  # the acting user by default
    history = store.tag_history(run_id)
    assert [(e["key"], e["value"], e["previous"]) for e in history[3:]] == [
        ("stage", None, "<b>candidate</b>")
    ]
    assert history[3]["user"] == Store._acting_user()
    assert history[3]["at"] >= first
    assert store.tag_history(run_id[:8]) == history  # a prefix resolves
    assert store.get_run(run_id).tags == {"owner": "bo"}


def test_the_history_is_append_only(any_store: Any) -> None:
    store = any_store
    run_id = store.record_run("exp", tags={"owner": "ana"})
    store.add_tags(run_id, {"owner": "bo"})
    for sql in ("UPDATE tag_edits SET value = 'mallory'", "DELETE FROM tag_edits"):
        with pytest.raises(Exception, match="the history of tag edits is append-only"):
            with store.transaction() as conn:
                conn.execute(sql)
    assert _edits(store, run_id)[0][:3] == ("owner", "bo", "ana")


# ------------------------------------------------------------------------------- migration
def test_sqlite_store_at_v13_is_migrated(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", tuple(v for v in schema.MIGRATIONS if v.version <= 13))
        m.setattr(schema, "LATEST_VERSION", 13)
        with Store.open(store_dir) as old:
            assert old.schema_version == 13
            run_id = old.record_run("exp", tags={"owner": "ana"})
    with Store.open(store_dir) as new:
        assert new.schema_version == schema.LATEST_VERSION == 14
        assert new.get_run(run_id).tags == {"owner": "ana"}
        new.add_tags(run_id, {"owner": "bo"})
        assert _edits(new, run_id)[0][:3] == ("owner", "bo", "ana")


@pytest.mark.parametrize("upgraded", [False, True], ids=["created", "upgraded-from-v13"])
def test_a_team_writer_may_add_edits_never_rewrite_them(
    pg_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upgraded: bool
) -> None:
    from mlops_jupyter.cli import main as cli

    db = pg_cluster.create_database()
    pg_cluster.admin("DROP ROLE IF EXISTS tess_w")
    pg_cluster.admin("CREATE ROLE tess_w LOGIN")
    owner, writer = pg_cluster.url(db), pg_cluster.url(db, user="tess_w")
    with monkeypatch.context() as m:
        if upgraded:
            older = tuple(v for v in postgres_schema.MIGRATIONS if v.version <= 13)
            m.setattr(postgres_schema, "MIGRATIONS", older)
            m.setattr(postgres_schema, "LATEST_VERSION", 13)
            kept = tuple(t for t in postgres_schema._APPEND_ONLY if t != "tag_edits")
            m.setattr(postgres_schema, "_APPEND_ONLY", kept)
        assert cli(["team", "init", owner, "--writer", "tess_w"]) == 0
        with Store.open(writer, start=tmp_path) as store:
            run_id = store.record_run("team", tags={"owner": "ana"})
    Store.open(owner, start=tmp_path).close()  # the owner's next open migrates
    with Store.open(writer, start=tmp_path) as store:
        assert store.schema_version == postgres_schema.LATEST_VERSION == 14
        store.edit_tags(run_id, {"owner": "tess"}, user="tess")
        assert _edits(store, run_id) == [("owner", "tess", "ana", "tess")]
        for sql in ("UPDATE tag_edits SET value = 'x'", "DELETE FROM tag_edits"):
            with pytest.raises(StorePermissionError, match="permission denied for table tag_edits"):
                with store.transaction() as conn:
                    conn.execute(sql)
        assert _edits(store, run_id) == [("owner", "tess", "ana", "tess")]


# ------------------------------------------------------------------------------ push, pull
def test_push_carries_edits_made_after_the_run_was_pushed(pg_url: str, tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "laptop" / ".mlops") as local,
        Store.open(pg_url, start=tmp_path) as team,
    ):
        a = local.record_run("churn", tags={"owner": "ana"}, metrics={"auc": 0.8})
        b = local.record_run("churn", metrics={"auc": 0.7})
        local.add_tags(a, {"stage": "draft"})
        first = copy_runs(local, team)
        assert (first.copied, first.tag_edits) == (2, 1)
        assert _edits(team, a) == _edits(local, a)
        assert team.get_run(a).tags == {"owner": "ana", "stage": "draft"}

        local.edit_tags(a, {"stage": "candidate", "note": "best so far"}, ["owner"], user="ana")
        again = copy_runs(local, team)
        assert (again.copied, again.skipped, again.tag_edits) == (0, 2, 3)
        assert "3 tag edits" in str(again)
        assert team.get_run(a).tags == {"note": "best so far", "stage": "candidate"}
        assert team.get_run(b).tags == {}
        assert [e["key"] for e in team.tag_history(a)] == ["stage", "note", "owner", "stage"]
        # listed by the team store's index too
        listed = run_ids(team, experiment="churn", filters=["tags.stage = candidate"])
        assert listed == [a]
        assert copy_runs(local, team).tag_edits == 0  # twice adds nothing


def test_edits_in_both_stores_converge_latest_first(pg_url: str, tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "laptop" / ".mlops") as local,
        Store.open(pg_url, start=tmp_path) as team,
    ):
        run_id = local.record_run("churn", tags={"owner": "ana", "stage": "draft"})
        copy_runs(local, team)
        local.edit_tags(run_id, {"stage": "mine"}, user="ana")  # earlier
        team.edit_tags(run_id, {"stage": "theirs", "owner": "bo"}, user="bo")  # later
        local.edit_tags(run_id, {"note": "local only"}, user="ana")
        pushed = copy_runs(local, team)
        assert pushed.tag_edits == 2
        # team: its later stage edit stays; the laptop's note arrives
        assert team.get_run(run_id).tags == {"note": "local only", "owner": "bo", "stage": "theirs"}
        pulled = copy_runs(team, local)
        assert pulled.tag_edits == 2
        assert local.get_run(run_id).tags == team.get_run(run_id).tags
        assert _edits(local, run_id) == _edits(team, run_id)
        assert [e[:3] for e in _edits(team, run_id)] == [
            ("stage", "mine", "draft"),
            ("owner", "bo", "ana"),
            ("stage", "theirs", "draft"),
            ("note", "local only", None),
        ]
