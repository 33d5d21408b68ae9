"""``%compare``: runs side by side in a notebook (ipywidgets, or static HTML without them).

One compare design, shared with the side panel's Compare tab (``labextension/src/compare.ts``
draws the same from ``GET compare``, the same :func:`mlops_jupyter.compare.compare_runs`):

``div.mlops-jupyter-compare`` holds its own ``<style>`` (JupyterLab CSS variables, each with a
fallback for viewers without them) and ``table.mj-compare-table``:

- ``thead``: an empty ``th``, then per run ``th[scope=col][title=FULL_ID]``: the run's name
  (or the first 8 hex of its id), ``<br>``, ``<small>ID8 · STATUS</small>``.
- ``tbody``, four sections, each opened by ``tr.mj-section > th[colspan=RUNS+1]`` with the
  text ``Parameters``, ``Metrics (★ best)``, ``Data``, ``SHAP top features``:
- Parameters: ``tr[data-param=KEY]``, class ``mj-diff`` when the values differ, ``th[scope=
  row]`` KEY, then per run a ``td`` with ``readable(value)``. Identical parameters are left out
  unless "Show all parameters" is ticked; then (not ticked, N > 0) the table is followed by
  ``p.mj-note`` reading ``N identical parameters hidden.``
- Metrics: ``tr[data-metric=KEY]``, the primary metric first with class ``mj-primary``; its
  ``th[scope=row][title=WHY]`` reads ``KEY ↑`` (higher is better) or ``KEY ↓`` (lower is
  better), ``KEY ↑ (primary)`` for the primary metric; WHY is ``higher is better`` / ``lower
  is better`` + `` (set for the experiment)`` / `` (by its name)`` / `` (by its name: the
  experiments set different directions)``. Per run a ``td``; a numeric value's ``td`` has
  class ``mj-num`` (and ``mj-best`` for the best run's, text ``VALUE ★``), ``title`` = the
  exact value (``String(value)``), and ends with ``div.mj-bar[style="width:W%"]``, W =
  ``Math.round(100 * |value| / max |value|)`` over the row's numbers (max 0 counts as 1). A
  missing value is ``—``, a non-finite one its name (``NaN``), without a bar.
- Data: ``tr[data-data=train|eval]``, ``th[scope=row]`` ``train data`` / ``eval data``, one
  ``td[colspan=RUNS]``: ``same data`` / ``different data`` / ``not recorded``, a space and
  ``<small>(HASHES)</small>``: per run its hashes' characters 11 to 21 (after
  ``mj1-blake3:``) joined by ``,``, ``none`` for a run without, runs joined by ``, ``.
- SHAP: ``tr[data-shap]``, ``th[scope=row]`` ``features``, per run a ``td`` with class
  ``mj-shap-STATUS``: the top feature names joined by ``, `` (``ok``), ``pending`` (still
  being computed), ``failed`` (``title`` = reason), or ``—`` (none recorded or not possible;
  ``title`` = reason when there is one).

Numbers are :func:`mlops_jupyter.numbers.readable` (the TypeScript ``readable``, exactly).
Every user string is escaped. While any compared run's SHAP is ``pending``, :class:`CompareView`
polls the store in a daemon thread and redraws when the explanations land.
"""

from __future__ import annotations

import html
import math
import threading
import time
from typing import Any

from ..numbers import exact, readable

POLL_S = 0.5  # how often a view with pending SHAP looks at the store
WATCH_S = 600.0  # how long it keeps looking

STYLE = (
    ".mlops-jupyter-compare{color:var(--jp-ui-font-color1,inherit)}"
    ".mlops-jupyter-compare table.mj-compare-table{border-collapse:collapse;"
    "font-size:var(--jp-ui-font-size1,13px)}"
    ".mlops-jupyter-compare .mj-compare-table th,.mlops-jupyter-compare .mj-compare-table td{"
    "border:1px solid var(--jp-border-color2,#d1d9e0);padding:2px 8px;text-align:left;"
    "vertical-align:top}"
    ".mlops-jupyter-compare tr.mj-section th{background:var(--jp-layout-color2,#f0f0f0);"
    "color:var(--jp-ui-font-color1,#1f2328)}"
    ".mlops-jupyter-compare tr.mj-diff{background:var(--jp-warn-color3,#fff8c5);"
    "background:color-mix(in srgb,var(--jp-warn-color1,#d4a72c) 22%,"
    "var(--jp-layout-color1,#fff));color:var(--jp-ui-font-color1,#1f2328)}"
    ".mlops-jupyter-compare tr.mj-diff th{border-left:3px solid var(--jp-warn-color1,#d4a72c)}"
    ".mlops-jupyter-compare tr.mj-primary th{font-weight:700}"
    ".mlops-jupyter-compare td.mj-best{font-weight:600}"
    ".mlops-jupyter-compare td.mj-num{font-variant-numeric:tabular-nums}"
    ".mlops-jupyter-compare .mj-bar{height:4px;margin-top:2px;"
    "background:var(--jp-brand-color1,#0969da)}"
    ".mlops-jupyter-compare td.mj-shap-pending,.mlops-jupyter-compare .mj-note{"
    "color:var(--jp-ui-font-color2,#59636e)}"
)

DIFF = " class='mj-diff'"
_WHY = {"experiment": " (set for the experiment)", "name": " (by its name)"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_cell(value: Any, classes: str = "", suffix: str = "", bar: str = "") -> str:
    """A ``td`` with ``readable(value)``; a finite number gets ``mj-num`` and its exact value
    as the tooltip."""
    if _is_number(value) and math.isfinite(value):
        names = " ".join(c for c in ("mj-num", classes) if c)
        return (
            f"<td class='{names}' title='{_e(exact(value))}'>{_e(readable(value))}{suffix}"
            f"{bar}</td>"
        )
    return f"<td>{_e(readable(value))}</td>"


def _metric_row(metric: dict[str, Any]) -> str:
    numbers = [abs(v) for v in metric["values"] if _is_number(v) and math.isfinite(v)]
    top = max(numbers, default=0.0) or 1.0
    direction = metric.get("direction") or ("min" if metric.get("lower_is_better") else "max")
    arrow = "↓" if direction == "min" else "↑"
    primary = bool(metric.get("primary"))
    why = "lower is better" if direction == "min" else "higher is better"
    if metric.get("direction_conflict"):
        why += " (by its name: the experiments set different directions)"
    else:
        why += _WHY.get(metric.get("direction_source", "name"), "")
    label = f"{metric['key']} {arrow}" + (" (primary)" if primary else "")
    cells = ""
    for i, value in enumerate(metric["values"]):
        best = metric["best"] == i
        bar = ""
        if _is_number(value) and math.isfinite(value):
            width = math.floor(100 * abs(value) / top + 0.5)
            bar = f"<div class='mj-bar' style='width:{width}%'></div>"
        cells += _value_cell(value, "mj-best" if best else "", " ★" if best else "", bar)
    row_class = " class='mj-primary'" if primary else ""
    return (
        f"<tr{row_class} data-metric='{_e(metric['key'])}'><th scope='row' title='{_e(why)}'>"
        f"{_e(label)}</th>{cells}</tr>"
    )


def _shap_cell(entry: dict[str, Any]) -> str:
    status = entry.get("status") or ("ok" if entry.get("top") else "none")
    reason = entry.get("reason")
    title = f" title='{_e(reason)}'" if reason and status in ("failed", "none") else ""
    if status == "ok" and entry.get("top"):
        text = ", ".join(str(name) for name, _ in entry["top"])
    elif status in ("pending", "failed"):
        text = status
    else:
        text = "—"
    return f"<td class='mj-shap-{_e(status)}'{title}>{_e(text)}</td>"


def comparison_html(comparison: dict[str, Any], show_all: bool = False) -> str:
    """The comparison as the one compare design (see the module docstring)."""
    runs = comparison["runs"]
    span = len(runs) + 1
    head = "".join(
        f"<th scope='col' title='{_e(r['run_id'])}'>{_e(r['name'] or r['run_id'][:8])}<br>"
        f"<small>{_e(r['run_id'][:8])} · {_e(r['status'])}</small></th>"
        for r in runs
    )
    params = [p for p in comparison["params"] if show_all or p["differs"]]
    same = sum(1 for p in comparison["params"] if not p["differs"])
    param_rows = "".join(
        f"<tr{DIFF if p['differs'] else ''} data-param='{_e(p['key'])}'><th scope='row'>"
        f"{_e(p['key'])}</th>{''.join(_value_cell(v) for v in p['values'])}</tr>"
        for p in params
    )
    metric_rows = "".join(_metric_row(m) for m in comparison["metrics"])
    data = comparison["data"]
    data_rows = ""
    for role in ("train", "eval"):
        hashes = data[role]["hashes"]
        short = ", ".join(",".join(h[11:21] for h in hs) or "none" for hs in hashes)
        verdict = "same data" if data[role]["same"] else "different data"
        verdict = verdict if any(hashes) else "not recorded"
        data_rows += (
            f"<tr data-data='{role}'><th scope='row'>{role} data</th>"
            f"<td colspan='{len(runs)}'>{verdict} <small>({_e(short)})</small></td></tr>"
        )
    shap_cells = "".join(_shap_cell(s) for s in comparison["shap"])

    def section(title: str) -> str:
        return f"<tr class='mj-section'><th colspan='{span}'>{title}</th></tr>"

    hidden = (
        f"<p class='mj-note'><small>{same} identical parameters hidden.</small></p>"
        if same and not show_all
        else ""
    )
    return (
        f"<div class='mlops-jupyter-compare'><style>{STYLE}</style>"
        f"<table class='mj-compare-table'><thead><tr><th></th>{head}</tr></thead><tbody>"
        f"{section('Parameters')}{param_rows}"
        f"{section('Metrics (★ best)')}{metric_rows}"
        f"{section('Data')}{data_rows}"
        f"{section('SHAP top features')}"
        f"<tr data-shap><th scope='row'>features</th>{shap_cells}</tr>"
        f"</tbody></table>{hidden}</div>"
    )


def pending(comparison: dict[str, Any]) -> bool:
    """Whether any compared run's SHAP explanation is still being computed."""
    return any(s.get("status") == "pending" for s in comparison.get("shap", []))


class CompareView:
    """The comparison with a 'show all parameters' toggle.

    Displays as a widget where widgets run (JupyterLab, Notebook 7, VS Code) with the same
    table as HTML in the bundle for every other viewer (a saved notebook, nbconvert). Given
    the ``store`` it compares from, a view whose SHAP is still pending when shown
    watches the store (every ``poll_s`` seconds, for at most ``watch_s``) in a daemon
    thread and redraws itself when an explanation lands; it stops once nothing is pending.
    It never prints: a failure while watching becomes one line under the table.
    """

    def __init__(
        self,
        comparison: dict[str, Any],
        *,
        store: Any = None,
        poll_s: float = POLL_S,
        watch_s: float = WATCH_S,
    ) -> None:
        self.comparison = comparison
        self._store = store
        self.poll_s = poll_s
        self.watch_s = watch_s
        self._widget: Any = None
        self._body: Any = None
        self._status: Any = None
        self._toggle: Any = None
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def body(self) -> Any:
        """The ``ipywidgets.HTML`` holding the table (its ``value`` is the current HTML)."""
        self.widget()
        return self._body

    @property
    def watching(self) -> bool:
        """Whether the view is watching the store for pending explanations."""
        return self._watcher is not None and self._watcher.is_alive()

    def html(self) -> str:
        show_all = bool(self._toggle.value) if self._toggle is not None else False
        return comparison_html(self.comparison, show_all)

    def widget(self) -> Any:
        with self._lock:
            if self._widget is None:
                import ipywidgets as w

                self._body = w.HTML(comparison_html(self.comparison))
                self._toggle = w.Checkbox(
                    value=False, description="Show all parameters", indent=False
                )
                self._status = w.HTML("")
                self._toggle.observe(lambda _: self._redraw(), names="value")
                self._widget = w.VBox([self._toggle, self._body, self._status])
                self._start_watching()
            return self._widget

    def _redraw(self) -> None:
        if self._body is not None:
            self._body.value = self.html()

    def _start_watching(self) -> None:
        if self._store is None or not pending(self.comparison):
            return
        self._watcher = threading.Thread(
            target=self._watch, name="mlops-jupyter-compare-watch", daemon=True
        )
        self._watcher.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the view stops watching (nothing pending, its time up, or stopped);
        False if ``timeout`` ran out first."""
        watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout)
        return not self.watching

    def stop(self) -> None:
        """Stop watching the store (the view keeps what it shows)."""
        self._stop.set()

    def _watch(self) -> None:
        from ..compare import compare_runs, shap_status

        deadline = time.monotonic() + self.watch_s
        ids = [r["run_id"] for r in self.comparison["runs"]]
        seen = [s.get("status") for s in self.comparison["shap"]]
        try:
            while not self._stop.wait(self.poll_s):
                statuses = self._store.explanation_statuses(ids)
                if [shap_status(statuses.get(i)) for i in ids] != seen:
                    self.comparison = compare_runs(self._store, ids)
                    seen = [s.get("status") for s in self.comparison["shap"]]
                    self._redraw()
                    if not pending(self.comparison):
                        return
                if time.monotonic() > deadline:
                    self._status.value = (
                        f"<small>SHAP still pending after {self.watch_s / 60:g} min: run "
                        "%compare again to see it</small>"
                    )
                    return
        except Exception as exc:  # noqa: BLE001 - never into the cell: one line in the view
            self._status.value = (
                f"<small>Stopped updating SHAP: {_e(type(exc).__name__)}: {_e(exc)}</small>"
            )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget()._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = comparison_html(self.comparison)
        return bundle
