"""Logged curves: written in packed batches while the run goes on, read back per metric."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_jupyter.curve_buffer import CurveBuffer
from mlops_jupyter.errors import MetricNotFoundError
from mlops_jupyter.store import Store
from mlops_jupyter.store.curves import Points, points_from


def _batch(key: str, steps: range, value: Any, when: float = 1000.0) -> dict[str, Points]:
    return points_from(((key, value(step), step) for step in steps), when)


def test_batches_are_one_row_per_metric_and_read_back_exactly(any_store: Any) -> None:
    store = any_store
    run_id = store.create_run("curves")
    loss = lambda step: 1.0 / (step + 1)  # noqa: E731
    store.append_metric_points(run_id, _batch("loss", range(4000), loss, 1000.0))
    store.append_metric_points(run_id, {
        **_batch("loss", range(4000, 10000), loss, 1001.0),
        **_batch("acc", range(3), lambda s: [0.5, math.nan, math.inf][s], 1001.0),
    })  # fmt: skip
    store.finish_run(run_id, points=_batch("loss", range(10000, 10002), loss, 1002.0))

    chunks = store._read(
        "SELECT key, seq, n FROM metric_chunks WHERE run_id = ? ORDER BY key, seq", (run_id,)
    )
    assert [tuple(row) for row in chunks] == [
        ("acc", 0, 3), ("loss", 0, 4000), ("loss", 1, 6000), ("loss", 2, 2),
    ]  # fmt: skip
    (metric_rows,) = store._read("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,))
    assert metric_rows[0] == 4  # one per batch and metric: its highest step

    curve = store.metric_curve(run_id, "loss")
    assert curve.steps.dtype == np.int64 and curve.values.dtype == np.float64
    np.testing.assert_array_equal(curve.steps, np.arange(10002))
    np.testing.assert_array_equal(curve.values, 1.0 / (np.arange(10002) + 1))
    assert curve.times[0] == 1000.0 and curve.times[-1] == 1002.0
    acc = store.metric_curve(run_id, "acc")
    assert acc.values[0] == 0.5 and math.isnan(acc.values[1]) and acc.values[2] == math.inf

    run = store.get_run(run_id)
    assert [p.step for p in run.metric_history["loss"]] == list(range(10002))
    assert run.metric_history["loss"][-1].value == 1.0 / 10002
    assert run.metrics["loss"] == 1.0 / 10002 and run.metrics["acc"] == math.inf
    listed = store.runs(experiment="curves")
    assert listed.loc[0, "metrics.loss"] == 1.0 / 10002  # the latest value is what listings see


def test_a_step_logged_again_keeps_its_newest_value(any_store: Any) -> None:
    store = any_store
    run_id = store.create_run("curves")
    store.append_metric_points(run_id, _batch("loss", range(5), lambda s: 10.0 + s, 1000.0))
    store.append_metric_points(run_id, _batch("loss", range(2, 4), lambda s: 20.0 + s, 1001.0))
    store.log_metric(run_id, "loss", 99.0, step=3)  # a single point, written later still
    np.testing.assert_array_equal(
        store.metric_curve(run_id, "loss").values, [10.0, 11.0, 22.0, 99.0, 14.0]
    )
    assert [p.value for p in store.get_run(run_id).metric_history["loss"]] == [
        10.0, 11.0, 22.0, 99.0, 14.0,
    ]  # fmt: skip


def test_record_run_packs_a_curve_given_as_triples(store: Store) -> None:
    triples = [("loss", 1.0 / (s + 1), s) for s in range(500)] + [("auc", 0.9, 0)]
    run_id = store.record_run("curves", metrics=triples)
    rows = store._read("SELECT key, n FROM metric_chunks WHERE run_id = ?", (run_id,))
    assert [tuple(r) for r in rows] == [("loss", 500)]  # a single value stays a plain row
    run = store.get_run(run_id)
    assert run.metrics == {"auc": 0.9, "loss": 1.0 / 500}
    assert len(run.metric_history["loss"]) == 500


def test_metric_curve_reads_a_captured_series_and_names_what_is_missing(store: Store) -> None:
    run_id = store.create_run("curves")
    store.finish_run(run_id, metrics={"auc": 0.8}, series={"val_loss": [0.9, 0.5, 0.25]})
    curve = store.metric_curve(run_id[:8], "val_loss")
    np.testing.assert_array_equal(curve.steps, [0, 1, 2])
    np.testing.assert_array_equal(curve.values, [0.9, 0.5, 0.25])
    with pytest.raises(MetricNotFoundError, match=r"no metric 'los' \(it has: auc, val_loss\)"):
        store.metric_curve(run_id, "los")


def test_buffer_writes_in_the_background_by_count_and_by_age() -> None:
    written: list[dict[str, list[int]]] = []
    arrived = threading.Event()

    def write(points: Mapping[str, Points]) -> None:
        written.append({key: list(batch.steps) for key, batch in points.items()})
        arrived.set()

    buffer = CurveBuffer(write, seconds=3600, points=5)
    for step in range(5):
        buffer.add("loss", step, step / 10)
    assert arrived.wait(10), "five points (the count limit) were not written"
    assert written == [{"loss": [0, 1, 2, 3, 4]}]
    assert buffer.close() == {}

    arrived.clear()
    written.clear()
    aged = CurveBuffer(write, seconds=0.05, points=1000)
    started = time.monotonic()
    aged.add("loss", 0, 1.0)
    aged.add("acc", 0, np.float32(0.5))
    assert arrived.wait(10), "points older than the age limit were not written"
    assert time.monotonic() - started >= 0.05
    assert written == [{"loss": [0], "acc": [0]}]
    aged.add("loss", 1, 2.0)
    rest = aged.close()  # stops the thread; what it had not written yet comes back
    assert (
        sum(len(batch) for batch in rest.values())
        + sum(len(steps) for w in written for steps in w.values())
        == 3
    )


def test_buffer_keeps_a_refused_batch_for_the_final_write() -> None:
    calls: list[int] = []
    refused = threading.Event()

    def write(points: Mapping[str, Points]) -> None:
        calls.append(sum(len(b) for b in points.values()))
        refused.set()
        raise OSError(28, "No space left on device")

    buffer = CurveBuffer(write, seconds=3600, points=3)
    for step in range(3):
        buffer.add("loss", step, float(step))
    assert refused.wait(10)
    buffer.add("loss", 3, 3.0)
    rest = buffer.close()
    assert list(rest["loss"].steps) == [0, 1, 2, 3]  # in order, nothing lost
    assert list(rest["loss"].values) == [0.0, 1.0, 2.0, 3.0]
    assert buffer.last_error == "OSError: [Errno 28] No space left on device"


def test_a_value_that_is_not_a_number_is_refused_when_logged() -> None:
    buffer = CurveBuffer()
    with pytest.raises(TypeError, match="a metric value is a number; got str 'high'"):
        buffer.add("loss", 0, "high")
    assert buffer.close() == {}


_KILLED_LOOP = """
import sys, mlops_jupyter
with mlops_jupyter.start_run(experiment="killed", name="epochs") as run:
    for epoch in range(90):
        mlops_jupyter.log_metric("loss", 1.0 / (epoch + 1))
        mlops_jupyter.log_metric("epoch_time", 0.5)
    print(run.run_id, flush=True)
    sys.stdin.readline()  # epoch 90 never ends: the process is killed here
"""


def test_a_killed_process_keeps_the_points_it_logged(tmp_path: Path) -> None:
    store_dir = tmp_path / ".mlops"
    Store.open(store_dir, create=True).close()
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(_KILLED_LOOP))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "MLOPS_JUPYTER_STORE": str(store_dir)},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        store = Store.open(store_dir)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the background write lands within ~1 s
            try:
                if len(store.metric_curve(run_id, "loss")) == 90:
                    break
            except MetricNotFoundError:
                pass
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()
    assert child.returncode == -signal.SIGKILL
    assert store.get_run(run_id).status == "running"  # died before finishing
    curve = store.metric_curve(run_id, "loss")
    np.testing.assert_array_equal(curve.steps, np.arange(90))
    np.testing.assert_array_equal(curve.values, 1.0 / (np.arange(90) + 1))
    assert store.get_run(run_id).metrics == {"loss": 1.0 / 90, "epoch_time": 0.5}
    store.close()
