"""Reviewer-grade numbers from a run's evaluation data (hash-checked before it gets here).

Each metric comes with its sample size and a 95 % percentile bootstrap interval: ``RESAMPLES``
resamples of the evaluation rows drawn with ``numpy.random.default_rng(seed)`` (the same
resamples for every metric), so anyone holding the data and the recorded seed recomputes the
same interval. Classifiers get the confusion matrix (rows: the true class, columns: the
predicted one), binary ones their true and false positive rates; regressors a residual summary.
Per group of a sensitive column: rows, the metric with its interval (resampled within the group
with ``default_rng([seed, i])`` for the i-th group in sorted order), and the error rates, with
the largest gap between groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
_CHUNK = 200  # resamples drawn at a time: 200 x n row indices in memory, not 1,000 x n


@dataclass
class Evaluation:
    """Overall numbers on the evaluation data."""

    task: str  # "classification" or "regression"
    n: int
    seed: Any  # an int, or [seed, i] for the i-th group
    resamples: int
    metrics: dict[str, dict[str, Any]]  # name -> {"value", "interval": [low, high]}
    labels: list[str] = field(default_factory=list)  # classes, in the confusion matrix's order
    confusion: list[list[int]] | None = None
    positive: str | None = None  # a binary classifier's positive class
    residuals: dict[str, float] | None = None

    @property
    def headline(self) -> str:
        """The metric a summary shows first: accuracy, or MAE for a regressor."""
        return "accuracy" if self.task == "classification" else "mae"


@dataclass
class GroupMetrics:
    """Results per value of a sensitive column, and the largest gap between groups."""

    column: str
    metric: str
    groups: dict[str, float]
    counts: dict[str, int]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # "tpr"/"fpr" -> group -> v
    precision: dict[str, float] = field(default_factory=dict)  # a binary classifier's, per group

    @property
    def gap(self) -> float:
        return _gap(self.groups)

    def rate_gap(self, rate: str) -> float:
        return _gap(self.rates.get(rate, {}))


def _gap(values: dict[str, float]) -> float:
    import math

    finite = [v for v in values.values() if not math.isnan(v)]
    return max(finite) - min(finite) if finite else 0.0


# ------------------------------------------------------------------------------- metrics
Metrics = Callable[[Any], dict[str, Any]]  # row indices (resamples x rows) -> each metric's values


def _classification_metrics(
    truth: Any, predicted: Any, classes: list[Any], positive: Any
) -> Metrics:
    """Accuracy, and a binary classifier's TPR, FPR and precision, from the confusion counts of
    each resample (one gather and one ``bincount`` per chunk of resamples)."""
    import numpy as np

    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    code = np.array(
        [index[t] * k + index[p] for t, p in zip(truth.tolist(), predicted.tolist(), strict=True)],
        dtype=np.int64,
    )
    p = index.get(positive) if positive is not None else None

    def metrics(idx: Any) -> dict[str, Any]:
        rows = idx.shape[0]
        cells = code[idx] + (np.arange(rows) * k * k)[:, None]
        counts = np.bincount(cells.ravel(), minlength=rows * k * k).reshape(rows, k, k)
        n = idx.shape[1]
        out = {"accuracy": np.trace(counts, axis1=1, axis2=2) / n}
        if p is not None:
            tp = counts[:, p, p]
            actual, flagged = counts[:, p, :].sum(axis=1), counts[:, :, p].sum(axis=1)
            out["tpr"] = _ratio(tp, actual)
            out["fpr"] = _ratio(flagged - tp, n - actual)
            out["precision"] = _ratio(tp, flagged)
        return out

    return metrics


def _regression_metrics(truth: Any, predicted: Any) -> Metrics:
    import numpy as np

    error = predicted - truth
    absolute, squared = np.abs(error), error**2

    def metrics(idx: Any) -> dict[str, Any]:
        y = truth[idx]
        spread = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
        sq = squared[idx]
        return {
            "mae": absolute[idx].mean(axis=-1),
            "rmse": np.sqrt(sq.mean(axis=-1)),
            "r2": 1.0 - _ratio(sq.sum(axis=-1), spread),
        }

    return metrics


def _ratio(top: Any, bottom: Any) -> Any:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)


def _with_intervals(
    metrics: Metrics, n: int, rng: Any, resamples: int
) -> dict[str, dict[str, Any]]:
    """Each metric on all ``n`` rows and its percentile bootstrap interval."""
    import numpy as np

    found = {name: float(v[0]) for name, v in metrics(np.arange(n)[None, :]).items()} if n else {}
    drawn: list[dict[str, Any]] = []
    done = 0
    while done < resamples and n:
        idx = rng.integers(0, n, size=(min(_CHUNK, resamples - done), n))
        drawn.append(metrics(idx))
        done += len(idx)
    out: dict[str, dict[str, Any]] = {}
    tail = (1 - CONFIDENCE) / 2 * 100
    for name, value in found.items():
        values = np.concatenate([d[name] for d in drawn]) if drawn else np.array([])
        values = values[~np.isnan(values)]
        interval = (
            [float(v) for v in np.percentile(values, [tail, 100 - tail])] if len(values) else None
        )
        out[name] = {"value": value, "interval": interval}
    return out


# ---------------------------------------------------------------------------- evaluations
def evaluate(
    truth: Any,
    predicted: Any,
    *,
    classifier: bool,
    seed: Any = SEED,
    resamples: int = RESAMPLES,
    positive: Any = None,
) -> Evaluation:
    """The overall numbers of ``predicted`` against ``truth`` (1-D arrays of one length).
    ``positive``: a binary classifier's positive class (default: the larger of its two)."""
    import numpy as np

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    n = len(truth)
    rng = np.random.default_rng(seed)
    if not classifier:
        truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
        metrics = _with_intervals(_regression_metrics(truth, predicted), n, rng, resamples)
        error = predicted - truth
        q = np.quantile(error, [0.05, 0.5, 0.95]) if n else [float("nan")] * 3
        residuals = {
            "mean": float(error.mean()) if n else float("nan"),
            "std": float(error.std(ddof=1)) if n > 1 else 0.0,
            "p05": float(q[0]),
            "median": float(q[1]),
            "p95": float(q[2]),
            "max_abs": float(np.abs(error).max()) if n else float("nan"),
        }
        return Evaluation("regression", n, seed, resamples, metrics, residuals=residuals)
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()), key=_order)
    if positive is None:
        positive = positive_class(truth, predicted)
    metrics = _with_intervals(
        _classification_metrics(truth, predicted, classes, positive), n, rng, resamples
    )
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(
        matrix, ([index[t] for t in truth.tolist()], [index[p] for p in predicted.tolist()]), 1
    )
    return Evaluation(
        "classification",
        n,
        seed,
        resamples,
        metrics,
        labels=[str(c) for c in classes],
        confusion=matrix.tolist(),
        positive=str(positive) if positive is not None else None,
    )


def by_group(
    column: str,
    values: Any,
    truth: Any,
    predicted: Any,
    *,
    classifier: bool,
    positive: Any = None,
    seed: int = SEED,
    resamples: int = RESAMPLES,
) -> GroupMetrics:
    """Per value of ``values`` (the sensitive column, missing values left out): rows, the
    headline metric with its interval, and the binary rates (TPR, FPR; precision apart)."""
    import numpy as np

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    listed = values.tolist()
    present = [v for v in listed if v is not None and v == v]  # NaN != NaN
    objects = np.empty(len(listed), dtype=object)
    objects[:] = listed  # plain Python values, compared as the sorted groups are
    groups: dict[str, float] = {}
    counts: dict[str, int] = {}
    intervals: dict[str, list[float]] = {}
    rates: dict[str, dict[str, float]] = {"tpr": {}, "fpr": {}} if positive is not None else {}
    precision: dict[str, float] = {}
    metric = "accuracy" if classifier else "mae"
    for i, value in enumerate(sorted(set(present), key=_order)):
        mask = objects == value
        name = str(value)
        result = evaluate(
            truth[mask],
            predicted[mask],
            classifier=classifier,
            seed=[seed, i],
            resamples=resamples,
            positive=positive,
        )
        counts[name] = int(mask.sum())
        groups[name] = result.metrics[metric]["value"]
        if result.metrics[metric]["interval"] is not None:
            intervals[name] = result.metrics[metric]["interval"]
        for rate in rates:
            rates[rate][name] = result.metrics[rate]["value"]
        if positive is not None:
            precision[name] = result.metrics["precision"]["value"]
    return GroupMetrics(column, metric, groups, counts, intervals, rates, precision)


def positive_class(truth: Any, predicted: Any) -> Any:
    """A binary classifier's positive class: the larger of the two it has (1, True, "yes"
    after "no"); None for one or more than two classes."""
    classes = sorted(set(list(truth)) | set(list(predicted)), key=_order)
    return classes[1] if len(classes) == 2 else None


def _order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then everything else by its text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (1, str(value))
    return (0, value)


def short(value: Any) -> str:
    """About three significant figures; "—" for a missing or undefined value."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def interval_text(interval: list[float] | None) -> str:
    """``[0.81, 0.86]``, or "—" without an interval."""
    return f"[{short(interval[0])}, {short(interval[1])}]" if interval else "—"
