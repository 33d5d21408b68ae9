"""Markdown in the Hugging Face model card layout, with YAML front matter (``model-index``)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from .evaluation import interval_text, short

if TYPE_CHECKING:
    from .model import ModelCard, Section


def _md(text: Any) -> str:
    """Plain text safe in Markdown: no raw HTML, no accidental emphasis or links."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]#|":
        out = out.replace(ch, "\\" + ch)
    return out


def _section(section: Section) -> str:
    if section.missing:
        return f"> **Not written yet.** {_md(section.hint)}\n"
    return _md(str(section.content).strip()) + "\n"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = [_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def _front_matter(card: ModelCard) -> str:
    import yaml

    run = card.run
    licence = card.sections["license"]
    # the evaluation features (2-D) name the dataset, not predictions or labels
    eval_data = sorted(card.evaluation_data, key=lambda d: len(d.shape or []) != 2)
    task = (
        "tabular-classification"
        if any(k.startswith(("acc", "f1", "roc", "precision", "recall")) for k in run.metrics)
        else "tabular-regression"
    )
    meta: dict[str, Any] = {
        "library_name": "sklearn" if (card.model_class or "").startswith("sklearn") else "other",
        "tags": ["mlops-jupyter", "tabular"],
    }
    if not licence.missing:
        meta["license"] = str(licence.content).strip().lower()
    metrics = [
        {"type": k, "name": k, "value": float(v)}
        for k, v in sorted(run.metrics.items())
        if math.isfinite(float(v))
    ]
    e = card.evaluation
    if e is not None:  # recomputed on the hash-checked evaluation data: these, not the logged
        task = f"tabular-{e.task}"
        metrics = [
            {"type": k, "name": f"{k} (95 % interval {interval_text(m['interval'])}, n={e.n})",
             "value": m["value"]}
            for k, m in e.metrics.items()
            if math.isfinite(m["value"])
        ]  # fmt: skip
    variable = eval_data[0].variable if eval_data else "unrecorded"
    dataset = {"name": variable, "type": variable, "split": "evaluation"}
    if eval_data:
        dataset["revision"] = eval_data[0].hash  # the content hash names the exact rows
    meta["model-index"] = [
        {
            "name": card.model_name,
            "results": [{"task": {"type": task}, "dataset": dataset, "metrics": metrics}],
        }
    ]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _monitoring(card: ModelCard) -> list[str]:
    from .monitoring import BATCH_COLUMNS, batch_rows

    m = card.monitoring
    if m is None:
        return []
    out = ["## Monitoring\n"]
    for a in m["answers"]:
        drifting = ", ".join(a["drifting"]) or "no feature"
        out.append(
            f"Request #{a['request']} answers batch `{_md(a['batch_id'][:24])}` of "
            f"{_md(card.model_name)}:{a['version']} ({a['decision']}; {_md(drifting)} drifting).\n"
        )
    if not m["batches"]:
        return [*out, "No production batch has been recorded for this version.\n"]
    c = m["counts"]
    out.append(
        f"{m['batches']} batches recorded: {c['ok']} ok, {c['warn']} warn, {c['drift']} drift.\n"
    )
    rows = batch_rows(m, _utc)
    header = ["when (UTC)", *BATCH_COLUMNS]
    return [*out, _table(header, rows)]


def _summary(card: ModelCard) -> list[str]:
    from .summary import headline_text, summary

    s = summary(card)

    def hashes(items: list[tuple[str, str]]) -> str:  # digests are hex: safe in code spans
        return "; ".join(f"{_md(name)} `{digest}`" for name, digest in items) or "none"

    rows = [
        ["Purpose", s["purpose"] or "— (the overview is not written yet)"],
        ["Owner", s["owner"] or "— (not written yet)"],
        ["Stage", s["stage"] or ("not registered" if card.version is None else "none")],
        ["Risk tier", s["risk_tier"] or "—"],
        ["Headline metric", headline_text(s["headline"])],
        ["Sign-off", s["signoffs"]],
    ]
    return [
        "## Summary\n",
        _table(["", ""], rows),
        f"Training data: {hashes(s['training_data'])}.\n",
        f"Evaluation data: {hashes(s['evaluation_data'])}.\n",
    ]


def _evaluation(card: ModelCard) -> list[str]:
    """Metrics with intervals, the confusion matrix or residuals, per-group results."""
    e = card.evaluation
    if e is None:
        return []
    out = [
        f"#### On the evaluation data (n = {e.n:,}; 95 % percentile bootstrap, "
        f"{e.resamples:,} resamples, seed {e.seed})\n",
        _table(
            ["metric", "value", "95 % interval"],
            [[k, short(m["value"]), interval_text(m["interval"])] for k, m in e.metrics.items()],
        ),
    ]
    if e.confusion is not None:
        out.append("#### Confusion matrix (rows: true class, columns: predicted)\n")
        header = ["", *(f"predicted {label}" for label in e.labels)]
        rows = [[f"true {label}", *row] for label, row in zip(e.labels, e.confusion, strict=True)]
        out.append(_table(header, rows))
    if e.residuals is not None:
        out.append("#### Residuals (predicted − true)\n")
        out.append(_table(["statistic", "value"], [[k, short(v)] for k, v in e.residuals.items()]))
    for g in card.group_metrics:
        rates = list(g.rates)
        gaps = ", ".join(
            [f"{g.metric} {short(g.gap)}", *(f"{r.upper()} {short(g.rate_gap(r))}" for r in rates)]
        )
        out.append(f"#### By {_md(g.column)} (largest gap: {_md(gaps)})\n")
        header = [g.column, "rows", g.metric, "95 % interval", *(r.upper() for r in rates)]
        rows = [
            [k, g.counts[k], short(v), interval_text(g.intervals.get(k))]
            + [short(g.rates[r].get(k)) for r in rates]
            for k, v in g.groups.items()
        ]
        out.append(_table(header, rows))
    return out


def render_markdown(card: ModelCard) -> str:
    s = card.sections
    run = card.run
    c = card.completeness
    parts = [
        _front_matter(card),
        f"# Model card for {_md(card.model_name)}\n",
        f"Generated by mlops-jupyter from run `{run.run_id}`; "
        + ("complete.\n" if c["complete"] else f"missing: {_md(', '.join(c['gaps']))}.\n"),
        *_summary(card),
        "## Model details\n",
        "### Model description\n",
        _section(s["overview"]),
        _table(
            ["field", "value"],
            [
                ["Model type", card.model_class or "no model stored"],
                ["Version", card.version or run.run_id],
                ["Owners", " ".join((s["owners"].content or "—").split())],
                ["License", (s["license"].content or "—").strip()],
                ["Date", run.started_at.date().isoformat()],
            ],
        ),
        "## Uses\n",
        "### Direct use\n",
        _section(s["intended_use"]),
        "### Out-of-scope use\n",
        _section(s["out_of_scope"]),
        "## Bias, risks, and limitations\n",
        _section(s["ethical_considerations"]),
        "### Recommendations\n",
        _section(s["caveats"]),
        "## Training details\n",
        "### Training data\n",
        _table(
            ["role", "variable", "hash", "shape"],
            [[d.role, d.variable, d.hash, d.shape] for d in card.training_data],
        ),
        "### Training hyperparameters\n",
        _table(["parameter", "value"], [[k, v] for k, v in sorted(run.params.items())]),
        "## Evaluation\n",
        "### Testing data, factors & metrics\n",
        _table(
            ["role", "variable", "hash", "shape"],
            [[d.role, d.variable, d.hash, d.shape] for d in card.evaluation_data],
        ),
        "#### Factors\n",
        _section(s["factors"]),
        "### Results\n",
        _table(["metric", "value"], [[k, v] for k, v in sorted(run.metrics.items())]),
    ]
    parts += _evaluation(card)
    e = run.explanation
    parts.append("## Model examination\n")
    if e is not None and e.status == "ok" and e.feature_names:
        values = e.mean_abs
        totals = (
            [sum(float(v[i]) for v in values.values()) for i in range(len(e.feature_names))]
            if isinstance(values, dict)
            else [float(v) for v in values]
        )
        top = sorted(zip(e.feature_names, totals, strict=True), key=lambda p: -p[1])[:10]
        parts.append(f"Mean absolute SHAP values ({_md(e.explainer)}), top features:\n\n")
        parts.append(_table(["feature", "mean abs SHAP"], [[n, v] for n, v in top]))
    else:
        parts.append("No explanation stored.\n")
    parts += _monitoring(card)
    env = run.environment
    parts += [
        "## Technical specifications\n",
        _table(
            ["field", "value"],
            [
                ["Python", env.python if env else ""],
                ["Platform", env.platform if env else ""],
                ["Git commit", run.git_commit or "—"],
                ["Notebook", run.notebook_path or "—"],
            ],
        ),
        "### Code\n",
        "```python\n" + (run.code or "").replace("```", "` ` `") + "\n```\n",
    ]
    return "\n".join(parts)
