"""The compact run summary shown under a tracked cell (HTML, with a plain-text fallback)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

TOP_METRICS = 6


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class RunSummary:
    run_id: str
    experiment: str
    name: str | None
    status: str
    duration_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    n_params: int = 0
    datasets: list[tuple[str, str, str]] = field(default_factory=list)  # role, variable, hash
    model: str | None = None
    capture_errors: list[dict[str, str]] = field(default_factory=list)
    shap: str = "off"  # off | pending | no data | ok | failed | unsupported
    shap_top: list[tuple[str, float]] = field(default_factory=list)
    shap_reason: str | None = None
    children: int = 0  # search candidates and fits in a loop, recorded as runs of their own

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    def _parts(self) -> list[tuple[str, str]]:
        """(label, text) pairs shared by both renderings."""
        parts = [
            (
                "run",
                f"{self.short_id} · {self.experiment}" + (f" · {self.name}" if self.name else ""),
            )
        ]
        parts.append(("status", f"{self.status} in {self.duration_s:.2f} s"))
        if self.metrics:
            shown = list(self.metrics.items())[:TOP_METRICS]
            more = len(self.metrics) - len(shown)
            text = ", ".join(f"{k}={_number(v)}" for k, v in shown)
            parts.append(("metrics", text + (f" (+{more})" if more > 0 else "")))
        parts.append(("params", str(self.n_params)))
        if self.datasets:
            text = ", ".join(
                f"{role}:{var} {digest.split(':')[-1][:10]}" for role, var, digest in self.datasets
            )
            parts.append(("data", text))
        if self.model:
            parts.append(("model", self.model))
        if self.children:
            parts.append(("child runs", f"{self.children}, tagged parent_run={self.short_id}"))
        if self.shap == "ok" and self.shap_top:
            parts.append(("SHAP top", ", ".join(name for name, _ in self.shap_top)))
        elif self.shap == "pending":
            parts.append(("SHAP", "computing in the background…"))
        elif self.shap in ("failed", "unsupported"):
            parts.append(("SHAP", f"{self.shap}: {self.shap_reason or ''}".rstrip(": ")))
        return parts

    def warning_line(self) -> str | None:
        if not self.capture_errors:
            return None
        first = self.capture_errors[0]
        more = len(self.capture_errors) - 1
        return f"mlops-jupyter: capture {first['step']}: {first['error']}" + (
            f" (+{more} more, see store.get_run('{self.short_id}').capture_errors)" if more else ""
        )

    def __repr__(self) -> str:
        lines = [f"{label}: {text}" for label, text in self._parts()]
        warning = self.warning_line()
        if warning:
            lines.append(warning)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = {"finished": "#1a7f37", "failed": "#cf222e", "interrupted": "#9a6700"}.get(
            self.status, "#57606a"
        )
        cells = "".join(
            f"<span style='margin-right:1.2em'><b>{html.escape(label)}</b> "
            f"{html.escape(text)}</span>"
            for label, text in self._parts()
        )
        warning = self.warning_line()
        warn = f"<div style='color:#9a6700'>⚠ {html.escape(warning)}</div>" if warning else ""
        return (
            f"<div class='mlops-jupyter-run' style='font-size:0.85em;border-left:3px solid {color};"
            f"padding:2px 8px;font-family:var(--jp-ui-font-family,sans-serif)'>{cells}{warn}</div>"
        )
