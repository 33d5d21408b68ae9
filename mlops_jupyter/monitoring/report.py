"""A recorded batch as a compact table: HTML for the notebook (every user string escaped) and
text for the command line."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import BatchReport

_COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "drift": "#cf222e"}
_HEADER = ("feature", "kind", "status", "PSI", "test", "statistic", "p-value", "missing", "note")


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}g}"


def _note(feature: dict[str, Any]) -> str:
    parts = [str(feature["note"])] if feature.get("note") else []
    unseen = feature.get("unseen")
    if unseen:
        names = ", ".join(f"{k} ({v})" for k, v in unseen.items())
        parts.append(f"{feature.get('unseen_rows', 0)} rows in unseen categories: {names}")
    if feature.get("coarse"):
        parts.append("coarse reference")
    return "; ".join(parts)


def _missing(feature: dict[str, Any]) -> str:
    missing = feature.get("missing")
    if not missing:
        return "-"
    before, now = missing["reference"], missing["batch"]
    return f"{now:.1%}" if before == now else f"{before:.1%} -> {now:.1%}"


def rows(report: BatchReport) -> list[list[str]]:
    """One row of strings per feature (and one for the predictions), as in ``_HEADER``."""
    features = list(report.features)
    if report.predictions is not None:
        named = f"predictions ({report.predictions['feature']})"
        features.append({**report.predictions, "feature": named})
    return [
        [
            str(f["feature"]),
            str(f.get("kind", "")),
            str(f["status"]),
            _number(f.get("psi")),
            str(f.get("test", "-")),
            _number(f.get("statistic")),
            _number(f.get("p_value"), 2),
            _missing(f),
            _note(f),
        ]
        for f in features
    ]


def headline(report: BatchReport) -> str:
    if report.kind == "labels":
        return (
            f"{report.ref} ({report.stage}) labels for batch {report.batch_id[:24]}, "
            f"{report.rows:,} rows: {report.decision} (with the batch's "
            f"{report.drift_share:.0%} features drifting)"
        )
    compared = sum(f.get("schema") != "new" for f in report.features)
    return (
        f"{report.ref} ({report.stage}) batch {report.batch_id[:24]}, {report.rows:,} rows: "
        f"{report.decision} ({len(report.drifting)}/{compared} features drifting)"
    )


def _performance(report: BatchReport) -> list[str]:
    perf = report.performance
    if not perf:
        return []
    lines = []
    for name, m in perf["metrics"].items():
        text = f"{name} {_number(m.get('value'))}"
        if m.get("interval") and None not in m["interval"]:
            low, high = m["interval"]
            text += f" [{_number(low)}, {_number(high)}]"
        if m.get("reference") is not None:
            text += f" (training run's {m['reference_metric']}: {_number(m['reference'])})"
        lines.append(text)
    return [f"performance on {perf['n']:,} labelled rows: " + "; ".join(lines)]


def _footer(report: BatchReport) -> list[str]:
    how = "signed" if report.signed else "label only, unsigned"
    kept = [f"kept {report.sample_rows:,} rows as sample {report.sample}"] if report.sample else []
    return [
        f"audit entry {report.audit_entry} by {report.recorded_by} ({how})",
        *kept,
        *report.notes,
    ]


def to_text(report: BatchReport) -> str:
    table = [list(_HEADER), *rows(report)]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADER) - 1)]
    lines = [headline(report)]
    for r in table:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join([*lines, *_performance(report), *_footer(report)])


def to_html(report: BatchReport) -> str:
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in _HEADER)
    body = []
    for r in rows(report):
        colour = _COLOURS.get(r[2], "inherit")
        cells = [f"<td>{escape(c)}</td>" for c in r]
        cells[2] = f"<td style='color:{colour};font-weight:600'>{escape(r[2])}</td>"
        body.append("<tr>" + "".join(cells) + "</tr>")
    colour = _COLOURS.get(report.decision, "inherit")
    extra = "".join(f"<div>{escape(line)}</div>" for line in _performance(report) + _footer(report))
    return (
        "<div class='mlops-jupyter-monitor'>"
        f"<div style='font-weight:600;color:{colour}'>{escape(headline(report))}</div>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<div style='font-size:smaller'>{extra}</div></div>"
    )
