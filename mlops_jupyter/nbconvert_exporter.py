"""``jupyter nbconvert --to model_card NOTEBOOK.ipynb``: the cards of the runs tracked from a
notebook, in one HTML file, with the rendered notebook as an appendix.

The appendix sits in a sandboxed ``<iframe srcdoc>`` (no scripts), under the card's
Content-Security-Policy (no network), so a notebook's outputs cannot break either promise.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from nbconvert.exporters import Exporter, HTMLExporter


class ModelCardExporter(Exporter):
    """nbconvert exporter registered as ``model_card``."""

    output_mimetype = "text/html"
    export_from_notebook = "Model cards (mlops-jupyter)"

    def _file_extension_default(self) -> str:
        return ".cards.html"

    def from_notebook_node(  # type: ignore[override]  # an HTML body, not a notebook
        self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        nb_copy, resources = super().from_notebook_node(nb, resources, **kw)
        from .cards.html import CSS, esc, render_html
        from .cards.model import build_card
        from .store import Store
        from .store.discovery import find_store_dir

        meta = resources.get("metadata", {})
        directory = Path(meta.get("path") or ".").resolve()
        name = f"{meta.get('name', 'notebook')}.ipynb"
        cards = []
        db = find_store_dir(directory) / "store.db"
        if db.is_file():
            with Store.open(db.parent, create=False) as store:
                table = store.runs(order_by="started_at")
                for run_id in table["run_id"]:
                    run = store.get_run(run_id)
                    if run.notebook_path and Path(run.notebook_path).name == name:
                        cards.append(build_card(run_id, store=store))
        appendix, _ = HTMLExporter(template_name="lab").from_notebook_node(nb_copy)
        contents = "".join(
            f"<li><a href='#card-{i}'>{esc(c.model_name)} ({esc(c.run.run_id[:8])}, "
            f"{esc(c.run.status)})</a></li>"
            for i, c in enumerate(cards)
        )
        bodies = "".join(
            f"<article id='card-{i}'>{_body(render_html(c))}</article><hr>"
            for i, c in enumerate(cards)
        )
        if not cards:
            bodies = f"<p>No tracked runs of {esc(name)} in {esc(db)}.</p>"
        output = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:; frame-src 'self' about:\">"
            f"<title>Model cards: {esc(name)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>Model cards: {esc(name)}</h1><ol>{contents}</ol>{bodies}"
            "<section><h2>Appendix: the notebook</h2>"
            "<iframe sandbox title='The notebook' style='width:100%;height:80vh;border:1px solid"
            f' #d1d9e0\' srcdoc="{html.escape(appendix, quote=True)}"></iframe></section>'
            "</main></body></html>"
        )
        resources["output_extension"] = ".cards.html"
        return output, resources


def _body(page: str) -> str:
    """The inside of <main> of a rendered card."""
    start, end = page.find("<main>"), page.rfind("</main>")
    return page[start + len("<main>") : end] if start >= 0 and end > start else page
