"""Technical documentation of a registered model version, structured by Annex IV of
Regulation (EU) 2024/1689 (the AI Act), filled from the store.

Each of the Annex's nine points holds what the store records for it (versions, data hashes
and provenance, the procedure and its metrics, the signed gate results and sign-offs, the audit
log, the monitoring plan) and the card's human-written sections where they belong. What only a
person can know is listed as "To be written by a person: ...", and all of it again at the end
(:attr:`TechDoc.missing`). It is a draft for the provider to complete, not an assessment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ModelCard, Section

__all__ = ["ANNEX_IV", "AnnexPoint", "TechDoc", "build_techdoc", "check_versioned"]

REGULATION = "Regulation (EU) 2024/1689 (the AI Act)"
# the nine points of Annex IV, numbered and worded as in the Annex
ANNEX_IV: tuple[tuple[int, str], ...] = (
    (1, "A general description of the AI system"),
    (
        2,
        "A detailed description of the elements of the AI system and of the process for its "
        "development",
    ),
    (3, "Detailed information about the monitoring, functioning and control of the AI system"),
    (
        4,
        "A description of the appropriateness of the performance metrics for the specific AI "
        "system",
    ),
    (5, "A detailed description of the risk management system in accordance with Article 9"),
    (
        6,
        "A description of relevant changes made by the provider to the system through its "
        "lifecycle",
    ),
    (7, "A list of the harmonised standards applied in full or in part"),
    (8, "A copy of the EU declaration of conformity referred to in Article 47"),
    (
        9,
        "A detailed description of the system in place to evaluate the AI system performance "
        "in the post-market phase in accordance with Article 72, including the post-market "
        "monitoring plan",
    ),
)
EDIT_HINT = "%model_card MODEL:VERSION --edit or mlops-jupyter card-sections"
SHAP_TOP = 10


# ------------------------------------------------------------------------------ blocks
@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3  # 3: a sub-point such as "(a) ...", 4: one dataset, request or section


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Facts:
    rows: list[tuple[str, Any]]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Any]]
    folded: str | None = None  # shown behind this summary on screen (a long listing)


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Written:
    """A card section as a person wrote it (with its author, time and revision)."""

    label: str
    section: Section


@dataclass(frozen=True)
class ToWrite:
    """What the store cannot know: a person has to write it."""

    what: str


Block = Heading | Text | Facts | Table | Code | Written | ToWrite


@dataclass
class AnnexPoint:
    number: int
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class TechDoc:
    """The Annex IV documentation of one registered version (see :func:`build_techdoc`)."""

    card: ModelCard
    points: list[AnnexPoint]
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def subject(self) -> str:
        return self.card.subject

    @property
    def missing(self) -> list[tuple[int, str]]:
        """(Annex IV point, what) of every item a person still has to write, in order."""
        return [(p.number, b.what) for p in self.points for b in p.blocks if isinstance(b, ToWrite)]

    def to_html(self) -> str:
        return render_html(self)

    def to_markdown(self) -> str:
        return render_markdown(self)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write it; the format comes from ``format`` or the suffix (.html or .md)."""
        target = Path(path)
        kind = techdoc_format(target, format)
        text = self.to_html() if kind == "html" else self.to_markdown()
        target.write_text(text, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        return render_html(self, embedded=True)

    def __repr__(self) -> str:
        return (
            f"<TechDoc {self.subject}: Annex IV points 1-9, "
            f"{len(self.missing)} items to be written by a person>"
        )


_FORMATS = {"html": "html", "htm": "html", "md": "md", "markdown": "md"}


def techdoc_format(
    path: str | Path, format: str | None = None, how: str = "format='html'|'md'"
) -> str:
    """``html`` or ``md`` for ``path``; ``how`` names the caller's way to choose one."""
    target = Path(path)
    kind = _FORMATS.get((format or target.suffix.lstrip(".")).lower())
    if kind is None:
        given = f"format {format!r}" if format else f"the file name {target.name!r}"
        raise ValueError(
            f"cannot write technical documentation with {given}: name the file .html or .md, "
            f"or choose with {how}"
        )
    return kind


def check_versioned(ref: str) -> None:
    """Refuse anything but ``MODEL:VERSION``: only a registered version is documented."""
    name, sep, version = ref.rpartition(":")
    if not (sep and name and version.isdigit()):
        raise ValueError(
            f"technical documentation is written for a registered model version "
            f"(MODEL:VERSION), and {ref!r} is not one: register the run first "
            "(mlops-jupyter register RUN MODEL, or mj.register(run_id, MODEL)), then document "
            "MODEL:VERSION"
        )


# ----------------------------------------------------------------------------- building
def build_techdoc(card: ModelCard) -> TechDoc:
    """The Annex IV documentation of the version ``card`` describes (a card built with
    ``eval_data`` adds intervals and per-group results)."""
    if card.version is None:
        check_versioned(card.subject)
    builders = {
        1: _general,
        2: _development,
        3: _functioning,
        4: _metrics_fit,
        5: _risk,
        6: _changes,
        7: _standards,
        8: _declaration,
        9: _post_market,
    }
    points = [AnnexPoint(n, title, builders[n](card)) for n, title in ANNEX_IV]
    return TechDoc(card, points)


def _when(ts: Any) -> str:
    from .html import _time

    return _time(ts)


def _human(card: ModelCard, key: str, label: str, prefix: str = "") -> list[Block]:
    """A card section where it belongs: as written, or what to write (and where)."""
    section = card.sections[key]
    if not section.missing:
        return [Written(label, section)]
    return [ToWrite(f"{prefix}{label}, in the card's {section.title} section: {section.hint}")]


def _general(card: ModelCard) -> list[Block]:
    g = card.governance or {}
    by = g.get("registered_by") or {}
    artifact = next((a for a in card.run.artifacts if a.kind == "model"), None)
    facts: list[tuple[str, Any]] = [
        ("Model", card.model_name),
        ("Version", card.version),
        ("Registered by", f"{by.get('principal')} (key {by.get('fingerprint') or 'unsigned'})"),
        ("Stage", g.get("stage") or "—"),
        ("Risk tier", g.get("risk_tier") or "—"),
        ("Model class", card.model_class or "no model stored"),
        ("Model file (content hash)", artifact.blob if artifact else "—"),
        ("Run", card.run.run_id),
    ]
    out: list[Block] = [
        Heading("(a) Its intended purpose, the name of the provider and the version of the system"),
        Facts(facts),
        *_human(card, "overview", "What the system does", "(a) "),
        *_human(card, "intended_use", "Intended purpose", "(a) "),
        *_human(card, "out_of_scope", "Uses it must not be put to", "(a) "),
        *_human(card, "owners", "Owners", "(a) "),
        ToWrite("(a) the name of the provider, and how this version relates to previous versions"),
        Heading("(b) How the AI system interacts with hardware or software that is not part of it"),
        ToWrite(
            "(b) the hardware and software, including other AI systems, the system interacts "
            "with or can be used to interact with"
        ),
        Heading("(c) The versions of relevant software or firmware"),
    ]
    env = card.run.environment
    if env is None:
        out.append(Text("The run recorded no environment."))
    else:
        from .html import KEY_PACKAGES

        rows: list[tuple[str, Any]] = [("Python", env.python), ("Platform", env.platform)]
        rows += [(name, env.packages[name]) for name in KEY_PACKAGES if name in env.packages]
        out += [
            Facts(rows),
            Table(
                ["package", "version"],
                sorted([k, v] for k, v in env.packages.items()),
                f"All {len(env.packages)} installed packages",
            ),
        ]
    out += [
        ToWrite("(c) the requirements related to version updates"),
        Heading("(d) The forms in which the AI system is placed on the market or put into service"),
        ToWrite("(d) the forms it is placed on the market or put into service in (e.g. an API)"),
        Heading("(e) The hardware on which the AI system is intended to run"),
        ToWrite("(e) the hardware on which the system is intended to run"),
        Heading("(f) Where the AI system is a component of products: their features"),
        ToWrite(
            "(f) where it is a component of products, photographs or illustrations of their "
            "external features, marking and internal layout (or: not applicable)"
        ),
        Heading("(g) The user-interface provided to the deployer"),
        ToWrite("(g) a basic description of the user-interface provided to the deployer"),
        Heading("(h) Instructions for use for the deployer"),
        ToWrite("(h) the instructions for use for the deployer"),
    ]
    return out


def _dataset(d: Any) -> list[Block]:
    """One data snapshot: its hash and provenance, then its profile per column."""
    from .html import PROFILE_HEADER, profile_rows

    facts: list[tuple[str, Any]] = [
        ("Role", d.role),
        ("Content hash", d.hash),
        ("Kind", d.kind),
        ("Shape", " x ".join(str(n) for n in d.shape) if d.shape else "—"),
    ]
    if d.source_path:
        facts += [("Source file", d.source_path), ("Source file hash", d.source_hash or "—")]
    out: list[Block] = [Heading(f"{d.role}: {d.variable}", 4), Facts(facts)]
    columns = (d.profile or {}).get("columns") or {}
    if columns:
        out.append(Table(PROFILE_HEADER, profile_rows(columns)))
    return out


def _shap_top(e: Any) -> list[list[Any]]:
    """The features with the largest mean |SHAP| (a binary model's two classes are equal)."""
    names = [str(n) for n in e.feature_names or []]
    values = e.mean_abs
    if isinstance(values, dict):
        rows = list(values.values())
        totals = (
            [float(v) for v in rows[-1]]
            if len(rows) == 2
            else [sum(float(r[i]) for r in rows) for i in range(len(names))]
        )
    else:
        totals = [float(v) for v in values]
    ranked = sorted(zip(names, totals, strict=True), key=lambda p: -p[1])[:SHAP_TOP]
    return [[n, v] for n, v in ranked]


def _development(card: ModelCard) -> list[Block]:
    run = card.run
    git = "not a git repository"
    if run.git_commit:
        git = run.git_commit + (" (uncommitted changes)" if run.git_dirty else " (clean)")
    duration = f"{run.duration_s:.3f} s" if run.duration_s is not None else "—"
    out: list[Block] = [
        Heading("(a) The methods and steps performed for the development of the AI system"),
        Facts(
            [
                ("Experiment", run.experiment),
                ("Run", run.run_id),
                ("Status", run.status),
                ("Started", _when(run.started_at)),
                ("Duration", duration),
                ("Tracked by", run.user or "—"),
                ("Notebook", run.notebook_path or "—"),
                (
                    "Execution count",
                    run.execution_count if run.execution_count is not None else "—",
                ),
                ("Git commit", git),
            ]
        ),
    ]
    if run.code:
        out += [Text("The code of the tracked cell, as it ran:"), Code(run.code)]
    else:
        out.append(Text("The run recorded no code."))
    if run.history:
        out.append(
            Table(
                ["execution count", "source hash"],
                [[h.get("execution_count"), h.get("source_hash")] for h in run.history],
                "Cells run before this one",
            )
        )
    out += [
        ToWrite(
            "(a) the development steps the tracked code does not show, and any pre-trained "
            "systems or third-party tools used and how they were integrated or modified"
        ),
        Heading("(b) The design specifications of the system"),
        Facts([("Model class", card.model_class or "no model stored")]),
    ]
    params = [[k, v, run.param_sources.get(k, "")] for k, v in sorted(run.params.items())]
    out.append(
        Table(["parameter", "value", "source"], params)
        if params
        else Text("No parameters recorded.")
    )
    e = run.explanation
    if e is not None and e.status == "ok" and e.feature_names:
        out += [
            Text(
                f"Global feature importance: mean absolute SHAP value ({e.explainer}, "
                f"{e.n_rows} evaluation rows), the top {min(SHAP_TOP, len(e.feature_names))}:"
            ),
            Table(["feature", "mean |SHAP|"], _shap_top(e)),
        ]
    else:
        status = "none stored" if e is None else f"{e.status}: {e.reason or ''}".rstrip(": ")
        out.append(Text(f"SHAP explanation: {status}."))
    out += [
        ToWrite(
            "(b) the general logic of the system and its algorithms, the key design choices "
            "with their rationale and assumptions (also about the persons or groups it is "
            "meant to be used on), what it is designed to optimise for, and the trade-offs made"
        ),
        Heading("(c) The system architecture and the computational resources used"),
    ]
    artifact = next((a for a in run.artifacts if a.kind == "model"), None)
    if artifact is not None:
        out.append(
            Facts(
                [
                    ("Model file (content hash)", artifact.blob),
                    ("Size", f"{artifact.size:,} bytes"),
                    ("Media type", artifact.media_type or "—"),
                    ("Trained on host", run.host or "—"),
                    ("Training time", duration),
                ]
            )
        )
    out += [
        ToWrite(
            "(c) the system architecture (how its software components build on or feed into "
            "each other) and the computational resources used to develop, train, test and "
            "validate it"
        ),
        Heading("(d) The data requirements: the training data sets"),
    ]
    for d in card.training_data:
        out += _dataset(d)
    if not card.training_data:
        out.append(Text("The run recorded no training data."))
    out += [
        ToWrite(
            "(d) how the data was obtained and selected, its scope and main characteristics, "
            "labelling procedures and data cleaning methodologies"
        ),
        Heading(
            "(e) Assessment of the human oversight measures needed in accordance with Article 14"
        ),
    ]
    if e is not None and e.status == "ok":
        out.append(Text("A SHAP explanation of the model's outputs is stored (see (b))."))
    out += [
        ToWrite(
            "(e) the assessment of the human oversight measures needed, including the technical "
            "measures that help deployers interpret the outputs"
        ),
        Heading("(f) Pre-determined changes to the AI system and its performance"),
        ToWrite(
            "(f) where applicable, the pre-determined changes to the system and its performance "
            "and how it stays compliant through them (or: none)"
        ),
        Heading("(g) The validation and testing procedures used"),
        *_testing(card),
        ToWrite(
            "(g) the tests of robustness and of other requirements beyond the gate results and "
            "sign-offs above, with their dated and signed reports"
        ),
        Heading("(h) Cybersecurity measures put in place"),
        Text(
            "Registry actions are statements signed with each person's SSH key (Ed25519, SSHSIG) "
            "in a hash-chained audit log; a model file is loaded only after its content hash "
            "matches the signed registration."
        ),
        Facts([("Audit log head at export", (card.governance or {}).get("audit_head", "—"))]),
        ToWrite("(h) the cybersecurity measures put in place for the system as deployed"),
    ]
    return out


def _testing(card: ModelCard) -> list[Block]:
    """Evaluation data, logged and recomputed metrics, and the signed test and approval records."""
    from .evaluation import interval_text, short

    run = card.run
    out: list[Block] = []
    for d in card.evaluation_data:
        out += _dataset(d)
    if not card.evaluation_data:
        out.append(Text("The run recorded no evaluation data."))
    if run.metrics:
        rows = [
            [k, v, len(run.metric_history.get(k, [])) or 1] for k, v in sorted(run.metrics.items())
        ]
        out += [Text("Metrics as the run logged them:"), Table(["metric", "value", "steps"], rows)]
    else:
        out.append(Text("The run logged no metric."))
    e = card.evaluation
    if e is None:
        out.append(
            Text(
                "Intervals, the confusion matrix and per-group results are computed when the "
                "documentation is built with the run's evaluation data: mj.techdoc(ref, "
                "eval_data=(X, y)), its hash checked first."
            )
        )
    else:
        out += [
            Text(
                f"Recomputed on the {e.n:,} evaluation rows (their hash checked against the "
                f"run's): 95 % percentile bootstrap intervals, {e.resamples:,} resamples, seed "
                f"{e.seed}."
            ),
            Table(
                ["metric", "value", "95 % interval", "n"],
                [
                    [k, short(m["value"]), interval_text(m["interval"]), e.n]
                    for k, m in e.metrics.items()
                ],
            ),
        ]
        if e.confusion is not None:
            out += [
                Text("Confusion matrix (rows: the true class, columns: the predicted one):"),
                Table(
                    ["", *(f"predicted {label}" for label in e.labels)],
                    [
                        [f"true {label}", *row]
                        for label, row in zip(e.labels, e.confusion, strict=True)
                    ],
                ),
            ]
        if e.residuals is not None:
            out += [
                Text("Residuals (predicted − true):"),
                Table(["statistic", "value"], [[k, short(v)] for k, v in e.residuals.items()]),
            ]
    if card.group_metrics:
        out.append(Text("Results per group (potentially discriminatory impacts): point 3."))
    out += _approvals(card)
    return out


def _signature(s: dict[str, Any]) -> str:
    if not s.get("verified"):
        return "not signed (recorded before signed sign-offs)"
    return "verified" + (f"; {s['note']}" if s.get("note") else "")


def _approvals(card: ModelCard) -> list[Block]:
    """Each promotion request: its gate results and its signed sign-offs."""
    requests = (card.governance or {}).get("requests", [])
    if not requests:
        return [
            Text(
                "No promotion was requested for this version: no gate results or "
                "sign-offs are recorded yet."
            )
        ]
    out: list[Block] = [Text("The signed test and approval records (promotion requests):")]
    for r in requests:
        key = f", key {r['requester_key']}" if r.get("requester_key") else ""
        out += [
            Heading(f"Request #{r['id']}: to {r['to']} — {r['status']}", 4),
            Text(f"Requested by {r['requester']}{key}, {_when(r['created_at'])}."),
        ]
        if r["gates"]:
            out.append(
                Table(
                    ["gate", "result", "message"],
                    [
                        [g["gate"], "pass" if g["passed"] else "FAIL", g["message"]]
                        for g in r["gates"]
                    ],
                )
            )
        else:
            out.append(Text("The policy ran no gate for this request's tier and stage."))
        if r.get("reason"):
            out.append(Text(f"Blocked: {r['reason']}"))
        rows = [
            [
                s["principal"],
                s.get("fingerprint") or "—",
                s["decision"],
                _signature(s),
                _when(s["time"]),
                s.get("comment") or "",
            ]
            for s in r["signoffs"]
        ] + [
            [n["principal"], "—", "not counted", n["reason"], _when(n["time"]), ""]
            for n in r.get("not_counted", [])
        ]
        if rows:
            out.append(
                Table(["sign-off by", "key", "decision", "signature", "when", "comment"], rows)
            )
        else:
            out.append(Text("No sign-off yet."))
    return out


def _functioning(card: ModelCard) -> list[Block]:
    from .evaluation import interval_text, short
    from .model import sensitive_column
    from .summary import headline, headline_text

    out: list[Block] = [
        Heading("Capabilities and limitations in performance"),
        Text(f"Headline: {headline_text(headline(card))}."),
        *_human(card, "caveats", "Known limitations and advice to users"),
        Heading("Degrees of accuracy for specific persons or groups of persons"),
        *_human(card, "factors", "Groups, instruments and environments that affect performance"),
    ]
    for g in card.group_metrics:
        rates = list(g.rates)
        out += [
            Text(
                f"By {g.column} (on the evaluation data; largest gap between groups: {g.metric} "
                f"{short(g.gap)}"
                + "".join(f", {r.upper()} {short(g.rate_gap(r))}" for r in rates)
                + "):"
            ),
            Table(
                [g.column, "rows", g.metric, "95 % interval", *(r.upper() for r in rates)],
                [
                    [
                        k,
                        g.counts[k],
                        short(v),
                        interval_text(g.intervals.get(k)),
                        *(short(g.rates[r].get(k)) for r in rates),
                    ]
                    for k, v in g.groups.items()
                ],
            ),
        ]
    if not card.group_metrics:
        column = card.sections["sensitive_column"]
        if column.missing:
            how = "name the evaluation-data column in the card's Sensitive column section"
        elif card.evaluation is None:
            how = "build the documentation with the evaluation data (eval_data=(X, y))"
        else:
            how = f"the evaluation data has no column {sensitive_column(column.content)[0]!r}"
        out.append(ToWrite(f"the accuracy for the groups of persons it is used on: {how}"))
    out += [
        Heading("Foreseeable unintended outcomes and sources of risks"),
        *_human(card, "ethical_considerations", "Risks and their mitigations"),
        Heading("Human oversight measures"),
        ToWrite(
            "the human oversight measures (Article 14), including the technical measures that "
            "help deployers interpret the outputs"
        ),
        Heading("Specifications on input data"),
    ]
    features = [d for d in card.training_data if d.schema and d.shape and len(d.shape) == 2]
    for d in features:
        out += [
            Text(f"The columns of the training data {d.variable} ({d.hash}):"),
            Table(["column", "dtype"], [[c.get("name"), c.get("dtype")] for c in d.schema]),
        ]
    if not features:
        out.append(ToWrite("the specifications of the input data (the store holds no schema)"))
    return out


def _metrics_fit(card: ModelCard) -> list[Block]:
    run = card.run
    e = card.evaluation
    out: list[Block] = []
    if run.metrics:
        out.append(Text(f"Metrics the run logged: {', '.join(sorted(run.metrics))} (point 2(g))."))
    if e is not None:
        out.append(
            Text(
                f"Recomputed with 95 % intervals on {e.n:,} evaluation rows: "
                f"{', '.join(e.metrics)} (point 2(g))."
            )
        )
    requests = (card.governance or {}).get("requests", [])
    gates = [
        g
        for r in requests[-1:]
        for g in r["gates"]
        if g["gate"].startswith(("metric", "no_regression"))
    ]
    if gates:
        out += [
            Text("Thresholds the policy held the newest request to:"),
            Table(
                ["gate", "result", "message"],
                [[g["gate"], "pass" if g["passed"] else "FAIL", g["message"]] for g in gates],
            ),
        ]
    out.append(
        ToWrite(
            "why these metrics, and their thresholds, are appropriate for the system's intended "
            "purpose"
        )
    )
    return out


def _risk(card: ModelCard) -> list[Block]:
    g = card.governance or {}
    requests = g.get("requests", [])
    gates = ", ".join(x["gate"] for r in requests[-1:] for x in r["gates"]) or "none"
    return [
        Facts(
            [
                ("Risk tier (registry)", g.get("risk_tier") or "—"),
                ("Gates at the newest promotion request", gates),
            ]
        ),
        Text("The risks and mitigations the card records are in point 3."),
        ToWrite(
            "the risk management system (Article 9): how known and foreseeable risks are "
            "identified, estimated, evaluated and treated through the lifecycle, and the "
            "residual risks accepted"
        ),
    ]


def _changes(card: ModelCard) -> list[Block]:
    g = card.governance or {}
    history = g.get("history", [])
    out: list[Block] = [
        Text(
            "Every registry action on this version, from the hash-chained audit log (each "
            "signature checked as it was read):"
        ),
        Table(
            ["#", "when", "who", "action", "signature"],
            [
                [
                    h["seq"],
                    _when(h["ts"]),
                    h["actor"],
                    h["action"],
                    "verified" if h["verified"] else "not verified",
                ]
                for h in history
            ],
        )
        if history
        else Text("The audit log holds no action on this version."),
    ]
    written = [s for s in card.sections.values() if not s.missing]
    if written:
        out += [
            Text("The card's written sections, at their latest revision:"),
            Table(
                ["section", "revision", "by", "when", "written on"],
                [
                    [
                        s.title,
                        s.revision,
                        s.author or "—",
                        _when(s.written_at),
                        f"run {s.written_on}" if s.written_on else "this version",
                    ]
                    for s in written
                ],
            ),
        ]
    out.append(ToWrite("what changed in this version compared with earlier ones, and why"))
    return out


def _standards(card: ModelCard) -> list[Block]:
    return [
        ToWrite(
            "the harmonised standards applied in full or in part (their references as published "
            "in the Official Journal of the European Union); where none is applied, the "
            "solutions adopted to meet the requirements of Chapter III, Section 2, and the other "
            "standards and technical specifications applied"
        )
    ]


def _declaration(card: ModelCard) -> list[Block]:
    return [ToWrite("a copy of the EU declaration of conformity (Article 47)")]


def _post_market(card: ModelCard) -> list[Block]:
    from .monitoring import BATCH_COLUMNS, batch_rows

    m = card.monitoring
    plan = ToWrite(
        "the post-market monitoring plan (Article 72): who reviews the recorded batches, how "
        "often, and what is done when a batch drifts or performance falls"
    )
    if m is None:
        return [Text("No monitoring is recorded for this version."), plan]
    t = m["thresholds"]
    out: list[Block] = [
        Text(
            "Production batches are recorded against this version (mj.monitor, %monitor or "
            "mlops-jupyter monitor) and decided by the policy's thresholds:"
        ),
        Facts(
            [
                ("A feature's shift counts when its test's p-value is below", t["p_value"]),
                ("It drifts from a PSI of", t["psi_drift"]),
                ("It warns from a PSI of", t["psi_warn"]),
                ("A batch drifts when this share of its features drift", t["drift_share"]),
                ("A batch warns when a feature's missing rate moves by", t["missing_rate"]),
            ]
        ),
    ]
    for a in m["answers"]:
        out.append(
            Text(
                f"Request #{a['request']} answers batch {a['batch_id']} of "
                f"{card.model_name}:{a['version']} ({a['decision']})."
            )
        )
    if not m["batches"]:
        return [*out, Text("No production batch has been recorded for this version."), plan]
    c = m["counts"]
    out += [
        Text(
            f"{m['batches']} batch{'es' * (m['batches'] != 1)} recorded: {c['ok']} ok, "
            f"{c['warn']} warn, {c['drift']} drift; the latest: {m['latest']['decision']}, "
            f"{_when(m['latest']['created_at'])}."
        ),
        Table(["when", *BATCH_COLUMNS], batch_rows(m, _when)),
        plan,
    ]
    return out


# ---------------------------------------------------------------------------- rendering
def _intro(doc: TechDoc) -> list[str]:
    return [
        f"Technical documentation of {doc.subject}, structured by the nine points of Annex IV "
        f"of {REGULATION}. Generated by mlops-jupyter from its store, "
        f"{_when(doc.generated_at)}: every value below is read from the store, and the "
        "human-written card sections appear where they belong.",
        f"{len(doc.missing)} items are marked “To be written by a person”: what the store "
        "cannot know. All of them are listed at the end. Card sections are written with "
        f"{EDIT_HINT}. This is a draft for the provider to complete; it is not a conformity "
        "assessment.",
    ]


def render_html(doc: TechDoc, embedded: bool = False) -> str:
    """One self-contained page: no scripts, no network, every stored string escaped."""
    from .html import document, esc

    contents = "".join(
        f"<li><a href='#annex-iv-{p.number}'>{esc(p.title)}</a></li>" for p in doc.points
    )
    parts = [
        f"<header><h1>Technical documentation: {esc(doc.subject)}</h1>"
        + "".join(f"<p class='sub'>{esc(p)}</p>" for p in _intro(doc))
        + f"</header><nav aria-label='Contents'><ol>{contents}</ol></nav>"
    ]
    for p in doc.points:
        body = "".join(_html_block(b) for b in p.blocks)
        parts.append(
            f"<section id='annex-iv-{p.number}'><h2>{p.number}. {esc(p.title)}</h2>{body}</section>"
        )
    missing = "".join(f"<li>Point {n}: {esc(what)}</li>" for n, what in doc.missing)
    parts.append(
        "<section id='to-write'><h2>What a person still has to write</h2>"
        f"<ol>{missing}</ol></section>"
    )
    return document(f"Technical documentation: {doc.subject}", "".join(parts), embedded)


def _cell(value: Any) -> Any:
    return "—" if value is None else value


def _html_block(b: Block) -> str:
    from .html import esc, human, table

    if isinstance(b, Heading):
        return f"<h{b.level}>{esc(b.text)}</h{b.level}>"
    if isinstance(b, Text):
        return f"<p>{esc(b.text)}</p>"
    if isinstance(b, Facts):
        rows = "".join(
            f"<tr><th scope='row'>{esc(k)}</th><td class='{_hash_class(v)}'>{esc(_cell(v))}</td>"
            "</tr>"
            for k, v in b.rows
        )
        return f"<table><tbody>{rows}</tbody></table>"
    if isinstance(b, Table):
        shown = table(b.header, [[_cell(c) for c in row] for row in b.rows])
        if b.folded:
            return f"<details><summary>{esc(b.folded)}</summary>{shown}</details>"
        return shown
    if isinstance(b, Code):
        return f"<pre>{esc(b.text)}</pre>"
    if isinstance(b, Written):
        return f"<div class='keep'><h4>{esc(b.label)}</h4>{human(b.section)}</div>"
    return f"<div class='gap' role='note'><b>To be written by a person:</b> {esc(b.what)}</div>"


def _hash_class(value: Any) -> str:
    """Long unbroken values (hashes, keys) may break anywhere."""
    text = str(value)
    return "hash" if len(text) > 40 and " " not in text else ""


def render_markdown(doc: TechDoc) -> str:
    """The same document in Markdown: no raw HTML, stored strings escaped."""
    from .markdown import _md

    parts = [
        f"# Technical documentation: {_md(doc.subject)}\n",
        *(_md(p) + "\n" for p in _intro(doc)),
    ]
    for p in doc.points:
        parts.append(f"## {p.number}. {_md(p.title)}\n")
        parts += [_md_block(b) for b in p.blocks]
    parts.append("## What a person still has to write\n")
    parts.append(
        "".join(f"{i}. Point {n}: {_md(what)}\n" for i, (n, what) in enumerate(doc.missing, 1))
    )
    return "\n".join(parts)


def _md_block(b: Block) -> str:
    from .html import fmt
    from .markdown import _md, _table

    if isinstance(b, Heading):
        return f"{'#' * b.level} {_md(b.text)}\n"
    if isinstance(b, Text):
        return _md(b.text) + "\n"
    if isinstance(b, Facts):
        return _table(["field", "value"], [[k, fmt(_cell(v))] for k, v in b.rows])
    if isinstance(b, Table):
        shown = _table(b.header, [[fmt(_cell(c)) for c in row] for row in b.rows])
        return (f"**{_md(b.folded)}**\n\n" if b.folded else "") + shown
    if isinstance(b, Code):
        return "```python\n" + b.text.replace("```", "` ` `") + "\n```\n"
    if isinstance(b, Written):
        s = b.section
        where = f" on run {s.written_on[:8]}" if s.written_on else ""
        return (
            f"**{_md(b.label)}**\n\n{_md(str(s.content).strip())}\n\n"
            f"*Written by {_md(s.author or 'unknown')}{_md(where)}, {_md(_when(s.written_at))}, "
            f"revision {s.revision}.*\n"
        )
    return f"> **To be written by a person:** {_md(b.what)}\n"
