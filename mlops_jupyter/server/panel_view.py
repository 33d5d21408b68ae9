"""``GET panel``: everything the runs panel draws, in one answer.

A page load or a Refresh used to ask five times in turn (store, experiments, column keys,
metric settings, a page of runs); while JupyterLab starts, each answer then waited on a busy
main thread before the next question left. One request, answered from one store read:

``GET panel?path=DIR&experiment=&sort=&filter=&offset=&limit=`` ->
``{"store": <GET store>, "experiments": [...] | null, "experiment": "NAME" or "",
"columns": <GET columns> | null, "settings": {"experiment", "primary_metric", "directions"}
| null (an experiment shown: its metric settings),
"runs": <GET runs> | null, "runs_error": null | "why the filter is wrong"}``.

``experiment`` is the one shown: the asked one if it exists, else ``""`` (all experiments).
No store yet: only ``store`` is filled. A bad ``filter`` or ``sort`` answers the rest with
``runs`` null and ``runs_error`` saying why (the panel shows it beside the filter box); other
errors are the usual JSON error with its status.
"""

from __future__ import annotations

import functools
from typing import Any

import tornado.web
from tornado.ioloop import IOLoop

from ..store.discovery import DB_FILENAME
from .base import BaseHandler
from .data import DataHandler, experiments_json, run_columns_json


def store_info(handler: BaseHandler) -> dict[str, Any]:
    """What ``GET store`` answers for the handler's ``path``: the engine, where the store is
    (never a team store's password) and whether it exists yet."""
    location, _ = handler.store_location()
    root = handler.root_dir
    if isinstance(location, str):  # a team store on PostgreSQL
        from ..store.postgres import describe

        return {
            "engine": "postgresql",
            "team_store": describe(location),  # never the password
            "store_dir": None,
            "db_path": None,
            "exists": True,
            "root_dir": str(root),
            "relative_store_dir": None,
        }
    db_path = location / DB_FILENAME
    inside = location.is_relative_to(root)
    return {
        "engine": "sqlite",
        "team_store": None,
        "store_dir": str(location),
        "db_path": str(db_path),
        "exists": db_path.is_file(),
        "root_dir": str(root),
        "relative_store_dir": location.relative_to(root).as_posix() if inside else None,
    }


class PanelViewHandler(DataHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        info = store_info(self)
        answer: dict[str, Any] = {
            "store": info,
            "experiments": None,
            "experiment": "",
            "columns": None,
            "settings": None,
            "runs": None,
            "runs_error": None,
        }
        if not info["exists"]:
            self.finish(answer)
            return
        query = self.page_query()
        query["experiment"] = query["experiment"] or None  # "": all experiments
        with self.store() as store:  # off the event loop: other requests go on meanwhile
            answer.update(
                await IOLoop.current().run_in_executor(
                    None, functools.partial(_panel_view, store, query)
                )
            )
        self.finish(answer)


def _panel_view(store: Any, query: dict[str, Any]) -> dict[str, Any]:
    from ..store.queries import run_page

    experiments = experiments_json(store)
    if query["experiment"] not in {e["experiment"] for e in experiments}:
        query["experiment"] = None  # gone (or never there): all experiments
    experiment = query["experiment"]
    answer: dict[str, Any] = {
        "experiments": experiments,
        "experiment": experiment or "",
        "columns": run_columns_json(store, experiment),
        "settings": (
            {"experiment": experiment, **store.metric_directions(experiment)}
            if experiment
            else None
        ),
    }
    try:
        answer["runs"] = run_page(store, **query)
    except ValueError as exc:  # the filter's syntax (a bad sort key too): said beside the box
        answer["runs"], answer["runs_error"] = None, str(exc)
    return answer
