"""The KB's library API (sqlite-utils style: the library first, the CLI a thin layer over it).

Every stage reads and writes through `KnowledgeBase`; each `save_paper` is one transaction, so
an interrupted write leaves the KB as it was.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import db, normalize, schema
from .decisions import carry_decisions, curators_decisions
from .records import ExperimentRecord, FeatureField, PaperRecord, Provenance, normalize_doi
from .schema import (
    FEATURES,
    METRICS,
    Dataset,
    DatasetAlias,
    Experiment,
    FeatureValue,
    FileStatus,
    HttpCache,
    Measurement,
    Model,
    ModelAlias,
    Paper,
    ValidationRun,
    utcnow,
)

NOT_STATED = "not stated in the source"
READ_ONLY_QUERY = "kb query is read-only: only SELECT / WITH / EXPLAIN / PRAGMA reads are allowed"


@dataclass
class SaveResult:
    paper_id: int
    experiments_added: int = 0
    experiments_skipped: int = 0  # already in the KB (idempotent re-import)
    measurements_added: int = 0
    experiment_ids: list[int] = field(default_factory=list)
    unmatched_models: list[str] = field(default_factory=list)
    unmatched_datasets: list[str] = field(default_factory=list)
    reviews_kept: int = 0  # curators' decisions carried over to a re-read paper (replace=True)


class KnowledgeBase:
    def __init__(self, engine: Engine, location: db.KBLocation, *, readonly: bool) -> None:
        self.engine = engine
        self.location = location
        self.readonly = readonly

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, kb: Optional[str | Path] = None, *, write: bool = False) -> "KnowledgeBase":
        """Open the KB that `kb` / $MEDICALREC_KB / the user data dir / the seed points at.

        A write opens (creating if needed) and migrates; a read of a missing file is an error.
        """
        location = db.resolve(kb)
        try:
            if write:
                location = db.writable(location)
                engine = db.make_engine(location.path)
                db.migrate(engine, location)
                kb_ = cls(engine, location, readonly=False)
                kb_.ensure_catalog()
                return kb_
            if location.path.exists() and db.storage_is_readonly(location.path):
                location = dataclasses.replace(location, storage_readonly=True)
            engine = db.make_engine(location.path, readonly=True)
            try:
                version = db.current_version(engine)  # checked now, not at the first query
            except (sqlite3.OperationalError, DBAPIError):
                if not location.storage_readonly:
                    raise
                # SQLite cannot make the WAL index on read-only storage; nothing can change there,
                # so the file may be read as immutable, unless changes wait in its WAL file.
                wal = Path(f"{location.path}-wal")
                if wal.exists() and wal.stat().st_size > 0:
                    raise db.KBError(f"{location.path} is on read-only storage with changes still in {wal.name}:"
                                     " copy the KB and its -wal file to writable storage and pass that path with --kb")
                engine = db.make_engine(location.path, readonly=True, immutable=True)
                version = db.current_version(engine)
            if version == 0:
                raise db.KBError(db.not_a_kb(location))
            if version < schema.SCHEMA_VERSION:  # a read never migrates, and the old tables lack columns
                raise db.KBError(db.outdated(location, version))
            return cls(engine, location, readonly=True)
        except (OSError, sqlite3.Error, DBAPIError) as exc:
            raise db.KBError(db.open_error(location, exc)) from exc

    @classmethod
    def create(cls, path: str | Path) -> "KnowledgeBase":
        return cls.open(path, write=True)

    @classmethod
    def in_memory(cls) -> "KnowledgeBase":
        """A fresh, migrated KB in memory (tests, scratch work)."""
        from sqlalchemy.pool import StaticPool
        from sqlmodel import create_engine
        from sqlalchemy import event

        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        event.listen(engine, "connect", db._set_pragmas)
        db.migrate(engine)
        kb_ = cls(engine, db.KBLocation(Path(":memory:"), source="memory"), readonly=False)
        kb_.ensure_catalog()
        return kb_

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session whose transaction holds SQLite's write lock from its first statement: the
        reads that decide what to insert (is this paper, this catalogue entry, already there?)
        see what a concurrent writer committed, instead of racing it to a UNIQUE error."""
        with self.session() as s, s.begin():
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield s

    def _require_writable(self) -> None:
        if self.readonly:
            raise db.KBError(
                f"{self.location.describe()} is read-only: pass --kb PATH (or set {db.ENV_VAR}) to write"
            )

    # ------------------------------------------------------------------ catalogue
    def ensure_catalog(self) -> None:
        """Load the curated model and dataset catalogues (idempotent)."""
        with self.write_session() as s:
            _load_catalog(s, Model, ModelAlias, "model_id", normalize.model_catalog(),
                          lambda e: dict(family=e.family, params_millions=e.params_millions))
            _load_catalog(s, Dataset, DatasetAlias, "dataset_id", normalize.dataset_catalog(),
                          lambda e: dict(domain=e.domain, modality=e.modality))

    def model_alias_index(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT a.alias_key, m.name FROM model_aliases a JOIN models m ON m.id = a.model_id"
                " WHERE m.curated = 1"))
            return dict(rows.fetchall())

    def dataset_alias_index(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT a.alias_key, d.name FROM dataset_aliases a JOIN datasets d ON d.id = a.dataset_id"
                " WHERE d.curated = 1"))
            return dict(rows.fetchall())

    def add_alias(self, kind: str, alias: str, canonical: str) -> None:
        """Teach the KB that `alias` names the curated `canonical` model or dataset."""
        self._require_writable()
        entity, alias_table, fk = {
            "model": (Model, ModelAlias, "model_id"),
            "dataset": (Dataset, DatasetAlias, "dataset_id"),
        }[kind]
        with self.session() as s, s.begin():
            target = s.exec(select(entity).where(entity.name == canonical)).first()
            if target is None:
                raise db.KBError(f"unknown {kind} {canonical!r}: `medicalrec kb show {kind} NAME` lists known names")
            key = normalize.name_key(alias)
            existing = s.get(alias_table, key)
            if existing is not None:
                s.delete(existing)
                s.flush()
            s.add(alias_table(alias_key=key, alias=alias, **{fk: target.id}))

    def _resolve_model(self, s: Session, raw: str, family_hint: Optional[str]) -> tuple[Model, bool]:
        for key in normalize.candidate_keys(raw):
            alias = s.get(ModelAlias, key)
            if alias is not None:
                return s.get(Model, alias.model_id), True
        model = s.exec(select(Model).where(Model.name == raw.strip())).first()
        if model is None:
            family = family_hint if family_hint in normalize.MODEL_FAMILIES else normalize.guess_family(raw)
            model = Model(name=raw.strip(), family=family, curated=False)
            s.add(model)
            s.flush()
        return model, False

    def _resolve_dataset(self, s: Session, raw: Optional[str], domain: Optional[str],
                         modality: Optional[str]) -> tuple[Optional[Dataset], bool]:
        if not raw or not raw.strip():
            return None, True
        for key in normalize.candidate_keys(raw):
            alias = s.get(DatasetAlias, key)
            if alias is not None:
                return s.get(Dataset, alias.dataset_id), True
        dataset = s.exec(select(Dataset).where(Dataset.name == raw.strip())).first()
        if dataset is None:
            dataset = Dataset(name=raw.strip(), domain=domain, modality=modality, curated=False)
            s.add(dataset)
            s.flush()
        return dataset, False

    # ------------------------------------------------------------------ writes
    def find_paper(self, s: Session, paper: PaperRecord) -> Optional[Paper]:
        for column in ("sha256", "doi", "ref_id"):
            value = getattr(paper, column)
            if value:
                found = s.exec(select(Paper).where(getattr(Paper, column) == value)).first()
                if found is not None:
                    return found
        return None

    def save_paper(
        self,
        paper: PaperRecord,
        experiments: Iterable[ExperimentRecord],
        *,
        replace: bool = False,
        replace_existing: bool = False,
        missing_provenance: Optional[Provenance] = None,
        missing_reason: str = NOT_STATED,
    ) -> SaveResult:
        """Store a paper and its experiments in one transaction.

        replace=True first drops the paper's earlier experiments of the same origin (re-extraction); otherwise an
        experiment already present (same paper, model, dataset, setting) is skipped, so
        re-importing a file adds nothing — or, with replace_existing=True, replaced by the new record
        (a re-measured setting) in the same transaction. Features missing from a record are stored as
        `not_reported` with `missing_provenance`.
        """
        self._require_writable()
        paper.doi = normalize_doi(paper.doi)
        paper.identity()
        experiments = list(experiments)
        with self.write_session() as s:
            row = self.find_paper(s, paper)
            if row is None:
                row = Paper(origin=paper.origin)
                s.add(row)
            for column in ("sha256", "doi", "ref_id", "openalex_id", "title", "year", "venue",
                           "abstract", "source_file", "source_url"):
                value = getattr(paper, column)
                # A paper keeps the reference id it was first stored under: rows of one DOI may
                # carry several, and each experiment keeps its own (experiments.ref_id).
                if value not in (None, "") and not (column == "ref_id" and row.ref_id):
                    setattr(row, column, value)
            if paper.authors:
                row.authors = json.dumps(paper.authors, ensure_ascii=False)
            s.flush()
            result = SaveResult(paper_id=row.id)
            decisions: dict[tuple, dict] = {}
            if replace:
                # Only this origin's rows: re-extracting a PDF must not wipe what was imported or
                # validated for the same paper (found by DOI).
                decisions = curators_decisions(s, row.id, paper.origin)
                s.execute(text("DELETE FROM experiments WHERE paper_id = :p AND origin = :o"),
                          {"p": row.id, "o": paper.origin})
            for record in experiments:
                self._save_experiment(s, row, paper.origin, record, result, missing_provenance, missing_reason,
                                    replace_existing)
            if decisions:
                result.reviews_kept = carry_decisions(s, row.id, paper.origin, decisions)
        return result

    def _save_experiment(self, s: Session, paper: Paper, origin: str, record: ExperimentRecord, result: SaveResult,
                         missing_provenance: Optional[Provenance], missing_reason: str,
                         replace_existing: bool = False) -> None:
        domain = _feature_text(record, "domain")
        modality = _feature_text(record, "modality")
        model, model_matched = self._resolve_model(s, record.model, record.model_family)
        dataset, dataset_matched = self._resolve_dataset(s, record.dataset, domain, modality)
        if not model_matched and record.model not in result.unmatched_models:
            result.unmatched_models.append(record.model)
        if not dataset_matched and record.dataset not in result.unmatched_datasets:
            result.unmatched_datasets.append(record.dataset)
        dataset_id = dataset.id if dataset else None
        setting = record.setting
        slot = ("SELECT id FROM experiments WHERE paper_id = :p AND model_id = :m AND dataset_id IS :d"
                " AND setting = :s")
        slot_params = {"p": paper.id, "m": model.id, "d": dataset_id, "s": setting}
        if record.identity is not None:
            # Identity, not the setting label, says whether a row is already stored: labels depend
            # on which rows were imported together, identities only on the row.
            existing = s.execute(text("SELECT id FROM experiments WHERE paper_id = :p AND identity = :i"),
                                 {"p": paper.id, "i": record.identity}).first()
            if existing is None and s.execute(text(slot), slot_params).first() is not None:
                setting = f"{setting}, #{record.identity[:8]}" if setting else f"#{record.identity[:8]}"
        else:
            existing = s.execute(text(slot), slot_params).first()
        if existing is not None and replace_existing:
            # Its features, measurements and validation runs follow by ON DELETE CASCADE.
            s.execute(text("DELETE FROM experiments WHERE id = :e"), {"e": existing[0]})
        elif existing is not None:
            result.experiments_skipped += 1
            result.experiment_ids.append(existing[0])
            return
        experiment = Experiment(
            paper_id=paper.id, model_id=model.id, dataset_id=dataset_id, model_raw=record.model,
            dataset_raw=record.dataset, setting=setting, notes=record.notes,
            curation_flags=record.curation_flags, origin=origin,
        )
        s.add(experiment)
        s.flush()
        if record.identity is not None or record.ref_id is not None:
            s.execute(text("UPDATE experiments SET identity = :i, ref_id = :r WHERE id = :e"),
                      {"i": record.identity, "r": record.ref_id, "e": experiment.id})
        fallback = missing_provenance or Provenance(method="import")
        # One executemany, not an ORM object per row: 14 rows per experiment dominate an import's time.
        s.execute(FeatureValue.__table__.insert(), [
            _feature_row(experiment.id, name, kind,
                         record.features.get(name) or FeatureField.missing("not_reported", fallback, missing_reason))
            for name, kind in FEATURES.items()])
        best: dict[tuple[str, str, str], object] = {}
        for m in record.measurements:
            key = (m.metric, m.average, m.split)
            if key not in best or m.confidence > best[key].confidence:
                best[key] = m
        for m in best.values():
            p = m.provenance
            s.add(Measurement(experiment_id=experiment.id, metric=m.metric, average=m.average, value=float(m.value),
                              split=m.split, page=p.page, snippet=p.snippet, source_url=p.source_url,
                              method=p.method, confidence=m.confidence, review_status=m.review_status))
        result.experiments_added += 1
        result.measurements_added += len(best)
        result.experiment_ids.append(experiment.id)

    def add_validation_run(self, experiment_id: int, *, seed: int, epochs: int, device: str, seconds: float,
                           gpu_hours: float = 0.0, size: int = 28) -> None:
        self._require_writable()
        with self.session() as s, s.begin():
            s.add(ValidationRun(experiment_id=experiment_id, seed=seed, epochs=epochs, device=device,
                                seconds=seconds, gpu_hours=gpu_hours, size=size))

    def paper_by_sha256(self, sha256: str) -> Optional[Paper]:
        with self.session() as s:
            return s.exec(select(Paper).where(Paper.sha256 == sha256)).first()

    def record_file_status(self, source_file: str, status: str, *, sha256: Optional[str] = None,
                           reason: Optional[str] = None, n_pages: Optional[int] = None,
                           n_experiments: int = 0, n_measurements: int = 0) -> None:
        self._require_writable()
        with self.session() as s, s.begin():
            row = s.get(FileStatus, source_file) or FileStatus(source_file=source_file, status=status)
            row.sha256, row.status, row.reason, row.n_pages = sha256, status, reason, n_pages
            row.n_experiments, row.n_measurements, row.updated_at = n_experiments, n_measurements, utcnow()
            s.add(row)

    def file_statuses(self) -> list[FileStatus]:
        with self.session() as s:
            return list(s.exec(select(FileStatus).order_by(FileStatus.source_file)))

    def cache_get(self, url: str) -> Optional[tuple[int, str]]:
        with self.session() as s:
            row = s.get(HttpCache, url)
            return (row.status_code, row.body) if row else None

    def cache_put(self, url: str, status_code: int, body: str) -> None:
        if self.readonly:
            return
        with self.session() as s, s.begin():
            row = s.get(HttpCache, url) or HttpCache(url=url, status_code=status_code, body=body)
            row.status_code, row.body, row.fetched_at = status_code, body, utcnow()
            s.add(row)

    # ------------------------------------------------------------------ reads
    def query(self, sql: str, params: Optional[dict] = None) -> tuple[list[str], list[tuple]]:
        """Run a read-only statement; a write is refused."""
        if not is_read_only_sql(sql):
            raise db.KBError(READ_ONLY_QUERY)
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                cursor = conn.exec_driver_sql(sql, params or ())
                columns = list(cursor.keys())
                rows = [tuple(r) for r in cursor.fetchall()]
            except DBAPIError as exc:
                reason = str(exc.orig)
                if "readonly" in reason or "read-only" in reason:
                    raise db.KBError(READ_ONLY_QUERY) from exc
                raise db.KBError(f"SQL error: {reason}: fix the statement passed to kb query") from exc
            finally:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
        return columns, rows

    def frame(self, sql: str, params: Optional[dict] = None) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_query(text(sql), conn, params=params or {})

    def experiments_frame(self, min_confidence: Optional[float] = None) -> pd.DataFrame:
        """One row per experiment: paper, model, dataset, each feature's value and `<feature>_status`,
        and each metric (test split preferred, see db.measurement_order). The recommender's and the
        exporters' input, so only accepted measurements count (those with at least
        `min_confidence`, when given); an experiment whose numbers all wait for review has none."""
        base = self.frame(
            "SELECT e.id AS experiment_id, e.paper_id, p.doi, p.ref_id, p.title, p.year, p.source_url,"
            " p.source_file, p.origin AS paper_origin, e.origin, m.name AS model, m.family AS model_family,"
            " m.curated AS model_curated, m.params_millions, d.name AS dataset, d.curated AS dataset_curated,"
            " e.model_raw, e.dataset_raw, e.setting, e.notes, e.curation_flags, e.ref_id AS row_ref_id"
            " FROM experiments e JOIN papers p ON p.id = e.paper_id JOIN models m ON m.id = e.model_id"
            " LEFT JOIN datasets d ON d.id = e.dataset_id ORDER BY e.id")
        if base.empty:
            return base
        feats = self.frame("SELECT experiment_id, feature, value_num, value_text, status FROM feature_values")
        feats["value"] = feats["value_text"].where(feats["value_text"].notna(), feats["value_num"])
        values = feats.pivot(index="experiment_id", columns="feature", values="value")
        statuses = feats.pivot(index="experiment_id", columns="feature", values="status").add_suffix("_status")
        metrics = self.frame(
            f"SELECT experiment_id, metric, value FROM measurements WHERE {db.ACCEPTED}"
            " AND (:minimum IS NULL OR confidence >= :minimum)"
            f" ORDER BY experiment_id, metric, {db.measurement_order()}", {"minimum": min_confidence})
        metrics = metrics.drop_duplicates(["experiment_id", "metric"]).pivot(
            index="experiment_id", columns="metric", values="value")
        frame = base.set_index("experiment_id").join(values).join(statuses).join(metrics)
        for name, kind in FEATURES.items():
            if name not in frame:
                frame[name] = None
            if kind == "int":
                frame[name] = pd.to_numeric(frame[name], errors="coerce")
        for metric in METRICS:
            if metric not in frame:
                frame[metric] = float("nan")
        frame["paper_key"] = frame["doi"].fillna(frame["ref_id"]).fillna("paper-" + frame["paper_id"].astype(str))
        return frame.reset_index()

    def fingerprint(self) -> str:
        """A digest of the KB's experiments, features and measurements (cache key for models)."""
        import hashlib

        digest = hashlib.sha256()
        with self.engine.connect() as conn:
            for sql in (
                "SELECT e.id, m.name, d.name, e.setting FROM experiments e JOIN models m ON m.id = e.model_id"
                " LEFT JOIN datasets d ON d.id = e.dataset_id ORDER BY e.id",
                "SELECT experiment_id, feature, value_num, value_text, status FROM feature_values"
                " ORDER BY experiment_id, feature",
                # What experiments_frame reads: a review decision changes what a model learns from.
                f"SELECT experiment_id, metric, average, split, value FROM measurements WHERE {db.ACCEPTED}"
                " ORDER BY experiment_id, metric, average, split",
            ):
                for row in conn.execute(text(sql)):
                    digest.update(repr(tuple(row)).encode())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ review (kb/review.py)
    def review_queue(self, min_confidence: Optional[float] = None, limit: Optional[int] = None) -> list[dict]:
        from .review import review_queue

        return review_queue(self, min_confidence=min_confidence, limit=limit)

    def accept(self, ids: Iterable[int], who: Optional[str] = None) -> list[int]:
        from .review import accept

        return accept(self, ids, who=who)

    def reject(self, ids: Iterable[int], who: Optional[str] = None, note: Optional[str] = None) -> list[int]:
        from .review import reject

        return reject(self, ids, who=who, note=note)

    def edit(self, id: int, who: Optional[str] = None, *, value: Optional[float] = None,
             metric: Optional[str] = None, average: Optional[str] = None, split: Optional[str] = None,
             note: Optional[str] = None) -> dict:
        from .review import edit

        return edit(self, id, who=who, value=value, metric=metric, average=average, split=split, note=note)

    def counts(self) -> dict[str, int]:
        tables = ("papers", "experiments", "measurements", "models", "datasets", "feature_values",
                  "validation_runs", "file_status")
        with self.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in tables}


def _load_catalog(s: Session, entity, alias_table, fk: str, entries, attributes) -> None:
    """Insert the curated entries and their aliases that the KB does not hold yet (two reads and
    two batched writes: a row-by-row lookup made every new KB cost seconds)."""
    entries = list(entries)
    known = {row.name: row for row in s.exec(select(entity))}
    added = [entity(name=entry.name, curated=True, **attributes(entry)) for entry in entries
             if entry.name not in known]
    if added:
        s.add_all(added)
        s.flush()
        known.update((row.name, row) for row in added)
    keys = set(s.exec(select(alias_table.alias_key)))
    aliases = []
    for entry in entries:
        for alias in (entry.name, *entry.aliases):
            key = normalize.name_key(alias)
            if key not in keys:
                keys.add(key)
                aliases.append({"alias_key": key, "alias": alias, fk: known[entry.name].id})
    if aliases:
        s.execute(alias_table.__table__.insert(), aliases)


def _feature_text(record: ExperimentRecord, name: str) -> Optional[str]:
    feature = record.features.get(name)
    return str(feature.value) if feature is not None and feature.value is not None else None


def _feature_row(experiment_id: int, name: str, kind: str, feature: FeatureField) -> dict:
    value_num = value_text = None
    if feature.value is not None:
        if kind == "int":
            value_num = float(feature.value)
        else:
            value_text = str(feature.value)
    p = feature.provenance
    return dict(experiment_id=experiment_id, feature=name, value_num=value_num, value_text=value_text,
                status=feature.status, reason=feature.reason, page=p.page, snippet=p.snippet,
                source_url=p.source_url, method=p.method, confidence=p.confidence)


# A bare PRAGMA reads its value (one with "= x" or "(x)" sets it), except the introspection
# pragmas, whose argument names what to describe.
_READ_ONLY_START = re.compile(
    r"^\s*(?:(?:select|with|explain|values)\b"
    r"|pragma\s+\w+\s*(?:;|$)"
    r"|pragma\s+(?:table_info|table_xinfo|index_list|index_info|index_xinfo|foreign_key_list)\s*\()",
    re.IGNORECASE)


def is_read_only_sql(sql: str) -> bool:
    """A first gate for `kb query`; PRAGMA query_only enforces it inside SQLite as well."""
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL).strip()
    return bool(_READ_ONLY_START.match(stripped))
