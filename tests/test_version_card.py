"""The card of a registered version is the document of record: what its Governance section says
the gates found must hold for what the rest of the card shows (issue 16)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from monitoring_helpers import signers, tracked_training_run

from mlops_jupyter.cards.markdown import _md as md_escape
from mlops_jupyter.cards.model import ModelCard, build_card
from mlops_jupyter.registry.policy import parse_policy
from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store

REQUIRED = ["overview", "owners", "intended_use"]
POLICY = parse_policy(
    {
        "tiers": {
            "low": {
                "production": {
                    "signoffs": 1,
                    "card_sections": REQUIRED,
                    "data_hash": True,
                    "metrics": ["accuracy >= 0.6"],
                }
            }
        }
    },
    "test",
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return Store.open(tmp_path / ".mlops")


def text_of(page: str) -> str:
    """The card's HTML as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def assert_gates_hold_on_the_card(card: ModelCard) -> int:
    """Every gate result of the version's newest request (earlier ones judged the card as it
    was then), checked against the card's own content; the number of claims checked."""
    shown = text_of(card.to_html())
    checked = 0
    requests = (card.governance or {}).get("requests", [])
    for request in sorted(requests, key=lambda r: r["id"])[-1:]:
        for gate in request["gates"]:
            name, passed = gate["gate"], gate["passed"]
            if name == "card_sections":
                written = all(not card.sections[k].missing for k in REQUIRED)
                assert passed == written, (gate, {k: card.sections[k].content for k in REQUIRED})
                for key in REQUIRED:
                    section = card.sections[key]
                    assert (section.content or "").strip() in shown if written else True
            elif name == "data_hash":
                assert passed == bool(card.training_data)
                assert all(d.hash in shown for d in card.training_data)
            elif name.startswith("metric "):
                metric, op, number = name.split()[1:]
                value = card.run.metrics[metric]
                assert passed == (value >= float(number) if op == ">=" else value <= float(number))
                assert f"{value:.4g}"[:4] in shown
            else:
                raise AssertionError(f"gate {name} has no check here: add one")
            checked += 1
    return checked


def test_a_version_card_shows_the_sections_its_gate_judged(store: Store, tmp_path: Path) -> None:
    keys = signers(tmp_path / "keys", store.directory)
    run_id, _ = tracked_training_run(store)
    written = {
        "overview": "Scores customers by the chance they leave next month.",
        "owners": "Retention analytics <ret@example.com>",
        "intended_use": "Choosing whom to call first.",
    }
    for key, text in written.items():  # written on the run, before it was registered
        store.set_card_section(run_id, key, text, "ana")
    ana, bo = Registry(store, keys["ana"], POLICY), Registry(store, keys["bo"], POLICY)
    ana.register(run_id, "churn", risk_tier="low")

    # revisions written on the version win over the run's, on the card and at the gate alike
    store.set_card_section("churn:1", "owners", "Platform team <platform@example.com>", "bo")
    store.set_card_section("churn:1", "intended_use", "", "bo")  # cleared on the version
    blocked = ana.request_promotion("churn", 1, "production", "first try")
    assert [g.message for g in blocked.gates if not g.passed] == [
        "card sections not written: intended_use "
        "(write them with %model_card REF --edit or mlops-jupyter card-sections)"
    ]
    card = build_card("churn:1", store=store)
    assert card.sections["owners"].content == "Platform team <platform@example.com>"
    assert card.sections["owners"].written_on is None  # written on this version itself
    assert card.sections["overview"].written_on == run_id
    assert card.sections["intended_use"].missing
    assert assert_gates_hold_on_the_card(card) == 3

    store.set_card_section("churn:1", "intended_use", written["intended_use"], "bo")
    request = ana.request_promotion("churn", 1, "production", "first release")
    assert request.passed and bo.approve(request.id).status == "applied"
    card = build_card("churn:1", store=store)
    assert [card.sections[k].content for k in REQUIRED] == [
        written["overview"],
        "Platform team <platform@example.com>",
        written["intended_use"],
    ]
    shown = text_of(card.to_html())
    assert f"Written by ana on run {run_id[:8]}" in shown  # the overview, from the run
    assert "Not written yet" not in shown.split("Out-of-scope uses")[0]
    assert assert_gates_hold_on_the_card(card) == 3
    markdown = card.to_markdown()
    assert all(md_escape(card.sections[k].content or "") in markdown for k in REQUIRED)
