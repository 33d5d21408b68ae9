"""The side panel in real JupyterLab, driven in real Chromium (Playwright)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from conftest import skip_or_fail
from server_helpers import RunningServer, running_server

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
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    chromium_path()  # skip before starting a server for nothing
    root = tmp_path_factory.mktemp("labroot")
    (root / "project").mkdir()
    (root / "project" / "analysis.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    with running_server(root, tmp_path_factory.mktemp("labhome"), lab=True) as running:
        yield running
        log = running.log()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser(lab: RunningServer) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            session = Browser(page)
            page.on(
                "console",
                lambda msg: session.errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: session.errors.append(str(exc)))
            page.goto(f"{lab.url}lab?token={lab.token}")
            page.wait_for_selector("#jp-main-dock-panel")
            yield session
        finally:
            chromium.close()


def open_panel(browser: Browser) -> None:
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
    page.wait_for_selector(".jp-NotebookPanel")
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
    page.wait_for_selector(".jp-NotebookPanel")
    open_panel(browser)
    panel = browser.panel
    panel.locator(".mj-refresh").click()
    rows = panel.locator("tr.mj-run")
    expect(rows).to_have_count(3)
    expect(panel.locator(".mj-page")).to_have_text("1–3 of 3")
    panel.locator("button.mj-sort[data-sort='metrics.accuracy']").click()  # best first
    expect(rows.first.locator(".mj-card-button")).to_have_text("forest-depth-8")
    rows.nth(0).locator(".mj-select").check()
    rows.nth(1).locator(".mj-select").check()
    compare = panel.locator(".mj-compare")
    expect(compare).to_have_text("Compare 2 runs")
    compare.click()
    view = page.locator(".mj-compare-view")
    expect(view.locator("tr.mj-diff[data-param='max_depth'] td")).to_have_text(["8", "4"])
    expect(view.locator("tr[data-param='n_estimators']")).to_have_count(0)  # same: hidden
    view.locator(".mj-show-all input").check()
    expect(view.locator("tr[data-param='n_estimators'] td")).to_have_text(["100", "100"])
    expect(view.locator("tr[data-metric='accuracy'] td.mj-best")).to_have_text("0.9300")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"))

    rows.first.locator(".mj-card-button").click()
    frame = page.locator(".mj-card-frame")
    expect(frame).to_have_attribute("sandbox", "")
    card = page.frame_locator(".mj-card-frame")
    expect(card.locator("h1")).to_have_text("Model card: forest-depth-8")
    page.screenshot(path=str(ARTIFACTS / "card-tab.png"))


def test_no_console_errors_from_the_extension(browser: Browser) -> None:
    assert [e for e in browser.errors if "mlops" in e.lower()] == []
