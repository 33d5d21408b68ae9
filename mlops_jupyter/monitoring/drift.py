"""Drift of a production batch, feature by feature, against the training data's *profile*.

The reference is a column of a stored profile, never raw rows. For numbers: its equal-frequency
bins (``bins``: the edges, the count of values *at* each edge and *between* consecutive ones;
see :mod:`mlops_jupyter.capture.profile`), so the training data's distribution function is
known exactly just below and at each edge. For categories: the counts of the
most frequent ones and an ``other`` count. Profiles written before these summaries hold only
min, the 5/25/50/75/95 % quantiles and max, or the top 5 categories: they are used, and each
result made from one says so (``coarse``).

Per numeric feature: the population stability index (PSI) over the reference's bins and the
two-sample Kolmogorov-Smirnov statistic over the edges (the largest gap there between the
batch's distribution function and the training data's) with its asymptotic p-value. Per
categorical feature: PSI over the reference's categories and Pearson's chi-squared test of the
batch's counts against the reference's shares; categories the training data never had are
reported as unseen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..capture.profile import BINS, QUANTILES, map_columns

if TYPE_CHECKING:
    from ..registry.policy import MonitoringRules

EPSILON = 1e-4  # a share below this counts as this in PSI (as the registry's drift gate does)
ATOM = 1 / (2 * BINS)  # a single value holding this share of the reference is a bin of its own
EXACT_KS = 10_000  # samples up to this effective size get scipy's exact two-sided distribution
SHOWN_UNSEEN = 20  # unseen categories named in a result (all are counted)
_ORDER = {"ok": 0, "warn": 1, "drift": 2}


@dataclass(frozen=True)
class NumericReference:
    """A numeric column's distribution function at its edges: ``below[i]`` is the share of
    values below ``edges[i]``, ``upto[i]`` the share at or below it; ``n`` values."""

    edges: list[float]
    below: list[float]
    upto: list[float]
    n: int
    coarse: bool


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical column's counts (``other``: values of the categories not listed)."""

    counts: dict[str, int]
    other: int
    n: int
    coarse: bool


def worst(*statuses: str) -> str:
    """The most severe of ``ok``, ``warn`` and ``drift``."""
    return max(statuses, key=_ORDER.__getitem__, default="ok")


def reference_of(
    column: dict[str, Any], counted: int
) -> NumericReference | CategoricalReference | None:
    """The reference summary in one column's profile (None: nothing to compare with);
    ``counted`` is how many values the column had that were not missing."""
    bins = column.get("bins")
    if isinstance(bins, dict) and bins.get("at") and bins.get("between") is not None:
        at, between = [int(v) for v in bins["at"]], [int(v) for v in bins["between"]]
        n = sum(at) + sum(between)
        below: list[float] = []
        upto: list[float] = []
        seen = 0
        for i, count in enumerate(at):
            below.append(seen / n)
            seen += count
            upto.append(seen / n)
            seen += between[i] if i < len(between) else 0
        return NumericReference([float(e) for e in bins["edges"]], below, upto, n, False)
    if column.get("quantiles"):
        return _coarse_numeric(column, counted)
    if column.get("categories") is not None:
        counts = {str(k): int(v) for k, v in column["categories"]}
        other = int(column.get("other") or 0)
        return CategoricalReference(counts, other, sum(counts.values()) + other, False)
    if column.get("top") is not None:
        counts = {str(k): int(v) for k, v in column["top"]}
        listed = sum(counts.values())
        complete = int(column.get("unique") or 0) <= len(counts)
        other = 0 if complete else max(0, counted - listed)
        return CategoricalReference(counts, other, listed + other, True)
    return None


def _coarse_numeric(column: dict[str, Any], counted: int) -> NumericReference | None:
    """Min, the profile's quantiles and max as a distribution function; equal points (ties)
    become one edge with a jump."""
    q = column.get("quantiles") or {}
    points = [column.get("min"), *(q.get(str(p)) for p in QUANTILES), column.get("max")]
    if any(v is None for v in points):
        return None
    numbers = [float(v) for v in points if v is not None]
    shares = [0.0, *QUANTILES, 1.0]
    edges: list[float] = []
    below: list[float] = []
    upto: list[float] = []
    for value, share in zip(numbers, shares, strict=True):
        if edges and value <= edges[-1]:
            upto[-1] = share
            continue
        edges.append(value)
        below.append(share)
        upto.append(share)
    below[0] = 0.0
    upto[-1] = 1.0
    return NumericReference(edges, below, upto, counted, True)


def _cell_counts(edges: Any, values: Any) -> Any:
    """How many values fall in each cell around the edges: cell 0 below ``edges[0]``, then
    ``2 i + 1`` at ``edges[i]`` and ``2 i + 2`` strictly between ``edges[i]`` and ``edges[i + 1]``
    (the last cell: above the last edge). Two vectorised comparisons of the batch per edge:
    several times faster than a binary search of every value among 21 edges."""
    import numpy as np

    below = np.array([np.count_nonzero(values < e) for e in edges], dtype=np.int64)
    upto = np.array([np.count_nonzero(values <= e) for e in edges], dtype=np.int64)
    cells = np.empty(2 * len(edges) + 1, dtype=np.int64)
    cells[0] = below[0]
    cells[1::2] = upto - below
    cells[2:-1:2] = below[1:] - upto[:-1]
    cells[-1] = len(values) - upto[-1]
    return cells


def bin_shares(ref: NumericReference) -> tuple[Any, Any]:
    """``(bin of each cell, reference share of each bin)``: a bin is an edge and the interval
    after it (the last interval also holds the last edge), or an edge on its own when that one
    value holds at least ``ATOM`` of the reference."""
    import numpy as np

    k = len(ref.edges) - 1
    mass = np.zeros(2 * k + 1)
    mass[0::2] = np.subtract(ref.upto, ref.below)
    mass[1::2] = np.subtract(ref.below[1:], ref.upto[:-1])
    bin_of = np.zeros(2 * k + 1, dtype=np.int64)
    current, current_open = -1, False
    for cell in range(2 * k + 1):
        is_edge = cell % 2 == 0
        if is_edge and mass[cell] >= ATOM:
            current += 1
            bin_of[cell] = current
            current_open = False
        elif is_edge:
            if cell == 2 * k and current >= 0:  # the last edge closes the last interval
                bin_of[cell] = current
                continue
            current += 1
            bin_of[cell] = current
            current_open = True
        else:
            if not current_open:
                current += 1
            bin_of[cell] = current
            current_open = False
    shares = np.bincount(bin_of, weights=mass, minlength=current + 1)
    return bin_of, shares


def psi(expected: Any, actual: Any) -> float:
    """Population stability index of two share vectors (each share at least ``EPSILON``)."""
    import numpy as np

    e = np.clip(np.asarray(expected, dtype=np.float64), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(ref: NumericReference, values: Any) -> float:
    """PSI of a batch's finite values over the reference's bins."""
    import numpy as np

    return _psi_of_cells(ref, _cell_counts(np.asarray(ref.edges), values))


def _psi_of_cells(ref: NumericReference, cells: Any) -> float:
    """PSI over the reference's bins of a batch counted by :func:`_cell_counts` (values below
    the first edge or above the last count as at that edge)."""
    import numpy as np

    bin_of, expected = bin_shares(ref)
    inner = cells[1:-1].copy()
    inner[0] += cells[0]
    inner[-1] += cells[-1]
    counts = np.bincount(bin_of, weights=inner, minlength=len(expected))
    return psi(expected, counts / (float(cells.sum()) or 1.0))


def profile_psi(
    expected: dict[str, Any], actual: dict[str, Any], expected_rows: int, actual_rows: int
) -> float | None:
    """PSI between two stored profiles of one column (the registry's drift gate compares two
    versions' training data this way; neither has its rows). ``expected``'s bins or categories
    are the reference; ``actual``'s share of each is read from its own distribution function,
    exact at its edges and linear between them, so identical profiles give exactly 0 (discrete
    columns too). ``*_rows``: the profiles' row counts. None: not comparable (no summary, or a
    number in one and categories in the other)."""
    ref = reference_of(expected, expected_rows - int(expected.get("nulls") or 0))
    other = reference_of(actual, actual_rows - int(actual.get("nulls") or 0))
    if ref is None or other is None or type(ref) is not type(other):
        return None
    if isinstance(ref, CategoricalReference) and isinstance(other, CategoricalReference):
        counts = dict(other.counts)
        if other.other:  # not among the reference's categories either (nor named)
            counts["\0other"] = other.other
        return categorical_psi(ref, counts)
    assert isinstance(ref, NumericReference) and isinstance(other, NumericReference)
    return _psi_of_cells(ref, _profile_cells(ref.edges, other))


def _profile_cells(edges: list[float], other: NumericReference) -> Any:
    """The shares of ``other`` in :func:`_cell_counts`' cells around ``edges``."""
    import bisect

    import numpy as np

    def cdf(x: float) -> tuple[float, float]:  # other's shares below and at-or-below x
        j = bisect.bisect_left(other.edges, x)
        if j < len(other.edges) and other.edges[j] == x:
            return other.below[j], other.upto[j]
        if j == 0:
            return 0.0, 0.0
        if j == len(other.edges):
            return 1.0, 1.0
        lo, hi = other.edges[j - 1], other.edges[j]
        share = other.upto[j - 1] + (other.below[j] - other.upto[j - 1]) * (x - lo) / (hi - lo)
        return share, share

    below, upto = (np.array(v) for v in zip(*(cdf(e) for e in edges), strict=True))
    cells = np.empty(2 * len(edges) + 1)
    cells[0] = below[0]
    cells[1::2] = upto - below
    cells[2:-1:2] = below[1:] - upto[:-1]
    cells[-1] = 1.0 - upto[-1]
    return np.clip(cells, 0.0, None)


def ks_test(ref: NumericReference, values: Any) -> tuple[float, float]:
    """Kolmogorov-Smirnov statistic of the batch against the training data at the reference's
    edges, and its p-value (asymptotic, as ``scipy.stats.ks_2samp(method="asymp")``).

    The training data's distribution function is known exactly only at the edges (just below
    and at each), so the statistic is the largest gap between the two samples' distribution
    functions over those points: the two-sample statistic restricted to them. It is never
    above the full statistic, so its p-value is conservative: an unchanged batch is not made
    significant by how the reference was summarised, however large the batch (interpolating
    between edges was, by up to a few per cent of the distribution). No sort: one binary search
    of the batch among the edges, shared with PSI."""
    import numpy as np

    return _ks_of_cells(ref, _cell_counts(np.asarray(ref.edges), values))


def _ks_of_cells(ref: NumericReference, cells: Any) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    m = int(cells.sum())
    seen = np.cumsum(cells) / max(m, 1)
    below, upto = seen[0::2][:-1], seen[1::2]  # just below and at each edge
    gap = float(max(np.max(np.abs(below - np.asarray(ref.below))), np.max(np.abs(upto - ref.upto))))
    if not ref.n or not m:
        return gap, math.nan
    effective = max(round(ref.n * m / (ref.n + m)), 1)
    if effective <= EXACT_KS:
        return gap, float(stats.kstwo.sf(gap, effective))
    # Kolmogorov's limit with Stephens' correction: within 0.2 % of kstwo there, and at a
    # million values a microsecond, not a tenth of a second
    root = math.sqrt(effective)
    return gap, float(stats.kstwobign.sf(gap * (root + 0.12 + 0.11 / root)))


def category_counts(values: Any) -> dict[str, int]:
    """The batch's count per category, named as profiles name them (``str``)."""
    counts: dict[str, int] = {}
    for key, count in values.value_counts(dropna=True).items():
        name = str(key)
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def chi_squared(
    ref: CategoricalReference, counts: dict[str, int]
) -> tuple[float, float, dict[str, int]]:
    """Pearson's chi-squared statistic and p-value of the batch's counts against the
    reference's shares, and the batch's unseen categories (only when the reference lists every
    category it had; otherwise those rows are in the ``other`` bucket)."""
    from scipy import stats

    unseen = {} if ref.other else {k: v for k, v in counts.items() if k not in ref.counts}
    buckets = dict(ref.counts)
    observed = {k: counts.get(k, 0) for k in buckets}
    if ref.other:
        buckets["\0other"] = ref.other
        observed["\0other"] = sum(v for k, v in counts.items() if k not in ref.counts)
    total = sum(observed.values())
    if total == 0:  # every value unseen: as different as can be
        return (math.inf, 0.0, unseen) if counts else (0.0, 1.0, unseen)
    if len(buckets) < 2:  # one category: nothing to test
        return 0.0, 1.0, unseen
    statistic = 0.0
    for key, count in buckets.items():
        expected = count / ref.n * total
        statistic += (observed[key] - expected) ** 2 / expected
    return statistic, float(stats.chi2.sf(statistic, len(buckets) - 1)), unseen


def categorical_psi(ref: CategoricalReference, counts: dict[str, int]) -> float:
    """PSI over the reference's categories and one bucket for every other value."""
    m = sum(counts.values())
    rest = sum(v for k, v in counts.items() if k not in ref.counts)
    expected = [c / ref.n for c in ref.counts.values()] + [ref.other / ref.n]
    actual = [counts.get(k, 0) / max(m, 1) for k in ref.counts] + [rest / max(m, 1)]
    return psi(expected, actual)


def status(psi_value: float, p_value: float, rules: MonitoringRules) -> str:
    """``drift``, ``warn`` or ``ok`` by the policy: the PSI band (``psi_drift``, ``psi_warn``)
    of a shift the test finds significant (p below ``p_value``). A shift that is not
    significant is sampling noise, whatever its PSI (small batches); a significant one below
    ``psi_warn`` is too small to matter (large batches). Without a p-value, PSI alone."""
    if not math.isnan(p_value) and p_value >= rules.p_value:
        return "ok"
    if psi_value >= rules.psi_drift:
        return "drift"
    return "warn" if psi_value >= rules.psi_warn else "ok"


def compare_feature(
    name: str, column: dict[str, Any], reference_rows: int, values: Any, rules: MonitoringRules
) -> dict[str, Any]:
    """One feature's result: its kind, PSI, test, missing rates and status (a dict for JSON)."""
    import numpy as np
    import pandas as pd

    nulls = int(column.get("nulls") or 0)
    ref = reference_of(column, reference_rows - nulls)
    missing = {
        "reference": nulls / reference_rows if reference_rows else 0.0,
        "batch": int(values.isna().sum()) / len(values) if len(values) else 0.0,
    }
    moved = "warn" if abs(missing["batch"] - missing["reference"]) >= rules.missing_rate else "ok"
    out: dict[str, Any] = {"feature": name, "missing": missing}
    if ref is None:
        note = "not compared: the training profile has no summary of this column"
        return {**out, "kind": "other", "status": moved, "note": note}
    present = values.dropna()
    if isinstance(ref, NumericReference):
        out["kind"] = "numeric"
        dtype = values.dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            note = f"numeric in the training data, {dtype} in this batch"
            return {**out, "status": "drift", "schema": "type", "note": note}
        numbers = np.asarray(present, dtype=np.float64)
        numbers = numbers[np.isfinite(numbers)]
        if not len(numbers):
            return {**out, "status": "drift", "note": "no finite value in this batch"}
        cells = _cell_counts(np.asarray(ref.edges), numbers)
        value = _psi_of_cells(ref, cells)
        statistic, p = _ks_of_cells(ref, cells)
        out.update(psi=value, test="ks", statistic=statistic, p_value=p, coarse=ref.coarse)
        return {**out, "status": worst(status(value, p, rules), moved)}
    counts = category_counts(present)
    value = categorical_psi(ref, counts)
    statistic, p, unseen = chi_squared(ref, counts)
    out.update(kind="categorical", psi=value, test="chi2", statistic=statistic, p_value=p)
    out["coarse"] = ref.coarse
    found = worst(status(value, p, rules), moved)
    if unseen:
        shown = sorted(unseen, key=lambda k: (-unseen[k], k))[:SHOWN_UNSEEN]
        out["unseen"] = {k: unseen[k] for k in shown}
        out["unseen_rows"] = sum(unseen.values())
        found = worst(found, "warn")
    return {**out, "status": found}


def compare(
    reference: dict[str, Any], batch: dict[str, Any], rules: MonitoringRules
) -> list[dict[str, Any]]:
    """Every feature's result: the reference profile's columns in order (a column missing from
    the batch is a schema change), then the batch's columns the training data did not have."""
    columns = reference.get("columns") or {}
    rows = int(reference.get("rows") or 0)
    present = [(name, column) for name, column in columns.items() if name in batch]

    def one(item: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        return compare_feature(item[0], item[1], rows, batch[item[0]], rules)

    batch_rows = max((len(values) for values in batch.values()), default=0)
    compared = map_columns(one, present, batch_rows)
    found = {name: result for (name, _), result in zip(present, compared, strict=True)}
    results = [
        found[name]
        if name in found
        else _schema(name, "missing", "drift", "missing from this batch")
        for name in columns
    ]
    for name in batch:
        if name not in columns:
            results.append(_schema(name, "new", "warn", "not in the training data"))
    return results


def _schema(name: str, change: str, found: str, note: str) -> dict[str, Any]:
    return {"feature": name, "kind": "schema", "schema": change, "status": found, "note": note}


def decide(
    features: list[dict[str, Any]], rules: MonitoringRules, *others: str
) -> tuple[str, float]:
    """The batch's decision and the share of the training features that drift. ``others``:
    further statuses (prediction drift, performance) that can raise the decision."""
    compared = [f for f in features if f.get("schema") != "new"]
    drifting = [f for f in compared if f["status"] == "drift"]
    share = len(drifting) / len(compared) if compared else 0.0
    if share >= rules.drift_share or any(f.get("schema") in ("missing", "type") for f in features):
        decision = "drift"
    elif any(f["status"] != "ok" for f in features):
        decision = "warn"
    else:
        decision = "ok"
    return worst(decision, *others), share
