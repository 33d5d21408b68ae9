"""Recording a production batch against the model version that served it.

One batch is one row of ``monitor_batches`` -- the batch's hash, row count, profile, every
feature's drift against the version's training data profile, prediction drift and performance
when given, and the decision (``ok``, ``warn``, ``drift``) by the policy's ``[monitoring]``
thresholds -- and one ``monitor`` entry in the audit log, written in the same transaction:
signed by your principal when you have a key, else carrying your name as a label (as card
edits do). Labels that arrive later add a ``labels`` row to the same batch id. The batch's rows
are never stored unless asked (``keep_sample``: a Parquet blob the audit entry names).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MLOpsError
from .drift import compare, compare_feature, decide

if TYPE_CHECKING:
    from ..registry.registry import ModelVersion, Registry
    from ..store import DatasetLink, Run

STAGES = ("none", "staging", "production", "archived")


class MonitoringError(MLOpsError):
    """A batch could not be recorded (the message says what was wrong)."""


@dataclass(frozen=True)
class BatchReport:
    """One recorded batch (what :func:`record_batch` stored)."""

    id: str
    model: str
    version: int
    stage: str
    batch_id: str
    data_hash: str
    reference_hash: str | None
    created_at: float
    rows: int
    decision: str
    drift_share: float
    features: list[dict[str, Any]]
    predictions: dict[str, Any] | None
    performance: dict[str, Any] | None
    thresholds: dict[str, float]
    recorded_by: str
    signed: bool
    audit_entry: int = 0
    notes: list[str] = field(default_factory=list)
    kind: str = "batch"  # or "labels": performance for the earlier batch ``batch_id``
    labels_for: str | None = None  # the labels' batch (its row id)
    sample: str | None = None  # the blob of kept rows (``keep_sample``)
    sample_rows: int = 0

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    @property
    def drifting(self) -> list[str]:
        """The features that drift, in the training data's order."""
        return [f["feature"] for f in self.features if f["status"] == "drift"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        if self.kind == "labels":
            return f"<BatchReport {self.ref} labels for {self.batch_id[:24]}: {self.decision}>"
        return (
            f"<BatchReport {self.ref} ({self.stage}) {self.rows} rows: {self.decision}; "
            f"{len(self.drifting)}/{sum(f.get('schema') != 'new' for f in self.features)} "
            f"features drifting>"
        )

    def _repr_html_(self) -> str:
        from .report import to_html

        return to_html(self)


def resolve_version(registry: Registry, ref: str, stage: str = "production") -> ModelVersion:
    """The version ``ref`` names (``MODEL:VERSION``), or the one ``MODEL`` has in ``stage``."""
    from ..registry.registry import RegistryError

    if stage not in STAGES:
        raise MonitoringError(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
    name, colon, number = ref.rpartition(":")
    if not colon or not number.isdigit():
        name, number = ref, ""
    known = [m["model"] for m in registry.models()]
    if name not in known:
        raise MonitoringError(
            f"no model named {name!r} is registered (registered: {', '.join(known) or 'none'})"
        )
    if number:
        try:
            return registry.version(name, int(number))
        except RegistryError as exc:
            raise MonitoringError(str(exc)) from None
    found = registry.current(name, stage)
    if found is None:
        versions = ", ".join(f"{v.version} {v.stage}" for v in registry.versions(name))
        raise MonitoringError(
            f"model {name} has no version in {stage} (its versions: {versions}); give "
            "MODEL:VERSION, or the stage that serves the batch"
        )
    return found


def training_data(run: Run, columns: list[str]) -> tuple[DatasetLink, DatasetLink | None]:
    """The run's training features (the 2-D snapshot sharing most columns with the batch) and
    its training target (a 1-D snapshot), from their stored profiles."""
    profiled = [
        d
        for d in run.datasets
        if d.role in ("train", "data") and d.profile and d.profile.get("columns")
    ]
    tables = [d for d in profiled if d.shape is not None and len(d.shape) == 2]
    if not tables:
        raise MonitoringError(
            f"run {run.run_id[:8]} recorded no training data profile to compare with: track "
            "the cell that fits the model (or log_data(X, role='train')) and register that run"
        )
    wanted = set(columns)
    features = max(tables, key=lambda d: len(wanted & set((d.profile or {})["columns"])))
    targets = [d for d in profiled if d.shape is not None and len(d.shape) == 1]
    return features, targets[0] if targets else None


def as_columns(data: Any) -> dict[str, Any]:
    """The batch as pandas Series by column name (the names profiles give them)."""
    import pandas as pd

    from ..capture.profile import _as_frame, _library

    if _library(data) in ("polars", "pyarrow") and hasattr(data, "to_pandas"):
        data = data.to_pandas()
    try:
        frame = _as_frame(data)
    except (TypeError, ValueError) as exc:
        raise MonitoringError(f"cannot read the batch as a table: {exc}") from None
    if not isinstance(frame, pd.DataFrame):
        raise MonitoringError(
            f"the batch must be a table of features (DataFrame, 2-D array...), not "
            f"{type(data).__name__}"
        )
    names = [str(c) for c in frame.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MonitoringError(f"the batch has duplicate column names: {', '.join(twice)}")
    return {name: frame.iloc[:, i] for i, name in enumerate(names)}


def _aligned(values: Any, what: str, rows: int) -> Any:
    """Labels or predictions as a Series of one value per row of the batch."""
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    if not isinstance(values, pd.Series):
        array = np.asarray(values)
        if array.ndim > 1 and 1 in array.shape:
            array = array.ravel()
        if array.ndim != 1:
            raise MonitoringError(f"{what} must be one value per row, not of shape {array.shape}")
        values = pd.Series(array)
    if len(values) != rows:
        raise MonitoringError(f"{what} has {len(values)} values, the batch has {rows} rows")
    return values.reset_index(drop=True)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (stored JSON is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _author(
    registry: Registry, label: str | None
) -> tuple[str, Callable[[bytes], str] | None, dict[str, Any]]:
    """Who records: the principal of a usable key (and a signing function), else a label."""
    from ..errors import IdentityError
    from ..identity import sshsig

    try:
        signer, principal = registry.signer, registry.principal
    except IdentityError:
        from ..config import current_user

        return label or registry.label or current_user(), None, {}
    extra: dict[str, Any] = {"key": signer.fingerprint}
    shown = label or registry.label
    if shown and shown != principal:
        extra["label"] = shown
    return principal, lambda data: sshsig.sign(signer, data), extra


def record_batch(
    registry: Registry,
    model: str,
    data: Any = None,
    *,
    predictions: Any = None,
    y_true: Any = None,
    stage: str = "production",
    batch_id: str | None = None,
    label: str | None = None,
    keep_sample: int = 0,
) -> BatchReport:
    """Compare ``data`` with the training profile of the version serving it, store the batch
    and its audit entry, and return the report. ``model`` is ``MODEL`` (its version in
    ``stage``) or ``MODEL:VERSION``. With ``y_true`` and no ``predictions`` the registered
    model predicts the batch (loaded only after its hash matched the signed record).

    Labels that arrive later go to the batch they belong to: give its ``batch_id`` with
    ``y_true`` and either ``predictions`` or the same ``data`` again (no ``data``: the
    predictions are needed, since the batch's rows are not stored). ``keep_sample=N`` stores
    N of the batch's rows (drawn at random, seeded by its hash) as a Parquet blob that the
    audit entry names; nothing else of the rows is kept."""
    from ..capture.hashing import hash_data
    from ..capture.profile import describe

    if keep_sample < 0:
        raise MonitoringError(f"keep_sample is a number of rows, not {keep_sample}")
    store = registry.store
    if data is None:
        if batch_id is None or y_true is None:
            raise MonitoringError(
                "give the batch's data, or labels for a recorded batch: y_true (with the "
                "predictions) and its batch_id"
            )
        earlier = _earlier(registry, model, batch_id)
        return _record_labels(registry, earlier, None, y_true, predictions, label)
    version = resolve_version(registry, model, stage)
    columns = as_columns(data)
    rows = len(next(iter(columns.values()))) if columns else 0
    try:
        data_hash = hash_data(data)
    except TypeError as exc:
        raise MonitoringError(f"cannot hash the batch: {exc}") from None
    named = batch_id or data_hash
    recorded = _latest(store, version.model, named)
    if recorded is not None and recorded["data_hash"] != data_hash:
        raise MonitoringError(
            f"batch {named!r} of {version.model} was recorded at {_when(recorded)} with other "
            f"data (hash {recorded['data_hash'][:16]}, this data {data_hash[:16]}): a batch id "
            "names one batch; give this one another"
        )
    if recorded is not None and y_true is not None:
        return _record_labels(registry, recorded, data, y_true, predictions, label)
    run = store.get_run(version.run_id)
    features_ref, target_ref = training_data(run, list(columns))
    rules = registry.policy.monitoring
    _, _, profile = describe(data)
    features = compare(features_ref.profile or {}, columns, rules)
    notes: list[str] = []
    if any(f.get("coarse") for f in features):
        notes.append(
            "the training profile predates reference bins (only 5 quantiles or the top 5 "
            "categories): drift is estimated from them; register a version tracked now for "
            "exact figures"
        )
    if predictions is None and y_true is not None:
        predictions = _predict(registry, version, data)
    predicted = None if predictions is None else _aligned(predictions, "predictions", rows)
    prediction = _prediction_drift(target_ref, predicted, rules, notes)
    perf = None
    if y_true is not None:
        from .performance import performance

        perf = performance(_aligned(y_true, "y_true", rows), predicted, run.metrics)
    others = [r["status"] for r in (prediction, perf) if r is not None]
    decision, share = decide(features, rules, *others)
    sample, sample_rows = _keep_sample(store, columns, rows, data_hash, keep_sample)
    row = {
        "id": uuid.uuid4().hex,
        "model_name": version.model,
        "version": version.version,
        "stage": version.stage,
        "batch_id": named,
        "data_hash": data_hash,
        "reference_hash": features_ref.hash,
        "created_at": time.time(),
        "n_rows": rows,
        "profile": _finite(profile),
        "features": _finite(features),
        "decision": decision,
        "drift_share": share,
        "predictions": _finite(prediction),
        "performance": _finite(perf),
        "thresholds": asdict(rules),
        "kind": "batch",
        "sample": sample,
    }
    audit: dict[str, Any] = {
        "drifting": [f["feature"] for f in features if f["status"] == "drift"],
    }
    if sample is not None:
        audit.update(sample=sample, sample_rows=sample_rows)
    return _store(registry, row, audit, label, notes, sample_rows)


def _store(
    registry: Registry,
    row: dict[str, Any],
    audit: dict[str, Any],
    label: str | None,
    notes: list[str],
    sample_rows: int = 0,
) -> BatchReport:
    """Write the row and its ``monitor`` audit entry (one transaction), anchor, report."""
    author, sign, extra = _author(registry, label)
    row["recorded_by"] = author
    entry = {
        "model": row["model_name"],
        "version": row["version"],
        "batch": row["id"],
        "batch_id": row["batch_id"],
        "data_hash": row["data_hash"],
        "reference_hash": row["reference_hash"],
        "rows": row["n_rows"],
        "decision": row["decision"],
        "drift_share": row["drift_share"],
        **audit,
        **extra,
    }
    registry.store.add_monitor_batch(row, author, entry, sign)
    seq = _anchored(registry)
    return BatchReport(
        id=row["id"],
        model=row["model_name"],
        version=row["version"],
        stage=row["stage"],
        batch_id=row["batch_id"],
        data_hash=row["data_hash"],
        reference_hash=row["reference_hash"],
        created_at=row["created_at"],
        rows=row["n_rows"],
        decision=row["decision"],
        drift_share=row["drift_share"],
        features=row["features"],
        predictions=row["predictions"],
        performance=row["performance"],
        thresholds=row["thresholds"],
        recorded_by=author,
        signed=sign is not None,
        audit_entry=seq,
        notes=notes,
        kind=row["kind"],
        labels_for=audit.get("labels_for"),
        sample=row["sample"],
        sample_rows=sample_rows,
    )


def _record_labels(
    registry: Registry,
    earlier: dict[str, Any],
    data: Any,
    y_true: Any,
    predictions: Any,
    label: str | None,
) -> BatchReport:
    """A ``labels`` row for the recorded batch ``earlier``: the performance on it, against the
    version that served it (whatever serves now), and the batch's decision raised by it."""
    from .drift import worst
    from .performance import performance

    store = registry.store
    version = registry.version(earlier["model_name"], int(earlier["version"]))
    truth = _aligned(y_true, "y_true", len(y_true) if data is None else int(earlier["n_rows"]))
    if predictions is None:
        if data is None:
            raise MonitoringError(
                f"labels for batch {earlier['batch_id']!r}: give the predictions {version.ref} "
                "made for it (or the batch's data again, for the registered model to predict); "
                "the batch's rows are not stored"
            )
        predictions = _predict(registry, version, data)
    predicted = _aligned(predictions, "predictions", len(truth))
    run = store.get_run(version.run_id)
    names = list((earlier.get("profile") or {}).get("columns") or {})
    _, target_ref = training_data(run, names)
    notes: list[str] = []
    prediction = _prediction_drift(target_ref, predicted, registry.policy.monitoring, notes)
    perf = performance(truth, predicted, run.metrics)
    others = [r["status"] for r in (prediction, perf) if r is not None]
    row = {
        "id": uuid.uuid4().hex,
        "model_name": version.model,
        "version": version.version,
        "stage": earlier["stage"],
        "batch_id": earlier["batch_id"],
        "data_hash": earlier["data_hash"],
        "reference_hash": earlier["reference_hash"],
        "created_at": time.time(),
        "n_rows": len(truth),
        "profile": {},
        "features": [],
        "decision": worst(earlier["decision"], *others),
        "drift_share": earlier["drift_share"],
        "predictions": _finite(prediction),
        "performance": _finite(perf),
        "thresholds": earlier["thresholds"],
        "kind": "labels",
        "sample": None,
    }
    notes.append(f"labels for batch {earlier['batch_id'][:24]} recorded at {_when(earlier)}")
    audit = {"labels_for": earlier["id"], "performance_status": perf["status"]}
    return _store(registry, row, audit, label, notes)


def _prediction_drift(
    target_ref: DatasetLink | None, predicted: Any, rules: Any, notes: list[str]
) -> dict[str, Any] | None:
    """The predictions against the training target's profile (None when not computable)."""
    if predicted is None:
        return None
    if target_ref is None:
        notes.append("no training target snapshot: prediction drift not computed")
        return None
    target = target_ref.profile or {}
    name, column = next(iter(target["columns"].items()))
    return compare_feature(name, column, int(target.get("rows") or 0), predicted, rules)


def _latest(store: Any, model: str, batch_id: str) -> dict[str, Any] | None:
    """The newest recording of the batch (not its labels; None if there is none)."""
    found = store.monitor_batches(model, batch_id=batch_id, kind="batch", limit=1)
    return found[0] if found else None


def _earlier(registry: Registry, model: str, batch_id: str) -> dict[str, Any]:
    """The recorded batch that labels name (``model``: the model, any version)."""
    name = model.rpartition(":")[0] if model.rpartition(":")[2].isdigit() else model
    found = _latest(registry.store, name, batch_id)
    if found is None:
        recent = [b["batch_id"] for b in registry.store.monitor_batches(name, limit=5)]
        raise MonitoringError(
            f"no batch {batch_id!r} of model {name!r} is recorded (recent batches: "
            f"{', '.join(dict.fromkeys(recent)) or 'none'}): record the batch first"
        )
    return found


def _when(row: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(row["created_at"])))


def _keep_sample(
    store: Any, columns: dict[str, Any], rows: int, data_hash: str, wanted: int
) -> tuple[str | None, int]:
    """Store ``wanted`` rows drawn at random (seeded by the batch's hash, in the batch's
    order) as a Parquet blob; its digest and row count (no blob when none are wanted)."""
    if not wanted or not rows:
        return None, 0
    import io

    import numpy as np
    import pandas as pd

    seed = int(data_hash.rpartition(":")[2][:16], 16)
    take = min(wanted, rows)
    chosen = np.sort(np.random.default_rng(seed).choice(rows, size=take, replace=False))
    frame = pd.DataFrame({name: values.iloc[chosen].to_numpy() for name, values in columns.items()})
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception as exc:
        raise MonitoringError(
            f"cannot keep a sample of the batch as Parquet ({type(exc).__name__}: {exc})"
        ) from None
    return store.blobs.put_bytes(buffer.getvalue()), take


def batch_sample(store: Any, batch: Any) -> Any:
    """The rows a batch kept (``keep_sample``) as a DataFrame; ``batch``: a report or a row."""
    import io

    import pandas as pd

    digest = batch.sample if isinstance(batch, BatchReport) else batch.get("sample")
    if not digest:
        raise MonitoringError("this batch kept no sample of its rows (record it with keep_sample)")
    return pd.read_parquet(io.BytesIO(store.blobs.get_bytes(digest)))


def _anchored(registry: Registry) -> int:
    """Anchor the new head (the record is evidence: a removed tail is detected too); return
    the entry's sequence number."""
    from ..store import audit_chain

    registry.anchor()
    return audit_chain.last(registry.store.conn)[0]


def _predict(registry: Registry, version: ModelVersion, data: Any) -> Any:
    model = registry.load_model(version.model, version=version.version)
    try:
        return model.predict(data)
    except Exception as exc:
        raise MonitoringError(
            f"{version.ref} could not predict the batch ({type(exc).__name__}: {exc}); pass "
            "the predictions it made"
        ) from None
