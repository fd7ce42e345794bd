"""Writing benchmark rows into the KB (kb/benchmarks.py maps them): experiments, their features,
measurements and `benchmark_runs` by executemany, one transaction per file; the dataset metadata
table from the catalogue; links between duplicate facts."""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Optional

from sqlalchemy.engine import Connection

from . import db, normalize
from .benchmark_sources import BENCHMARK_MODELS, SOURCES, Layout
from .schema import BENCHMARK_ORIGIN, DATASET_METADATA_FEATURES, FEATURES, utcnow
from .store import KnowledgeBase

if TYPE_CHECKING:
    from .benchmark_rows import BenchRow
    from .benchmarks import FileReport, FileSource

AGGREGATE_TOLERANCE = 1e-9  # an authors' table cell equals its run's figure to float precision


def _many(conn: Connection, sql: str, rows: list) -> None:
    """executemany; an empty list is skipped (SQLAlchemy would run the statement once, unbound)."""
    if rows:
        conn.exec_driver_sql(sql, rows)


# ---------------------------------------------------------------- writing

def _ensure_paper(conn: Connection, folder: str) -> int:
    source = SOURCES[folder]
    found = conn.exec_driver_sql("SELECT id FROM papers WHERE ref_id = ?", (source.ref_id,)).first()
    if found:
        return found[0]
    conn.exec_driver_sql(
        "INSERT INTO papers (ref_id, title, year, source_url, source_file, origin, created_at) VALUES (?,?,?,?,?,?,?)",
        (source.ref_id, source.title, source.year, f"https://github.com/{source.repo}", folder, BENCHMARK_ORIGIN,
         utcnow()))
    return conn.exec_driver_sql("SELECT id FROM papers WHERE ref_id = ?", (source.ref_id,)).scalar_one()


def _lookup(index: dict, name: str):
    return next((index[k] for k in normalize.candidate_keys(name) if k in index), None)


def _resolve_models(conn: Connection, names: set[str]) -> dict[str, int]:
    """Each name's model id: a declared benchmark model (stored once, curated, with its aliases and
    parameter count), else the catalogue's alias, else the exact name; unknown names are stored
    uncurated, as `kb import` does."""
    declared = {normalize.name_key(a): m for m in BENCHMARK_MODELS for a in (m.name, *m.aliases)}
    aliases = dict(conn.exec_driver_sql("SELECT alias_key, model_id FROM model_aliases").fetchall())
    ids: dict[str, int] = {}
    for name in sorted(names):
        spec = _lookup(declared, name)
        canonical = spec.name if spec else name
        model_id = _lookup(aliases, canonical)
        if model_id is None:
            found = conn.exec_driver_sql("SELECT id FROM models WHERE name = ?", (canonical,)).first()
            if found is None:
                family = spec.family if spec else normalize.guess_family(canonical)
                conn.exec_driver_sql("INSERT INTO models (name, family, params_millions, curated) VALUES (?,?,?,?)",
                                     (canonical, family, spec.params_millions if spec else None, int(spec is not None)))
                found = conn.exec_driver_sql("SELECT id FROM models WHERE name = ?", (canonical,)).first()
            model_id = found[0]
            if spec is not None:
                for alias in (spec.name, *spec.aliases):
                    conn.exec_driver_sql("INSERT OR IGNORE INTO model_aliases (alias_key, alias, model_id) VALUES (?,?,?)",
                                         (normalize.name_key(alias), alias, model_id))
                    aliases.setdefault(normalize.name_key(alias), model_id)
        ids[name] = model_id
    return ids


def _resolve_datasets(conn: Connection, names: set[str]) -> dict[str, int]:
    aliases = dict(conn.exec_driver_sql("SELECT alias_key, dataset_id FROM dataset_aliases").fetchall())
    ids: dict[str, int] = {}
    for name in sorted(names):
        dataset_id = _lookup(aliases, name)
        if dataset_id is None:
            found = conn.exec_driver_sql("SELECT id FROM datasets WHERE name = ?", (name,)).first()
            if found is None:
                conn.exec_driver_sql("INSERT INTO datasets (name, curated) VALUES (?, 0)", (name,))
                found = conn.exec_driver_sql("SELECT id FROM datasets WHERE name = ?", (name,)).first()
            dataset_id = found[0]
        ids[name] = dataset_id
    return ids


def _feature_rows(experiment_id: int, row: BenchRow, metadata: dict, filename: str) -> list[tuple]:
    snippet = f"{filename} line {row.line}"
    values: dict[str, tuple] = {}  # feature -> (value, status, reason)
    for name in ("domain", "modality", "channels"):
        value, status, origin = metadata.get(name, (None, "not_reported", None))
        if value is not None:
            values[name] = (value, "derived", f"dataset catalogue kb/data/datasets.csv ({origin})")
        elif status == "not_applicable":
            values[name] = (None, status, f"dataset catalogue: {origin}")
    if row.n_classes is not None:
        values["n_classes"] = (row.n_classes, "reported", row.n_classes_reason)
    if row.resolution is not None:
        for name in ("width", "height"):
            values[name] = (row.resolution, "reported", "the benchmark's input resolution (README)")
    if row.n_train is not None:
        values["n_train"] = (row.n_train, "derived" if " x " in row.n_train_reason else "reported", row.n_train_reason)
    values["pretrained"] = ("yes", "reported", f"pretrained on {row.pretraining or 'a public source'} (README)")
    values["is_proposed"] = (None, "not_applicable", "a benchmark row proposes no model")
    out = []
    for name, kind in FEATURES.items():
        value, status, reason = values.get(name, (None, "not_reported", f"not in {filename}"))
        if value is None and status in ("reported", "derived"):
            value, status = None, "not_reported"
        num = float(value) if value is not None and kind == "int" else None
        txt = str(value) if value is not None and kind != "int" else None
        # The file URL is on every measurement and in benchmark_runs; 14 copies per experiment would
        # double the KB for nothing.
        out.append((experiment_id, name, num, txt, status, reason, None, snippet, None, "import", 1.0))
    return out


def store_rows(kb: KnowledgeBase, layout: Layout, filename: str, file_source: Optional[FileSource],
               rows: list[BenchRow], report: FileReport) -> None:
    """All rows of one file in one transaction: experiments, their 14 feature rows, measurements and
    benchmark_runs, each by executemany. Present experiments are kept; their missing measurements
    are added (a run's AUC and accuracy come from two slampai files)."""
    if not rows:
        return
    source = SOURCES[layout.source]
    commit = file_source.commit if file_source else None
    base_url = (f"https://github.com/{file_source.repo}/blob/{file_source.commit}/{file_source.original_path}"
                if file_source else None)
    metadata = dataset_metadata_catalog()
    with db.write_transaction(kb.engine) as conn:
        paper_id = _ensure_paper(conn, layout.source)
        model_ids = _resolve_models(conn, {r.model for r in rows})
        dataset_ids = _resolve_datasets(conn, {r.dataset for r in rows})

        def key(r: BenchRow) -> tuple:
            return (model_ids[r.model], dataset_ids[r.dataset], r.setting)

        def present() -> dict[tuple, int]:
            return {(m, d, s): i for i, m, d, s in conn.exec_driver_sql(
                "SELECT id, model_id, dataset_id, setting FROM experiments WHERE paper_id = ?", (paper_id,))}

        before = present()
        new = [r for r in rows if key(r) not in before]
        now = utcnow()
        _many(
            conn, "INSERT INTO experiments (paper_id, model_id, dataset_id, model_raw, dataset_raw, setting, notes, origin,"
            " created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(paper_id, *key(r)[:2], r.model_raw, r.dataset_raw, r.setting, r.notes, BENCHMARK_ORIGIN, now)
             for r in new])
        ids = present()
        features = []
        for r in new:
            dataset_meta = metadata.get(r.dataset, {})
            features.extend(_feature_rows(ids[key(r)], r, dataset_meta, filename))
        if features:
            _many(
                conn, "INSERT INTO feature_values (experiment_id, feature, value_num, value_text, status, reason, page,"
                " snippet, source_url, method, confidence) VALUES (?,?,?,?,?,?,?,?,?,?,?)", features)
        raw = conn.connection.driver_connection
        changes = raw.total_changes
        _many(
            conn, "INSERT OR IGNORE INTO measurements (experiment_id, metric, average, value, split, snippet, source_url,"
            " method, confidence, review_status) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(ids[key(r)], metric, average, value, split, f"{filename} line {r.line}: {column}",
              f"{base_url}#L{r.line}" if base_url else None, "import", 1.0, "accepted")
             for r in rows for metric, average, split, value, column in r.metrics])
        report.measurements_added += raw.total_changes - changes
        _many(
            conn, "INSERT OR IGNORE INTO benchmark_runs (experiment_id, source, layout, source_file, source_commit, source_row,"
            " row_key, task, training_scheme, resolution, shots, pretraining, hyperparams, seed, run_id, sweep,"
            " is_best_on_val, is_aggregate, label) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(ids[key(r)], source.folder, layout.name, filename, commit, r.line, r.row_key, r.task, r.scheme,
              r.resolution, r.shots, r.pretraining, json.dumps(r.hyperparams, sort_keys=True), r.seed, r.run_id,
              r.sweep, r.is_best_on_val, int(r.is_aggregate), r.label) for r in rows])
    report.experiments_added += len(new)
    report.experiments_present += len(rows) - len(new)


# ---------------------------------------------------------------- dataset metadata

def _metadata_cell(cell: str) -> tuple[Optional[str], str]:
    cell = (cell or "").strip()
    if not cell:
        return None, "not_reported"
    if cell.lower() in ("n/a", "not_applicable"):
        return None, "not_applicable"
    return cell, "reported"


@lru_cache(maxsize=1)
def dataset_metadata_catalog() -> dict[str, dict[str, tuple]]:
    """kb/data/datasets.csv as name -> feature -> (value, status, where the figure comes from)."""
    with resources.files("medicalrec.kb").joinpath("data", "datasets.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    catalog: dict[str, dict[str, tuple]] = {}
    for row in rows:
        origin = row.get("metadata_source") or "kb/data/datasets.csv"
        entry = {}
        for name in DATASET_METADATA_FEATURES:
            value, status = _metadata_cell(row.get(name, ""))
            if value is not None and FEATURES.get(name) == "int":
                value = int(float(value))
            entry[name] = (value, status, origin)
        catalog[row["name"]] = entry
    return catalog


def sync_dataset_metadata(kb: KnowledgeBase) -> int:
    """Write the catalogue's dataset metadata into `dataset_metadata` (idempotent); rows written."""
    catalog = dataset_metadata_catalog()
    with db.write_transaction(kb.engine) as conn:
        ids = dict(conn.exec_driver_sql("SELECT name, id FROM datasets").fetchall())
        rows = []
        for name, entry in catalog.items():
            if name not in ids:
                continue
            for feature, (value, status, origin) in entry.items():
                numeric = FEATURES.get(feature) == "int"
                rows.append((ids[name], feature, float(value) if numeric and value is not None else None,
                             None if numeric or value is None else str(value), status, origin))
        _many(
            conn, "INSERT OR REPLACE INTO dataset_metadata (dataset_id, feature, value_num, value_text, status, source)"
            " VALUES (?,?,?,?,?,?)", rows)
    return len(rows)


# ---------------------------------------------------------------- duplicate facts

_AGGREGATE_MATCHES = """
SELECT am.id, rm.id, am.value, rm.value
FROM benchmark_runs a
JOIN experiments ae ON ae.id = a.experiment_id
JOIN measurements am ON am.experiment_id = a.experiment_id AND +am.metric = 'auc' AND am.split = 'test'
JOIN benchmark_runs r ON r.task = a.task AND r.is_best_on_val = 1 AND r.pretraining IS a.pretraining
JOIN experiments re ON re.id = r.experiment_id AND re.model_id = ae.model_id AND re.dataset_id IS ae.dataset_id
JOIN measurements rm ON rm.experiment_id = r.experiment_id AND +rm.metric = 'auc' AND rm.split = 'test'
WHERE a.is_aggregate = 1
"""


_SAME_AGGREGATE = """
SELECT bm.id, am.id, bm.value, am.value
FROM benchmark_runs a
JOIN experiments ae ON ae.id = a.experiment_id
JOIN measurements am ON am.experiment_id = a.experiment_id AND +am.metric = 'auc' AND am.split = 'test'
JOIN benchmark_runs b ON b.task = a.task AND b.is_aggregate = 1 AND b.pretraining IS a.pretraining
  AND b.experiment_id > a.experiment_id
JOIN experiments be ON be.id = b.experiment_id AND be.model_id = ae.model_id AND be.dataset_id IS ae.dataset_id
JOIN measurements bm ON bm.experiment_id = b.experiment_id AND +bm.metric = 'auc' AND bm.split = 'test'
WHERE a.is_aggregate = 1
  AND am.id NOT IN (SELECT measurement_id FROM fact_links) AND bm.id NOT IN (SELECT measurement_id FROM fact_links)
"""


def link_duplicate_facts(kb: KnowledgeBase) -> tuple[int, int]:
    """Link each authors'-table figure to the run it reports (same task, model and pretraining, the
    best-on-val run, equal value): (links added, aggregate figures left without a run)."""
    with db.write_transaction(kb.engine) as conn:
        matches = [(agg, run) for agg, run, a, r in conn.exec_driver_sql(_AGGREGATE_MATCHES)
                   if abs(a - r) <= AGGREGATE_TOLERANCE]
        raw = conn.connection.driver_connection
        changes = raw.total_changes
        _many(conn, "INSERT OR IGNORE INTO fact_links (measurement_id, same_as_id, rule, note) VALUES (?,?,?,?)",
                             [(agg, run, "aggregate_of_run", "authors' table cell = the best-on-val run's test AUC")
                              for agg, run in matches])
        # A figure in both of the authors' tables (ResNet-18/ImageNet) whose run is not in the KB.
        pairs = conn.exec_driver_sql(_SAME_AGGREGATE).fetchall()
        _many(conn, "INSERT OR IGNORE INTO fact_links (measurement_id, same_as_id, rule, note) VALUES (?,?,?,?)",
                             [(later, earlier, "same_aggregate", "the same cell in two of the authors' tables")
                              for later, earlier, a, b in pairs if abs(a - b) <= AGGREGATE_TOLERANCE])
        added = raw.total_changes - changes
        unmatched = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM benchmark_runs a JOIN measurements am ON am.experiment_id = a.experiment_id"
            " WHERE a.is_aggregate = 1 AND am.id NOT IN (SELECT measurement_id FROM fact_links)").scalar_one()
    return added, unmatched
