"""The core of the panel's analysis views, on both engines: tag edits (and the listing index
following them from another process), several runs' curves in one query, their
downsampling, the code diff of two runs and the CSV export of a filtered listing."""

from __future__ import annotations

import csv
import difflib
import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_jupyter.code_diff import code_diff, diff_lines, history_text
from mlops_jupyter.errors import RunNotFoundError
from mlops_jupyter.store import Store, runs_csv
from mlops_jupyter.store.curves import Points, downsample
from mlops_jupyter.store.queries import run_page
from mlops_jupyter.store.runs_csv import csv_pages, number_cell, parse_columns, text_cell

PACKAGE = Path(__file__).parents[1] / "mlops_jupyter"


def _location(store: Store) -> str:
    """What another process opens to reach the same store."""
    if store.dialect.name == "sqlite":
        return str(store.directory)
    return str(store.conn.url)  # type: ignore[attr-defined]


def _ids(page: dict[str, Any]) -> list[str]:
    return [r["run_id"] for r in page["runs"]]


# --------------------------------------------------------------------------- tags
def test_edit_tags_sets_and_removes_in_one_go(any_store: Store) -> None:
    store = any_store
    run_id = store.record_run("e", tags={"owner": "ana", "stage": "draft"})
    after = store.edit_tags(run_id, {"note": "first try\nwith a second line"}, ["stage"])
    assert after == {"note": "first try\nwith a second line", "owner": "ana"}
    assert store.get_run(run_id).tags == after
    store.remove_tags(run_id, ["owner", "never-there"])  # a missing key is no error
    assert store.get_run(run_id).tags == {"note": "first try\nwith a second line"}
    store.remove_tags(run_id, ["note"])
    assert store.get_run(run_id).tags == {}
    assert store._read("SELECT tags FROM runs WHERE id = ?", (run_id,)) == [(None,)]
    store.add_tags(run_id, {"owner": "bo"})
    assert store.get_run(run_id).tags == {"owner": "bo"}
    with pytest.raises(ValueError, match="tags both set and removed: 'owner'"):
        store.edit_tags(run_id, {"owner": "cy"}, ["owner"])
    assert store.get_run(run_id).tags == {"owner": "bo"}
    with pytest.raises(RunNotFoundError):
        store.remove_tags("f" * 32, ["owner"])


def test_the_listing_follows_tag_deletes_made_by_another_process(any_store: Store) -> None:
    store = any_store
    ids = [
        store.record_run(
            "e", name=f"r{i}", tags={"owner": ["ana", "bo"][i % 2]}, started_at=1_800_000_000 + i
        )
        for i in range(6)
    ]
    assert run_page(store, filters=["tags.owner = ana"])["total"] == 3  # the index is warm
    assert _ids(run_page(store, sort="tags.owner", limit=1)) == [ids[4]]
    script = (
        "import sys\nfrom mlops_jupyter.store import Store\n"
        "with Store.open(sys.argv[1], start=sys.argv[2]) as s:\n"
        "    s.remove_tags(sys.argv[3], ['owner'])\n"
        "    s.edit_tags(sys.argv[4], {'owner': 'aaron'}, ['nothing'])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, _location(store), str(store.directory), ids[4], ids[1]],
        check=True,
        timeout=120,
    )
    assert _ids(run_page(store, filters=["tags.owner = ana"], sort="name")) == [ids[0], ids[2]]
    assert run_page(store, filters=["tags.owner != ana"])["total"] == 4  # untagged ids[4] too
    by_owner = _ids(run_page(store, sort="tags.owner"))
    assert by_owner == [ids[1], ids[2], ids[0], ids[5], ids[3], ids[4]]  # untagged last
    assert run_page(store, filters=["tags.owner = aaron"])["runs"][0]["tags"] == {"owner": "aaron"}


# ------------------------------------------------------------------------- curves
def _curve_runs(store: Store) -> dict[str, str]:
    """Runs holding one metric ``loss`` in each way the store keeps curves."""
    runs = {}
    runs["points"] = store.record_run(
        "e", name="points", metrics=[("loss", 1 / (s + 1), s) for s in range(300)]
    )
    store.log_metric(runs["points"], "loss", float("nan"), step=300)  # a row after the chunk
    runs["rows"] = store.create_run("e", name="rows")
    for step in (0, 2, 1):
        store.log_metric(runs["rows"], "loss", 10.0 - step, step=step)
    store.log_metric(runs["rows"], "loss", 7.5, step=2)  # logged again: the later value wins
    runs["series"] = store.create_run("e", name="series")
    store.finish_run(runs["series"], series={"loss": [3.0, float("inf"), 1.0]})
    runs["batches"] = store.create_run("e", name="batches")
    for start in (0, 50):
        batch = Points()
        for step in range(start, start + 50):
            batch.add(step, math.sin(step), 1.0 + step)
        store.append_metric_points(runs["batches"], {"loss": batch, "acc": batch})
    runs["one"] = store.record_run("e", name="one", metrics={"loss": 0.5, "acc": 0.1})
    runs["none"] = store.record_run("e", name=None, metrics={"acc": 0.9})
    return runs


def test_several_runs_curves_are_each_runs_metric_curve(any_store: Store) -> None:
    store = any_store
    runs = _curve_runs(store)
    got = store.metric_curves(list(runs.values()), "loss")
    assert list(got) == list(runs.values())
    for label, run_id in runs.items():
        if label == "none":
            assert (len(got[run_id]), got[run_id].key) == (0, "loss")
            continue
        want = store.metric_curve(run_id, "loss")
        for field in ("steps", "values", "times"):
            assert np.array_equal(
                getattr(got[run_id], field), getattr(want, field), equal_nan=True
            ), (label, field)
    assert got[runs["rows"]].values.tolist() == [10.0, 9.0, 7.5]
    assert len(got[runs["points"]]) == 301 and math.isnan(got[runs["points"]].values[-1])
    assert store.metric_curves([], "loss") == {}


def _count_queries(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the store's connection executes from now on."""
    seen: list[str] = []
    if store.dialect.name == "sqlite":
        store.conn.set_trace_callback(seen.append)
    else:
        conn = store.conn
        execute = conn.execute

        def counting(sql: str, params: Any = ()) -> Any:
            seen.append(sql)
            return execute(sql, params)

        monkeypatch.setattr(conn, "execute", counting)
    return seen


def test_curves_of_fifty_runs_are_one_query(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = any_store
    ids = []
    for i in range(50):
        run_id = store.create_run("e", name=f"r{i}")
        store.finish_run(run_id, metrics=[("loss", float(i + s), s) for s in range(20)])
        ids.append(run_id)
    seen = _count_queries(store, monkeypatch)
    got = store.metric_curves(ids, "loss")
    selects = [q for q in seen if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, seen
    assert [c.values[-1] for c in got.values()] == [float(i + 19) for i in range(50)]


def test_curve_keys_are_metrics_with_more_than_one_step(any_store: Store) -> None:
    store = any_store
    runs = _curve_runs(store)
    assert store.curve_keys(list(runs.values())) == ["acc", "loss"]
    assert store.curve_keys([runs["one"], runs["none"]]) == []
    assert store.curve_keys([runs["rows"]]) == ["loss"]
    assert store.curve_keys([runs["series"], runs["one"]]) == ["loss"]
    assert store.curve_keys([runs["batches"]]) == ["acc", "loss"]
    same_step = store.create_run("e")
    batch = Points()
    batch.add(3, 1.0, 1.0)
    batch.add(3, 2.0, 2.0)  # two points of one step: one value, no curve
    store.append_metric_points(same_step, {"flat": batch})
    assert store.curve_keys([same_step]) == []
    store.log_metric(same_step, "flat", 5.0, step=4)
    assert store.curve_keys([same_step]) == ["flat"]


def test_run_names_resolve_prefixes_and_refuse_unknown_ids(any_store: Store) -> None:
    store = any_store
    a = store.record_run("e", name="a")
    b = store.record_run("e")
    assert store.run_names([b[:6], a.upper(), a]) == {b: None, a: "a"}
    with pytest.raises(RunNotFoundError, match="no run with id 'ffffffff'"):
        store.run_names([a, "ffffffff"])
    with pytest.raises(RunNotFoundError):
        store.run_names(["f" * 32])


def _walk(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n).cumsum()
    return np.arange(n, dtype=np.int64) * 3 + 7, values


@pytest.mark.parametrize("points", [2, 3, 4, 5, 7, 32, 100, 5000, 9999])
@pytest.mark.parametrize("with_gaps", [False, True])
def test_downsampling_keeps_the_extremes_in_step_order(points: int, with_gaps: bool) -> None:
    steps, values = _walk(10_000, seed=points)
    if with_gaps:
        values[[5, 4000, 9998]] = np.nan
        values[7000] = -np.inf
    kept_steps, kept_values = downsample(steps, values, points)
    assert 2 <= len(kept_steps) <= points
    assert np.all(np.diff(kept_steps) > 0)
    where = (kept_steps - 7) // 3  # each kept point is a point of the curve, unchanged
    assert np.array_equal(values[where], kept_values, equal_nan=True)
    assert np.nanmin(kept_values) == np.nanmin(values)
    assert np.nanmax(kept_values) == np.nanmax(values)
    if points >= 4:
        assert (kept_steps[0], kept_steps[-1]) == (steps[0], steps[-1])
    if with_gaps and points >= 5:
        assert np.isnan(kept_values).any()  # a gap stays visible


def test_a_short_curve_is_not_downsampled() -> None:
    steps, values = _walk(32)
    kept_steps, kept_values = downsample(steps, values, 32)
    assert kept_steps is steps and kept_values is values
    with pytest.raises(ValueError, match="points must be at least 2, got 1"):
        downsample(steps, values, 1)


def test_downsampling_an_exact_case() -> None:
    steps = np.arange(16, dtype=np.int64)
    values = np.array([5, 1, 9, 5, 5, 5, 5, 5, 0, 5, 5, 7, 5, 5, 5, 6], dtype=np.float64)
    kept_steps, kept_values = downsample(steps, values, 8)  # two runs of 8 points
    assert kept_steps.tolist() == [0, 1, 2, 7, 8, 11, 15]  # first, min, max, last of each
    assert kept_values.tolist() == [5, 1, 9, 5, 0, 7, 6]


# ------------------------------------------------------------------------ code diff
def test_a_cell_diff_shows_every_line_numbered_on_each_side() -> None:
    a = "x = 1\ny = 2\nprint(x + y)\n"
    b = "x = 1\ny = 3\nz = 4\nprint(x + y)"
    assert diff_lines(a, b) == {
        "lines": [
            {"op": " ", "a": 1, "b": 1, "text": "x = 1"},
            {"op": "-", "a": 2, "b": None, "text": "y = 2"},
            {"op": "+", "a": None, "b": 2, "text": "y = 3"},
            {"op": "+", "a": None, "b": 3, "text": "z = 4"},
            {"op": " ", "a": 3, "b": 4, "text": "print(x + y)"},
        ],
        "added": 2,
        "removed": 1,
    }
    assert diff_lines("", "") == {"lines": [], "added": 0, "removed": 0}
    assert diff_lines(a, a)["lines"] == [
        {"op": " ", "a": i, "b": i, "text": t}
        for i, t in enumerate(["x = 1", "y = 2", "print(x + y)"], 1)
    ]


def test_a_history_diff_has_the_hunks_of_diff_u() -> None:
    old = [f"line {i}" for i in range(40)]
    new = old[:10] + ["inserted"] + old[10:30] + old[31:]
    diff = diff_lines("\n".join(old), "\n".join(new), context=3)
    shown = [d["text"] if d["op"] == "@@" else d["op"] + d["text"] for d in diff["lines"]]
    assert shown == list(difflib.unified_diff(old, new, lineterm="", n=3))[2:]
    assert [d["text"] for d in diff["lines"] if d["op"] == "@@"] == [
        "@@ -8,6 +8,7 @@",
        "@@ -28,7 +29,6 @@",
    ]
    assert (diff["added"], diff["removed"]) == (1, 1)
    assert diff_lines("same\ntext", "same\ntext", context=3)["lines"] == []


def test_history_text_joins_the_cells_in_order() -> None:
    cells = [
        {"execution_count": 1, "source": "import pandas as pd"},
        {"execution_count": None, "source": "df = pd.read_csv('x')\ndf.head()"},
        {"execution_count": 3, "source": None, "source_hash": "abcd1234"},
    ]
    assert history_text(cells) == (
        "# In [1]:\nimport pandas as pd\n\n"
        "# In []:\ndf = pd.read_csv('x')\ndf.head()\n\n"
        "# In [3]:\n# (source not stored; cell abcd1234)"
    )
    assert history_text([]) == ""


def test_code_diff_of_two_recorded_runs(any_store: Store) -> None:
    store = any_store
    before = [
        {"execution_count": 1, "source": "import numpy as np"},
        {"execution_count": 2, "source": "X = np.ones(3)"},
    ]
    a = store.record_run(
        "e", name="a", source="%%track\nfit(X, depth=3)", history=before, started_at=1_800_000_000
    )
    later = [*before[:1], {"execution_count": 3, "source": "X = np.zeros(3)"}]
    b = store.record_run("e", name="b", source="%%track\nfit(X, depth=4)", history=later)
    bare = store.record_run("e", name="bare")
    diff = code_diff(store.get_run(a), store.get_run(b))
    assert diff["a"] == {"run_id": a, "name": "a", "started_at": "2027-01-15T08:00:00+00:00"}
    assert diff["b"]["run_id"] == b and not diff["same_cell"] and not diff["same_history"]
    assert [(d["op"], d["text"]) for d in diff["cell"]["lines"]] == [
        (" ", "%%track"),
        ("-", "fit(X, depth=3)"),
        ("+", "fit(X, depth=4)"),
    ]
    assert [(d["op"], d["text"]) for d in diff["history"]["lines"]] == [
        ("@@", "@@ -1,5 +1,5 @@"),
        (" ", "# In [1]:"),
        (" ", "import numpy as np"),
        (" ", ""),
        ("-", "# In [2]:"),
        ("-", "X = np.ones(3)"),
        ("+", "# In [3]:"),
        ("+", "X = np.zeros(3)"),
    ]
    empty = code_diff(store.get_run(bare), store.get_run(a))
    assert empty["cell"]["lines"] == [
        {"op": "+", "a": None, "b": 1, "text": "%%track"},
        {"op": "+", "a": None, "b": 2, "text": "fit(X, depth=3)"},
    ]
    assert (empty["history"]["added"], empty["history"]["removed"]) == (5, 0)
    same = code_diff(store.get_run(a), store.get_run(a))
    assert same["same_cell"] and same["same_history"] and same["history"]["lines"] == []


def test_code_diff_is_plain_python() -> None:
    from test_layering import FORBIDDEN, _imports

    assert not _imports(PACKAGE / "code_diff.py") & set(FORBIDDEN)
    assert not _imports(PACKAGE / "store" / "runs_csv.py") & set(FORBIDDEN)


# ------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", "bad column 'lr': use params.KEY, metrics.KEY, tags.KEY or train_hash"),
        ("params.", "bad column 'params.'"),
        ("metrics.auc,name", "bad column 'name'"),
        (",".join(["params.x"] * 501), "at most 500 columns can be exported, got 501"),
    ],
)
def test_bad_columns_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_columns([text])


def test_columns_cells_and_the_formula_guard() -> None:
    assert parse_columns(["params.lr, metrics.auc", "tags.owner,train_hash"]) == [
        "params.lr",
        "metrics.auc",
        "tags.owner",
        "train_hash",
    ]
    assert parse_columns([]) == []
    for text, shown in [
        ("=1+2", "'=1+2"),
        ("+x", "'+x"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
    ]:
        assert text_cell(text) == shown
    for number, shown in [
        (-0.5, "-0.5"),
        (0.1, "0.1"),
        (1e-300, "1e-300"),
        (3, "3"),
        ("NaN", "nan"),
        ("-Infinity", "-inf"),
        (None, ""),
    ]:
        assert number_cell(number) == shown


def _read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_export_is_every_filtered_run_in_listing_order(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs_csv, "PAGE", 7)  # pages of 7: four pages for 25 runs
    store = any_store
    for i in range(30):
        store.record_run(
            "churn" if i < 27 else "other",
            name=['=HYPERLINK("x")', "-minus", "plain"][i % 3],
            params={
                "lr": [0.1, 0.01][i % 2],
                "kind": "-5" if i % 5 == 0 else "rf",
                "depth": None if i % 4 == 0 else i,
                "flags": [1, 2],
                "on": i % 2 == 0,
            },
            metrics={"auc": (i - 10) / 20},
            tags={"owner": "@ana" if i % 2 else "bo"} if i % 6 else None,
            started_at=1_800_000_000 + i,
            ended_at=1_800_000_000 + i + 0.25,
        )
    columns = [
        "params.lr",
        "params.kind",
        "params.depth",
        "params.flags",
        "params.on",
        "metrics.auc",
        "tags.owner",
        "train_hash",
    ]
    query = {"experiment": "churn", "filters": ["params.lr = 0.1"], "sort": "-metrics.auc"}
    rows = _read_csv("".join(csv_pages(store, columns, **query)))  # type: ignore[arg-type]
    assert rows[0] == [
        "run_id",
        "name",
        "experiment",
        "status",
        "started_at",
        "duration_s",
        *columns,
    ]
    listed = [
        r
        for off in range(0, 100, 10)
        for r in run_page(store, **query, offset=off, limit=10)["runs"]
    ]  # type: ignore[arg-type]
    assert len(listed) == 14 and [r[0] for r in rows[1:]] == [r["run_id"] for r in listed]
    first = dict(zip(rows[0], rows[1], strict=True))
    run = listed[0]  # i = 26: the highest auc among lr = 0.1
    assert first == {
        "run_id": run["run_id"],
        "name": "plain",
        "experiment": "churn",
        "status": "finished",
        "started_at": run["started_at"],
        "duration_s": "0.25",
        "params.lr": "0.1",
        "params.kind": "rf",
        "params.depth": "26",
        "params.flags": "[1, 2]",
        "params.on": "true",
        "metrics.auc": "0.8",
        "tags.owner": "bo",
        "train_hash": "",
    }
    by_id = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert {r["name"] for r in by_id.values()} == {'\'=HYPERLINK("x")', "'-minus", "plain"}
    assert {r["params.kind"] for r in by_id.values()} == {"'-5", "rf"}  # text, guarded
    assert {r["tags.owner"] for r in by_id.values()} == {"", "bo"}  # lr 0.1: even i
    assert "-0.5" in {r["metrics.auc"] for r in by_id.values()}  # a number, not guarded
    assert by_id[listed[-1]["run_id"]]["params.depth"] == "null"  # i = 0: depth None


def test_the_export_is_the_listing_as_it_was_when_it_began(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs_csv, "PAGE", 4)
    store = any_store
    ids = [store.record_run("e", started_at=1_800_000_000 + i) for i in range(10)]
    pages = csv_pages(store, ["tags.owner"])
    first = next(pages)
    newer = store.record_run("e", started_at=1_900_000_000)  # would shift every later page
    store.add_tags(ids[0], {"owner": "ana"})  # in the last chunk: read after the edit
    rows = _read_csv(first + "".join(pages))[1:]
    assert [r[0] for r in rows] == ids[::-1]
    assert newer not in {r[0] for r in rows}
    assert rows[-1][-1] == "ana"


@pytest.mark.parametrize("sort", [None, "name", "-metrics.m", "params.p", "tags.t", "status"])
def test_run_ids_are_the_pages_of_run_page(any_store: Store, sort: str | None) -> None:
    from mlops_jupyter.store.queries import run_ids

    store = any_store
    for i in range(23):
        store.record_run(
            ["a", "b"][i % 2],
            name=f"r{i % 7}",
            params={"p": i % 3} if i % 4 else None,
            metrics={"m": (i % 5) / 4} if i % 6 else None,
            tags={"t": "xyz"[i % 3]} if i % 5 else None,
            started_at=1_800_000_000 + i // 2,
        )
    for query in ({}, {"experiment": "a"}, {"filters": ["params.p != 1"]}):
        paged = [
            run_id
            for offset in range(0, 30, 4)
            for run_id in _ids(run_page(store, sort=sort, offset=offset, limit=4, **query))
        ]
        assert run_ids(store, sort=sort, **query) == paged, query  # type: ignore[arg-type]


def test_a_bad_filter_or_sort_raises_before_anything_is_written(any_store: Store) -> None:
    with pytest.raises(ValueError, match="bad filter 'oops'"):
        next(csv_pages(any_store, [], filters=["oops"]))
    with pytest.raises(ValueError, match="cannot order runs by 'nope'"):
        next(csv_pages(any_store, [], sort="nope"))
    assert _read_csv(next(csv_pages(any_store, ["tags.x"]))) == [
        ["run_id", "name", "experiment", "status", "started_at", "duration_s", "tags.x"]
    ]
