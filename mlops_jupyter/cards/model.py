"""The model card: everything a reviewer needs, read from the store (never retyped).

Sections follow "Model Cards for Model Reporting" (Mitchell et al., 2019), plus explanations,
reproducibility and governance. Sections only a person can write are stored in the store
(``card_sections``, versioned, with author and time) and show as marked gaps until written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evaluation import Evaluation, GroupMetrics

if TYPE_CHECKING:
    from ..store import Run, Store

__all__ = ["Evaluation", "GroupMetrics", "ModelCard", "Section", "build_card"]

# section key -> (title, required for completeness, what to write)
HUMAN_SECTIONS: dict[str, tuple[str, bool, str]] = {
    "overview": ("Overview", True, "What the model does, in one or two sentences."),
    "owners": ("Owners", True, "Who owns the model: one 'name <contact>' per line."),
    "license": ("License", False, "An SPDX identifier (e.g. MIT) or 'proprietary'."),
    "intended_use": ("Intended use", True, "Primary uses and users the model is built for."),
    "out_of_scope": ("Out-of-scope uses", True, "Uses the model must not be put to."),
    "factors": ("Factors", True, "Groups, instruments, environments that affect performance."),
    "ethical_considerations": (
        "Ethical considerations",
        True,
        "Risks (sensitive data, harms) and how they are mitigated: 'risk: mitigation' lines.",
    ),
    "caveats": ("Caveats and recommendations", True, "Known limitations; advice to users."),
    "sensitive_column": (
        "Sensitive column",
        False,
        "The evaluation-data column to report per-group results on (e.g. sex), with the names "
        "of its codes if it holds codes: 'region: 0=north, 1=south, 2=east, 3=west'.",
    ),
}


@dataclass
class Section:
    """A human-written section (or a gap)."""

    key: str
    title: str
    required: bool
    hint: str
    content: str | None = None
    author: str | None = None
    revision: int | None = None
    written_at: float | None = None
    written_on: str | None = None  # the run it was written on, when the card is a version's

    @property
    def missing(self) -> bool:
        return not (self.content and self.content.strip())


_FORMATS = {"html": "html", "htm": "html", "json": "json", "md": "md", "markdown": "md"}


def card_format(
    path: str | Path, format: str | None = None, how: str = "format='html'|'json'|'md'"
) -> str:
    """The card format (``html``, ``json`` or ``md``) for ``path``; ``how`` names the way to
    choose one explicitly in the caller's own spelling (``--format html|json|md`` in a CLI)."""
    target = Path(path)
    kind = _FORMATS.get((format or target.suffix.lstrip(".")).lower())
    if kind is None:
        given = f"format {format!r}" if format else f"the file name {target.name!r}"
        pdf = " (for a PDF, write the HTML and print it)" if target.suffix.lower() == ".pdf" else ""
        raise ValueError(
            f"cannot write a card with {given}: name the file .html, .json or .md, or choose "
            f"with {how}{pdf}"
        )
    return kind


@dataclass
class ModelCard:
    """A card for one run (or one registered model version)."""

    subject: str  # run id or "model:version"
    run: Run
    model_name: str
    version: str | None
    model_class: str | None
    sections: dict[str, Section]
    group_metrics: list[GroupMetrics] = field(default_factory=list)
    evaluation: Evaluation | None = None  # numbers with intervals, from eval_data
    governance: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None  # a version's production batches (see .monitoring)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    # ------------------------------------------------------------------ content
    def section(self, key: str) -> Section:
        return self.sections[key]

    @property
    def training_data(self) -> list[Any]:
        return [d for d in self.run.datasets if d.role in ("train", "source", "data")]

    @property
    def evaluation_data(self) -> list[Any]:
        return [d for d in self.run.datasets if d.role == "eval"]

    @property
    def completeness(self) -> dict[str, Any]:
        """Which required parts are present: human sections, evaluation data, explanation."""
        gaps = [s.title for s in self.sections.values() if s.required and s.missing]
        if not self.run.metrics:
            gaps.append("Metrics")
        if not self.evaluation_data:
            gaps.append("Evaluation data")
        if self.run.explanation is None or self.run.explanation.status != "ok":
            gaps.append("Explanation")
        required = sum(1 for s in self.sections.values() if s.required) + 3
        return {
            "complete": not gaps,
            "filled": required - len(gaps),
            "required": required,
            "gaps": gaps,
        }

    # ---------------------------------------------------------------- renderings
    def to_html(self) -> str:
        from .html import render_html

        return render_html(self)

    def to_json(self, extended: bool = False) -> str:
        """Model Card Toolkit JSON (schema v0.0.2); ``extended=True`` adds our sibling document."""
        import json

        from .mct import extended_document, mct_document

        doc: dict[str, Any] = mct_document(self)
        if extended:
            doc = {"model_card": doc, "mlops_jupyter": extended_document(self)}
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        from .markdown import render_markdown

        return render_markdown(self)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the card; the format comes from ``format`` or the suffix (.html, .json, .md)."""
        target = Path(path)
        kind = card_format(target, format)
        renderers = {"html": self.to_html, "json": self.to_json, "md": self.to_markdown}
        target.write_text(renderers[kind](), encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        from .html import render_html

        return render_html(self, embedded=True)

    def __repr__(self) -> str:
        c = self.completeness
        return (
            f"<ModelCard {self.model_name} ({self.subject[:12]}), "
            f"{c['filled']}/{c['required']} parts complete>"
        )


def resolve_subject(store: Store, ref: str) -> tuple[str, str, str | None]:
    """``ref`` -> (subject, run id, version); ``"model:3"`` names a registered version."""
    name, sep, version = ref.rpartition(":")
    if sep and name and version.isdigit():
        return ref, store.model_version_run(name, int(version)), version
    run_id = store.resolve_run_id(ref)
    return run_id, run_id, None


def build_card(
    ref: str,
    *,
    store: Store | None = None,
    eval_data: tuple[Any, Any] | None = None,
) -> ModelCard:
    """Build the card of a run id (or unique prefix) or ``"model:version"`` from the store.

    ``eval_data=(X, y)`` adds per-group metrics for the sensitive column named in the card, after
    checking that ``X`` and ``y`` are exactly the evaluation data the run recorded (by hash).
    """
    own = store is None
    if store is None:
        from ..store import Store

        store = Store.open(create=False)
    try:
        subject, run_id, version = resolve_subject(store, ref)
        run = store.get_run(run_id)
        stored = store.card_sections_of(subject, run_id)  # the gates read the same
        model_artifact = next((a for a in run.artifacts if a.kind == "model"), None)
        model_class = (model_artifact.meta or {}).get("class") if model_artifact else None
        model = _load_model(store, run, ref) if eval_data is not None else None
        if eval_data is None and version is not None and has_stored_eval_data(run):
            # a registered version: its stored evaluation rows (hash-verified) and its model
            # loaded only through the signed register statement's hash
            from ..registry.registry import Registry

            eval_data = stored_eval_data(store, run)
            model = Registry(store).load_model(subject.rpartition(":")[0], version=int(version))
        governance = _governance(store, subject, version)
        monitoring = _monitoring(store, subject, version, governance)
    finally:
        if own:
            store.close()
    sections = {}
    for key, (title, required, hint) in HUMAN_SECTIONS.items():
        row = stored.get(key, {})
        sections[key] = Section(
            key,
            title,
            required,
            hint,
            row.get("content"),
            row.get("author"),
            row.get("revision"),
            row.get("created_at"),
            row.get("on") if row.get("on") != subject else None,
        )
    model_name = subject.rpartition(":")[0] if version else (run.name or run.experiment)
    card = ModelCard(subject, run, model_name, version, model_class, sections)
    card.governance = governance
    card.monitoring = monitoring
    if eval_data is not None:
        card.evaluation, card.group_metrics = _evaluate(card, model, eval_data)
    return card


def _load_model(store: Store, run: Run, ref: str) -> Any:
    """The run's model, from its blob: unpickled only after the store verified the blob's
    content hash against its name (a tampered file raises BlobIntegrityError)."""
    import pickle

    artifact = next((a for a in run.artifacts if a.kind == "model"), None)
    if artifact is None:
        raise LookupError(f"run {run.run_id[:8]} ({ref}) stored no model: no per-group metrics")
    return pickle.loads(store.blobs.get_bytes(artifact.blob))


def _kept_eval_links(run: Run) -> tuple[Any, Any]:
    """The run's evaluation snapshots stored with their rows: the 2-D X and the 1-D y."""
    kept = [d for d in run.datasets if d.role == "eval" and d.rows_blob and d.shape]
    X = next((d for d in kept if len(d.shape or ()) == 2), None)
    y = next((d for d in kept if len(d.shape or ()) == 1), None)
    return X, y


def has_stored_eval_data(run: Run) -> bool:
    """Whether the run's evaluation data was stored with its rows (a 2-D X and a 1-D y)."""
    return None not in _kept_eval_links(run)


def stored_eval_data(store: Store, run: Run) -> tuple[Any, Any]:
    """``(X, y)``: the run's evaluation rows read back from the store, each checked to hash to
    the snapshot the run recorded (X the 2-D one, y the 1-D one); ``LookupError`` without."""
    X, y = _kept_eval_links(run)
    if X is None or y is None:
        raise LookupError(
            f"run {run.run_id[:8]} stored no evaluation rows (a 2-D X and a 1-D y): track the "
            "cell that evaluates the model (predict/score on X, y) to keep them"
        )
    return store.dataset_rows(X.hash), store.dataset_rows(y.hash)


def group_values(X: Any, column: str, names: dict[str, str]) -> Any:
    """The values of ``column`` of ``X`` with their codes named; None without such a column."""
    import numpy as np

    values = _column_values(X, column)
    if values is None or not names:
        return values
    return np.array([_named(v, names) for v in values.tolist()], dtype=object)


def _evaluate(
    card: ModelCard, model: Any, eval_data: tuple[Any, Any]
) -> tuple[Evaluation, list[GroupMetrics]]:
    """The model's numbers on ``eval_data``, once it is shown to be the data the run recorded
    for evaluation (by hash): overall with intervals, and per group of the sensitive column."""
    from ..capture.hashing import hash_data
    from .evaluation import by_group, evaluate, positive_class

    X, y = eval_data
    recorded = {d.hash for d in card.evaluation_data}
    for name, obj in (("X", X), ("y", y)):
        if hash_data(obj) not in recorded:
            raise ValueError(
                f"eval_data {name} is not the evaluation data run {card.run.run_id[:8]} recorded "
                "(its hash differs): per-group metrics must come from the tracked data"
            )
    import numpy as np

    predictions = np.asarray(model.predict(X))
    truth = _column_values(y, None)
    classifier = hasattr(model, "classes_")
    overall = evaluate(truth, predictions, classifier=classifier)
    column, names = sensitive_column(card.sections["sensitive_column"].content)
    values = group_values(X, column, names) if column else None
    if values is None:
        return overall, []
    positive = positive_class(truth.tolist(), predictions.tolist())
    groups = by_group(column, values, truth, predictions, classifier=classifier, positive=positive)
    return overall, [groups]


def sensitive_column(text: str | None) -> tuple[str, dict[str, str]]:
    """``"region: 0=north, 1=south"`` -> ``("region", {"0": "north", "1": "south"})``: the
    column and the names of its codes (pairs split by commas or new lines)."""
    column, _, rest = (text or "").strip().partition(":")
    names: dict[str, str] = {}
    for pair in rest.replace("\n", ",").split(","):
        code, sep, name = pair.partition("=")
        if sep and code.strip() and name.strip():
            names[code.strip()] = name.strip()
    return column.strip(), names


def _named(value: Any, names: dict[str, str]) -> Any:
    """A code's name; a number matches its code written either way (``2`` and ``2.0``)."""
    if value is None or value != value:  # missing stays missing
        return value
    if str(value) in names:
        return names[str(value)]
    for code, name in names.items():
        try:
            if float(code) == float(value):
                return name
        except (TypeError, ValueError):
            continue
    return value


def _column_values(data: Any, column: str | None) -> Any:
    """One column of a pandas, polars or pyarrow table (``column`` None: a 1-D ``y`` of any
    of those or numpy) as a numpy array; None when the table has no such column."""
    import numpy as np

    if column is None:
        if hasattr(data, "to_numpy") and not hasattr(data, "column_names"):
            return np.asarray(data.to_numpy())  # pandas / polars Series, pyarrow arrays
        return np.asarray(data)
    names = getattr(data, "column_names", None)  # pyarrow Table / RecordBatch
    if names is not None:
        if column not in names:
            return None
        return np.asarray(data.column(column).to_numpy(zero_copy_only=False))
    if column not in list(getattr(data, "columns", [])):
        return None
    return np.asarray(data[column].to_numpy())


def _monitoring(
    store: Store, subject: str, version: str | None, governance: dict[str, Any]
) -> dict[str, Any] | None:
    """A registered version's batches and the drift it answers (None for a run's card)."""
    if version is None or "stage" not in governance:
        return None
    from ..registry.registry import Registry
    from .monitoring import monitoring_summary

    model = subject.rpartition(":")[0]
    rules = Registry(store).policy.monitoring
    return monitoring_summary(store, model, int(version), governance.get("requests", []), rules)


def _governance(store: Store, subject: str, version: str | None) -> dict[str, Any]:
    """Stage, requests with gate results and sign-offs (each with its principal, key
    fingerprint and whether its signature verified), history, and the audit head now, all
    read from the signed log (an integrity problem raises rather than print a false card)."""
    from ..registry.registry import Registry

    out: dict[str, Any] = {"audit_head": store.audit_head()}
    if version is None:
        return out
    model = subject.rpartition(":")[0]
    registry = Registry(store)
    ledger = registry.checked()
    state = ledger.versions.get((model, int(version)))
    if state is None:
        return out
    out["stage"], out["risk_tier"] = state.stage, ledger.tiers.get(model)
    out["registered_by"] = {"principal": state.registered_by, "fingerprint": state.fingerprint}
    requests = []
    for request in sorted(ledger.requests.values(), key=lambda r: r.id):
        if (request.model, request.version) != (model, int(version)):
            continue
        requests.append(
            {
                "id": request.id,
                "to": request.to_stage,
                "status": request.status,
                "requester": request.requester,
                "requester_key": request.requester_key,
                "created_at": request.time,
                "gates": request.gates,
                "reason": request.reason,
                "signoffs": [s.to_dict() for s in request.signoffs],
                "not_counted": [
                    {"principal": who, "time": when, "reason": why}
                    for who, when, why in request.not_counted
                ],
                "answers": request.answers,
            }
        )
    out["requests"] = requests
    out["history"] = [
        {"seq": e["seq"], "ts": e["ts"], "actor": e["actor"], "action": e["action"],
         "verified": e["verified"]}
        for e in registry.history(model)
        if e["subject"] == subject
    ]  # fmt: skip
    return out
