"""The card's Monitoring section: what production batches showed for a version, the drift it
answers, and the plan (the policy's thresholds), read from the store as recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import Store

RECENT_BATCHES = 20  # the card lists the newest batches; the counts cover all of them


def batch_summaries(store: Store, model: str, version: int) -> list[dict[str, Any]]:
    """One entry per batch of the version, newest first: its decision (raised by labels that
    arrived later), drift share, drifting features and performance."""
    rows = store.monitor_batches(model, version)
    labels: dict[str, dict[str, Any]] = {}
    for row in rows:  # newest first: the first labels row of a batch id is its latest
        if row.get("kind") == "labels":
            labels.setdefault(row["batch_id"], row)
    out = []
    for row in rows:
        if row.get("kind") == "labels":
            continue
        later = labels.get(row["batch_id"])
        if later is not None and later["created_at"] < row["created_at"]:
            later = None  # labels for an earlier recording of the same batch
        features = row["features"] or []
        out.append(
            {
                "id": row["id"],
                "batch_id": row["batch_id"],
                "created_at": row["created_at"],
                "stage": row["stage"],
                "rows": row["n_rows"],
                "decision": (later or row)["decision"],
                "drift_share": row["drift_share"],
                "drifting": [f["feature"] for f in features if f.get("status") == "drift"],
                "schema": [f"{f['feature']} ({f['schema']})" for f in features if f.get("schema")],
                "performance": (later or row)["performance"],
                "labels_at": later["created_at"] if later is not None else None,
                "recorded_by": row["recorded_by"],
                "sample_rows": bool(row.get("sample")),
            }
        )
    return out


def monitoring_summary(
    store: Store, model: str, version: int, requests: list[dict[str, Any]], rules: Any
) -> dict[str, Any]:
    """Counts over every batch, the newest ``RECENT_BATCHES``, the batches this version's
    requests answer, and the thresholds batches are decided by."""
    batches = batch_summaries(store, model, version)
    counts = {d: sum(b["decision"] == d for b in batches) for d in ("ok", "warn", "drift")}
    answers = [
        {**a, "request": r["id"]} for r in requests for a in r.get("answers") or []
    ]  # the drift of an earlier version this one was promoted to answer
    return {
        "batches": len(batches),
        "counts": counts,
        "latest": batches[0] if batches else None,
        "recent": batches[:RECENT_BATCHES],
        "answers": answers,
        "thresholds": asdict(rules),
    }


BATCH_COLUMNS = ["batch", "rows", "decision", "drifting", "features", "performance"]


def batch_rows(summary: dict[str, Any], when: Callable[[Any], str]) -> list[list[Any]]:
    """The card's table of the newest batches: ``when`` (the format's time) and
    ``BATCH_COLUMNS``."""
    return [
        [
            when(b["created_at"]),
            b["batch_id"][:24],
            b["rows"],
            b["decision"],
            f"{b['drift_share']:.0%}",
            ", ".join(b["drifting"] + b["schema"]) or "-",
            headline_metric(b["performance"]),
        ]
        for b in summary["recent"]
    ]


def headline_metric(performance: dict[str, Any] | None) -> str:
    """``accuracy 0.84 [0.81, 0.86] (n=1,000)``, or "-" before labels arrived."""
    if not performance or not performance.get("metrics"):
        return "-"
    name, metric = next(iter(performance["metrics"].items()))
    value = metric.get("value")
    if value is None:
        return "-"
    text = f"{name} {float(value):.3g}"
    interval = metric.get("interval")
    if interval and None not in interval:
        text += f" [{float(interval[0]):.3g}, {float(interval[1]):.3g}]"
    return f"{text} (n={int(performance.get('n') or 0):,})"
