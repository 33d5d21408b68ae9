"""The ``mlops-jupyter`` command, run as a real subprocess against a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_jupyter import Store


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "mlops_jupyter", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    store_dir = tmp_path / "proj" / ".mlops"
    with Store.open(store_dir) as store:
        ids = {
            "a": store.record_run(
                "iris", name="a", started_at=1_700_000_000.0, ended_at=1_700_000_002.0,
                params={"C": 1.0, "kernel": "rbf"}, metrics={"accuracy": 0.9},
            ),
            "b": store.record_run(
                "iris", name="b", started_at=1_700_000_100.0, ended_at=1_700_000_101.5,
                params={"C": 10.0}, metrics={"accuracy": 0.95, "f1": float("nan")},
            ),
            "c": store.record_run("wine", name="c", started_at=1_700_000_200.0, status="failed",
                                  error="Traceback\nValueError: bad"),
        }  # fmt: skip
    return store_dir, ids


def test_runs_json(filled: tuple[Path, dict[str, str]]) -> None:
    store_dir, ids = filled
    out = cli("runs", "-e", "iris", "--json", "--store", str(store_dir))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        {
            "run_id": ids["b"], "experiment": "iris", "name": "b", "status": "finished",
            "started_at": "2023-11-14T22:15:00+00:00", "duration_s": 1.5,
            "params": {"C": 10.0}, "metrics": {"accuracy": 0.95, "f1": "NaN"},
        },
        {
            "run_id": ids["a"], "experiment": "iris", "name": "a", "status": "finished",
            "started_at": "2023-11-14T22:13:20+00:00", "duration_s": 2.0,
            "params": {"C": 1.0, "kernel": "rbf"}, "metrics": {"accuracy": 0.9},
        },
    ]  # fmt: skip


def test_runs_table_discovers_store_from_cwd(filled: tuple[Path, dict[str, str]]) -> None:
    store_dir, ids = filled
    sub = store_dir.parent / "notebooks"
    sub.mkdir()
    out = cli("runs", "--sort=-metrics.accuracy", cwd=sub)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "run_id", "experiment", "name", "status", "started_at", "duration_s",
        "metrics.accuracy", "metrics.f1", "params.C", "params.kernel",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == [ids["b"][:8], ids["a"][:8], ids["c"][:8]]
    assert lines[3].split()[2:4] == ["c", "failed"]


def test_store_option_before_command(filled: tuple[Path, dict[str, str]]) -> None:
    store_dir, _ = filled
    out = cli("--store", str(store_dir), "runs", "-n", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["name"] for r in json.loads(out.stdout)] == ["c"]


def test_show_text_and_json(filled: tuple[Path, dict[str, str]]) -> None:
    store_dir, ids = filled
    out = cli("show", ids["a"][:6], "--store", str(store_dir))
    assert out.returncode == 0, out.stderr
    assert f"run        {ids['a']}" in out.stdout
    assert "  C = 1.0" in out.stdout and '  kernel = "rbf"' in out.stdout
    assert "  accuracy = 0.9" in out.stdout
    failed = cli("show", ids["c"], "--store", str(store_dir))
    assert "status     failed" in failed.stdout and "  ValueError: bad" in failed.stdout
    data = json.loads(cli("show", ids["b"], "--json", "--store", str(store_dir)).stdout)
    assert data["run_id"] == ids["b"] and data["params"] == {"C": 10.0}
    assert data["metrics"] == {"accuracy": 0.95, "f1": "NaN"}
    assert data["started_at"] == "2023-11-14T22:15:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "abcdef12"], "no run with id 'abcdef12'"),
        (["runs", "--sort", "nonsense"], "cannot order runs by 'nonsense'"),
        (
            ["runs", "--sort=-metrics.nope"],
            "cannot order runs by '-metrics.nope': no run has a metric 'nope'. Known metrics: "
            "metrics.accuracy, metrics.f1;",
        ),
        (
            ["runs", "--sort", "params.gamma"],
            "no run has a parameter 'gamma'. Known parameters: params.C, params.kernel;",
        ),
        (["runs", "--columns", "accuracy,nope"], "no column 'nope' in this listing; columns: "),
        (
            ["card", "abcdef12", "-o", "out.pdf"],
            "cannot write a card with the file name 'out.pdf': name the file .html, .json or "
            ".md, or choose with --format html|json|md (for a PDF, write the HTML and print it)",
        ),
    ],
)
def test_errors_go_to_stderr_with_exit_1(
    filled: tuple[Path, dict[str, str]], args: list[str], message: str
) -> None:
    store_dir, _ = filled
    out = cli(*args, "--store", str(store_dir))
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith("mlops-jupyter: error: ") and message in out.stderr


def test_missing_store_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    out = cli("runs", cwd=tmp_path)
    assert out.returncode == 1
    assert "no mlops-jupyter store at" in out.stderr
    assert not (tmp_path / ".mlops").exists()


def test_corrupt_store_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".mlops").mkdir()
    (tmp_path / ".mlops" / "store.db").write_text("not a database")
    out = cli("runs", cwd=tmp_path)
    assert out.returncode == 1
    assert "is not an SQLite database" in out.stderr


def test_usage_error_exit_2_and_version() -> None:
    assert cli("frobnicate").returncode == 2
    version = cli("--version")
    assert version.stdout.strip() == f"mlops-jupyter {__import__('mlops_jupyter').__version__}"


def test_empty_store_says_so(tmp_path: Path) -> None:
    Store.open(tmp_path / ".mlops").close()
    out = cli("runs", "-e", "nothing", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "no runs in experiment 'nothing'"


def test_sort_value_may_follow_the_option_after_a_space(
    filled: tuple[Path, dict[str, str]],
) -> None:
    store_dir, ids = filled
    spaced = cli("runs", "--sort", "-metrics.accuracy", "--store", str(store_dir))
    joined = cli("runs", "--sort=-metrics.accuracy", "--store", str(store_dir))
    assert spaced.returncode == 0, spaced.stderr
    assert spaced.stdout == joined.stdout
    assert [line.split()[0] for line in spaced.stdout.splitlines()[1:]] == [
        ids["b"][:8], ids["a"][:8], ids["c"][:8]
    ]  # fmt: skip


def test_the_runs_magic_takes_the_same_sort_spellings(
    filled: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_jupyter.magics import runs
    from mlops_jupyter.tracker import Tracker

    store_dir, ids = filled
    monkeypatch.setattr("mlops_jupyter.magics._extension", None)
    monkeypatch.setattr("mlops_jupyter.magics.Tracker", lambda: Tracker(store_dir))
    assert list(runs("-e iris --sort -metrics.accuracy").run_id) == [ids["b"], ids["a"]]
    assert list(runs("-e iris --sort=metrics.accuracy").run_id) == [ids["a"], ids["b"]]
    with pytest.raises(ValueError, match="no run has a metric 'acc'. Known metrics: metrics.acc"):
        runs("--sort -metrics.acc")


def test_a_wide_listing_fits_the_terminal(tmp_path: Path) -> None:
    with Store.open(tmp_path / ".mlops") as store:
        for i in range(3):
            store.record_run(
                "wide", name=f"r{i}", metrics={"accuracy": 0.5 + i / 10, "loss": 1.0 - i / 10},
                params={f"hyperparameter_{k:02d}": k * i for k in range(40)},
            )  # fmt: skip
    env = {**os.environ, "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-m", "mlops_jupyter", "--store", str(tmp_path / ".mlops"), "runs",
         "-e", "wide"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines[:-1]) <= 100
    header = lines[0].split()
    assert header[:7] == [
        "run_id", "name", "status", "started_at", "duration_s", "metrics.accuracy", "metrics.loss"
    ]  # fmt: skip
    shown = len(header) - 7
    assert lines[-1] == (
        f"({40 - shown} more columns not shown: choose with --columns KEY,KEY..., or --json "
        "for everything)"
    )
    chosen = cli("runs", "-e", "wide", "--columns", "loss,hyperparameter_39", "--store",
                 str(tmp_path / ".mlops"))  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.splitlines()[0].split() == [
        "run_id", "name", "status", "metrics.loss", "params.hyperparameter_39"
    ]  # fmt: skip
    assert chosen.stdout.splitlines()[1].split()[3:] == ["0.8", "78"]
