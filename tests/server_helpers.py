"""Start a real Jupyter server (jupyter_server or JupyterLab) in a subprocess for tests."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

STARTUP_SECONDS = 90


@dataclass
class RunningServer:
    url: str  # base URL, ends with "/"
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def api(self, endpoint: str) -> str:
        return f"{self.url}{endpoint.lstrip('/')}"

    def get(self, endpoint: str, *, auth: bool = True, **params: str) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"} if auth else {}
        return requests.get(self.api(endpoint), params=params, headers=headers, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for a server that sees only the installed extensions, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MLOPS_JUPYTER_"))}
    for name in ("config", "data", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(home / "ipython"),
    )
    # no "news" prompt in the way of the browser tests (and no network attempts)
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    return env


@contextmanager
def running_server(
    root: Path, home: Path, *, lab: bool = False, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """A real server on a free port with a random token; stopped (and its log kept) afterwards.

    ``env`` adds variables to the server's otherwise isolated environment."""
    port = free_port()
    token = secrets.token_hex(16)
    module = "jupyterlab" if lab else "jupyter_server"
    log_path = home / f"{module}.log"
    cmd = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ServerApp.open_browser=False",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
    ]
    if _has_server_trait("allow_unauthenticated_access"):  # jupyter_server >= 2.13
        cmd.append("--ServerApp.allow_unauthenticated_access=False")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        cmd.append("--allow-root")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**isolated_env(home), **(env or {})},
            cwd=root,
        )
    server = RunningServer(f"http://127.0.0.1:{port}/", token, root, log_path, process)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _has_server_trait(name: str) -> bool:
    from jupyter_server.serverapp import ServerApp

    return ServerApp.class_traits().get(name) is not None


def _wait_until_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter server exited early:\n{server.log()}")
        try:
            if server.get("api/status").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling interval while the server starts, not a wait for a result
    raise RuntimeError(f"jupyter server not ready after {STARTUP_SECONDS}s:\n{server.log()}")
