"""Compare 2 to 10 runs: parameters (differences first), metrics, data, SHAP top features.

Plain Python over the store; the REST API, the side panel and ``%compare`` all show this.
Which value of a metric is best follows the direction set for it in the runs' experiment
(``Store.set_metric_direction``), else its name (``metric_settings.direction_of``); when the
compared experiments set different directions the name decides and ``direction_source`` says
so. The experiment's primary metric comes first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .store.metric_settings import resolve
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


SHAP_STATUSES = ("ok", "pending", "failed", "none")


def shap_status(status: str | None) -> str:
    """The comparison's SHAP status for an explanation's stored ``status`` (None: none
    recorded): ``ok``; ``pending`` while it is still being computed; ``failed``; or ``none``
    (nothing recorded, or recorded as not possible: ``unsupported``, its reason kept)."""
    return status if status in SHAP_STATUSES else "none"


def _shap(run: Run) -> dict[str, Any]:
    e = run.explanation
    return {
        "run_id": run.run_id,
        "status": shap_status(e.status if e is not None else None),
        "reason": e.reason if e is not None else None,
        "top": _top(run),
    }


def _primary(settings: dict[str, dict[str, Any]]) -> str | None:
    """The primary metric the compared experiments agree on (None if none or they differ)."""
    named = {s["primary_metric"] for s in settings.values() if s["primary_metric"]}
    return named.pop() if len(named) == 1 else None


def compare_runs(store: Store, ids: list[str]) -> dict[str, Any]:
    """The comparison of ``ids`` (full ids or unique prefixes), JSON-ready.

    ``metrics`` holds per key its ``values`` (in run order), the index of the ``best`` one,
    ``direction`` (``"max"`` / ``"min"``), ``lower_is_better``, ``direction_source``
    (``"experiment"``: set there; ``"name"``: by the metric's name, also when the
    experiments disagree, then ``direction_conflict``) and ``primary``; the primary metric
    first, then by key. ``shap`` holds per run its ``status`` (see :func:`shap_status`),
    ``reason`` and ``top`` features."""
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
    settings = {e: store.metric_directions(e) for e in sorted({r.experiment for r in runs})}
    directions = {e: s["directions"] for e, s in settings.items()}
    primary = _primary(settings)
    metrics = []
    for key in sorted({k for r in runs for k in r.metrics}, key=lambda k: (k != primary, k)):
        raw = [r.metrics.get(key) for r in runs]
        finite = [(i, v) for i, v in enumerate(raw) if v is not None and math.isfinite(v)]
        direction, source, conflict = resolve(key, directions)
        best = None
        if finite:
            pick = min if direction == "min" else max
            best = pick(finite, key=lambda item: item[1])[0]
        metrics.append(
            {
                "key": key,
                "values": [json_number(v) if v is not None else None for v in raw],
                "best": best,
                "direction": direction,
                "lower_is_better": direction == "min",
                "direction_source": source,
                "direction_conflict": conflict,
                "primary": key == primary,
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
        "primary_metric": primary,
        "shap": [_shap(r) for r in runs],
    }
