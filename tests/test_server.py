"""The server extension against a real jupyter_server: routes, auth, root confinement."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_helpers import RunningServer, running_server

import mlops_jupyter
from mlops_jupyter.store import Store

REPO = Path(__file__).parents[1]

pytestmark = pytest.mark.slow

STORE = "mlops-jupyter/api/store"


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real jupyter_server whose root holds ``sub/deeper`` and a symlink ``escape`` out of it."""
    root = tmp_path_factory.mktemp("root")
    (root / "sub" / "deeper").mkdir(parents=True)
    os.symlink(tmp_path_factory.mktemp("outside"), root / "escape")
    with running_server(root, tmp_path_factory.mktemp("home")) as running:
        yield running
        log = running.log()
    assert "Traceback" not in log, log


def assert_error(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": {"status": status, "message": message}}


def test_extension_is_loaded(jupyter_server: RunningServer) -> None:
    assert "mlops-jupyter 0.1.0: REST API at /mlops-jupyter/api/" in jupyter_server.log()
    response = jupyter_server.get("mlops-jupyter/api/version")
    assert response.status_code == 200
    assert response.json() == {"version": mlops_jupyter.__version__}


def test_store_resolution_follows_the_discovery_rule(jupyter_server: RunningServer) -> None:
    root = jupyter_server.root.resolve()
    expected = {
        "engine": "sqlite",
        "team_store": None,
        "store_dir": str(root / ".mlops"),
        "db_path": str(root / ".mlops" / "store.db"),
        "exists": False,
        "root_dir": str(root),
        "relative_store_dir": ".mlops",
    }
    assert jupyter_server.get(STORE, path="").json() == expected
    # the panel's one request says the same, and nothing else, before the first tracked run
    assert jupyter_server.get("mlops-jupyter/api/panel", path="").json() == {
        "store": expected,
        "experiments": None,
        "experiment": "",
        "columns": None,
        "settings": None,
        "runs": None,
        "runs_error": None,
    }

    Store.open(root / ".mlops").close()
    assert jupyter_server.get(STORE, path="").json() == {**expected, "exists": True}
    # a notebook two levels down records to the root's store
    assert jupyter_server.get(STORE, path="sub/deeper").json() == {**expected, "exists": True}

    # the nearest store wins
    Store.open(root / "sub" / ".mlops").close()
    assert jupyter_server.get(STORE, path="sub/deeper").json() == {
        **expected,
        "store_dir": str(root / "sub" / ".mlops"),
        "db_path": str(root / "sub" / ".mlops" / "store.db"),
        "exists": True,
        "root_dir": str(root),
        "relative_store_dir": "sub/.mlops",
    }


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("../..", 403, "path is outside the server root"),
        ("sub/../../x", 403, "path is outside the server root"),
        ("/etc", 403, "path must be relative to the server root"),
        ("escape", 403, "path is outside the server root"),  # a symlink out of the root
        ("no/such/dir", 404, "no such directory: no/such/dir"),
        ("100% %s", 404, "no such directory: 100% %s"),  # no %-formatting of user input
    ],
)
def test_bad_paths_are_refused(
    jupyter_server: RunningServer, path: str, status: int, message: str
) -> None:
    assert_error(jupyter_server.get(STORE, path=path), status, message)


@pytest.mark.parametrize("endpoint", ["mlops-jupyter/api/version", STORE])
def test_every_route_requires_authentication(jupyter_server: RunningServer, endpoint: str) -> None:
    assert_error(jupyter_server.get(endpoint, auth=False), 403, "Forbidden")
    wrong = requests.get(
        jupyter_server.api(endpoint), headers={"Authorization": "token wrong"}, timeout=30
    )
    assert_error(wrong, 403, "Forbidden")


def test_post_is_not_a_route_and_needs_xsrf(jupyter_server: RunningServer) -> None:
    with_token = requests.post(
        jupyter_server.api(STORE),
        headers={"Authorization": f"token {jupyter_server.token}"},
        timeout=30,
    )
    assert_error(with_token, 405, "Method Not Allowed")
    # a browser-style POST (cookie session, no XSRF token) is refused before any handler runs
    session = requests.Session()
    assert session.get(jupyter_server.api(f"lab?token={jupyter_server.token}"), timeout=30).ok
    no_xsrf = session.post(jupyter_server.api(STORE), timeout=30)
    assert no_xsrf.status_code == 403


def test_explicit_store_outside_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    elsewhere = (tmp_path / "elsewhere" / ".mlops").resolve()
    (home / "config" / "jupyter_server_config.py").write_text(
        f"c.MLOpsJupyter.store_path = {str(elsewhere)!r}\n"
    )
    with running_server(root, home) as running:
        assert_error(
            running.get(STORE, path=""),
            403,
            f"store {elsewhere} is outside the server root {root.resolve()}; "
            "choose a store inside the root directory",
        )
        log = running.log()
    assert "Traceback" not in log, log


def test_explicit_store_inside_root_is_used(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "shared").mkdir(parents=True)
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "jupyter_server_config.py").write_text(
        f"c.MLOpsJupyter.store_path = {str(root / 'shared' / '.mlops')!r}\n"
    )
    with running_server(root, home) as running:
        info = running.get(STORE, path="").json()
    assert info["relative_store_dir"] == "shared/.mlops"
    assert info["exists"] is False


def test_the_readme_try_command_serves_the_demo_notebooks_as_any_user(tmp_path: Path) -> None:
    """The last step of README's try command, as written (we run as root in CI), on the repo."""
    import re
    import secrets
    import shlex
    import subprocess
    import sys

    from server_helpers import free_port, isolated_env

    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- try-command -->\n```bash\n(.*?)\n```", readme, re.S)
    assert block is not None
    lab = shlex.split(block.group(1).split("&&")[-1])
    assert lab[0] == ".venv/bin/jupyter"
    port, token = free_port(), secrets.token_hex(8)
    cmd = [sys.executable, "-m", "jupyter", *lab[1:], "--no-browser", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]  # fmt: skip
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=isolated_env(tmp_path), cwd=REPO
        )
    try:
        shown = f"http://localhost:{port}/lab/tree/magics?token="  # the address README names
        url = shown + token
        deadline = time.monotonic() + 90
        while shown not in log.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)  # polling while the server starts
        assert process.poll() is None, log.read_text()
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "JupyterLab" in page.text
        assert "Running as root is not recommended" not in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
