"""Monitoring production batches: drift statistics from stored profiles checked against scipy
on the raw data, batches recorded against registered versions on real stores (both engines),
the audit entry, the policy thresholds, the CLI's exit codes and the magic's HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from monitoring_helpers import in_production, tracked_training_run, training_frame
from scipy import special, stats

from mlops_jupyter.capture.hashing import hash_data
from mlops_jupyter.capture.profile import describe
from mlops_jupyter.cli import main as cli
from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import Signer, generate_key
from mlops_jupyter.monitoring import MonitoringError, record_batch
from mlops_jupyter.monitoring.drift import (
    CategoricalReference,
    NumericReference,
    category_counts,
    chi_squared,
    compare_feature,
    ks_test,
    numeric_psi,
    reference_of,
    status,
    worst,
)
from mlops_jupyter.monitoring.performance import performance, wilson
from mlops_jupyter.registry.audit import verify
from mlops_jupyter.registry.policy import (
    MonitoringRules,
    PolicyError,
    default_policy,
    load_policy,
    parse_policy,
)
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store

POLICY = parse_policy({"tiers": {"low": {"production": {"signoffs": 1}}}}, "test")
RULES = MonitoringRules()
# fine profiles: the CDF is exact at 21 edges and linear between them; the gap is widest in the
# tails (the 5 % between the minimum and the first edge), about 0.013 on normal data
KS_TOLERANCE = 0.02
COARSE_KS_TOLERANCE = 0.05  # old profiles: 7 points (min, 5 quantiles, max)


def column_profile(values: Any) -> tuple[dict[str, Any], int]:
    """The stored profile of one column and the row count, as ``%%track`` records them."""
    _, _, profile = describe(pd.DataFrame({"x": values}))
    return profile["columns"]["x"], profile["rows"]


def reference(values: Any) -> Any:
    column, rows = column_profile(values)
    return reference_of(column, rows - column["nulls"])


def independent_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI as the symmetrised Kullback-Leibler divergence, with scipy (shares at least 1e-4)."""
    e, a = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum(special.rel_entr(a, e) + special.rel_entr(e, a)))


# ------------------------------------------------------------------------------ profiles
def assert_exact_bins(bins: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """The bins are numpy's 21 quantiles (equal ones merged) and exact counts; the edges."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 21)))
    assert bins["edges"] == edges.tolist()
    assert bins["at"] == [int((values == e).sum()) for e in edges]
    assert bins["between"] == [
        int(((values > lo) & (values < hi)).sum())
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return edges


def test_profile_bins_count_every_value_at_and_between_the_edges() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([np.zeros(300), rng.normal(size=700)])  # 30 % exactly zero
    column, _ = column_profile(values)
    edges = assert_exact_bins(column["bins"], values)
    assert column["bins"]["at"][np.searchsorted(edges, 0.0)] == 300
    binary, _ = column_profile(np.array([0] * 70 + [1] * 30))
    bins = binary["bins"]  # an interpolated edge between 0 and 1 holds nothing
    assert (bins["edges"][0], bins["edges"][-1], bins["at"]) == (0.0, 1.0, [70, 0, 30])
    assert bins["between"] == [0, 0]
    constant, _ = column_profile(np.full(5, 2.5))
    assert constant["bins"] == {"edges": [2.5], "at": [5], "between": []}


@pytest.mark.parametrize(
    "kind", ["normal", "lognormal", "cauchy", "rounded", "zeros", "outliers", "huge", "tiny"]
)
def test_large_column_bins_are_numpys_quantiles_and_exact_counts(kind: str) -> None:
    rng = np.random.default_rng(len(kind))  # past 32,768 values: ranks found through buckets
    n = 200_003
    values = {
        "normal": lambda: rng.normal(size=n),
        "lognormal": lambda: rng.lognormal(10.5, 0.5, n),
        "cauchy": lambda: rng.standard_cauchy(n),
        "rounded": lambda: np.round(rng.normal(size=n), 2),  # ties at most edges
        "zeros": lambda: np.concatenate([np.zeros(n // 3), rng.normal(size=n - n // 3)]),
        "outliers": lambda: np.where(rng.random(n) < 0.01, 1e9, rng.random(n)),
        "huge": lambda: rng.exponential(size=n) * 1e300,  # differences overflow
        "tiny": lambda: -np.abs(rng.normal(size=n)) * 1e-300,
    }[kind]()
    column, _ = column_profile(values)
    quantiles = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert [column["quantiles"][str(q)] for q in (0.05, 0.25, 0.5, 0.75, 0.95)] == list(quantiles)
    assert_exact_bins(column["bins"], values)


def test_profile_keeps_up_to_50_category_counts_and_counts_the_rest() -> None:
    values = [f"c{i:02d}" for i in range(60) for _ in range(60 - i)]
    column, _ = column_profile(values)
    assert column["categories"][:2] == [["c00", 60], ["c01", 59]]
    assert len(column["categories"]) == 50
    assert column["other"] == sum(60 - i for i in range(50, 60))
    assert column["top"] == column["categories"][:5]  # the card's summary is unchanged


# ---------------------------------------------------------------------------- statistics
@pytest.mark.parametrize(
    ("psi_value", "p_value", "expected"),
    [
        (0.30, 0.001, "drift"),
        (0.25, 0.009, "drift"),
        (0.2499, 0.001, "warn"),
        (0.10, 0.001, "warn"),
        (0.0999, 0.001, "ok"),  # significant, too small to matter
        (0.30, 0.01, "ok"),  # not significant: noise, whatever the PSI
        (0.30, 0.50, "ok"),
        (0.30, float("nan"), "drift"),  # no test: PSI alone
    ],
)
def test_feature_status_at_the_policy_thresholds(
    psi_value: float, p_value: float, expected: str
) -> None:
    assert status(psi_value, p_value, RULES) == expected


def test_numeric_psi_and_ks_agree_with_scipy_on_the_raw_data() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(0.0, 1.0, 5000)
    same, shifted = rng.normal(0.0, 1.0, 2000), rng.normal(0.8, 1.0, 2000)
    ref = reference(train)
    assert isinstance(ref, NumericReference) and not ref.coarse and ref.n == 5000
    edges = np.quantile(train, np.linspace(0, 1, 21))
    expected = np.histogram(train, edges)[0] / len(train)
    for batch in (same, shifted):
        actual = np.histogram(np.clip(batch, edges[0], edges[-1]), edges)[0] / len(batch)
        assert numeric_psi(ref, batch) == pytest.approx(independent_psi(expected, actual), 1e-12)
        statistic, p = ks_test(ref, batch)
        assert statistic == pytest.approx(ks_at(edges, train, batch), abs=1e-12)
        full = stats.ks_2samp(train, batch).statistic  # the gap over every point
        assert full - KS_TOLERANCE <= statistic <= full
        assert p == pytest.approx(stats.kstwo.sf(statistic, round(5000 * 2000 / 7000)), 1e-12)
    column, rows = column_profile(train)
    calm = compare_feature("x", column, rows, pd.Series(same), RULES)
    moved = compare_feature("x", column, rows, pd.Series(shifted), RULES)
    assert (calm["status"], moved["status"]) == ("ok", "drift")
    assert calm["p_value"] > 0.01 > 1e-10 > moved["p_value"]
    assert moved["psi"] > RULES.psi_drift


def ks_at(points: np.ndarray, train: np.ndarray, batch: np.ndarray) -> float:
    """The two-sample KS gap over ``points`` (just below and at each), from the raw samples."""
    gaps = [
        max(
            abs((train < x).mean() - (batch < x).mean()),
            abs((train <= x).mean() - (batch <= x).mean()),
        )
        for x in points
    ]
    return float(max(gaps))


def test_an_unchanged_large_batch_is_not_made_significant_by_the_summary() -> None:
    rng = np.random.default_rng(21)  # 20 bins summarise 400,000 values: the test stays calibrated
    train, batch = rng.lognormal(10.5, 0.5, 400_000), rng.lognormal(10.5, 0.5, 400_000)
    statistic, p = ks_test(reference(train), batch)
    assert statistic <= stats.ks_2samp(train, batch).statistic
    assert p > 0.01
    moved = batch * 1.01  # a 1 % change of every value is found at this size
    assert ks_test(reference(train), moved)[1] < 1e-6


def test_ks_is_exact_on_discrete_data() -> None:
    rng = np.random.default_rng(3)  # each of 6 values holds more than a bin: each is an edge
    train = rng.integers(0, 6, 4000)
    batch = rng.choice(6, 1500, p=[0.1, 0.1, 0.2, 0.2, 0.2, 0.2])
    statistic, _ = ks_test(reference(train), batch.astype(float))
    assert statistic == pytest.approx(stats.ks_2samp(train, batch).statistic, abs=1e-12)


def test_chi_squared_matches_scipy_and_unseen_categories_are_reported() -> None:
    rng = np.random.default_rng(11)
    train = rng.choice(["basic", "plus", "pro"], 3000, p=[0.5, 0.3, 0.2])
    batch = rng.choice(["basic", "plus", "pro", "<enterprise>"], 1000, p=[0.4, 0.3, 0.2, 0.1])
    ref = reference(train)
    assert isinstance(ref, CategoricalReference) and ref.other == 0
    counts = category_counts(pd.Series(batch))
    statistic, p, unseen = chi_squared(ref, counts)
    known = pd.Series(train).value_counts()
    observed = np.array([(batch == k).sum() for k in known.index])
    scipy_result = stats.chisquare(observed, known.to_numpy() / 3000 * observed.sum())
    assert statistic == pytest.approx(scipy_result.statistic, rel=1e-12)
    assert p == pytest.approx(scipy_result.pvalue, rel=1e-9)
    assert unseen == {"<enterprise>": int((batch == "<enterprise>").sum())}
    column, rows = column_profile(train)
    result = compare_feature("plan", column, rows, pd.Series(batch), RULES)
    expected = np.append(known.to_numpy() / 3000, 0.0)
    actual = np.append(observed, unseen["<enterprise>"]) / len(batch)
    assert result["psi"] == pytest.approx(independent_psi(expected, actual), rel=1e-12)
    assert result["unseen"] == unseen and result["unseen_rows"] == unseen["<enterprise>"]
    assert result["status"] == "drift"


def scipy_decision(train: np.ndarray, batch: np.ndarray) -> str:
    """The policy's rule applied to numbers computed from the raw samples alone: PSI over the
    training data's 20 equal-frequency bins, and scipy's own test (the full two-sample KS for
    numbers, Pearson's chi-squared for categories)."""
    if train.dtype.kind in "fiu":
        edges = np.unique(np.quantile(train, np.linspace(0, 1, 21)))
        expected = np.histogram(train, edges)[0] / len(train)
        actual = np.histogram(np.clip(batch, edges[0], edges[-1]), edges)[0] / len(batch)
        p = stats.ks_2samp(train, batch, method="asymp").pvalue
    else:
        known = pd.Series(train).value_counts()
        observed = np.array([(batch == k).sum() for k in known.index])
        expected = np.append(known.to_numpy() / len(train), 0.0)
        actual = np.append(observed, len(batch) - observed.sum()) / len(batch)
        p = stats.chisquare(observed, known.to_numpy() / len(train) * observed.sum()).pvalue
    found = status(independent_psi(expected, actual), float(p), RULES)
    unseen = train.dtype.kind not in "fiu" and actual[-1] > 0
    return worst(found, "warn") if unseen else found  # a category training never had warns


SHIFTS: dict[str, tuple[Any, Any]] = {  # feature: (training sample, batch sample) makers
    "normal, unchanged": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1, n)),
    "normal, mean + 0.05 sd": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.05, 1, n)),
    "normal, mean + 0.4 sd": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.4, 1, n)),
    "normal, mean + 1 sd": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(1, 1, n)),
    "normal, sd x 1.6": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1.6, n)),
    "log-normal, unchanged": (
        lambda r, n: r.lognormal(10, 0.5, n),
        lambda r, n: r.lognormal(10, 0.5, n),
    ),
    "log-normal, x 1.5": (
        lambda r, n: r.lognormal(10, 0.5, n),
        lambda r, n: 1.5 * r.lognormal(10, 0.5, n),
    ),
    "Poisson counts, unchanged": (
        lambda r, n: r.poisson(3, n).astype(float),
        lambda r, n: r.poisson(3, n).astype(float),
    ),
    "Poisson counts, mean 3 -> 5": (
        lambda r, n: r.poisson(3, n).astype(float),
        lambda r, n: r.poisson(5, n).astype(float),
    ),
    "categories, unchanged": (
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    ),
    "categories, 50/30/20 -> 45/30/25": (
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.45, 0.3, 0.25]),
    ),
    "categories, 50/30/20 -> 20/30/50": (
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
    ),
    "categories, a new one in 10 %": (
        lambda r, n: r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        lambda r, n: r.choice(["a", "b", "c", "d"], n, p=[0.45, 0.27, 0.18, 0.1]),
    ),
}
EXPECTED = {  # what the shift is, by the policy's thresholds
    "normal, unchanged": "ok",
    "normal, mean + 0.05 sd": "ok",
    "normal, mean + 0.4 sd": "warn",
    "normal, mean + 1 sd": "drift",
    "normal, sd x 1.6": "drift",
    "log-normal, unchanged": "ok",
    "log-normal, x 1.5": "drift",
    "Poisson counts, unchanged": "ok",
    "Poisson counts, mean 3 -> 5": "drift",
    "categories, unchanged": "ok",
    "categories, 50/30/20 -> 45/30/25": "ok",
    "categories, 50/30/20 -> 20/30/50": "drift",
    "categories, a new one in 10 %": "warn",
}


@pytest.mark.parametrize("feature", list(SHIFTS))
def test_per_feature_decisions_agree_with_scipy_on_the_raw_data(feature: str) -> None:
    """The peer cross-check: Evidently does not import beside pandas 3, so each decision made
    from the stored profile is checked against one made from the raw samples with scipy (the
    Evidently comparison is in benchmarks/README.md)."""
    rng = np.random.default_rng(sorted(SHIFTS).index(feature))
    make_train, make_batch = SHIFTS[feature]
    train, batch = make_train(rng, 20_000), make_batch(rng, 5_000)
    column, rows = column_profile(train)
    ours = compare_feature(feature, column, rows, pd.Series(batch), RULES)["status"]
    assert (ours, scipy_decision(train, batch)) == (EXPECTED[feature], EXPECTED[feature])


def test_coarse_profiles_of_earlier_versions_still_compare_and_say_so() -> None:
    rng = np.random.default_rng(5)
    train, shifted = rng.normal(0, 1, 5000), rng.normal(0.8, 1, 2000)
    column, rows = column_profile(train)
    old = {k: v for k, v in column.items() if k != "bins"}
    ref = reference_of(old, rows)
    assert isinstance(ref, NumericReference) and ref.coarse and len(ref.edges) == 7
    statistic, _ = ks_test(ref, shifted)
    assert abs(statistic - stats.ks_2samp(train, shifted).statistic) <= COARSE_KS_TOLERANCE
    result = compare_feature("x", old, rows, pd.Series(shifted), RULES)
    assert result["coarse"] is True and result["status"] == "drift"
    plan, plan_rows = column_profile(rng.choice(list("abcdefg"), 1000))
    old_plan = {k: v for k, v in plan.items() if k not in ("categories", "other")}
    coarse = reference_of(old_plan, plan_rows)
    assert isinstance(coarse, CategoricalReference) and coarse.coarse
    assert coarse.n == 1000 and coarse.other == 1000 - sum(n for _, n in plan["top"])


def test_accuracy_interval_is_wilsons() -> None:
    truth = np.array([1] * 70 + [0] * 30)
    predicted = np.array([1] * 100)
    result = performance(truth, predicted, {"accuracy": 0.95})
    scipy_ci = stats.binomtest(70, 100).proportion_ci(method="wilson")
    accuracy = result["metrics"]["accuracy"]
    assert accuracy["value"] == 0.7
    assert accuracy["interval"] == pytest.approx([scipy_ci.low, scipy_ci.high], rel=1e-12)
    assert result["status"] == "warn"  # the training run's 0.95 is above the interval
    assert wilson(0, 0) == (0.0, 1.0)


# ------------------------------------------------------------------------------- policy
def test_monitoring_thresholds_default_and_are_validated(tmp_path: Path) -> None:
    assert default_policy().monitoring == MonitoringRules(0.1, 0.25, 0.01, 0.5, 0.05)
    tiers = {"low": {"production": {"signoffs": 1}}}
    custom = parse_policy({"tiers": tiers, "monitoring": {"psi_drift": 0.4}}, "t")
    assert custom.monitoring.psi_drift == 0.4 and custom.monitoring.psi_warn == 0.1
    for spec, message in [
        ({"psi_warn": -1}, "t: monitoring.psi_warn: expected a positive number"),
        ({"p_value": 1.5}, "t: monitoring.p_value: expected a number between 0 and 1"),
        ({"drift_share": "half"}, "t: monitoring.drift_share: expected a number in"),
        ({"psi_warn": 0.3}, r"t: monitoring.psi_warn: expected at most psi_drift \(0.25\)"),
        ({"psi": 0.1}, "t: monitoring.psi: expected one of psi_warn, psi_drift"),
    ]:
        with pytest.raises(PolicyError, match=message):
            parse_policy({"tiers": tiers, "monitoring": spec}, "t")
    store_dir = tmp_path / ".mlops"
    store_dir.mkdir()
    (store_dir / "policy.toml").write_text(
        "[tiers.low.production]\nsignoffs = 1\n[monitoring]\np_value = true\n"
    )
    with pytest.raises(PolicyError, match=r"policy.toml: monitoring.p_value: expected"):
        load_policy(store_dir)


# -------------------------------------------------------------------- recorded batches
@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Signer]:
    """ana and bo may sign; nobody's own key or agent is used by accident."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    made = {p: generate_key(tmp_path / "keys" / p, comment=p) for p in ("ana", "bo")}
    (tmp_path / ".mlops").mkdir(exist_ok=True)
    for person, signer in made.items():
        add_signer(tmp_path / ".mlops" / "allowed_signers", person, signer.key_blob)
    return made


def batch_of(rng: np.random.Generator, n: int = 1000, age_shift: float = 0.0) -> pd.DataFrame:
    batch = training_frame(rng, n)
    batch["age"] += age_shift
    return batch


def test_a_shifted_feature_drifts_an_unshifted_one_does_not_and_nothing_raw_is_stored(
    store: Store, keys: dict[str, Signer]
) -> None:
    in_production(store, keys)
    batch = batch_of(np.random.default_rng(42), age_shift=8.0)  # 0.8 standard deviations
    report = record_batch(Registry(store, keys["ana"], POLICY), "churn", batch)
    by_name = {f["feature"]: f for f in report.features}
    assert [f["feature"] for f in report.features] == ["age", "income", "plan"]
    assert (by_name["age"]["status"], by_name["income"]["status"]) == ("drift", "ok")
    assert by_name["plan"]["status"] == "ok" and "unseen" not in by_name["plan"]
    assert (report.ref, report.stage, report.rows) == ("churn:1", "production", 1000)
    assert report.drift_share == pytest.approx(1 / 3)
    assert report.decision == "warn"  # one feature of three: below the policy's share of 0.5
    [row] = store.monitor_batches("churn")
    assert row["batch_id"] == row["data_hash"] == hash_data(batch) == report.batch_id
    assert (row["version"], row["n_rows"], row["decision"]) == (1, 1000, "warn")
    assert row["features"] == report.features
    assert row["profile"]["rows"] == 1000 and set(row["profile"]["columns"]) == set(batch)
    assert row["thresholds"]["psi_drift"] == 0.25 and row["recorded_by"] == "ana"
    stored = json.dumps(row)
    assert str(batch["income"].iloc[17]) not in stored  # profiles, never rows
    entry = store.audit_entries()[-1]
    assert (entry[2], entry[3], entry[4]) == ("ana", "monitor", "churn:1")
    payload = json.loads(entry[5])
    assert (payload["batch"], payload["decision"], payload["drifting"]) == (
        report.id, "warn", ["age"])  # fmt: skip
    assert entry[8] is not None and report.signed and report.audit_entry == entry[0]
    assert verify(store, registry=Registry(store, keys["ana"], POLICY)).ok


def test_a_missing_column_is_a_schema_change_and_the_batch_drifts(
    store: Store, keys: dict[str, Signer]
) -> None:
    in_production(store, keys)
    batch = batch_of(np.random.default_rng(8)).drop(columns=["plan"]).assign(region="north")
    report = record_batch(Registry(store, keys["ana"], POLICY), "churn:1", batch)
    by_name = {f["feature"]: f for f in report.features}
    assert by_name["plan"] == {"feature": "plan", "kind": "schema", "schema": "missing",
                               "status": "drift", "note": "missing from this batch"}  # fmt: skip
    assert by_name["region"]["schema"] == "new" and by_name["region"]["status"] == "warn"
    assert report.decision == "drift"


def test_missing_rates_and_labels_with_the_registered_models_predictions(
    store: Store, keys: dict[str, Signer]
) -> None:
    in_production(store, keys)
    rng = np.random.default_rng(9)
    batch = batch_of(rng, 500)
    batch.loc[:99, "income"] = np.nan  # 20 % missing, none in training
    y_true = (rng.random(500) < 0.3).astype(int)
    report = record_batch(Registry(store, keys["ana"], POLICY), "churn", batch, y_true=y_true)
    income = next(f for f in report.features if f["feature"] == "income")
    assert income["missing"] == {"reference": 0.0, "batch": 0.2} and income["status"] == "warn"
    accuracy = report.performance["metrics"]["accuracy"]  # the model predicts 0 every time
    assert accuracy["value"] == float((y_true == 0).mean())
    assert accuracy["reference"] == 0.7 and accuracy["reference_metric"] == "accuracy"
    assert report.predictions["feature"] == "churned"  # against the training labels
    assert report.predictions["status"] == "drift" and report.decision == "drift"


def test_without_a_key_the_recorder_is_a_label_and_the_log_still_verifies(
    store: Store, keys: dict[str, Signer], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_production(store, keys)
    monkeypatch.setenv("MLOPS_JUPYTER_KEY", str(store.directory / "no-such-key"))
    registry = Registry(store, None, POLICY, label="nightly-job")
    report = record_batch(registry, "churn", batch_of(np.random.default_rng(4)))
    assert (report.recorded_by, report.signed) == ("nightly-job", False)
    entry = store.audit_entries()[-1]
    assert (entry[2], entry[3], entry[8]) == ("nightly-job", "monitor", None)
    result = verify(store, registry=registry)
    assert result.ok and result.labelled == 1


def test_bad_references_and_inputs_are_named(store: Store, keys: dict[str, Signer]) -> None:
    in_production(store, keys)
    registry = Registry(store, keys["ana"], POLICY)
    batch = batch_of(np.random.default_rng(2), 50)
    for model, stage, message in [
        ("nope", "production", "no model named 'nope' is registered .registered: churn."),
        ("churn", "staging", r"model churn has no version in staging \(its versions: 1 produc"),
        ("churn:7", "production", "no version 7 of model 'churn'"),
        ("churn", "live", "stage must be one of none, staging, production, archived"),
    ]:
        with pytest.raises(MonitoringError, match=message):
            record_batch(registry, model, batch, stage=stage)
    with pytest.raises(MonitoringError, match="predictions has 3 values, the batch has 50 rows"):
        record_batch(registry, "churn", batch, predictions=[0, 1, 0])
    with pytest.raises(MonitoringError, match="must be a table of features"):
        record_batch(registry, "churn", np.zeros((2, 2, 2)))
    assert store.monitor_batches("churn") == []


def second_version(store: Store, keys: dict[str, Signer]) -> int:
    """churn:2, retrained on another frame, registered (not promoted)."""
    run_id, _ = tracked_training_run(store, "churn", seed=99, accuracy=0.72)
    return Registry(store, keys["ana"], POLICY).register(run_id, "churn").version


def drifted(rng: np.random.Generator, n: int = 1000) -> pd.DataFrame:
    """A batch where age and income both drift (two features of three: the batch drifts)."""
    return batch_of(rng, n, age_shift=8.0).assign(income=lambda f: f.income * 1.5)


def test_labels_arriving_later_join_their_batch_by_its_id(
    store: Store, keys: dict[str, Signer]
) -> None:
    from mlops_jupyter.cards.monitoring import batch_summaries

    in_production(store, keys)
    registry = Registry(store, keys["ana"], POLICY)
    rng = np.random.default_rng(12)
    batch = batch_of(rng, 800)
    first = record_batch(registry, "churn", batch, batch_id="2026-w47")
    assert (first.kind, first.decision, first.performance) == ("batch", "ok", None)
    y = (rng.random(800) < 0.3).astype(int)
    predicted = np.where(rng.random(800) < 0.9, y, 1 - y)  # right nine times in ten
    labels = record_batch(registry, "churn", y_true=y, predictions=predicted, batch_id="2026-w47")
    hits = int((y == predicted).sum())
    accuracy = labels.performance["metrics"]["accuracy"]
    assert accuracy["value"] == hits / 800 and accuracy["interval"] == list(wilson(hits, 800))
    assert (labels.kind, labels.labels_for, labels.version, labels.rows) == (
        "labels", first.id, 1, 800)  # fmt: skip
    assert (labels.data_hash, labels.batch_id, labels.features) == (
        first.data_hash, "2026-w47", [])  # fmt: skip
    assert labels.decision == "ok" and repr(labels).endswith("labels for 2026-w47: ok>")
    payload = json.loads(store.audit_entries()[-1][5])
    assert (payload["labels_for"], payload["performance_status"]) == (first.id, "ok")
    # the same data again with labels: the registered model (always 0) predicts it
    again = record_batch(registry, "churn", batch, y_true=y, batch_id="2026-w47")
    assert again.kind == "labels" and again.labels_for == first.id
    assert again.performance["metrics"]["accuracy"]["value"] == float((y == 0).mean())
    assert again.predictions["status"] == "drift" and again.decision == "drift"
    [summary] = batch_summaries(store, "churn", 1)  # one batch, its latest labels merged
    assert (summary["batch_id"], summary["decision"], summary["rows"]) == ("2026-w47", "drift", 800)
    assert summary["performance"] == again.performance and summary["labels_at"] == again.created_at
    assert [r["kind"] for r in store.monitor_batches("churn")] == ["labels", "labels", "batch"]
    for call, message in [
        (lambda: record_batch(registry, "churn", y_true=y, predictions=predicted, batch_id="w99"),
         r"no batch 'w99' of model 'churn' is recorded \(recent batches: 2026-w47\)"),
        (lambda: record_batch(registry, "churn", y_true=y, batch_id="2026-w47"),
         "labels for batch '2026-w47': give the predictions churn:1 made for it"),
        (lambda: record_batch(registry, "churn", batch.iloc[:10], batch_id="2026-w47"),
         "batch '2026-w47' of churn was recorded at .* with other data"),
        (lambda: record_batch(registry, "churn", predictions=predicted),
         "give the batch's data, or labels for a recorded batch"),
    ]:  # fmt: skip
        with pytest.raises(MonitoringError, match=message):
            call()
    assert len(store.monitor_batches("churn")) == 3
    assert verify(store, registry=registry).ok


def test_a_batch_keeps_a_seeded_sample_only_when_asked(
    store: Store, keys: dict[str, Signer]
) -> None:
    from mlops_jupyter.monitoring import batch_sample

    in_production(store, keys)
    registry = Registry(store, keys["ana"], POLICY)
    batch = batch_of(np.random.default_rng(5), 400)
    kept = record_batch(registry, "churn", batch, keep_sample=25)
    seed = int(kept.data_hash.rpartition(":")[2][:16], 16)
    chosen = np.sort(np.random.default_rng(seed).choice(400, size=25, replace=False))
    expected = batch.iloc[chosen].reset_index(drop=True)
    pd.testing.assert_frame_equal(batch_sample(store, kept), expected)
    [row] = store.monitor_batches("churn")
    assert row["sample"] == kept.sample and kept.sample_rows == 25
    pd.testing.assert_frame_equal(batch_sample(store, row), expected)
    payload = json.loads(store.audit_entries()[-1][5])
    assert (payload["sample"], payload["sample_rows"]) == (kept.sample, 25)
    assert f"kept 25 rows as sample {kept.sample}" in repr(kept._repr_html_())
    plain = record_batch(registry, "churn", batch.iloc[:50])
    assert plain.sample is None and store.monitor_batches("churn")[0]["sample"] is None
    with pytest.raises(MonitoringError, match="this batch kept no sample of its rows"):
        batch_sample(store, plain)
    everything = record_batch(registry, "churn", batch.iloc[:30], keep_sample=1000)
    assert everything.sample_rows == 30 and len(batch_sample(store, everything)) == 30
    with pytest.raises(MonitoringError, match="keep_sample is a number of rows, not -1"):
        record_batch(registry, "churn", batch, keep_sample=-1)


def test_a_promotion_request_cites_the_drift_it_answers(
    store: Store, keys: dict[str, Signer]
) -> None:
    from mlops_jupyter.registry.registry import RegistryError

    in_production(store, keys)
    registry = Registry(store, keys["ana"], POLICY)
    rng = np.random.default_rng(31)
    calm = record_batch(registry, "churn", batch_of(rng, 300), batch_id="w47")
    shifted = record_batch(registry, "churn", drifted(rng), batch_id="w48")
    assert (calm.decision, shifted.decision) == ("ok", "drift")
    assert second_version(store, keys) == 2
    request = registry.request_promotion("churn", 2, "production", "retrained", answers=["w48"])
    cited = {
        "batch": shifted.id, "batch_id": "w48", "version": 1, "data_hash": shifted.data_hash,
        "decision": "drift", "drift_share": shifted.drift_share, "drifting": ["age", "income"],
        "recorded_at": shifted.created_at,
    }  # fmt: skip
    assert request.answers == [cited]
    assert Registry(store, keys["bo"], POLICY).request(request.id).answers == [cited]  # the log
    entry = next(e for e in reversed(store.audit_entries()) if e[3] == "request")
    assert json.loads(entry[5])["answers"] == [cited] and entry[8] is not None  # signed
    for answers, message in [
        (["w49"], r"no monitored batch 'w49' of model 'churn' to answer \(recent: w48, w47\)"),
        (["w47"], "batch 'w47' of churn:1 decided ok: there is no drift for a new version"),
    ]:
        with pytest.raises(RegistryError, match=message):
            registry.request_promotion("churn", 2, "staging", answers=answers)
    record_batch(registry, "churn:2", drifted(rng), batch_id="w50", stage="none")
    with pytest.raises(RegistryError, match="batch 'w50' was served by churn:2 itself"):
        registry.request_promotion("churn", 2, "staging", answers=["w50"])
    by_row = registry.request_promotion("churn", 2, "staging", answers=[shifted.id])
    assert by_row.answers == [cited]
    assert verify(store, registry=registry).ok


def test_the_version_card_has_a_monitoring_section(store: Store, keys: dict[str, Signer]) -> None:
    from mlops_jupyter.cards.model import build_card

    in_production(store, keys)
    registry = Registry(store, keys["ana"], POLICY)
    rng = np.random.default_rng(40)
    calm = batch_of(rng, 500)
    record_batch(registry, "churn", calm, batch_id="<b>w47</b>")
    y = (rng.random(500) < 0.3).astype(int)
    record_batch(registry, "churn", y_true=y, predictions=y, batch_id="<b>w47</b>")
    record_batch(registry, "churn", drifted(rng), batch_id="w48")
    card = build_card("churn:1", store=store)
    m = card.monitoring
    assert (m["batches"], m["counts"]) == (2, {"ok": 1, "warn": 0, "drift": 1})
    assert [b["batch_id"] for b in m["recent"]] == ["w48", "<b>w47</b>"]
    assert m["latest"]["drifting"] == ["age", "income"]
    assert m["thresholds"]["psi_drift"] == 0.25 and m["answers"] == []
    html = card.to_html()
    section = html[html.index("<h2>Monitoring</h2>") : html.index("<h2>Governance</h2>")]
    assert "2 batches recorded: 1 ok, 0 warn, 1 drift. Latest: <b>drift</b>" in section
    assert (
        "<td>&lt;b&gt;w47&lt;/b&gt;</td><td class='num'>500</td><td>ok</td><td>0%</td>" in section
    )
    assert "<td>age, income</td>" in section
    assert "accuracy 1 [0.992, 1] (n=500)" in section  # the labels that arrived later
    assert "significant (p-value below 0.01) and its PSI is ≥ 0.25 (warns from 0.1)" in section
    md = card.to_markdown()
    assert "## Monitoring\n" in md and "2 batches recorded: 1 ok, 0 warn, 1 drift." in md
    assert json.loads(card.to_json(extended=True))["mlops_jupyter"]["monitoring"]["batches"] == 2
    run_card = build_card(card.run.run_id, store=store)
    assert run_card.monitoring is None
    assert "this section appears on the card of <code>MODEL:VERSION</code>" in run_card.to_html()
    second_version(store, keys)
    registry.request_promotion("churn", 2, "production", answers=["w48"])
    answered = build_card("churn:2", store=store).to_html()
    assert "request #2 answers batch w48 of churn:1 (drift; age, income drifting; data " in answered
    assert "No production batch has been recorded for this version." in answered


@pytest.mark.slow
def test_a_batch_is_recorded_on_a_postgresql_store(
    pg_url: str, tmp_path: Path, keys: dict[str, Signer]
) -> None:
    with Store.open(pg_url, start=tmp_path) as store:
        in_production(store, keys)
        batch = batch_of(np.random.default_rng(42), age_shift=8.0)
        report = record_batch(Registry(store, keys["ana"], POLICY), "churn", batch)
        [row] = store.monitor_batches("churn", version=1)
        assert (row["decision"], row["n_rows"], row["features"]) == ("warn", 1000, report.features)
        assert store.audit_entries()[-1][3] == "monitor"
        registry = Registry(store, keys["ana"], POLICY)
        kept = record_batch(registry, "churn", batch.iloc[:100], keep_sample=7, batch_id="b")
        from mlops_jupyter.monitoring import batch_sample

        assert len(batch_sample(store, kept)) == 7
        y = np.zeros(100, dtype=int)
        labels = record_batch(registry, "churn", y_true=y, predictions=y, batch_id="b")
        assert (labels.kind, labels.labels_for) == ("labels", kept.id)
        assert [r["kind"] for r in store.monitor_batches("churn", batch_id="b")] == [
            "labels", "batch"]  # fmt: skip
        assert verify(store, registry=registry).ok
        with pytest.raises(Exception, match="monitored batches are append-only"):
            with store.transaction() as conn:
                conn.execute("UPDATE monitor_batches SET decision = 'ok'")


# ----------------------------------------------------------------------------- adapters
def test_cli_exit_codes_table_and_errors(
    store: Store,
    keys: dict[str, Signer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_production(store, keys)
    monkeypatch.setenv("MLOPS_JUPYTER_KEY", str(tmp_path / "keys" / "ana"))
    (store.directory / "policy.toml").write_text("[tiers.low.production]\nsignoffs = 1\n")
    rng = np.random.default_rng(21)
    calm, drifted = tmp_path / "calm.parquet", tmp_path / "drifted.csv"
    calm_frame = batch_of(rng).assign(label=(rng.random(1000) < 0.3).astype(int))
    calm_frame.to_parquet(calm)
    batch_of(rng, age_shift=8.0).assign(income=lambda f: f.income * 1.5).to_csv(
        drifted, index=False
    )
    base = ["--store", str(store.directory), "monitor"]
    assert cli([*base, "churn", str(calm), "--predictions", "label"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("churn:1 (production) batch mj1-blake3:")
    assert "1,000 rows: ok (0/3 features drifting)" in out.splitlines()[0]
    assert [line.split()[:3] for line in out.splitlines()[2:5]] == [
        ["age", "numeric", "ok"], ["income", "numeric", "ok"], ["plan", "categorical", "ok"]
    ]  # fmt: skip
    assert "audit entry" in out and "by ana (signed)" in out
    assert cli([*base, "churn:1", str(drifted)]) == 5
    assert ": drift (2/3 features drifting)" in capsys.readouterr().out
    for args, message in [
        (["nope", str(calm)], "no model named 'nope' is registered"),
        (["churn", str(calm), "--stage", "staging"], "model churn has no version in staging"),
        (["churn", str(tmp_path / "none.csv")], "cannot read .*none.csv: no such file"),
        (["churn", str(calm), "--labels", "y"], "--labels y: no such column in the file"),
    ]:
        assert cli([*base, *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("mlops-jupyter: error: ") and re.search(message, err), err
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    assert cli([*base, "churn", str(broken)]) == 1
    assert f"cannot read {broken}: " in capsys.readouterr().err
    # no --predictions: the registered model (always "0") predicts, and its predictions drift
    assert cli([*base, "churn", str(calm), "--json", "--labels", "label"]) == 5
    shown = json.loads(capsys.readouterr().out)
    assert shown["performance"]["metrics"]["accuracy"]["value"] == float(
        (calm_frame["label"] == 0).mean()
    )
    assert len(store.monitor_batches("churn")) == 3
    # labels that arrive later for a named batch, in a file of only labels and predictions
    named = tmp_path / "named.parquet"
    batch_of(rng, 200).to_parquet(named)
    assert cli([*base, "churn", str(named), "--batch-id", "w47", "--keep-sample", "20"]) == 0
    assert "kept 20 rows as sample " in capsys.readouterr().out
    later = tmp_path / "later.csv"
    pd.DataFrame({"y": np.zeros(200, dtype=int), "p": np.zeros(200, dtype=int)}).to_csv(
        later, index=False
    )
    assert (
        cli(
            [*base, "churn", str(later), "--labels", "y", "--predictions", "p", "--batch-id", "w47"]
        )
        == 5
    )  # fmt: skip  (all-zero predictions drift)
    out = capsys.readouterr().out
    assert out.startswith("churn:1 (production) labels for batch w47, 200 rows: drift")
    assert "accuracy 1 [0.981, 1]" in out
    assert cli([*base, "churn", str(later), "--labels", "y", "--predictions", "p"]) == 1
    assert "has no feature columns left: give --labels and --batch-id" in capsys.readouterr().err
    assert cli(["--store", str(store.directory), "audit", "verify"]) == 0


@pytest.mark.slow
def test_the_magic_shows_an_escaped_report(
    store: Store, keys: dict[str, Signer], tmp_path: Path
) -> None:
    from test_magics import Kernel

    in_production(store, keys)
    store.close()
    batch = batch_of(np.random.default_rng(6), 200)
    batch["plan"] = "<script>alert(1)</script>"
    batch.to_parquet(tmp_path / "batch.parquet")
    (tmp_path / "home").mkdir()
    kernel = Kernel(tmp_path, env={"HOME": str(tmp_path / "home"), "SSH_AUTH_SOCK": "",
                                   "MLOPS_JUPYTER_USER": "<b>ana</b>"})  # fmt: skip
    try:
        assert kernel.run("%load_ext mlops_jupyter")[0]["status"] == "ok"
        reply, outputs = kernel.run(
            "import pandas as pd\nX_batch = pd.read_parquet('batch.parquet')\n"
            "%monitor churn --data X_batch"
        )
        assert reply["status"] == "ok", outputs
        [result] = [o for o in outputs if o["type"] == "execute_result"]
        html = result["data"]["text/html"]
        assert "&lt;script&gt;alert(1)&lt;/script&gt; (200)" in html
        assert "&lt;b&gt;ana&lt;/b&gt; (label only, unsigned)" in html
        assert "<script>" not in html and "<b>ana" not in html
        assert [o for o in outputs if o["type"] == "stream"] == []  # nothing else printed
        reply, outputs = kernel.run("%monitor churn --data nothing_here")
        assert reply["status"] == "error"
        assert "--data nothing_here: no such variable in the notebook" in reply["evalue"]
    finally:
        kernel.shutdown()
    with Store.open(tmp_path / ".mlops") as reopened:
        [row] = reopened.monitor_batches("churn")
        assert row["recorded_by"] == "<b>ana</b>" and row["decision"] == "warn"
