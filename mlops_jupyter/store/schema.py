"""The store's schema as an ordered list of migrations.

Each migration is SQL applied once, in order, inside the transaction that also bumps
``meta.schema_version``. The whole product's tables exist from version 1 (runs, data,
explanations, models, promotions, audit); later versions only append migrations.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    after: Callable[[sqlite3.Connection], None] | None = None  # Python step, same transaction


_V1 = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS environments (
    id TEXT PRIMARY KEY,                 -- content hash of the description below
    python TEXT NOT NULL,
    platform TEXT NOT NULL,
    packages TEXT NOT NULL,              -- JSON object {name: version}
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,                 -- 32 hex characters
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    started_at REAL NOT NULL,            -- unix seconds, UTC
    ended_at REAL,
    duration_s REAL,
    source TEXT,                         -- cell or script code
    execution_count INTEGER,
    notebook_path TEXT,
    kernel_id TEXT,
    user TEXT,
    host TEXT,
    pid INTEGER,
    git_commit TEXT,
    git_dirty INTEGER,
    environment_id TEXT REFERENCES environments(id),
    history TEXT,                        -- JSON: earlier cells [{execution_count, sha256}]
    tags TEXT,                           -- JSON object
    error TEXT,                          -- traceback of a failed cell
    capture_errors TEXT                  -- JSON list of {step, error}
);
CREATE INDEX IF NOT EXISTS runs_experiment_started ON runs(experiment_id, started_at);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);

CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,                          -- JSON
    source TEXT NOT NULL DEFAULT 'user', -- estimator | cell | user | option
    truncated INTEGER NOT NULL DEFAULT 0,-- 1 when value is a truncated repr, not JSON data
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_key_value ON params(key, value);

CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    value REAL,                          -- NULL for NaN (SQLite stores no NaN); see flag
    flag TEXT,                           -- NULL, 'nan', 'inf' or '-inf'
    timestamp REAL NOT NULL,
    PRIMARY KEY (run_id, key, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metrics_key_value ON metrics(key, value);

CREATE TABLE IF NOT EXISTS datasets (
    hash TEXT PRIMARY KEY,               -- hash_data() result
    kind TEXT NOT NULL,                  -- DataFrame, Series, ndarray, file, ...
    shape TEXT,                          -- JSON list
    schema TEXT,                         -- JSON [{name, dtype}]
    profile TEXT,                        -- JSON per-column profile
    source_path TEXT,
    source_hash TEXT,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS run_datasets (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    dataset_hash TEXT NOT NULL REFERENCES datasets(hash),
    role TEXT NOT NULL,                  -- train | eval | ...
    variable TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, dataset_hash, role, variable)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_datasets_hash ON run_datasets(dataset_hash);

CREATE TABLE IF NOT EXISTS explanations (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'unsupported')),
    reason TEXT,
    explainer TEXT,
    feature_names TEXT,                  -- JSON list
    classes TEXT,                        -- JSON list or NULL
    mean_abs TEXT,                       -- JSON: {class: [..]} or [..]
    base_values TEXT,                    -- JSON
    n_rows INTEGER,
    blob TEXT,                           -- hash of the SHAP matrix blob
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS explanations_run ON explanations(run_id);

CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- model | figure | file | ...
    blob TEXT NOT NULL,                  -- blob hash
    size INTEGER NOT NULL,
    media_type TEXT,
    meta TEXT,                           -- JSON
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    risk_tier TEXT NOT NULL DEFAULT 'medium' CHECK (risk_tier IN ('low', 'medium', 'high')),
    description TEXT,
    created_at REAL NOT NULL,
    created_by TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS model_versions (
    model_name TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    blob TEXT,
    stage TEXT NOT NULL DEFAULT 'none'
        CHECK (stage IN ('none', 'staging', 'production', 'archived')),
    created_at REAL NOT NULL,
    created_by TEXT,
    PRIMARY KEY (model_name, version)
) WITHOUT ROWID;
-- at most one production version per model
CREATE UNIQUE INDEX IF NOT EXISTS one_production_version
    ON model_versions(model_name) WHERE stage = 'production';

CREATE TABLE IF NOT EXISTS promotion_requests (
    id INTEGER PRIMARY KEY,
    model_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL CHECK (to_stage IN ('staging', 'production', 'archived')),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'rejected', 'applied', 'blocked', 'cancelled')),
    requester TEXT NOT NULL,
    comment TEXT,
    gate_results TEXT,                   -- JSON list of {gate, passed, message}
    required_signoffs INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    closed_at REAL,
    FOREIGN KEY (model_name, version) REFERENCES model_versions(model_name, version)
);
CREATE INDEX IF NOT EXISTS promotion_requests_model ON promotion_requests(model_name, version);

CREATE TABLE IF NOT EXISTS signoffs (
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id),
    user TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (request_id, user)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS card_sections (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,               -- run id or "model:version"
    section TEXT NOT NULL,
    content TEXT NOT NULL,
    author TEXT,
    revision INTEGER NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (subject, section, revision)
);

CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,               -- canonical JSON
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE            -- sha256(prev_hash + canonical entry)
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""

# the latest value per (run, key) follows every new or updated point of a later step
_LATEST_METRIC_BODY = """BEGIN
    INSERT INTO latest_metrics (run_id, key, step, value)
    VALUES (NEW.run_id, NEW.key, NEW.step, NEW.value)
    ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value
    WHERE excluded.step >= latest_metrics.step;
END;
"""

# v2: each run's latest value per metric, kept by a trigger and indexed by (key, value), so that
# "sort 100,000 runs by a metric" walks an index instead of a correlated subquery per run.
_V2 = (
    """
CREATE TABLE IF NOT EXISTS latest_metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latest_metrics_key_value ON latest_metrics(key, value, run_id);
INSERT OR REPLACE INTO latest_metrics (run_id, key, step, value)
    SELECT run_id, key, step, value FROM metrics m
    WHERE step = (SELECT MAX(step) FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key);
CREATE TRIGGER IF NOT EXISTS latest_metrics_track AFTER INSERT ON metrics
"""
    + _LATEST_METRIC_BODY
)

# v3: signed registry statements. Audit entries carry an SSHSIG signature; a registered
# version's run, blob and model artifact, and every sign-off row, can no longer be changed in
# place (the signed log is the truth and reads check the rows against it; these triggers stop
# the casual edit). The store gets an id, so an anchor file can name it.
_V3 = """
ALTER TABLE audit_log ADD COLUMN signature TEXT;
CREATE TRIGGER IF NOT EXISTS model_versions_fixed BEFORE UPDATE OF model_name, version, run_id,
    blob ON model_versions
BEGIN SELECT RAISE(ABORT, 'a registered version''s run and model blob are immutable'); END;
CREATE TRIGGER IF NOT EXISTS model_versions_no_delete BEFORE DELETE ON model_versions
BEGIN SELECT RAISE(ABORT, 'registered model versions cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS signoffs_no_update BEFORE UPDATE ON signoffs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;
CREATE TRIGGER IF NOT EXISTS signoffs_no_delete BEFORE DELETE ON signoffs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;
CREATE TRIGGER IF NOT EXISTS registered_artifact_no_replace BEFORE INSERT ON artifacts
WHEN EXISTS (SELECT 1 FROM artifacts a JOIN model_versions v ON v.run_id = a.run_id
             AND v.blob = a.blob WHERE a.run_id = NEW.run_id AND a.name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'the model artifact of a registered version is immutable'); END;
CREATE TRIGGER IF NOT EXISTS registered_artifact_no_update BEFORE UPDATE ON artifacts
WHEN EXISTS (SELECT 1 FROM model_versions v WHERE v.run_id = OLD.run_id AND v.blob = OLD.blob)
BEGIN SELECT RAISE(ABORT, 'the model artifact of a registered version is immutable'); END;
CREATE TRIGGER IF NOT EXISTS registered_artifact_no_delete BEFORE DELETE ON artifacts
WHEN EXISTS (SELECT 1 FROM model_versions v WHERE v.run_id = OLD.run_id AND v.blob = OLD.blob)
BEGIN SELECT RAISE(ABORT, 'the model artifact of a registered version is immutable'); END;
"""

SIGNING_MARKER = "signing"


def _v3_after(conn: sqlite3.Connection) -> None:
    """Give the store an id; mark where signed entries begin in a log that already has some."""
    from . import audit_chain

    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,)
    )
    seq, _ = audit_chain.last(conn)
    if seq:
        audit_chain.append(
            conn,
            "mlops-jupyter",
            SIGNING_MARKER,
            "audit_log",
            {
                "unsigned_before": seq + 1,
                "note": "entries before this one were written before signed statements; they "
                "are checked by their hash chain only",
            },
        )


# v4: a curve captured from a cell (a metric computed or assigned step by step in a loop) is
# one row per key, its values packed as float64, so a 10,000-step loop writes 3 rows, not
# 30,000; its last point is also an ordinary metrics row (the metric's value and latest step).
_V4 = """
CREATE TABLE IF NOT EXISTS metric_series (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    "values" BLOB NOT NULL,              -- n little-endian float64, steps 0..n-1
    timestamp REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
"""

# v5: the cells run before a tracked cell, each source stored once and the sequence a shared
# chain of nodes (``cell_history.py``); a run keeps only the newest node's id, so the bytes per
# run stay flat instead of growing with every earlier cell.
_V5 = """
CREATE TABLE IF NOT EXISTS cells (
    hash TEXT PRIMARY KEY,               -- BLAKE3 hex of the source (UTF-8)
    source TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cell_history (
    id TEXT PRIMARY KEY,                 -- node_id(parent, execution_count, cell)
    parent TEXT,                         -- the node before, NULL for a session's first cell
    execution_count INTEGER,
    cell TEXT NOT NULL,                  -- cells.hash (a 16-hex prefix for migrated entries)
    depth INTEGER NOT NULL               -- 0 for the first cell
) WITHOUT ROWID;
ALTER TABLE runs ADD COLUMN history_head TEXT;
"""


def _v5_after(conn: sqlite3.Connection) -> None:
    from . import cell_history

    cell_history.migrate_lists(conn)


# v6: metrics are written with ON CONFLICT upserts (the SQL both engines speak); an updated
# point must move the latest value too, as a replaced one did.
_V6 = (
    """
CREATE TRIGGER IF NOT EXISTS latest_metrics_track_update AFTER UPDATE ON metrics
"""
    + _LATEST_METRIC_BODY
)

# v7: a change number per run, so the runs listing's in-memory index (``run_index.py``)
# re-reads only the runs written since it last looked. Writes are serialised, so the numbers
# are in commit order. A run that already holds the highest number keeps it (a finish writes
# one number, not one per value): readers re-read the runs at the number they last saw.
_NOTE_CHANGE = """
WHEN {run} IS NOT (SELECT run_id FROM run_changes ORDER BY seq DESC LIMIT 1)
BEGIN
    INSERT INTO run_changes (run_id, seq)
    VALUES ({run}, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_changes))
    ON CONFLICT (run_id) DO UPDATE SET seq = excluded.seq;
END;
"""
_V7 = """
CREATE TABLE IF NOT EXISTS run_changes (
    run_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_changes_seq ON run_changes(seq);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS run_changes_{table}_{event.lower()} AFTER {event} ON {table}"
    + _NOTE_CHANGE.format(run="NEW.id" if table == "runs" else "NEW.run_id")
    for table in ("runs", "params", "metrics")
    for event in ("INSERT", "UPDATE")
)

# v8: logged curves packed per write (``curves.py``): a batch of points is one row per metric
# (steps, values and times as little-endian arrays), not one ``metrics`` row per point.
_V8 = """
CREATE TABLE IF NOT EXISTS metric_chunks (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,                -- 0, 1, 2... per run and metric, in write order
    n INTEGER NOT NULL,
    steps BLOB NOT NULL,                 -- n little-endian int64
    "values" BLOB NOT NULL,              -- n little-endian float64 (NaN, inf as themselves)
    times BLOB NOT NULL,                 -- n little-endian float64, seconds since the epoch
    PRIMARY KEY (run_id, key, seq)
) WITHOUT ROWID;
"""

# v9: the (key, value) index on every metric point goes: nothing reads it (sorts and filters use
# latest_metrics), and at a million runs it was five of the ~38 pages each run dirtied.
_V9 = "DROP INDEX IF EXISTS metrics_key_value;"

# v10: production batches recorded against the model version that served them (monitoring):
# the batch's hash, profile and per-feature drift results, never its rows; append-only.
_V10 = """
CREATE TABLE IF NOT EXISTS monitor_batches (
    id TEXT PRIMARY KEY,                 -- 32 hex characters
    model_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    stage TEXT NOT NULL,                 -- the stage the version served from
    batch_id TEXT NOT NULL,              -- the data hash unless the caller named the batch
    data_hash TEXT NOT NULL,
    reference_hash TEXT,                 -- the training data snapshot compared with
    created_at REAL NOT NULL,
    n_rows INTEGER NOT NULL,
    profile TEXT NOT NULL,               -- JSON: the batch's profile
    features TEXT NOT NULL,              -- JSON: per-feature drift results
    decision TEXT NOT NULL CHECK (decision IN ('ok', 'warn', 'drift')),
    drift_share REAL NOT NULL,
    predictions TEXT,                    -- JSON: prediction drift, when predictions were given
    performance TEXT,                    -- JSON: metrics against the labels, when given
    thresholds TEXT NOT NULL,            -- JSON: the policy's monitoring thresholds applied
    recorded_by TEXT,
    FOREIGN KEY (model_name, version) REFERENCES model_versions(model_name, version)
);
CREATE INDEX IF NOT EXISTS monitor_batches_version
    ON monitor_batches(model_name, version, created_at);
CREATE TRIGGER IF NOT EXISTS monitor_batches_no_update BEFORE UPDATE ON monitor_batches
BEGIN SELECT RAISE(ABORT, 'monitored batches are append-only'); END;
CREATE TRIGGER IF NOT EXISTS monitor_batches_no_delete BEFORE DELETE ON monitor_batches
BEGIN SELECT RAISE(ABORT, 'monitored batches are append-only'); END;
"""

# v11: a batch's labels may arrive later (a ``labels`` row for the same batch id, carrying the
# performance), and a batch may keep a sample of its rows (a blob the audit entry names).
_V11 = """
ALTER TABLE monitor_batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'batch'
    CHECK (kind IN ('batch', 'labels'));
ALTER TABLE monitor_batches ADD COLUMN sample TEXT;
CREATE INDEX IF NOT EXISTS monitor_batches_batch_id ON monitor_batches(model_name, batch_id);
"""

# v12: an evaluation snapshot may keep its rows (a content-addressed blob, Parquet or .npy, read
# back only when its hash_data equals the snapshot's hash), for gates computed on stored data.
_V12 = "ALTER TABLE datasets ADD COLUMN rows_blob TEXT;"

# v13: per experiment, the direction a person set for a metric ('max': higher is better, 'min':
# lower is better; NULL: the name rule decides) and which metric is primary (at most one),
# with who set it and when (``metric_settings.py``).
_V13 = """
CREATE TABLE IF NOT EXISTS metric_settings (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    metric TEXT NOT NULL,
    direction TEXT CHECK (direction IN ('min', 'max')),
    is_primary INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    updated_by TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (experiment_id, metric)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS one_primary_metric
    ON metric_settings(experiment_id) WHERE is_primary = 1;
"""

# v14: the history of a finished run's tags (``tag_history.py``): one row per key an edit
# changed -- its value after (NULL: removed) and before, who and when -- appended, never
# updated. The id is unique across stores, so push and pull carry each edit once.
_V14 = """
CREATE TABLE IF NOT EXISTS tag_edits (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT,
    previous TEXT,
    "user" TEXT,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_edits_run ON tag_edits(run_id, at);
CREATE TRIGGER IF NOT EXISTS tag_edits_no_update BEFORE UPDATE ON tag_edits
BEGIN SELECT RAISE(ABORT, 'the history of tag edits is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tag_edits_no_delete BEFORE DELETE ON tag_edits
BEGIN SELECT RAISE(ABORT, 'the history of tag edits is append-only'); END;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _V1),
    Migration(2, "latest metric values, indexed", _V2),
    Migration(3, "signed registry statements", _V3, _v3_after),
    Migration(4, "metric curves packed per key", _V4),
    Migration(5, "earlier cells stored once, as a shared chain", _V5, _v5_after),
    Migration(6, "latest metric values follow upserts", _V6),
    Migration(7, "a change number per run, for the listing index", _V7),
    Migration(8, "logged curves packed per write", _V8),
    Migration(9, "no index on every metric point's value", _V9),
    Migration(10, "production batches and their drift", _V10),
    Migration(11, "labels arriving after their batch; kept sample rows", _V11),
    Migration(12, "evaluation snapshots keep their rows", _V12),
    Migration(13, "metric directions and the primary metric per experiment", _V13),
    Migration(14, "the history of a finished run's tag edits", _V14),
)

LATEST_VERSION = MIGRATIONS[-1].version
