"""The panel ``%promote`` / ``%approve`` show: each gate's result and the request's status."""

from __future__ import annotations

import html
from typing import Any


def request_html(request: Any) -> str:
    """The request as HTML (every string escaped)."""
    colour = {
        "applied": "#1a7f37",
        "pending": "#9a6700",
        "blocked": "#cf222e",
        "rejected": "#cf222e",
    }.get(request.status, "#57606a")
    rows = "".join(
        f"<tr><td>{'✔' if g.passed else '✘'}</td><td>{html.escape(g.gate)}</td>"
        f"<td>{html.escape(g.message)}</td></tr>"
        for g in request.gates
    )
    gates = (
        f"<table><thead><tr><th></th><th>gate</th><th>result</th></tr></thead><tbody>{rows}"
        "</tbody></table>"
        if rows
        else "<p>No gates apply to this stage.</p>"
    )
    signed = (
        ", ".join(
            f"{html.escape(s.principal)} ({html.escape(s.fingerprint or 'unsigned')}"
            f"{', signature verified' if s.verified else ''})"
            for s in request.signoffs
            if s.decision == "approve"
        )
        or "none yet"
    )
    return (
        f"<div class='mlops-jupyter-request'><b>Request #{request.id}</b>: "
        f"{html.escape(request.model)}:{request.version} {html.escape(request.from_stage)} → "
        f"{html.escape(request.to_stage)} — <b style='color:{colour}'>"
        f"{html.escape(request.status)}</b><br>Requested by {html.escape(request.requester)}; "
        f"sign-offs {len(request.approvals)}/{request.required_signoffs} ({signed})"
        f"{_answers(request)}{gates}"
        f"<small>audit head {html.escape(request.audit_head)}</small></div>"
    )


def _answers(request: Any) -> str:
    """The monitored batches the request answers, one line each (empty when none)."""
    lines = [
        f"<br>Answers batch {html.escape(b['batch_id'][:24])} of "
        f"{html.escape(request.model)}:{int(b['version'])}: {html.escape(b['decision'])} "
        f"({html.escape(', '.join(b['drifting']) or 'no feature')} drifting)"
        for b in getattr(request, "answers", [])
    ]
    return "".join(lines)


class PromotionPanel:
    """An ipywidgets panel for one request, with a Refresh button (others may sign off)."""

    def __init__(self, registry: Any, request: Any) -> None:
        import ipywidgets as w

        self.registry = registry
        self.request = request
        self.body = w.HTML(request_html(request))
        refresh = w.Button(description="Refresh", icon="refresh")
        refresh.on_click(lambda _: self.refresh())
        self.widget = w.VBox([self.body, refresh])

    def refresh(self) -> Any:
        self.request = self.registry.request(self.request.id)
        self.body.value = request_html(self.request)
        return self.request

    def _repr_html_(self) -> str:  # a static rendering where widgets do not run
        return request_html(self.request)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
