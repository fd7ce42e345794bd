"""Opening a KB: path resolution, SQLite pragmas, forward migrations."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Optional

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel, create_engine

from ..errors import UserError
from . import schema
from .schema import FEATURES

ENV_VAR = "MEDICALREC_KB"


class KBError(UserError):
    """A KB problem the user can fix; the message is one line that names the fix."""


@dataclass(frozen=True)
class KBLocation:
    path: Path
    is_seed: bool = False
    source: str = "--kb"  # --kb | MEDICALREC_KB | user data dir | bundled seed
    storage_readonly: bool = False  # opened immutable: the file or its folder cannot be written

    def describe(self) -> str:
        if self.is_seed:
            return f"bundled seed KB (read-only) at {self.path}"
        if self.storage_readonly:
            return f"KB at {self.path} (from {self.source}), opened read-only: its storage is not writable"
        return f"KB at {self.path} (from {self.source})"


def seed_path() -> Path:
    return Path(str(resources.files("medicalrec.kb").joinpath("data", "seed.db")))


def user_kb_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("medicalrec", appauthor=False)) / "kb.db"


def resolve(kb: Optional[str | Path] = None) -> KBLocation:
    """--kb, else $MEDICALREC_KB, else the user data dir's KB, else the bundled seed."""
    if kb:
        return KBLocation(Path(kb).expanduser(), source="--kb")
    if os.environ.get(ENV_VAR):
        return KBLocation(Path(os.environ[ENV_VAR]).expanduser(), source=ENV_VAR)
    user = user_kb_path()
    if user.exists():
        return KBLocation(user, source="user data dir")
    return KBLocation(seed_path(), is_seed=True, source="bundled seed")


def writable(location: KBLocation) -> KBLocation:
    """A location a write command may use: the seed is never written; the user's KB starts as
    a copy of it."""
    if not location.is_seed:
        return location
    target = user_kb_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(location.path, target)
    return KBLocation(target, source="user data dir (initialised from the bundled seed)")


def not_a_kb(location: KBLocation) -> str:
    return (f"{location.path} is not a medicalrec KB (no schema_migrations table): pass a KB file with --kb"
            " (or create one with `medicalrec kb init --kb PATH`)")


def open_error(location: KBLocation, exc: BaseException) -> str:
    """The one-line message for a KB file that cannot be opened."""
    reason = str(getattr(exc, "orig", None) or getattr(exc, "strerror", None) or exc).splitlines()[0]
    if "file is not a database" in reason:
        if _looks_like_sqlite(location.path):
            return damaged(location, reason)
        return f"{location.path} is not a SQLite file: pass a KB file with --kb (or create one with `medicalrec kb init --kb PATH`)"
    if "malformed" in reason or "disk image" in reason or "database corrupt" in reason:
        return damaged(location, reason)
    if "disk is full" in reason or "No space left" in reason:
        return f"the disk holding {location.path} ({mount_point(location.path)}) is full: free space there or pass another --kb"
    if ("readonly" in reason or "read-only" in reason or "Read-only" in reason
            or (location.path.exists() and storage_is_readonly(location.path))):
        return (f"cannot write the KB at {location.path}: its storage is read-only ({reason});"
                " copy it to writable storage and pass that path with --kb")
    return f"cannot open the KB at {location.path} ({reason}): pass a writable path with --kb"


SQLITE_MAGIC = b"SQLite format 3\x00"


def _looks_like_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def damaged(location: KBLocation, reason: str) -> str:
    """A SQLite file cut short or overwritten: a writable path would not help; a backup would."""
    size = location.path.stat().st_size if location.path.exists() else 0
    return (f"{location.path} is a damaged SQLite file ({reason}; {size:,} bytes, truncated or overwritten):"
            " restore it from a backup, or rebuild it with `medicalrec kb init` and `medicalrec kb import`")


def mount_point(path: Path) -> str:
    """The mount point of the filesystem that holds `path` (the disk a full-disk error is about)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def newer(location: KBLocation, version: int) -> str:
    return (f"{location.path} was written by a newer medicalrec (schema version {version}; this one knows up to"
            f" {schema.SCHEMA_VERSION}): upgrade medicalrec to one that reads schema version {version} to write it")


def _set_pragmas(dbapi_connection: sqlite3.Connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


# How long a writer waits for another's lock (a migration of a large KB, an import) before it fails.
BUSY_TIMEOUT_S = 60.0


def file_uri(path: Path, **params: str) -> str:
    """A SQLite URI naming exactly `path`: '#', '?', '%' and the like are percent-encoded, so a
    file name is never read as a query string or an escape."""
    from urllib.parse import quote, urlencode

    query = f"?{urlencode(params)}" if params else ""
    return "file:" + quote(os.path.abspath(path), safe="/") + query


def storage_is_readonly(path: Path) -> bool:
    """True when the KB file, or the folder its journal files go to, cannot be written (a read-only
    mount; root ignores permission bits, so the mount flag is what counts)."""
    try:
        folder = os.statvfs(path.parent if path.parent != Path("") else Path("."))
    except OSError:
        return False
    return bool(folder.f_flag & os.ST_RDONLY) or not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK)


def make_engine(path: Path, *, readonly: bool = False, immutable: bool = False) -> Engine:
    # A creator, not a sqlite:/// URL: SQLAlchemy would read '?' and '#' in the path as URL syntax.
    if readonly:
        if not path.exists():
            raise KBError(f"no KB at {path}: create one with `medicalrec kb init --kb {path}` or pass another --kb")
        # immutable: on read-only storage SQLite cannot create the WAL index, and nothing can change there.
        uri = file_uri(path, mode="ro", **({"immutable": "1"} if immutable else {}))
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = file_uri(path)
        engine = create_engine("sqlite://", poolclass=QueuePool, creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S))
    event.listen(engine, "connect", _set_pragmas)
    return engine


# ---------------------------------------------------------------- migrations

# Which of several measurements of one metric stands for an experiment in a one-value-per-metric
# view: the test split first, then external, then cv; among averages the source's unqualified
# figure first, then macro (the usual headline for imbalanced classes), weighted, micro.
SPLIT_ORDER = "CASE {p}split WHEN 'test' THEN 0 WHEN 'external' THEN 1 WHEN 'cv' THEN 2 ELSE 3 END"
AVERAGE_ORDER = "CASE {p}average WHEN '' THEN 0 WHEN 'macro' THEN 1 WHEN 'weighted' THEN 2 ELSE 3 END"
ACCEPTED = "review_status = 'accepted'"


def measurement_order(prefix: str = "") -> str:
    """ORDER BY terms that put the measurement to show for a metric first (then the oldest row)."""
    return f"{SPLIT_ORDER.format(p=prefix)}, {AVERAGE_ORDER.format(p=prefix)}, {prefix}id"


def _wide_view_sql() -> str:
    feature_columns = ",\n  ".join(
        f"MAX(CASE WHEN f.feature = '{name}' THEN COALESCE(f.value_text, f.value_num) END) AS {name}"
        for name in FEATURES
    )
    # Only accepted measurements are facts; those waiting for review stay out of the view.
    metric_columns = ",\n  ".join(
        f"(SELECT value FROM measurements ms WHERE ms.experiment_id = e.id AND ms.metric = '{m}'"
        f" AND ms.{ACCEPTED} ORDER BY {measurement_order('ms.')} LIMIT 1) AS {m}"
        for m in schema.METRICS
    )
    return f"""
CREATE VIEW experiment_wide AS
SELECT
  e.id AS experiment_id, p.id AS paper_id, p.doi, p.ref_id, p.title, p.year, p.source_file,
  m.name AS model, m.family AS model_family, d.name AS dataset, e.model_raw, e.dataset_raw,
  e.setting, e.origin,
  {feature_columns},
  {metric_columns}
FROM experiments e
JOIN papers p ON p.id = e.paper_id
JOIN models m ON m.id = e.model_id
LEFT JOIN datasets d ON d.id = e.dataset_id
JOIN feature_values f ON f.experiment_id = e.id
GROUP BY e.id
"""


def _migration_1_initial(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)
    conn.execute(text(_wide_view_sql()))


def _rebuild_measurements(conn: Connection, old_columns: list[str]) -> None:
    """SQLite cannot change a table's UNIQUE constraint in place: build the current table beside
    it, copy every row (ids kept), drop the old one, rename, recreate the indexes."""
    table = schema.Measurement.__table__
    ddl = str(CreateTable(table).compile(dialect=conn.dialect)).strip()
    conn.exec_driver_sql(ddl.replace("CREATE TABLE measurements ", "CREATE TABLE measurements_new ", 1))
    kept = ", ".join(c for c in old_columns if c in table.c)  # new columns take their server defaults
    conn.exec_driver_sql(f"INSERT INTO measurements_new ({kept}) SELECT {kept} FROM measurements")
    conn.exec_driver_sql("DROP TABLE measurements")  # its indexes go with it
    conn.exec_driver_sql("ALTER TABLE measurements_new RENAME TO measurements")
    for index in table.indexes:
        index.create(conn)


def _migration_2_review(conn: Connection) -> None:
    # The view reads measurements: SQLite refuses to rename a table while a view is broken, and
    # the view itself changes (accepted measurements only, the new metrics).
    conn.exec_driver_sql("DROP VIEW IF EXISTS experiment_wide")
    columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(measurements)")]
    # Migration 1 builds tables from the current models, so a KB created now already has the
    # version-2 measurements table; only a KB created at version 1 needs the rebuild.
    if "average" not in columns:
        _rebuild_measurements(conn, columns)
    schema.ReviewLog.__table__.create(conn, checkfirst=True)
    conn.execute(text(_wide_view_sql()))


def _migration_3_benchmarks(conn: Connection) -> None:
    # A generated column: source_kind always agrees with origin, whoever writes the row
    # (import, extract, validate or a benchmark import), and old rows are mapped without an UPDATE.
    columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_xinfo(experiments)")]
    if "source_kind" not in columns:
        conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN source_kind TEXT"
                             f" GENERATED ALWAYS AS ({schema.SOURCE_KIND_SQL}) VIRTUAL")
    for table in (schema.BenchmarkRun, schema.FactLink, schema.DatasetMetadata):
        table.__table__.create(conn, checkfirst=True)
        for index in table.__table__.indexes:
            index.create(conn, checkfirst=True)


def _identity_backfill(conn: Connection) -> None:
    """The identity of every imported experiment stored before migration 4, computed from what it
    stored, by the function the importer uses (records.experiment_identity)."""
    from .records import experiment_identity

    experiments = conn.exec_driver_sql(
        "SELECT e.id, e.paper_id, COALESCE(p.ref_id, p.doi), e.model_raw, e.dataset_raw, e.notes FROM experiments e"
        " JOIN papers p ON p.id = e.paper_id WHERE e.origin = 'import' AND e.identity IS NULL ORDER BY e.id").fetchall()
    if not experiments:
        return
    features: dict[int, dict] = {}
    for experiment_id, feature, value_num, value_text in conn.exec_driver_sql(
            "SELECT experiment_id, feature, value_num, value_text FROM feature_values"):
        features.setdefault(experiment_id, {})[feature] = value_text if value_text is not None else value_num
    metrics: dict[int, dict] = {}
    for experiment_id, metric, value in conn.exec_driver_sql(
            "SELECT experiment_id, metric, value FROM measurements WHERE method = 'import' ORDER BY id"):
        metrics.setdefault(experiment_id, {}).setdefault(metric, value)
    seen: dict[tuple[int, str], int] = {}
    for experiment_id, paper_id, ref_id, model_raw, dataset_raw, notes in experiments:
        args = (ref_id, model_raw, dataset_raw, features.get(experiment_id, {}), metrics.get(experiment_id, {}), notes)
        content = experiment_identity(*args)
        seen[(paper_id, content)] = occurrence = seen.get((paper_id, content), 0) + 1
        conn.exec_driver_sql("UPDATE experiments SET identity = ?, ref_id = ? WHERE id = ?",
                             (experiment_identity(*args, occurrence=occurrence), ref_id, experiment_id))


def _migration_4_identity(conn: Connection) -> None:
    columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_xinfo(experiments)")]
    for column in ("identity", "ref_id"):
        if column not in columns:
            conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN {column} TEXT")
    _identity_backfill(conn)
    conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ux_experiments_identity ON experiments (paper_id, identity)")


def _migration_5_file_limits(conn: Connection) -> None:
    """file_status gains the statuses too_large and timeout: SQLite cannot change a CHECK in place,
    so the table is rebuilt beside the old one and its rows copied (a KB created by migration 1
    today already has the current table)."""
    ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'file_status'").scalar()
    if ddl is None or "'too_large'" in ddl:
        return
    table = schema.FileStatus.__table__
    columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(file_status)")]
    create = str(CreateTable(table).compile(dialect=conn.dialect)).strip()
    conn.exec_driver_sql(create.replace("CREATE TABLE file_status ", "CREATE TABLE file_status_new ", 1))
    kept = ", ".join(c for c in columns if c in table.c)
    conn.exec_driver_sql(f"INSERT INTO file_status_new ({kept}) SELECT {kept} FROM file_status")
    conn.exec_driver_sql("DROP TABLE file_status")
    conn.exec_driver_sql("ALTER TABLE file_status_new RENAME TO file_status")
    for index in table.indexes:
        index.create(conn)


Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    (1, "initial schema: papers, models, datasets, experiments, feature_values, measurements", _migration_1_initial),
    (2, "measurement review: average, review_status, reviewed_by/at, review_log; unique per average", _migration_2_review),
    (3, "benchmark evidence: experiments.source_kind, benchmark_runs, fact_links, dataset_metadata", _migration_3_benchmarks),
    (4, "import identity: experiments.identity (what sets a row apart) and experiments.ref_id", _migration_4_identity),
    (5, "file statuses too_large and timeout (per-file limits of extract)", _migration_5_file_limits),
]


def applied_versions(conn: Connection) -> set[int]:
    has_table = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'")
    ).first()
    if not has_table:
        return set()
    return {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One SQLite transaction around everything inside, DDL and reads included.

    Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so a CREATE TABLE, or
    the SELECT that checks a row before it is changed, would otherwise run outside it; BEGIN
    IMMEDIATE also takes the write lock up front, so a concurrent writer waits instead of racing.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def migrate(engine: Engine, location: Optional[KBLocation] = None) -> list[int]:
    """Apply the pending forward migrations, all in one exclusive transaction; returns those applied.

    Two processes creating one new KB: the second waits for the first's lock (BUSY_TIMEOUT_S),
    then finds the versions applied and has nothing to do. SQLite's procedure for schema changes:
    foreign keys off (possible only outside a transaction) so that dropping a rebuilt table does
    not cascade into the tables that reference it, then `PRAGMA foreign_key_check` before the
    commit, so a migration cannot leave a dangling reference. A KB of a newer schema is refused.
    """
    where = location or KBLocation(Path(str(engine.url.database or "KB")))
    with engine.connect() as conn:
        # Looked up without the write lock: an up-to-date KB opens while another process writes.
        applied = applied_versions(conn)
    _refuse_newer(where, applied)
    if all(version in applied for version, _, _ in MIGRATIONS):
        return []
    # SQLite answers "database is locked" at once, without waiting, where waiting could deadlock:
    # a connection that holds a read lock and needs the write lock (the switch to WAL does) while
    # another process creates the same KB. Everything below is one transaction, rolled back on
    # failure, so it is simply tried again until the other process is done.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return _apply_pending(engine, where)
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.02, 0.2))


def _apply_pending(engine: Engine, where: KBLocation) -> list[int]:
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")  # not allowed inside a transaction
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        conn.commit()
        done: list[int] = []
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
                applied = applied_versions(conn)  # under the lock: what another process applied counts
                _refuse_newer(where, applied)
                schema.SchemaMigration.__table__.create(conn, checkfirst=True)
                for version, name, apply in MIGRATIONS:
                    if version in applied:
                        continue
                    try:
                        apply(conn)
                    except IntegrityError as exc:
                        reason = str(exc.orig).splitlines()[0]
                        raise KBError(f"cannot migrate the KB to schema version {version} ({reason}); it was left"
                                      " unchanged: repair that row with sqlite3 or pass another --kb") from exc
                    dangling = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        raise KBError(f"cannot migrate the KB to schema version {version} ({len(dangling)} row(s) of"
                                      f" {dangling[0][0]} point at missing {dangling[0][2]} rows); it was left"
                                      " unchanged: repair those rows with sqlite3 or pass another --kb")
                    conn.execute(
                        text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                        {"v": version, "n": name, "t": schema.utcnow()},
                    )
                    done.append(version)
        except BaseException:
            done = []  # rolled back: nothing was applied
            raise
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.commit()
    return done


def _refuse_newer(location: KBLocation, applied: set[int]) -> None:
    if applied and max(applied) > schema.SCHEMA_VERSION:
        raise KBError(newer(location, max(applied)))


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        versions = applied_versions(conn)
    return max(versions) if versions else 0


def outdated(location: KBLocation, version: int) -> str:
    return (f"{location.path} is a version-{version} KB and this medicalrec reads version {schema.SCHEMA_VERSION}:"
            f" migrate it with `medicalrec kb init --kb {location.path}` (or pass another --kb)")
