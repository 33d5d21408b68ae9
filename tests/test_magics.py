"""%%track in a real kernel: the cell behaves exactly as without it, whatever happens."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from mlops_jupyter.store import Store

pytestmark = pytest.mark.slow
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Kernel:
    """A real ipykernel, driven over its channels."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.km = KernelManager(kernel_name="python3")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_JUPYTER_")}
        full_env.update(env or {})
        self.km.start_kernel(cwd=str(workdir), env=full_env)
        self.client = self.km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def send(self, code: str) -> str:
        return self.client.execute(code, store_history=True)

    def collect(
        self, msg_id: str, timeout: float = 120
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The execute reply and every output of one request."""
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append({"type": kind, **content})
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        return reply["content"], outputs

    def run(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self.collect(self.send(code))

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=True)
        else:
            self.km.cleanup_resources()
        self.km.context.destroy(linger=0)  # no zmq context left for the garbage collector


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path)
    reply, _ = k.run("%load_ext mlops_jupyter")
    assert reply["status"] == "ok"
    yield k
    k.shutdown()


def user_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs without the run summary, with ANSI codes and cell numbers normalised."""
    kept = []
    for out in outputs:
        if out["type"] == "display_data" and "mlops-jupyter-run" in out["data"].get(
            "text/html", ""
        ):
            continue
        out = dict(out)
        out.pop("execution_count", None)
        if out["type"] == "stream":  # each cell compiles to its own file name
            out["text"] = re.sub(r"ipykernel_\d+/\d+\.py:\d+", "CELL:N", out["text"])
        if out["type"] == "error":
            out["traceback"] = [
                re.sub(r"Cell In\[\d+\]", "Cell In[N]", ANSI.sub("", line))
                for line in out["traceback"]
            ]
        kept.append(out)
    return kept


def normalise_frame(frame: str) -> str:
    """A traceback frame without the ``# %%track`` comment line and with numbers elided.

    The comment keeps the magic's line, so the cell's own lines sit one further down.
    """
    lines = [line for line in frame.splitlines() if not re.match(r"^\s*\d+\s+# %%track", line)]
    return re.sub(r"\d+", "N", "\n".join(lines))


def runs_in(workdir: Path) -> Any:
    with Store.open(workdir / ".mlops", create=False) as store:
        return store.runs(order_by="started_at")


CELLS = [
    "41 + 1",
    "print('hello')\n'last'",
    "from IPython.display import display\ndisplay('shown')\nx = 3",
    "import warnings\nwarnings.warn('careful')\n5",
    "def f():\n    return 1 / 0\n\n\nf()",
    "raise ValueError('bad input')",
]


@pytest.mark.parametrize("body", CELLS)
def test_tracked_cell_behaves_like_untracked(kernel: Kernel, body: str) -> None:
    plain_reply, plain = kernel.run(body)
    tracked_reply, tracked = kernel.run("%%track --no-shap\n" + body)
    assert tracked_reply["status"] == plain_reply["status"]
    mine, theirs = user_outputs(tracked), user_outputs(plain)
    for out in mine + theirs:
        if out["type"] == "error":
            out["traceback"] = [normalise_frame(frame) for frame in out["traceback"]]
    assert mine == theirs
    table = runs_in(kernel.workdir)
    assert list(table["status"]) == ["failed" if plain_reply["status"] == "error" else "finished"]


def test_capture_failure_is_one_line_and_the_result_stands(kernel: Kernel) -> None:
    reply, outputs = kernel.run("%%track --metric nosuch -n shaky\n41 + 1")
    assert reply["status"] == "ok"
    assert outputs[0]["type"] == "execute_result" and outputs[0]["data"]["text/plain"] == "42"
    summary = outputs[1]["data"]["text/plain"]
    warnings = [line for line in summary.splitlines() if line.startswith("mlops-jupyter:")]
    assert warnings == ["mlops-jupyter: capture metrics: --metric nosuch: no such variable"]
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        run = store.get_run(store.runs().run_id[0])
    assert run.status == "finished"
    assert run.capture_errors == [{"step": "metrics", "error": "--metric nosuch: no such variable"}]


def test_bad_options_run_the_cell_untracked(kernel: Kernel) -> None:
    reply, outputs = kernel.run("%%track --bogus\n7")
    assert reply["status"] == "ok"
    assert [o["data"]["text/plain"] for o in outputs if o["type"] == "execute_result"] == ["7"]
    stderr = "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == "stderr")
    assert stderr == "%%track: unrecognized arguments: --bogus -- this run was not tracked\n"
    assert not (kernel.workdir / ".mlops").exists()


def test_track_before_another_cell_magic(kernel: Kernel) -> None:
    reply, outputs = kernel.run("%%track -n timed\n%%time\nx = sum(range(10))")
    assert reply["status"] == "ok"
    stdout = "".join(o["text"] for o in outputs if o["type"] == "stream")
    assert "Wall time" in stdout
    assert list(runs_in(kernel.workdir)["name"]) == ["timed"]


def test_a_store_that_cannot_be_opened_leaves_the_cell_alone(tmp_path: Path) -> None:
    bad = tmp_path / "notastore"
    bad.mkdir()
    (bad / "store.db").write_bytes(b"this is not sqlite" * 10)
    k = Kernel(tmp_path, env={"MLOPS_JUPYTER_STORE": str(bad)})
    try:
        k.run("%load_ext mlops_jupyter")
        reply, outputs = k.run("%%track\n6 * 7")
        assert reply["status"] == "ok"
        assert [o["data"]["text/plain"] for o in outputs if o["type"] == "execute_result"] == ["42"]
        stderr = "".join(o["text"] for o in outputs if o["type"] == "stream")
        assert stderr.startswith(f"mlops-jupyter: not tracked: {bad / 'store.db'} is not an SQLite")
        assert str(bad / "store.db") in stderr
    finally:
        k.shutdown()
    assert (bad / "store.db").read_bytes() == b"this is not sqlite" * 10  # untouched


SLEEPING_CELL = "import pathlib, time\npathlib.Path('sleeping').touch()\ntime.sleep(120)"


def wait_for_running(workdir: Path, timeout: float = 60) -> str:
    """Poll until the cell's body is sleeping (its marker file) and its `running` row exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (workdir / "sleeping").exists() and (workdir / ".mlops" / "store.db").exists():
            table = runs_in(workdir)
            if len(table) and table["status"].iloc[0] == "running":
                return str(table["run_id"].iloc[0])
        time.sleep(0.05)  # polling another process's progress, not waiting for a result
    raise AssertionError("the tracked cell never started")


def test_ctrl_c_marks_the_run_interrupted(kernel: Kernel) -> None:
    msg_id = kernel.send("%%track -n sleepy\n" + SLEEPING_CELL)
    run_id = wait_for_running(kernel.workdir)
    kernel.km.interrupt_kernel()
    reply, outputs = kernel.collect(msg_id)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        run = store.get_run(run_id)
    assert run.status == "interrupted"
    assert run.error is not None and run.error.splitlines()[-1] == "KeyboardInterrupt"


def test_killed_kernel_leaves_an_interrupted_run(kernel: Kernel) -> None:
    kernel.send("%%track -n doomed\n" + SLEEPING_CELL)
    run_id = wait_for_running(kernel.workdir)
    pid = kernel.km.provisioner.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)  # no chance to finish the run
    deadline = time.monotonic() + 30
    while kernel.km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table
    assert not kernel.km.is_alive()
    with Store.open(kernel.workdir / ".mlops") as store:  # opening marks dead runs
        run = store.get_run(run_id)
    assert run.status == "interrupted"
    assert run.error == "the process running it exited"


def test_load_ext_imports_nothing_heavy(tmp_path: Path) -> None:
    k = Kernel(tmp_path)
    try:
        k.run("import sys\nbefore = set(sys.modules)")
        reply, _ = k.run("%load_ext mlops_jupyter")
        assert reply["status"] == "ok"
        _, outputs = k.run(
            "heavy = {'shap', 'sklearn', 'matplotlib', 'pandas', 'sqlite_utils', 'scipy'}\n"
            "sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy)"
        )
        assert outputs[0]["data"]["text/plain"] == "[]"
    finally:
        k.shutdown()


def test_a_file_read_in_the_cell_is_the_data_source(kernel: Kernel) -> None:
    import pandas as pd

    from mlops_jupyter import hash_data

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]})
    frame.to_csv(kernel.workdir / "data.csv", index=False)
    reply, _ = kernel.run(
        "%%track -n from-file --no-shap\n"
        "import pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "df = pd.read_csv('data.csv')\n"
        "clf = LogisticRegression().fit(df[['x']], df['label'])\n"
        "clf.score(df[['x']], df['label'])"
    )
    assert reply["status"] == "ok"
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        run = store.get_run(store.runs().run_id[0])
    file_hash = hash_data(kernel.workdir / "data.csv")
    source = [d for d in run.datasets if d.role == "source"]
    assert [(d.variable, d.hash, d.kind, d.source_path) for d in source] == [
        ("df", file_hash, "file", "data.csv")
    ]
    train = {d.variable: d.hash for d in run.datasets if d.role == "train"}
    assert train == {
        "df[['x']]": hash_data(pd.read_csv(kernel.workdir / "data.csv")[["x"]]),
        "df['label']": hash_data(pd.read_csv(kernel.workdir / "data.csv")["label"]),
    }


def test_refitting_right_after_a_tracked_cell_cannot_disturb_its_explanation(
    kernel: Kernel,
) -> None:
    reply, _ = kernel.run(
        "%%track -n first\n"
        "import numpy as np, pandas as pd\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "rng = np.random.default_rng(0)\n"
        "X = pd.DataFrame(rng.random((300, 6)), columns=list('abcdef'))\n"
        "y = (X['a'] > 0.5).astype(int)\n"
        "model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)\n"
        "acc = model.score(X, y)"
    )
    assert reply["status"] == "ok"
    # the very next cell changes the model and the data in place while SHAP may be running
    reply, _ = kernel.run(
        "model.fit(X[['a', 'b']], y)\nX['a'] = -1.0\nX.drop(columns='f', inplace=True)"
    )
    assert reply["status"] == "ok"
    reply, _ = kernel.run("import mlops_jupyter as mj\nassert mj.wait(timeout=120)")
    assert reply["status"] == "ok"
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        run = store.get_run(store.runs().run_id[0])
    assert run.explanation is not None and run.explanation.status == "ok"
    assert run.explanation.feature_names == list("abcdef")
    assert run.explanation.n_rows == 200


def test_a_warning_in_the_shap_worker_never_reaches_a_later_cell(kernel: Kernel) -> None:
    """The SHAP worker runs while the next cell does; what it warns is kept on the run."""
    reply, _ = kernel.run(
        "%%track -n noisy\n"
        "import threading, warnings\n"
        "import numpy as np\n"
        "from sklearn.neighbors import KNeighborsClassifier\n"
        "gate = threading.Event()\n"
        "class Noisy(KNeighborsClassifier):\n"
        "    def predict_proba(self, X):\n"
        "        gate.wait(60)  # SHAP calls this in its worker, once the next cell runs\n"
        "        warnings.warn('said in the SHAP worker')\n"
        "        return super().predict_proba(X)\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.random((60, 3))\n"
        "y = (X[:, 0] > 0.5).astype(int)\n"
        "model = Noisy(n_neighbors=3).fit(X, y)\n"
    )
    assert reply["status"] == "ok"
    reply, outputs = kernel.run("gate.set()\nimport mlops_jupyter\nmlops_jupyter.wait(60)")
    assert reply["status"] == "ok"
    assert [(o["type"], o.get("data", {}).get("text/plain")) for o in outputs] == [
        ("execute_result", "True")
    ]
    _, outputs = kernel.run('warnings.warn("the user\'s own")')  # still shown, as ever
    assert [o["name"] for o in outputs if o["type"] == "stream"] == ["stderr"]
    assert "UserWarning: the user's own" in outputs[0]["text"]
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        [run_id] = store.runs()["run_id"]
        explanation = store.get_run(run_id).explanation
    assert explanation is not None and explanation.status == "ok"
    assert explanation.reason == (
        "explained on training rows: the cell evaluated the model on no data; "
        "warnings while explaining: UserWarning: said in the SHAP worker"
    )


def test_shap_runs_in_a_process_of_its_own_at_lower_priority(kernel: Kernel) -> None:
    """The explanation is computed beside the kernel, not in it: shap is never imported by
    the kernel, the worker runs at nice 10 and is reused; a model whose class exists only in
    the notebook is still explained (by the kernel itself)."""
    reply, _ = kernel.run(
        "%%track -n forest\n"
        "import numpy as np\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.random((200, 5))\n"
        "y = (X[:, 0] > 0.5).astype(int)\n"
        "model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)\n"
    )
    assert reply["status"] == "ok"
    _, outputs = kernel.run(
        "import os, sys, mlops_jupyter as mj\n"
        "from mlops_jupyter import magics\n"
        "assert mj.wait(120)\n"
        "worker = magics._extension.tracker._explainer_process.pid\n"
        "(worker != os.getpid(), os.getpriority(os.PRIO_PROCESS, worker) - os.nice(0), "
        "'shap' in sys.modules)"
    )
    assert outputs[-1]["data"]["text/plain"] == "(True, 10, False)"
    reply, _ = kernel.run(
        "%%track -n mine\n"
        "class Mine(RandomForestClassifier):\n"
        "    pass\n"
        "model = Mine(n_estimators=10, random_state=0).fit(X, y)\n"
    )
    assert reply["status"] == "ok"
    _, outputs = kernel.run(
        "assert mj.wait(120)\n(magics._extension.tracker._explainer_process.pid == worker)"
    )
    assert outputs[-1]["data"]["text/plain"] == "True"
    with Store.open(kernel.workdir / ".mlops", create=False) as store:
        runs = {r.name: store.get_run(r.run_id) for r in store.runs().itertuples()}
    for name in ("forest", "mine"):
        explanation = runs[name].explanation
        assert explanation is not None and explanation.status == "ok", name
        assert explanation.n_rows == 200
    assert runs["forest"].explanation.explainer == "TreeExplainer"  # type: ignore[union-attr]
