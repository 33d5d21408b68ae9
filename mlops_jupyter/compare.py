"""Compare 2 to 10 runs: parameters (differences first), metrics, data, SHAP top features.

Plain Python over the store; the REST API, the side panel and ``%compare`` all show this.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .capture.metric_values import lower_is_better
from .store.records import json_number

if TYPE_CHECKING:
    from .store import Run, Store

MIN_RUNS, MAX_RUNS = 2, 10


def _data(runs: list[Run], role: str) -> dict[str, Any]:
    hashes = [sorted(d.hash for d in run.datasets if d.role == role) for run in runs]
    return {"hashes": hashes, "same": all(h == hashes[0] for h in hashes) and bool(hashes[0])}


def _top(run: Run, k: int = 5) -> list[list[Any]]:
    e = run.explanation
    if e is None or e.status != "ok" or not e.feature_names or e.mean_abs is None:
        return []
    if isinstance(e.mean_abs, dict):
        totals = [
            sum(float(v[i]) for v in e.mean_abs.values()) for i in range(len(e.feature_names))
        ]
    else:
        totals = [float(v) for v in e.mean_abs]
    order = sorted(range(len(totals)), key=lambda i: -totals[i])[:k]
    return [[e.feature_names[i], totals[i]] for i in order]


def compare_runs(store: Store, ids: list[str]) -> dict[str, Any]:
    """The comparison of ``ids`` (full ids or unique prefixes), JSON-ready."""
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise ValueError(f"compare takes {MIN_RUNS} to {MAX_RUNS} runs, got {len(ids)}")
    runs = [store.get_run(run_id) for run_id in ids]
    if len({r.run_id for r in runs}) != len(runs):
        raise ValueError("the same run is listed twice")
    param_keys = sorted({k for r in runs for k in r.params})
    params = []
    for key in param_keys:
        values = [r.params.get(key) for r in runs]
        present = [key in r.params for r in runs]
        differs = not all(present) or any(v != values[0] for v in values)
        params.append({"key": key, "values": values, "differs": differs})
    params.sort(key=lambda p: (not p["differs"], p["key"]))
    metrics = []
    for key in sorted({k for r in runs for k in r.metrics}):
        raw = [r.metrics.get(key) for r in runs]
        finite = [(i, v) for i, v in enumerate(raw) if v is not None and math.isfinite(v)]
        best = None
        if finite:
            pick = min if lower_is_better(key) else max
            best = pick(finite, key=lambda item: item[1])[0]
        metrics.append(
            {
                "key": key,
                "values": [json_number(v) if v is not None else None for v in raw],
                "best": best,
                "lower_is_better": lower_is_better(key),
            }
        )
    return {
        "runs": [
            {
                "run_id": r.run_id,
                "name": r.name,
                "experiment": r.experiment,
                "status": r.status,
                "started_at": r.started_at.isoformat(),
                "duration_s": r.duration_s,
            }
            for r in runs
        ],
        "params": params,
        "metrics": metrics,
        "data": {"train": _data(runs, "train"), "eval": _data(runs, "eval")},
        "shap": [{"run_id": r.run_id, "top": _top(r)} for r in runs],
    }
