"""Every notebook in magics/ runs end to end in a real kernel, and says what it should."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

MAGICS = Path(__file__).parents[1] / "magics"
NOTEBOOKS = sorted(MAGICS.glob("*.ipynb"))


def execute(name: str, workdir: Path, store: str | None = None) -> nbformat.NotebookNode:
    """Run magics/<name> in a fresh kernel with ``workdir`` as its working directory.

    The kernel gets ``JPY_SESSION_NAME`` as Jupyter gives it, so runs are named after the
    notebook; ``store`` (a team store's URL) is given to it as ``MLOPS_JUPYTER_STORE``.
    """
    shutil.copy(MAGICS / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JPY_SESSION_NAME", str(workdir / name))
        if store is not None:
            patch.setenv("MLOPS_JUPYTER_STORE", store)
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
        ).execute()
    return nb


def raises(cell: nbformat.NotebookNode) -> bool:
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def text_output(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def test_there_are_reference_notebooks() -> None:
    assert NOTEBOOKS, "magics/ must hold the runnable reference notebooks"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(
    path: Path, tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if engine == "postgresql" else None
    nb = execute(path.name, tmp_path, store=url)
    errors = [
        o
        for c in nb.cells
        if not raises(c)
        for o in c.get("outputs", [])
        if o["output_type"] == "error"
    ]
    assert errors == []
    for cell in nb.cells:
        if raises(cell):  # the cells documented as raising do raise
            assert any(o["output_type"] == "error" for o in cell["outputs"])


def test_store_notebook_content(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    from mlops_jupyter import Store, hash_data

    nb = execute("store.ipynb", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    assert text_output(code[0]) == repr(hash_data(X))  # computed in another process
    assert re.fullmatch(r"'mj1-blake3:[0-9a-f]{64}'", text_output(code[0]))
    assert text_output(code[1]).strip() == "layout-independent, and sensitive to the last row"
    assert text_output(code[2]) == repr(hash_data(tmp_path / "breast_cancer.csv"))
    from mlops_jupyter.store.schema import LATEST_VERSION

    assert text_output(code[3]) == f"('.mlops', {LATEST_VERSION})"
    with Store.open(tmp_path / ".mlops", create=False) as store:
        runs = store.runs(experiment="breast_cancer", order_by="-metrics.accuracy")
        assert list(runs["name"]) == ["depth-8", "depth-4", "depth-2"]
        assert list(runs["params.max_depth"]) == [8, 4, 2]
        assert list(runs["metrics.accuracy"]) == [0.98, 0.94, 0.92]
        top = store.get_run(runs.run_id[0])
    assert text_output(code[5]) == repr((top.name, top.params, top.metrics))


def _batch(command: list[str], workdir: Path, env: dict[str, str] | None = None) -> Any:
    import os
    import subprocess
    import sys

    shutil.copy(MAGICS / "compare.ipynb", workdir / "compare.ipynb")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_JUPYTER_", "JPY_"))}
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        [str(Path(bin_dir) / command[0]), *command[1:]],
        cwd=workdir,
        env={**clean, "PATH": f"{bin_dir}:{clean.get('PATH', '')}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["jupyter", "nbconvert", "--to", "notebook", "--execute", "compare.ipynb"],
        ["papermill", "compare.ipynb", "out.ipynb"],
    ],
    ids=["nbconvert", "papermill"],
)
def test_batch_runners_record_to_the_notebooks_experiment(
    command: list[str], tmp_path: Path
) -> None:
    from mlops_jupyter import Store

    done = _batch(command, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    with Store.open(tmp_path / ".mlops", create=False) as store:
        runs = store.runs()
        assert sorted(runs["experiment"]) == ["compare", "compare"]
        assert {Path(p).name for p in store._read("SELECT notebook_path FROM runs")[0]} == {
            "compare.ipynb"
        }


@pytest.mark.slow
def test_an_experiment_set_by_the_environment_and_a_clear_error(tmp_path: Path) -> None:
    from mlops_jupyter import Store

    command = ["papermill", "compare.ipynb", "out.ipynb"]
    done = _batch(command, tmp_path, {"MLOPS_JUPYTER_EXPERIMENT": "nightly"})
    assert done.returncode != 0  # the notebook compares experiment "compare", now empty
    assert "%compare: experiment 'compare' has 0 runs, compare needs 2 to 10" in done.stderr
    assert "experiments in " in done.stderr and ": nightly;" in done.stderr
    with Store.open(tmp_path / ".mlops", create=False) as store:
        assert sorted(store.runs()["experiment"]) == ["nightly", "nightly"]
