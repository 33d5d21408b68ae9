"""Settings: traitlets configuration (``c.MLOpsJupyter.*``) with ``MLOPS_JUPYTER_*`` overrides.

Set them in ``ipython_config.py`` / ``jupyter_server_config.py`` (``c.MLOpsJupyter.store_path =
"..."``) or with environment variables, which win over config files. Every setting is listed
in README.md (a test checks that).
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from traitlets import Float, Unicode
from traitlets.config import Config, Configurable


class MLOpsJupyter(Configurable):
    """mlops-jupyter settings."""

    store_path = Unicode(
        None,
        allow_none=True,
        help="Store directory (.mlops) or its store.db, or a team store's postgresql:// URL. "
        "Default: the store named by the project's pyproject.toml, else discovered from the "
        "working directory (nearest .mlops/ upward, else the git root, else the working "
        "directory).",
    ).tag(config=True, env="MLOPS_JUPYTER_STORE")

    blob_dir = Unicode(
        None,
        allow_none=True,
        help="For a team store on PostgreSQL: a shared directory (e.g. a network share) to keep "
        "its blobs in as content-addressed files, instead of rows of the database.",
    ).tag(config=True, env="MLOPS_JUPYTER_BLOB_DIR")

    user = Unicode(
        None,
        allow_none=True,
        help="Label recorded as the author of runs and card edits. It is never an identity: "
        "registry actions count the principal of the signing key. Default: JUPYTERHUB_USER, "
        "else the operating-system user.",
    ).tag(config=True, env="MLOPS_JUPYTER_USER")

    experiment = Unicode(
        None,
        allow_none=True,
        help="Experiment of tracked cells that do not name one (-e). Default: the notebook's "
        "file name, else 'default'.",
    ).tag(config=True, env="MLOPS_JUPYTER_EXPERIMENT")

    notebook = Unicode(
        None,
        allow_none=True,
        help="The notebook file runs are recorded from, for runners that do not tell the kernel "
        "(found by itself under Jupyter, VS Code, jupyter nbconvert --execute and papermill).",
    ).tag(config=True, env="MLOPS_JUPYTER_NOTEBOOK")

    signing_key = Unicode(
        None,
        allow_none=True,
        help="Private Ed25519 SSH key that signs your registry actions. Default: "
        "~/.ssh/id_ed25519, else the first Ed25519 key in ssh-agent.",
    ).tag(config=True, env="MLOPS_JUPYTER_KEY")

    allowed_signers = Unicode(
        None,
        allow_none=True,
        help="Allowed-signers file (git's format) naming who may sign registry actions. "
        "Default: allowed_signers beside the policy (.mlops/, or the pyproject.toml's folder).",
    ).tag(config=True, env="MLOPS_JUPYTER_ALLOWED_SIGNERS")

    busy_timeout = Float(
        30.0,
        help="Seconds a write waits for another process's transaction before giving up.",
    ).tag(config=True, env="MLOPS_JUPYTER_BUSY_TIMEOUT")


def settings(config: Config | None = None) -> MLOpsJupyter:
    """The effective settings: ``config`` (if any), then environment variables on top."""
    obj = MLOpsJupyter(config=config) if config is not None else MLOpsJupyter()
    for name, trait in obj.traits(config=True).items():
        env = trait.metadata.get("env")
        raw = os.environ.get(env) if env else None
        if raw is None or raw == "":
            continue
        try:
            value: Any = trait.from_string(raw)
            setattr(obj, name, value)
        except Exception as exc:  # a clear message beats a traitlets traceback
            raise ValueError(f"invalid value {raw!r} for {env}: {exc}") from exc
    return obj


def current_user(obj: MLOpsJupyter | None = None) -> str:
    """Who is acting: the ``user`` setting, then ``JUPYTERHUB_USER``, then the OS user."""
    configured = (obj or settings()).user
    if configured:
        return configured
    hub = os.environ.get("JUPYTERHUB_USER")
    if hub:
        return hub
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (containers)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def env_settings() -> dict[str, str]:
    """Map of each setting's name to its environment variable (for docs and tests)."""
    return {
        name: str(trait.metadata["env"])
        for name, trait in MLOpsJupyter.class_traits(config=True).items()
    }
