"""Copying runs between stores: ``push`` from a laptop's store to the team store, ``pull``
back for offline review. Engine-neutral: it reads and writes through the SQL both engines
speak, so any direction works (SQLite -> PostgreSQL, PostgreSQL -> SQLite, and either to
itself).

A run is copied whole -- its row, params, metrics and curves, data snapshots, explanation,
artifacts, environment, earlier cells -- with every blob it names, streamed a chunk at a time
and hash-checked on arrival. Runs go in batches, one transaction each, so an interrupted copy
keeps what it committed and the next one resumes; a run already there (same id, experiment,
start time and code) is skipped, so copying twice adds nothing; a run id that names a
different run there is a :class:`SyncConflictError` naming it. Runs still ``running`` wait for
the next copy. A run's card sections travel with it, and so do its experiment's metric settings
(directions, primary metric) that the other store lacks: what it holds already stays. Tag edits
made after a run finished travel too, also for a run already there: the other store gets the
edits it lacks and, per key, the latest edit wins (:mod:`.tag_history`).
Registry statements are carried by :mod:`mlops_jupyter.registry.transfer`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from .sql import insert_new

BATCH = 100
RUN_COLUMNS = (
    "id", "experiment_id", "name", "status", "started_at", "ended_at", "duration_s", "source",
    "execution_count", "notebook_path", "kernel_id", "user", "host", "pid", "git_commit",
    "git_dirty", "environment_id", "history", "tags", "error", "capture_errors", "history_head",
)  # fmt: skip
PER_RUN = {
    "params": ("run_id", "key", "value", "source", "truncated"),
    "metrics": ("run_id", "key", "step", "value", "flag", "timestamp"),
    "metric_series": ("run_id", "key", "n", "values", "timestamp"),
    "metric_chunks": ("run_id", "key", "seq", "n", "steps", "values", "times"),
    "run_datasets": ("run_id", "dataset_hash", "role", "variable"),
    "explanations": (
        "run_id", "status", "reason", "explainer", "feature_names", "classes", "mean_abs",
        "base_values", "n_rows", "blob", "created_at",
    ),
    "artifacts": ("run_id", "name", "kind", "blob", "size", "media_type", "meta", "created_at"),
}  # fmt: skip
DATASET_COLUMNS = (
    "hash", "kind", "shape", "schema", "profile", "source_path", "source_hash", "created_at",
    "rows_blob",
)  # fmt: skip
ENVIRONMENT_COLUMNS = ("id", "python", "platform", "packages", "created_at")
SECTION_COLUMNS = ("subject", "section", "content", "author", "revision", "created_at")


class SyncConflictError(StoreError):
    """A run id names a different run in the other store."""


@dataclass
class SyncReport:
    copied: int = 0
    skipped: int = 0  # already there
    running: int = 0  # not finished yet: copied by a later push
    blobs: int = 0
    blob_bytes: int = 0
    explanations_updated: int = 0
    metric_settings: int = 0  # metric settings the target lacked
    tag_edits: int = 0  # edits of finished runs' tags the target lacked
    copied_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.copied} runs copied", f"{self.skipped} already there"]
        if self.running:
            parts.append(f"{self.running} still running (copied next time)")
        parts.append(f"{self.blobs} blobs, {self.blob_bytes / 1e6:.1f} MB")
        if self.explanations_updated:
            parts.append(f"{self.explanations_updated} explanations completed")
        if self.metric_settings:
            parts.append(f"{self.metric_settings} metric settings")
        if self.tag_edits:
            parts.append(f"{self.tag_edits} tag edits")
        return ", ".join(parts)


def _q(column: str) -> str:
    return f'"{column}"' if column in ("user", "values") else column


def _select(store: Any, table: str, columns: Sequence[str], key: str, ids: Sequence[str]) -> list:
    marks = ",".join("?" * len(ids))
    cols = ", ".join(_q(c) for c in columns)
    return store._read(f"SELECT {cols} FROM {table} WHERE {key} IN ({marks})", ids)


def _identity(run_id: str, experiment: str, started: float, source: str | None) -> str:
    """What makes a run the same run in both stores: id, experiment, start time, code."""
    text = f"{run_id}\n{experiment}\n{float(started)!r}\n{source or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def copy_runs(
    source: Any,
    target: Any,
    *,
    experiment: str | None = None,
    run_ids: Iterable[str] | None = None,
    progress: Callable[[SyncReport, int], None] | None = None,
) -> SyncReport:
    """Copy the finished runs of ``source`` (all, one experiment's, or the given ids) that
    ``target`` lacks; see the module docstring."""
    where, args = "", []
    if experiment is not None:
        where, args = " WHERE e.name = ?", [experiment]
    rows = source._read(
        "SELECT r.id, e.name, r.status FROM runs r JOIN experiments e ON e.id = r.experiment_id"
        f"{where} ORDER BY r.started_at, r.id",
        args,
    )
    wanted = set(run_ids) if run_ids is not None else None
    report = SyncReport()
    todo, experiments = [], set()
    for run_id, name, status in rows:
        if wanted is not None and run_id not in wanted:
            continue
        if status == "running":
            report.running += 1
            continue
        todo.append(run_id)
        experiments.add(name)
    for start in range(0, len(todo), BATCH):
        _copy_batch(source, target, todo[start : start + BATCH], report)
        if progress is not None:
            progress(report, len(todo))
    _copy_metric_settings(source, target, sorted(experiments), report)
    return report


def _copy_metric_settings(source: Any, target: Any, names: list[str], report: SyncReport) -> None:
    """The metric settings of the experiments whose runs were copied (or were there)."""
    from . import metric_settings

    if not names:
        return
    ids = [row[0] for row in _select(source, "experiments", ("id",), "name", names)]
    if not ids or not _select(source, "metric_settings", ("metric",), "experiment_id", ids):
        return  # nothing set: no write on the target
    with target.transaction() as conn:
        there = dict(_select(target, "experiments", ("name", "id"), "name", names))
        report.metric_settings += metric_settings.copy(source, conn, there)


def _copy_batch(source: Any, target: Any, ids: list[str], report: SyncReport) -> None:
    _copy_new_runs(source, target, ids, report)
    if source._read(  # a cheap probe: most batches have no edited run
        f"SELECT 1 FROM tag_edits WHERE run_id IN ({','.join('?' * len(ids))}) LIMIT 1", ids
    ):
        from . import tag_history

        with target.transaction() as conn:
            report.tag_edits += tag_history.copy(source, conn, ids)


def _copy_new_runs(source: Any, target: Any, ids: list[str], report: SyncReport) -> None:
    experiment = "(SELECT name FROM experiments WHERE id = r.experiment_id)"
    runs = _select(source, "runs r", [f"r.{_q(c)}" for c in RUN_COLUMNS] + [experiment],
                   "r.id", ids)  # fmt: skip
    names = {row[0]: row[-1] for row in runs}
    there = {
        run_id: _identity(run_id, name, started, code)
        for run_id, name, started, code in _select(
            target, "runs r", ["r.id", experiment, "r.started_at", "r.source"], "r.id", ids
        )
    }
    new = []
    for row in runs:
        run_id = row[0]
        if run_id not in there:
            new.append(row[: len(RUN_COLUMNS)])
            continue
        if there[run_id] != _identity(run_id, names[run_id], row[4], row[7]):
            raise SyncConflictError(
                f"run {run_id} is a different run in {target.engine.where()} (another "
                "experiment, start time or code under the same id): it was not copied, nor "
                "anything after it; the runs before it were"
            )
        report.skipped += 1
        report.explanations_updated += _complete_explanation(source, target, run_id)
    if not new:
        return
    new_ids = [row[0] for row in new]
    wanted = sorted({names[i] for i in new_ids})
    experiments = _select(source, "experiments", ("name", "created_at"), "name", wanted)
    with target.transaction() as conn:
        conn.executemany(insert_new("experiments", ("name", "created_at")), experiments)
        experiment_ids = dict(
            conn.execute(
                f"SELECT name, id FROM experiments WHERE name IN ({','.join('?' * len(wanted))})",
                wanted,
            ).fetchall()
        )
        env_ids = sorted({row[16] for row in new if row[16]})
        if env_ids:
            conn.executemany(
                insert_new("environments", ENVIRONMENT_COLUMNS),
                _select(source, "environments", ENVIRONMENT_COLUMNS, "id", env_ids),
            )
        for head in sorted({row[21] for row in new if row[21]}):
            _copy_cells(source, conn, head)
        conn.executemany(
            insert_new("runs", RUN_COLUMNS),
            [(row[0], experiment_ids[names[row[0]]], *row[2:]) for row in new],
        )
        per_run = {t: _select(source, t, cols, "run_id", new_ids) for t, cols in PER_RUN.items()}
        hashes = sorted({r[1] for r in per_run["run_datasets"]})
        snapshots = _select(source, "datasets", DATASET_COLUMNS, "hash", hashes) if hashes else []
        if snapshots:
            conn.executemany(insert_new("datasets", DATASET_COLUMNS), snapshots)
            conn.executemany(  # a snapshot the target holds without its rows gets them
                "UPDATE datasets SET rows_blob = ? WHERE hash = ? AND rows_blob IS NULL",
                [(row[8], row[0]) for row in snapshots if row[8]],
            )
        blobs = (
            {r[3] for r in per_run["artifacts"]}
            | {r[9] for r in per_run["explanations"] if r[9]}
            | {row[8] for row in snapshots if row[8]}
        )
        for digest in sorted(blobs):
            _copy_blob(source, target, digest, report)
        for table, columns in PER_RUN.items():
            if per_run[table]:
                conn.executemany(insert_new(table, columns), per_run[table])
        sections = _select(source, "card_sections", SECTION_COLUMNS, "subject", new_ids)
        if sections:
            conn.executemany(insert_new("card_sections", SECTION_COLUMNS), sections)
    report.copied += len(new)
    report.copied_ids += new_ids


def _copy_blob(source: Any, target: Any, digest: str, report: SyncReport) -> None:
    if target.blobs.exists(digest):
        return
    size = target.blobs.put_chunks(digest, source.blobs.iter_chunks(digest))
    report.blobs += 1
    report.blob_bytes += size


def _copy_cells(source: Any, conn: Any, head: str) -> None:
    """The chain of earlier cells ending at ``head``, back to the first node already there."""
    node = head
    while node:
        if conn.execute("SELECT 1 FROM cell_history WHERE id = ?", (node,)).fetchone():
            return
        row = source._read(
            "SELECT id, parent, execution_count, cell, depth FROM cell_history WHERE id = ?",
            (node,),
        )
        if not row:
            return  # an older store's chain ends here
        cell = source._read("SELECT hash, source FROM cells WHERE hash = ?", (row[0][3],))
        if cell:
            conn.execute(insert_new("cells", ("hash", "source")), cell[0])
        conn.execute(
            insert_new("cell_history", ("id", "parent", "execution_count", "cell", "depth")),
            row[0],
        )
        node = row[0][1]


def _complete_explanation(source: Any, target: Any, run_id: str) -> int:
    """A run pushed while its SHAP explanation was still pending gets the finished one."""
    theirs = target._read("SELECT status FROM explanations WHERE run_id = ?", (run_id,))
    if theirs and theirs[0][0] != "pending":
        return 0
    ours = _select(source, "explanations", PER_RUN["explanations"], "run_id", [run_id])
    if not ours or ours[0][1] == "pending":
        return 0
    if ours[0][9]:
        _copy_blob(source, target, ours[0][9], SyncReport())
    with target.transaction() as conn:
        conn.execute("DELETE FROM explanations WHERE run_id = ?", (run_id,))
        conn.execute(insert_new("explanations", PER_RUN["explanations"]), ours[0])
    return 1
