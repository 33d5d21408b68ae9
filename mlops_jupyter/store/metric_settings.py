"""Which way is better for a metric, and which metric is primary, per experiment.

A person may set, per experiment, the direction of any metric (``"max"``: higher is better,
``"min"``: lower is better) and mark one metric primary (the one a table sorts by and a
comparison shows first). What nobody set is decided by the metric's name
(:func:`mlops_jupyter.capture.metric_values.lower_is_better`: losses, errors and times are
lower-is-better). :func:`direction_of` is the one place that rule is applied, so everything
that marks a "best" value agrees. Rows live in ``metric_settings`` (schema v13), one per
experiment and metric, with who set it and when; the SQL is what both engines speak.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..capture.metric_values import lower_is_better

if TYPE_CHECKING:
    from .store import Store

DIRECTIONS = ("max", "min")
MAX_NAME_CHARS = 1000  # an experiment or metric name longer than this is never a real one


def direction_of(key: str, directions: Mapping[str, str] | None = None) -> str:
    """``"min"`` or ``"max"`` for the metric ``key``: the direction set for it in
    ``directions`` (an experiment's, see :meth:`Store.metric_directions`), else the name
    rule's."""
    chosen = (directions or {}).get(key)
    if chosen in DIRECTIONS:
        return str(chosen)
    return "min" if lower_is_better(key) else "max"


def check_direction(direction: Any) -> str:
    """``direction`` if it is ``"min"`` or ``"max"``, else a ``ValueError`` saying so."""
    if direction not in DIRECTIONS:
        raise ValueError(
            f"direction must be 'max' (higher is better) or 'min' (lower is better), "
            f"got {direction!r}"
        )
    return str(direction)


def check_name(what: str, name: Any) -> str:
    """A non-empty experiment or metric name, else a ``ValueError`` naming ``what``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty name, got {name!r}")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{what} is {len(name)} characters long; at most {MAX_NAME_CHARS}")
    return name


def settings(store: Store, experiment: str) -> list[dict[str, Any]]:
    """Every metric setting of ``experiment``, by metric: ``{"metric", "direction"}``
    (``None``: not set, the name rule decides), ``"primary"``, ``"updated_by"``,
    ``"updated_at"`` (unix seconds). An unknown experiment has none."""
    rows = store._read(
        "SELECT s.metric, s.direction, s.is_primary, s.updated_by, s.updated_at "
        "FROM metric_settings s JOIN experiments e ON e.id = s.experiment_id "
        "WHERE e.name = ? ORDER BY s.metric",
        (experiment,),
    )
    return [
        {
            "metric": metric,
            "direction": direction,
            "primary": bool(primary),
            "updated_by": by,
            "updated_at": float(at),
        }
        for metric, direction, primary, by, at in rows
    ]


def directions(store: Store, experiment: str) -> dict[str, Any]:
    """``{"primary_metric": KEY or None, "directions": {KEY: "min" or "max"}}``: what was
    set for ``experiment`` (only the metrics someone set a direction for)."""
    rows = settings(store, experiment)
    primary = next((r["metric"] for r in rows if r["primary"]), None)
    return {
        "primary_metric": primary,
        "directions": {r["metric"]: r["direction"] for r in rows if r["direction"]},
    }


def set_direction(
    store: Store,
    experiment: str,
    metric: str,
    direction: str | None,
    primary: bool,
    user: str,
) -> None:
    """See :meth:`Store.set_metric_direction`."""
    check_name("experiment", experiment)
    check_name("metric", metric)
    if direction is None and not primary:
        raise ValueError(
            f"nothing to set for {metric!r}: give a direction ('max' or 'min'), primary=True, "
            "or both"
        )
    if direction is not None:
        check_direction(direction)
    if not isinstance(primary, bool):
        raise ValueError(f"primary must be True or False, got {primary!r}")
    now = time.time()
    with store.transaction() as conn:
        experiment_id = store._experiment_id(conn, experiment)
        if primary:  # the one primary metric: the previous one stops being it
            conn.execute(
                "UPDATE metric_settings SET is_primary = 0, updated_by = ?, updated_at = ? "
                "WHERE experiment_id = ? AND is_primary = 1 AND metric <> ?",
                (user, now, experiment_id, metric),
            )
        conn.execute(
            "INSERT INTO metric_settings (experiment_id, metric, direction, is_primary, "
            "updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, "
            "metric) DO UPDATE SET direction = COALESCE(excluded.direction, "
            "metric_settings.direction), is_primary = CASE WHEN excluded.is_primary = 1 THEN 1 "
            "ELSE metric_settings.is_primary END, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at",
            (experiment_id, metric, direction, int(primary), user, now),
        )


def clear_primary(store: Store, experiment: str, user: str) -> None:
    """See :meth:`Store.clear_primary_metric`."""
    check_name("experiment", experiment)
    with store.transaction() as conn:
        found = conn.execute("SELECT id FROM experiments WHERE name = ?", (experiment,)).fetchone()
        if found is None:
            return
        conn.execute(
            "UPDATE metric_settings SET is_primary = 0, updated_by = ?, updated_at = ? "
            "WHERE experiment_id = ? AND is_primary = 1",
            (user, time.time(), found[0]),
        )


def resolve(key: str, per_experiment: Mapping[str, Mapping[str, str]]) -> tuple[str, str, bool]:
    """The direction of ``key`` across several experiments' directions: ``(direction,
    source, conflict)``. ``source`` is ``"experiment"`` when the experiments that set one
    agree, else ``"name"`` (nobody set one, or they disagree: ``conflict``)."""
    chosen = {d[key] for d in per_experiment.values() if d.get(key) in DIRECTIONS}
    if len(chosen) == 1:
        return chosen.pop(), "experiment", False
    return direction_of(key), "name", len(chosen) > 1


# ------------------------------------------------------------------------------ push / pull
def copy(source: Store, conn: Any, experiments: Mapping[str, int]) -> int:
    """Copy the settings of the named experiments (name -> id in the target, whose open
    transaction ``conn`` is) that the target lacks; return how many rows were added.

    As with runs, what the target already holds stays: a metric set there keeps its
    setting, and a metric primary in the source becomes primary only where the target has
    no primary metric for that experiment."""
    if not experiments:
        return 0
    names = sorted(experiments)
    among, args = source.dialect.among("e.name", names)
    rows = source._read(
        "SELECT e.name, s.metric, s.direction, s.is_primary, s.updated_by, s.updated_at "
        f"FROM metric_settings s JOIN experiments e ON e.id = s.experiment_id WHERE {among} "
        "ORDER BY e.name, s.metric",
        args,
    )
    added = 0
    for name, metric, direction, primary, by, at in rows:
        target_id = experiments[name]
        there = conn.execute(
            "SELECT 1 FROM metric_settings WHERE experiment_id = ? AND metric = ?",
            (target_id, metric),
        ).fetchone()
        if there is not None:
            continue
        if primary:
            taken = conn.execute(
                "SELECT 1 FROM metric_settings WHERE experiment_id = ? AND is_primary = 1",
                (target_id,),
            ).fetchone()
            primary = 0 if taken else 1
        conn.execute(
            "INSERT INTO metric_settings (experiment_id, metric, direction, is_primary, "
            "updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (target_id, metric, direction, int(primary), by, at),
        )
        added += 1
    return added
