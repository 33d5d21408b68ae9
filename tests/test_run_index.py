"""The runs listing's in-memory index: it agrees with SQL's ORDER BY on every sort, follows
writes made through other connections (and only committed ones), and stays bounded."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from mlops_jupyter.store import Store
from mlops_jupyter.store.queries import SORT_COLUMNS, run_columns, run_page
from mlops_jupyter.store.run_index import MAX_COLUMNS, RunIndex


def _second(store: Store, tmp_path: Path) -> Store:
    """Another connection (as another process would have) to the same store."""
    if store.dialect.name == "sqlite":
        return Store.open(store.directory, create=False)
    return Store.open(store.conn.url, start=tmp_path)  # type: ignore[attr-defined]


def _ids(page: dict[str, Any]) -> list[str]:
    return [r["run_id"] for r in page["runs"]]


def test_every_sort_agrees_with_sql_order_by(any_store: Store) -> None:
    """The index's order is SQL's ``ORDER BY`` of ``Store.run_summaries`` (ties, runs
    without the key, descending and ascending), on both engines."""
    store = any_store
    for i in range(40):
        run_id = store.create_run(["one", "two", "three"][i % 3], name=None if i % 6 == 0 else
                                  f"n{i % 7}", started_at=1_800_000_000 + i // 2)  # fmt: skip
        if i % 5 == 4:
            continue  # still running: no end, no duration, no values
        params: dict[str, Any] = {"depth": i % 4, "kind": ["rf", "gb"][i % 2]}
        if i % 7 == 0:
            del params["depth"]
        store.finish_run(run_id, status="failed" if i % 9 == 0 else "finished",
                         ended_at=1_800_000_100 + (i * 37) % 11, params=params,
                         metrics={"acc": (i * 13) % 10 / 10})  # fmt: skip
    sorts = [*SORT_COLUMNS, "params.depth", "params.kind"]
    for sort in [*sorts, *("-" + s for s in sorts)]:
        want = [r["run_id"] for r in store.run_summaries(order_by=sort)]
        assert _ids(run_page(store, sort=sort, limit=1000)) == want, sort
        paged = [
            run_id
            for offset in range(0, 40, 9)
            for run_id in _ids(run_page(store, sort=sort, offset=offset, limit=9))
        ]
        assert paged == want, sort


def test_the_listing_follows_writes_of_other_connections(any_store: Store, tmp_path: Path) -> None:
    store = any_store
    first = store.record_run("e", name="first", params={"g": "a"}, metrics={"acc": 0.5})
    other = _second(store, tmp_path)
    try:
        assert run_page(other, sort="-metrics.acc")["total"] == 1  # the index is warm now
        running = store.create_run("e", name="running")
        second = store.record_run("e", name="second", params={"g": "b"}, metrics={"acc": 0.7})
        page = run_page(other, sort="-metrics.acc")
        assert _ids(page) == [second, first, running]
        assert run_page(other, status="running")["total"] == 1
        store.finish_run(running, params={"g": "b"}, metrics={"acc": 0.9})
        store.log_metric(first, "acc", 0.95, step=1)  # a later point moves the latest value
        assert _ids(run_page(other, sort="-metrics.acc")) == [first, running, second]
        assert run_page(other, status="running")["total"] == 0
        assert _ids(run_page(other, filters=["params.g=b"], sort="name")) == [running, second]
        assert run_page(other, filters=["metrics.acc>0.8"])["total"] == 2
    finally:
        other.close()


def test_a_write_not_yet_committed_is_not_listed(any_store: Store, tmp_path: Path) -> None:
    store = any_store
    store.record_run("e", name="before")
    other = _second(store, tmp_path)
    writing, release, done = threading.Event(), threading.Event(), threading.Event()

    def write() -> None:
        with store.transaction():
            store.record_run("e", name="inside")
            writing.set()
            release.wait(10)
        done.set()

    thread = threading.Thread(target=write)
    try:
        assert run_page(other)["total"] == 1
        thread.start()
        assert writing.wait(10)
        assert [r["name"] for r in run_page(other)["runs"]] == ["before"]
        release.set()
        assert done.wait(10)
        assert [r["name"] for r in run_page(other)["runs"]] == ["inside", "before"]
    finally:
        release.set()
        thread.join(10)
        other.close()


def test_loaded_columns_stay_bounded_and_reload_on_demand(any_store: Store) -> None:
    store = any_store
    keys = [f"m{i}" for i in range(MAX_COLUMNS + 8)]
    low = store.record_run("e", metrics={k: 0.1 for k in keys})
    high = store.record_run("e", metrics={k: 0.9 for k in keys})
    for key in keys:
        assert _ids(run_page(store, sort=f"-metrics.{key}")) == [high, low]
    assert store._run_index is not None and len(store._run_index.columns) == MAX_COLUMNS
    assert _ids(run_page(store, sort=f"metrics.{keys[0]}")) == [low, high]  # loaded again


def test_ids_sharing_their_first_64_bits_are_told_apart() -> None:
    """Runs are found by the high bits of their id; two ids sharing them still resolve to
    their own runs and sort in id order."""
    index = RunIndex()
    same = "0123456789abcdef"
    ids = [same + "f" * 16, same + "0" * 16, "ff" * 16, same + "8" * 16, "00" * 16]
    rows = [(run_id, 1, 1, 1.8e9 + i) for i, run_id in enumerate(ids)]
    positions = index._place(rows)
    assert positions.tolist() == [0, 1, 2, 3, 4]
    assert index.positions(ids[::-1]).tolist() == [4, 3, 2, 1, 0]
    assert index.positions([same + "1" * 16, "ab" * 16]).tolist() == [-1, -1]
    assert index.id_rank().tolist() == [3, 1, 4, 2, 0]
    index._place([(same + "0" * 16, 1, 2, 5.0)])  # a known run is updated in place
    assert (index.n, int(index.status[1]), float(index.started[1])) == (5, 2, 5.0)


@pytest.mark.parametrize("bad", ["params.x>1", "metrics.acc>=high", "nonsense"])
def test_a_bad_filter_is_refused_before_anything_is_read(any_store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="bad filter"):
        run_page(any_store, filters=[bad])
    assert any_store._run_index is None


# ------------------------------------------------------------------ filter lines and tags
def _tagged(store: Store) -> list[str]:
    """12 runs over two experiments with params, a metric and tags (some without)."""
    ids = []
    for i in range(12):
        ids.append(
            store.record_run(
                "churn" if i % 3 else "fraud",
                name=f"r{i}",
                params={"feature_set": ["base", "base+usage"][i % 2], "depth": i % 4},
                metrics={"val_auc": 0.8 + i / 100},
                tags={"owner": ["ana", "bo", "cy"][i % 3]} if i % 4 else None,
                started_at=1_800_000_000 + i,
            )
        )
    return ids


def test_a_filter_line_with_params_metrics_and_tags(any_store: Store) -> None:
    store = any_store
    ids = _tagged(store)
    line = "metrics.val_auc >= 0.85 params.feature_set = base+usage tags.owner = ana"
    want = [
        ids[i] for i in range(12) if 0.8 + i / 100 >= 0.85 and i % 2 == 1 and i % 4 and i % 3 == 0
    ]
    assert want  # the data has such runs
    page = run_page(store, filters=[line], sort="started_at")
    assert (page["total"], _ids(page)) == (len(want), want)
    with_and = run_page(store, filters=[line.replace(" params", " and params")])
    assert with_and["total"] == len(want)
    assert run_page(store, filters=["tags.owner != ana"])["total"] == sum(
        1 for i in range(12) if not (i % 4 and i % 3 == 0)
    )  # runs without the tag too, as parameters' != does
    assert run_page(store, filters=['tags.owner = "bo"'])["total"] == sum(
        1 for i in range(12) if i % 4 and i % 3 == 1
    )
    shown = run_page(store, filters=["tags.owner = cy"])["runs"]
    assert {r["name"]: r["tags"] for r in shown} == {
        f"r{i}": {"owner": "cy"} for i in range(12) if i % 4 and i % 3 == 2
    }


def test_sort_by_a_tag_and_the_index_follows_tag_edits(any_store: Store) -> None:
    store = any_store
    ids = _tagged(store)
    by_owner = _ids(run_page(store, sort="tags.owner", limit=100))
    owners = {ids[i]: ["ana", "bo", "cy"][i % 3] for i in range(12) if i % 4}
    tagged = sorted(owners, key=lambda r: (owners[r], -ids.index(r)))  # ties newest first
    untagged = [ids[i] for i in reversed(range(12)) if not i % 4]
    assert by_owner == tagged + untagged
    store.add_tags(ids[0], {"owner": "aaron"})
    assert _ids(run_page(store, sort="tags.owner", limit=1)) == [ids[0]]
    assert run_page(store, filters=["tags.owner = aaron"])["total"] == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("val_auc > 3", "bad filter 'val_auc > 3': use params.KEY = VALUE, metrics.KEY >= NUMBER"),
        ("metrics.val_auc >=", "a value is missing after >="),
        ("oops metrics.val_auc > 0.5", "bad filter 'oops'"),
        ("metrics.val_auc > high", "a metric compares with a number"),
        ("tags.owner > ana", "tags compare with = or !="),
        ("params.depth >= 3", "parameters compare with = or !="),
    ],
)
def test_bad_filter_lines_say_why(any_store: Store, line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        run_page(any_store, filters=[line])


def test_run_columns_per_experiment(any_store: Store) -> None:
    store = any_store
    _tagged(store)
    store.record_run("other", params={"lr": 0.1}, metrics={"loss": 1.0}, tags={"team": "x"})
    assert run_columns(store) == {
        "params": ["depth", "feature_set", "lr"],
        "metrics": ["loss", "val_auc"],
        "tags": ["owner", "team"],
    }
    assert run_columns(store, "churn") == {
        "params": ["depth", "feature_set"],
        "metrics": ["val_auc"],
        "tags": ["owner"],
    }
    assert run_columns(store, "nope") == {"params": [], "metrics": [], "tags": []}
