"""Metric directions and the primary metric per experiment: the store API on both engines, the
v13 migration, push, and what compare and the ``%compare`` HTML make of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter.compare import compare_runs
from mlops_jupyter.store import Store, postgres_schema, schema
from mlops_jupyter.store.metric_settings import direction_of
from mlops_jupyter.widgets.compare import comparison_html


# ------------------------------------------------------------------------------- store API
def test_directions_and_primary_on_both_engines(any_store: Any) -> None:
    store = any_store
    store.record_run("exp", metrics={"accuracy": 0.5})
    assert store.metric_directions("exp") == {"primary_metric": None, "directions": {}}
    store.set_metric_direction("exp", "train_time_s", "min", user="ana")
    store.set_metric_direction("exp", "accuracy", "max", primary=True, user="ana")
    assert store.metric_directions("exp") == {
        "primary_metric": "accuracy",
        "directions": {"accuracy": "max", "train_time_s": "min"},
    }
    # another primary replaces it; its own direction left unset stays so (the name decides)
    store.set_metric_direction("exp", "val_auc", None, primary=True, user="bo")
    assert store.metric_directions("exp") == {
        "primary_metric": "val_auc",
        "directions": {"accuracy": "max", "train_time_s": "min"},
    }
    # a direction set later, primary=False: the primary metric stays
    store.set_metric_direction("exp", "val_auc", "max", user="bo")
    store.set_metric_direction("exp", "accuracy", "min", user="cy")
    assert store.metric_directions("exp") == {
        "primary_metric": "val_auc",
        "directions": {"accuracy": "min", "train_time_s": "min", "val_auc": "max"},
    }
    rows = {r["metric"]: r for r in store.metric_settings("exp")}
    assert [(m, r["direction"], r["primary"], r["updated_by"]) for m, r in rows.items()] == [
        ("accuracy", "min", False, "cy"),
        ("train_time_s", "min", False, "ana"),
        ("val_auc", "max", True, "bo"),
    ]
    assert rows["train_time_s"]["updated_at"] <= rows["val_auc"]["updated_at"]
    frame = store.experiments()
    assert list(frame.columns) == [
        "experiment", "created_at", "runs", "last_run_at", "primary_metric", "direction",
    ]  # fmt: skip
    assert frame[["experiment", "primary_metric", "direction"]].values.tolist() == [
        ["exp", "val_auc", "max"]
    ]
    store.clear_primary_metric("exp", user="cy")
    assert store.metric_directions("exp")["primary_metric"] is None
    assert store.metric_directions("exp")["directions"]["val_auc"] == "max"  # kept
    assert store.experiments()[["primary_metric", "direction"]].values.tolist() == [[None, None]]
    # settings may come before any run: the experiment is created
    store.set_metric_direction("later", "rmse", None, primary=True)
    later = store.experiments().set_index("experiment").loc["later"]
    assert (later["runs"], later["primary_metric"], later["direction"]) == (0, "rmse", "min")
    assert store.metric_settings("later")[0]["updated_by"]  # the acting user by default
    assert store.metric_directions("nowhere") == {"primary_metric": None, "directions": {}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("exp", "acc", "up"), r"direction must be 'max' \(higher is better\) or 'min'.*'up'"),
        (("exp", "acc", "MAX"), "direction must be 'max'.*got 'MAX'"),
        (("exp", "", "max"), "metric must be a non-empty name, got ''"),
        (("exp", "  ", "max"), "metric must be a non-empty name"),
        (("", "acc", "max"), "experiment must be a non-empty name, got ''"),
        (("exp", "acc", None), "nothing to set for 'acc': give a direction"),
        (("exp", "x" * 1001, "max"), "metric is 1001 characters long; at most 1000"),
    ],
)
def test_bad_settings_are_clear_value_errors(store: Store, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.set_metric_direction(*args)
    assert store.experiments().empty  # nothing was written, not even the experiment


def test_primary_must_be_a_bool(store: Store) -> None:
    with pytest.raises(ValueError, match="primary must be True or False, got 'yes'"):
        store.set_metric_direction("exp", "acc", "max", primary="yes")  # type: ignore[arg-type]


def test_one_primary_metric_per_experiment_is_kept_by_the_schema(any_store: Any) -> None:
    any_store.set_metric_direction("exp", "a", "max", primary=True)
    any_store.set_metric_direction("exp", "b", "max")
    with pytest.raises(Exception, match="(?i)unique"):
        with any_store.transaction() as conn:  # behind the API's back
            conn.execute("UPDATE metric_settings SET is_primary = 1 WHERE metric = 'b'")
    assert any_store.metric_directions("exp")["primary_metric"] == "a"


@pytest.mark.parametrize(
    ("key", "directions", "expected"),
    [
        ("accuracy", None, "max"),
        ("val_loss", None, "min"),
        ("train_time_s", {}, "min"),
        ("accuracy", {"accuracy": "min"}, "min"),
        ("train_time_s", {"train_time_s": "max"}, "max"),
        ("val_loss", {"accuracy": "max"}, "min"),
    ],
)
def test_direction_of(key: str, directions: dict[str, str] | None, expected: str) -> None:
    assert direction_of(key, directions) == expected


# ------------------------------------------------------------------------------- migration
def test_sqlite_store_at_v12_is_migrated_keeping_its_data(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", tuple(v for v in schema.MIGRATIONS if v.version <= 12))
        m.setattr(schema, "LATEST_VERSION", 12)
        with Store.open(store_dir) as old:
            assert old.schema_version == 12
            run_id = old.record_run("exp", params={"a": 1}, metrics={"acc": 0.5})
            assert not old._read("SELECT name FROM sqlite_master WHERE name='metric_settings'")
    with Store.open(store_dir) as new:
        assert new.schema_version == schema.LATEST_VERSION
        assert new.get_run(run_id).metrics == {"acc": 0.5}
        assert new.metric_directions("exp") == {"primary_metric": None, "directions": {}}
        new.set_metric_direction("exp", "acc", "max", primary=True)
        assert new.experiments()["primary_metric"].tolist() == ["acc"]


def test_postgres_store_at_v12_is_migrated_keeping_its_data(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        older = tuple(v for v in postgres_schema.MIGRATIONS if v.version <= 12)
        m.setattr(postgres_schema, "MIGRATIONS", older)
        m.setattr(postgres_schema, "LATEST_VERSION", 12)
        with Store.open(pg_url, start=tmp_path) as old:
            assert old.schema_version == 12
            run_id = old.record_run("exp", params={"a": 1}, metrics={"acc": 0.5})
            assert old._read("SELECT to_regclass('metric_settings')") == [(None,)]
    with Store.open(pg_url, start=tmp_path) as new:
        assert new.schema_version == postgres_schema.LATEST_VERSION
        assert new.get_run(run_id).metrics == {"acc": 0.5}
        new.set_metric_direction("exp", "acc", "min", primary=True)
        assert new.metric_directions("exp") == {
            "primary_metric": "acc",
            "directions": {"acc": "min"},
        }


@pytest.mark.parametrize("upgraded", [False, True], ids=["created", "upgraded-from-v12"])
def test_a_team_writer_may_set_directions(
    pg_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upgraded: bool
) -> None:
    """The writer role may set them on a team store made at v13 and on one made before
    (its migration grants them to the roles that write runs)."""
    from mlops_jupyter.cli import main as cli

    db = pg_cluster.create_database()
    pg_cluster.admin("DROP ROLE IF EXISTS dora_w")
    pg_cluster.admin("CREATE ROLE dora_w LOGIN")
    owner, writer = pg_cluster.url(db), pg_cluster.url(db, user="dora_w")
    with monkeypatch.context() as m:
        if upgraded:
            older = tuple(v for v in postgres_schema.MIGRATIONS if v.version <= 12)
            m.setattr(postgres_schema, "MIGRATIONS", older)
            m.setattr(postgres_schema, "LATEST_VERSION", 12)
            kept = tuple(t for t in postgres_schema._UPDATED if t != "metric_settings")
            m.setattr(postgres_schema, "_UPDATED", kept)
            later = tuple(t for t in postgres_schema._APPEND_ONLY if t != "tag_edits")
            m.setattr(postgres_schema, "_APPEND_ONLY", later)  # a v14 table
        assert cli(["team", "init", owner, "--writer", "dora_w"]) == 0
        with Store.open(writer, start=tmp_path) as store:
            store.record_run("team", metrics={"acc": 0.5})
    Store.open(owner, start=tmp_path).close()  # the owner's next open migrates
    with Store.open(writer, start=tmp_path) as store:
        assert store.schema_version == postgres_schema.LATEST_VERSION
        store.set_metric_direction("team", "acc", "max", primary=True, user="dora")
        store.set_metric_direction("team", "loss", "min", primary=True, user="dora")
        store.clear_primary_metric("team", user="dora")
        assert store.metric_directions("team") == {
            "primary_metric": None,
            "directions": {"acc": "max", "loss": "min"},
        }


# ------------------------------------------------------------------------------------ push
def test_push_copies_settings_the_team_store_lacks(pg_url: str, tmp_path: Path) -> None:
    from mlops_jupyter.store.sync import copy_runs

    with (
        Store.open(tmp_path / "laptop" / ".mlops") as local,
        Store.open(pg_url, start=tmp_path) as team,
    ):
        local.record_run("churn", metrics={"auc": 0.8, "train_time_s": 3.0})
        local.record_run("other", metrics={"auc": 0.7})
        local.set_metric_direction("churn", "auc", "max", primary=True, user="ana")
        local.set_metric_direction("churn", "train_time_s", "min", user="ana")
        local.set_metric_direction("unpushed", "auc", "max", primary=True)
        report = copy_runs(local, team, experiment="churn")
        assert report.metric_settings == 2 and "2 metric settings" in str(report)
        assert team.metric_directions("churn") == local.metric_directions("churn")
        assert [r["updated_by"] for r in team.metric_settings("churn")] == ["ana", "ana"]
        assert team.metric_directions("unpushed")["primary_metric"] is None
        # what the team store holds stays: its own primary metric and directions
        team.set_metric_direction("churn", "train_time_s", "max", primary=True, user="team")
        local.set_metric_direction("churn", "f1", "max", primary=True, user="ana")
        local.set_metric_direction("churn", "auc", "min", user="ana")
        again = copy_runs(local, team)
        assert (again.copied, again.metric_settings) == (1, 1)  # "other", and f1
        assert team.metric_directions("churn") == {
            "primary_metric": "train_time_s",
            "directions": {"auc": "max", "f1": "max", "train_time_s": "max"},
        }
        assert copy_runs(local, team).metric_settings == 0  # twice adds nothing


# --------------------------------------------------------------------------------- compare
def _runs(store: Store, experiment: str = "e") -> tuple[str, str]:
    a = store.record_run(
        experiment, name="a", metrics={"accuracy": 0.9, "train_time_s": 2.0, "val_loss": 0.3}
    )
    b = store.record_run(
        experiment, name="b", metrics={"accuracy": 0.8, "train_time_s": 9.0, "val_loss": 0.4}
    )
    return a, b


def _metrics(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in comparison["metrics"]}


def test_compare_follows_the_experiment_directions(any_store: Any) -> None:
    a, b = _runs(any_store)
    before = _metrics(compare_runs(any_store, [a, b]))
    assert {k: (m["best"], m["direction"], m["direction_source"]) for k, m in before.items()} == {
        "accuracy": (0, "max", "name"),
        "train_time_s": (0, "min", "name"),
        "val_loss": (0, "min", "name"),
    }
    # "accuracy" is higher-is-better by its name, "val_loss" lower: the settings overrule both
    any_store.set_metric_direction("e", "accuracy", "min")
    any_store.set_metric_direction("e", "val_loss", "max")
    any_store.set_metric_direction("e", "train_time_s", "min", primary=True)
    comparison = compare_runs(any_store, [a, b])
    assert [m["key"] for m in comparison["metrics"]] == ["train_time_s", "accuracy", "val_loss"]
    assert comparison["primary_metric"] == "train_time_s"
    assert [
        (
            m["key"],
            m["best"],
            m["direction"],
            m["lower_is_better"],
            m["direction_source"],
            m["direction_conflict"],
            m["primary"],
        )
        for m in comparison["metrics"]
    ] == [
        ("train_time_s", 0, "min", True, "experiment", False, True),
        ("accuracy", 1, "min", True, "experiment", False, False),
        ("val_loss", 1, "max", False, "experiment", False, False),
    ]
    any_store.set_metric_direction("e", "train_time_s", "max")  # the reverse of its name
    assert _metrics(compare_runs(any_store, [a, b]))["train_time_s"]["best"] == 1


def test_compare_across_experiments_that_disagree_uses_the_name(store: Store) -> None:
    a, _ = _runs(store, "one")
    _, b = _runs(store, "two")
    store.set_metric_direction("one", "accuracy", "min", primary=True)
    store.set_metric_direction("two", "accuracy", "max")
    store.set_metric_direction("two", "train_time_s", None, primary=True)
    store.set_metric_direction("one", "val_loss", "max")  # "two" sets none: no disagreement
    comparison = compare_runs(store, [a, b])
    metrics = _metrics(comparison)
    assert (metrics["accuracy"]["direction"], metrics["accuracy"]["direction_source"]) == (
        "max",
        "name",
    )
    assert metrics["accuracy"]["direction_conflict"] is True
    assert (metrics["val_loss"]["direction"], metrics["val_loss"]["direction_source"]) == (
        "max",
        "experiment",
    )
    assert metrics["val_loss"]["best"] == 1  # b's 0.4
    assert comparison["primary_metric"] is None  # their primary metrics differ
    assert not any(m["primary"] for m in comparison["metrics"])
    store.set_metric_direction("two", "accuracy", "min", primary=True)
    agreed = compare_runs(store, [a, b])
    assert agreed["primary_metric"] == "accuracy" and agreed["metrics"][0]["primary"]
    assert _metrics(agreed)["accuracy"]["direction_source"] == "experiment"


def test_compare_primary_named_alike_in_two_experiments(store: Store) -> None:
    a, _ = _runs(store, "one")
    _, b = _runs(store, "two")
    store.set_metric_direction("one", "val_loss", None, primary=True)
    store.set_metric_direction("two", "val_loss", None, primary=True)
    comparison = compare_runs(store, [a, b])
    assert comparison["primary_metric"] == "val_loss"
    assert [m["key"] for m in comparison["metrics"]][0] == "val_loss"
    store.set_metric_direction("two", "accuracy", None, primary=True)  # now they differ
    assert compare_runs(store, [a, b])["primary_metric"] is None


def test_compare_shap_status(store: Store) -> None:
    ids = [store.record_run("e", name=f"r{i}", metrics={"m": float(i)}) for i in range(5)]
    store.record_explanation(ids[0], status="pending")
    store.record_explanation(
        ids[1], status="ok", explainer="tree", feature_names=["a", "b"], mean_abs=[0.1, 0.7]
    )
    store.record_explanation(ids[2], status="failed", reason="ValueError: bad")
    store.record_explanation(ids[3], status="unsupported", reason="KMeans cannot predict")
    shap = compare_runs(store, ids)["shap"]
    assert [(s["status"], s["reason"], s["top"]) for s in shap] == [
        ("pending", None, []),
        ("ok", None, [["b", 0.7], ["a", 0.1]]),
        ("failed", "ValueError: bad", []),
        ("none", "KMeans cannot predict", []),
        ("none", None, []),
    ]
    assert store.explanation_statuses(ids) == dict(
        zip(ids, ["pending", "ok", "failed", "unsupported", None], strict=True)
    )


def test_explanation_statuses_on_both_engines(any_store: Any) -> None:
    a, b = _runs(any_store)
    assert any_store.explanation_statuses([a, b]) == {a: None, b: None}
    any_store.record_explanation(a, status="pending")
    any_store.record_explanation(b, status="pending")
    any_store.record_explanation(b, status="ok", feature_names=["x"], mean_abs=[1.0])
    assert any_store.explanation_statuses([b, a, b]) == {b: "ok", a: "pending"}
    assert any_store.explanation_statuses([]) == {}


# ------------------------------------------------------------------------------- the HTML
def _cells(page: str, attribute: str) -> list[str]:
    row = re.search(rf"<tr[^>]*{attribute}[^>]*>(.*?)</tr>", page)
    assert row is not None, attribute
    return re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row.group(1))


def test_html_marks_best_primary_and_direction(store: Store) -> None:
    a = store.record_run(
        "e",
        name="<i>a</i>",
        params={"<p>": "<script>", "seed": 1, "lr": 0.000167},
        metrics={"<m>": 1.0, "train_time_s": 9.0, "accuracy": 0.83456},
    )
    b = store.record_run(
        "e",
        name=None,
        params={"<p>": "x", "seed": 1, "lr": 1234.5},
        metrics={"<m>": 2.0, "train_time_s": 3.0, "accuracy": 0.9},
    )
    store.record_explanation(a, status="pending")
    store.record_explanation(b, status="failed", reason="<bad> thing")
    store.set_metric_direction("e", "accuracy", "max", primary=True)
    page = comparison_html(compare_runs(store, [a, b]))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<i>a</i>" not in page and "&lt;i&gt;a&lt;/i&gt;" in page
    assert "<p>" not in page.replace("<p class='mj-note'>", "")
    assert page.startswith("<div class='mlops-jupyter-compare'><style>")
    assert "<table class='mj-compare-table'>" in page
    assert "var(--jp-warn-color1,#d4a72c)" in page and "var(--jp-warn-color3,#fff8c5)" in page
    head = re.findall(r"<th scope='col'[^>]*>.*?</th>", page)
    assert head == [
        f"<th scope='col' title='{a}'>&lt;i&gt;a&lt;/i&gt;<br><small>{a[:8]} · finished</small>"
        "</th>",
        f"<th scope='col' title='{b}'>{b[:8]}<br><small>{b[:8]} · finished</small></th>",
    ]
    sections = re.findall(r"<tr class='mj-section'><th colspan='3'>(.*?)</th></tr>", page)
    assert sections == ["Parameters", "Metrics (★ best)", "Data", "SHAP top features"]
    # parameters: the differing ones, numbers readable with their exact value as the title
    assert re.findall(r"<tr class='mj-diff' data-param='([^']*)'>", page) == ["&lt;p&gt;", "lr"]
    assert _cells(page, "data-param='lr'") == [
        "<th scope='row'>lr</th>",
        "<td class='mj-num' title='0.000167'>1.67e-4</td>",
        "<td class='mj-num' title='1234.5'>1235</td>",
    ]
    assert "data-param='seed'" not in page
    assert "<p class='mj-note'><small>1 identical parameters hidden.</small></p>" in page
    shown = comparison_html(compare_runs(store, [a, b]), show_all=True)
    assert "<tr data-param='seed'>" in shown and "identical parameters hidden" not in shown
    # metrics: the primary first, arrows, the star on the best cell only, bars
    assert re.findall(r"data-metric='([^']*)'", page) == ["accuracy", "&lt;m&gt;", "train_time_s"]
    assert _cells(page, "class='mj-primary' data-metric='accuracy'") == [
        "<th scope='row' title='higher is better (set for the experiment)'>accuracy ↑ (primary)"
        "</th>",
        "<td class='mj-num' title='0.83456'>0.835<div class='mj-bar' style='width:93%'></div></td>",
        "<td class='mj-num mj-best' title='0.9'>0.9 ★<div class='mj-bar' style='width:100%'>"
        "</div></td>",
    ]
    assert _cells(page, "data-metric='train_time_s'") == [
        "<th scope='row' title='lower is better (by its name)'>train_time_s ↓</th>",
        "<td class='mj-num' title='9'>9<div class='mj-bar' style='width:100%'></div></td>",
        "<td class='mj-num mj-best' title='3'>3 ★<div class='mj-bar' style='width:33%'></div></td>",
    ]
    assert page.count("★") == 4  # the section title and one per metric
    assert _cells(page, "data-shap") == [
        "<th scope='row'>features</th>",
        "<td class='mj-shap-pending'>pending</td>",
        "<td class='mj-shap-failed' title='&lt;bad&gt; thing'>failed</td>",
    ]
    assert _cells(page, "data-data='train'") == [
        "<th scope='row'>train data</th>",
        "<td colspan='2'>not recorded <small>(none, none)</small></td>",
    ]


def test_html_of_missing_and_non_finite_values(store: Store) -> None:
    a = store.record_run("e", metrics={"loss": float("nan"), "f1": 0.5})
    b = store.record_run("e", metrics={"loss": 0.25})
    page = comparison_html(compare_runs(store, [a, b]))
    assert _cells(page, "data-metric='loss'")[1:] == [
        "<td>NaN</td>",
        "<td class='mj-num mj-best' title='0.25'>0.25 ★<div class='mj-bar' style='width:100%'>"
        "</div></td>",
    ]
    assert _cells(page, "data-metric='f1'")[2] == "<td>—</td>"
