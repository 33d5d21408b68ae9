"""``%compare``: runs side by side in a notebook (ipywidgets, or static HTML without them)."""

from __future__ import annotations

import html
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return html.escape(f"{value:.6g}")
    return html.escape("—" if value is None else str(value))


def comparison_html(comparison: dict[str, Any], show_all: bool = False) -> str:
    """Parameters (differences highlighted), metrics with bars, data equality, SHAP tops."""
    runs = comparison["runs"]
    head = "".join(
        f"<th scope='col'>{html.escape(r['name'] or r['run_id'][:8])}<br>"
        f"<small>{html.escape(r['run_id'][:8])} · {html.escape(r['status'])}</small></th>"
        for r in runs
    )
    params = [p for p in comparison["params"] if show_all or p["differs"]]
    same = sum(1 for p in comparison["params"] if not p["differs"])
    param_rows = "".join(
        f"<tr class='{'mj-diff' if p['differs'] else ''}'><th scope='row'>{html.escape(p['key'])}"
        f"</th>{''.join(f'<td>{_cell(v)}</td>' for v in p['values'])}</tr>"
        for p in params
    )
    metric_rows = ""
    for m in comparison["metrics"]:
        numbers = [v for v in m["values"] if isinstance(v, int | float)]
        top = max((abs(v) for v in numbers), default=0.0) or 1.0
        cells = ""
        for i, v in enumerate(m["values"]):
            bar = ""
            if isinstance(v, int | float):
                width = 100 * abs(v) / top
                bar = f"<div style='height:4px;background:#0969da;width:{width:.0f}%'></div>"
            star = " ★" if m["best"] == i else ""
            cells += f"<td>{_cell(v)}{star}{bar}</td>"
        metric_rows += f"<tr><th scope='row'>{html.escape(m['key'])}</th>{cells}</tr>"
    data = comparison["data"]
    data_rows = ""
    for role in ("train", "eval"):
        short = ", ".join(",".join(h[11:21] for h in hs) or "none" for hs in data[role]["hashes"])
        recorded = any(data[role]["hashes"])
        verdict = "same data" if data[role]["same"] else "different data"
        verdict = verdict if recorded else "not recorded"
        data_rows += (
            f"<tr><th scope='row'>{role} data</th><td colspan='{len(runs)}'>{verdict} "
            f"<small>({html.escape(short)})</small></td></tr>"
        )
    shap_cells = "".join(
        "<td>" + "<br>".join(html.escape(str(f)) for f, _ in s["top"]) + "</td>"
        if s["top"]
        else "<td>—</td>"
        for s in comparison["shap"]
    )
    hidden = "" if show_all else f"<p><small>{same} identical parameters hidden.</small></p>"
    return (
        "<div class='mlops-jupyter-compare'><style>.mlops-jupyter-compare table{border-collapse:"
        "collapse}.mlops-jupyter-compare td,.mlops-jupyter-compare th{border:1px solid #d1d9e0;"
        "padding:2px 8px;text-align:left;vertical-align:top}.mlops-jupyter-compare tr.mj-diff"
        "{background:#fff8c5}</style>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>"
        f"<tr><th colspan='{len(runs) + 1}'>Parameters</th></tr>{param_rows}"
        f"<tr><th colspan='{len(runs) + 1}'>Metrics (★ best)</th></tr>{metric_rows}"
        f"<tr><th colspan='{len(runs) + 1}'>Data</th></tr>{data_rows}"
        f"<tr><th scope='row'>SHAP top features</th>{shap_cells}</tr>"
        f"</tbody></table>{hidden}</div>"
    )


class CompareView:
    """The comparison with a 'show all parameters' toggle.

    Displays as a widget where widgets run (JupyterLab, Notebook 7, VS Code) with the same
    table as HTML in the bundle for every other viewer (a saved notebook, nbconvert).
    """

    def __init__(self, comparison: dict[str, Any]) -> None:
        self.comparison = comparison
        self._widget: Any = None

    def widget(self) -> Any:
        if self._widget is None:
            import ipywidgets as w

            body = w.HTML(comparison_html(self.comparison))
            toggle = w.Checkbox(value=False, description="Show all parameters", indent=False)
            toggle.observe(
                lambda change: setattr(
                    body, "value", comparison_html(self.comparison, change["new"])
                ),
                names="value",
            )
            self._widget = w.VBox([toggle, body])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = comparison_html(self.comparison)
        return bundle
