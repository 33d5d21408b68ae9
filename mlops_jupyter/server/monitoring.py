"""The monitored batches of one model as the Models view's drift strip shows them.

Per version that has batches (production first, then the newest version first): its latest
``limit`` batches oldest to newest with the total count, the features in training order, and
per batch what its detail shows -- per-feature status, PSI and test, prediction drift,
performance, and the performance of labels that arrived later for the same batch id (the
latest ``labels`` row of that batch id wins). Profiles are never sent.

Plain Python (no tornado): the handler in :mod:`.data` only translates.
"""

from __future__ import annotations

from typing import Any

BATCHES_SHOWN = 50  # the latest batches per version the strip shows by default
MAX_BATCHES_SHOWN = 500
FEATURE_KEYS = (
    "feature", "kind", "status", "psi", "test", "statistic", "p_value", "schema", "note",
    "missing", "unseen_rows",
)  # fmt: skip
PREDICTION_KEYS = ("feature", "status", "psi", "test", "statistic", "p_value")
_STAGE_ORDER = {"production": 0, "staging": 1, "none": 2, "archived": 3}


def row_kind(row: dict[str, Any]) -> str:
    """``batch`` (features of a production batch) or ``labels`` (its labels, later); rows
    recorded before labels rows existed are batches."""
    return str(row.get("kind") or "batch")


def _feature(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result.get(key) for key in FEATURE_KEYS}


def _prediction(result: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if result is None else {key: result.get(key) for key in PREDICTION_KEYS}


def _labels(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "n_rows": row["n_rows"],
        "decision": row["decision"],
        "predictions": _prediction(row.get("predictions")),
        "performance": row.get("performance"),
        "recorded_by": row["recorded_by"],
    }


def _batch(row: dict[str, Any], labels: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "batch_id": row["batch_id"],
        "created_at": row["created_at"],
        "n_rows": row["n_rows"],
        "stage": row["stage"],
        "decision": row["decision"],
        "drift_share": row["drift_share"],
        "features": [_feature(f) for f in row.get("features") or []],
        "predictions": _prediction(row.get("predictions")),
        "performance": row.get("performance"),
        "labels": labels,
        "recorded_by": row["recorded_by"],
    }


def monitoring_payload(
    model: str,
    stages: dict[int, str],
    rows: list[dict[str, Any]],
    limit: int = BATCHES_SHOWN,
) -> dict[str, Any]:
    """The payload of ``GET models/<model>/monitoring``. ``stages``: every version's current
    stage; ``rows``: the model's ``monitor_batches`` rows, newest first (as the store gives
    them)."""
    labels: dict[tuple[int, str], dict[str, Any]] = {}
    batches: dict[int, list[dict[str, Any]]] = {}
    for row in rows:  # newest first: the first labels row of a batch id is the latest
        version = int(row["version"])
        if row_kind(row) == "labels":
            labels.setdefault((version, str(row["batch_id"])), _labels(row))
        else:
            batches.setdefault(version, []).append(row)
    versions: list[dict[str, Any]] = []
    for version, newest_first in batches.items():
        shown = newest_first[:limit][::-1]  # oldest to newest
        features: list[str] = []
        for row in shown:  # training order: each batch lists the reference's columns first
            for result in row.get("features") or []:
                if result["feature"] not in features:
                    features.append(result["feature"])
        latest = newest_first[0]
        versions.append(
            {
                "version": version,
                "stage": stages.get(version, "unknown"),
                "total": len(newest_first),
                "shown": len(shown),
                "features": features,
                "latest": {
                    "id": latest["id"],
                    "created_at": latest["created_at"],
                    "decision": latest["decision"],
                    "drift_share": latest["drift_share"],
                },
                "batches": [
                    _batch(row, labels.get((version, str(row["batch_id"])))) for row in shown
                ],
            }
        )
    versions.sort(key=lambda v: (_STAGE_ORDER.get(str(v["stage"]), 4), -int(v["version"])))
    return {"model": model, "limit": limit, "versions": versions}
