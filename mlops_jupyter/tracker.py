"""Run lifecycle: open a run, gather what the cell (or script) did, commit it in one write.

Plain Python: the IPython adapter (``magics.py``) and the script API (``start_run``) both
drive a :class:`Tracker`. Every capture step is guarded: a failure is recorded on the run
(``capture_errors``) and never raised into the user's code.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .capture.cell_source import CellSource, is_metric_name
from .capture.estimators import class_name, estimator_params, is_estimator, is_predictor, is_search
from .capture.instrument import CURVE_FUNCTIONS, CallRecord, CallSite
from .capture.metric_values import metric_base_name, metrics_from, scalar
from .curve_buffer import CurveBuffer
from .errors import MLOpsError, StoreError
from .summary import RunSummary

if TYPE_CHECKING:
    from .store import Store
    from .store.cell_history import CellHistory
    from .store.curves import Points
    from .store.records import DatasetLink

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DATA_KEYWORDS = frozenset({"X", "y", "x", "Y", "y_true", "y_pred", "y_score", "y_prob", "X_test"})


class UsageError(ValueError):
    """Bad ``%%track`` options or API use (the message says what to change)."""


@dataclass
class TrackOptions:
    """The options of ``%%track`` (and of ``start_run``)."""

    experiment: str | None = None
    name: str | None = None
    data: list[str] = field(default_factory=list)
    model: str | None = None
    metrics: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    shap: bool = True
    shap_rows: int = 200
    quiet: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(f"%%track: {message}")


@functools.cache
def _parser() -> _Parser:
    p = _Parser(prog="%%track", add_help=False)
    p.add_argument("-e", "--experiment")
    p.add_argument("-n", "--name")
    p.add_argument("--data", action="append", default=[])
    p.add_argument("--model")
    p.add_argument("--metric", action="append", default=[])
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--no-shap", action="store_true")
    p.add_argument("--shap-rows", type=int, default=200)
    p.add_argument("--quiet", action="store_true")
    return p


def _pairs(items: list[str], option: str, parse_values: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"%%track: {option} takes KEY=VALUE, got {item!r}")
        if parse_values:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def parse_options(line: str) -> TrackOptions:
    """Parse the ``%%track`` line (everything after the magic's name)."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%track: {exc}") from None
    args = _parser().parse_args(argv)
    if args.shap_rows < 1:
        raise UsageError("%%track: --shap-rows must be at least 1")

    def names(values: list[str]) -> list[str]:
        return [n.strip() for v in values for n in v.split(",") if n.strip()]

    return TrackOptions(
        experiment=args.experiment,
        name=args.name,
        data=names(args.data),
        model=args.model,
        metrics=names(args.metric),
        params=_pairs(args.param, "--param", True),
        tags=_pairs(args.tag, "--tag", False),
        shap=not args.no_shap,
        shap_rows=args.shap_rows,
        quiet=args.quiet,
    )


@dataclass
class RunContext:
    """An open run: what the API logged so far, and what went wrong while capturing."""

    run_id: str
    experiment: str
    options: TrackOptions
    started_at: float
    params: dict[str, Any] = field(default_factory=dict)
    logged: dict[str, Any] = field(default_factory=dict)  # metric -> its last logged value
    curves: CurveBuffer = field(default_factory=CurveBuffer)  # logged points, written in batches
    data: list[tuple[Any, str, str]] = field(default_factory=list)  # (object, role, variable)
    model: Any = None
    explain_on: Any = None
    capture_errors: list[dict[str, str]] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)  # curves the cell computed
    site_names: dict[int, str] = field(default_factory=dict)  # call site -> its curve's name
    model_data: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(model) -> its X
    _steps: dict[str, int] = field(default_factory=dict)

    def log_param(self, key: str, value: Any) -> None:
        self.params[str(key)] = value

    def log_params(self, params: Mapping[str, Any]) -> None:
        for key, value in params.items():
            self.log_param(key, value)

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Log a metric; without ``step`` each call appends the next step (0, 1, 2...)."""
        key = str(key)
        if step is None:
            step = self._steps.get(key, -1) + 1
        self.curves.add(key, int(step), value)  # TypeError for a value that is not a number
        self._steps[key] = max(step, self._steps.get(key, -1))
        self.logged[key] = value

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_data(self, obj: Any, role: str = "train", name: str | None = None) -> None:
        self.data.append((obj, role, name or f"{role}_data"))

    def log_model(self, model: Any) -> None:
        self.model = model

    def explain(self, model: Any, X: Any) -> None:
        """Ask for a SHAP explanation of ``model`` on ``X`` when the run finishes."""
        self.model = model
        self.explain_on = X


@contextmanager
def _step(ctx: RunContext, name: str) -> Iterator[None]:
    """Run one capture step; a failure is recorded on the run, never raised, except the
    store's own failures (a full disk...), which mean the run cannot be saved at all."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        ctx.capture_errors.append({"step": name, "error": f"{type(exc).__name__}: {exc}"})


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Tracker:
    """Opens runs in one store and commits what they captured; explains models in a thread."""

    def __init__(
        self,
        store_path: str | Path | None = None,
        *,
        start_dir: str | Path | None = None,
        user: str | None = None,
    ) -> None:
        self._store_path = store_path
        self._start_dir = start_dir
        self._user = user
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._explainer_process: Any = None
        self._pending: list[Future[None]] = []
        self.on_explained: Any = None  # callback(run_id, ExplanationResult)
        self.current: RunContext | None = None
        self.last_run_id: str | None = None
        self._unsaved: dict[str, str] = {}  # run id -> why its results were not stored

    # ------------------------------------------------------------------ store
    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                from .config import settings
                from .store import Store

                config = settings()
                explicit = self._store_path or config.store_path
                self._store = Store.open(
                    explicit, start=self._start_dir, busy_timeout=config.busy_timeout
                )
            return self._store

    def close(self) -> None:
        self.wait()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._explainer_process is not None:
                self._explainer_process.close()
                self._explainer_process = None

    @property
    def user(self) -> str:
        if self._user is None:
            from .config import current_user

            self._user = current_user()
        return self._user

    # -------------------------------------------------------------- lifecycle
    def begin(
        self,
        options: TrackOptions,
        *,
        default_experiment: str = "default",
        source: str | None = None,
        execution_count: int | None = None,
        notebook_path: str | None = None,
        kernel_id: str | None = None,
    ) -> RunContext:
        """Insert the run as ``running`` and make it the current run."""
        experiment = options.experiment or default_experiment
        started = time.time()
        run_id = self.store.create_run(
            experiment,
            name=options.name,
            started_at=started,
            source=source,
            execution_count=execution_count,
            notebook_path=notebook_path,
            kernel_id=kernel_id,
            user=self.user,
            tags=options.tags or None,
        )
        store = self.store
        ctx = RunContext(
            run_id, experiment, options, started,
            curves=CurveBuffer(lambda points: store.append_metric_points(run_id, points)),
        )  # fmt: skip
        ctx.params.update(options.params)
        self.current = ctx
        self._settle_unsaved()
        return ctx

    def _settle_unsaved(self) -> None:
        """Runs whose results an earlier write could not store are marked failed, now that
        the store takes writes again (they would otherwise read `running` until we exit)."""
        for run_id, reason in list(self._unsaved.items()):
            try:
                self.store.mark_unsaved(run_id, reason)
            except Exception:  # still failing: try again at the next run
                return
            del self._unsaved[run_id]

    def finish(
        self,
        ctx: RunContext,
        *,
        error: BaseException | None = None,
        namespace: Mapping[str, Any] | None = None,
        sites: list[CallSite] | None = None,
        records: Mapping[int, CallRecord] | None = None,
        facts: CellSource | None = None,
        history: CellHistory | None = None,
        workdir: str | None = None,
    ) -> RunSummary:
        """Capture, commit in one transaction, schedule SHAP; return the run's summary."""
        ended = time.time()  # the cell's end; capture time is not the run's duration
        unwritten = ctx.curves.close()  # the rest of the logged points go with the run
        if ctx.curves.last_error is not None:
            ctx.capture_errors.append({
                "step": "metrics",
                "error": f"logged points kept for the run's final write: {ctx.curves.last_error}",
            })  # fmt: skip
        if self.current is ctx:
            self.current = None
        self.last_run_id = ctx.run_id
        namespace = namespace or {}
        sites = sites or []
        records = records or {}
        facts = facts or CellSource()
        status = "finished"
        error_text = None
        if error is not None:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            error_text = "".join(traceback.format_exception(error)).rstrip()

        fitted: dict[str, Any] = {}
        with _step(ctx, "estimators"):
            fitted = _fitted_estimators(sites, records)
        params: dict[str, Any] = {}
        sources: dict[str, str] = {}
        with _step(ctx, "params"):
            params, sources = _params(ctx, fitted, facts, namespace)
        metrics: list[tuple[str, Any, int]] = []
        with _step(ctx, "metrics"):
            metrics = _metrics(ctx, fitted, sites, records, facts, namespace)
        links: list[DatasetLink] = []
        explain_data: tuple[Any, Any] = (None, None)
        with _step(ctx, "data"):
            links, explain_data = self._datasets(ctx, sites, records, facts, namespace, workdir)
        model = None
        with _step(ctx, "model"):
            model = _choose_model(ctx, fitted, namespace, facts)
        env: dict[str, Any] | None = None
        git = None
        with _step(ctx, "environment"):
            from .capture.environment import environment, git_state

            env = environment()
            git = git_state(workdir)

        model_blob: tuple[str, bytes] | None = None
        if model is not None:
            with _step(ctx, "model"):
                model_blob = self._store_model_blob(model)  # before the commit: a file write
        explain_input: tuple[Any, Any, Any, Any] | None = None
        shap_state = "off"
        if model_blob is not None and ctx.options.shap and status == "finished":
            explain_input = _explanation_input(ctx, model, explain_data, sites, records)
            shap_state = "no data" if explain_input[0] is None else "pending"
        children = 0
        # The run's final status and everything it records commit together: a kernel killed
        # at any point leaves either all of it or a run still `running` (then interrupted).
        try:
            children = self._commit(
                ctx, status, ended, fitted, sites, records, model, model_blob, shap_state,
                params, sources, metrics, links, env, git, history, error_text, unwritten,
            )  # fmt: skip
        except MLOpsError as exc:
            self._unsaved[ctx.run_id] = str(exc)
            raise
        if shap_state == "pending" and explain_input is not None and model_blob is not None:
            try:
                self._schedule_explanation(ctx, model_blob[1], *explain_input)
            except Exception as exc:  # recorded on the explanation, never raised into the cell
                shap_state = "failed"
                reason = _short(f"{type(exc).__name__}: {exc}")
                ctx.capture_errors.append({"step": "explanation", "error": reason})
                self.store.record_explanation(ctx.run_id, status="failed", reason=reason)
        return RunSummary(
            run_id=ctx.run_id,
            experiment=ctx.experiment,
            name=ctx.options.name,
            status=status,
            duration_s=ended - ctx.started_at,
            metrics={
                **{k: v for k, v, _ in metrics},
                **ctx.logged,
                **{k: v[-1] for k, v in ctx.series.items()},
            },
            n_params=len(params),
            datasets=[(link.role, link.variable, link.hash) for link in links],
            model=class_name(model) if model is not None else None,
            capture_errors=list(ctx.capture_errors),
            shap=shap_state,
            children=children,
        )

    def _commit(
        self,
        ctx: RunContext,
        status: str,
        ended: float,
        fitted: Mapping[str, Any],
        sites: list[CallSite],
        records: Mapping[int, CallRecord],
        model: Any,
        model_blob: tuple[str, bytes] | None,
        shap_state: str,
        params: Mapping[str, Any],
        sources: Mapping[str, str],
        metrics: list[tuple[str, Any, int]],
        links: list[DatasetLink],
        env: Mapping[str, Any] | None,
        git: Any,
        history: CellHistory | None,
        error_text: str | None,
        points: Mapping[str, Points],
    ) -> int:
        """Write the run, its children, model and pending explanation in one transaction."""
        children = 0
        with self.store.transaction():
            with _step(ctx, "search candidates"):
                children = self._record_candidates(ctx, fitted, ended)
            with _step(ctx, "fits in a loop"):
                children += self._record_fits(ctx, sites, records, ended)
            with _step(ctx, "several models"):
                children += self._record_models(ctx, sites, records, ended, model)
            if model_blob is not None:
                with _step(ctx, "model"):
                    self._attach_model(ctx, model, *model_blob)
            if shap_state == "pending":
                self.store.record_explanation(ctx.run_id, status="pending")
            self.store.finish_run(
                ctx.run_id,
                status=status,
                ended_at=ended,
                params=params,
                param_sources=sources,
                metrics=metrics,
                datasets=links,
                environment=env,
                git_commit=git.commit if git else None,
                git_dirty=git.dirty if git else None,
                history=history,
                error=error_text,
                capture_errors=ctx.capture_errors or None,
                series=ctx.series,
                points=points,
            )
        return children

    # ---------------------------------------------------------------- helpers
    def _record_candidates(self, ctx: RunContext, fitted: Mapping[str, Any], ended: float) -> int:
        """Each candidate of each fitted search becomes a run of its own, tagged with this run
        as its parent, so every candidate compares like a run (in one transaction)."""
        from .capture.estimators import search_candidates

        searches = {var: est for var, est in fitted.items() if is_search(est)}
        count = 0
        if not searches:
            return 0
        with self.store.transaction():
            for var, search in searches.items():
                for index, (params, metrics) in enumerate(search_candidates(search)):
                    self.store.record_run(
                        ctx.experiment,
                        name=f"{ctx.options.name or var} candidate {index}",
                        params=params,
                        metrics=metrics,
                        started_at=ctx.started_at,
                        ended_at=ended,
                        tags={"parent_run": ctx.run_id, "search": var, "candidate": str(index)},
                        notebook_path=None,
                    )
                    count += 1
        return count

    def _record_fits(
        self,
        ctx: RunContext,
        sites: list[CallSite],
        records: Mapping[int, CallRecord],
        ended: float,
    ) -> int:
        """A fit called several times (folds, seeds, a sweep in a loop): each fit becomes a
        run tagged with this run as its parent, with the data it was fitted and evaluated on
        and the metrics the loop computed once per fit; this run says how its model and
        metrics were chosen."""
        from .capture.estimators import estimator_params
        from .capture.instrument import CALLS_KEPT

        loops = [
            (site, records[site.site])
            for site in sites
            if site.kind == "fit"
            and site.method != "partial_fit"  # one model trained step by step, not many fits
            and site.site in records
            and 1 < records[site.site].calls <= CALLS_KEPT
        ]
        count = 0
        notes: dict[str, str] = {}
        if not loops:
            return 0
        with self.store.transaction():
            for site, record in loops:
                calls = record.each_call()
                n = len(calls)
                per_fit = {
                    ctx.site_names[other.site]: points
                    for other in sites
                    if other.site in ctx.site_names
                    and (points := _scalars(records[other.site].results)) is not None
                    and len(points) == n
                }
                evals = [
                    (other, records[other.site].each_call())
                    for other in sites
                    if other.kind == "eval" and other.site in records
                    and records[other.site].calls == n
                ]  # fmt: skip
                who = _model_name(site, record.receiver)
                for index, (receiver, args) in enumerate(calls):
                    links = self._call_links(
                        [("train", site, args)]
                        + [("eval", other, calls_[index][1]) for other, calls_ in evals]
                    )
                    self.store.record_run(
                        ctx.experiment,
                        name=f"{ctx.options.name or who} fit {index}",
                        params=estimator_params(receiver) if is_estimator(receiver) else None,
                        metrics={key: points[index] for key, points in per_fit.items()},
                        datasets=links,
                        started_at=ctx.started_at,
                        ended_at=ended,
                        tags={"parent_run": ctx.run_id, "fit": str(index), "of": who},
                    )
                    count += 1
                notes["model_choice"] = (
                    f"the last of {n} fits of {who} in a loop; each fit is a run tagged "
                    f"parent_run={ctx.run_id[:8]}"
                )
                if per_fit:
                    notes["metric_choice"] = (
                        f"{', '.join(per_fit)}: computed once per fit, a curve over the fits; "
                        "the metric is the last fit's value"
                    )
            if notes:
                self.store.add_tags(ctx.run_id, notes)
        return count

    def _record_models(
        self,
        ctx: RunContext,
        sites: list[CallSite],
        records: Mapping[int, CallRecord],
        ended: float,
        chosen: Any,
    ) -> int:
        """Several models fitted once each (``m1.fit(A)``, ``m2.fit(B)``): each becomes a run
        tagged with this run as its parent, with its own parameters, the data it was fitted
        and evaluated on, and its ``.score`` results, so their data is not merged."""
        from .capture.estimators import estimator_params

        fits: dict[int, tuple[CallSite, CallRecord]] = {}
        for site in sites:
            record = records.get(site.site)
            if site.kind != "fit" or site.method == "partial_fit" or record is None:
                continue
            if record.calls == 1 and is_predictor(record.receiver):
                fits.setdefault(id(record.receiver), (site, record))
        if len(fits) < 2:
            return 0
        names = []
        with self.store.transaction():
            for index, (site, record) in enumerate(fits.values()):
                model = record.receiver
                who = _model_name(site, model)
                names.append(who)
                metrics = {}
                calls = [("train", site, record.args)] + [
                    ("eval", other, records[other.site].args)
                    for other in sites
                    if other.kind == "eval"
                    and other.site in records
                    and records[other.site].receiver is model
                ]
                for _, where, _ in calls:
                    if where.method == "score" and records[where.site].has_result:
                        value = scalar(records[where.site].result)
                        if value is not None:
                            metrics["score"] = value
                metrics.update(_metrics_on_predictions(model, sites, records))
                links = self._call_links(calls)
                self.store.record_run(
                    ctx.experiment,
                    name=f"{ctx.options.name or 'cell'} model {who}",
                    params=estimator_params(model),
                    metrics=metrics,
                    datasets=links,
                    started_at=ctx.started_at,
                    ended_at=ended,
                    tags={"parent_run": ctx.run_id, "model": who, "fit": str(index)},
                )
            models = [record.receiver for _, record in fits.values()]
            kept = names[models.index(chosen)] if any(m is chosen for m in models) else None
            self.store.add_tags(
                ctx.run_id,
                {
                    "model_choice": f"{kept or 'none of them'}, of {len(names)} models fitted "
                    f"({', '.join(names)}); each is a run tagged parent_run={ctx.run_id[:8]}"
                },
            )
        return len(names)

    def _call_links(
        self, calls: Sequence[tuple[str, CallSite, Mapping[int | str, Any]]]
    ) -> list[DatasetLink]:
        """Data snapshots of the data arguments of some calls: ``(role, site, arguments)``,
        each object once."""
        from .capture.hashing import hash_data

        links, seen = [], set()
        for role, where, args in calls:
            for key, value in args.items():
                if isinstance(key, str) and key not in DATA_KEYWORDS:
                    continue
                if not _data_like(value) or id(value) in seen:
                    continue
                seen.add(id(value))
                variable = where.arg_names.get(key, str(key))
                links.append(self._link(hash_data(_hashable(value)), value, role, variable))
        return links

    def _datasets(
        self,
        ctx: RunContext,
        sites: list[CallSite],
        records: Mapping[int, CallRecord],
        facts: CellSource,
        namespace: Mapping[str, Any],
        workdir: str | None,
    ) -> tuple[list[DatasetLink], tuple[Any, Any]]:
        """Hash every object fitted on, predicted on or scored with; profile new snapshots."""
        found: list[tuple[Any, str, str]] = []
        train_X = eval_X = None
        for site in sites:
            record = records.get(site.site)
            if record is None or not record.calls:
                continue
            if site.kind == "value" or (site.kind == "metric" and site.in_loop):
                continue  # e.g. a curve computed step by step: not a data snapshot
            cross_validation = site.method.startswith("cross_") or site.method in CURVE_FUNCTIONS
            role = "train" if site.kind == "fit" or cross_validation else "eval"
            if site.kind == "fit" and "eval_set" in record.args:  # xgboost, lightgbm
                found.extend(_eval_set(record.args["eval_set"], site.arg_names.get("eval_set")))
            for name in ("eval_X", "eval_y") if site.kind == "fit" else ():  # lightgbm >= 4.7
                if name in record.args:
                    given, source = record.args[name], site.arg_names.get(name)
                    parts = given if isinstance(given, list | tuple) else [given]
                    names = _element_names(source, len(parts)) if parts is given else [source]
                    found.extend(
                        (part, "eval", names[i] or f"{name}[{i}]")
                        for i, part in enumerate(parts)
                        if _data_like(part)
                    )
            for key, value in record.args.items():
                if isinstance(key, str) and key not in DATA_KEYWORDS:
                    continue
                if not _data_like(value):
                    continue
                found.append((value, role, site.arg_names.get(key, str(key))))
                if key in (0, "X"):
                    own = ctx.model_data.setdefault(id(record.receiver), {})
                    if site.kind == "fit":
                        train_X = value if train_X is None else train_X
                        own.setdefault("train", value)
                    elif site.method in ("predict", "predict_proba", "score"):
                        eval_X = value if eval_X is None else eval_X
                        own.setdefault("eval", value)
        if "torch" in sys.modules:  # tensors a training loop set up
            from .capture.deep import tensor_data

            found.extend(tensor_data(facts.top_level, namespace))
        for variable in ctx.options.data:
            if variable not in namespace:
                ctx.capture_errors.append(
                    {"step": "data", "error": f"--data {variable}: no such variable"}
                )
                continue
            found.append((namespace[variable], "data", variable))
        found.extend(ctx.data)

        from .store.records import DatasetLink

        links: list[DatasetLink] = []
        seen: set[tuple[int, str]] = set()
        seen_links: set[tuple[str, str, str]] = set()
        for obj, role, variable in found:
            if (id(obj), role) in seen:
                continue
            seen.add((id(obj), role))
            with _step(ctx, "data"):
                try:
                    digest = _hash_data(_hashable(obj))
                except TypeError as exc:
                    raise TypeError(
                        f"{variable} ({type(obj).__name__}) not hashed: {exc}"
                    ) from None
                link_key = (digest, role, variable)
                if link_key in seen_links:
                    continue
                seen_links.add(link_key)
                links.append(self._link(digest, obj, role, variable))
        base = Path(workdir or ".")
        # (data variable, variable the file was read into, path as shown, file)
        reads = [(var, var, path, base / path) for var, path in facts.reads.items()]
        for var, sources in facts.earlier_reads.items():  # read by an earlier cell
            reads += [(var, read, os.path.relpath(f, base), Path(f)) for read, f in sources]
        hashed: dict[Path, str] = {}
        for variable, read_into, path, file in reads:
            with _step(ctx, "data source"):
                if file not in hashed:
                    hashed[file] = _hash_data(file)
                    links.append(
                        DatasetLink(hashed[file], "source", read_into, "file", source_path=path)
                    )
                for index, link in enumerate(links):
                    if link.role != "source" and variable in _IDENTIFIER.findall(link.variable):
                        links[index] = replace(link, source_path=path, source_hash=hashed[file])
        return links, (eval_X if eval_X is not None else train_X, train_X)

    def _link(self, digest: str, obj: Any, role: str, variable: str) -> DatasetLink:
        from .capture.profile import describe, kind_of
        from .store.records import DatasetLink

        shape = schema = profile = None
        if not self.store.has_dataset(digest):
            shape, schema, profile = describe(obj)
        rows_blob = None
        if role == "eval" and not self.store.has_dataset_rows(digest):
            from .store.rows import encode_rows

            encoded = encode_rows(obj, digest)  # None: not kept (too large, not writable)
            rows_blob = self.store.blobs.put_bytes(encoded) if encoded is not None else None
        return DatasetLink(
            digest, role, variable, kind_of(obj), shape, schema, profile, rows_blob=rows_blob
        )

    def _store_model_blob(self, model: Any) -> tuple[str, bytes]:
        """Pickle the model into a blob; return its digest and bytes (the explainer's copy)."""
        import pickle

        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        return self.store.blobs.put_bytes(data), data

    def _attach_model(self, ctx: RunContext, model: Any, digest: str, data: bytes) -> None:
        meta = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
        self.store.attach_artifact(
            ctx.run_id,
            "model",
            digest,
            len(data),
            kind="model",
            media_type="application/x-python-pickle",
            meta=meta,
        )

    def _schedule_explanation(
        self,
        ctx: RunContext,
        model_bytes: bytes,
        X: Any,
        background: Any,
        feature_names: list[str] | None = None,
        note: str | None = None,
    ) -> None:
        """Explain in the worker thread, on copies: the next cell may refit the model or
        change the data in place while SHAP runs, and must never notice it."""
        from .capture.explain import MAX_BACKGROUND, sample_rows

        rows = ctx.options.shap_rows
        sample = sample_rows(X, rows)
        back = sample_rows(background if background is not None else X, MAX_BACKGROUND)
        run_id = ctx.run_id
        names = list(feature_names) if feature_names else None

        def work() -> None:
            import pickle

            from .capture.explain import ExplanationResult, explain
            from .capture.quiet import kept_warnings

            answer, kept = self._explainer().explain(model_bytes, sample, back, rows, names)
            if answer is not None:
                result = answer
            else:  # its class lives only in this kernel: explain it here, in this thread
                with kept_warnings() as kept:  # never printed into whatever cell runs now
                    try:
                        # our own bytes, pickled a moment ago in this process: not untrusted
                        model = pickle.loads(model_bytes)
                        result = explain(model, sample, back, max_rows=rows, feature_names=names)
                    except Exception as exc:
                        result = ExplanationResult("failed", f"{type(exc).__name__}: {exc}")
            result.reason = _short(result.reason) if result.reason else None
            notes = [result.reason, note]
            if kept:
                notes.append("warnings while explaining: " + "; ".join(dict.fromkeys(kept)))
            result.reason = _short("; ".join(n for n in notes if n), 400) or None
            self.store.record_explanation(
                run_id,
                status=result.status,
                reason=result.reason,
                explainer=result.explainer,
                feature_names=result.feature_names,
                classes=result.classes,
                mean_abs=result.mean_abs,
                base_values=result.base_values,
                n_rows=result.n_rows,
                matrix=result.matrix,
            )
            callback = self.on_explained
            if callback is not None:
                callback(run_id, result)

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlops-jupyter-shap")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._pool.submit(work))

    def _explainer(self) -> Any:
        """The SHAP worker process, started on first use (see ``explainer_process``)."""
        with self._lock:
            if self._explainer_process is None:
                from .capture.explainer_process import ExplainerProcess

                self._explainer_process = ExplainerProcess()
            return self._explainer_process

    def wait(self, timeout: float | None = None) -> bool:
        """Block until pending explanations are stored; False if ``timeout`` ran out first."""
        with self._lock:
            pending = list(self._pending)
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.result(remaining)
            except TimeoutError:
                return False
            except Exception:  # recorded as a failed explanation already
                continue
        return True


def _data_like(value: Any) -> bool:
    if isinstance(value, str | bytes | bool | int | float) or value is None:
        return False
    module = type(value).__module__
    if module.startswith(("pandas", "numpy")) and hasattr(value, "shape"):
        return getattr(value, "ndim", 1) > 0
    if module.startswith("pyarrow") and hasattr(value, "type"):  # an Array or ChunkedArray
        return True
    return isinstance(value, list | tuple) and len(value) > 0 or hasattr(value, "shape")


def _hashable(obj: Any) -> Any:
    """Lists of plain numbers become arrays (``hash_data`` takes arrays, not lists of scalars);
    a string is a file only when it names one (``log_data(text)`` logs the text)."""
    if isinstance(obj, str) and not os.path.isfile(obj):
        return [obj]
    if type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach"):
        return obj.detach().cpu().numpy()  # a tensor: its values
    if isinstance(obj, list | tuple) and obj and all(scalar(v) is not None for v in obj):
        import numpy as np

        return np.asarray(obj)
    return obj


def _fitted_estimators(sites: list[CallSite], records: Mapping[int, CallRecord]) -> dict[str, Any]:
    """Estimators the cell called fit/fit_transform/fit_predict on, by variable name."""
    fitted: dict[str, Any] = {}
    ids: set[int] = set()
    for site in sites:
        record = records.get(site.site)
        if site.kind != "fit" or record is None or not record.calls:
            continue
        estimator = record.receiver
        if not is_estimator(estimator) or id(estimator) in ids:
            continue
        ids.add(id(estimator))
        name = site.assigned_to if site.receiver_name and "(" in site.receiver_name else None
        name = name or site.receiver_name or class_name(estimator)
        if not name.isidentifier():
            name = class_name(estimator)
        fitted[name] = estimator
    return fitted


def _params(
    ctx: RunContext,
    fitted: Mapping[str, Any],
    facts: CellSource,
    namespace: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    params: dict[str, Any] = {}
    sources: dict[str, str] = {}
    namespace = namespace or {}
    for name, value in facts.literals.items():
        if is_metric_name(name):
            continue
        if isinstance(value, list | dict) and namespace.get(name, value) != value:
            continue  # `val_losses = []` that the cell then fills: an accumulator, not a setting
        params[name] = value
        sources[name] = "cell"
    several = len(fitted) > 1
    for var, estimator in fitted.items():
        for key, value in estimator_params(estimator).items():
            full = f"{var}.{key}" if several else key
            params[full] = value
            sources[full] = "estimator"
    if "torch" in sys.modules:  # a training loop: its optimizer's and network's settings
        from .capture.deep import network_params

        for key, value in network_params(facts.top_level, namespace).items():
            params[key] = value
            sources[key] = "estimator"
    for key, value in ctx.params.items():
        params[key] = value
        sources[key] = "option" if key in ctx.options.params else "api"
    return params, sources


def _metrics(
    ctx: RunContext,
    fitted: Mapping[str, Any],
    sites: list[CallSite],
    records: Mapping[int, CallRecord],
    facts: CellSource,
    namespace: Mapping[str, Any],
) -> list[tuple[str, Any, int]]:
    found: dict[str, Any] = {}
    series: dict[str, list[float]] = {}  # curves: one value per step
    taken: set[str] = set()  # names whose values a call site already gave
    shared = Counter(_base_name(site) for site in sites)  # several sites, one base name
    for site in sites:
        record = records.get(site.site)
        if record is None or not record.has_result:
            continue  # wherever the value was computed: assigned, printed, in an expression
        if site.kind == "value":  # `val_loss = ...` in a loop
            points = _scalars(record.results)
            if points:
                series[site.method] = points
                taken.add(site.method)
                ctx.site_names[site.site] = site.method
            continue
        if site.kind == "metric":
            module = getattr(record.function, "__module__", "") or ""
            if not module.startswith("sklearn"):
                continue
            if site.method in CURVE_FUNCTIONS:
                series.update(_curve_function(site, record))
                continue
            base = metric_base_name(site.method)
        elif site.method == "score":
            if not is_estimator(record.receiver):
                continue
            base = "score"
        else:
            continue
        assigned = site.assigned_to
        if assigned:
            taken.add(assigned)
        if assigned and (is_metric_name(assigned) or isinstance(record.result, Mapping)):
            name = assigned  # acc = accuracy_score(...); report = classification_report(...)
        else:
            name = base
        if name == base and base and shared[base] > 1:  # accuracy_y_train, accuracy_y_test
            name = f"{base}_{site.arg_names.get(0, site.site)}"
            while name in found or name in series:
                name += "_"
        points = _scalars(record.results) if len(record.results) > 1 else None
        if points:
            series[name] = points  # computed step by step (a loop): a curve
            ctx.site_names[site.site] = name
        else:
            found.update(metrics_from(name, record.result))
    for name in facts.assigned:
        if name in taken or name in found or name in series or not is_metric_name(name):
            continue
        if name in namespace:
            value = namespace[name]
            curve = _scalars(value) if _is_sequence(value) else None
            if curve:  # test_score holding 500 staged errors: a curve, its last value shown
                series[name] = curve
            else:
                found.update(metrics_from(name, value))
    several = len(fitted) > 1
    for var, estimator in fitted.items():  # library-native evaluation (xgboost, lightgbm)
        prefix = f"{var}." if several else ""
        for key, points in _native_curves(estimator).items():
            series.setdefault(prefix + key, points)
        for key, value in _native_best(estimator).items():
            found.setdefault(prefix + key, value)
    for var, estimator in fitted.items():
        if is_search(estimator) and scalar(getattr(estimator, "best_score_", None)) is not None:
            found[f"{var}.best_score" if several else "best_score"] = float(estimator.best_score_)
    for name in ctx.options.metrics:
        if name not in namespace:
            ctx.capture_errors.append(
                {"step": "metrics", "error": f"--metric {name}: no such variable"}
            )
            continue
        values = metrics_from(name, namespace[name])
        if not values:
            ctx.capture_errors.append(
                {"step": "metrics", "error": f"--metric {name}: not a number or dict of numbers"}
            )
        found.update(values)
    logged = ctx.logged.keys()  # what the cell logged itself wins
    ctx.series.update({k: v for k, v in series.items() if len(v) > 1 and k not in logged})
    out = [(key, value, 0) for key, value in found.items() if key not in ctx.series]
    out += [(key, points[0], 0) for key, points in series.items() if key not in ctx.series]
    return [item for item in out if item[0] not in logged]  # logged points: ctx.curves


def _metrics_on_predictions(
    model: Any, sites: list[CallSite], records: Mapping[int, CallRecord]
) -> dict[str, float]:
    """Metric functions computed once on ``model``'s own predictions
    (``accuracy_score(y_b, m1.predict(X_b))``, or on ``p1 = m1.predict(X_b)``), by name."""
    predictions = {
        id(records[s.site].result)
        for s in sites
        if s.kind == "eval"
        and s.site in records
        and records[s.site].receiver is model
        and records[s.site].has_result
    }
    found: dict[str, float] = {}
    for site in sites:
        record = records.get(site.site)
        if site.kind != "metric" or record is None or not record.has_result or record.calls != 1:
            continue
        if not any(id(value) in predictions for value in record.args.values()):
            continue
        value = scalar(record.result)
        if value is None:
            continue
        assigned = site.assigned_to
        name = assigned if assigned and is_metric_name(assigned) else metric_base_name(site.method)
        if name:
            found[name] = value
    return found


def _base_name(site: CallSite) -> str:
    """The metric name a metric or ``.score`` site gets unless it is assigned to one."""
    if site.kind == "metric":
        return metric_base_name(site.method)
    return "score" if site.method == "score" else ""


def _model_name(site: CallSite, model: Any) -> str:
    """``m`` for ``m.fit(...)`` and for ``m = Model(...).fit(...)``, else the class name."""
    who = site.receiver_name or class_name(model)
    return site.assigned_to or class_name(model) if "(" in who else who


def _explanation_input(
    ctx: RunContext,
    model: Any,
    fallback: tuple[Any, Any],
    sites: list[CallSite],
    records: Mapping[int, CallRecord],
) -> tuple[Any, Any, list[str] | None, str | None]:
    """What SHAP explains: the rows the chosen model itself was evaluated on (else trained
    on, said in a note), its training rows as background, and the names of the features it
    saw when they came out of a fitted transformer (``vectorizer.fit_transform(texts)``)."""
    if ctx.explain_on is not None:
        return ctx.explain_on, fallback[1], None, None
    seen = ctx.model_data.get(id(model), {})
    train = seen.get("train", fallback[1])
    X, note = seen.get("eval"), None
    if X is None:
        X = train if seen else fallback[0]
        if X is not None and X is train:
            note = "explained on training rows: the cell evaluated the model on no data"
    names = None
    for site in sites:  # the transformer whose output the model was fitted on
        record = records.get(site.site)
        if site.method != "fit_transform" or record is None or record.result is not train:
            continue
        get_names = getattr(record.receiver, "get_feature_names_out", None)
        try:
            names = [str(n) for n in get_names()] if callable(get_names) else None
        except Exception:  # not fitted the usual way, or names not defined for it
            names = None
    return X, train, names, note


def _element_names(source: str | None, n: int) -> list[str | None]:
    """Source text of each element of a list or tuple written out in the cell."""
    import ast

    try:
        tree = ast.parse(source or "", mode="eval").body
    except SyntaxError:
        return [None] * n
    if isinstance(tree, ast.List | ast.Tuple) and len(tree.elts) == n:
        return [ast.unparse(e) for e in tree.elts]
    return [None] * n


def _eval_set(value: Any, source: str | None) -> list[tuple[Any, str, str]]:
    """``eval_set=[(X_val, y_val), ...]``: each pair is evaluation data, named from the source
    when it is written as a list of name pairs."""
    import ast

    names: list[list[str]] = []
    try:
        tree = ast.parse(source or "", mode="eval").body
        if isinstance(tree, ast.List | ast.Tuple):
            names = [
                [ast.unparse(e) for e in pair.elts] if isinstance(pair, ast.Tuple) else []
                for pair in tree.elts
            ]
    except SyntaxError:
        names = []
    out: list[tuple[Any, str, str]] = []
    if not isinstance(value, list | tuple):
        return out
    for i, pair in enumerate(value):
        if not isinstance(pair, list | tuple):
            continue
        for j, part in enumerate(pair[:2]):
            given = names[i][j] if i < len(names) and j < len(names[i]) else None
            name = given or f"eval_set[{i}][{j}]"
            if _data_like(part):
                out.append((part, "eval", name))
    return out


def _native_curves(estimator: Any) -> dict[str, list[float]]:
    """Per-iteration evaluation histories of boosting libraries: xgboost's ``evals_result()``
    and lightgbm's ``evals_result_`` (``{set: {metric: [values]}}``) as ``set.metric`` curves."""
    results: Any = getattr(estimator, "evals_result_", None)
    if not results and callable(getattr(estimator, "evals_result", None)):
        try:
            results = estimator.evals_result()
        except Exception:  # xgboost raises when fitted without an eval_set
            results = None
    out: dict[str, list[float]] = {}
    if isinstance(results, Mapping):
        for data_name, by_metric in results.items():
            if isinstance(by_metric, Mapping):
                for metric, values in by_metric.items():
                    points = _scalars(list(values)) if _is_sequence(values) else None
                    if points:
                        out[f"{data_name}.{metric}"] = points
    return out


def _native_best(estimator: Any) -> dict[str, float]:
    """``best_iteration`` and ``best_score`` of early stopping, when the library set them."""
    out: dict[str, float] = {}
    for attribute in ("best_iteration_", "best_iteration"):
        try:
            value = scalar(getattr(estimator, attribute, None))
        except Exception:  # a property that raises before fitting with early stopping
            value = None
        if value is not None:
            out["best_iteration"] = value
            break
    best = getattr(estimator, "best_score_", None) if not is_search(estimator) else None
    if isinstance(best, Mapping):  # lightgbm: {set: {metric: value}}
        for data_name, by_metric in best.items():
            if isinstance(by_metric, Mapping):
                for metric, value in by_metric.items():
                    if scalar(value) is not None:
                        out[f"best_score.{data_name}.{metric}"] = float(value)
    else:
        try:
            number = scalar(getattr(estimator, "best_score", None))
        except Exception:
            number = None
        if number is not None:
            out["best_score"] = number
    return out


def _is_sequence(value: Any) -> bool:
    """A list, tuple or 1-D array (not a string, mapping or scalar)."""
    if isinstance(value, list | tuple):
        return True
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 1


def _scalars(values: Any) -> list[float] | None:
    """Every value as a real number (a curve), or None if one of them is not."""
    if isinstance(values, list) and values and all(type(v) is float for v in values):
        return values  # the common case, fast
    try:
        points = [scalar(v) for v in values]
    except TypeError:
        return None
    if not points or any(p is None for p in points):
        return None
    return [float(p) for p in points if p is not None]


def _curve_function(site: CallSite, record: CallRecord) -> dict[str, list[float]]:
    """``validation_curve`` / ``learning_curve``: mean train and test scores per point, and the
    parameter values or training sizes they were measured at."""
    import numpy as np

    result = record.result
    name = site.method
    if name == "validation_curve":
        train, test = result[0], result[1]
        param = record.args.get("param_name")
        x_name = f"{name}.{param}" if isinstance(param, str) else f"{name}.param"
        xs = record.args.get("param_range")
    else:
        xs, train, test = result[0], result[1], result[2]
        x_name = f"{name}.train_size"
    out = {
        f"{name}.train_score": np.asarray(train, dtype=float).mean(axis=1).tolist(),
        f"{name}.test_score": np.asarray(test, dtype=float).mean(axis=1).tolist(),
    }
    x_points = _scalars(xs) if xs is not None else None
    if x_points:
        out[x_name] = x_points
    return out


def _choose_model(
    ctx: RunContext,
    fitted: Mapping[str, Any],
    namespace: Mapping[str, Any],
    facts: CellSource | None = None,
) -> Any:
    if ctx.model is not None:
        return ctx.model
    if ctx.options.model:
        if ctx.options.model not in namespace:
            raise LookupError(f"--model {ctx.options.model}: no such variable")
        return namespace[ctx.options.model]
    predictors = [(name, est) for name, est in fitted.items() if is_predictor(est)]
    if not predictors and "torch" in sys.modules:  # a network trained in the cell
        from .capture.deep import networks

        predictors = networks(facts.top_level if facts else [], namespace)
    if not predictors:
        return None
    if len(predictors) > 1:
        names = ", ".join(name for name, _ in predictors)
        ctx.capture_errors.append(
            {
                "step": "model",
                "error": f"several models fitted ({names}); saved {predictors[-1][0]}, "
                "name another with --model",
            }
        )
    return predictors[-1][1]


def _hash_data(obj: Any) -> str:
    """``hash_data``, imported (with numpy) only when a cell has data to hash."""
    from .capture.hashing import hash_data

    return hash_data(obj)
