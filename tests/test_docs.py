"""Docs are part of done: every command, option, setting and route is in README.md."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from mlops_jupyter.cli import build_parser
from mlops_jupyter.config import MLOpsJupyter

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI has no subcommands")


def _readme_row(command: str) -> str:
    rows = [line for line in README.splitlines() if line.startswith(f"| `mlops-jupyter {command}")]
    assert rows, f"README's command table has no row for `mlops-jupyter {command}`"
    return rows[0]


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_cli_command_and_option_is_documented(command: str) -> None:
    row = _readme_row(command)
    for action in _subcommands()[command]._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or longs[0] in ("--help", "--store"):
            continue
        assert any(o in row for o in action.option_strings), f"{longs[0]} of {command}"
    assert "Every command takes `--store PATH`" in README


@pytest.mark.parametrize("name", sorted(MLOpsJupyter.class_traits(config=True)))
def test_every_setting_is_documented(name: str) -> None:
    trait = MLOpsJupyter.class_traits(config=True)[name]
    env = trait.metadata["env"]
    assert re.search(rf"^\| `{name}` \| `{env}` \|", README, re.M), f"{name} / {env}"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    block = re.search(r"<!-- test-command -->\n```bash\n(.+?)\n```\n<!-- /test-command -->", README)
    assert block, "README.md must hold the test command between test-command markers"
    extracted = subprocess.run(
        ["bash", "-c", "awk '/<!-- test-command -->/{f=1;next} /<!-- \\/test-command -->/{f=0} f'"
         " README.md | grep -v '^```'"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert extracted == block.group(1)
    assert "README.md" in (REPO / ".ci" / "run").read_text()


def test_exactly_two_setup_commands() -> None:
    assert README.count("<!-- try-command -->") == 1
    assert README.count("<!-- test-command -->") == 1
    assert "jupyter lab --allow-root --LabApp.default_url=/lab/tree/magics" in README


def test_changelog_mentions_this_version() -> None:
    assert (REPO / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_readme_images_exist() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images, "the README tour shows screenshots"
    for image in images:
        assert (REPO / image).is_file(), image


def test_readme_hash_example_is_true() -> None:
    from sklearn.datasets import load_breast_cancer

    import mlops_jupyter as mj

    shown = re.search(r">>> mj.hash_data\(X\)\n'(mj1-blake3:[0-9a-f]{64})'", README)
    assert shown is not None
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    assert mj.hash_data(X) == shown.group(1)
