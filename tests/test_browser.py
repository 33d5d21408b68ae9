"""The side panel in real JupyterLab, driven in real Chromium (Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import requests
from conftest import skip_or_fail
from monitoring_helpers import FEATURES, add_labels, in_production, record_three, signers
from server_helpers import RunningServer, running_server

from mlops_jupyter.identity.allowed_signers import add_signer
from mlops_jupyter.identity.keys import Signer, generate_key
from mlops_jupyter.numbers import readable
from mlops_jupyter.registry.registry import ALLOWED_SIGNERS_FILENAME, Registry
from mlops_jupyter.store import Store

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMPTY_NOTEBOOK = {
    "cells": [],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
PANEL = "#mlops-jupyter-panel"
TAB = '.jp-SideBar [data-id="mlops-jupyter-panel"]'


@dataclass
class Browser:
    page: Page
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    @property
    def panel(self) -> Locator:
        return self.page.locator(PANEL)


def chromium_path() -> str:
    path = os.environ.get("MLOPS_JUPYTER_CHROMIUM") or DEFAULT_CHROMIUM
    if not Path(path).is_file():
        skip_or_fail(
            f"Chromium not found at {path} (apt-get install chromium, or set "
            "MLOPS_JUPYTER_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labhome")


@pytest.fixture(scope="module")
def reviewer(lab_home: Path) -> Signer:
    """The key of the person the lab server runs for: it signs the panel's approvals. It is
    the principal "reviewer" only where an allowed-signers file says so."""
    return generate_key(lab_home / "keys" / "reviewer", "reviewer")


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, lab_home: Path, reviewer: Signer
) -> Iterator[RunningServer]:
    chromium_path()  # skip before starting a server for nothing
    root = tmp_path_factory.mktemp("labroot")
    (root / "project").mkdir()
    (root / "project" / "analysis.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    config = lab_home / "config"  # JUPYTER_CONFIG_DIR of the server (server_helpers)
    config.mkdir(parents=True, exist_ok=True)
    settings = {"MLOpsJupyter": {"signing_key": reviewer.source}}
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    with running_server(root, lab_home, lab=True) as running:
        yield running
        log = running.log()
    assert "Traceback" not in without_closed_websocket_noise(log), log


# a server log record: a "[L date ...]" line, or one of asyncio's unhandled-error reports
LOG_RECORD = re.compile(
    r"^(?:\[[A-Z] \d{4}-\d\d-\d\d |Task exception was never retrieved|Exception in callback )",
    re.MULTILINE,
)


def without_closed_websocket_noise(log: str) -> str:
    """The log without the records of jupyter_server sending a kernel message to a websocket
    the browser had just closed (a page reload): tornado's WebSocketClosedError, logged with a
    traceback by jupyter_server, zmq or asyncio; a known race in the server, not an error."""
    starts = [m.start() for m in LOG_RECORD.finditer(log)]
    bounds = zip([0, *starts], [*starts, len(log)], strict=True)
    return "".join(
        log[a:b]
        for a, b in bounds
        if not log[a:b].rstrip().endswith("tornado.websocket.WebSocketClosedError")
    )


@contextmanager
def browser_session(url: str, width: int = 1400) -> Iterator[Browser]:
    """Headless Chromium on ``url`` (JupyterLab once its dock panel is there), console errors
    and uncaught exceptions collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = chromium.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            session = Browser(page)
            page.on(
                "console",
                lambda msg: session.errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: session.errors.append(str(exc)))
            page.goto(url)
            page.wait_for_selector("#jp-main-dock-panel")
            yield session
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser(lab: RunningServer) -> Iterator[Browser]:
    with browser_session(f"{lab.url}lab?token={lab.token}") as session:
        yield session


def open_panel(browser: Browser) -> None:
    # JupyterLab lifts its splash screen once the layout is restored: only then is the
    # sidebar's state final (clicking the tab before would race the restorer)
    browser.page.locator("#jupyterlab-splash").wait_for(state="detached")
    tab = browser.page.locator(TAB)
    tab.wait_for()
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    browser.panel.wait_for(state="visible")


def test_panel_shows_the_resolved_store(browser: Browser, lab: RunningServer) -> None:
    from playwright.sync_api import expect

    expect(browser.page.locator(TAB)).to_have_attribute("title", "MLOps runs")
    open_panel(browser)
    panel = browser.panel
    expect(panel.locator(".mj-title")).to_have_text("MLOps runs")
    expect(panel.locator(".mj-store-path")).to_have_text(".mlops")
    expect(panel.locator(".mj-store-status")).to_have_text(
        "store will be created on first tracked run"
    )

    Store.open(lab.root / ".mlops").close()
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-store-status")).to_have_text("store exists")
    expect(panel.locator(".mj-error")).to_be_hidden()


def test_panel_follows_the_current_notebook(browser: Browser, lab: RunningServer) -> None:
    from playwright.sync_api import expect

    Store.open(lab.root / "project" / ".mlops").close()
    page = browser.page
    page.goto(f"{lab.url}lab/tree/project/analysis.ipynb?token={lab.token}")
    page.locator(".jp-NotebookPanel:visible").first.wait_for()  # restored ones are hidden
    # let the kernel finish starting, so nothing takes the focus later
    idle = page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle")
    idle.first.wait_for()
    open_panel(browser)
    expect(browser.panel.locator(".mj-store-path")).to_have_text("project/.mlops")
    expect(browser.panel.locator(".mj-store-status")).to_have_text("store exists")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel.png"), full_page=True)


def test_palette_command_opens_the_panel(browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.page
    # collapse the left area, then bring the panel back through the command palette
    tab = page.locator(TAB)
    if "lm-mod-current" in (tab.get_attribute("class") or ""):
        tab.click()
    expect(browser.panel).to_be_hidden()
    page.keyboard.press("Control+Shift+C")
    palette_input = page.locator(".lm-CommandPalette-input")
    expect(palette_input).to_be_focused()
    page.keyboard.type("Open MLOps runs panel")
    expect(page.locator(".lm-CommandPalette-item.lm-mod-active")).to_contain_text(
        "Open MLOps runs panel"
    )
    page.keyboard.press("Enter")
    expect(browser.panel).to_be_visible()
    expect(browser.panel.locator(".mj-store-path")).to_have_text("project/.mlops")


def test_server_errors_are_shown_as_text(browser: Browser, lab: RunningServer) -> None:
    from playwright.sync_api import expect

    name = "<img src=x onerror=alert(1)>"  # a legal directory name that is also HTML
    (lab.root / name).mkdir()
    (lab.root / name / "notes.txt").write_text("a text file needs no kernel\n")
    page = browser.page
    # opening a document ends with JupyterLab saving its first checkpoint: wait for that
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/checkpoints")
    ) as checkpoint:
        page.goto(f"{lab.url}lab/tree/{quote(name)}/notes.txt?token={lab.token}")
    assert checkpoint.value.status == 201
    open_panel(browser)
    expect(browser.panel.locator(".mj-store-path")).to_have_text(".mlops")  # the root's store

    (lab.root / name).rename(lab.root / "moved")
    browser.panel.locator(".mj-refresh").click()
    error = browser.panel.locator(".mj-error")
    expect(error).to_have_text(f"Could not resolve the store: no such directory: {name}")
    expect(error.locator("img")).to_have_count(0)


def test_runs_table_compare_view_and_card_tab(browser: Browser, lab: RunningServer) -> None:
    from playwright.sync_api import expect

    with Store.open(lab.root / "project" / ".mlops") as store:
        for i, (depth, accuracy) in enumerate([(2, 0.81), (8, 0.93), (4, 0.88)]):
            store.record_run(
                "panel-demo",
                name=f"forest-depth-{depth}",
                params={"max_depth": depth, "n_estimators": 100},
                metrics={"accuracy": accuracy},
                started_at=1_800_000_000 + i,
                ended_at=1_800_000_000 + i + 2,
            )
    page = browser.page
    page.goto(f"{lab.url}lab/tree/project/analysis.ipynb?token={lab.token}")
    page.locator(".jp-NotebookPanel:visible").first.wait_for()  # restored ones are hidden
    open_panel(browser)
    panel = browser.panel
    panel.locator(".mj-refresh").click()
    rows = panel.locator("tr.mj-run")
    expect(rows).to_have_count(3)
    expect(panel.locator(".mj-page")).to_have_text("1–3 of 3")
    panel.locator("button.mj-sort[data-sort='metrics.accuracy']").click()  # best first
    expect(rows.first.locator(".mj-run-name")).to_have_text("forest-depth-8")
    rows.nth(0).locator(".mj-select").check()
    rows.nth(1).locator(".mj-select").check()
    compare = panel.locator(".mj-compare")
    expect(compare).to_have_text("Compare 2 runs")
    compare.click()
    view = page.locator(".mj-compare-view")
    expect(view.locator("tr.mj-diff[data-param='max_depth'] td")).to_have_text(["8", "4"])
    painted = view.locator("tr.mj-diff[data-param='max_depth'] td").first.evaluate(PAINTED_COLOURS)
    assert contrast(painted["text"], painted["background"]) >= 4.5  # light theme too
    expect(view.locator("tr[data-param='n_estimators']")).to_have_count(0)  # same: hidden
    view.locator(".mj-show-all input").check()
    expect(view.locator("tr[data-param='n_estimators'] td")).to_have_text(["100", "100"])
    expect(view.locator("tr[data-metric='accuracy'] td.mj-best")).to_have_text("0.93 ★")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"))

    rows.first.locator(".mj-card-button").click()
    frame = page.locator(".mj-card-frame")
    expect(frame).to_have_attribute("sandbox", "")
    card = page.frame_locator(".mj-card-frame")
    expect(card.locator("h1")).to_have_text("Model card: forest-depth-8")
    page.screenshot(path=str(ARTIFACTS / "card-tab.png"))


def wait_for_workspace(
    lab: RunningServer, done: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> None:
    """Wait until JupyterLab has saved a workspace (layout, restored views, the panel's state)
    that ``done`` accepts: it saves after a short debounce, and a reload before would find the
    old one."""
    url = lab.api("lab/api/workspaces/default")
    deadline = time.monotonic() + seconds
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = requests.get(url, headers={"Authorization": f"token {lab.token}"}, timeout=30)
        data = answer.json().get("data", {})
        if done(data):
            return
        time.sleep(0.1)
    raise AssertionError(f"the saved workspace is still {data}")


def wait_for_saved_panel_state(
    lab: RunningServer, done: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> None:
    """Wait until the panel's state in the saved workspace is one ``done`` accepts."""
    wait_for_workspace(lab, lambda data: done(data.get("mlops-jupyter:panel", {})), seconds)


CHOSEN = ["status", "name", "started_at", "duration_s", "metrics.val_auc", "params.depth",
          "tags.owner"]  # fmt: skip


def test_runs_table_columns_sort_by_a_param_and_filter(
    browser: Browser, lab: RunningServer
) -> None:
    """Choose a parameter and a tag as columns, sort by the parameter, filter with a line of
    conditions (the count changes), see a bad filter's error beside the box, and find the
    filter and the columns again after a reload."""
    from playwright.sync_api import expect

    owners = ["ana", "bo", "cy"]
    runs = []
    with Store.open(lab.root / "analysis" / ".mlops") as store:
        for i in range(30):
            depth, auc, owner = 1 + (i * 7) % 9, 0.85 + ((i * 11) % 13) / 200 + 1e-7, owners[i % 3]
            store.record_run(
                "tuning",
                name=f"t{i:02d}",
                params={"depth": depth, "feature_set": ["base", "base+usage"][i % 2]},
                metrics={"val_auc": auc, "train_time_s": 0.0001669 * (i + 1)},
                tags={"owner": owner},
                started_at=1_800_000_000 + i,
                ended_at=1_800_000_000 + i + 2.5,
            )
            runs.append((f"t{i:02d}", depth, auc, owner, i % 2))
    (lab.root / "analysis" / "notes.txt").write_text("a text file needs no kernel\n")
    page = browser.page
    page.goto(f"{lab.url}lab/tree/analysis/notes.txt?token={lab.token}")
    current_tab(page, "notes.txt").wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-runs").click()
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-store-path")).to_have_text("analysis/.mlops")
    rows = panel.locator("tr.mj-run")
    expect(panel.locator(".mj-page")).to_have_text("1–30 of 30")
    heads = panel.locator(".mj-runs thead th[data-column]")
    expect(heads).to_have_count(6)  # status, name, started, duration, the 2 metrics
    started = panel.locator("button.mj-sort[data-sort='started_at']")
    if "▼" not in (started.text_content() or ""):  # an earlier test sorted by a metric
        started.click()
    expect(started).to_contain_text("▼")
    newest = rows.first  # t29: readable numbers, durations with units
    expect(newest.locator(".mj-run-name")).to_have_text("t29")
    expect(newest.locator("td[data-column='metrics.train_time_s']")).to_have_text("0.00501")
    expect(newest.locator("td[data-column='metrics.val_auc']")).to_have_text(
        f"{float(f'{runs[29][2]:.3g}'):g}"
    )
    expect(newest.locator("td.mj-num").first).to_have_text("2.5 s")

    panel.locator(".mj-columns-button").click()
    menu = panel.locator(".mj-columns-menu")
    expect(menu.locator("input[data-column]")).to_have_count(5)  # 2 params, 2 metrics, 1 tag
    menu.locator("input[data-column='params.depth']").check()
    menu.locator("input[data-column='tags.owner']").check()
    menu.locator("input[data-column='metrics.train_time_s']").uncheck()
    expect(heads).to_have_count(7)
    assert [h.get_attribute("data-column") for h in heads.all()] == CHOSEN
    panel.locator("button.mj-sort[data-sort='params.depth']").click()  # deepest first
    expect(panel.locator("button.mj-sort[data-sort='params.depth']")).to_contain_text("▼")
    by_depth = [r[0] for r in sorted(runs, key=lambda r: (-r[1], -int(r[0][1:])))]
    expect(rows.locator(".mj-run-name")).to_have_text(by_depth)
    expect(rows.first.locator("td[data-column='tags.owner']")).to_have_text(
        next(r[3] for r in runs if r[0] == by_depth[0])
    )

    box = panel.locator(".mj-filter")
    box.fill("metrics.val_auc >= 0.88 params.feature_set = base+usage tags.owner = ana")
    box.press("Enter")
    chosen = [r for r in runs if r[2] >= 0.88 and r[4] == 1 and r[3] == "ana"]
    assert 0 < len(chosen) < 30
    expect(panel.locator(".mj-page")).to_have_text(f"1–{len(chosen)} of {len(chosen)}")
    expect(rows).to_have_count(len(chosen))
    error = panel.locator(".mj-filter-error")
    expect(error).to_be_hidden()
    box.fill("val_auc > 0.88")
    box.press("Enter")
    expect(error).to_be_visible()
    expect(error).to_contain_text("bad filter 'val_auc > 0.88': use params.KEY = VALUE")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(rows).to_have_count(len(chosen))  # the last good listing stays, dimmed
    box.fill("tags.owner = bo")
    box.press("Enter")
    expect(error).to_be_hidden()
    bo = sum(1 for r in runs if r[3] == "bo")
    expect(panel.locator(".mj-page")).to_have_text(f"1–{bo} of {bo}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "runs-columns-filter.png"))

    wait_for_saved_panel_state(lab, lambda state: state.get("filter") == "tags.owner = bo")
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel")
    open_panel(browser)
    expect(panel.locator(".mj-filter")).to_have_value("tags.owner = bo")
    expect(panel.locator(".mj-page")).to_have_text(f"1–{bo} of {bo}")
    expect(heads).to_have_count(7)
    assert [h.get_attribute("data-column") for h in heads.all()] == CHOSEN
    box = panel.locator(".mj-filter")
    box.fill("")
    box.press("Enter")  # later tests see every run again, after their own reloads too
    expect(panel.locator(".mj-page")).to_have_text("1–30 of 30")
    wait_for_saved_panel_state(lab, lambda state: state.get("filter") == "")


def current_tab(page: Page, label: str) -> Locator:
    """The main area's current tab, once it is the one labelled ``label``."""
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=label)


def run_palette_command(page: Page, label: str) -> None:
    from playwright.sync_api import expect

    page.evaluate("document.activeElement?.blur()")  # keys to JupyterLab, not an iframe
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    expect(search).to_be_focused(timeout=30_000)  # a loaded machine takes more than 5 s
    search.fill(label)  # the whole text at once: no keystroke lost to a loading iframe
    # the command itself, not whichever item is active (recently used commands come first)
    item = page.locator(".lm-CommandPalette-item", has_text=label).first
    expect(item).to_be_visible()
    item.click()


def test_notebook_runs_compare_and_a_second_user_approves(
    browser: Browser, lab: RunningServer, reviewer: Signer
) -> None:
    """The issue's walk-through: run compare.ipynb's cells in the browser, watch the runs appear,
    compare them, open a card, and approve the notebook's promotion request from a second
    browser session. Both sessions are the person the server runs for: they sign with the
    server's key, as the principal "reviewer", whatever Jupyter user each session is."""
    from playwright.sync_api import expect

    (lab.root / "review").mkdir()
    shutil.copy(REPO / "magics" / "compare.ipynb", lab.root / "review" / "compare.ipynb")
    with Store.open(lab.root / "review" / ".mlops"):
        pass
    # the server's key may sign here as "reviewer"; the notebook adds its own throwaway
    # "data-scientist" key to the same file
    add_signer(
        lab.root / "review" / ".mlops" / ALLOWED_SIGNERS_FILENAME, "reviewer", reviewer.key_blob
    )
    page = browser.page
    page.goto(f"{lab.url}lab/tree/review/compare.ipynb?token={lab.token}")
    current_tab(page, "compare.ipynb").wait_for()
    idle = page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle")
    idle.first.wait_for()
    open_panel(browser)
    panel = browser.panel
    expect(panel.locator(".mj-store-path")).to_have_text("review/.mlops")
    expect(panel.locator(".mj-page")).to_have_text("no runs yet")

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    rows = panel.locator("tr.mj-run")  # refreshed by the panel itself after each %%track cell
    expect(rows).to_have_count(2, timeout=240_000)
    started = panel.locator("button.mj-sort[data-sort='started_at']")
    if "▼" not in (started.text_content() or ""):  # an earlier test sorted by a metric
        started.click()  # newest first again (the panel keeps its sort across pages)
    expect(started).to_contain_text("▼")
    expect(rows.locator(".mj-run-name")).to_have_text(["deep", "shallow"])
    last_output = page.locator(".jp-Cell").last.locator(".jp-OutputArea-output").last
    expect(last_output).to_have_text("('pending', 1)", timeout=240_000)

    rows.nth(1).locator(".mj-select").check()  # shallow, then deep: as %compare --last 2
    rows.nth(0).locator(".mj-select").check()
    panel.locator(".mj-compare").click()
    view = page.locator(".mj-compare-view:visible")
    expect(view.locator("tr.mj-diff[data-param='max_depth'] td")).to_have_text(["2", "8"])
    accuracy = view.locator("tr[data-metric='accuracy'] td")
    expect(accuracy).to_have_count(2)
    with Store.open(lab.root / "review" / ".mlops", create=False) as store:
        runs = store.runs()
        values = [
            runs.loc[runs["name"] == n, "metrics.accuracy"].iloc[0] for n in ("shallow", "deep")
        ]
        shown = [readable(v) + (" ★" if v == max(values) else "") for v in values]
        [request] = Registry(store).requests()  # reading needs no key
    assert (request.requester, request.status) == ("data-scientist", "pending")
    assert request.requester_key and request.requester_key != reviewer.fingerprint
    expect(accuracy).to_have_text(shown)
    expect(view.locator("tr[data-data='train'] td")).to_contain_text("same data")
    # one compare design: the %compare widget in the notebook reads exactly as the Compare tab,
    # once both have the SHAP explanations (the widget redraws itself when they land)
    widget = page.locator(".jp-Notebook .mlops-jupyter-compare .mj-compare-table")
    for table in (widget, view.locator(".mj-compare-table")):
        expect(table.locator("td.mj-shap-ok")).to_have_count(2, timeout=240_000)
    cells = "t => [...t.rows].map(r => [...r.cells].map(c => [c.className, c.textContent]))"
    assert widget.evaluate(cells) == view.locator(".mj-compare-table").evaluate(cells)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "notebook-compare.png"))

    rows.first.locator(".mj-card-button").click()
    card = page.frame_locator(".mj-card-frame:visible")
    expect(card.locator("h1")).to_have_text("Model card: deep")

    # the Models view, reached from the keyboard: the tabs follow the arrow keys
    panel.locator("#mj-tab-runs").focus()
    page.keyboard.press("ArrowRight")
    expect(panel.locator("#mj-tab-models")).to_have_attribute("aria-selected", "true")
    expect(panel.locator("#mj-tab-models")).to_be_focused()
    signing_as = f"Signing as reviewer ({reviewer.fingerprint})"
    expect(panel.locator(".mj-reviewer")).to_have_text(signing_as)
    expect(panel.locator(".mj-signing-problem")).to_be_hidden()
    model = panel.locator(".mj-model[data-model='breast-cancer']")
    expect(model.locator(".mj-version[data-version='1'] .mj-stage")).to_have_text("none")
    pending = panel.locator(f".mj-requests .mj-request[data-request='{request.id}']")
    expect(pending.locator(".mj-request-title")).to_have_text(
        f"#{request.id} breast-cancer:1 none → production"
    )
    requester = pending.locator(".mj-requester")
    expect(requester).to_contain_text("requested by data-scientist SHA256:")
    expect(requester.locator(".mj-fingerprint")).to_have_attribute("title", request.requester_key)
    expect(requester.locator(".mj-comment")).to_have_text("the more accurate forest")
    expect(pending.locator(".mj-gate[data-gate='data_hash'] .mj-gate-mark")).to_have_text("✓")
    expect(pending.locator(".mj-approvals")).to_have_text("approvals 0/1")
    expect(pending.locator(".mj-signoff")).to_have_count(0)
    first_user = panel.locator(".mj-reviewer").get_attribute("title")
    assert first_user and first_user.startswith("Jupyter user ")

    # another browser session logged in with the server's token: another Jupyter user, but
    # the same person, signing with the same key
    chromium = page.context.browser
    assert chromium is not None
    second = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = second.new_page()
        other.set_default_timeout(60_000)
        other.goto(f"{lab.url}lab/tree/review/compare.ipynb?token={lab.token}")
        current_tab(other, "compare.ipynb").wait_for()
        other.locator("#jupyterlab-splash").wait_for(state="detached")
        tab = other.locator(TAB)
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        their_panel = other.locator(PANEL)
        their_panel.locator("#mj-tab-models").click()
        their_reviewer = their_panel.locator(".mj-reviewer")
        expect(their_reviewer).to_have_text(signing_as)
        assert their_reviewer.get_attribute("title") != first_user  # another Jupyter user
        theirs = their_panel.locator(f".mj-requests .mj-request[data-request='{request.id}']")
        expect(theirs.locator(".mj-approve")).to_be_enabled()
        theirs.locator(".mj-reject").click()  # a rejection without a reason is refused
        expect(theirs.locator(".mj-review-status")).to_have_text(
            "Could not reject: a rejection needs a comment saying why"
        )
        theirs.locator(".mj-review-comment").fill("gates pass; <b>ship it</b>")
        other.screenshot(path=str(ARTIFACTS / "review.png"))
        theirs.locator(".mj-approve").click()
        expect(their_panel.locator(".mj-notice")).to_have_text(
            f"Approved request #{request.id}: it is applied."
        )
        decided = their_panel.locator(f".mj-recent .mj-request[data-request='{request.id}']")
        expect(decided.locator(".mj-badge")).to_have_text("applied")
        expect(decided.locator(".mj-approvals")).to_have_text("approvals 1/1: reviewer")
        signoff = decided.locator(".mj-signoff[data-principal='reviewer']")
        expect(signoff.locator(".mj-decision")).to_have_text("approved")
        expect(signoff.locator(".mj-signature")).to_have_text("signature verified")
        expect(signoff.locator(".mj-fingerprint")).to_have_attribute("title", reviewer.fingerprint)
        expect(signoff.locator(".mj-comment")).to_have_text("gates pass; <b>ship it</b>")
        expect(signoff.locator("b")).to_have_count(0)
        expect(their_panel.locator(".mj-version[data-version='1'] .mj-stage")).to_have_text(
            "production"
        )
        other.screenshot(path=str(ARTIFACTS / "review-done.png"))
    finally:
        second.close()

    # the first session still shows the request open: approving it again is refused
    pending.locator(".mj-approve").click()
    expect(pending.locator(".mj-review-status")).to_have_text(
        f"Could not approve: request #{request.id} is applied, no longer open"
    )

    with Store.open(lab.root / "review" / ".mlops", create=False) as store:
        registry = Registry(store)
        done = registry.request(request.id)
        assert (done.status, done.approvals) == ("applied", ["reviewer"])
        assert done.requester == "data-scientist"
        [approved] = done.signoffs
        assert (approved.principal, approved.decision) == ("reviewer", "approve")
        assert approved.fingerprint == reviewer.fingerprint and approved.verified
        assert done.not_counted == []
        production = registry.current("breast-cancer")
        assert production is not None and production.version == 1
        approval = [e for e in registry.history("breast-cancer") if e["action"] == "approve"]
        assert [(e["actor"], e["comment"], e["verified"]) for e in approval] == [
            ("reviewer", "gates pass; <b>ship it</b>", True)
        ]

    # the first session shows the decision after a refresh, and keeps its view on reload
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-version[data-version='1'] .mj-stage")).to_have_text("production")
    mine = panel.locator(f".mj-recent .mj-request[data-request='{request.id}']")
    expect(mine.locator(".mj-signoff[data-principal='reviewer'] .mj-signature")).to_have_text(
        "signature verified"
    )
    # each tab comes back once (an earlier test's "Compare 2 runs" tab may be in the workspace)
    compares = page.locator(".lm-TabBar-tab", has_text="Compare 2 runs")
    cards = page.locator(".lm-TabBar-tab", has_text="Card: deep")
    open_before = (compares.count(), cards.count())
    assert open_before[0] >= 1 and open_before[1] == 1
    wait_for_workspace(  # the card and the Models view are saved before the reload
        lab,
        lambda data: (
            any(key.startswith("mlops-jupyter-card:") for key in data)
            and data.get("mlops-jupyter:panel", {}).get("view") == "models"
        ),
    )
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel")
    open_panel(browser)
    expect(panel.locator("#mj-tab-models")).to_have_attribute("aria-selected", "true")
    expect(panel.locator(".mj-requests .mj-empty")).to_have_text("Nothing waits for a sign-off.")
    expect(compares).to_have_count(open_before[0])
    expect(cards).to_have_count(1)


def test_a_server_that_cannot_sign_says_why(
    browser: Browser, lab: RunningServer, reviewer: Signer, tmp_path: Path
) -> None:
    """A project whose allowed signers do not list the server's key: the panel shows why it
    cannot sign, its buttons are off, and the API refuses the approval (403) all the same."""
    from playwright.sync_api import expect

    store_dir = lab.root / "project2" / ".mlops"
    ana = generate_key(tmp_path / "ana", "ana")
    with Store.open(store_dir) as store:
        run_id = store.record_run(
            "churn", name="baseline", metrics={"accuracy": 0.9}, started_at=1_800_000_000,
            ended_at=1_800_000_002,
        )  # fmt: skip
        store.add_artifact(run_id, "model", b"not really a model", kind="model")
        (store_dir / "policy.toml").write_text("[tiers.low.production]\nsignoffs = 1\n")
        add_signer(store_dir / ALLOWED_SIGNERS_FILENAME, "ana", ana.key_blob)
        registry = Registry(store, ana)
        registry.register(run_id, "churn", risk_tier="low")
        request = registry.request_promotion("churn", 1, "production", "please <i>review</i>")
    assert request.status == "pending", request
    (lab.root / "project2" / "notes.txt").write_text("a text file needs no kernel\n")

    page = browser.page
    # opened inside the running app: no page load to cut the kernels' websockets short
    run_palette_command(page, "Open from Path")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("project2/notes.txt")
    dialog.locator(".jp-mod-accept").click()
    current_tab(page, "notes.txt").wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-store-path")).to_have_text("project2/.mlops")
    panel.locator("#mj-tab-models").click()
    problem = panel.locator(".mj-signing-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text(f"your key {reviewer.fingerprint}")
    expect(problem).to_contain_text("is not in the allowed signers")
    expect(panel.locator(".mj-reviewer")).not_to_contain_text("Signing as")
    pending = panel.locator(f".mj-requests .mj-request[data-request='{request.id}']")
    expect(pending.locator(".mj-requester")).to_contain_text("requested by ana SHA256:")
    expect(pending.locator(".mj-requester .mj-fingerprint")).to_have_attribute(
        "title", ana.fingerprint
    )
    expect(pending.locator(".mj-requester i")).to_have_count(0)  # a comment is text, not HTML
    text = problem.text_content()
    for button in (".mj-approve", ".mj-reject"):
        expect(pending.locator(button)).to_be_disabled()
        expect(pending.locator(button)).to_have_attribute("title", text or "")
    page.screenshot(path=str(ARTIFACTS / "review-cannot-sign.png"))

    refused = requests.post(
        lab.api(f"mlops-jupyter/api/requests/{request.id}/approve"),
        params={"path": "project2"},
        json={"comment": ""},
        headers={"Authorization": f"token {lab.token}"},
        timeout=30,
    )
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "is not in the allowed signers" in message
    assert f"mlops-jupyter approve {request.id}" in message
    with Store.open(store_dir, create=False) as store:
        still = Registry(store).request(request.id)
    assert (still.status, still.signoffs, still.not_counted) == ("pending", [], [])


def test_models_view_drift_strip_opens_a_batch(
    browser: Browser, lab: RunningServer, tmp_path: Path
) -> None:
    """Three batches of churn:1 in production, the second drifting in age: the Models view
    shows a strip of 3 features by 3 batches, the share of drifting features, and the
    drifting batch's detail (its per-feature PSI, its labels recorded later) on a click."""
    from playwright.sync_api import expect

    hostile = "<b>2030-01-02</b>"  # a batch id is the caller's text: shown, never parsed
    store_dir = lab.root / "monitor" / ".mlops"
    keys = signers(tmp_path / "keys", store_dir)
    with Store.open(store_dir) as store:
        in_production(store, keys)
        calm, drifting, small = record_three(store, keys, drifting_id=hostile)
        add_labels(store, keys["ana"], hostile, 0.75)
        in_production(store, keys, model="idle")
    (lab.root / "monitor" / "notes.txt").write_text("a text file needs no kernel\n")
    page = browser.page
    # by its address: "Open from Path" would also bring up the file browser in the sidebar,
    # racing the click that brings up the panel
    page.goto(f"{lab.url}lab/tree/monitor/notes.txt?token={lab.token}")
    current_tab(page, "notes.txt").wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-models").click()
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-store-path")).to_have_text("monitor/.mlops")
    expect(panel.locator(".mj-model[data-model='idle'] .mj-drift-empty")).to_have_text(
        "No monitored batches yet: %monitor idle --data X in a notebook records one."
    )
    strip = panel.locator(".mj-model[data-model='churn'] .mj-drift[data-version='1']")
    expect(strip.locator(".mj-stage")).to_have_text("production")
    expect(strip.locator(".mj-drift-latest")).to_have_text("latest: ok")
    expect(strip.locator(".mj-drift-count")).to_have_text("3 batches")
    columns = strip.locator(".mj-batch-button")
    expect(columns).to_have_text(["1", "2", "3"])
    expect(strip.locator("tr.mj-strip-row")).to_have_count(len(FEATURES))
    rows = strip.locator("tr.mj-strip-row")
    assert [rows.nth(i).get_attribute("data-feature") for i in range(3)] == FEATURES
    reports = (calm, drifting, small)
    for name in FEATURES:
        statuses = [next(f["status"] for f in r.features if f["feature"] == name) for r in reports]
        cells = strip.locator(f"tr[data-feature='{name}'] td.mj-cell")
        expect(cells).to_have_count(3)
        expect(cells).to_have_class([re.compile(rf"\bmj-cell-{s}\b") for s in statuses])
    assert [c.get_attribute("data-status") for c in strip.locator("td.mj-cell").all()] == [
        "ok", "drift", "ok",  # age
        "ok", "ok", "ok",  # income
        "ok", "ok", "ok",  # plan
    ]  # fmt: skip
    age = drifting.features[0]
    assert age["feature"] == "age" and age["status"] == "drift"
    mark = strip.locator("tr[data-feature='age'] td.mj-cell-drift .mj-cell-mark")
    expect(mark).to_have_text("▲")  # not colour alone
    expect(mark).to_have_attribute("aria-label", f"age, batch 2: drift, PSI {age['psi']:.3f}")
    expect(strip.locator(".mj-share-text")).to_have_text(["0%", "33%", "0%"])
    expect(columns.nth(1)).to_have_attribute(
        "aria-label", re.compile(r"^Batch 2 of 3, .*: drift, 1 of 3 features drifting\.")
    )
    detail = strip.locator(".mj-batch-detail")
    expect(detail).to_be_hidden()

    columns.nth(1).click()
    expect(detail).to_be_visible()
    expect(columns.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(detail.locator(".mj-batch-id")).to_have_text(hostile)
    expect(detail.locator("b")).to_have_count(0)
    expect(detail.locator(".mj-batch-rows")).to_have_text("1000")
    expect(detail.locator(".mj-batch-decision")).to_have_text("drift")
    expect(detail.locator(".mj-batch-share")).to_have_text("1 of 3 features (33%)")
    expect(detail.locator(".mj-batch-recorder")).to_have_text("ana")
    for feature in drifting.features:
        row = detail.locator(f"tr.mj-feature-row[data-feature='{feature['feature']}']")
        expect(row.locator(".mj-feature-psi")).to_have_text(f"{feature['psi']:.3f}")
        expect(row.locator(".mj-feature-status")).to_have_text(
            ("▲" if feature["status"] == "drift" else "") + feature["status"]
        )
    age_row = detail.locator("tr.mj-feature-row[data-feature='age']")
    expect(age_row.locator(".mj-feature-test")).to_have_text("ks")
    expect(age_row.locator(".mj-feature-statistic")).to_have_text(f"{age['statistic']:.3f}")
    exponent = re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{age['p_value']:.1e}")  # as JavaScript's
    expect(age_row.locator(".mj-feature-p")).to_have_text(exponent)
    prediction = drifting.predictions
    assert prediction is not None
    expect(detail.locator(".mj-batch-predictions")).to_contain_text(
        f"churned: drift, PSI {prediction['psi']:.3f}"
    )
    assert drifting.performance is not None
    accuracy = drifting.performance["metrics"]["accuracy"]
    expect(detail.locator(".mj-batch-performance")).to_contain_text(
        f"accuracy {accuracy['value']:.3f}"
    )
    expect(detail.locator(".mj-batch-labels")).to_contain_text(
        "accuracy 0.750 [0.600, 0.800] on 1000 labelled rows: ok"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "drift-strip.png"))

    # from the keyboard: the next batch's button, then Enter
    columns.nth(1).focus()
    page.keyboard.press("ArrowRight")
    expect(columns.nth(2)).to_be_focused()
    page.keyboard.press("Enter")
    expect(detail.locator(".mj-batch-id")).to_have_text("2030-01-03")
    expect(detail.locator(".mj-batch-rows")).to_have_text("500")
    expect(columns.nth(1)).to_have_attribute("aria-pressed", "false")
    # a refresh keeps the batch being read
    panel.locator(".mj-refresh").click()
    expect(strip.locator(".mj-batch-detail .mj-batch-id")).to_have_text("2030-01-03")
    strip.locator(".mj-batch-close").click()
    expect(strip.locator(".mj-batch-detail")).to_be_hidden()


def test_panel_follows_the_dark_theme(browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.page
    open_panel(browser)

    def background() -> list[int]:
        color = browser.panel.evaluate("node => getComputedStyle(node).backgroundColor")
        return [int(c) for c in color[color.index("(") + 1 : color.index(")")].split(",")[:3]]

    assert sum(background()) > 600  # the light theme: near white
    run_palette_command(page, "Use Theme: JupyterLab Dark")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    assert sum(background()) < 150
    page.locator("#jupyterlab-splash").wait_for(state="detached")  # shown while switching
    page.screenshot(path=str(ARTIFACTS / "panel-dark.png"))


def contrast(first: list[int], second: list[int]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (0-255 channels)."""

    def luminance(rgb: list[int]) -> float:
        linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# the colours a cell is drawn with, as pixels: its text colour, and its row's background laid
# over the view's (a canvas resolves any CSS colour syntax, color-mix included)
PAINTED_COLOURS = """cell => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const paint = (...colours) => {
    g.clearRect(0, 0, 1, 1);
    for (const c of colours) { g.fillStyle = c; g.fillRect(0, 0, 1, 1); }
    return Array.from(g.getImageData(0, 0, 1, 1).data).slice(0, 3);
  };
  const view = getComputedStyle(cell.closest('.mj-compare-view')).backgroundColor;
  const row = getComputedStyle(cell.closest('tr')).backgroundColor;
  return { text: paint(view, getComputedStyle(cell).color), background: paint(view, row) };
}"""


def test_compare_is_legible_in_the_dark_theme(browser: Browser, lab: RunningServer) -> None:
    """The rows that differ in Compare (a warning tint) keep a contrast of at least 4.5:1
    between their text and their background in the dark theme (they were light text on light
    orange)."""
    from playwright.sync_api import expect

    page = browser.page
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    page.goto(f"{lab.url}lab/tree/project/analysis.ipynb?token={lab.token}")
    # the notebook's tab, whichever tab the restored layout made current
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="analysis.ipynb").first.click()
    page.locator(".jp-NotebookPanel:visible").first.wait_for()  # restored ones are hidden
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-runs").click()
    panel.locator(".mj-refresh").click()
    expect(panel.locator(".mj-store-path")).to_have_text("project/.mlops")
    rows = panel.locator("tr.mj-run")
    expect(rows).to_have_count(3)
    for i in (0, 2):
        rows.nth(i).locator(".mj-select").check()
    panel.locator(".mj-compare").click()
    view = page.locator(".mj-compare-view:visible")
    cells = view.locator("tr.mj-diff[data-param='max_depth'] td")
    expect(cells).to_have_count(2)
    for cell in [*cells.all(), view.locator("tr.mj-diff[data-param='max_depth'] th").first]:
        colours = cell.evaluate(PAINTED_COLOURS)
        ratio = contrast(colours["text"], colours["background"])
        assert ratio >= 4.5, (colours, ratio)
    page.screenshot(path=str(ARTIFACTS / "compare-dark.png"))


def test_no_console_errors_from_the_extension(browser: Browser) -> None:
    assert [e for e in browser.errors if "mlops" in e.lower()] == []


def test_a_project_on_a_team_store_shows_it_in_the_panel(
    browser: Browser, lab: RunningServer, pg_url: str
) -> None:
    from playwright.sync_api import expect

    team = lab.root / "team"
    team.mkdir()
    (team / "pyproject.toml").write_text(f'[tool.mlops-jupyter]\nstore = "{pg_url}"\n')
    (team / "shared.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    with Store.open(pg_url, start=team) as store:
        for name, accuracy in [("ana-baseline", 0.84), ("bo-tuned", 0.9)]:
            store.record_run("team-demo", name=name, metrics={"accuracy": accuracy})
    page = browser.page
    page.goto(f"{lab.url}lab/tree/team/shared.ipynb?token={lab.token}")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first.wait_for()
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text="shared.ipynb").wait_for()
    # let its kernel finish starting: a server stopped meanwhile logs jupyter_server's own race
    idle = page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle")
    idle.first.wait_for()
    open_panel(browser)
    panel = browser.panel
    panel.locator("#mj-tab-runs").click()  # the panel remembers the view an earlier test chose
    panel.locator(".mj-refresh").click()
    where = pg_url.split("//", 1)[1]
    expect(panel.locator(".mj-store-path")).to_have_text(f"team store {where}")
    expect(panel.locator(".mj-store-status")).to_have_text("store exists")
    rows = panel.locator("tr.mj-run")
    expect(rows).to_have_count(2)
    panel.locator("button.mj-sort[data-sort='metrics.accuracy']").click()
    names = panel.locator("tr.mj-run .mj-run-name")
    expect(names).to_have_text(["bo-tuned", "ana-baseline"])


def test_notebook_7_follows_the_notebook_compares_and_opens_a_card(
    browser: Browser, lab: RunningServer
) -> None:
    """In Notebook 7 (the same server's /notebooks page) the panel opens from the palette,
    shows the notebook's own store, and Compare and a run's card open beside the notebook
    (Notebook 7's main area holds only the notebook: they open in the right sidebar)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    (lab.root / "nb7").mkdir()
    (lab.root / "nb7" / "seven.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    with Store.open(lab.root / "nb7" / ".mlops") as store:
        for i in range(3):
            store.record_run(
                "seven", name=f"s{i}", params={"depth": i + 2}, started_at=1_800_000_000 + i
            )
    chromium = browser.page.context.browser
    assert chromium is not None
    context = chromium.new_context(viewport={"width": 1400, "height": 900})  # its own session
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack or ''}"))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.set_default_timeout(60_000)
        page.goto(f"{lab.url}notebooks/nb7/seven.ipynb?token={lab.token}")
        page.wait_for_selector(".jp-NotebookPanel")
        expect(page.locator(".jp-Notebook")).to_be_visible()
        # the kernel's start moves the focus into the notebook, which closes an open palette:
        # open it from the View menu and run the command until the panel shows
        palette = page.locator(".lm-CommandPalette-input")
        ours = ".lm-CommandPalette-item.lm-mod-active[data-command='mlops-jupyter:open-panel']"
        for attempt in range(5):
            try:
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^View$")).click()
                page.locator(".lm-Menu-itemLabel", has_text="Activate Command Palette").click()
                palette.fill("Open MLOps runs panel", timeout=5000)
                page.locator(ours).wait_for(timeout=5000)
                palette.press("Enter", timeout=5000)
                page.locator(PANEL).wait_for(state="visible", timeout=5000)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
                if attempt == 4:
                    raise
        panel = page.locator(PANEL)
        expect(panel.locator(".mj-store-path")).to_have_text("nb7/.mlops")
        rows = panel.locator("tr.mj-run")
        expect(rows).to_have_count(3)
        for name in ("s0", "s2"):
            rows.filter(has=page.locator(".mj-run-name", has_text=name)).locator(
                ".mj-select"
            ).check()
        panel.locator(".mj-compare").click()
        view = page.locator(".mj-compare-view")
        expect(view).to_be_visible()
        depth = view.locator("tr.mj-diff[data-param='depth'] td")
        expect(depth).to_have_count(2)
        assert sorted(depth.all_text_contents()) == ["2", "4"]
        rows.filter(has=page.locator(".mj-run-name", has_text="s1")).locator(
            ".mj-card-button"
        ).click()
        card = page.frame_locator(".mj-card-frame:visible")
        expect(card.locator("h1")).to_have_text("Model card: s1")
        assert page.url.startswith(f"{lab.url}notebooks/nb7/seven.ipynb")  # no page change
        page.screenshot(path=str(ARTIFACTS / "notebook7-card.png"))
        # a run view and the charts open beside the notebook too
        rows.filter(has=page.locator(".mj-run-name", has_text="s2")).locator(".mj-run-name").click()
        run = page.locator(".mj-run-view:visible")
        expect(run.locator(".mj-run-title")).to_have_text("s2")
        expect(run.locator(".mj-params tbody tr td").nth(1)).to_have_text("4")
        panel.locator(".mj-charts").click()
        charts = page.locator(".mj-charts-view:visible")
        expect(charts.locator(".mj-charts-scope")).to_have_text("2 ticked runs")
        assert page.url.startswith(f"{lab.url}notebooks/nb7/seven.ipynb")
    finally:
        context.close()
        browser.page.bring_to_front()  # JupyterLab's page again
    assert [e for e in errors if "mlops" in e.lower()] == []
