"""Shared fixtures: every test gets an isolated environment and real stores on disk."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
REPO = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:  # helper modules (server_helpers, store_worker)
    sys.path.insert(0, str(TESTS_DIR))

IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's store, user or settings."""
    for name in list(os.environ):
        if name.startswith("MLOPS_JUPYTER_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / ".mlops"


@pytest.fixture
def store(store_dir: Path) -> Iterator[object]:
    """A fresh store on disk, always closed afterwards."""
    from mlops_jupyter.store import Store

    opened = Store.open(store_dir)
    try:
        yield opened
    finally:
        opened.close()


def skip_or_fail(reason: str) -> None:
    """Skip locally when a system dependency is missing; fail in CI (CI=true)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Attach the log of any real Jupyter server a failed test used (see server_helpers)."""
    report = yield
    if report.failed:
        from server_helpers import RunningServer

        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, RunningServer):
                report.sections.append((f"jupyter server log ({value.url})", value.log()))
    return report


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    """One PostgreSQL server for the whole session (a fail in CI when it cannot start)."""
    from pg_cluster import remove_cluster, start_cluster

    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed (pip install -e '.[test]')")
    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError) as exc:
        skip_or_fail(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield cluster
    finally:
        remove_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: object) -> str:
    """A fresh, empty database on the test cluster."""
    return pg_cluster.url(pg_cluster.create_database())  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """The same store contract on each engine: an SQLite file and a PostgreSQL database."""
    from mlops_jupyter.store import Store

    if request.param == "sqlite":
        opened = Store.open(tmp_path / ".mlops")
    else:
        url = request.getfixturevalue("pg_url")
        opened = Store.open(url, start=tmp_path)
    try:
        yield opened
    finally:
        opened.close()
