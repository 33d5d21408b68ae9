"""Model Card Toolkit JSON (schema v0.0.2), plus our sibling document for what MCT lacks.

Only keys the schema knows are emitted (MCT's own loader rejects unknown keys at every depth);
metric values are strings, as the schema says. Explanations, reproducibility, governance and
completeness go in :func:`extended_document`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ModelCard


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _owners(text: str | None) -> list[dict[str, str]]:
    owners = []
    for line in _lines(text):
        name, _, contact = line.partition("<")
        owner = {"name": name.strip() or line}
        if contact:
            owner["contact"] = contact.rstrip(">").strip()
        owners.append(owner)
    return owners


def _risks(text: str | None) -> list[dict[str, str]]:
    risks = []
    for line in _lines(text):
        name, sep, mitigation = line.partition(":")
        risk = {"name": name.strip()}
        if sep and mitigation.strip():
            risk["mitigation_strategy"] = mitigation.strip()
        risks.append(risk)
    return risks


def _metric(kind: str, value: float, interval: list[float] | None, at: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "value": _number(float(value)), "slice": at}
    if interval:
        out["confidence_interval"] = {
            "lower_bound": _number(interval[0]),
            "upper_bound": _number(interval[1]),
        }
    return out


def _number(value: float) -> str:
    return str(value) if math.isfinite(value) else repr(value)


def _dataset(d: Any) -> dict[str, Any]:
    shape = " x ".join(str(n) for n in d.shape) if d.shape else "unknown shape"
    description = f"{d.role} data '{d.variable}', {d.kind}, {shape}, content hash {d.hash}"
    if d.source_path:
        description += f"; read from {d.source_path} (hash {d.source_hash})"
    return {"name": f"{d.role}: {d.variable}", "description": description}


def mct_document(card: ModelCard) -> dict[str, Any]:
    s = card.sections
    run = card.run
    details: dict[str, Any] = {"name": card.model_name}
    if not s["overview"].missing:
        details["overview"] = str(s["overview"].content).strip()
    owners = _owners(s["owners"].content)
    if owners:
        details["owners"] = owners
    details["version"] = {
        "name": card.version or run.run_id,
        "date": run.started_at.date().isoformat(),
    }
    if not s["license"].missing:
        licence = str(s["license"].content).strip()
        key = "identifier" if " " not in licence else "custom_text"
        details["licenses"] = [{key: licence}]
    parameters: dict[str, Any] = {}
    if card.model_class:
        parameters["model_architecture"] = card.model_class
    data = [_dataset(d) for d in card.run.datasets if d.role in ("train", "eval", "data")]
    if data:
        parameters["data"] = data
    metrics = [
        {"type": key, "value": _number(float(value))} for key, value in sorted(run.metrics.items())
    ]
    e = card.evaluation
    if e is not None:  # recomputed on the evaluation data, with the schema's own interval
        everything = f"all evaluation rows (n={e.n})"
        metrics += [
            _metric(name, m["value"], m["interval"], everything) for name, m in e.metrics.items()
        ]
    for group in card.group_metrics:
        for k, v in group.groups.items():
            at = f"{group.column}={k} (n={group.counts[k]})"
            metrics.append(_metric(group.metric, v, group.intervals.get(k), at))
            metrics += [
                _metric(rate, values[k], None, at)
                for rate, values in group.rates.items()
                if k in values and not math.isnan(values[k])
            ]
    considerations: dict[str, Any] = {}
    if not s["intended_use"].missing:
        considerations["use_cases"] = [
            {"description": t} for t in _lines(s["intended_use"].content)
        ]
    limitations = _lines(s["caveats"].content) + [
        f"Out of scope: {t}" for t in _lines(s["out_of_scope"].content)
    ]
    if limitations:
        considerations["limitations"] = [{"description": t} for t in limitations]
    risks = _risks(s["ethical_considerations"].content)
    if risks:
        considerations["ethical_considerations"] = risks
    doc: dict[str, Any] = {"schema_version": "0.0.2", "model_details": details}
    if parameters:
        doc["model_parameters"] = parameters
    if metrics:
        doc["quantitative_analysis"] = {"performance_metrics": metrics}
    if considerations:
        doc["considerations"] = considerations
    return doc


def extended_document(card: ModelCard) -> dict[str, Any]:
    """What the MCT schema has no place for; JSON-safe (NaN and inf as strings)."""
    run = card.run
    e = run.explanation
    explanation = None
    if e is not None:
        explanation = {
            "status": e.status,
            "reason": e.reason,
            "explainer": e.explainer,
            "feature_names": e.feature_names,
            "classes": e.classes,
            "mean_abs_shap": e.mean_abs,
            "base_values": e.base_values,
            "rows": e.n_rows,
            "matrix_blob": e.blob,
        }
    env = run.environment
    return {
        "subject": card.subject,
        "run_id": run.run_id,
        "experiment": run.experiment,
        "params": {k: _safe(v) for k, v in sorted(run.params.items())},
        "factors": card.sections["factors"].content,
        "out_of_scope": card.sections["out_of_scope"].content,
        "data": [
            {
                "role": d.role,
                "variable": d.variable,
                "hash": d.hash,
                "kind": d.kind,
                "shape": d.shape,
                "schema": d.schema,
                "source_path": d.source_path,
                "source_hash": d.source_hash,
            }
            for d in run.datasets
        ],
        "group_metrics": [
            {"column": g.column, "metric": g.metric, "groups": g.groups, "gap": g.gap}
            for g in card.group_metrics
        ],
        "explanation": explanation,
        "reproducibility": {
            "code": run.code,
            "notebook": run.notebook_path,
            "execution_count": run.execution_count,
            "git_commit": run.git_commit,
            "git_dirty": run.git_dirty,
            "python": env.python if env else None,
            "platform": env.platform if env else None,
            "packages": env.packages if env else None,
            "earlier_cells": run.history,
        },
        "governance": card.governance,
        "monitoring": card.monitoring,
        "completeness": card.completeness,
        "sections": {
            key: {"content": sec.content, "author": sec.author, "revision": sec.revision}
            for key, sec in card.sections.items()
            if not sec.missing
        },
    }


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
