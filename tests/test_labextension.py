"""The install pipeline: prebuilt labextension and auto-enabled server extension."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from server_helpers import isolated_env

import mlops_jupyter

PACKAGE = Path(mlops_jupyter.__file__).parent
SOURCE = PACKAGE.parent / "labextension"


def jupyter(*args: str, home: Path) -> str:
    """Run ``jupyter <args>`` seeing only this environment's installed extensions."""
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=isolated_env(home),
    )
    assert result.returncode == 0, result.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_labextension_is_built_with_the_package_version() -> None:
    built = PACKAGE / "labextension" / "package.json"
    if not built.is_file():
        pytest.fail(
            f"the labextension is not built ({built} is missing): run `pip install -e .` "
            "from the repository root (it runs `jlpm install` and `jlpm build:prod` in "
            "labextension/)"
        )
    meta = json.loads(built.read_text())
    assert meta["name"] == "mlops-jupyter"
    assert meta["version"] == mlops_jupyter.__version__
    assert json.loads((SOURCE / "package.json").read_text())["version"] == mlops_jupyter.__version__
    assert (PACKAGE / "labextension" / "static" / "style.js").is_file()


def test_labextension_listed_enabled_and_ok(tmp_path: Path) -> None:
    out = jupyter("labextension", "list", home=tmp_path)
    assert re.search(rf"mlops-jupyter v{re.escape(mlops_jupyter.__version__)} enabled OK", out), out


def test_server_extension_listed_enabled_and_ok(tmp_path: Path) -> None:
    out = jupyter("server", "extension", "list", home=tmp_path)
    assert re.search(r"mlops_jupyter enabled", out), out
    assert re.search(rf"mlops_jupyter {re.escape(mlops_jupyter.__version__)} OK", out), out


def test_server_extension_points() -> None:
    from mlops_jupyter import server

    assert mlops_jupyter._jupyter_server_extension_points() == [{"module": "mlops_jupyter.server"}]
    assert server._jupyter_server_extension_points() == [{"module": "mlops_jupyter.server"}]
    assert mlops_jupyter._jupyter_labextension_paths() == [
        {"src": "labextension", "dest": "mlops-jupyter"}
    ]
