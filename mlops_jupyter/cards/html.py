"""One self-contained HTML file: inline CSS and SVG, no scripts, no network, print-friendly.

Every string that came from a user or from data goes through :func:`esc`.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING, Any

from .evaluation import interval_text, short

if TYPE_CHECKING:
    from .model import ModelCard, Section

TOP_FEATURES = 15
MAX_CLASS_CHARTS = 10
KEY_PACKAGES = ("scikit-learn", "pandas", "numpy", "shap", "mlops-jupyter", "scipy", "pyarrow")

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --accent:#0969da; --gap:#9a6700; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       max-width: 960px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.8rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem;
     margin-top: 2rem; }
h3 { font-size: 1.05rem; margin-top: 1.2rem; }
.sub { color: var(--muted); margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: .85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; white-space: pre-wrap; }
.hash { word-break: break-all; }
.gap { border-left: 4px solid var(--gap); background: #fff8c5; padding: .4rem .7rem; }
.gap b { color: var(--gap); }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 1rem; font-size: .85rem;
         border: 1px solid var(--line); }
.badge.ok { border-color: #1a7f37; color: #1a7f37; }
.badge.todo { border-color: var(--gap); color: var(--gap); }
.written { color: var(--muted); font-size: .8rem; }
figure { margin: 1rem 0; }
figcaption { color: var(--muted); font-size: .85rem; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .bar { fill: var(--accent); }
svg .curve { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg .axis { stroke: var(--line); }
details summary { cursor: pointer; color: var(--accent); }
.summary { border: 1px solid var(--line); border-left: 4px solid var(--accent);
           padding: .2rem 1rem .4rem; margin: 1rem 0; }
.summary h2 { border: 0; margin-top: .6rem; }
.summary th { width: 11rem; }
mark { background: #fff8c5; color: inherit; font-weight: 600; }
.keep { break-inside: avoid; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  h2, h3 { break-after: avoid; break-inside: avoid; }
  table, figure, pre, .keep, .summary { break-inside: avoid; }
  details { display: block; } details > summary { display: none; }
  details.screen { display: none; }  /* a curve's values: its chart and caption say enough */
  .badge { border: 1px solid #000; color: #000; }
}
"""

EMBEDDED_CSS = """
.mlops-jupyter-card .gap { border-left: 4px solid #9a6700; background: #fff8c5;
  padding: .4rem .7rem; }
.mlops-jupyter-card .badge { padding: .1rem .5rem; border-radius: 1rem; border: 1px solid #888; }
.mlops-jupyter-card .written { opacity: .7; font-size: .8em; }
.mlops-jupyter-card .hash { word-break: break-all; }
.mlops-jupyter-card svg .bar { fill: #0969da; }
.mlops-jupyter-card svg .curve { fill: none; stroke: #0969da; stroke-width: 1.5; }
.mlops-jupyter-card svg .axis { stroke: #888; }
.mlops-jupyter-card svg text { font: 12px sans-serif; fill: currentColor; }
.mlops-jupyter-card pre { white-space: pre-wrap; }
.mlops-jupyter-card .summary { border-left: 4px solid #0969da; padding: 0 .8rem; }
.mlops-jupyter-card mark { background: #fff8c5; color: #1f2328; font-weight: 600; }
"""


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too, so values are safe inside attributes)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def _time(ts: Any) -> str:
    if ts is None:
        return ""
    if isinstance(ts, dt.datetime):
        return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def table(header: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th scope='col'>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='num'>{esc(fmt(c))}</td>" if i in numeric else f"<td>{esc(fmt(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def human(section: Section) -> str:
    """A written section, or a clearly marked gap saying what to write."""
    if section.missing:
        return (
            f"<div class='gap' role='note'><b>Not written yet.</b> {esc(section.hint)} "
            f"<span class='written'>(<code>%model_card REF --edit</code> or "
            f"<code>mlops-jupyter card-sections</code>)</span></div>"
        )
    paragraphs = "".join(
        f"<p>{esc(p).replace(chr(10), '<br>')}</p>"
        for p in str(section.content).strip().split("\n\n")
    )
    where = f" on run {esc(section.written_on[:8])}" if section.written_on else ""
    who = (
        f"<p class='written'>Written by {esc(section.author or 'unknown')}{where}, "
        f"{esc(_time(section.written_at))}, revision {esc(section.revision)}.</p>"
    )
    return paragraphs + who


def bar_chart(title: str, names: list[str], values: list[float], chart_id: str) -> str:
    """A horizontal bar chart as inline SVG, with a text alternative."""
    order = sorted(range(len(values)), key=lambda i: -values[i])[:TOP_FEATURES]
    label_w, bar_w, row_h, pad = 230, 380, 20, 6
    height = row_h * len(order) + 2 * pad
    top = max((values[i] for i in order), default=0.0) or 1.0
    rows = []
    for n, i in enumerate(order):
        y = pad + n * row_h
        width = max(1.0, bar_w * values[i] / top)
        name = names[i] if len(names[i]) <= 34 else names[i][:33] + "…"
        rows.append(
            f"<text x='{label_w - 6}' y='{y + 14}' text-anchor='end'>{esc(name)}</text>"
            f"<rect class='bar' x='{label_w}' y='{y + 3}' width='{width:.1f}' height='{row_h - 6}'>"
            f"<title>{esc(names[i])}: {esc(fmt(values[i]))}</title></rect>"
            f"<text x='{label_w + width + 4:.1f}' y='{y + 14}'>{esc(fmt(values[i]))}</text>"
        )
    summary = ", ".join(f"{names[i]} {fmt(values[i])}" for i in order[:5])
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-labelledby='{chart_id}-t' "
        f"width='100%' viewBox='0 0 {label_w + bar_w + 80} {height}'>"
        f"<title id='{chart_id}-t'>{esc(title)}: {esc(summary)}</title>{''.join(rows)}</svg>"
    )
    alt = table(["feature", "mean |SHAP|"], [[names[i], values[i]] for i in order], numeric={1})
    return (
        f"<figure>{svg}<figcaption>{esc(title)} (top {len(order)} of {len(values)} features)"
        f"</figcaption><details><summary>Values as a table</summary>{alt}</details></figure>"
    )


MAX_CURVE_POINTS = 400  # a longer curve is drawn from each bucket's lowest and highest value


def curve_points(steps: list[float], values: list[float]) -> list[tuple[float, float]]:
    """The points a curve is drawn through: all of them, or the first and last value and each
    bucket's lowest and highest (in step order), so spikes survive the thinning."""
    points = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    if len(points) <= MAX_CURVE_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_CURVE_POINTS // 2))
    kept = {0, len(points) - 1}
    for start in range(0, len(points), size):
        bucket = range(start, min(start + size, len(points)))
        kept.add(min(bucket, key=lambda i: points[i][1]))
        kept.add(max(bucket, key=lambda i: points[i][1]))
    return [points[i] for i in sorted(kept)]


def line_chart(title: str, steps: list[float], values: list[float], chart_id: str) -> str:
    """A metric's curve over steps as inline SVG, with its first, lowest, highest and last
    values as the text alternative (the full list in a table only on screen)."""
    points = curve_points(steps, values)
    if not points:
        return f"<p>{esc(title)}: no finite value.</p>"
    width, height, left, bottom, pad = 600, 180, 60, 24, 8
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (width - left - pad) / ((x1 - x0) or 1)
    sy = (height - bottom - pad) / ((y1 - y0) or 1)
    path = " ".join(
        f"{left + (x - x0) * sx:.1f},{height - bottom - (y - y0) * sy:.1f}" for x, y in points
    )
    finite = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    low = min(finite, key=lambda p: p[1])
    high = max(finite, key=lambda p: p[1])
    said = (
        f"{len(finite)} values from step {fmt(finite[0][0])} to {fmt(finite[-1][0])}: first "
        f"{fmt(finite[0][1])}, lowest {fmt(low[1])} at step {fmt(low[0])}, highest "
        f"{fmt(high[1])} at step {fmt(high[0])}, last {fmt(finite[-1][1])}"
    )
    axes = (
        f"<line class='axis' x1='{left}' y1='{height - bottom}' x2='{width - pad}' "
        f"y2='{height - bottom}'/><line class='axis' x1='{left}' y1='{pad}' x2='{left}' "
        f"y2='{height - bottom}'/>"
        f"<text x='{left - 4}' y='{pad + 10}' text-anchor='end'>{esc(fmt(y1))}</text>"
        f"<text x='{left - 4}' y='{height - bottom}' text-anchor='end'>{esc(fmt(y0))}</text>"
        f"<text x='{left}' y='{height - 6}'>step {esc(fmt(x0))}</text>"
        f"<text x='{width - pad}' y='{height - 6}' text-anchor='end'>{esc(fmt(x1))}</text>"
    )
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-labelledby='{chart_id}-t' "
        f"width='100%' viewBox='0 0 {width} {height}'><title id='{chart_id}-t'>{esc(title)}: "
        f"{esc(said)}</title>{axes}<polyline class='curve' points='{path}'/></svg>"
    )
    values_table = table(["step", "value"], [list(p) for p in finite], numeric={0, 1})
    return (
        f"<figure class='keep'>{svg}<figcaption>{esc(title)}: {esc(said)}.</figcaption>"
        f"<details class='screen'><summary>Values as a table</summary>{values_table}</details>"
        "</figure>"
    )


def _details(card: ModelCard) -> str:
    run = card.run
    owners = card.sections["owners"]
    licence = card.sections["license"]
    rows = [
        ["Name", card.model_name],
        ["Version", card.version or "not registered (a tracked run)"],
        ["Type", card.model_class or "no model stored"],
        ["Owners", (owners.content or "").strip() or "— (not written yet)"],
        ["Date", _time(run.started_at)],
        ["License", (licence.content or "").strip() or "— (not written yet)"],
        ["Run id", run.run_id],
        ["Experiment", run.experiment],
        ["Tracked by", run.user or ""],
    ]
    body = (
        "<table><tbody>"
        + "".join(f"<tr><th scope='row'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        + "</tbody></table>"
    )
    overview = f"<div class='keep'><h3>Overview</h3>{human(card.sections['overview'])}</div>"
    count = len(run.params)
    listed = f"{count} parameters, listed in the appendix." if count else "None recorded."
    return body + overview + f"<h3>Parameters</h3><p>{listed}</p>"


def _hyperparameters(card: ModelCard) -> str:
    run = card.run
    rows = [[k, v, run.param_sources.get(k, "")] for k, v in sorted(run.params.items())]
    return table(["parameter", "value", "source"], rows) if rows else "<p>None recorded.</p>"


def _summary(card: ModelCard) -> str:
    """The box a reviewer reads first (see :mod:`.summary`)."""
    from .summary import headline_text, summary

    s = summary(card)

    def hashes(items: list[tuple[str, str]]) -> str:
        shown = "<br>".join(
            f"{esc(name)}: <span class='hash'>{esc(digest)}</span>" for name, digest in items
        )
        return shown or "none recorded"

    stage = s["stage"] or ("not registered (a tracked run)" if card.version is None else "none")
    rows = [
        ("Purpose", esc(s["purpose"] or "— (the overview is not written yet)")),
        ("Owner", esc(s["owner"] or "— (not written yet)")),
        ("Stage", esc(stage)),
        ("Risk tier", esc(s["risk_tier"] or "—")),
        ("Headline metric", esc(headline_text(s["headline"]))),
        ("Training data", hashes(s["training_data"])),
        ("Evaluation data", hashes(s["evaluation_data"])),
        ("Sign-off", esc(s["signoffs"])),
    ]
    body = "".join(f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        "<section class='summary' aria-label='Summary'><h2>Summary</h2>"
        f"<table><tbody>{body}</tbody></table></section>"
    )


def _metrics(card: ModelCard) -> str:
    run = card.run
    if not run.metrics:
        return (
            "<div class='gap'><b>No metrics recorded.</b> Track a cell that scores the model.</div>"
        )
    rows = [[k, v] for k, v in sorted(run.metrics.items())]
    out = table(["metric", "value"], rows, numeric={1})
    curves = {k: pts for k, pts in run.metric_history.items() if len(pts) > 1}
    for n, (key, points) in enumerate(sorted(curves.items())):
        steps, values = [float(p.step) for p in points], [float(p.value) for p in points]
        out += f"<h3>{esc(key)} by step</h3>" + line_chart(key, steps, values, f"curve-{n}")
    return out


PROFILE_HEADER = ["column", "dtype", "nulls", "min", "max", "mean", "top values"]


def profile_rows(columns: dict[str, Any]) -> list[list[Any]]:
    """One row per profiled column, in ``PROFILE_HEADER``'s order (three top values)."""
    return [
        [
            name,
            col.get("dtype", ""),
            col.get("nulls", ""),
            col.get("min", ""),
            col.get("max", ""),
            col.get("mean", ""),
            ", ".join(f"{k} ({n})" for k, n in col.get("top", [])[:3]),
        ]
        for name, col in columns.items()
    ]


def _dataset(d: Any) -> str:
    profile = d.profile or {}
    facts = [
        ["Variable", d.variable],
        ["Role", d.role],
        ["Content hash", d.hash],
        ["Kind", d.kind],
        ["Shape", " x ".join(str(n) for n in d.shape) if d.shape else "—"],
    ]
    if d.source_path:
        facts.append(["Source file", d.source_path])
        facts.append(["Source file hash", d.source_hash or ""])
    body = (
        "<table><tbody>"
        + "".join(
            f"<tr><th scope='row'>{esc(k)}</th><td class='{'hash' if 'hash' in k else ''}'>"
            f"{esc(v)}</td></tr>"
            for k, v in facts
        )
        + "</tbody></table>"
    )
    columns = profile.get("columns") or {}
    if columns:
        rows = profile_rows(columns)
        body += (
            "<details><summary>Schema and profile</summary>"
            + table(
                PROFILE_HEADER,
                rows,
                numeric={2, 3, 4, 5},
            )
            + "</details>"
        )
    return f"<h3>{esc(d.role)}: {esc(d.variable)}</h3>{body}"


def _data(datasets: list[Any], what: str) -> str:
    if not datasets:
        return f"<div class='gap'><b>No {esc(what)} recorded.</b></div>"
    return "".join(_dataset(d) for d in datasets)


def _analyses(card: ModelCard) -> str:
    from .model import sensitive_column

    e = card.evaluation
    if e is None:
        return (
            "<p>Intervals, the confusion matrix and per-group results are computed from the "
            "evaluation data the run recorded: build the card with it "
            "(<code>model_card(ref, eval_data=(X, y))</code>; its hash is checked first).</p>"
        )
    out = (
        f"<p>On the {e.n:,} evaluation rows. Intervals: 95 % percentile bootstrap, "
        f"{e.resamples:,} resamples, seed {esc(e.seed)}.</p>"
    )
    rows = [
        [name, short(m["value"]), interval_text(m["interval"]), e.n]
        for name, m in e.metrics.items()
    ]
    out += table(["metric", "value", "95 % interval", "n"], rows, numeric={1, 3})
    if e.confusion is not None:
        head = "".join(f"<th scope='col'>predicted {esc(label)}</th>" for label in e.labels)
        body = "".join(
            f"<tr><th scope='row'>true {esc(label)}</th>"
            + "".join(f"<td class='num'>{count:,}</td>" for count in row)
            + "</tr>"
            for label, row in zip(e.labels, e.confusion, strict=True)
        )
        positive = f" Positive class: {esc(e.positive)}." if e.positive is not None else ""
        out += (
            f"<div class='keep'><h3>Confusion matrix</h3><table><thead><tr><th></th>{head}"
            f"</tr></thead><tbody>{body}</tbody></table><p>{positive.strip()}</p></div>"
        )
    if e.residuals is not None:
        r = e.residuals
        rows = [[k, short(r[k])] for k in ("mean", "std", "p05", "median", "p95", "max_abs")]
        out += "<div class='keep'><h3>Residuals (predicted − true)</h3>"
        out += table(["statistic", "value"], rows, numeric={1}) + "</div>"
    column = card.sections["sensitive_column"]
    if not card.group_metrics:
        why = (
            "name a sensitive column in the card's <i>Sensitive column</i> section"
            if column.missing
            else "the evaluation data has no column "
            f"<code>{esc(sensitive_column(column.content)[0])}</code>"
        )
        return out + f"<p>Per-group results: {why}.</p>"
    for g in card.group_metrics:
        out += _group_table(g)
    return out


def _group_table(g: Any) -> str:
    """One row per group; the groups with the highest and lowest value of each column marked."""
    rates = list(g.rates)
    columns = [g.metric, *rates]

    def extremes(values: dict[str, float]) -> set[str]:
        finite = {k: v for k, v in values.items() if not math.isnan(v)}
        if len(finite) < 2:
            return set()
        return {max(finite, key=finite.__getitem__), min(finite, key=finite.__getitem__)}

    marked = {c: extremes(g.groups if c == g.metric else g.rates[c]) for c in columns}
    head = "".join(
        f"<th scope='col'>{esc(h)}</th>"
        for h in [g.column, "rows", g.metric, "95 % interval", *(r.upper() for r in rates)]
    )
    body = ""
    for name in g.groups:
        cells = [f"<th scope='row'>{esc(name)}</th>", f"<td class='num'>{g.counts[name]:,}</td>"]
        for c in columns:
            value = short(g.groups[name] if c == g.metric else g.rates[c].get(name))
            shown = f"<mark>{value}</mark>" if name in marked[c] else value
            cells.append(f"<td class='num'>{shown}</td>")
            if c == g.metric:
                cells.append(f"<td class='num'>{interval_text(g.intervals.get(name))}</td>")
        body += "<tr>" + "".join(cells) + "</tr>"
    gaps = [f"{esc(g.metric)} <b>{short(g.gap)}</b>"]
    gaps += [f"{esc(r.upper())} <b>{short(g.rate_gap(r))}</b>" for r in rates]
    return (
        f"<div class='keep'><h3>By {esc(g.column)}</h3><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table><p>Largest gap between groups: {', '.join(gaps)} "
        "(highest and lowest marked).</p></div>"
    )


def _explanations(card: ModelCard) -> str:
    e = card.run.explanation
    if e is None:
        return "<div class='gap'><b>No explanation.</b> The run stored no SHAP explanation.</div>"
    if e.status != "ok":
        return f"<div class='gap'><b>Explanation {esc(e.status)}.</b> {esc(e.reason or '')}</div>"
    names = [str(n) for n in e.feature_names or []]
    intro = (
        f"<p>Global importance: mean absolute SHAP value per feature, from {esc(e.explainer)} "
        f"on {esc(e.n_rows)} evaluation rows.</p>"
    )
    if isinstance(e.mean_abs, dict) and len(e.mean_abs) == 2:
        # a binary model's two classes have the same mean |SHAP| (one is minus the other)
        label, values = list(e.mean_abs.items())[-1]
        note = "<p>Binary model: the other class's importances are the same.</p>"
        return (
            intro + note + bar_chart(f"Class {label}", names, [float(v) for v in values], "shap-0")
        )
    if isinstance(e.mean_abs, dict):
        charts = "".join(
            bar_chart(f"Class {label}", names, [float(v) for v in values], f"shap-{n}")
            for n, (label, values) in enumerate(list(e.mean_abs.items())[:MAX_CLASS_CHARTS])
        )
        return intro + charts
    return intro + bar_chart("Model output", names, [float(v) for v in e.mean_abs], "shap-0")


def _reproducibility(card: ModelCard) -> str:
    run = card.run
    env = run.environment
    out = "<h3>Code</h3>" + (f"<pre>{esc(run.code)}</pre>" if run.code else "<p>Not recorded.</p>")
    git = "not a git repository"
    if run.git_commit:
        git = f"{run.git_commit}" + (" (uncommitted changes)" if run.git_dirty else " (clean)")
    facts: list[list[Any]] = [
        ["Notebook", run.notebook_path or ""],
        ["Execution count", run.execution_count if run.execution_count is not None else ""],
        ["Git commit", git],
        ["Host", run.host or ""],
        ["Python", env.python if env else ""],
        ["Platform", env.platform if env else ""],
    ]
    if env:
        for name in KEY_PACKAGES:
            if name in env.packages:
                facts.append([name, env.packages[name]])
    out += (
        "<h3>Environment</h3><table><tbody>"
        + "".join(f"<tr><th scope='row'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
        + "</tbody></table>"
    )
    if env:
        out += (
            "<details><summary>All installed packages</summary>"
            + table(["package", "version"], sorted([k, v] for k, v in env.packages.items()))
            + "</details>"
        )
    if run.history:
        out += "<h3>Cells run before this one</h3>" + table(
            ["execution count", "source hash"],
            [[h.get("execution_count"), h.get("source_hash")] for h in run.history],
        )
    return out


def _key_note(fingerprint: str | None) -> str:
    return f" (key {esc(fingerprint)})" if fingerprint else ""


def _signature_state(signoff: dict[str, Any]) -> str:
    if not signoff.get("verified"):
        return "not signed (recorded before signed sign-offs)"
    return "signature verified" + (f"; {signoff['note']}" if signoff.get("note") else "")


def _governance(card: ModelCard) -> str:
    g = card.governance or {}
    head = (
        f"<p>Audit log head at export: <code class='hash'>{esc(g.get('audit_head', ''))}</code>"
        " (<code>mlops-jupyter audit verify --expect-head HASH</code> proves the log still "
        "extends it).</p>"
    )
    if "stage" not in g:
        return head + (
            "<p>This card describes a tracked run that is not a registered model version: "
            "stage, promotion requests, gate results and sign-offs appear on the card of "
            "<code>MODEL:VERSION</code> once it is registered.</p>"
        )
    out = table(["field", "value"], [["Stage", g["stage"]], ["Risk tier", g["risk_tier"]]])
    for request in g.get("requests", []):
        out += (
            f"<h3>Request #{esc(request['id'])}: to {esc(request['to'])} — "
            f"{esc(request['status'])}</h3><p>Requested by {esc(request['requester'])}"
            f"{_key_note(request.get('requester_key'))}, "
            f"{esc(_time(request['created_at']))}.</p>"
        )
        if request["gates"]:
            out += table(
                ["gate", "result", "message"],
                [
                    [gate["gate"], "pass" if gate["passed"] else "FAIL", gate["message"]]
                    for gate in request["gates"]
                ],
            )
        if request.get("reason"):
            out += f"<p>Blocked: {esc(request['reason'])}</p>"
        if request["signoffs"] or request.get("not_counted"):
            out += table(
                ["sign-off by", "key", "decision", "comment", "when", "signature"],
                [
                    [
                        s["principal"],
                        s.get("fingerprint") or "",
                        s["decision"],
                        s["comment"] or "",
                        _time(s["time"]),
                        _signature_state(s),
                    ]
                    for s in request["signoffs"]
                ]
                + [
                    [n["principal"], "", "not counted", "", _time(n["time"]), n["reason"]]
                    for n in request.get("not_counted", [])
                ],
            )
    if g.get("history"):
        out += "<h3>History</h3>" + table(
            ["#", "when", "who", "what"],
            [[h["seq"], _time(h["ts"]), h["actor"], h["action"]] for h in g["history"]],
        )
    return head + out


def _answers_text(model: str, batch: dict[str, Any]) -> str:
    drifting = ", ".join(batch.get("drifting") or []) or "no feature"
    return (
        f"request #{batch['request']} answers batch {batch['batch_id'][:24]} of "
        f"{model}:{batch['version']} ({batch['decision']}; {drifting} drifting; data "
        f"{batch['data_hash']})"
    )


def _monitoring(card: ModelCard) -> str:
    from .monitoring import BATCH_COLUMNS, batch_rows

    m = card.monitoring
    if m is None:
        return (
            "<p>Production batches are monitored per registered version: this section appears "
            "on the card of <code>MODEL:VERSION</code>.</p>"
        )
    out = "".join(f"<p>{esc(_answers_text(card.model_name, a))}.</p>" for a in m["answers"])
    t = m["thresholds"]
    plan = (
        "<p>Batches are decided by the policy: a feature drifts when its test finds the shift "
        f"significant (p-value below {fmt(t['p_value'])}) and its PSI is ≥ {fmt(t['psi_drift'])} "
        f"(warns from {fmt(t['psi_warn'])}); a batch drifts when a share of "
        f"{fmt(t['drift_share'])} of its features drift, a column is missing or changed type, or "
        "its predictions or performance drift. Record one with <code>%monitor</code> or "
        "<code>mlops-jupyter monitor</code>.</p>"
    )
    if not m["batches"]:
        return out + "<p>No production batch has been recorded for this version.</p>" + plan
    c = m["counts"]
    out += (
        f"<p>{m['batches']} batch{'es' * (m['batches'] != 1)} recorded: {c['ok']} ok, "
        f"{c['warn']} warn, {c['drift']} drift. Latest: <b>{esc(m['latest']['decision'])}</b>, "
        f"{esc(_time(m['latest']['created_at']))}.</p>"
    )
    rows = batch_rows(m, _time)
    header = ["when", *BATCH_COLUMNS]
    shown = f"<p>The newest {len(rows)}:</p>" if len(rows) < m["batches"] else ""
    return out + shown + table(header, rows, {2}) + plan


def render_html(card: ModelCard, embedded: bool = False) -> str:
    """The whole card; ``embedded`` gives a fragment for a notebook output (same content)."""
    c = card.completeness
    badge = (
        "<span class='badge ok'>complete</span>"
        if c["complete"]
        else f"<span class='badge todo'>{c['filled']} of {c['required']} parts written — "
        f"missing: {esc(', '.join(c['gaps']))}</span>"
    )
    s = card.sections
    parts = [
        f"<header><h1>Model card: {esc(card.model_name)}</h1><p class='sub'>"
        f"{esc(card.subject)} · generated {esc(_time(card.generated_at))} by mlops-jupyter</p>"
        f"<p>{badge}</p></header>",
        _summary(card),
        f"<section><h2>Model details</h2>{_details(card)}</section>",
        f"<section><h2>Intended use</h2>{human(s['intended_use'])}"
        f"<h3>Out-of-scope uses</h3>{human(s['out_of_scope'])}</section>",
        f"<section><h2>Factors</h2>{human(s['factors'])}</section>",
        f"<section><h2>Metrics</h2>{_metrics(card)}</section>",
        f"<section><h2>Evaluation data</h2>{_data(card.evaluation_data, 'evaluation data')}"
        "</section>",
        f"<section><h2>Training data</h2>{_data(card.training_data, 'training data')}</section>",
        f"<section><h2>Quantitative analyses</h2>{_analyses(card)}</section>",
        f"<section><h2>Ethical considerations</h2>{human(s['ethical_considerations'])}</section>",
        f"<section><h2>Caveats and recommendations</h2>{human(s['caveats'])}</section>",
        f"<section><h2>Explanations</h2>{_explanations(card)}</section>",
        f"<section><h2>Reproducibility</h2>{_reproducibility(card)}</section>",
        f"<section><h2>Monitoring</h2>{_monitoring(card)}</section>",
        f"<section><h2>Governance</h2>{_governance(card)}</section>",
        f"<section><h2>Appendix: hyperparameters</h2>{_hyperparameters(card)}</section>",
    ]
    return document(f"Model card: {card.model_name}", "".join(parts), embedded)


def document(title: str, body: str, embedded: bool = False) -> str:
    """One offline HTML file (inline CSS, a Content-Security-Policy that allows no request and
    no script) around ``body``; ``embedded``: a fragment for a notebook output, only styles
    scoped to it (the page keeps its own)."""
    if embedded:
        return f"<div class='mlops-jupyter-card'><style>{EMBEDDED_CSS}</style>{body}</div>"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
