"""``%model_card REF --edit``: a form for the human-written sections of a model card."""

from __future__ import annotations

from typing import Any

from ..cards.model import HUMAN_SECTIONS, ModelCard


class CardEditor:
    """One text area per section; Save stores a new revision of each changed section."""

    def __init__(self, card: ModelCard, store: Any, author: str) -> None:
        import ipywidgets as w

        self.card = card
        self.store = store
        self.author = author
        self.areas: dict[str, Any] = {}
        rows = []
        for key, (title, required, hint) in HUMAN_SECTIONS.items():
            section = card.sections[key]
            area = w.Textarea(
                value=section.content or "",
                placeholder=hint,
                layout=w.Layout(width="100%", height="4.5em"),
            )
            self.areas[key] = area
            label = f"<b>{title}</b>{' (required)' if required else ''}"
            if section.revision:
                label += f" <small>revision {section.revision} by {section.author}</small>"
            rows += [w.HTML(label), area]
        self.save_button = w.Button(description="Save sections", button_style="primary")
        self.status = w.HTML()
        self.save_button.on_click(lambda _: self.save())
        self.widget = w.VBox([*rows, w.HBox([self.save_button, self.status])])

    def save(self) -> list[str]:
        """Store every section whose text changed; return their keys."""
        import html

        changed = []
        for key, area in self.areas.items():
            before = self.card.sections[key].content or ""
            if area.value.strip() != before.strip():
                revision = self.store.set_card_section(
                    self.card.subject, key, area.value.strip(), self.author
                )
                section = self.card.sections[key]
                section.content, section.revision, section.author = (
                    area.value.strip(),
                    revision,
                    self.author,
                )
                changed.append(key)
        names = ", ".join(HUMAN_SECTIONS[k][0] for k in changed) or "nothing changed"
        self.status.value = f"Saved: {html.escape(names)}"
        return changed

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
