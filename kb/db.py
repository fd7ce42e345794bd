"""Opening a KB: path resolution, SQLite pragmas, forward migrations."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Optional

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
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

    def describe(self) -> str:
        if self.is_seed:
            return f"bundled seed KB (read-only) at {self.path}"
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
        return f"{location.path} is not a SQLite file: pass a KB file with --kb (or create one with `medicalrec kb init --kb PATH`)"
    return f"cannot open the KB at {location.path} ({reason}): pass a writable path with --kb"


def _set_pragmas(dbapi_connection: sqlite3.Connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def make_engine(path: Path, *, readonly: bool = False) -> Engine:
    if readonly:
        if not path.exists():
            raise KBError(f"no KB at {path}: create one with `medicalrec kb init --kb {path}` or pass another --kb")
        uri = f"file:{path}?mode=ro"
        engine = create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
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


Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    (1, "initial schema: papers, models, datasets, experiments, feature_values, measurements", _migration_1_initial),
    (2, "measurement review: average, review_status, reviewed_by/at, review_log; unique per average", _migration_2_review),
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


def migrate(engine: Engine) -> list[int]:
    """Apply pending forward migrations, each in its own transaction; returns those applied.

    SQLite's procedure for schema changes: foreign keys off (possible only outside a transaction)
    so that dropping a rebuilt table does not cascade into the tables that reference it, then
    `PRAGMA foreign_key_check` before the commit, so a migration cannot leave a dangling reference.
    """
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        conn.commit()
        # Looked up without the write lock: an up-to-date KB opens while another process writes.
        applied = applied_versions(conn)
    done: list[int] = []
    for version, name, apply in MIGRATIONS:
        if version in applied:
            continue
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            conn.commit()
            try:
                with conn.begin():
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    if version in applied_versions(conn):  # another process got there first
                        continue
                    if version == 1:
                        schema.SchemaMigration.__table__.create(conn, checkfirst=True)
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
                done.append(version)  # after the commit: a failed commit applied nothing
            finally:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                conn.commit()
    return done


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        versions = applied_versions(conn)
    return max(versions) if versions else 0


def outdated(location: KBLocation, version: int) -> str:
    return (f"{location.path} is a version-{version} KB and this medicalrec reads version {schema.SCHEMA_VERSION}:"
            f" migrate it with `medicalrec kb init --kb {location.path}` (or pass another --kb)")
