"""The panel as the place to analyse runs, in real JupyterLab and real Chromium: charts,
the run view, code diffs, deep links, CSV export, the primary metric, the Models view's
comparison with production (issue 14)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from monitoring_helpers import POLICY, in_production, signers, tracked_training_run
from server_helpers import RunningServer, running_server
from test_browser import (
    ARTIFACTS,
    EMPTY_NOTEBOOK,
    Browser,
    browser_session,
    chromium_path,
    current_tab,
    open_panel,
    wait_for_workspace,
    without_closed_websocket_noise,
)

from mlops_jupyter.registry.registry import Registry
from mlops_jupyter.store import Store

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = 200
OWNERS = ["ana", "bo", "cy"]


def loss_curve(i: int) -> list[float]:
    """Run ``i``'s training loss: a decay to its own floor, with a deterministic wiggle."""
    return [
        0.2 + 0.05 * (i % 4) + 0.8 * math.exp(-(0.01 + 0.004 * i) * s) + 0.01 * math.sin(s + i)
        for s in range(STEPS)
    ]


CELL = "model = fit(X, y, lr={lr})\nscore = evaluate(model)\n"
BEFORE = ["import numpy as np", "X, y = load('churn.parquet')", "features = {features}"]


@pytest.fixture(scope="module")
def study(lab: RunningServer) -> list[dict[str, Any]]:
    """Twelve runs of "study": three params, a 200-step loss curve, val_auc, a train time,
    an owner tag, and the cell with the cells before it (run 1's code differs from run 0's
    in one line, and in one earlier cell)."""
    runs = []
    with Store.open(lab.root / "study" / ".mlops") as store:
        for i in range(12):
            lr = [0.1, 0.05, 0.02][i % 3]
            features = ["base", "base+usage"][i % 2]
            loss = loss_curve(i)
            points = [("loss", v, s) for s, v in enumerate(loss)]
            auc = round(0.80 + ((i * 7) % 12) / 100, 4)
            points += [("val_auc", auc, 0), ("train_time_s", 1.5 + i * 0.25, 0)]
            history = [
                {"execution_count": n + 1, "source": text.format(features=features)}
                for n, text in enumerate(BEFORE)
            ]
            run_id = store.record_run(
                "study",
                name=f"s{i:02d}",
                params={"lr": lr, "depth": 2 + i % 5, "feature_set": features},
                metrics=points,
                tags={"owner": OWNERS[i % 3]},
                source=CELL.format(lr=lr),
                execution_count=4,
                history=history,
                started_at=1_800_000_000 + 60 * i,
                ended_at=1_800_000_000 + 60 * i + 30,
            )
            runs.append(
                {"id": run_id, "name": f"s{i:02d}", "lr": lr, "features": features,
                 "loss": loss, "auc": auc, "time": 1.5 + i * 0.25, "owner": OWNERS[i % 3]}
            )  # fmt: skip
    (lab.root / "study" / "notes.txt").write_text("a text file needs no kernel\n")
    return runs


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    chromium_path()
    home = tmp_path_factory.mktemp("analysis-home")
    root = tmp_path_factory.mktemp("analysis-root")
    (root / "study").mkdir()
    (root / "study" / "analysis.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    with running_server(root, home, lab=True) as running:
        yield running
        log = running.log()
    assert "Traceback" not in without_closed_websocket_noise(log), log


@pytest.fixture(scope="module")
def browser(lab: RunningServer) -> Iterator[Browser]:
    with browser_session(f"{lab.url}lab/tree/study/notes.txt?token={lab.token}", 1440) as session:
        yield session


def api(lab: RunningServer, endpoint: str, **params: Any) -> Any:
    answer = requests.get(
        lab.api(f"mlops-jupyter/api/{endpoint}"),
        params=params,
        headers={"Authorization": f"token {lab.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def show_study(browser: Browser, lab: RunningServer) -> None:
    """The panel on the study's store, experiment "study", newest first, no filter."""
    from playwright.sync_api import expect

    page = browser.page
    page.goto(f"{lab.url}lab/tree/study/notes.txt?token={lab.token}")
    current_tab(page, "notes.txt").wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-runs").click()
    expect(panel.locator(".mj-store-path")).to_have_text("study/.mlops")
    panel.locator(".mj-experiment").select_option("study")
    box = panel.locator(".mj-filter")
    if box.input_value():
        box.fill("")
        box.press("Enter")
    started = panel.locator("button.mj-sort[data-sort='started_at']")
    if "▼" not in (started.text_content() or ""):
        started.click()
    expect(started).to_contain_text("▼")
    expect(panel.locator(".mj-page")).to_have_text("1–12 of 12")
    for box in panel.locator("input.mj-select:checked").all():
        box.uncheck()


def close_tabs(page: Page, label: str) -> None:
    """Close every main-area tab labelled ``label``."""
    from playwright.sync_api import expect

    tabs = page.locator(f".lm-DockPanel-tabBar .lm-TabBar-tab:has-text('{label}')")
    while tabs.count():
        tabs.first.locator(".lm-TabBar-tabCloseIcon").click()
    expect(tabs).to_have_count(0)


def tick(browser: Browser, *names: str) -> None:
    rows = browser.panel.locator("tr.mj-run")
    for name in names:
        rows.filter(has=browser.page.locator(".mj-run-name", has_text=name)).locator(
            ".mj-select"
        ).check()


def chart_data(page: Page, selector: str) -> dict[str, Any]:
    return page.locator(selector).evaluate("n => JSON.parse(JSON.stringify(n.mjChart))")


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average, computed independently."""
    out, last = [], 0.0
    for n, v in enumerate(values, start=1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def test_curves_of_three_runs_with_smoothing_and_log_scale(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    picked = [study[2], study[5], study[9]]
    tick(browser, *(r["name"] for r in picked))
    panel = browser.panel
    expect(panel.locator(".mj-charts")).to_have_text("Charts of 3")
    panel.locator(".mj-charts").click()
    view = browser.page.locator(".mj-charts-view:visible")
    expect(view.locator(".mj-charts-scope")).to_have_text("3 ticked runs")
    expect(view.locator(".mj-curve-metric option")).to_have_text(["loss"])
    curves = view.locator(".mj-curves")
    expect(curves).to_have_attribute("data-metric", "loss")
    drawn = chart_data(browser.page, ".mj-charts-view:visible .mj-curves")
    assert set(drawn["runs"]) == {r["id"] for r in picked}
    assert drawn["data"][0] == list(range(STEPS))
    by_id = {r["id"]: r for r in picked}
    for series, run_id in enumerate(drawn["runs"], start=1):
        assert drawn["data"][series] == pytest.approx(by_id[run_id]["loss"], rel=1e-12)
    legend = view.locator(".mj-curves .u-legend .u-series")
    expect(legend).to_have_count(4)  # the step and the three runs

    view.locator(".mj-smoothing").fill("0.6")
    view.locator(".mj-smoothing").dispatch_event("input")
    smoothed = chart_data(browser.page, ".mj-charts-view:visible .mj-curves")
    first = drawn["runs"][0]
    assert smoothed["data"][1] == pytest.approx(ema(by_id[first]["loss"], 0.6), rel=1e-9)
    view.locator(".mj-log-scale").check()
    logged = chart_data(browser.page, ".mj-charts-view:visible .mj-curves")
    assert logged["distr"] == 3  # a logarithmic axis, the smoothed values unchanged
    assert logged["data"][1] == pytest.approx(smoothed["data"][1], rel=1e-12)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.page.screenshot(path=str(ARTIFACTS / "charts-curves.png"))


def test_parallel_coordinates_and_scatter_of_the_filtered_runs(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    panel = browser.panel
    box = panel.locator(".mj-filter")
    box.fill("params.feature_set = base+usage metrics.val_auc >= 0.83")
    box.press("Enter")
    chosen = [r for r in study if r["features"] == "base+usage" and r["auc"] >= 0.83]
    assert 0 < len(chosen) < 12
    expect(panel.locator(".mj-page")).to_have_text(f"1–{len(chosen)} of {len(chosen)}")
    panel.locator(".mj-charts").click()
    view = browser.page.locator(".mj-charts-view:visible")
    expect(view.locator(".mj-charts-scope")).to_contain_text(f"{len(chosen)} runs")
    expect(view.locator(".mj-parallel")).to_be_visible()
    view.locator(".mj-parallel-colour").select_option("metrics.val_auc")
    parallel = chart_data(browser.page, ".mj-charts-view:visible .mj-parallel")
    assert sorted(parallel["runs"]) == sorted(r["id"] for r in chosen)
    assert parallel["columns"][-1] == "metrics.val_auc"  # read against the others
    assert "params.lr" in parallel["columns"]
    auc_axis = parallel["axes"][-1]
    assert auc_axis["min"] == min(r["auc"] for r in chosen)
    assert auc_axis["max"] == max(r["auc"] for r in chosen)
    labels = view.locator(".mj-parallel .mj-axis-name")
    expect(labels.last).to_have_text("val_auc")

    view.locator(".mj-scatter-x").select_option("params.lr")
    view.locator(".mj-scatter-y").select_option("metrics.val_auc")
    scatter = chart_data(browser.page, ".mj-charts-view:visible .mj-scatter")
    points = sorted(zip(scatter["data"][0], scatter["data"][1], strict=True))
    assert points == sorted((r["lr"], r["auc"]) for r in chosen)
    browser.page.screenshot(path=str(ARTIFACTS / "charts-parallel-scatter.png"))
    sections = view.locator(".mj-chart-section")
    sections.nth(1).screenshot(path=str(ARTIFACTS / "charts-parallel.png"))
    sections.nth(2).screenshot(path=str(ARTIFACTS / "charts-scatter.png"))
    box.fill("")
    box.press("Enter")
    expect(panel.locator(".mj-page")).to_have_text("1–12 of 12")


def test_sparklines_and_the_table_in_the_main_area(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    panel = browser.panel
    panel.locator(".mj-columns-button").click()
    menu = panel.locator(".mj-columns-menu")
    loss = menu.locator("input[data-column='metrics.loss']")
    if not loss.is_checked():
        loss.check()
    panel.locator(".mj-columns-button").click()
    cell = panel.locator("tr.mj-run").first.locator("td[data-column='metrics.loss']")
    expect(cell.locator("svg.mj-sparkline polyline")).to_have_count(1)
    points = cell.locator("polyline").get_attribute("points") or ""
    newest = study[-1]
    served = api(lab, "curves", path="study", ids=newest["id"], key="loss", points=32)
    drawn = len(served["runs"][0]["values"])
    assert 2 < drawn <= 32 and len(points.split()) == drawn  # the curve, in at most 32 points
    panel.locator(".mj-open-main").click()
    table = browser.page.locator("#mlops-jupyter-runs-main")
    expect(table).to_be_visible()
    expect(table.locator(".mj-page")).to_have_text("1–12 of 12")
    expect(table.locator("tr.mj-run .mj-run-name")).to_have_text(
        [r["name"] for r in reversed(study)]
    )
    table_box = table.bounding_box()
    assert table_box is not None and table_box["width"] > 800
    browser.page.screenshot(path=str(ARTIFACTS / "runs-main-area.png"))
    close_tabs(browser.page, "MLOps runs")
    expect(table).to_have_count(0)


def test_run_view_with_an_edited_tag_and_a_note_that_persist(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    run = study[4]
    rows = browser.panel.locator("tr.mj-run")
    rows.filter(has=browser.page.locator(".mj-run-name", has_text=run["name"])).locator(
        ".mj-run-name"
    ).click()
    view = browser.page.locator(".mj-run-view:visible")
    expect(view.locator(".mj-run-title")).to_have_text(run["name"])
    expect(view.locator(".mj-params tbody tr")).to_have_count(3)
    expect(view.locator(".mj-params tr", has_text="lr").locator("td").nth(1)).to_have_text(
        str(run["lr"])
    )
    expect(view.locator(".mj-code").first).to_have_text(CELL.format(lr=run["lr"]))
    expect(view.locator(".mj-history summary")).to_have_text("3 cells run before it")
    expect(view.locator(".mj-run-curve .mj-curves")).to_have_attribute("data-metric", "loss")
    drawn = chart_data(browser.page, ".mj-run-view:visible .mj-run-curve .mj-curves")
    assert drawn["data"][1] == pytest.approx(run["loss"], rel=1e-12)

    view.locator(".mj-tag-key").fill("stage")
    view.locator(".mj-tag-value").fill("<b>candidate</b>")  # text, never HTML
    view.locator(".mj-tag-add").click()
    expect(view.locator(".mj-tag-chip[data-tag='stage']")).to_have_text("stage = <b>candidate</b>×")
    view.locator(".mj-tag-chip[data-tag='owner'] .mj-tag-remove").click()
    expect(view.locator(".mj-tag-chip[data-tag='owner']")).to_have_count(0)
    view.locator(".mj-note").fill("Best trade-off so far;\nretry with depth 6.")
    view.locator(".mj-note-save").click()
    expect(view.locator(".mj-note-status")).to_have_text("saved")
    # the history of the run's tags, newest first, every value as text
    history = view.locator(".mj-tag-history")
    expect(history.locator("summary")).to_have_text("3 tag edits")
    history.locator("summary").click()
    expect(history.locator(".mj-tag-edit-text")).to_have_text(
        [
            "note = “Best trade-off so far;\nretry with depth 6.”",
            f"owner removed (was “{run['owner']}”)",
            "stage = “<b>candidate</b>”",
        ]
    )
    expect(history.locator("b")).to_have_count(0)
    record = api(lab, f"runs/{run['id']}", path="study", history="0")
    assert record["tags"] == {
        "stage": "<b>candidate</b>",
        "note": "Best trade-off so far;\nretry with depth 6.",
    }
    browser.page.screenshot(path=str(ARTIFACTS / "run-view.png"))

    wait_for_workspace(  # the run view is in the saved layout before the reload
        lab,
        lambda data: any(
            key.startswith("mlops-jupyter-run:") and value.get("data", {}).get("id") == run["id"]
            for key, value in data.items()
        ),
    )
    browser.page.reload()  # the run view is restored with the layout, tags read anew
    browser.page.wait_for_selector("#jp-main-dock-panel")
    tab = browser.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Run s04")
    tab.click()  # restored in the background: the page's own document stays current
    view = browser.page.locator(".mj-run-view:visible")
    expect(view.locator(".mj-tag-chip[data-tag='stage']")).to_have_text("stage = <b>candidate</b>×")
    expect(view.locator(".mj-note")).to_have_value("Best trade-off so far;\nretry with depth 6.")
    expect(view.locator(".mj-tag-history summary")).to_have_text("3 tag edits")
    close_tabs(browser.page, "Run s04")


def test_code_diff_highlights_the_changed_lines(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    tick(browser, "s00", "s01")
    browser.panel.locator(".mj-code-diff-button").click()
    view = browser.page.locator(".mj-diff-view:visible")
    sections = view.locator(".mj-diff-section")
    expect(sections).to_have_count(2)  # drawn once the diff is in: wait for it
    cell, history = sections.all()
    expect(cell.locator("h3")).to_have_text("The cell: +1 −1")
    expect(cell.locator(".mj-code-del .mj-code-text")).to_have_text("model = fit(X, y, lr=0.1)")
    expect(cell.locator(".mj-code-add .mj-code-text")).to_have_text("model = fit(X, y, lr=0.05)")
    expect(cell.locator(".mj-code-same .mj-code-text")).to_have_text(["score = evaluate(model)"])
    expect(history.locator(".mj-code-del .mj-code-text")).to_have_text("features = base")
    expect(history.locator(".mj-code-add .mj-code-text")).to_have_text("features = base+usage")
    colours = cell.locator(".mj-code-line").evaluate_all(
        "rows => rows.map(r => getComputedStyle(r).backgroundColor)"
    )
    assert colours[0] != colours[1] and len(set(colours)) == 3  # removed, added, unchanged
    browser.page.screenshot(path=str(ARTIFACTS / "code-diff.png"))


def test_a_deep_link_reopens_the_comparison_after_a_reload(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    tick(browser, "s03", "s07")
    browser.panel.locator(".mj-compare").click()
    view = browser.page.locator(".mj-compare-view:visible")
    expect(view.locator("thead th[title]")).to_have_count(2)
    link_button = view.locator(".mj-copy-link")
    link_button.click()
    link = link_button.get_attribute("data-link") or ""
    assert "mlops=compare" in link and "path=study" in link
    ids = sorted(th.get_attribute("title") for th in view.locator("thead th[title]").all())
    assert ids == sorted([study[3]["id"], study[7]["id"]])
    # close it, so that only the link can bring it back
    close_tabs(browser.page, "Compare 2 runs")
    expect(browser.page.locator(".mj-compare-view")).to_have_count(0)
    wait_for_workspace(
        lab, lambda data: not any(k.startswith("mlops-jupyter-compare:") for k in data)
    )
    page = browser.page
    page.goto(f"{link}&token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    view = page.locator(".mj-compare-view")
    expect(view.locator("thead th[title]")).to_have_count(2)
    assert sorted(th.get_attribute("title") for th in view.locator("thead th[title]").all()) == ids
    assert "mlops=" not in page.url  # the link did its work: a reload is a plain reload
    wait_for_workspace(lab, lambda data: any(k.startswith("mlops-jupyter-compare:") for k in data))
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel")
    expect(page.locator(".mj-compare-view thead th[title]")).to_have_count(2)
    close_tabs(page, "Compare 2 runs")
    page.goto(f"{lab.url}lab/tree/study/notes.txt?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")


def test_a_page_load_lists_once_and_the_workspace_state_wins(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    """A reload lists the store with one `GET panel` request, from the state this browser
    kept (no waiting for the workspace); when another browser saved another state since, the
    workspace's replaces it."""
    from urllib.parse import parse_qs, urlsplit

    from playwright.sync_api import expect

    show_study(browser, lab)
    page, panel = browser.page, browser.panel

    def named(line: str) -> list[str]:  # as the REST API lists them (an earlier test edits tags)
        return [
            r["name"]
            for r in api(lab, "runs", path="study", experiment="study", filter=line)["runs"]
        ]

    bo, cy = named("tags.owner = bo"), named("tags.owner = cy")
    assert len(bo) >= 3 and len(cy) >= 3 and not set(bo) & set(cy)
    box = panel.locator(".mj-filter")
    box.fill("tags.owner = bo")
    box.press("Enter")
    names = panel.locator("tr.mj-run .mj-run-name")
    expect(names).to_have_text(bo)
    # only the panel lists runs: the views earlier tests left open (the main-area table among
    # them) are closed, and the layout saved without them
    tabs = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab")
    others = tabs.filter(has_not_text="notes.txt")
    while others.count():
        others.first.locator(".lm-TabBar-tabCloseIcon").click()
    expect(tabs).to_have_count(1)
    wait_for_workspace(
        lab,
        lambda data: (
            data.get("mlops-jupyter:panel", {}).get("filter") == "tags.owner = bo"
            and not any(key.startswith("mlops-jupyter-") for key in data)
        ),
    )

    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/mlops-jupyter/api/" in r.url else None)
    page.reload()
    expect(names).to_have_text(bo)
    expect(box).to_have_value("tags.owner = bo")
    listing = ("panel", "runs", "columns", "store", "experiments", "experiments/settings")
    endpoints = [urlsplit(url).path.split("/mlops-jupyter/api/")[1] for url in asked]
    assert [e for e in endpoints if e in listing] == ["panel"], "\n".join(asked)  # one request
    query = parse_qs(urlsplit(asked[endpoints.index("panel")]).query)
    assert (query["path"], query["experiment"], query["filter"]) == (
        ["study"],
        ["study"],
        ["tags.owner = bo"],
    )

    # another browser (no copy of its own: the workspace's state) filters on cy ...
    chromium = page.context.browser
    assert chromium is not None
    second = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = Browser(second.new_page())
        other.page.set_default_timeout(60_000)
        other.page.goto(f"{lab.url}lab/tree/study/notes.txt?token={lab.token}")
        current_tab(other.page, "notes.txt").wait_for()  # started: the splash is up, or gone
        open_panel(other)
        their_box = other.panel.locator(".mj-filter")
        expect(their_box).to_have_value("tags.owner = bo")
        their_box.fill("tags.owner = cy")
        their_box.press("Enter")
        expect(other.panel.locator("tr.mj-run .mj-run-name")).to_have_text(cy)
        wait_for_workspace(
            lab,
            lambda data: data.get("mlops-jupyter:panel", {}).get("filter") == "tags.owner = cy",
        )
    finally:
        second.close()
    # ... so this browser's reload shows its own copy first, then the workspace's
    page.reload()
    expect(box).to_have_value("tags.owner = cy")
    expect(names).to_have_text(cy)
    box.fill("")
    box.press("Enter")
    expect(panel.locator(".mj-page")).to_have_text("1–12 of 12")


def test_csv_export_is_the_filtered_view(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    panel = browser.panel
    box = panel.locator(".mj-filter")
    box.fill("tags.owner != bo")
    box.press("Enter")
    listing = api(lab, "runs", path="study", experiment="study", filter="tags.owner != bo",
                  sort="-started_at", limit=100)["runs"]  # fmt: skip
    # the runs without an owner tag count too (the run view test removed one)
    assert {r["run_id"] for r in listing} >= {r["id"] for r in study if r["owner"] != "bo"}
    expect(panel.locator(".mj-page")).to_have_text(f"1–{len(listing)} of {len(listing)}")
    columns = [
        h.get_attribute("data-column") for h in panel.locator(".mj-runs th[data-column]").all()
    ]
    chosen_columns = [c for c in columns if c and c.split(".")[0] in ("params", "metrics", "tags")]
    with browser.page.expect_download() as download:
        panel.locator(".mj-export").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "runs-study.csv"
    table = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert table[0] == ["run_id", "name", "experiment", "status", "started_at", "duration_s",
                        *chosen_columns, "train_hash"]  # fmt: skip
    assert [row[0] for row in table[1:]] == [r["run_id"] for r in listing]
    auc = {r["id"]: r["auc"] for r in study}
    column = table[0].index("metrics.val_auc")
    assert [float(row[column]) for row in table[1:]] == [auc[row[0]] for row in table[1:]]
    # the data hash is a column like the others: untick it, and it leaves the table and the CSV
    panel.locator(".mj-columns-button").click()
    data = panel.locator(".mj-columns-menu input[data-option='train_hash']")
    expect(data).to_be_checked()
    data.uncheck()
    expect(panel.locator("tr.mj-run td.mj-hash")).to_have_count(0)
    with browser.page.expect_download() as download:
        panel.locator(".mj-export").click()
    download.value.save_as(saved)
    header = next(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert header[-1] != "train_hash" and len(header) == len(table[0]) - 1
    data.check()
    expect(panel.locator("tr.mj-run td.mj-hash")).to_have_count(len(listing))
    panel.locator(".mj-columns-button").click()
    box.fill("")
    box.press("Enter")


def test_primary_metric_lower_is_better_is_honoured_in_table_and_compare(
    browser: Browser, lab: RunningServer, study: list[dict[str, Any]]
) -> None:
    from playwright.sync_api import expect

    show_study(browser, lab)
    panel = browser.panel
    panel.locator(".mj-columns-button").click()
    menu = panel.locator(".mj-columns-menu")
    menu.locator(".mj-primary-metric").select_option("train_time_s")
    expect(menu.locator(".mj-primary-direction")).to_have_value("min")  # a time: lower
    panel.locator(".mj-columns-button").click()
    fastest = min(study, key=lambda r: r["time"])
    sort = panel.locator("button.mj-sort[data-sort='metrics.train_time_s']")
    expect(sort).to_contain_text("train_time_s ↓ ▲")  # best (smallest) first
    rows = panel.locator("tr.mj-run")
    expect(rows.first.locator(".mj-run-name")).to_have_text(fastest["name"])
    expect(rows.first.locator("td.mj-best")).to_have_attribute(
        "data-column", "metrics.train_time_s"
    )
    settings = api(lab, "experiments/settings", path="study", experiment="study")
    assert settings["primary_metric"] == "train_time_s"
    assert settings["directions"]["train_time_s"] == "min"

    tick(browser, fastest["name"], study[11]["name"])
    panel.locator(".mj-compare").click()
    view = browser.page.locator(".mj-compare-view:visible")
    primary = view.locator("tr.mj-primary")
    expect(primary.locator("th")).to_have_text("train_time_s ↓ (primary)")
    expect(view.locator("tbody tr[data-metric]").first).to_have_attribute(
        "data-metric", "train_time_s"
    )
    best = primary.locator("td.mj-best")
    expect(best).to_have_count(1)
    expect(best).to_contain_text(f"{fastest['time']:g} ★")
    close_tabs(browser.page, "Compare 2 runs")
    # back to no primary metric and newest first, for the tests after this one
    panel.locator(".mj-columns-button").click()
    menu.locator(".mj-primary-metric").select_option("")
    panel.locator(".mj-columns-button").click()
    expect(panel.locator("th.mj-primary")).to_have_count(0)


def test_models_view_compares_a_candidate_with_production_and_opens_its_card(
    browser: Browser, lab: RunningServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    store_dir = lab.root / "registry" / ".mlops"
    keys = signers(tmp_path / "keys", store_dir)
    with Store.open(store_dir) as store:
        in_production(store, keys)
        candidate, _ = tracked_training_run(store, seed=1, accuracy=0.74)
        registry = Registry(store, keys["ana"], POLICY)
        registry.register(candidate, "churn", risk_tier="low")
        request = registry.request_promotion("churn", 2, "production", comment="better recall")
        production = store.model_version_run("churn", 1)
    (lab.root / "registry" / "notes.txt").write_text("a text file needs no kernel\n")
    page = browser.page
    page.goto(f"{lab.url}lab/tree/registry/notes.txt?token={lab.token}")
    current_tab(page, "notes.txt").wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-models").click()
    card = panel.locator(f".mj-request[data-request='{request.id}']")
    expect(card.locator(".mj-requester time")).to_have_count(1)  # when it was asked
    expect(card.locator(".mj-comment")).to_have_text("better recall")
    version = panel.locator(".mj-model[data-model='churn'] .mj-version[data-version='2']")
    expect(version.locator("time")).to_have_count(1)
    card.locator(".mj-compare-production").click()
    view = page.locator(".mj-compare-view:visible")
    heads = view.locator("thead th[title]")
    expect(heads).to_have_count(2)
    assert [h.get_attribute("title") for h in heads.all()] == [production, candidate]
    card.locator(".mj-request-card").click()
    frame = page.frame_locator(".mj-card-frame >> visible=true")
    expect(frame.locator("h1")).to_contain_text("churn")
    page.screenshot(path=str(ARTIFACTS / "models-compare-production.png"))
    panel.locator("#mj-tab-runs").click()
    page.goto(f"{lab.url}lab/tree/study/notes.txt?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")


def test_no_console_errors_from_the_analysis_views(browser: Browser) -> None:
    assert [e for e in browser.errors if "mlops" in e.lower() or "uplot" in e.lower()] == []
