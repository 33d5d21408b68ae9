"""Read and review endpoints: experiments, runs, compare, cards, models (and their monitored
batches), requests.

The store is resolved per request from the ``path`` argument (the notebook's directory) and
kept open between requests. Errors: 400 malformed input, 404 unknown ids or no store yet, 403
outside the root, 409 a refused review action, 500 a store that cannot be read (the server
keeps running).
"""

from __future__ import annotations

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
            frame = store.experiments()
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        self.finish({"experiments": records})


class RunsHandler(DataHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        from ..store.queries import run_page

        query: dict[str, Any] = {
            "experiment": self.get_argument("experiment", None),
            "status": self.get_argument("status", None),
            "filters": self.get_arguments("filter"),
            "sort": self.get_argument("sort", None),
            "offset": self.int_argument("offset", 0),
            "limit": self.int_argument("limit", 100),
        }
        with self.store() as store:  # off the event loop: other requests go on meanwhile
            page = await IOLoop.current().run_in_executor(
                None, functools.partial(run_page, store, **query)
            )
        self.finish(page)


class ColumnsHandler(DataHandler):
    """The keys the runs table can show: ``{"params", "metrics", "tags"}``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from ..store.queries import run_columns

        experiment = self.get_argument("experiment", None)
        with self.store() as store:
            columns = await IOLoop.current().run_in_executor(
                None, functools.partial(run_columns, store, experiment)
            )
        self.finish(columns)


class RunHandler(DataHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        with self.store() as store:
            run = store.get_run(run_id)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(run.to_dict(), default=str, allow_nan=False))


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


class CompareHandler(DataHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        from ..compare import compare_runs

        ids = [i for part in self.get_arguments("ids") for i in part.split(",") if i.strip()]
        with self.store() as store:
            comparison = compare_runs(store, ids)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(comparison, default=str, allow_nan=False))


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


class ModelsHandler(ReviewHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        with self.store() as store:
            registry = self.registry(store)
            models = registry.models()
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
                    }
                    for v in registry.versions(model["model"])
                ]
        self.finish({"models": models})


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


def _request_json(request: Any) -> dict[str, Any]:
    return {
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
            requests = self.registry(store).requests(status, limit)
            reviewer = self.reviewer_json(store)
        self.finish({"reviewer": reviewer, "requests": [_request_json(r) for r in requests]})


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
        self.finish(_request_json(result))


def data_routes(base: str) -> list[tuple[str, type]]:
    def route(pattern: str) -> str:
        return url_path_join(base, API, pattern)

    return [
        (route("experiments"), ExperimentsHandler),
        (route("runs"), RunsHandler),
        (route("columns"), ColumnsHandler),
        (route(r"runs/([0-9a-fA-F]{4,64})"), RunHandler),
        (route(r"runs/([0-9a-fA-F]{4,64})/metrics/([^/]+)"), CurveHandler),
        (route("compare"), CompareHandler),
        (route(r"cards/([^/]+)"), CardHandler),
        (route("models"), ModelsHandler),
        (route(r"models/([^/]+)/monitoring"), MonitoringHandler),
        (route("requests"), RequestsHandler),
        (route(r"requests/([0-9]+)/(approve|reject)"), RequestActionHandler),
    ]
