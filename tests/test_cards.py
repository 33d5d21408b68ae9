"""Model cards: content equals the store, gaps are reported, output is safe and valid."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_jupyter import api, hash_data
from mlops_jupyter.cards.model import HUMAN_SECTIONS, build_card
from mlops_jupyter.cli import main as cli
from mlops_jupyter.store import Store
from mlops_jupyter.tracker import Tracker

PAYLOAD = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
SECTIONS = {
    "overview": "Flags customers likely to churn.",
    "owners": "Data Science <ds@example.com>\nRisk Office <risk@example.com>",
    "license": "MIT",
    "intended_use": "Prioritising retention calls.",
    "out_of_scope": "Pricing decisions.",
    "factors": "Plan and region.",
    "ethical_considerations": "Age is a protected attribute: monitored per group",
    "caveats": "Retrain quarterly.",
    "sensitive_column": "region",
}


def schema_path() -> Path:
    """The Model Card Toolkit schema v0.0.2, vendored with its provenance (data/mct/SOURCE.md)."""
    return Path(__file__).parent / "data" / "mct" / "model_card.schema.json"


def make_run(store_dir: Path, *, name: str = "churn", evil: bool = False) -> dict[str, Any]:
    """A real run through the script API: data, model, metrics, SHAP (30 features)."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    columns = [f"f{i}" for i in range(28)] + ["region", PAYLOAD if evil else "score_band"]
    X = pd.DataFrame(rng.random((400, 30)), columns=columns)
    X["region"] = rng.choice([0, 1, 2], 400).astype(float)
    y = (X["f0"] + X["f1"] > 1).astype(int)
    X_train, X_test, y_train, y_test = X.iloc[:300], X.iloc[300:], y.iloc[:300], y.iloc[300:]
    model = RandomForestClassifier(n_estimators=30, max_depth=4, random_state=0)
    model.fit(X_train, y_train)
    tracker = Tracker(store_dir)
    params = {"n_estimators": 30, "max_depth": 4}
    if evil:
        params[PAYLOAD] = PAYLOAD
    ctx = tracker.begin(api.TrackOptions(experiment=PAYLOAD if evil else "churn", name=name))
    ctx.log_params(params)
    ctx.log_metric("accuracy", float(model.score(X_test, y_test)))
    ctx.log_metric(PAYLOAD if evil else "val_loss", 0.25)
    ctx.log_data(X_train, "train", "X_train")
    ctx.log_data(y_train, "train", "y_train")
    ctx.log_data(X_test, "eval", "X_test")
    ctx.log_data(y_test, "eval", "y_test")
    ctx.log_model(model)
    ctx.explain(model, X_test)
    tracker.finish(ctx)
    assert tracker.wait(timeout=120)
    tracker.close()
    return dict(run_id=ctx.run_id, X_test=X_test, y_test=y_test, model=model, X_train=X_train)


@pytest.fixture
def store_with_run(tmp_path: Path) -> Iterator[tuple[Store, dict[str, Any]]]:
    made = make_run(tmp_path / ".mlops")
    with Store.open(tmp_path / ".mlops", create=False) as store:
        yield store, made


def test_card_content_equals_the_store(store_with_run: tuple[Store, dict[str, Any]]) -> None:
    store, made = store_with_run
    run = store.get_run(made["run_id"])
    card = build_card(made["run_id"][:8], store=store)
    page = card.to_html()
    for key, value in run.params.items():
        assert f"<td>{html.escape(key)}</td><td>{html.escape(str(value))}</td>" in page
    for key, value in run.metrics.items():
        assert f"<td>{html.escape(key)}</td><td class='num'>{value:.6g}</td>" in page
    for d in run.datasets:
        assert d.hash in page
    assert hash_data(made["X_test"]) in page
    extended = json.loads(card.to_json(extended=True))
    assert extended["mlops_jupyter"]["params"] == run.params
    assert {d["hash"] for d in extended["mlops_jupyter"]["data"]} == {d.hash for d in run.datasets}
    mct = extended["model_card"]
    assert {
        m["type"]: float(m["value"]) for m in mct["quantitative_analysis"]["performance_metrics"]
    } == run.metrics
    assert mct["model_parameters"]["model_architecture"] == (
        "sklearn.ensemble._forest.RandomForestClassifier"
    )
    assert card.run.explanation is not None and card.run.explanation.status == "ok"
    mean_abs = card.run.explanation.mean_abs
    assert isinstance(mean_abs, dict) and len(mean_abs) == 2  # a binary model
    first, second = (np.asarray(v, dtype=float) for v in mean_abs.values())
    assert np.allclose(first, second)  # which is why one chart is enough
    assert page.count("<svg") == 1 and "<figcaption>Class 1" in page
    assert "Binary model: the other class's importances are the same." in page


def test_completeness_reports_every_gap(store_with_run: tuple[Store, dict[str, Any]]) -> None:
    store, made = store_with_run
    card = build_card(made["run_id"], store=store)
    required = [title for title, needed, _ in HUMAN_SECTIONS.values() if needed]
    assert card.completeness == {
        "complete": False,
        "filled": 3,
        "required": len(required) + 3,
        "gaps": required,
    }
    page = card.to_html()
    # six text sections show a gap box; owners and license are fields of the details table
    assert page.count("<b>Not written yet.</b>") == 6
    assert page.count("— (not written yet)") == 3  # and the owner in the summary
    assert "— (the overview is not written yet)" in page
    for key, text in SECTIONS.items():
        store.set_card_section(made["run_id"], key, text, "reviewer")
    done = build_card(made["run_id"], store=store)
    assert done.completeness["complete"] is True
    assert "Not written yet" not in done.to_html()
    assert "Written by reviewer" in done.to_html()


def test_sections_are_versioned(store_with_run: tuple[Store, dict[str, Any]]) -> None:
    store, made = store_with_run
    assert store.set_card_section(made["run_id"], "overview", "first", "ana") == 1
    assert store.set_card_section(made["run_id"], "overview", "second", "bo") == 2
    history = store.card_section_history(made["run_id"], "overview")
    assert [(h["content"], h["author"], h["revision"]) for h in history] == [
        ("first", "ana", 1),
        ("second", "bo", 2),
    ]
    assert build_card(made["run_id"], store=store).sections["overview"].content == "second"


def test_mct_json_validates_against_the_schema(
    store_with_run: tuple[Store, dict[str, Any]],
) -> None:
    import jsonschema

    store, made = store_with_run
    schema = json.loads(schema_path().read_text())
    empty = json.loads(build_card(made["run_id"], store=store).to_json())
    jsonschema.validate(empty, schema)
    for key, text in SECTIONS.items():
        store.set_card_section(made["run_id"], key, text, "reviewer")
    full = json.loads(build_card(made["run_id"], store=store).to_json())
    jsonschema.validate(full, schema)
    assert full["model_details"]["owners"] == [
        {"name": "Data Science", "contact": "ds@example.com"},
        {"name": "Risk Office", "contact": "risk@example.com"},
    ]
    assert full["model_details"]["licenses"] == [{"identifier": "MIT"}]
    assert full["considerations"]["ethical_considerations"] == [
        {"name": "Age is a protected attribute", "mitigation_strategy": "monitored per group"}
    ]
    assert all(
        isinstance(m["value"], str) for m in full["quantitative_analysis"]["performance_metrics"]
    )


def test_markdown_front_matter(store_with_run: tuple[Store, dict[str, Any]]) -> None:
    store, made = store_with_run
    run = store.get_run(made["run_id"])
    text = build_card(made["run_id"], store=store).to_markdown()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    results = front["model-index"][0]["results"][0]
    assert {m["type"]: m["value"] for m in results["metrics"]} == run.metrics
    assert results["dataset"] == {
        "name": "X_test",
        "type": "X_test",
        "split": "evaluation",
        "revision": hash_data(made["X_test"]),
    }
    assert "# Model card for churn" in text


def test_hugging_face_parses_the_markdown_card(
    store_with_run: tuple[Store, dict[str, Any]],
) -> None:
    from huggingface_hub import ModelCard

    store, made = store_with_run
    logged = ModelCard(build_card(made["run_id"], store=store).to_markdown())
    assert {r.metric_type: r.metric_value for r in logged.data.eval_results} == (
        store.get_run(made["run_id"]).metrics
    )
    card = build_card(made["run_id"], store=store, eval_data=(made["X_test"], made["y_test"]))
    parsed = ModelCard(card.to_markdown())
    assert card.evaluation is not None
    [result, *_] = parsed.data.eval_results
    assert (parsed.data.model_name, result.task_type) == ("churn", "tabular-classification")
    assert (result.dataset_name, result.dataset_split) == ("X_test", "evaluation")
    assert result.dataset_revision == hash_data(made["X_test"])
    values = {r.metric_type: r.metric_value for r in parsed.data.eval_results}
    assert values == {k: m["value"] for k, m in card.evaluation.metrics.items()}
    low, high = card.evaluation.metrics["accuracy"]["interval"]
    names = {r.metric_type: r.metric_name for r in parsed.data.eval_results}
    assert names["accuracy"] == f"accuracy (95 % interval [{low:.3g}, {high:.3g}], n=100)"


def bootstrap(truth: np.ndarray, predicted: np.ndarray, metric: Any, seed: Any) -> list[float]:
    """The 95 % percentile interval of 1,000 resamples drawn at once with ``seed``."""
    idx = np.random.default_rng(seed).integers(0, len(truth), size=(1000, len(truth)))
    values = np.array([metric(truth[i], predicted[i]) for i in idx], dtype=float)
    return list(np.percentile(values[~np.isnan(values)], [2.5, 97.5]))


def test_reviewer_grade_numbers_are_recomputed_independently(
    store_with_run: tuple[Store, dict[str, Any]],
) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

    store, made = store_with_run
    store.set_card_section(made["run_id"], "sensitive_column", "region", "reviewer")
    X, y = made["X_test"], made["y_test"]
    card = build_card(made["run_id"], store=store, eval_data=(X, y))
    e = card.evaluation
    assert e is not None and (e.task, e.n, e.seed, e.resamples) == ("classification", 100, 0, 1000)
    truth, predicted = y.to_numpy(), made["model"].predict(X)

    def fpr(t: np.ndarray, p: np.ndarray) -> float:
        return float(((p == 1) & (t == 0)).sum() / (t == 0).sum()) if (t == 0).any() else np.nan

    def tpr(t: np.ndarray, p: np.ndarray) -> float:
        return float(recall_score(t, p, zero_division=np.nan))

    expected = {
        "accuracy": accuracy_score,
        "tpr": tpr,
        "fpr": fpr,
        "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
    }
    assert list(e.metrics) == list(expected)
    for name, metric in expected.items():
        assert e.metrics[name]["value"] == pytest.approx(metric(truth, predicted), abs=1e-12)
        interval = bootstrap(truth, predicted, metric, 0)
        assert e.metrics[name]["interval"] == pytest.approx(interval, abs=1e-12), name
    assert (e.labels, e.positive) == (["0", "1"], "1")
    assert e.confusion == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()
    [g] = card.group_metrics
    region = X["region"].to_numpy()
    assert list(g.counts) == ["0.0", "1.0", "2.0"]
    for i, value in enumerate([0.0, 1.0, 2.0]):
        mask = region == value
        name = str(value)
        assert g.counts[name] == int(mask.sum())
        assert g.groups[name] == pytest.approx(accuracy_score(truth[mask], predicted[mask]))
        assert g.rates["tpr"][name] == pytest.approx(tpr(truth[mask], predicted[mask]))
        assert g.rates["fpr"][name] == pytest.approx(fpr(truth[mask], predicted[mask]))
        own = bootstrap(truth[mask], predicted[mask], accuracy_score, [0, i])
        assert g.intervals[name] == pytest.approx(own, abs=1e-12)
    assert g.rate_gap("fpr") == pytest.approx(
        max(g.rates["fpr"].values()) - min(g.rates["fpr"].values())
    )
    page = card.to_html()
    accuracy = e.metrics["accuracy"]
    low, high = accuracy["interval"]
    assert (
        f"accuracy {accuracy['value']:.3g}, 95 % interval [{low:.3g}, {high:.3g}], n = 100" in page
    )
    best = max(g.groups, key=g.groups.__getitem__)
    assert f"<mark>{g.groups[best]:.3g}</mark>" in page
    assert "1,000 resamples, seed 0" in page
    import jsonschema

    mct = json.loads(card.to_json())
    jsonschema.validate(mct, json.loads(schema_path().read_text()))
    performance = mct["quantitative_analysis"]["performance_metrics"]
    overall = next(m for m in performance if m.get("slice") == "all evaluation rows (n=100)")
    assert overall["type"] == "accuracy"
    bounds = overall["confidence_interval"]
    assert (float(bounds["lower_bound"]), float(bounds["upper_bound"])) == pytest.approx(
        (low, high), rel=1e-6
    )
    sliced = {m.get("slice") for m in performance if m["type"] == "fpr"}
    assert sliced == {"all evaluation rows (n=100)"} | {
        f"region={k} (n={g.counts[k]})" for k in g.counts
    }
    markdown = card.to_markdown()
    [[tn, fp], [fn, tp]] = e.confusion
    assert f"| true 0 | {tn} | {fp} |" in markdown and f"| true 1 | {fn} | {tp} |" in markdown
    assert "## Summary" in markdown and "n = 100" in markdown
    with pytest.raises(ValueError, match="not the evaluation data"):
        build_card(made["run_id"], store=store, eval_data=(made["X_train"], y))


def test_a_curve_is_an_svg_chart_with_its_numbers_in_words(tmp_path: Path) -> None:
    from mlops_jupyter.cards.html import MAX_CURVE_POINTS, curve_points

    loss = [1.0 / (1 + step / 20) for step in range(200)]
    loss[150] = 3.5  # a spike
    tracker = Tracker(tmp_path / ".mlops")
    ctx = tracker.begin(api.TrackOptions(experiment="curves", name="c", shap=False))
    for value in loss:
        ctx.log_metric("loss", value)
    tracker.finish(ctx)
    tracker.close()
    with Store.open(tmp_path / ".mlops", create=False) as store:
        page = build_card(ctx.run_id, store=store).to_html()
    low = min(range(200), key=lambda i: loss[i])
    said = (
        f"200 values from step 0 to 199: first 1, lowest {loss[low]:.6g} at step {low}, "
        f"highest 3.5 at step 150, last {loss[199]:.6g}"
    )
    assert f"<figcaption>loss: {said}.</figcaption>" in page
    [points] = re.findall(r"<polyline class='curve' points='([^']+)'", page)
    assert len(points.split()) == 200
    assert "<details class='screen'>" in page and "details.screen { display: none; }" in page
    long = [float(i % 97) for i in range(10_000)]
    long[6_543] = 1e6
    thinned = curve_points([float(i) for i in range(10_000)], long)
    assert len(thinned) <= MAX_CURVE_POINTS + 2 and (6_543.0, 1e6) in thinned
    assert thinned[0] == (0.0, 0.0) and thinned[-1] == (9_999.0, float(9_999 % 97))


def test_the_sensitive_column_section_names_its_codes() -> None:
    from mlops_jupyter.cards.model import _named, sensitive_column

    assert sensitive_column("region") == ("region", {})
    assert sensitive_column(" region: 0=north, 1 = south\n2=east ") == (
        "region",
        {"0": "north", "1": "south", "2": "east"},
    )
    names = sensitive_column("region: 0=north, 1=south")[1]
    assert [_named(v, names) for v in (0, 1.0, "1", 7, None)] == [
        "north",
        "south",
        "south",
        7,
        None,
    ]


def test_a_regressors_numbers_and_residuals() -> None:
    from sklearn.metrics import mean_absolute_error, r2_score

    from mlops_jupyter.cards.evaluation import evaluate

    rng = np.random.default_rng(8)
    truth = rng.normal(10, 2, 500)
    predicted = truth + rng.normal(0.3, 1, 500)
    e = evaluate(truth, predicted, classifier=False, seed=7, resamples=1000)
    assert (e.task, e.n, e.confusion, e.headline) == ("regression", 500, None, "mae")
    rmse = lambda t, p: float(np.sqrt(np.mean((p - t) ** 2)))  # noqa: E731
    for name, metric in {"mae": mean_absolute_error, "rmse": rmse, "r2": r2_score}.items():
        assert e.metrics[name]["value"] == pytest.approx(metric(truth, predicted), rel=1e-12)
        interval = bootstrap(truth, predicted, metric, 7)
        assert e.metrics[name]["interval"] == pytest.approx(interval, rel=1e-9), name
    error = predicted - truth
    assert e.residuals == pytest.approx(
        {
            "mean": error.mean(),
            "std": error.std(ddof=1),
            "p05": np.quantile(error, 0.05),
            "median": np.median(error),
            "p95": np.quantile(error, 0.95),
            "max_abs": np.abs(error).max(),
        }
    )


def test_save_picks_the_format_from_the_suffix(
    store_with_run: tuple[Store, dict[str, Any]], tmp_path: Path
) -> None:
    store, made = store_with_run
    card = build_card(made["run_id"], store=store)
    assert card.save(tmp_path / "c.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads(card.save(tmp_path / "c.json").read_text())["schema_version"] == "0.0.2"
    assert card.save(tmp_path / "c.md").read_text().startswith("---\n")
    with pytest.raises(ValueError, match=r"the file name 'c.txt': .* with format='html'"):
        card.save(tmp_path / "c.txt")


def test_a_typical_card_is_small(store_with_run: tuple[Store, dict[str, Any]]) -> None:
    store, made = store_with_run
    page = build_card(made["run_id"], store=store).to_html()
    assert len(page.encode()) < 1_000_000
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)  # nothing to fetch


def test_cli_card_and_sections(
    store_with_run: tuple[Store, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, made = store_with_run
    source = tmp_path / "sections.yaml"
    source.write_text(yaml.safe_dump(SECTIONS))
    assert (
        cli(
            [
                "--store",
                str(store.directory),
                "card-sections",
                made["run_id"][:6],
                "--from",
                str(source),
                "--author",
                "ci",
            ]
        )
        == 0
    )
    assert build_card(made["run_id"], store=store).sections["owners"].author == "ci"
    out = tmp_path / "card.html"
    assert cli(["card", made["run_id"][:6], "-o", str(out), "--store", str(store.directory)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    printed = capsys.readouterr().out
    assert f"wrote {out} (10/10 parts; complete)" in printed
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: [1, 2]\n")
    assert (
        cli(["card-sections", made["run_id"], "--from", str(bad), "--store", str(store.directory)])
        == 1
    )
    assert "unknown section(s) nonsense" in capsys.readouterr().err


# ------------------------------------------------------------------ in a real browser
@pytest.mark.browser
def test_payloads_never_execute_and_nothing_is_fetched(tmp_path: Path) -> None:
    from conftest import skip_or_fail

    chromium = os.environ.get("MLOPS_JUPYTER_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        skip_or_fail("Chromium not found (apt-get install chromium)")
    made = make_run(tmp_path / ".mlops", name=PAYLOAD, evil=True)
    with Store.open(tmp_path / ".mlops", create=False) as store:
        for key in SECTIONS:
            store.set_card_section(made["run_id"], key, PAYLOAD, PAYLOAD)
        card = build_card(made["run_id"], store=store)
    path = card.save(tmp_path / "card.html")
    page_text = path.read_text()
    assert "<script" not in page_text and "<img" not in page_text
    assert page_text.count(html.escape(PAYLOAD)) >= 10  # shown, as text, everywhere it was put

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        requests: list[str] = []
        dialogs: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("script").count() == 0
        assert page.locator("img").count() == 0
        assert page.locator("h1").inner_text() == f"Model card: {PAYLOAD}"
        browser.close()
    assert dialogs == []
    assert requests == [path.as_uri()]  # the file itself, and nothing else


# ------------------------------------------------------- reference notebook, nbconvert
@pytest.mark.slow
def test_reference_notebook_and_the_nbconvert_exporter(tmp_path: Path) -> None:
    import subprocess
    import sys

    import jsonschema
    import nbformat
    from test_notebooks import execute

    nb = execute("model_card.ipynb", tmp_path)
    with Store.open(tmp_path / ".mlops", create=False) as store:
        [run_id] = list(store.runs()["run_id"])
        card = build_card(run_id, store=store)
    assert card.completeness["complete"] is True
    assert card.sections["owners"].author == "reference-notebook"
    written = json.loads((tmp_path / "churn_card.json").read_text())
    jsonschema.validate(written, json.loads(schema_path().read_text()))
    metrics = written["quantitative_analysis"]["performance_metrics"]
    assert metrics[0] == {"type": "accuracy", "value": str(card.run.metrics["accuracy"])}
    regions = ["north", "south", "east", "west"]  # the codes 0-3, named in the card section
    assert {m["slice"].split(" (n=")[0] for m in metrics[1:]} == {"all evaluation rows"} | {
        f"region={name}" for name in regions
    }
    assert written["model_details"] == json.loads(card.to_json())["model_details"]
    # the notebook saved its card with the evaluation data (per-group metrics); the magic not
    assert "Largest gap between groups" in (tmp_path / "churn_card.html").read_text()
    magic_page = (tmp_path / "churn_card_magic.html").read_text()
    assert run_id in magic_page and "Largest gap" not in magic_page
    assert (tmp_path / "churn_card.md").read_text().startswith("---\n")

    nbformat.write(nb, tmp_path / "model_card.ipynb")
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "model_card", "model_card.ipynb"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = (tmp_path / "model_card.cards.html").read_text()
    assert out.count("<article") == 1 and run_id in out
    assert "<iframe sandbox" in out  # the notebook appendix cannot run scripts
    outside_appendix = re.sub(r'srcdoc="[^"]*"', "", out)
    assert "<script" not in outside_appendix


def test_the_edit_form_saves_changed_sections_only(
    store_with_run: tuple[Store, dict[str, Any]],
) -> None:
    from mlops_jupyter.widgets.card_editor import CardEditor

    store, made = store_with_run
    editor = CardEditor(build_card(made["run_id"], store=store), store, "editor")
    assert set(editor.areas) == set(HUMAN_SECTIONS)
    editor.areas["factors"].value = "Region <and> plan."
    editor.areas["caveats"].value = "Retrain quarterly."
    assert editor.save() == ["factors", "caveats"]
    assert editor.status.value == "Saved: Factors, Caveats and recommendations"
    assert editor.save() == []  # nothing changed since
    card = build_card(made["run_id"], store=store)
    assert (card.sections["factors"].content, card.sections["factors"].author) == (
        "Region <and> plan.",
        "editor",
    )
    assert "Region &lt;and&gt; plan." in card.to_html()


def test_per_group_metrics_on_polars_evaluation_data(tmp_path: Path) -> None:
    import polars as pl
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.random((300, 4)), columns=["a", "b", "c", "region"])
    frame["region"] = rng.choice(["north", "south", "west"], 300)
    y = (frame["a"] + frame["b"] > 1).astype(int)
    X = frame.assign(region=frame["region"].map({"north": 0.0, "south": 1.0, "west": 2.0}))
    X_train, X_test = pl.from_pandas(X.iloc[:200]), pl.from_pandas(X.iloc[200:])
    y_train, y_test = pl.Series("y", y.iloc[:200]), pl.Series("y", y.iloc[200:])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    tracker = Tracker(tmp_path / ".mlops")
    ctx = tracker.begin(api.TrackOptions(experiment="polars", name="pl"))
    for obj, role, name in [(X_train, "train", "X_train"), (y_train, "train", "y_train"),
                            (X_test, "eval", "X_test"), (y_test, "eval", "y_test")]:  # fmt: skip
        ctx.log_data(obj, role, name)
    ctx.log_model(model)
    tracker.finish(ctx)
    tracker.close()
    with Store.open(tmp_path / ".mlops", create=False) as store:
        store.set_card_section(ctx.run_id, "sensitive_column", "region", "reviewer")
        [group] = build_card(ctx.run_id, store=store, eval_data=(X_test, y_test)).group_metrics
    predictions = model.predict(X_test)
    region, truth = X_test["region"].to_numpy(), y_test.to_numpy()
    assert group.groups == {
        str(v): float((predictions[region == v] == truth[region == v]).mean())
        for v in (0.0, 1.0, 2.0)
    }
    assert group.counts == {str(v): int((region == v).sum()) for v in (0.0, 1.0, 2.0)}


@pytest.mark.browser
def test_printed_to_pdf_no_page_ends_on_a_heading(
    store_with_run: tuple[Store, dict[str, Any]], tmp_path: Path
) -> None:
    import io

    import pypdf
    from conftest import skip_or_fail
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("MLOPS_JUPYTER_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        skip_or_fail("Chromium not found (apt-get install chromium)")
    store, made = store_with_run
    for key, text in SECTIONS.items():
        store.set_card_section(made["run_id"], key, text, "reviewer")
    store.set_card_section(made["run_id"], "sensitive_column", "region: 0=north, 1=south", "r")
    card = build_card(made["run_id"], store=store, eval_data=(made["X_test"], made["y_test"]))
    path = card.save(tmp_path / "card.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri())
        headings = {h.strip() for h in page.locator("h2, h3").all_inner_texts()}
        assert page.locator("script").count() == 0
        pdf = page.pdf(format="A4")
        browser.close()
    assert requests == [path.as_uri()]
    pages = [
        [line.strip() for line in p.extract_text().splitlines() if line.strip()]
        for p in pypdf.PdfReader(io.BytesIO(pdf)).pages
    ]
    assert len(pages) >= 2 and {"Summary", "Intended use", "By region"} <= headings
    for number, lines in enumerate(pages[:-1], 1):
        assert lines and lines[-1] not in headings, f"page {number} ends on {lines[-1]!r}"
    first = next(i for i, lines in enumerate(pages) if "Intended use" in lines)
    appendix = next(i for i, lines in enumerate(pages) if "Appendix: hyperparameters" in lines)
    assert first <= 1 < appendix  # the uses come first; the hyperparameters at the end
    assert pages[0][0] == "Model card: churn" and "Summary" in pages[0]  # read first
