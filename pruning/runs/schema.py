"""The run store's SQLite schema as data: its version, the run kinds and states, the migrations.

store.py applies MIGRATIONS in one transaction; a new column is a new step here, never an edit.
"""
from __future__ import annotations

SCHEMA_VERSION = 2
KINDS = ("prune", "sweep", "sensitivity")
STATES = ("running", "completed", "failed", "interrupted")

# MIGRATIONS[i] takes the schema from version i to i + 1; a fresh file runs them all.
# Never edit a released step: add a new one, so old files upgrade the same way new ones build.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1: the first release kept only what a prune printed
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            metrics_json TEXT,
            created_at REAL NOT NULL,
            finished_at REAL
        )""",
    ),
    (  # 1 -> 2: what history, comparison, export and reports need
        "ALTER TABLE runs ADD COLUMN name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN model TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN dataset TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN method TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN environment_json TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE runs ADD COLUMN layers_json TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE runs ADD COLUMN details_json TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE runs ADD COLUMN error TEXT",
        "ALTER TABLE runs ADD COLUMN artifact_path TEXT",
        "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT ''",
        # v1 stored the spec only: recover the filter columns from it
        """UPDATE runs SET
            model = COALESCE(json_extract(spec_json, '$.model.name'), ''),
            dataset = COALESCE(json_extract(spec_json, '$.data.name'), ''),
            method = COALESCE(json_extract(spec_json, '$.method'), '')""",
        "CREATE INDEX runs_by_model ON runs (model, dataset)",
        """CREATE TABLE sweep_points (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            row_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION
