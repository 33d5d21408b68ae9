"""Benchmark: the side panel in real JupyterLab and real Chromium, on a 100,000-run store.

    python benchmarks/panel_browser.py            # writes the table into README.md
    python benchmarks/panel_browser.py --quick    # 5,000 runs, 1,000-step curves, prints only

A store of N runs in one experiment (10 params and 5 metrics each, written in bulk as in
``runs_query.py``) and, newest so on the first page, 10 runs with a ``loss`` curve of 10,000
steps. A real ``jupyter lab`` server (token auth) and headless Chromium driven by Playwright.
Times are read in the page: from the event (the click on Refresh, the Enter in the filter box,
the click on Charts; for a page load, navigation start) to the ``performance.mark`` the panel
sets once the rows are in the DOM (``mj-runs-rendered``) or the curves chart drawn
(``mj-curves-drawn``); each repetition starts once no request is in flight. The browser's
resource timing splits each figure into the time with a panel request open and the rest (the
page's own work). Beside them, the REST calls the panel waits on, timed alone from Python.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, median_ms, table  # noqa: E402
from runs_query import params_for  # noqa: E402  (the same 10 params a run)

EXPERIMENT = "bench"
CURVE_RUNS = 10
CHROMIUM = os.environ.get("MLOPS_JUPYTER_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [  # those of tests/test_browser.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL = "#mlops-jupyter-panel"
TAB = '.jp-SideBar [data-id="mlops-jupyter-panel"]'
API = "/mlops-jupyter/api/"
# the filters timed, with the share of the runs each matches (runs_query.py's data)
FILTERS = [
    ("params.group = rare", "1 %"),
    ("params.group = some", "20 %"),
    ("params.group = other", "80 %"),
    ("metrics.m1 >= 0.5", "50 %"),
    ("params.group = some metrics.m1 >= 0.5", "20 % and 50 %"),
]
GOALS = {"paint": 1000.0, "curves": 500.0, "filter": 200.0}

# Before any page script: count the requests in flight (to start each repetition on a quiet
# page), keep the time of the last click and Enter (the events a figure is timed from), keep
# every resource timing entry (the default buffer holds 250) and the main thread's long tasks.
INIT_SCRIPT = """
(() => {
  const state = { inflight: 0, click: null, enter: null, longTasks: [] };
  window.__mjBench = state;
  const original = window.fetch;
  window.fetch = function (...args) {
    state.inflight++;
    return original.apply(this, args).finally(() => { state.inflight--; });
  };
  window.addEventListener('click', e => { state.click = e.timeStamp; }, true);
  window.addEventListener('keydown', e => { if (e.key === 'Enter') state.enter = e.timeStamp; },
                          true);
  performance.setResourceTimingBufferSize(1000000);
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) state.longTasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask', buffered: true });
})();
"""
# the panel's requests that ended by ``until``, started from ``since``: [endpoint, start, end]
REQUESTS_JS = """([api, since, until]) => performance.getEntriesByType('resource')
  .filter(e => e.name.includes(api) && e.startTime >= since && e.responseEnd <= until)
  .map(e => [e.name.split(api)[1].split('?')[0], e.startTime, e.responseEnd])"""


def loss_curve(run: int, steps: int) -> list[float]:
    """A decay to the run's own floor with a deterministic wiggle."""
    rate = 5.0 / steps * (1 + 0.1 * run)
    return [0.2 + 0.02 * run + math.exp(-rate * s) + 0.01 * math.sin(s / 7 + run)
            for s in range(steps)]  # fmt: skip


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill_store(root: Path, n: int, steps: int) -> int:
    """``n`` bulk runs and the curve runs, newest; the number of runs of the experiment."""
    from _bulk import fill_runs

    from mlops_jupyter.store import Store

    start = time.perf_counter()

    def report(done: int) -> None:
        if done % 20_000 == 0 or done == n:
            rate = done / (time.perf_counter() - start)
            progress(f"  filling: {done:,} runs ({rate:,.0f}/s)")

    with Store.open(root / ".mlops") as store:
        fill_runs(store, EXPERIMENT, n, params_for, started_at=1.8e9, progress=report)
        rng = random.Random(1)
        for k in range(CURVE_RUNS):
            i = n + k
            points = [("loss", v, s) for s, v in enumerate(loss_curve(k, steps))]
            points += [(f"m{j}", rng.random(), 0) for j in range(5)]
            store.record_run(EXPERIMENT, name=f"curve-{k}", params=params_for(i), metrics=points,
                             started_at=1.8e9 + i, ended_at=1.8e9 + i + 1)  # fmt: skip
        store.conn.execute("ANALYZE")
    progress(f"  {CURVE_RUNS} runs with a {steps:,}-step loss curve added")
    return n + CURVE_RUNS


class Lab:
    """A JupyterLab page in Chromium, with the helpers the measurements share."""

    def __init__(self, page: Any, server: Any) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        self.version = ""
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    @property
    def panel(self) -> Any:
        return self.page.locator(PANEL)

    def load(self, path: str = "lab") -> None:
        """Open ``path``; once more if it fails (the front end may be rebuilt meanwhile)."""
        from playwright.sync_api import Error as PlaywrightError

        url = f"{self.server.url}{path}?token={self.server.token}"
        for attempt in (1, 2):
            try:
                self.page.goto(url)
                self.page.locator("#jupyterlab-splash").wait_for(state="detached")
                self.page.locator(TAB).wait_for()
                return
            except PlaywrightError as exc:
                if attempt == 2:
                    raise
                progress(f"  the page did not load ({str(exc).splitlines()[0]}); once more")

    def marks(self, name: str) -> int:
        return int(self.page.evaluate("n => performance.getEntriesByName(n).length", name))

    def mark_after(self, name: str, before: int) -> float:
        """Wait for mark ``name`` number ``before + 1``; its time (ms since navigation)."""
        self.page.wait_for_function(
            "([n, c]) => performance.getEntriesByName(n).length > c", arg=[name, before]
        )
        return float(
            self.page.evaluate(
                "([n, c]) => performance.getEntriesByName(n)[c].startTime", [name, before]
            )
        )

    def event(self, kind: str) -> float:
        return float(self.page.evaluate(f"() => window.__mjBench.{kind}"))

    def settle(self) -> None:
        """No request in flight, then two frames (nothing left over from the last step)."""
        self.page.wait_for_function("() => window.__mjBench.inflight === 0")
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                           "requestAnimationFrame(r)))")  # fmt: skip

    def requests(self, since: float, until: float) -> list[tuple[str, float, float]]:
        return [tuple(r) for r in self.page.evaluate(REQUESTS_JS, [API, since, until])]  # type: ignore[misc]

    def page_label(self) -> str:
        return str(self.panel.locator(".mj-page").text_content())


def waiting_ms(requests: list[tuple[str, float, float]]) -> float:
    """How long at least one of ``requests`` was open (their union on the time line)."""
    total, end = 0.0, -math.inf
    for _, start, stop in sorted(requests, key=lambda r: r[1]):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


class Timing:
    """The repetitions of one measurement: total, time waiting on panel requests, extras."""

    def __init__(self) -> None:
        self.totals: list[float] = []
        self.waits: list[float] = []
        self.extra: dict[str, list[float]] = {}

    def add(self, total: float, wait: float, **extra: float) -> None:
        self.totals.append(total)
        self.waits.append(wait)
        for key, value in extra.items():
            self.extra.setdefault(key, []).append(value)

    def median(self, key: str | None = None) -> float:
        values = self.totals if key is None else self.extra[key]
        return statistics.median(values)

    def spread(self) -> str:
        return f"{min(self.totals):,.0f}–{max(self.totals):,.0f} ({len(self.totals)})"


def time_refresh(lab: Lab, expected: str) -> tuple[float, float, dict[str, float]]:
    """Refresh click to rows: (total, waiting on panel requests, {"panel": the `GET panel`
    request in the page})."""
    lab.settle()
    before = lab.marks("mj-runs-rendered")
    lab.panel.locator(".mj-refresh").click()
    done = lab.mark_after("mj-runs-rendered", before)
    clicked = lab.event("click")
    assert lab.page_label() == expected, lab.page_label()
    requests = lab.requests(clicked, done)
    progress("    " + ", ".join(f"{name} {a - clicked:,.0f}-{b - clicked:,.0f}"
                                for name, a, b in requests))  # fmt: skip
    parts = {"panel": waiting_ms([r for r in requests if r[0] == "panel"])}
    return done - clicked, waiting_ms(requests), parts


def time_page_load(lab: Lab, expected: str) -> tuple[float, float, dict[str, float]]:
    """Navigation start to the first rendered table, with the panel restored open: (total,
    waiting on panel requests, {"first": when the panel's first request started, "panel":
    from then to the rows, "busy": of that, the main thread's long tasks, "stores": how many
    times the panel asked for its store})."""
    lab.settle()
    lab.load()
    done = lab.mark_after("mj-runs-rendered", 0)
    requests = lab.requests(0, done)
    lab.panel.locator("tr.mj-run").first.wait_for()
    first = min(r[1] for r in requests)
    progress("    " + ", ".join(f"{name} {a:,.0f}-{b:,.0f}" for name, a, b in requests))
    assert lab.page_label() == expected, lab.page_label()
    tasks = lab.page.evaluate("() => window.__mjBench.longTasks")
    busy = sum(max(0.0, min(s + d, done) - max(s, first)) for s, d in tasks)
    stores = sum(1 for r in requests if r[0] in ("store", "panel"))
    parts = {"first": first, "panel": done - first, "busy": busy, "stores": stores}
    return done, waiting_ms(requests), parts


def time_filter(lab: Lab, line: str) -> tuple[float, float, str]:
    box = lab.panel.locator(".mj-filter")
    box.fill(line)
    lab.settle()
    before = lab.marks("mj-runs-rendered")
    box.press("Enter")
    done = lab.mark_after("mj-runs-rendered", before)
    pressed = lab.event("enter")
    requests = lab.requests(pressed, done)
    progress("    " + ", ".join(f"{name[:12]} {a - pressed:,.0f}-{b - pressed:,.0f}"
                                for name, a, b in requests))  # fmt: skip
    return done - pressed, waiting_ms(requests), lab.page_label()


def time_curves(lab: Lab) -> tuple[float, float, dict[str, float]]:
    """Charts of the ticked runs: (click to drawn, waiting on requests, {"fetch":
    data-fetch-ms, "draw": data-draw-ms, "runs": the requests for each run's record}); the
    view is closed again afterwards."""
    page = lab.page
    lab.settle()
    before = lab.marks("mj-curves-drawn")
    lab.panel.locator(".mj-charts").click()
    done = lab.mark_after("mj-curves-drawn", before)
    clicked = lab.event("click")
    chart = page.locator(".mj-charts-view .mj-curves").first
    fetch_ms = float(chart.get_attribute("data-fetch-ms") or "nan")
    draw_ms = float(chart.get_attribute("data-draw-ms") or "nan")
    requests = lab.requests(clicked, done)
    wait = waiting_ms(requests)
    progress("    " + ", ".join(f"{name[:12]} {a - clicked:,.0f}-{b - clicked:,.0f}"
                                for name, a, b in requests))  # fmt: skip
    lab.settle()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Charts: ")
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    page.locator(".mj-charts-view").wait_for(state="detached")
    records = waiting_ms([r for r in requests if r[0].startswith("runs/")])
    return done - clicked, wait, {"fetch": fetch_ms, "draw": draw_ms, "runs": records}


def wait_for_workspace(server: Any, seconds: float = 60) -> None:
    """Wait until JupyterLab saved the panel open on the experiment (a reload restores it)."""
    import requests

    url = server.api("lab/api/workspaces/default")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = requests.get(url, headers={"Authorization": f"token {server.token}"},
                            timeout=30).json().get("data", {})  # fmt: skip
        left = data.get("layout-restorer:data", {}).get("left", {})
        state = data.get("mlops-jupyter:panel", {})
        if left.get("current") == PANEL[1:] and state.get("experiment") == EXPERIMENT:
            return
        time.sleep(0.2)  # JupyterLab saves the workspace after a debounce: poll it
    raise RuntimeError("JupyterLab did not save the panel's state in the workspace")


@contextmanager
def lab_page(server: Any) -> Iterator[Lab]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_FLAGS)  # fmt: skip
        try:
            context = chromium.new_context(viewport={"width": 1440, "height": 900})
            context.add_init_script(INIT_SCRIPT)
            page = context.new_page()
            page.set_default_timeout(120_000)
            lab = Lab(page, server)
            lab.version = chromium.version
            yield lab
        finally:
            chromium.close()


def browser_figures(server: Any, rest: Rest, runs: int, repeat: int) -> dict[str, Any]:
    """Every browser measurement, in the order that keeps them apart (page loads before any
    charts view exists, so a reload restores only the panel). Each repetition is followed by
    the REST calls it waited on, timed alone from Python at the same moment (the machine's
    load changes over minutes; a ratio of figures taken apart would show it)."""
    out: dict[str, Any] = {}
    expected = f"1–50 of {runs}"
    with lab_page(server) as lab:
        page = lab.page
        out["chromium"] = lab.version
        lab.load()  # the panel lists the runs at start-up, shown or not
        done = lab.mark_after("mj-runs-rendered", 0)
        out["cold"] = done - min(r[1] for r in lab.requests(0, done))
        progress(f"  first paint on a just-started server, from the panel's first request: "
                 f"{out['cold']:,.0f} ms")  # fmt: skip
        lab.settle()
        page.locator(TAB).click()
        lab.panel.wait_for(state="visible")
        lab.settle()
        before = lab.marks("mj-runs-rendered")
        lab.panel.locator(".mj-experiment").select_option(EXPERIMENT)
        lab.mark_after("mj-runs-rendered", before)
        assert lab.page_label() == expected, lab.page_label()
        wait_for_workspace(server)

        refresh = out["refresh"] = Timing()
        time_refresh(lab, expected)  # warm-up
        for _ in range(repeat):
            total, wait, parts = time_refresh(lab, expected)
            refresh.add(total, wait, **parts, **rest.refresh_sample())
            progress(f"  Refresh to rows: {total:,.1f} ms ({wait:,.1f} ms waiting on requests)")

        load = out["load"] = Timing()
        for _ in range(repeat):
            total, wait, parts = time_page_load(lab, expected)
            load.add(total, wait, **parts, **rest.refresh_sample())
            progress(f"  page load to rows: {total:,.0f} ms (the panel's first request at "
                     f"{parts['first']:,.0f} ms; {wait:,.0f} ms waiting on requests, "
                     f"{parts['busy']:,.0f} ms of long tasks)")  # fmt: skip
        lab.panel.locator("tr.mj-run").first.wait_for()

        filters: dict[str, Timing] = {}
        out["filters"], out["filter_first"], out["matched"] = filters, {}, {}
        for line, _ in FILTERS:  # the first use of each: its key's column enters the index
            total, wait, label = time_filter(lab, line)
            out["filter_first"][line] = total
            out["matched"][line] = label.split(" of ")[-1]
            filters[line] = Timing()
            progress(f"  filter {line!r} (first time): {total:,.1f} ms, {label}")
        for _ in range(repeat):
            for line, _ in FILTERS:
                total, wait, label = time_filter(lab, line)
                filters[line].add(total, wait, rest=rest.once(line))
                progress(f"  filter {line!r}: {total:,.1f} ms ({wait:,.1f} ms waiting)")
        time_filter(lab, "")
        assert lab.page_label() == expected, lab.page_label()

        rows = lab.panel.locator("tr.mj-run")
        for k in range(CURVE_RUNS):
            row = rows.nth(k)
            name = row.locator(".mj-run-name").text_content()
            assert name == f"curve-{CURVE_RUNS - 1 - k}", name
            row.locator(".mj-select").check()
        assert lab.panel.locator(".mj-charts").text_content() == f"Charts of {CURVE_RUNS}"
        curves = out["curves"] = Timing()
        total, _, _ = time_curves(lab)  # warm-up: the first read of the curves' pages
        out["curves_first"] = total
        progress(f"  curves (first time): {total:,.0f} ms")
        for _ in range(repeat):
            total, wait, parts = time_curves(lab)
            curves.add(total, wait, **parts, **rest.curves_sample())
            progress(f"  curves: {total:,.1f} ms (fetch {parts['fetch']:,.1f}, draw "
                     f"{parts['draw']:,.1f}, the runs' records {parts['runs']:,.1f})")  # fmt: skip
        if lab.errors:
            progress("  page errors: " + "; ".join(lab.errors))
    return out


class Rest:
    """The REST calls the panel makes, from Python (token auth, loopback)."""

    def __init__(self, server: Any, ids: list[str]) -> None:
        import requests

        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {server.token}"
        self.statuses: dict[str, int] = {}
        page = {"experiment": EXPERIMENT, "sort": "-started_at", "offset": "0", "limit": "50"}
        joined = ",".join(ids)
        self.calls = {
            "panel": self.get("panel", **page),
            "store": self.get("store"),
            "experiments": self.get("experiments"),
            "columns": self.get("columns", experiment=EXPERIMENT),
            "settings": self.get("experiments/settings", experiment=EXPERIMENT),
            "runs": self.get("runs", **page),
            "run": self.get(f"runs/{ids[0]}", history="0"),
            "curve keys": self.get("curves/keys", ids=joined),
            "curves": self.get("curves", ids=joined, key="loss"),
        }
        self.calls.update({line: self.get("runs", filter=line, **page) for line, _ in FILTERS})
        self.records = [self.get(f"runs/{i}", history="0") for i in ids]

    def get(self, endpoint: str, **params: Any) -> Callable[[], Any]:
        def call() -> Any:
            answer = self.session.get(self.server.api(f"mlops-jupyter/api/{endpoint}"),
                                      params={"path": "", **params}, timeout=60)  # fmt: skip
            if answer.status_code != 404:  # the panel goes on after a 404 (a newer front end)
                answer.raise_for_status()
            self.statuses[endpoint] = answer.status_code
            return answer

        return call

    def once(self, *names: str) -> float:
        """One call of each of ``names`` in turn ("records": the curve runs' records), ms."""
        start = time.perf_counter()
        for name in names:
            for call in self.records if name == "records" else [self.calls[name]]:
                call()
        return (time.perf_counter() - start) * 1000

    def refresh_sample(self) -> dict[str, float]:
        """The request a Refresh waits on (`GET panel`), timed once right after the browser
        did it."""
        panel = self.once("panel")
        return {"rest_panel": panel, "rest": panel}

    def curves_sample(self) -> dict[str, float]:
        records, keys, curves = self.once("records"), self.once("curve keys"), self.once("curves")
        return {"rest_records": records, "rest_curves": curves, "rest": records + keys + curves}

    def alone(self, repeat: int) -> dict[str, float]:
        """Each call's median of ``repeat`` (after one to warm), and what the curves send."""
        out = {}
        for name, call in self.calls.items():
            call()
            out[name] = median_ms(call, repeat)
            progress(f"  REST {name}: {out[name]:,.1f} ms")
        out["records"] = median_ms(lambda: self.once("records"), repeat)
        progress(f"  REST the {len(self.records)} runs' records in turn: {out['records']:,.1f} ms")
        answer = self.calls["curves"]()
        out["curves bytes"] = float(len(answer.content))
        runs = answer.json()["runs"]
        out["curves points"] = float(sum(len(r["steps"]) for r in runs))
        out["curves total"] = float(sum(r["total"] for r in runs))
        out["settings status"] = float(self.statuses["experiments/settings"])
        return out


def curve_ids(root: Path) -> list[str]:
    from mlops_jupyter.store import Store

    with Store.open(root / ".mlops", create=False) as store:
        rows = store.conn.execute(
            "SELECT id FROM runs WHERE name LIKE 'curve-%' ORDER BY started_at DESC"
        ).fetchall()
    return [r[0] for r in rows]


def ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def render(
    n: int,
    steps: int,
    repeat: int,
    b: dict[str, Any],
    rest: dict[str, float],
    calls: int,
    load_average: tuple[float, float],
) -> str:
    rows: list[list[str]] = []

    def timed(what: str, t: Timing, goal: str, on: str) -> None:
        """A row of repeated browser figures beside the REST call(s) it waits on."""
        waiting, rest_ms = ms(statistics.median(t.waits)), t.median("rest")
        versus, server = f"{t.median() / rest_ms:,.1f}x", ms(rest_ms) + on
        met = f"< {GOALS[goal]:,.0f} ms: " + ("met" if t.median() < GOALS[goal] else "**missed**")
        rows.append([what, ms(t.median()), t.spread(), waiting, server, versus, met])

    def part(what: str, value: float, note: str = "", rest_ms: float | None = None) -> None:
        """A row of one figure: a part of the row above, or a single run."""
        versus = f"{value / rest_ms:,.1f}x" if rest_ms else ""
        rows.append([what, ms(value), note, "", ms(rest_ms) if rest_ms else "", versus, ""])

    runs = n + CURVE_RUNS
    refresh, load, curves = b["refresh"], b["load"], b["curves"]
    timed(f"**Refresh** to the runs table ({runs:,} runs, a page of 50)", refresh, "paint",
          " (`panel`: store, experiments, columns, settings and runs at once)")  # fmt: skip
    part("of which: the `panel` request in the page", refresh.median("panel"),
         rest_ms=refresh.median("rest_panel"))  # fmt: skip
    timed("**page load** to the runs table (navigation start; the panel restored open)", load,
          "paint", " (the same request)")  # fmt: skip
    part("of which: JupyterLab starts, until the panel's first request", load.median("first"))
    part("of which: the panel's first request to the runs table", load.median("panel"),
         f"asks for its store {int(load.median('stores'))} times",
         rest_ms=load.median("rest"))  # fmt: skip
    part("of that: long tasks on the main thread (JupyterLab still starting)", load.median("busy"))
    part("first paint on a just-started server, from the panel's first request (the server "
         "opens the store and builds its index)", b["cold"], "one run")  # fmt: skip
    shown = int(rest["curves points"]) // CURVE_RUNS
    timed(f"**curves** of {CURVE_RUNS} runs x {steps:,} steps: Charts click to drawn "
          f"({shown:,} points a curve drawn)", curves, "curves",
          f" ({CURVE_RUNS} `runs/ID` in turn, `curves/keys`, `curves`)")  # fmt: skip
    part(f"of which: the {CURVE_RUNS} runs' records (`runs/ID?history=0`; 6 connections at a "
         "time)", curves.median("runs"), rest_ms=curves.median("rest_records"))  # fmt: skip
    part("of which: fetching the curves (`data-fetch-ms`)", curves.median("fetch"),
         rest_ms=curves.median("rest_curves"))  # fmt: skip
    part("of which: drawing them (`data-draw-ms`, uPlot)", curves.median("draw"))
    part("curves, the first time (the store reads the curves' pages)", b["curves_first"],
         "one run")  # fmt: skip
    for line, share in FILTERS:
        matched = int(b["matched"][line])
        timed(f"**filter** `{line}` to repaint ({share}: {matched:,} runs)", b["filters"][line],
              "filter", " (`runs`)")  # fmt: skip
    part("a filter the first time it names a key (its column enters the index), the slowest "
         "of those above", max(b["filter_first"].values()), "one run each")  # fmt: skip
    header = ["what (in Chromium)", "median", "range (n)", "of it, a panel request open",
              "the REST calls it waits on, alone", "browser vs REST", "goal"]  # fmt: skip

    settings = "experiments/settings?experiment=" + EXPERIMENT
    if rest["settings status"] == 404:
        settings += " (404: this server has no such route yet)"
    sent = f"{int(rest['curves points']):,} sent, {rest['curves bytes'] / 2**20:.1f} MiB"
    calls_made = [
        (f"panel?experiment={EXPERIMENT}&limit=50 (the runs view: the five below in one)",
         "panel"),
        (f"columns?experiment={EXPERIMENT}", "columns"),
        (f"runs?experiment={EXPERIMENT}&limit=50 (newest first)", "runs"),
        ("store", "store"),
        ("experiments", "experiments"),
        (settings, "settings"),
        (f"runs/ID?history=0 (one of the {CURVE_RUNS} the charts view reads)", "run"),
        (f"runs/ID?history=0, the {CURVE_RUNS} in turn", "records"),
        (f"curves/keys?ids=({CURVE_RUNS} runs)", "curve keys"),
        (f"curves?ids=({CURVE_RUNS} runs)&key=loss ({int(rest['curves total']):,} points, {sent})",
         "curves"),
    ]  # fmt: skip
    server_rows = [[f"`GET {call}`", ms(rest[key])] for call, key in calls_made]
    return (
        f"Machine: {machine()}. Chromium {b['chromium']} (headless) through Playwright "
        f"{_version('playwright')}, JupyterLab {_version('jupyterlab')}; a store of {runs:,} runs "
        f"in one experiment; load average {load_average[0]:.1f} at the start, "
        f"{load_average[1]:.1f} at the end (the 2 cores are shared). Median of {repeat} (after a "
        "warm-up); the time in the page from the event to the panel's `performance.mark`. The "
        "REST calls beside each figure: timed alone from Python right after each repetition, "
        "their median.\n\n"
        + table(header, rows)
        + f"\n\nThe REST calls alone (token auth, loopback), median of {calls}:\n\n"
        + table(["call", "median"], server_rows)
    )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def run(quick: bool) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from server_helpers import running_server

    if not Path(CHROMIUM).is_file():
        sys.exit(f"panel_browser.py: no Chromium at {CHROMIUM} (set MLOPS_JUPYTER_CHROMIUM)")
    n, steps, repeat = (5_000, 1_000, 2) if quick else (100_000, 10_000, 7)
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "root", Path(tmp) / "home"
        root.mkdir()
        home.mkdir()
        progress(f"panel_browser: {n:,} runs")
        runs = fill_store(root, n, steps)
        ids = curve_ids(root)
        with running_server(root, home, lab=True) as server:
            progress("  jupyter lab started")
            started = os.getloadavg()[0]
            rest = Rest(server, ids)
            browser = browser_figures(server, rest, runs, repeat)
            calls = 5 if quick else 21
            alone = rest.alone(calls)
            ended = os.getloadavg()[0]
    return render(n, steps, repeat, browser, alone, calls, (started, ended))


def main() -> None:
    cli_main(__doc__, "panel-browser", run, quick_help="5,000 runs, 1,000-step curves, print only")


if __name__ == "__main__":
    main()
