"""Settings: traitlets config with MLOPS_JUPYTER_* environment overrides."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from traitlets.config import Config

from mlops_jupyter import Store
from mlops_jupyter.config import current_user, env_settings, settings


def test_defaults() -> None:
    s = settings()
    assert (s.store_path, s.user, s.busy_timeout) == (None, None, 30.0)


def test_config_then_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()
    config.MLOpsJupyter.store_path = "/from/config"
    config.MLOpsJupyter.busy_timeout = 5.0
    assert settings(config).store_path == "/from/config"
    monkeypatch.setenv("MLOPS_JUPYTER_STORE", "/from/env")
    monkeypatch.setenv("MLOPS_JUPYTER_BUSY_TIMEOUT", "2.5")
    s = settings(config)
    assert (s.store_path, s.busy_timeout) == ("/from/env", 2.5)


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_JUPYTER_BUSY_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="invalid value 'soon' for MLOPS_JUPYTER_BUSY_TIMEOUT"):
        settings()


def test_user_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert current_user() == getpass.getuser()
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-user")
    assert current_user() == "hub-user"
    monkeypatch.setenv("MLOPS_JUPYTER_USER", "configured")
    assert current_user() == "configured"


def test_env_names() -> None:
    assert env_settings() == {
        "store_path": "MLOPS_JUPYTER_STORE",
        "blob_dir": "MLOPS_JUPYTER_BLOB_DIR",
        "user": "MLOPS_JUPYTER_USER",
        "experiment": "MLOPS_JUPYTER_EXPERIMENT",
        "notebook": "MLOPS_JUPYTER_NOTEBOOK",
        "signing_key": "MLOPS_JUPYTER_KEY",
        "allowed_signers": "MLOPS_JUPYTER_ALLOWED_SIGNERS",
        "busy_timeout": "MLOPS_JUPYTER_BUSY_TIMEOUT",
    }


def test_store_uses_env_store_and_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_JUPYTER_STORE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MLOPS_JUPYTER_BUSY_TIMEOUT", "1.5")
    with Store.open() as store:
        assert store.directory == (tmp_path / "elsewhere").resolve()
        assert store.busy_timeout == 1.5
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1500
