"""Plain records read from (and written to) the store."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

PARAM_REPR_LIMIT = 500


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    step: int
    value: float
    timestamp: float


@dataclass(frozen=True)
class DatasetLink:
    """A data snapshot a run used, with the role it played (``train``, ``eval``...)."""

    hash: str
    role: str
    variable: str
    kind: str
    shape: list[int] | None = None
    schema: list[dict[str, Any]] | None = None
    profile: dict[str, Any] | None = None
    source_path: str | None = None
    source_hash: str | None = None
    rows_blob: str | None = None  # an evaluation snapshot's kept rows (``store/rows.py``)


@dataclass(frozen=True)
class Explanation:
    """A SHAP explanation of a run's model (or why there is none)."""

    status: str
    reason: str | None = None
    explainer: str | None = None
    feature_names: list[str] | None = None
    classes: list[Any] | None = None
    mean_abs: Any = None
    base_values: Any = None
    n_rows: int | None = None
    blob: str | None = None
    created_at: float | None = None


@dataclass(frozen=True)
class Artifact:
    """A file stored with a run (model, figure...), by blob digest."""

    name: str
    kind: str
    blob: str
    size: int
    media_type: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Environment:
    """The Python environment a run executed in; shared by runs with the same one."""

    id: str
    python: str
    platform: str
    packages: dict[str, str]


@dataclass(frozen=True)
class Run:
    """Everything the store holds about one run."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    params: dict[str, Any] = field(default_factory=dict)
    param_sources: dict[str, str] = field(default_factory=dict)
    truncated_params: frozenset[str] = frozenset()
    metrics: dict[str, float] = field(default_factory=dict)
    metric_history: dict[str, list[MetricPoint]] = field(default_factory=dict)
    datasets: list[DatasetLink] = field(default_factory=list)
    explanation: Explanation | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    environment: Environment | None = None
    code: str | None = None
    execution_count: int | None = None
    notebook_path: str | None = None
    kernel_id: str | None = None
    user: str | None = None
    host: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    capture_errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (times as ISO 8601 UTC, NaN/inf as strings)."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        data["truncated_params"] = sorted(self.truncated_params)
        data["metrics"] = {k: json_number(v) for k, v in self.metrics.items()}
        for points in data["metric_history"].values():
            for point in points:
                point["value"] = json_number(point["value"])
        return data


def json_number(value: float) -> float | str:
    """``value``, or ``"NaN"``/``"Infinity"``/``"-Infinity"`` (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, tuples -> lists; anything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def encode_param(value: Any) -> tuple[str, bool]:
    """JSON text for a parameter value and whether it had to be stored as a truncated repr.

    JSON values (numbers, strings, bools, None, lists and dicts of those) keep their type;
    anything else is stored as its ``repr`` cut at 500 characters and flagged.
    """
    plain = _plain(value)
    try:
        return json.dumps(plain, allow_nan=False, ensure_ascii=False), False
    except (TypeError, ValueError):
        pass
    if isinstance(plain, float):  # NaN / inf: keep them as JSON-ish strings, flagged
        return json.dumps(str(json_number(plain))), True
    text = repr(value)
    if len(text) > PARAM_REPR_LIMIT:
        text = text[: PARAM_REPR_LIMIT - 3] + "..."
    return json.dumps(text, ensure_ascii=False), True


def metric_number(value: Any) -> float:
    """``value`` as a float; a ``TypeError`` naming it if it is not a number."""
    try:
        return float(_plain(value))
    except (TypeError, ValueError):
        raise TypeError(
            f"a metric value is a number; got {type(value).__name__} {value!r:.80}"
        ) from None


def encode_metric(value: Any) -> tuple[float | None, str | None]:
    """(value to store, flag) for a metric; NaN is stored as NULL with flag ``nan``."""
    number = metric_number(value)
    if math.isnan(number):
        return None, "nan"
    if math.isinf(number):
        return number, "inf" if number > 0 else "-inf"
    return number, None


def decode_metric(value: float | None, flag: str | None) -> float:
    if flag == "nan" or value is None:
        return math.nan
    return float(value)
