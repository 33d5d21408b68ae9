"""Policy gates: each returns whether it passed and a message a person can act on."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..capture.metric_values import lower_is_better
from .policy import FairnessRule, RegressionRule, StageRules

if TYPE_CHECKING:
    from ..cards.evaluation import GroupMetrics
    from ..store import Run


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    rules: StageRules,
    run: Run,
    sections: dict[str, Any],
    production: Run | None,
    directions: Mapping[str, str] | None = None,
) -> list[GateResult]:
    """Every gate the rules name, in a fixed order. ``directions``: which way is better for
    metrics of the run's experiment as set in the store (:meth:`Store.metric_directions`);
    never decides a gate, but one disagreeing with the name rule where the policy states no
    direction fails ``no_regression``."""
    results: list[GateResult] = []
    if rules.card_sections:
        missing = [s for s in rules.card_sections if not str(sections.get(s) or "").strip()]
        results.append(
            GateResult(
                "card_sections",
                not missing,
                "all required card sections are written"
                if not missing
                else f"card sections not written: {', '.join(missing)} "
                "(write them with %model_card REF --edit or mlops-jupyter card-sections)",
            )
        )
    if rules.data_hash:
        train = [d for d in run.datasets if d.role in ("train", "data")]
        results.append(
            GateResult(
                "data_hash",
                bool(train),
                f"training data recorded ({train[0].variable}: {train[0].hash[:22]}…)"
                if train
                else "no training data snapshot recorded: track the cell that fits the model "
                "(or log_data(X, role='train'))",
            )
        )
    if rules.explanation:
        e = run.explanation
        ok = e is not None and e.status == "ok"
        reason = (
            "SHAP explanation stored"
            if ok
            else "no SHAP explanation: track without --no-shap and wait for it"
            if e is None
            else f"SHAP explanation {e.status}: {e.reason or 'still computing'}"
        )
        results.append(GateResult("explanation", ok, reason))
    for threshold in rules.metrics:
        actual = run.metrics.get(threshold.metric)
        if actual is None:
            results.append(
                GateResult(f"metric {threshold}", False, f"{threshold.metric} was not recorded")
            )
            continue
        ok = not math.isnan(actual) and threshold.holds(actual)
        results.append(
            GateResult(
                f"metric {threshold}",
                ok,
                f"{threshold.metric} = {actual:.6g} {'meets' if ok else 'fails'} {threshold}",
            )
        )
    if rules.no_regression:
        results.append(_no_regression(rules.no_regression, run, production, directions or {}))
    if rules.drift is not None:
        results.append(_drift(rules.drift, run, production))
    return results


_BETTER = {"max": "higher is better", "min": "lower is better"}
_WAY = {"max": "higher", "min": "lower"}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else quoted (``"val.auc"``)."""
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _no_regression(
    rules: tuple[RegressionRule, ...],
    run: Run,
    production: Run | None,
    directions: Mapping[str, str],
) -> GateResult:
    """Each metric no worse than production's, which way is better from the policy, else the
    metric's name; an experiment setting that contradicts the name (with the policy silent)
    fails: the unsigned setting must not decide, nor silently be overruled."""
    if production is None:
        return GateResult("no_regression", True, "no production version to compare with")
    mine = {d.hash for d in run.datasets if d.role == "eval"}
    theirs = {d.hash for d in production.datasets if d.role == "eval"}
    if not mine & theirs:
        return GateResult(
            "no_regression",
            False,
            "not comparable: this version and production were evaluated on different data "
            f"(eval hashes {sorted(h[11:21] for h in mine) or 'none'} vs "
            f"{sorted(h[11:21] for h in theirs) or 'none'}); evaluate both on the same data",
        )
    unclear: list[str] = []
    worse: list[str] = []
    held: list[str] = []
    suggested: dict[str, str] = {}
    for rule in rules:
        metric = rule.metric
        by_name = "min" if lower_is_better(metric) else "max"
        direction = rule.direction or by_name
        source = "policy" if rule.direction else "name rule"
        setting = directions.get(metric)
        suggested[metric] = direction
        if (
            rule.direction is None
            and setting is not None
            and setting in _BETTER
            and setting != by_name
        ):
            suggested[metric] = setting
            unclear.append(
                f"direction of {metric} unclear: the experiment {run.experiment!r} says "
                f"{_BETTER[setting]}, the name rule says {_WAY[by_name]}"
            )
            continue
        how = f"({_BETTER[direction]}, {source})"
        new, old = run.metrics.get(metric), production.metrics.get(metric)
        if new is None or old is None:
            worse.append(f"{metric} missing ({'here' if new is None else 'in production'})")
        elif (new > old) if direction == "min" else (new < old):
            worse.append(f"{metric} {new:.6g} vs production {old:.6g} {how}")
        else:
            held.append(f"{metric} {how}")
    if not unclear and not worse:
        return GateResult("no_regression", True, "no regression on " + ", ".join(held))
    parts = []
    if unclear:
        table = ", ".join(f'{_toml_key(m)} = "{d}"' for m, d in suggested.items())
        parts.append(
            "; ".join(unclear) + f"; state it in the policy: no_regression = {{ {table} }}"
        )
    if worse:
        parts.append("regression: " + "; ".join(worse))
    return GateResult("no_regression", False, "; ".join(parts))


def fairness(rule: FairnessRule, groups: GroupMetrics) -> GateResult:
    """The fairness gate from the model's results per group of the rule's attribute."""
    values: dict[str, float] | None
    if rule.metric in ("accuracy", "mae"):
        fits = groups.metric == rule.metric
        values = groups.groups if fits else None
        need = "a classifier" if rule.metric == "accuracy" else "a regression model"
    else:
        values = (
            groups.precision
            if rule.metric == "precision"
            else groups.rates.get("tpr" if rule.metric == "recall" else "fpr")
        )
        values = values or None
        need = "a binary classifier"
    if values is None:
        return GateResult("fairness", False, f"{rule.metric} by {rule.attribute} needs {need}")
    finite = [v for v in values.values() if not math.isnan(v)]
    if len(finite) < 2:
        return GateResult(
            "fairness",
            False,
            f"{rule.metric} by {rule.attribute}: fewer than two groups with a value "
            f"({', '.join(values) or 'none'}); evaluate on data holding every group",
        )
    gap = max(finite) - min(finite)
    ok = gap <= rule.max_gap + 1e-12  # 0.90 - 0.85 is 0.05000000000000004: within 0.05
    shown = ", ".join(
        f"{name} {'—' if math.isnan(v) else f'{v:.3g}'} (n={groups.counts.get(name, 0)})"
        for name, v in values.items()
    )
    return GateResult(
        "fairness",
        ok,
        f"{rule.metric} by {rule.attribute}: {shown}; gap {gap:.3g} "
        f"{'<=' if ok else '>'} {rule.max_gap:g}",
    )


def _rows(link: Any) -> int:
    """A training data profile's row count (its shape's first number in old profiles)."""
    rows = (link.profile or {}).get("rows")
    return int(rows if rows is not None else (link.shape or [0])[0])


def _drift(limit: float, run: Run, production: Run | None) -> GateResult:
    if production is None:
        return GateResult("drift", True, "no production version to compare with")
    mine = next((d for d in run.datasets if d.role == "train" and d.profile), None)
    theirs = next((d for d in production.datasets if d.role == "train" and d.profile), None)
    if mine is None or theirs is None:
        return GateResult(
            "drift", False, "no training data profile on this version or on production"
        )
    from ..monitoring.drift import profile_psi

    mine_cols = (mine.profile or {}).get("columns", {})
    their_cols = (theirs.profile or {}).get("columns", {})
    mine_rows, their_rows = _rows(mine), _rows(theirs)
    scores = {}
    for column, expected in their_cols.items():
        if column in mine_cols:
            value = profile_psi(expected, mine_cols[column], their_rows, mine_rows)
            if value is not None:
                scores[column] = value
    if not scores:
        return GateResult("drift", False, "no feature in common to compare")
    column, worst = max(scores.items(), key=lambda item: item[1])
    ok = worst <= limit
    return GateResult(
        "drift",
        ok,
        f"largest population stability index {worst:.3f} ({column}) "
        f"{'<=' if ok else '>'} {limit:g} over {len(scores)} features",
    )
