"""The box at the top of a card: what a reviewer reads first, taken from the rest of the card
(never computed differently from the section it summarises)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ModelCard

# the logged metric a summary shows when no evaluation data was given, first found wins
PREFERRED = ("accuracy", "roc_auc", "auc", "f1", "r2", "rmse", "mae", "loss")


def first_sentence(text: str | None) -> str | None:
    """The first sentence (or line) of a written section, None when it is not written."""
    text = (text or "").strip()
    if not text:
        return None
    line = text.splitlines()[0].strip()
    end = line.find(". ")
    return line[: end + 1] if end >= 0 else line


def headline(card: ModelCard) -> dict[str, Any] | None:
    """The headline metric: from the evaluation numbers (with interval and n) when the card was
    built with the evaluation data, else the run's logged value of a familiar metric."""
    e = card.evaluation
    if e is not None:
        metric = e.metrics[e.headline]
        return {
            "metric": e.headline,
            "value": metric["value"],
            "interval": metric["interval"],
            "n": e.n,
            "source": "evaluation data",
        }
    metrics = card.run.metrics
    if not metrics:
        return None
    name = next((m for m in PREFERRED if m in metrics), sorted(metrics)[0])
    rows = next((d.shape[0] for d in card.evaluation_data if d.shape), None)
    return {"metric": name, "value": metrics[name], "interval": None, "n": rows, "source": "logged"}


def signoff_status(card: ModelCard) -> str:
    """The newest promotion request in words: who signed off, or what it waits for."""
    governance = card.governance or {}
    if card.version is None:
        return "not registered: sign-offs are on a version's card"
    requests = governance.get("requests") or []
    if not requests:
        return "no promotion requested"
    newest = max(requests, key=lambda r: r["id"])
    approved = [s for s in newest["signoffs"] if s.get("decision", "approve") == "approve"]
    verified = [s for s in approved if s.get("verified")]
    who = ", ".join(str(s.get("principal")) for s in approved) or "nobody yet"
    checked = f" ({len(verified)} of {len(approved)} signatures verified)" if approved else ""
    status = f"request #{newest['id']} to {newest['to']}: {newest['status']}"
    return f"{status}; signed off by {who}{checked}"


def summary(card: ModelCard) -> dict[str, Any]:
    """Purpose, owner, stage, risk tier, headline metric, data hashes and sign-off status."""
    governance = card.governance or {}
    owners = (card.sections["owners"].content or "").strip()
    return {
        "purpose": first_sentence(card.sections["overview"].content),
        "owner": owners.splitlines()[0].strip() if owners else None,
        "stage": governance.get("stage") if card.version else None,
        "risk_tier": governance.get("risk_tier"),
        "headline": headline(card),
        "training_data": [(d.variable, d.hash) for d in card.training_data],
        "evaluation_data": [(d.variable, d.hash) for d in card.evaluation_data],
        "signoffs": signoff_status(card),
    }


def headline_text(h: dict[str, Any] | None) -> str:
    """``accuracy 0.835, 95 % interval [0.81, 0.86], n = 1,000``."""
    if h is None:
        return "no metric recorded"
    text = f"{h['metric']} {h['value']:.3g}"
    if h["interval"]:
        low, high = h["interval"]
        text += f", 95 % interval [{low:.3g}, {high:.3g}]"
    if h["n"]:
        text += f", n = {h['n']:,}"
    if h["source"] == "logged":
        text += " (as logged; pass the evaluation data for an interval)"
    return text
