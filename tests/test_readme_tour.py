"""Every Python snippet in README.md runs as written, in order, in one fresh kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_magics import ANSI, Kernel

from mlops_jupyter.store import Store

pytestmark = pytest.mark.slow
README = (Path(__file__).parents[1] / "README.md").read_text()
FENCE = re.compile(r"(<!-- not-run: [^>]+ -->\n)?```python\n(.*?)```", re.S)


def snippets() -> list[str]:
    """The README's Python blocks in order, as code (``>>>`` prompts stripped, outputs
    dropped); a block marked ``<!-- not-run: why -->`` is a config file, not kernel code."""
    blocks = []
    for marker, body in FENCE.findall(README):
        if marker:
            continue
        if body.lstrip().startswith(">>>"):
            body = "\n".join(
                line[4:] for line in body.splitlines() if line.startswith((">>> ", "... "))
            )
        blocks.append(body)
    return blocks


def test_only_config_files_are_exempt() -> None:
    exempt = re.findall(r"<!-- not-run: ([^>]+) -->", README)
    assert exempt == ["a line of ipython_config.py"]
    assert len(snippets()) == 8


def test_every_readme_snippet_runs_in_order_in_a_fresh_kernel(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "project"
    workdir.mkdir()
    kernel = Kernel(workdir, env={"HOME": str(home), "SSH_AUTH_SOCK": ""})
    try:
        for number, code in enumerate(snippets(), 1):
            reply, outputs = kernel.run(code)
            errors = [ANSI.sub("", "\n".join(o.get("traceback", []))) for o in outputs
                      if o["type"] == "error"]  # fmt: skip
            assert reply["status"] == "ok", f"snippet {number} failed:\n{code}\n" + "\n".join(
                errors
            )
            stderr = "".join(o["text"] for o in outputs if o.get("name") == "stderr")
            assert "mlops-jupyter" not in stderr, f"snippet {number}: {stderr}"
        reply, outputs = kernel.run("v = mj.current('churn'); print(v.ref, v.stage, model)")
        assert [o["text"] for o in outputs if o["type"] == "stream"] == [
            "churn:1 production RandomForestClassifier(max_depth=4, n_estimators=50, "
            "random_state=0)\n"
        ]
    finally:
        kernel.shutdown()
    with Store.open(workdir / ".mlops") as store:
        runs = store.runs(order_by="started_at")
        assert list(zip(runs.experiment, runs.name, strict=True)) == [
            ("breast_cancer", "forest"),
            ("churn", "baseline"),
        ]
        assert runs["metrics.acc"][0] == pytest.approx(0.958, abs=5e-4)
    assert (workdir / "card.html").is_file()
