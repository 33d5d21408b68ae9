"""``GET`` / ``POST experiments/settings``: an experiment's primary metric and the direction
set for its metrics (``Store.metric_directions`` / ``Store.set_metric_direction``).

``GET ?path=DIR&experiment=NAME`` and every ``POST`` answer ``{"experiment", "primary_metric",
"directions", "settings"}``: ``directions`` maps each metric someone set to ``"max"`` or
``"min"``; ``settings`` lists those rows with who set them and when (``updated_at`` in ISO 8601,
UTC). ``POST`` takes ``{"experiment", "metric", "direction": "max" | "min", "primary": bool}``
(``direction`` may be left out with ``"primary": true``; ``"primary": false`` or leaving it out
leaves the primary metric as it is), or ``{"experiment", "primary": null}`` to clear the
primary metric. 400 bad input, 404 no store or no such experiment; POSTs are XSRF-checked by
jupyter_server for cookie sessions.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.utils import url_path_join

from ..store.records import utc
from .data import API, DataHandler

_FIELDS = {"experiment", "metric", "direction", "primary"}


def _answer(store: Any, experiment: str) -> dict[str, Any]:
    chosen = store.metric_directions(experiment)
    rows = store.metric_settings(experiment)
    for row in rows:
        row["updated_at"] = utc(row["updated_at"]).isoformat()  # type: ignore[union-attr]
    return {"experiment": experiment, **chosen, "settings": rows}


class ExperimentSettingsHandler(DataHandler):
    def known(self, store: Any, experiment: str) -> None:
        """404 unless the store has ``experiment`` (a typo must not create one)."""
        names = list(store.experiments()["experiment"])
        if experiment not in names:
            listed = ", ".join(names[:30]) or "none yet"
            raise tornado.web.HTTPError(
                404, "no experiment named %r in this store (experiments: %s)", experiment, listed
            )

    @tornado.web.authenticated
    def get(self) -> None:
        experiment = self.get_argument("experiment", "")
        if not experiment.strip():
            raise tornado.web.HTTPError(400, "experiment is required: ?experiment=NAME")
        with self.store() as store:
            self.known(store, experiment)
            self.finish(_answer(store, experiment))

    @tornado.web.authenticated
    def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "the body must be a JSON object")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise tornado.web.HTTPError(
                400, "unknown fields %s; use %s", ", ".join(unknown), ", ".join(sorted(_FIELDS))
            )
        experiment = body.get("experiment")
        if not isinstance(experiment, str) or not experiment.strip():
            raise tornado.web.HTTPError(400, "experiment must be a non-empty string")
        primary = body.get("primary", False)
        clearing = "primary" in body and primary is None
        if clearing and ("metric" in body or "direction" in body):
            raise tornado.web.HTTPError(
                400, 'to clear the primary metric send {"experiment": NAME, "primary": null} alone'
            )
        if not clearing:
            if not isinstance(primary, bool):
                raise tornado.web.HTTPError(400, "primary must be true, false or null")
            if not isinstance(body.get("metric"), str):
                raise tornado.web.HTTPError(400, "metric must be a string (the metric's key)")
            direction = body.get("direction")
            if direction is not None and not isinstance(direction, str):
                raise tornado.web.HTTPError(400, "direction must be 'max' or 'min'")
        with self.store() as store:  # a ValueError of the store is a 400 with its message
            self.known(store, experiment)
            if clearing:
                store.clear_primary_metric(experiment, user=self.acting_user())
            else:
                store.set_metric_direction(
                    experiment,
                    body["metric"],
                    body.get("direction"),
                    primary,
                    user=self.acting_user(),
                )
            self.finish(_answer(store, experiment))


def settings_routes(base: str) -> list[tuple[str, type]]:
    return [(url_path_join(base, API, "experiments/settings"), ExperimentSettingsHandler)]
