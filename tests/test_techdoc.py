"""EU AI Act technical documentation (Annex IV) of a registered version, filled from the store:
every value recomputed from what was tracked, signed and monitored; every gap named."""

from __future__ import annotations

import ast
import html
import platform
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from monitoring_helpers import signers

import mlops_jupyter as mj
from mlops_jupyter import hash_data
from mlops_jupyter.capture.cell_source import analyse
from mlops_jupyter.cards.evaluation import short
from mlops_jupyter.cards.html import _time
from mlops_jupyter.cards.model import build_card
from mlops_jupyter.cards.techdoc import (
    ANNEX_IV,
    AnnexPoint,
    Facts,
    Heading,
    Table,
    TechDoc,
    Text,
    ToWrite,
    Written,
    build_techdoc,
)
from mlops_jupyter.cli import main as cli
from mlops_jupyter.monitoring import record_batch
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store
from mlops_jupyter.tracker import Tracker, TrackOptions

SOURCE = 'frame = pd.read_csv("customers.csv")\n'
POLICY = """
[tiers.low.production]
signoffs = 1
data_hash = true
metrics = ["accuracy >= 0.5"]

[monitoring]
psi_warn = 0.15
psi_drift = 0.3
p_value = 0.02
drift_share = 0.4
missing_rate = 0.1
"""
HOSTILE = "<script>alert(1)</script>"
TITLES = {
    1: "A general description of the AI system",
    2: "A detailed description of the elements of the AI system and of the process for its "
    "development",
    3: "Detailed information about the monitoring, functioning and control of the AI system",
    4: "A description of the appropriateness of the performance metrics for the specific AI system",
    5: "A detailed description of the risk management system in accordance with Article 9",
    6: "A description of relevant changes made by the provider to the system through its lifecycle",
    7: "A list of the harmonised standards applied in full or in part",
    8: "A copy of the EU declaration of conformity referred to in Article 47",
    9: "A detailed description of the system in place to evaluate the AI system performance in "
    "the post-market phase in accordance with Article 72, including the post-market monitoring "
    "plan",
}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    opened = Store.open(tmp_path / ".mlops")
    (opened.directory / "policy.toml").write_text(POLICY)
    try:
        yield opened
    finally:
        opened.close()


def tracked_run(store: Store, workdir: Path) -> dict[str, Any]:
    """A logistic regression trained on a CSV file read in the tracked cell (so the data links
    to its source file), with its evaluation data, as ``%%track`` records it."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    n = 400
    made = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "income": rng.normal(50_000, 8_000, n).round(0),
            "region": rng.integers(0, 2, n),
        }
    )
    made["churned"] = ((made["age"] < 38) ^ (rng.random(n) < 0.1)).astype(int)
    made.to_csv(workdir / "customers.csv", index=False)
    frame = pd.read_csv(workdir / "customers.csv")
    features = ["age", "income", "region"]
    X_test, y_test = frame[features][300:], frame["churned"][300:]
    model = LogisticRegression(max_iter=1000).fit(frame[features][:300], frame["churned"][:300])
    tracker = Tracker(store.directory)
    ctx = tracker.begin(TrackOptions(experiment="churn", shap=False), source=SOURCE)
    ctx.log_params({"C": 1.0, "max_iter": 1000})
    ctx.log_data(frame, "train", "frame")
    ctx.log_data(X_test, "eval", "X_test")
    ctx.log_data(y_test, "eval", "y_test")
    ctx.log_metric("accuracy", float(model.score(X_test, y_test)))
    ctx.log_model(model)
    tracker.finish(ctx, facts=analyse(ast.parse(SOURCE)), workdir=str(workdir))
    tracker.close()
    return {"run_id": ctx.run_id, "frame": frame, "X_test": X_test, "y_test": y_test,
            "model": model}  # fmt: skip


@pytest.fixture
def released(store: Store, tmp_path: Path) -> dict[str, Any]:
    """churn:1 registered and requested by ana, approved by bo, one batch monitored."""
    made = tracked_run(store, tmp_path)
    keys = signers(tmp_path / "keys", store.directory)
    ana, bo = Registry(store, keys["ana"]), Registry(store, keys["bo"])
    ana.register(made["run_id"], "churn", risk_tier="low")
    request = ana.request_promotion("churn", 1, "production", "first release")
    approved = bo.approve(request.id, "gates checked <b>ok</b>")
    assert approved.status == "applied"
    batch = record_batch(ana, "churn", made["frame"][200:])
    return {**made, "keys": keys, "request": request, "batch": batch}


def text_of(page: str) -> str:
    """HTML as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def point(doc: TechDoc, number: int) -> AnnexPoint:
    return next(p for p in doc.points if p.number == number)


def table_after(p: AnnexPoint, first_column: str) -> Table:
    return next(b for b in p.blocks if isinstance(b, Table) and b.header[0] == first_column)


def facts_of(p: AnnexPoint) -> dict[str, Any]:
    return {k: v for b in p.blocks if isinstance(b, Facts) for k, v in b.rows}


def test_every_annex_iv_point_with_its_number_and_title(
    store: Store, released: dict[str, Any]
) -> None:
    doc = build_techdoc(build_card("churn:1", store=store))
    assert [(p.number, p.title) for p in doc.points] == list(TITLES.items()) == list(ANNEX_IV)
    shown, markdown = text_of(doc.to_html()), doc.to_markdown()
    for number, title in TITLES.items():
        assert f"{number}. {title}" in shown
        assert f"\n## {number}. {title}\n" in markdown
    assert shown.index("9. A detailed description") < shown.index(
        "What a person still has to write"
    )
    letters = [b.text[:3] for b in point(doc, 2).blocks if isinstance(b, Heading) and b.level == 3]
    assert letters == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)", "(h)"]


def test_values_are_the_stores(store: Store, released: dict[str, Any], tmp_path: Path) -> None:
    doc = build_techdoc(build_card("churn:1", store=store))
    keys, run_id = released["keys"], released["run_id"]
    general = facts_of(point(doc, 1))
    assert general["Registered by"] == f"ana (key {keys['ana'].fingerprint})"
    assert (general["Stage"], general["Risk tier"], general["Run"]) == ("production", "low", run_id)
    assert general["Model class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert general["Python"] == platform.python_version()

    development = point(doc, 2)
    facts = [dict(b.rows) for b in development.blocks if isinstance(b, Facts)]
    data = {f["Content hash"]: f for f in facts if "Content hash" in f}
    frame, X_test, y_test = released["frame"], released["X_test"], released["y_test"]
    assert data[hash_data(frame)] == {
        "Role": "train", "Content hash": hash_data(frame), "Kind": "DataFrame",
        "Shape": "400 x 4", "Source file": "customers.csv",
        "Source file hash": hash_data(tmp_path / "customers.csv"),
    }  # fmt: skip
    assert data[hash_data(X_test)]["Shape"] == "100 x 3"
    assert data[hash_data(y_test)]["Role"] == "eval"
    profile = table_after(development, "column")
    assert profile.rows[0][:5] == ["age", "float64", 0, frame["age"].min(), frame["age"].max()]
    assert any(b == Text("The code of the tracked cell, as it ran:") for b in development.blocks)
    assert table_after(development, "parameter").rows == [["C", 1.0, "api"],
                                                          ["max_iter", 1000, "api"]]  # fmt: skip

    request = released["request"]  # the gates as the registry ran them, and bo's signed approval
    assert table_after(development, "gate").rows == [
        [g.gate, "pass" if g.passed else "FAIL", g.message] for g in request.gates
    ]
    assert [g.gate for g in request.gates] == ["data_hash", "metric accuracy >= 0.5"]
    signoff = Registry(store).checked().requests[request.id].signoffs[0]
    assert table_after(development, "sign-off by").rows == [
        ["bo", keys["bo"].fingerprint, "approve", "verified", _time(signoff.time),
         "gates checked <b>ok</b>"]
    ]  # fmt: skip
    assert facts_of(development)["Audit log head at export"] == store.audit_head()

    history = Registry(store).history("churn")
    changes = table_after(point(doc, 6), "#")
    assert changes.rows == [
        [h["seq"], _time(h["ts"]), h["actor"], h["action"], "verified"] for h in history
    ]
    assert [row[3] for row in changes.rows] == [
        "register", "request", "approve", "transition", "monitor"
    ]  # fmt: skip

    post_market = point(doc, 9)
    assert facts_of(post_market) == {
        "A feature's shift counts when its test's p-value is below": 0.02,
        "It drifts from a PSI of": 0.3,
        "It warns from a PSI of": 0.15,
        "A batch drifts when this share of its features drift": 0.4,
        "A batch warns when a feature's missing rate moves by": 0.1,
    }
    decision = released["batch"].decision
    counts = {d: int(decision == d) for d in ("ok", "warn", "drift")}
    assert (
        Text(
            f"1 batch recorded: {counts['ok']} ok, {counts['warn']} warn, {counts['drift']} drift; "
            f"the latest: {decision}, {_time(released['batch'].created_at)}."
        )
        in post_market.blocks
    )

    shown = text_of(doc.to_html())  # the rendered page says the same
    for value in (
        hash_data(frame),
        hash_data(tmp_path / "customers.csv"),
        keys["bo"].fingerprint,
        store.audit_head(),
        "gates checked <b>ok</b>",
    ):
        assert value in shown and value in html.unescape(doc.to_markdown())  # fmt: skip


def test_written_sections_go_where_they_belong_and_leave_the_missing_list(
    store: Store, released: dict[str, Any]
) -> None:
    before = build_techdoc(build_card("churn:1", store=store))
    intended = (1, "(a) Intended purpose, in the card's Intended use section: Primary uses and "
                   "users the model is built for.")  # fmt: skip
    assert intended in before.missing
    written = {
        "intended_use": "Choosing whom to call first.",
        "caveats": "Retrain every quarter.",
        "ethical_considerations": "Age is protected: results are reported per region.",
    }
    for key, text in written.items():
        store.set_card_section("churn:1", key, text, "ana")
    after = build_techdoc(build_card("churn:1", store=store))
    placed = {b.section.key: p.number for p in after.points for b in p.blocks
              if isinstance(b, Written)}  # fmt: skip
    assert placed == {"intended_use": 1, "caveats": 3, "ethical_considerations": 3}
    assert intended not in after.missing
    assert len(after.missing) == len(before.missing) - 3
    revisions = table_after(point(after, 6), "section").rows
    assert [row[:3] for row in revisions] == [
        ["Intended use", 1, "ana"], ["Ethical considerations", 1, "ana"],
        ["Caveats and recommendations", 1, "ana"],
    ]  # fmt: skip


def test_the_missing_list_names_what_a_person_must_write(
    store: Store, released: dict[str, Any]
) -> None:
    doc = build_techdoc(build_card("churn:1", store=store))
    assert [n for n, _ in doc.missing] == [1] * 12 + [2] * 8 + [3] * 5 + [4, 5, 6, 7, 8, 9]
    for item in [
        (1, "(e) the hardware on which the system is intended to run"),
        (2, "(h) the cybersecurity measures put in place for the system as deployed"),
        (3, "the human oversight measures (Article 14), including the technical measures that "
            "help deployers interpret the outputs"),
        (5, "the risk management system (Article 9): how known and foreseeable risks are "
            "identified, estimated, evaluated and treated through the lifecycle, and the "
            "residual risks accepted"),
        (8, "a copy of the EU declaration of conformity (Article 47)"),
    ]:  # fmt: skip
        assert item in doc.missing
    assert point(doc, 7).blocks == [ToWrite(doc.missing[-3][1])]
    assert doc.missing[-3][1].startswith("the harmonised standards applied in full or in part")
    page = doc.to_html()
    closing = page.split("What a person still has to write")[1]
    assert closing.count("<li>") == len(doc.missing) == 31
    assert f"<li>Point 8: {html.escape(doc.missing[-2][1])}</li>" in closing
    assert page.count("To be written by a person:") == 31
    assert doc.to_markdown().count("> **To be written by a person:**") == 31
    assert repr(doc) == "<TechDoc churn:1: Annex IV points 1-9, 31 items to be written by a person>"


def test_evaluation_data_adds_intervals_and_results_per_group(
    store: Store, released: dict[str, Any]
) -> None:
    store.set_card_section("churn:1", "sensitive_column", "region: 0=north, 1=south", "ana")
    X_test, y_test, model = released["X_test"], released["y_test"], released["model"]
    doc = mj.techdoc("churn:1", eval_data=(X_test, y_test), store=store)
    groups = table_after(point(doc, 3), "region")
    predicted = model.predict(X_test)
    expected = []
    for code, name in ((0, "north"), (1, "south")):
        mask = (X_test["region"] == code).to_numpy()
        accuracy = float((predicted[mask] == y_test.to_numpy()[mask]).mean())
        expected.append([name, int(mask.sum()), short(accuracy)])
    assert [row[:3] for row in groups.rows] == expected
    assert groups.header == ["region", "rows", "accuracy", "95 % interval", "TPR", "FPR"]
    overall = table_after(point(doc, 2), "metric")
    accuracy = float((predicted == y_test.to_numpy()).mean())
    assert overall.header == ["metric", "value", "steps"]  # as logged ...
    assert overall.rows == [["accuracy", accuracy, 1]]
    recomputed = next(b for b in point(doc, 2).blocks
                      if isinstance(b, Table) and b.header[2] == "95 % interval")  # fmt: skip
    assert recomputed.rows[0][:2] == ["accuracy", short(accuracy)]  # ... and recomputed
    assert (
        Text(
            "Recomputed on the 100 evaluation rows (their hash checked against the run's): 95 % "
            "percentile bootstrap intervals, 1,000 resamples, seed 0."
        )
        in point(doc, 2).blocks
    )
    assert not any("groups of persons it is used on" in what for _, what in doc.missing)


def test_html_is_self_contained_and_escapes_stored_text(
    store: Store, released: dict[str, Any]
) -> None:
    store.set_card_section("churn:1", "caveats", HOSTILE, "ana")
    store.set_card_section("churn:1", "owners", "<img src=x onerror=alert(2)>", "ana")
    doc = build_techdoc(build_card("churn:1", store=store))
    page = doc.to_html()
    assert "<script" not in page and "<img" not in page and "onerror=alert(2)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;ok&lt;/b&gt;" in page  # bo's comment, as typed
    csp = re.compile(r"<meta http-equiv='Content-Security-Policy'[^>]*>")
    assert csp.findall(page) == csp.findall(build_card("churn:1", store=store).to_html())
    assert len(csp.findall(page)) == 1
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    markdown = doc.to_markdown()
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    embedded = doc._repr_html_()
    assert embedded.startswith("<div class='mlops-jupyter-card'>") and "<script" not in embedded


def test_only_a_registered_version_is_documented(store: Store, released: dict[str, Any]) -> None:
    run_id = released["run_id"]
    message = (
        f"technical documentation is written for a registered model version (MODEL:VERSION), "
        f"and '{run_id[:8]}' is not one: register the run first (mlops-jupyter register RUN "
        "MODEL, or mj.register(run_id, MODEL)), then document MODEL:VERSION"
    )
    with pytest.raises(ValueError) as raised:
        mj.techdoc(run_id[:8], store=store)
    assert str(raised.value) == message
    with pytest.raises(ValueError, match="register the run first"):
        build_techdoc(build_card(run_id, store=store))


def test_cli_writes_html_and_markdown_and_refuses_a_run_id(
    store: Store, released: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--store", str(store.directory)]
    for name, start in (("doc.html", "<!DOCTYPE html>"), ("doc.md", "# Technical documentation")):
        assert cli(["techdoc", "churn:1", "-o", str(tmp_path / name), *where]) == 0
        assert capsys.readouterr().out == (
            f"wrote {tmp_path / name} (Annex IV points 1-9; 31 items to be written by a person)\n"
        )
        assert (tmp_path / name).read_text().startswith(start)
    assert (
        cli(["techdoc", "churn:1", "-o", str(tmp_path / "doc.txt"), "--format", "md", *where]) == 0
    )
    assert (tmp_path / "doc.txt").read_text().startswith("# Technical documentation: churn:1")
    capsys.readouterr()
    for args, message in [
        (["techdoc", released["run_id"], "-o", str(tmp_path / "run.html")],
         "technical documentation is written for a registered model version (MODEL:VERSION)"),
        (["techdoc", "churn:1", "-o", str(tmp_path / "doc.json")],
         "cannot write technical documentation with the file name 'doc.json': name the file "
         ".html or .md, or choose with --format html|md"),
    ]:  # fmt: skip
        assert cli([*args, *where]) == 1
        out = capsys.readouterr()
        assert out.out == "" and out.err.startswith(f"mlops-jupyter: error: {message}")
    assert not (tmp_path / "run.html").exists() and not (tmp_path / "doc.json").exists()


def test_the_model_card_magic_shows_and_writes_it(
    store: Store, released: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from mlops_jupyter.magics import model_card_magic
    from mlops_jupyter.tracker import UsageError

    tracker = Tracker(store.directory)
    shown: list[Any] = []
    monkeypatch.setattr("mlops_jupyter.magics._extension", None)
    monkeypatch.setattr("mlops_jupyter.magics.Tracker", lambda: tracker)
    monkeypatch.setattr("IPython.display.display", shown.append)  # the frontend's seam
    try:
        assert model_card_magic("churn:1 --techdoc") is None
        target = tmp_path / "out" / "churn-1.md"
        target.parent.mkdir()
        assert model_card_magic(f"churn:1 --techdoc -o {target}") is None
        with pytest.raises(ValueError, match="register the run first"):
            model_card_magic(f"{released['run_id']} --techdoc")
        with pytest.raises(UsageError, match="--techdoc and --edit do not go together"):
            model_card_magic("churn:1 --techdoc --edit")
    finally:
        tracker.close()
    assert [type(d) for d in shown] == [TechDoc, TechDoc]
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert target.read_text() == shown[1].to_markdown()
    assert "1. A general description of the AI system" in text_of(shown[0]._repr_html_())
