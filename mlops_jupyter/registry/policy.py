"""Promotion policy: which gates and how many sign-offs, per risk tier and target stage, and
the thresholds that decide whether a production batch drifted (``[monitoring]``).

Read from ``.mlops/policy.toml``, else ``[tool.mlops-jupyter.policy]`` in the project's
``pyproject.toml``, else the default shipped with the package. An invalid file is refused with
the file, the field and what was expected.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MLOpsError

TIERS = ("low", "medium", "high")
STAGES = ("staging", "production", "archived")
_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|>|<|==)\s*(-?[0-9.eE+\-]+)\s*$")
_FIELDS = {
    "signoffs",
    "approvers",
    "card_sections",
    "data_hash",
    "explanation",
    "metrics",
    "no_regression",
    "drift",
    "fairness",
}
FAIRNESS_METRICS = ("accuracy", "recall", "fpr", "precision", "mae")


class PolicyError(MLOpsError):
    """The policy file is invalid (the message names the file and the field)."""


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float

    def holds(self, actual: float) -> bool:
        ops = {
            ">=": actual >= self.value,
            "<=": actual <= self.value,
            ">": actual > self.value,
            "<": actual < self.value,
            "==": actual == self.value,
        }
        return ops[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class FairnessRule:
    """The largest gap allowed in ``metric`` between the groups of ``attribute``."""

    attribute: str
    metric: str
    max_gap: float


@dataclass(frozen=True)
class RegressionRule:
    """A metric that must not get worse than production's, and which way is better as the
    policy states it (``"max"``: higher, ``"min"``: lower; ``None``: the metric's name decides,
    see :func:`mlops_jupyter.capture.metric_values.lower_is_better`)."""

    metric: str
    direction: str | None = None


@dataclass(frozen=True)
class StageRules:
    signoffs: int = 0
    approvers: tuple[str, ...] = ()
    card_sections: tuple[str, ...] = ()
    data_hash: bool = False
    explanation: bool = False
    metrics: tuple[Threshold, ...] = ()
    no_regression: tuple[RegressionRule, ...] = ()
    drift: float | None = None
    fairness: FairnessRule | None = None


@dataclass(frozen=True)
class MonitoringRules:
    """When a production batch's features count as drifting (``[monitoring]`` in the policy).

    A feature's shift counts when its test finds it significant (p-value below ``p_value``);
    then it is ``drift`` from a PSI of ``psi_drift``, ``warn`` from ``psi_warn``. The batch is
    ``drift`` when at least ``drift_share`` of its features drift (or a feature is missing);
    ``warn`` when any feature warns, is new, has unseen categories or its missing rate moved
    by ``missing_rate`` or more.
    """

    psi_warn: float = 0.1
    psi_drift: float = 0.25
    p_value: float = 0.01
    drift_share: float = 0.5
    missing_rate: float = 0.05


@dataclass(frozen=True)
class Policy:
    source: str
    rules: dict[tuple[str, str], StageRules] = field(default_factory=dict)
    monitoring: MonitoringRules = MonitoringRules()

    def for_stage(self, tier: str, stage: str) -> StageRules:
        return self.rules.get((tier, stage), StageRules())


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None


def _expect(ok: bool, where: str, what: str, got: Any) -> None:
    if not ok:
        raise PolicyError(f"{where}: expected {what}, got {got!r}")


def parse_policy(data: dict[str, Any], source: str) -> Policy:
    """Validate a policy mapping (``{"tiers": {tier: {stage: {...}}}}``)."""
    from ..cards.model import HUMAN_SECTIONS

    tiers = data.get("tiers")
    _expect(isinstance(tiers, dict), f"{source}: tiers", "a table of risk tiers", tiers)
    assert isinstance(tiers, dict)
    rules: dict[tuple[str, str], StageRules] = {}
    for tier, stages in tiers.items():
        where = f"{source}: tiers.{tier}"
        _expect(tier in TIERS, where, f"a tier among {', '.join(TIERS)}", tier)
        _expect(isinstance(stages, dict), where, "a table of stages", stages)
        for stage, spec in stages.items():
            at = f"{where}.{stage}"
            _expect(stage in STAGES, at, f"a stage among {', '.join(STAGES)}", stage)
            _expect(isinstance(spec, dict), at, "a table of rules", spec)
            unknown = sorted(set(spec) - _FIELDS)
            _expect(
                not unknown,
                f"{at}.{unknown[0] if unknown else ''}",
                f"one of {', '.join(sorted(_FIELDS))}",
                unknown[0] if unknown else "",
            )
            rules[(tier, stage)] = _stage_rules(spec, at, set(HUMAN_SECTIONS))
    return Policy(source, rules, _monitoring(data.get("monitoring", {}), f"{source}: monitoring"))


_MONITORING_LIMITS = {
    "psi_warn": "a positive number (PSI at which a feature warns)",
    "psi_drift": "a positive number (PSI at which a feature drifts)",
    "p_value": "a number between 0 and 1 (test p-value below which a shift is significant)",
    "drift_share": "a number in (0, 1] (share of drifting features that makes a batch drift)",
    "missing_rate": "a number in (0, 1] (change of a feature's missing rate that warns)",
}


def _monitoring(spec: Any, at: str) -> MonitoringRules:
    _expect(isinstance(spec, dict), at, "a table of thresholds", spec)
    unknown = sorted(set(spec) - set(_MONITORING_LIMITS))
    _expect(
        not unknown,
        f"{at}.{unknown[0] if unknown else ''}",
        f"one of {', '.join(_MONITORING_LIMITS)}",
        unknown[0] if unknown else "",
    )
    values: dict[str, float] = {}
    for name, what in _MONITORING_LIMITS.items():
        value = spec.get(name, getattr(MonitoringRules, name))
        number = isinstance(value, int | float) and not isinstance(value, bool)
        ok = number and value > 0 and (name.startswith("psi") or value <= 1)
        if name == "p_value":
            ok = number and 0 < value < 1
        _expect(ok, f"{at}.{name}", what, value)
        values[name] = float(value)
    _expect(
        values["psi_warn"] <= values["psi_drift"],
        f"{at}.psi_warn",
        f"at most psi_drift ({values['psi_drift']:g})",
        values["psi_warn"],
    )
    return MonitoringRules(**values)


def _strings(spec: dict[str, Any], key: str, at: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    _expect(ok, f"{at}.{key}", "a list of non-empty strings", value)
    return tuple(value)


def _stage_rules(spec: dict[str, Any], at: str, sections: set[str]) -> StageRules:
    signoffs = spec.get("signoffs", 0)
    ok = isinstance(signoffs, int) and not isinstance(signoffs, bool) and signoffs >= 0
    _expect(ok, f"{at}.signoffs", "a non-negative integer", signoffs)
    card = _strings(spec, "card_sections", at)
    bad = [s for s in card if s not in sections]
    _expect(
        not bad,
        f"{at}.card_sections",
        f"section names among {', '.join(sorted(sections))}",
        bad[0] if bad else "",
    )
    for flag in ("data_hash", "explanation"):
        value = spec.get(flag, False)
        _expect(isinstance(value, bool), f"{at}.{flag}", "true or false", value)
    thresholds = []
    for text in _strings(spec, "metrics", at):
        match = _THRESHOLD.match(text)
        _expect(
            match is not None, f"{at}.metrics", "'METRIC OP NUMBER' (e.g. 'accuracy >= 0.9')", text
        )
        assert match is not None
        try:
            number = float(match.group(3))
        except ValueError:
            raise PolicyError(f"{at}.metrics: expected a number in {text!r}") from None
        thresholds.append(Threshold(match.group(1), match.group(2), number))
    drift = spec.get("drift")
    ok = drift is None or (
        isinstance(drift, int | float) and not isinstance(drift, bool) and drift > 0
    )
    _expect(ok, f"{at}.drift", "a positive number (largest PSI allowed)", drift)
    fairness = _fairness(spec["fairness"], f"{at}.fairness") if "fairness" in spec else None
    return StageRules(
        signoffs=signoffs,
        approvers=_strings(spec, "approvers", at),
        card_sections=card,
        data_hash=bool(spec.get("data_hash", False)),
        explanation=bool(spec.get("explanation", False)),
        metrics=tuple(thresholds),
        no_regression=_no_regression(spec.get("no_regression", []), f"{at}.no_regression"),
        drift=float(drift) if drift is not None else None,
        fairness=fairness,
    )


def _no_regression(spec: Any, at: str) -> tuple[RegressionRule, ...]:
    """``["val_auc", "rmse"]`` (the names decide which way is better) or
    ``{ val_auc = "max", train_time_s = "min" }`` (the policy does)."""
    if isinstance(spec, list):
        ok = all(isinstance(v, str) and v for v in spec)
        _expect(ok, at, "a list of non-empty metric names", spec)
        return tuple(RegressionRule(name) for name in spec)
    _expect(
        isinstance(spec, dict),
        at,
        'a list of metric names or a table of metric = "max" or "min"',
        spec,
    )
    rules = []
    for metric, direction in spec.items():
        _expect(bool(metric.strip()), at, "non-empty metric names", metric)
        _expect(
            direction in ("max", "min"),
            f"{at}.{metric}",
            '"max" (higher is better) or "min" (lower is better)',
            direction,
        )
        rules.append(RegressionRule(metric, direction))
    return tuple(rules)


def _fairness(spec: Any, at: str) -> FairnessRule:
    _expect(isinstance(spec, dict), at, "a table {attribute, metric, max_gap}", spec)
    unknown = sorted(set(spec) - {"attribute", "metric", "max_gap"})
    first = unknown[0] if unknown else ""
    _expect(not unknown, f"{at}.{first}", "one of attribute, metric, max_gap", first)
    attribute = spec.get("attribute")
    ok = isinstance(attribute, str) and bool(attribute.strip())
    _expect(ok, f"{at}.attribute", "a non-empty string (the column to group by)", attribute)
    metric = spec.get("metric")
    metrics = ", ".join(FAIRNESS_METRICS)
    _expect(metric in FAIRNESS_METRICS, f"{at}.metric", f"one of {metrics}", metric)
    gap = spec.get("max_gap")
    ok = isinstance(gap, int | float) and not isinstance(gap, bool) and gap >= 0
    _expect(ok, f"{at}.max_gap", "a number >= 0 (largest gap allowed between groups)", gap)
    return FairnessRule(str(attribute), str(metric), float(gap))


def default_policy() -> Policy:
    path = Path(__file__).with_name("default_policy.toml")
    return parse_policy(_load_toml(path), "the default policy")


def governance_dir(store_dir: Path) -> Path:
    """Where the policy lives, and beside it the allowed signers and the audit anchor: the
    store directory when it holds ``policy.toml`` (or no policy file exists), else the folder
    of the ``pyproject.toml`` carrying ``[tool.mlops-jupyter.policy]``."""
    if (store_dir / "policy.toml").is_file():
        return store_dir
    pyproject = store_dir.parent / "pyproject.toml"
    if pyproject.is_file():
        try:
            section = _load_toml(pyproject).get("tool", {}).get("mlops-jupyter", {})
        except PolicyError:
            return store_dir
        if "policy" in section:
            return store_dir.parent
    return store_dir


def load_policy(store_dir: Path) -> Policy:
    """The project's policy for the store in ``store_dir`` (see the module docstring)."""
    own = store_dir / "policy.toml"
    if own.is_file():
        return parse_policy(_load_toml(own), str(own))
    pyproject = store_dir.parent / "pyproject.toml"
    if pyproject.is_file():
        section = _load_toml(pyproject).get("tool", {}).get("mlops-jupyter", {}).get("policy")
        if section is not None:
            _expect(
                isinstance(section, dict),
                f"{pyproject}: tool.mlops-jupyter.policy",
                "a table",
                section,
            )
            return parse_policy(section, f"{pyproject} [tool.mlops-jupyter.policy]")
    return default_policy()
