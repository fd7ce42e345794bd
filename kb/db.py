"""Opening a KB: path resolution, SQLite pragmas, forward migrations."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
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

def _wide_view_sql() -> str:
    feature_columns = ",\n  ".join(
        f"MAX(CASE WHEN f.feature = '{name}' THEN COALESCE(f.value_text, f.value_num) END) AS {name}"
        for name in FEATURES
    )
    metric_columns = ",\n  ".join(
        f"(SELECT value FROM measurements ms WHERE ms.experiment_id = e.id AND ms.metric = '{m}'"
        f" ORDER BY CASE ms.split WHEN 'test' THEN 0 WHEN 'external' THEN 1 WHEN 'cv' THEN 2 ELSE 3 END LIMIT 1) AS {m}"
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


Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    (1, "initial schema: papers, models, datasets, experiments, feature_values, measurements", _migration_1_initial),
]


def applied_versions(conn: Connection) -> set[int]:
    has_table = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'")
    ).first()
    if not has_table:
        return set()
    return {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}


def migrate(engine: Engine) -> list[int]:
    """Apply pending forward migrations, each in its own transaction; returns those applied."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")
    done: list[int] = []
    for version, name, apply in MIGRATIONS:
        with engine.begin() as conn:
            if version in applied_versions(conn):
                continue
            if version == 1:
                schema.SchemaMigration.__table__.create(conn, checkfirst=True)
            apply(conn)
            conn.execute(
                text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                {"v": version, "n": name, "t": schema.utcnow()},
            )
        done.append(version)
    return done


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        versions = applied_versions(conn)
    return max(versions) if versions else 0
