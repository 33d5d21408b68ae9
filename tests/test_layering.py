"""The architecture rules of DESIGN.md, checked by machine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "mlops_jupyter"
CORE = ["store", "capture", "cards", "registry", "monitoring"]
FORBIDDEN = ("IPython", "ipywidgets", "ipykernel", "jupyter_server", "tornado", "notebook")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", CORE)
def test_core_imports_no_ipython_or_jupyter(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py")) if (PACKAGE / layer).exists() else []
    for path in files:
        bad = _imports(path) & set(FORBIDDEN)
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_core_layers_exist() -> None:
    assert (PACKAGE / "store" / "store.py").is_file()
    assert (PACKAGE / "capture" / "hashing.py").is_file()


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    return set(out.stdout.split())


def test_import_package_is_light() -> None:
    loaded = _modules_after("import mlops_jupyter")
    heavy = {"pandas", "sqlite_utils", "shap", "sklearn", "matplotlib", "IPython", "tornado"}
    assert not (loaded & heavy)


def test_store_and_hashing_load_no_jupyter() -> None:
    loaded = _modules_after(
        "import mlops_jupyter\nmlops_jupyter.Store\nmlops_jupyter.hash_data\n"
        "import mlops_jupyter.store, mlops_jupyter.capture.hashing"
    )
    assert not (loaded & {"IPython", "ipywidgets", "jupyter_server", "tornado", "shap"})
