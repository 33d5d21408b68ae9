"""Read and review endpoints: experiments, runs (and their CSV export, tag edits, curves and
code diffs), compare, cards, models (and their monitored batches), requests.

The store is resolved per request from the ``path`` argument (the notebook's directory) and
kept open between requests. Errors: 400 malformed input, 404 unknown ids or no store yet, 403
outside the root, 409 a refused review action, 500 a store that cannot be read (the server
keeps running).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.utils import url_path_join
from tornado.escape import url_unescape
from tornado.ioloop import IOLoop

from ..errors import MetricNotFoundError, MLOpsError, RunNotFoundError, StoreError
from ..store.discovery import DB_FILENAME
from .base import ALLOWED_SIGNERS_SETTING, SIGNING_KEY_SETTING, BaseHandler, bounded_int

API = "mlops-jupyter/api"
_OPEN_STORES = "mlops_jupyter_open_stores"
DEAD_RUN_CHECK_S = 1.0  # how often an open store looks for runs of processes that died


def _notice_dead_runs(store: Any) -> None:
    """The server keeps stores open, so it looks again for runs left ``running`` by a kernel
    that died (its process is gone from this host), at most once a second per store."""
    now = time.monotonic()
    if store.read_only or now - store.cache.get("dead_runs_checked", -1e9) < DEAD_RUN_CHECK_S:
        return
    if not store._lock.acquire(blocking=False):  # busy (its index loading): not on the loop
        return
    store.cache["dead_runs_checked"] = now
    try:
        store.mark_dead_runs_interrupted()
    except StoreError:  # busy or read-only: the next request looks again
        pass
    finally:
        store._lock.release()


def _load_run_index(store: Any) -> None:
    """Build a newly opened store's listing index in the background (seconds for a million
    runs); a listing asked for meanwhile waits for it in its own thread."""
    try:
        store.load_run_index()
    except Exception:  # noqa: BLE001 - a closed or broken store: the next listing reports it
        pass


class DataHandler(BaseHandler):
    """Opens the store the request's ``path`` resolves to, mapping errors to statuses."""

    def page_query(self) -> dict[str, Any]:
        """The arguments of a page of runs (``run_page``): experiment, status, filters, sort,
        offset and limit, as ``GET runs`` takes them."""
        return {
            "experiment": self.get_argument("experiment", None),
            "status": self.get_argument("status", None),
            "filters": self.get_arguments("filter"),
            "sort": self.get_argument("sort", None),
            "offset": self.int_argument("offset", 0),
            "limit": self.int_argument("limit", 100),
        }

    def acting_user(self) -> str:
        """Who made a change (a tag edit, a metric setting): the hub user behind JupyterHub,
        else the server's owner (the ``user`` setting or the OS user)."""
        if os.environ.get("JUPYTERHUB_USER"):
            user = self.current_user
            name = getattr(user, "username", None) or getattr(user, "name", None)
            if name:
                return str(name)
        from ..config import current_user

        return current_user()

    @contextmanager
    def store(self) -> Iterator[Any]:
        from ..store import Store

        location, start = self.store_location()
        if isinstance(location, Path) and not (location / DB_FILENAME).is_file():
            raise tornado.web.HTTPError(404, "no store yet at %s: track a cell first", location)
        cache: dict[str, Any] = self.settings.setdefault(_OPEN_STORES, {})
        key = str(location)
        try:
            store = cache.get(key)
            if store is None or store._conn is None:
                store = cache[key] = Store.open(location, create=False, start=start)
                threading.Thread(target=_load_run_index, args=(store,), daemon=True).start()
            _notice_dead_runs(store)
            yield store
        except RunNotFoundError as exc:
            raise tornado.web.HTTPError(404, "%s", str(exc)) from None
        except StoreError as exc:
            cache.pop(key, None)
            raise tornado.web.HTTPError(500, "the store cannot be read: %s", str(exc)) from None
        except MLOpsError as exc:
            from ..registry.registry import RegistryIntegrityError

            if not isinstance(exc, RegistryIntegrityError):
                raise
            raise tornado.web.HTTPError(500, "%s", str(exc)) from None
        except OverflowError as exc:  # an integer past what SQLite holds
            raise tornado.web.HTTPError(400, "number out of range: %s", str(exc)) from None
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise tornado.web.HTTPError(400, "%s", str(message)) from None


class ExperimentsHandler(DataHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        with self.store() as store:
            self.finish({"experiments": experiments_json(store)})


class RunsHandler(DataHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        from ..store.queries import run_page

        query = self.page_query()
        with self.store() as store:  # off the event loop: other requests go on meanwhile
            page = await IOLoop.current().run_in_executor(
                None, functools.partial(run_page, store, **query)
            )
        self.finish(page)


class ColumnsHandler(DataHandler):
    """The keys the runs table can show: ``{"params", "metrics", "tags", "directions"}``;
    ``directions`` gives each metric's ``"min"`` or ``"max"`` (set for the experiment, else
    read from its name), so that "best" reads the same in every view."""

    @tornado.web.authenticated
    async def get(self) -> None:
        experiment = self.get_argument("experiment", None)
        with self.store() as store:
            columns = await IOLoop.current().run_in_executor(
                None, functools.partial(run_columns_json, store, experiment)
            )
        self.finish(columns)


def run_columns_json(store: Any, experiment: str | None) -> dict[str, Any]:
    """What ``GET columns`` answers: the keys, and each metric's direction."""
    from ..store.metric_settings import direction_of
    from ..store.queries import run_columns

    columns: dict[str, Any] = run_columns(store, experiment)
    chosen = store.metric_directions(experiment)["directions"] if experiment else {}
    columns["directions"] = {key: direction_of(key, chosen) for key in columns["metrics"]}
    return columns


def experiments_json(store: Any) -> list[dict[str, Any]]:
    """What ``GET experiments`` lists: each experiment with its run count and settings."""
    frame = store.experiments()
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def _json_text(payload: Any) -> str:
    """JSON of ``payload`` with every non-finite float (a profile, an explanation, an
    artifact's metadata may hold one) as ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    try:
        return json.dumps(payload, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(payload), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    from ..store.records import json_number

    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _flag(handler: BaseHandler, name: str, default: bool) -> bool:
    raw = handler.get_argument(name, None)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise tornado.web.HTTPError(400, "%s must be 0 or 1, got %r", name, raw[:40])


def _ids_argument(handler: BaseHandler, name: str, maximum: int) -> list[str]:
    """Run ids from ``name`` (comma-separated, repeatable), in order, each once."""
    ids = [i.strip() for part in handler.get_arguments(name) for i in part.split(",")]
    ids = list(dict.fromkeys(i for i in ids if i))
    if not ids:
        raise tornado.web.HTTPError(400, "%s is required: run ids separated by commas", name)
    if len(ids) > maximum:
        raise tornado.web.HTTPError(
            400, "%s takes at most %d runs, got %d", name, maximum, len(ids)
        )
    return ids


class RunHandler(DataHandler):
    """``GET runs/<id>``: :meth:`Run.to_dict` plus ``curves`` (the points of each metric;
    more than one: a curve), ``tag_history`` (the edits of its tags after it finished,
    oldest first, ``at`` in ISO 8601 UTC) and ``model_versions`` (the registered versions
    made from this run). ``?history=0`` leaves ``metric_history`` out (a run of 10,000-step
    curves)."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        history = _flag(self, "history", True)
        with self.store() as store:
            payload = await IOLoop.current().run_in_executor(
                None, functools.partial(self.run_json, store, run_id, history)
            )
        self.set_header("Content-Type", "application/json")
        self.finish(payload)

    def run_json(self, store: Any, run_id: str, history: bool) -> str:
        from ..registry.registry import Registry

        run = store.get_run(run_id)
        curves = {key: len(points) for key, points in run.metric_history.items()}
        if not history:  # 10,000-step curves cost 50 ms in to_dict alone: not built at all
            run = dataclasses.replace(run, metric_history={})
        data = run.to_dict()
        data["curves"] = curves
        data["tag_history"] = _tag_history(store, run.run_id)
        if not history:
            del data["metric_history"]
        try:
            ledger = Registry(
                store, allowed_signers=self.settings.get(ALLOWED_SIGNERS_SETTING)
            ).checked()
        except MLOpsError as exc:  # the run is still shown; the registry says what is wrong
            data["model_versions"], data["registry_problem"] = None, str(exc)
        else:
            data["model_versions"] = [
                {"model": v.model, "version": v.version, "stage": v.stage, "blob": v.blob}
                for v in sorted(ledger.versions.values(), key=lambda v: (v.model, v.version))
                if v.run_id == run.run_id
            ]
            data["registry_problem"] = None
        return _json_text(data)


class RunTagsHandler(DataHandler):
    """``POST runs/<id>/tags`` with ``{"set": {key: value}, "delete": [key]}``: one
    transaction; answers the run's tags after it and its ``tag_history`` (the edit is in it,
    by the acting user, once the run has finished). The free-text note is the tag ``note``.
    XSRF is enforced by jupyter_server for cookie sessions."""

    @tornado.web.authenticated
    async def post(self, run_id: str) -> None:
        from ..errors import StorePermissionError

        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body must be JSON") from None
        to_set, to_delete = tag_edit(body)
        with self.store() as store:
            try:
                answer = await IOLoop.current().run_in_executor(
                    None,
                    functools.partial(
                        _edit_tags, store, run_id, to_set, to_delete, self.acting_user()
                    ),
                )
            except StorePermissionError as exc:
                raise tornado.web.HTTPError(403, "%s", str(exc)) from None
        self.finish(answer)


MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000  # the note is a tag too
MAX_TAG_EDITS = 100  # keys set and deleted in one request


def tag_edit(body: Any) -> tuple[dict[str, str], list[str]]:
    """The tags to set and to delete of a ``POST runs/<id>/tags`` body (else 400)."""
    if not isinstance(body, dict):
        raise tornado.web.HTTPError(
            400, 'the body must be a JSON object: {"set": {"key": "value"}, "delete": ["key"]}'
        )
    unknown = sorted(set(body) - {"set", "delete"})
    if unknown:
        raise tornado.web.HTTPError(
            400, 'unknown field %r: the body has "set" and "delete"', str(unknown[0])[:40]
        )
    to_set = body.get("set") or {}
    to_delete = body.get("delete") or []
    if not isinstance(to_set, dict):
        raise tornado.web.HTTPError(400, '"set" must be an object of tag names to text values')
    if not isinstance(to_delete, list):
        raise tornado.web.HTTPError(400, '"delete" must be a list of tag names')
    if len(to_set) + len(to_delete) > MAX_TAG_EDITS:
        raise tornado.web.HTTPError(
            400, "at most %d tags can be set or deleted at once, got %d", MAX_TAG_EDITS,
            len(to_set) + len(to_delete),
        )  # fmt: skip
    for key in [*to_set, *to_delete]:
        if not isinstance(key, str) or not key.strip():
            raise tornado.web.HTTPError(400, "a tag name must be a non-empty string, got %r",
                                        str(key)[:40])  # fmt: skip
        if len(key) > MAX_TAG_KEY:
            raise tornado.web.HTTPError(
                400, "tag name %r... is %d characters long; at most %d are accepted",
                key[:40], len(key), MAX_TAG_KEY,
            )  # fmt: skip
    for key, value in to_set.items():
        if not isinstance(value, str):
            raise tornado.web.HTTPError(
                400, "the value of tag %r must be a string, got %s", key[:40],
                type(value).__name__ if value is not None else "null",
            )  # fmt: skip
        if len(value) > MAX_TAG_VALUE:
            raise tornado.web.HTTPError(
                400, "the value of tag %r is %d characters long; at most %d are accepted",
                key[:40], len(value), MAX_TAG_VALUE,
            )  # fmt: skip
    both = [key for key in to_delete if key in to_set]
    if both:
        raise tornado.web.HTTPError(
            400, "tag %r is both set and deleted: do one or the other", both[0][:40]
        )
    return dict(to_set), list(dict.fromkeys(to_delete))


def _edit_tags(
    store: Any, run_id: str, to_set: dict[str, str], to_delete: list[str], user: str
) -> dict[str, Any]:
    full_id = store.resolve_run_id(run_id)
    tags = store.edit_tags(full_id, to_set, to_delete, user=user)
    return {"run_id": full_id, "tags": tags, "tag_history": _tag_history(store, full_id)}


def _tag_history(store: Any, run_id: str) -> list[dict[str, Any]]:
    from datetime import datetime, timezone

    return [
        {**edit, "at": datetime.fromtimestamp(edit["at"], tz=timezone.utc).isoformat()}
        for edit in store.tag_history(run_id)
    ]


class CurveHandler(DataHandler):
    """One metric of a run: ``{"key", "steps", "values"}`` (non-finite values as strings)."""

    @tornado.web.authenticated
    def get(self, run_id: str, key: str) -> None:
        from ..store.records import json_number

        with self.store() as store:
            try:
                curve = store.metric_curve(run_id, url_unescape(key))
            except MetricNotFoundError as exc:
                raise tornado.web.HTTPError(404, "%s", str(exc)) from None
        values = curve.values.tolist()
        if not all(map(math.isfinite, values)):
            values = [json_number(v) for v in values]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"key": curve.key, "steps": curve.steps.tolist(), "values": values}))


MAX_CURVE_RUNS = 100
CURVE_POINTS = 5000  # points per curve by default; more are downsampled
MAX_CURVE_POINTS = 100_000


class CurvesHandler(DataHandler):
    """``GET curves?ids=&key=&points=``: one metric of up to 100 runs, ``{"key", "runs":
    [{"run_id", "name", "steps", "values", "total"}]}`` in the order asked; a curve of more
    than ``points`` points is downsampled (see :func:`~mlops_jupyter.store.curves.downsample`),
    ``total`` its points before. All the curves come from one query."""

    @tornado.web.authenticated
    async def get(self) -> None:
        ids = _ids_argument(self, "ids", MAX_CURVE_RUNS)
        key = self.get_argument("key")
        points = self.int_argument("points", CURVE_POINTS)
        if not 2 <= points <= MAX_CURVE_POINTS:
            raise tornado.web.HTTPError(
                400, "points must be between 2 and %d, got %d", MAX_CURVE_POINTS, points
            )
        with self.store() as store:
            payload = await IOLoop.current().run_in_executor(
                None, functools.partial(curves_json, store, ids, key, points)
            )
        self.set_header("Content-Type", "application/json")
        self.finish(payload)


def curves_json(store: Any, ids: list[str], key: str, points: int) -> str:
    import numpy as np

    from ..store.curves import downsample
    from ..store.records import json_number

    names = store.run_names(ids)
    found = store.metric_curves(list(names), key)
    runs = []
    for run_id, name in names.items():
        curve = found[run_id]
        steps, values = downsample(curve.steps, curve.values, points)
        shown = values.tolist()
        if not np.isfinite(values).all():
            shown = [json_number(v) for v in shown]
        runs.append({"run_id": run_id, "name": name, "steps": steps.tolist(), "values": shown,
                     "total": len(curve)})  # fmt: skip
    return json.dumps({"key": key, "runs": runs})


class CurveKeysHandler(DataHandler):
    """``GET curves/keys?ids=``: ``{"keys": [...]}``, the metrics with more than one step in
    any of the runs (those a chart can draw as curves), sorted."""

    @tornado.web.authenticated
    async def get(self) -> None:
        ids = _ids_argument(self, "ids", MAX_CURVE_RUNS)
        with self.store() as store:
            keys = await IOLoop.current().run_in_executor(
                None, lambda: store.curve_keys(list(store.run_names(ids)))
            )
        self.finish({"keys": keys})


class DiffHandler(DataHandler):
    """``GET diff?a=&b=``: the code of run ``a`` against run ``b`` (see
    :mod:`mlops_jupyter.code_diff`)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from ..code_diff import code_diff

        a, b = self.get_argument("a").strip(), self.get_argument("b").strip()
        with self.store() as store:
            diff = await IOLoop.current().run_in_executor(
                None, lambda: code_diff(store.get_run(a), store.get_run(b))
            )
        self.finish(diff)


class RunsCsvHandler(DataHandler):
    """``GET runs.csv``: every run ``GET runs`` would list with the same ``experiment``,
    ``status``, ``filter`` and ``sort``, as CSV with the ``columns`` asked for (see
    :mod:`mlops_jupyter.store.runs_csv`), streamed a page at a time; each page is read in
    the executor. A bad filter, sort or column is a 400 before anything is sent."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from tornado.iostream import StreamClosedError

        from ..store.runs_csv import csv_pages, parse_columns

        experiment = self.get_argument("experiment", None)
        try:
            columns = parse_columns(self.get_arguments("columns"))
        except ValueError as exc:
            raise tornado.web.HTTPError(400, "%s", str(exc)) from None
        status = self.get_argument("status", None)
        filters = self.get_arguments("filter")
        sort = self.get_argument("sort", None)
        loop = IOLoop.current()
        with self.store() as store:
            pages = csv_pages(
                store, columns, experiment=experiment, status=status, filters=filters, sort=sort
            )
            first = await loop.run_in_executor(None, next, pages)  # errors here are a 400
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", _attachment(experiment))
            self.set_header("Cache-Control", "no-store")
            try:
                self.write(first)
                await self.flush()
                while (text := await loop.run_in_executor(None, next, pages, None)) is not None:
                    self.write(text)
                    await self.flush()
            except StreamClosedError:  # the browser went away: stop reading pages
                pages.close()
                return
        self.finish()


def _attachment(experiment: str | None) -> str:
    """``attachment; filename="runs-<experiment or all>.csv"``; an experiment name a file
    name cannot hold as it is is also given exactly, as RFC 6266's ``filename*``."""
    import re
    from urllib.parse import quote

    name = f"runs-{experiment if experiment is not None else 'all'}.csv"
    safe = re.sub(r"[^A-Za-z0-9._ +-]", "_", name)
    if safe == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(name, safe='')}"


class CardHandler(DataHandler):
    """The model card as HTML, served under a CSP that forbids scripts and fetching."""

    @tornado.web.authenticated
    def get(self, ref: str) -> None:
        from ..cards.model import build_card

        with self.store() as store:
            page = build_card(ref, store=store).to_html()
        self.set_header(
            "Content-Security-Policy",
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        )
        self.finish(page, set_content_type="text/html; charset=utf-8")


class ReviewHandler(DataHandler):
    """Registry endpoints. Approvals are signed with the key of the person the server runs for
    (its owner): on a single-user server everyone holding its token or password is that
    person, so two browser sessions are one principal; behind JupyterHub only the hub user
    who owns the server may sign with it. Anything else is refused with 403."""

    def jupyter_user(self) -> tuple[str, str]:
        user = self.current_user
        username = str(getattr(user, "username", None) or getattr(user, "name", None) or "")
        return username, str(getattr(user, "name", "") or "")

    def registry(self, store: Any, signing: bool = False) -> Any:
        from ..registry.registry import Registry

        signer = None
        if signing:
            from ..identity.keys import load_signer

            signer = load_signer(self.settings.get(SIGNING_KEY_SETTING))
        return Registry(store, signer, allowed_signers=self.settings.get(ALLOWED_SIGNERS_SETTING))

    def owner_problem(self) -> str | None:
        """Why this request may not sign as the server's owner (None: it may)."""
        hub_owner = os.environ.get("JUPYTERHUB_USER")
        username, _ = self.jupyter_user()
        if hub_owner and username != hub_owner:
            return (
                f"you are signed in as {username} on {hub_owner}'s server, which signs as "
                f"{hub_owner}: approve from your own server, or with `mlops-jupyter approve` "
                "and your own key"
            )
        return None

    def reviewer_json(self, store: Any) -> dict[str, Any]:
        from ..errors import IdentityError

        username, name = self.jupyter_user()
        out: dict[str, Any] = {"username": username, "name": name}
        problem = self.owner_problem()
        try:
            who = self.registry(store, signing=True).whoami() if problem is None else {}
        except IdentityError as exc:
            who = {"principal": None, "fingerprint": None, "problem": str(exc)}
        out["principal"] = who.get("principal")
        out["fingerprint"] = who.get("fingerprint")
        out["problem"] = problem or who.get("problem")
        return out


class CompareHandler(ReviewHandler):
    """``GET compare?ids=``: run ids, or ``MODEL:VERSION`` refs of registered versions."""

    @tornado.web.authenticated
    def get(self) -> None:
        from ..compare import compare_runs

        ids = [i.strip() for part in self.get_arguments("ids") for i in part.split(",")]
        ids = [i for i in ids if i]
        with self.store() as store:
            if any(":" in i for i in ids):
                ids = [self.version_run(store, i) if ":" in i else i for i in ids]
            comparison = compare_runs(store, ids)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(comparison, default=str, allow_nan=False))

    def version_run(self, store: Any, ref: str) -> str:
        """The run of the registered version ``MODEL:VERSION`` (404 if there is none)."""
        from ..registry.registry import RegistryError, RegistryIntegrityError

        model, _, number = ref.rpartition(":")
        version = bounded_int(f"the version of {ref[:80]!r}", number, minimum=1)
        try:
            return str(self.registry(store).version(model, version).run_id)
        except RegistryIntegrityError:
            raise
        except RegistryError as exc:
            raise tornado.web.HTTPError(404, "%s", str(exc)) from None


def decisions(registry: Any, models: Any) -> tuple[dict[int, Any], dict[tuple[str, int], float]]:
    """From the models' audit entries that hold (signed, or from before signing): when and
    by whom each closed request was decided -- ``{request id: (time, actor)}`` of the entry
    that applied, rejected or refused it -- and when each version last changed stage --
    ``{(model, version): time}`` of the transition that moved it there or archived it."""
    decided: dict[int, Any] = {}
    moved: dict[tuple[str, int], float] = {}
    for model in dict.fromkeys(models):
        production: int | None = None
        for entry in registry.history(model):
            subject_model, _, number = str(entry["subject"]).rpartition(":")
            if entry["problem"] is not None or subject_model != model or not number.isdigit():
                continue
            action, version = entry["action"], int(number)
            if action in ("transition", "reject", "refused") and entry.get("request"):
                decided[int(entry["request"])] = (entry["ts"], entry["actor"])
            if action != "transition":
                continue
            moved[(model, version)] = entry["ts"]
            if entry.get("to") == "production":
                if production is not None and production != version:
                    moved[(model, production)] = entry["ts"]  # archived by this one
                production = version
            elif production == version:
                production = None
    return decided, moved


class ModelsHandler(ReviewHandler):
    """``GET models``: each model with its versions; a version's ``stage_changed_at`` is
    when it moved to its stage (None: never moved)."""

    @tornado.web.authenticated
    def get(self) -> None:
        with self.store() as store:
            registry = self.registry(store)
            models = registry.models()
            _, moved = decisions(registry, [m["model"] for m in models])
            for model in models:
                model["versions_list"] = [
                    {
                        "version": v.version,
                        "stage": v.stage,
                        "run_id": v.run_id,
                        "blob": v.blob,
                        "created_by": v.created_by,
                        "created_at": v.created_at,
                        "fingerprint": v.fingerprint,
                        "stage_changed_at": moved.get((v.model, v.version)),
                    }
                    for v in registry.versions(model["model"])
                ]
        self.finish({"models": models})


class ProductionHandler(ReviewHandler):
    """``GET models/<name>/versions/<v>/production``: the version and the model's current
    production version (None if it has none), to compare their runs."""

    @tornado.web.authenticated
    def get(self, name: str, number: str) -> None:
        from ..registry.registry import RegistryIntegrityError

        model = url_unescape(name)
        version = bounded_int("the version", number, minimum=1)
        with self.store() as store:
            registry = self.registry(store)
            if model not in {m["model"] for m in registry.models()}:
                raise tornado.web.HTTPError(404, "no model named %r is registered", model)
            try:
                candidate = registry.version(model, version)
            except RegistryIntegrityError:
                raise
            except MLOpsError as exc:
                raise tornado.web.HTTPError(404, "%s", str(exc)) from None
            production = registry.current(model)

        def side(v: Any) -> dict[str, Any] | None:
            return None if v is None else {"version": v.version, "run_id": v.run_id,
                                           "stage": v.stage}  # fmt: skip

        self.finish({"model": model, "candidate": side(candidate), "production": side(production)})


class MonitoringHandler(ReviewHandler):
    """``GET models/<name>/monitoring``: per monitored version its latest batches (``limit``,
    50 by default) oldest to newest with the total, as :mod:`.monitoring` shapes them. Batches
    are append-only and every one appends to the audit log, so the shaped batches are kept per
    open store until its audit head moves: a refresh that finds nothing new reads no batch."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from .monitoring import BATCHES_SHOWN, MAX_BATCHES_SHOWN

        model = url_unescape(name)
        limit = self.int_argument("limit", BATCHES_SHOWN, minimum=1)
        if limit > MAX_BATCHES_SHOWN:
            raise tornado.web.HTTPError(
                400, "limit must be between 1 and %d, got %d", MAX_BATCHES_SHOWN, limit
            )
        with self.store() as store:  # off the event loop: a long history is read meanwhile
            payload = await IOLoop.current().run_in_executor(
                None, functools.partial(self.monitoring, store, model, limit)
            )
        self.finish(payload)

    def monitoring(self, store: Any, model: str, limit: int) -> dict[str, Any]:
        from .monitoring import monitoring_payload

        head = store.audit_head()  # read first: a batch added meanwhile moves it again
        registry = self.registry(store)
        known = [m["model"] for m in registry.models()]
        if model not in known:
            raise tornado.web.HTTPError(404, "no model named %r is registered", model)
        stages = {v.version: v.stage for v in registry.versions(model)}
        key = f"monitoring:{model}"
        signature = (head, limit, tuple(sorted(stages.items())))
        cached = store.cache.get(key)
        if cached is not None and cached[0] == signature:
            return dict(cached[1])
        payload = monitoring_payload(model, stages, store.monitor_batches(model), limit)
        store.cache[key] = (signature, payload)
        return payload


def _request_json(request: Any, decided: dict[int, Any] | None = None) -> dict[str, Any]:
    """A request; ``decided_at`` and ``decided_by`` say when it was applied, rejected or
    refused and by whom (a request blocked by its gates when it was made: its own time)."""
    when, who = (decided or {}).get(request.id, (None, None))
    if when is None and request.status == "blocked":
        when = request.created_at
    return {
        "decided_at": when if request.status != "pending" else None,
        "decided_by": who if request.status != "pending" else None,
        "id": request.id,
        "model": request.model,
        "version": request.version,
        "from_stage": request.from_stage,
        "to_stage": request.to_stage,
        "status": request.status,
        "requester": request.requester,
        "requester_key": request.requester_key,
        "created_at": request.created_at,
        "comment": request.comment,
        "gates": [g.to_dict() for g in request.gates],
        "required_signoffs": request.required_signoffs,
        "approvals": request.approvals,
        "signoffs": [s.to_dict() for s in request.signoffs],
        "not_counted": [
            {"principal": who, "time": when, "reason": why}
            for who, when, why in request.not_counted
        ],
        "reason": request.reason,
        "audit_head": request.audit_head,
    }


_REQUEST_STATUSES = ("pending", "blocked", "rejected", "applied")


class RequestsHandler(ReviewHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        status = self.get_argument("status", None)
        if status is not None and status not in _REQUEST_STATUSES:
            raise tornado.web.HTTPError(
                400, "status must be one of %s, got %r", ", ".join(_REQUEST_STATUSES), status
            )
        limit = self.int_argument("limit", 200)
        if not 1 <= limit <= 1000:
            raise tornado.web.HTTPError(400, "limit must be between 1 and 1000, got %d", limit)
        with self.store() as store:
            registry = self.registry(store)
            requests = registry.requests(status, limit)
            decided, _ = decisions(registry, [r.model for r in requests])
            reviewer = self.reviewer_json(store)
        self.finish(
            {"reviewer": reviewer, "requests": [_request_json(r, decided) for r in requests]}
        )


class RequestActionHandler(ReviewHandler):
    """POST requests/{id}/approve|reject with ``{"comment": ...}``, signed with the server
    owner's key (see :class:`ReviewHandler`). XSRF is enforced by jupyter_server for cookie
    sessions."""

    @tornado.web.authenticated
    def post(self, request_id: str, action: str) -> None:
        from ..errors import IdentityError
        from ..registry.registry import RegistryError

        number = bounded_int("the request id", request_id, minimum=1)
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body must be JSON") from None
        comment = body.get("comment", "") if isinstance(body, dict) else None
        if not isinstance(comment, str):
            raise tornado.web.HTTPError(400, "comment must be a string")
        problem = self.owner_problem()
        if problem is not None:
            raise tornado.web.HTTPError(403, "%s", problem)
        how = f" To sign from a terminal instead: mlops-jupyter {action} {request_id} -m COMMENT"
        with self.store() as store:
            try:
                registry = self.registry(store, signing=True)
                registry.principal  # noqa: B018 - an unattributable approval is refused first
            except IdentityError as exc:
                raise tornado.web.HTTPError(
                    403, "this server cannot sign for you: %s.%s", str(exc), how
                ) from None
            try:
                if action == "approve":
                    result = registry.approve(number, comment)
                else:
                    result = registry.reject(number, comment)
            except RegistryError as exc:
                status = 404 if "no promotion request" in str(exc) else 409
                raise tornado.web.HTTPError(status, "%s", str(exc)) from None
            except MLOpsError as exc:
                raise tornado.web.HTTPError(409, "%s", str(exc)) from None
            decided, _ = decisions(registry, [result.model])
        self.finish(_request_json(result, decided))


def data_routes(base: str) -> list[tuple[str, type]]:
    def route(pattern: str) -> str:
        return url_path_join(base, API, pattern)

    return [
        (route("experiments"), ExperimentsHandler),
        (route("runs"), RunsHandler),
        (route("columns"), ColumnsHandler),
        (route("runs.csv"), RunsCsvHandler),
        (route(r"runs/([0-9a-fA-F]{4,64})"), RunHandler),
        (route(r"runs/([0-9a-fA-F]{4,64})/tags"), RunTagsHandler),
        (route(r"runs/([0-9a-fA-F]{4,64})/metrics/([^/]+)"), CurveHandler),
        (route("curves"), CurvesHandler),
        (route("curves/keys"), CurveKeysHandler),
        (route("diff"), DiffHandler),
        (route("compare"), CompareHandler),
        (route(r"cards/([^/]+)"), CardHandler),
        (route("models"), ModelsHandler),
        (route(r"models/([^/]+)/monitoring"), MonitoringHandler),
        (route(r"models/([^/]+)/versions/([0-9]+)/production"), ProductionHandler),
        (route("requests"), RequestsHandler),
        (route(r"requests/([0-9]+)/(approve|reject)"), RequestActionHandler),
    ]
