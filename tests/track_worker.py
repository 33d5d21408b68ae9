"""A tracking process for the kill tests: ``python track_worker.py STORE N [KILL_AT]``.

Records N runs through ``mj.start_run`` (a fitted model, its data and a metric each; N = 0
means until killed), printing each run id once ``finish`` has returned. With KILL_AT set to
``blob`` or ``commit`` the process SIGKILLs itself during its first run: half-way through
writing the model blob, or inside the final transaction just before it commits.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import BinaryIO

import numpy as np
from sklearn.linear_model import LogisticRegression

import mlops_jupyter as mj
from mlops_jupyter.store import store as store_module
from mlops_jupyter.store.blobs import BlobStore


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_during(owner: type, name: str, after: bool) -> None:
    original = getattr(owner, name)

    def dying(self: object, *args: object, **kwargs: object) -> object:
        if not after:
            _die()
        result = original(self, *args, **kwargs)
        _die()
        return result

    setattr(owner, name, dying)


def main() -> None:
    store_path, n = sys.argv[1], int(sys.argv[2])
    kill_at = sys.argv[3] if len(sys.argv) > 3 else ""
    os.environ["MLOPS_JUPYTER_STORE"] = store_path
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    if kill_at == "blob":  # half the model's bytes are in the temporary file
        original = BlobStore._write_atomic

        def half_written(self: BlobStore, target: object, write: object) -> None:
            def write_half(out: BinaryIO) -> None:
                out.write(b"half a model")
                out.flush()
                _die()

            original(self, target, write_half)  # type: ignore[arg-type]

        BlobStore._write_atomic = half_written  # type: ignore[method-assign]
    elif kill_at == "commit":
        _kill_during(store_module.Store, "_finish", after=True)
    i = 0
    while n == 0 or i < n:
        with mj.start_run("killed", name=f"run-{i}", shap=False) as run:
            model = LogisticRegression(C=1.0 + i).fit(X, y)
            run.log_data(X, role="train", name="X")
            run.log_metric("accuracy", model.score(X, y))
            run.log_model(model)
            run_id = run.run_id
        print(run_id, flush=True)
        i += 1


if __name__ == "__main__":
    main()
