"""The run store: every prune, sweep and sensitivity run in SQLite at $PRUNESCOPE_HOME/runs.db.

Many writers (app sessions, CLI processes, sweep threads) share one file: WAL, a busy
timeout, BEGIN IMMEDIATE and retries keep "database is locked" away from users (DESIGN §7).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TypeVar

from ..disk import disk_full, ensure_free, is_disk_full, writing
from ..errors import BadInput, DiskFull
from ..paths import home
from ..plain import to_plain
from ..reports import PruneReport
from ..specs import PruneSpec
from .owners import owner_alive, owner_token
from .records import Outcome, Run, ended_status, error_text, prune_outcome, run_from_row  # noqa: F401  (the row types: part of the store's face)
from .schema import KINDS, MIGRATIONS, SCHEMA_VERSION, STATES  # noqa: F401

BUSY_TIMEOUT_MS = 5_000
# what a write may need on a full disk: the WAL grows to its auto-checkpoint size (1000 pages
# of 4 kB, SQLite's defaults) before it is reused from its start
WAL_BYTES = 1000 * 4096
WRITE_DEADLINE_S = 60.0  # give up on a write only after this long of back-off
MODEL_FILE = "model.keras"

T = TypeVar("T")


class StoreError(RuntimeError):
    """The run store could not do what was asked (a bug or a broken disk, not bad input)."""


def _json(value: Any) -> str:
    """JSON without NaN (SQLite's json functions reject it): NaN/Inf become null."""
    return json.dumps(to_plain(value), allow_nan=False)


def _spec_dict(spec: Any) -> dict[str, Any]:
    if hasattr(spec, "to_dict"):
        return spec.to_dict()
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"a run spec must be a dict or have to_dict(), not {type(spec).__name__}")


def _filter_columns(spec: Mapping[str, Any]) -> tuple[str, str, str]:
    def name(ref: Any) -> str:
        return str(ref.get("name", "")) if isinstance(ref, Mapping) else str(ref or "")

    methods = spec.get("method") or spec.get("methods") or ""
    if isinstance(methods, (list, tuple)):
        methods = ",".join(str(m) for m in methods)
    return name(spec.get("model")), name(spec.get("data") or spec.get("dataset")), str(methods)


class RunStore:
    """Runs in one SQLite file. Safe to share across threads and processes.

    Each call opens its own short-lived connection, so one store object can serve every
    Streamlit session thread (sqlite3 connections must not cross threads).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else home() / "runs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.artifacts = self.path.parent / "runs"
        self._unmarked: dict[int, tuple[str, str]] = {}  # run id -> (status, error) a full disk kept out
        with self._full_disk(), self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
        self._migrate()
        self.interrupted_on_open = self.reap()

    # -- connections and transactions ---------------------------------------------------
    @contextmanager
    def _full_disk(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            self._raise_if_full(exc)
            raise

    def _raise_if_full(self, exc: sqlite3.OperationalError) -> None:
        """A full disk under the database reads as DiskFull; SQLite has rolled back, the file is intact."""
        if is_disk_full(exc, self.path.parent):
            raise disk_full(self.path, WAL_BYTES, "the run database") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we issue BEGIN ourselves, so the module never starts
        # deferred transactions behind our back (they deadlock-upgrade under contention).
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL; a lost last commit only
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one BEGIN IMMEDIATE transaction, retrying while the file is busy."""
        deadline = time.monotonic() + WRITE_DEADLINE_S
        delay = 0.005
        while True:
            try:
                with self._connect() as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(conn)
                        conn.execute("COMMIT")
                        return result
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
            except sqlite3.OperationalError as exc:
                self._raise_if_full(exc)
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise StoreError(f"run store {self.path} stayed busy for {WRITE_DEADLINE_S:.0f} s: {exc}") from exc
                # jitter keeps retrying writers from waking in lockstep
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        deadline = time.monotonic() + WRITE_DEADLINE_S
        while True:
            try:
                with self._connect() as conn:
                    return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                self._raise_if_full(exc)  # a reader may have to create the -shm file
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise StoreError(f"run store {self.path}: {exc}") from exc
                time.sleep(0.05)

    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        def upgrade(conn: sqlite3.Connection) -> None:
            # read inside the write lock, so two processes never run the same step twice
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this PruneScope ({SCHEMA_VERSION}): upgrade PruneScope"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

        self._write(upgrade)

    def reap(self) -> list[int]:
        """Rows still `running` whose process is gone become `interrupted`; returns their ids.

        Run on open, and again whenever a read meets such a row, so a long-lived store (the
        app's) sees a CLI that was killed after the store was opened as interrupted too.
        """
        for run_id, (status, error) in list(self._unmarked.items()):
            self.fail(run_id, error, status=status)
            del self._unmarked[run_id]

        def mark(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute("SELECT id, owner FROM runs WHERE status = 'running'").fetchall()
            dead = [row["id"] for row in rows if not owner_alive(row["owner"])]
            for run_id in dead:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, "
                    "error = COALESCE(error, 'the process running it stopped before it finished') WHERE id = ?",
                    (time.time(), run_id),
                )
            return dead

        return self._write(mark)

    # -- the life of a run --------------------------------------------------------------
    def begin(self, kind: str, spec: Any, name: str = "", source: str = "") -> int:
        """A new `running` row; returns its id."""
        if kind not in KINDS:
            raise ValueError(f"run kind must be one of {', '.join(KINDS)}, not {kind!r}")
        spec_dict = _spec_dict(spec)
        model, dataset, method = _filter_columns(spec_dict)

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs (kind, status, spec_json, created_at, name, model, dataset, method, owner, source) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, _json(spec_dict), time.time(), name, model, dataset, method, owner_token(), source),
            )
            return int(cursor.lastrowid)

        return self._write(insert)

    def add_sweep_point(self, run_id: int, row: Mapping[str, Any]) -> int:
        """Append one finished point (a flat dict: method, target_sparsity, sparsity, metric keys)
        to a running sweep or sensitivity run; returns its sequence number. Thread-safe, so a
        sweep's `on_point` callback can call it from worker threads."""

        def append(conn: sqlite3.Connection) -> int:
            status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if status is None:
                raise KeyError(f"no run {run_id}")
            seq = conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM sweep_points WHERE run_id = ?",
                               (run_id,)).fetchone()[0]
            conn.execute("INSERT INTO sweep_points (run_id, seq, row_json, created_at) VALUES (?, ?, ?, ?)",
                         (run_id, seq, _json(dict(row)), time.time()))
            return int(seq)

        return self._write(append)

    def complete(self, run_id: int, outcome: Outcome) -> None:
        """Copy the artifact into place first, then mark the row `completed`."""
        artifact = None
        if outcome.artifact:
            artifact = str(self._place_artifact(run_id, Path(outcome.artifact)))

        def finish(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET status = 'completed', finished_at = ?, metrics_json = ?, layers_json = ?, "
                "details_json = ?, environment_json = ?, artifact_path = ?, error = NULL WHERE id = ?",
                (time.time(), _json(dict(outcome.metrics)), _json(list(outcome.layers)),
                 _json(dict(outcome.details)), _json(dict(outcome.environment)), artifact, run_id),
            )

        self._write(finish)

    def fail(self, run_id: int, error: str, status: str = "failed") -> None:
        if status not in ("failed", "interrupted"):
            raise ValueError(f"a run ends failed or interrupted, not {status!r}")
        self._write(lambda conn: conn.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
            (status, time.time(), error[:2000], run_id),
        ))

    def artifact_target(self, run_id: int) -> Path:
        """Where run `run_id`'s model file lives."""
        return self.artifacts / str(run_id) / MODEL_FILE

    def _place_artifact(self, run_id: int, source: Path) -> Path:
        """Copy to a temp name in the run's folder and rename: a reader sees all or nothing
        (a file already written there, atomically, stays as it is)."""
        target = self.artifact_target(run_id)
        if source.resolve() == target.resolve():
            return target
        folder = target.parent
        size = source.stat().st_size
        ensure_free(self.artifacts.parent, size, f"run {run_id}'s {MODEL_FILE}")
        tmp = folder / f".{MODEL_FILE}.{os.getpid()}.tmp"
        try:
            with writing(self.artifacts.parent, size, f"run {run_id}'s {MODEL_FILE}"):
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)  # a half copy would only hold the space a retry needs
        return target

    def record(self, kind: str, spec: Any, work: Callable[[], T], outcome: Callable[[T], Outcome],
               name: str = "", source: str = "") -> tuple[int, T]:
        """Mark running, do the work, then completed (or failed / interrupted); (run id, result)."""
        run_id = self.begin(kind, spec, name=name, source=source)
        return run_id, self._finish(run_id, work, outcome)

    def _finish(self, run_id: int, work: Callable[[], T], outcome: Callable[[T], Outcome]) -> T:
        """The one path from `running` to an end state: every record method ends through here."""
        try:
            result = work()
            # inside the try: an artifact that cannot be placed (a full disk) fails the run,
            # it never leaves it `running` or marks a partial file completed
            self.complete(run_id, outcome(result))
        except BaseException as exc:
            self._fail_quietly(run_id, exc)
            raise
        return result

    def _fail_quietly(self, run_id: int, exc: BaseException) -> None:
        """Mark the run as `exc` ended it; on a full disk, `exc` is still what is raised and the
        mark waits for the next `reap` (the row must not read `running` once space is freed)."""
        status, error = ended_status(exc), error_text(exc)
        try:
            self.fail(run_id, error, status=status)
        except DiskFull:
            self._unmarked[run_id] = (status, error)

    def record_prune(self, spec: PruneSpec, work: Callable[[], PruneReport], name: str = "",
                     source: str = "app", save: Optional[Callable[[str], str]] = None) -> tuple[int, PruneReport]:
        """`work()` prunes `spec` (e.g. `lambda: executor.prune(spec, on_progress)`); stored as it goes.

        Prunes write no file: `save(path)` (e.g. `lambda path: executor.save(spec, path)`)
        writes the model straight into the run's folder before the row says completed, and
        the report returned names that file. Without `save` the run keeps no model file.
        """
        run_id = self.begin("prune", spec, name=name, source=source)

        def work_and_save() -> PruneReport:
            report = work()
            if save is not None and not report.model_path:
                report = dataclasses.replace(report, model_path=str(save(str(self.artifact_target(run_id)))))
            return report

        return run_id, self._finish(run_id, work_and_save, prune_outcome)

    def record_points(self, kind: str, spec: Any, work: Callable[[Callable[[Mapping[str, Any]], None]], T],
                      name: str = "", source: str = "app",
                      outcome: Optional[Callable[[T], Outcome]] = None) -> tuple[int, T]:
        """A sweep or sensitivity run: `work(on_point)` streams each finished point into the store.

        With no `outcome`, the row's metrics hold the point count and, when the result has
        `to_json_dict()`, its baseline and timing. It ends like `record`: a run stopped by
        control flow (a Streamlit rerun) is `interrupted`, keeping the points it finished.
        """
        if kind not in ("sweep", "sensitivity"):
            raise ValueError(f"record_points stores sweep or sensitivity runs, not {kind!r}")
        run_id = self.begin(kind, spec, name=name, source=source)

        def on_point(row: Mapping[str, Any]) -> None:
            self.add_sweep_point(run_id, row)

        def default_outcome(result: T) -> Outcome:
            raw = result.to_json_dict() if hasattr(result, "to_json_dict") else {}
            metrics = {"points": len(self.points(run_id))}
            for key in ("baseline", "timing_s"):
                if key in raw:
                    metrics[key] = raw[key]
            return Outcome(metrics=metrics, environment=raw.get("environment", {}))

        return run_id, self._finish(run_id, lambda: work(on_point), outcome or default_outcome)

    # -- reading ------------------------------------------------------------------------
    def get(self, run_id: int) -> Run:
        rows = self._read_runs(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise BadInput(f"there is no run {run_id}: list them with `python -m pruning runs`")
        return run_from_row(rows[0])

    def list(self, kind: Optional[str] = None, model: Optional[str] = None, dataset: Optional[str] = None,
             method: Optional[str] = None, status: Optional[str] = None) -> list[Run]:
        """Runs, newest first, filtered by any of the given columns."""
        where, params = [], []
        for column, value in (("kind", kind), ("model", model), ("dataset", dataset),
                              ("method", method), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
        return [run_from_row(row) for row in self._read_runs(sql, params)]

    def _read_runs(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run rows, with any left `running` by a dead process reaped first (they read as interrupted)."""
        rows = self._read(sql, params)
        if self._unmarked or any(row["status"] == "running" and not owner_alive(row["owner"]) for row in rows):
            try:
                self.reap()
            except DiskFull:
                return rows  # still full: show what is stored, reap once space is freed
            rows = self._read(sql, params)
        return rows

    def points(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._read("SELECT row_json FROM sweep_points WHERE run_id = ? ORDER BY seq", (int(run_id),))
        return [json.loads(row["row_json"]) for row in rows]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM runs")[0][0])

    # -- editing ------------------------------------------------------------------------
    def rename(self, run_id: int, name: str) -> None:
        self._update(run_id, "name", name.strip()[:200])

    def set_note(self, run_id: int, note: str) -> None:
        self._update(run_id, "note", note.strip()[:5000])

    def set_detail(self, run_id: int, key: str, value: Any) -> None:
        """One entry of the row's details (e.g. a TFLite export's agreement), set atomically."""
        def merge(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT details_json FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise BadInput(f"there is no run {run_id}: list them with `python -m pruning runs`")
            details = json.loads(row["details_json"])
            details[key] = value
            conn.execute("UPDATE runs SET details_json = ? WHERE id = ?", (_json(details), run_id))

        self._write(merge)

    def _update(self, run_id: int, column: str, value: str) -> None:
        def update(conn: sqlite3.Connection) -> None:
            if conn.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, int(run_id))).rowcount == 0:
                raise BadInput(f"there is no run {run_id}: list them with `python -m pruning runs`")

        self._write(update)

    def delete(self, run_id: int) -> None:
        """The row, its sweep points and its artifacts."""
        def remove(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sweep_points WHERE run_id = ?", (int(run_id),))
            if conn.execute("DELETE FROM runs WHERE id = ?", (int(run_id),)).rowcount == 0:
                raise BadInput(f"there is no run {run_id}: list them with `python -m pruning runs`")

        self._write(remove)
        shutil.rmtree(self.artifacts / str(int(run_id)), ignore_errors=True)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


_RUN_COLUMNS = "*, (SELECT COUNT(*) FROM sweep_points p WHERE p.run_id = runs.id) AS stored_points"


def open_store(path: str | Path | None = None) -> RunStore:
    """The store at `path` (default $PRUNESCOPE_HOME/runs.db), created or migrated as needed."""
    return RunStore(path)
