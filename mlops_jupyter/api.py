"""The Python API for scripts and for use inside a tracked cell.

Inside a ``%%track`` cell, ``log_metric`` & co. add to the cell's run. In a script::

    with mlops_jupyter.start_run(experiment="churn", name="baseline") as run:
        model.fit(X, y)
        run.log_params(model.get_params())
        run.log_metric("accuracy", model.score(X_test, y_test))
        run.log_data(X, role="train", name="X")
        run.log_model(model)
        run.explain(model, X_test)
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from .tracker import RunContext, Tracker, TrackOptions, UsageError

_lock = threading.Lock()
_default: Tracker | None = None


def default_tracker() -> Tracker:
    """The process-wide tracker (the kernel's, or a script's), created on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = Tracker()
        return _default


def active_run() -> RunContext:
    """The run of the executing ``%%track`` cell or ``start_run`` block."""
    run = default_tracker().current
    if run is None:
        raise UsageError(
            "no active run: call this inside a %%track cell or a `with start_run(...)` block"
        )
    return run


@contextmanager
def start_run(
    experiment: str = "default",
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    shap: bool = True,
    shap_rows: int = 200,
) -> Iterator[RunContext]:
    """Record a run from a script; an exception in the block marks it ``failed`` and propagates."""
    tracker = default_tracker()
    options = TrackOptions(
        experiment=experiment,
        name=name,
        params=dict(params or {}),
        tags=dict(tags or {}),
        shap=shap,
        shap_rows=shap_rows,
    )
    source = None
    script: str | None = getattr(sys.modules.get("__main__"), "__file__", None)
    if script:
        try:
            with open(script, encoding="utf-8") as handle:
                source = handle.read()
        except OSError:
            source = None
    ctx = tracker.begin(options, source=source, notebook_path=script)
    try:
        yield ctx
    except BaseException as exc:
        tracker.finish(ctx, error=exc)
        raise
    tracker.finish(ctx)


def log_param(key: str, value: Any) -> None:
    active_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    active_run().log_params(params)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Log a metric on the active run; without ``step``, each call appends the next step."""
    active_run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    active_run().log_metrics(metrics, step)


def log_data(obj: Any, role: str = "train", name: str | None = None) -> None:
    active_run().log_data(obj, role, name)


def log_model(model: Any) -> None:
    active_run().log_model(model)


def explain(model: Any, X: Any) -> None:
    active_run().explain(model, X)


def wait(timeout: float | None = None) -> bool:
    """Block until pending SHAP explanations are stored (False if ``timeout`` ran out)."""
    return default_tracker().wait(timeout)


def model_card(ref: str, *, eval_data: tuple[Any, Any] | None = None, store: Any = None) -> Any:
    """The model card of a run (id or unique prefix) or a registered ``"model:version"``.

    ``eval_data=(X, y)`` -- the run's own evaluation data, checked by hash -- adds per-group
    metrics on the card's sensitive column. Render with ``card.to_html()``, ``to_json()``,
    ``to_markdown()`` or ``card.save(path)``.
    """
    from .cards.model import build_card

    if store is None:
        tracker = default_tracker()
        tracker.wait(timeout=60)  # an explanation still being computed belongs on the card
        store = tracker.store
    return build_card(ref, store=store, eval_data=eval_data)


def techdoc(ref: str, *, eval_data: tuple[Any, Any] | None = None, store: Any = None) -> Any:
    """The EU AI Act technical documentation (Annex IV) of a registered ``"model:version"``.

    Filled from the store like :func:`model_card` (``eval_data`` adds intervals and per-group
    results); ``doc.missing`` lists what a person still has to write. Render with
    ``doc.to_html()``, ``to_markdown()`` or ``doc.save(path)``.
    """
    from .cards.model import build_card
    from .cards.techdoc import build_techdoc, check_versioned

    check_versioned(ref)
    if store is None:
        tracker = default_tracker()
        tracker.wait(timeout=60)  # an explanation still being computed belongs in it
        store = tracker.store
    return build_techdoc(build_card(ref, store=store, eval_data=eval_data))


def last_run_id() -> str:
    """The id of the run this process finished last (the previous tracked cell's)."""
    run_id = default_tracker().last_run_id
    if run_id is None:
        raise UsageError("no run finished in this process yet")
    return run_id


def set_card_sections(ref: str, sections: Mapping[str, str], author: str | None = None) -> None:
    """Write human sections of a card (a new revision each; see ``HUMAN_SECTIONS``).

    With a usable key the audit entries are signed by your principal; otherwise ``author``
    (default: the configured user) is recorded as a label.
    """
    from .cards.model import HUMAN_SECTIONS, resolve_subject
    from .errors import IdentityError
    from .identity import sshsig

    unknown = sorted(set(sections) - set(HUMAN_SECTIONS))
    if unknown:
        raise UsageError(f"unknown card section(s) {unknown}; known: {list(HUMAN_SECTIONS)}")
    tracker = default_tracker()
    subject, _, _ = resolve_subject(tracker.store, ref)
    writer = sign_with()
    try:
        name, signer = writer.principal, writer.signer
        sign: Any = lambda data: sshsig.sign(signer, data)  # noqa: E731
    except IdentityError:
        name, sign = author or tracker.user, None
    for key, text in sections.items():
        tracker.store.set_card_section(subject, key, str(text).strip(), name, sign)
    writer.anchor()  # the edits are evidence: a removed tail of them is detected too


# ----------------------------------------------------------------------------- registry
_key: str | None = None


def use_key(path: str | os.PathLike[str] | None) -> None:
    """Sign this process's registry actions with the private key at ``path`` (None: back to
    the configured key, ``~/.ssh/id_ed25519`` or ssh-agent)."""
    global _key
    _key = None if path is None else os.fspath(path)


def sign_with(key: str | os.PathLike[str] | None = None, label: str | None = None) -> Any:
    """The registry of this process's store, signing with ``key`` (default: see
    :func:`use_key`); ``label`` is recorded beside your principal, never instead of it."""
    from .identity.keys import load_signer
    from .registry.registry import Registry

    chosen = key if key is not None else _key
    signer = load_signer(chosen) if chosen is not None else None
    return Registry(default_tracker().store, signer, label=label)


def as_user(label: str | None = None) -> Any:
    """The registry acting with your key; ``label`` is only a label.

    Identity comes from the signing key and the project's allowed-signers file, so
    ``as_user("someone-else")`` still acts as you. To sign as another person, use their key:
    ``sign_with(key=PATH)``.
    """
    return sign_with(label=label)


def register(run_id: str, model_name: str, risk_tier: str | None = None) -> Any:
    """Register a run's model as the next version of ``model_name`` (a signed statement)."""
    return sign_with().register(run_id, model_name, risk_tier)


def request_promotion(
    model_name: str,
    version: int,
    to_stage: str,
    comment: str = "",
    answers: Sequence[str] = (),
) -> Any:
    """Run the policy gates; the request waits for sign-offs (or is blocked, with reasons).
    ``answers``: monitored batches (their ids) that drifted, which this version answers."""
    default_tracker().wait(timeout=120)  # a SHAP explanation still computing is not missing
    return sign_with().request_promotion(model_name, version, to_stage, comment, answers)


def approve(request_id: int, comment: str = "") -> Any:
    return sign_with().approve(request_id, comment)


def reject(request_id: int, comment: str) -> Any:
    return sign_with().reject(request_id, comment)


def current(model_name: str, stage: str = "production") -> Any:
    return sign_with().current(model_name, stage)


def history(model_name: str) -> list[dict[str, Any]]:
    return sign_with().history(model_name)


def models() -> list[dict[str, Any]]:
    return sign_with().models()


def load_model(model_name: str, stage: str = "production", version: int | None = None) -> Any:
    """A registered model, unpickled only after its blob matched the signed register hash."""
    return sign_with().load_model(model_name, stage, version)


def monitor(
    model: str,
    data: Any = None,
    predictions: Any = None,
    y_true: Any = None,
    stage: str = "production",
    *,
    batch_id: str | None = None,
    keep_sample: int = 0,
) -> Any:
    """Record a production batch against the version serving it (``model``: its name, for the
    version in ``stage``, or ``"name:version"``): hash, profile and per-feature drift against
    that version's training data profile, by the policy's ``[monitoring]`` thresholds. Returns
    the :class:`~mlops_jupyter.monitoring.BatchReport` (``.decision``: ok, warn or drift).

    Labels that arrive later: ``monitor(model, y_true=y, predictions=p, batch_id=ID)`` adds
    the performance to the recorded batch ``ID``. ``keep_sample=N`` keeps N of its rows."""
    from .monitoring import record_batch

    registry = sign_with(label=default_tracker().user)
    return record_batch(
        registry,
        model,
        data,
        predictions=predictions,
        y_true=y_true,
        stage=stage,
        batch_id=batch_id,
        keep_sample=keep_sample,
    )


def enroll(principal: str, key: str | os.PathLike[str] | None = None) -> Any:
    """Let ``principal`` sign registry actions: use (or create) the key at ``key`` (default
    ``~/.ssh/id_ed25519``) and add it to the project's allowed signers, like
    ``mlops-jupyter keys init``."""
    from .registry.registry import enroll as enroll_key

    return enroll_key(
        sign_with().allowed_signers_path, principal, None if key is None else os.fspath(key)
    )
