"""What `medicalrec serve` tells Datasette about a KB: descriptions, facets, canned queries, charts.

Written by the project, never by hand per KB: table descriptions and the meaning of each
missing-value status are read from kb/SCHEMA.md (the one place they are explained), the allowed
values from kb/schema.py, and facets and canned queries are kept only where the KB file has the
tables and columns they need, so a KB of another schema version (an older file, or one with the
benchmark tables of a later migration) still serves."""

from __future__ import annotations

import html
import re
import sqlite3
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from . import schema

DATABASE = "kb"  # the name the KB has in every URL: /kb/measurements, /kb/best_result, ...
PLUGIN = "medicalrec"

LICENSE_NOTE = ("The KB holds figures published by others, each with its source: follow the source URL or DOI of"
                " a row for its licence (MedMNIST v2: CC BY 4.0).")


def schema_text() -> str:
    return resources.files("medicalrec.kb").joinpath("SCHEMA.md").read_text(encoding="utf-8")


def _markdown_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first pipe table after `heading`, as lists of cell strings."""
    start = text.find(heading)
    if start < 0:
        return []
    rows, in_table = [], False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            in_table = True
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif in_table:
            break
    return rows[1:]  # the first row is the header


def _code(name: str) -> str:
    return name.strip().strip("`")


def _inline_html(markdown: str) -> str:
    """SCHEMA.md's inline markup (backticks, **bold**) as HTML; everything else escaped."""
    escaped = html.escape(markdown, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def table_descriptions(text: str) -> dict[str, str]:
    """table -> "One row per ...; key columns: ..." from SCHEMA.md's Tables section."""
    return {_code(row[0]): f"One row per {row[1]}. {row[2]}" for row in _markdown_rows(text, "## Tables")
            if len(row) >= 3}


def status_meanings(text: str) -> dict[str, str]:
    """feature status -> what it means, from SCHEMA.md's missing-value table."""
    rows = _markdown_rows(text, "## Features: a value or the reason there is none")
    return {_code(row[0]): row[1] for row in rows if len(row) >= 2}


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(v if v else "'' (not stated)" for v in values)


def column_descriptions(meanings: dict[str, str]) -> dict[str, dict[str, str]]:
    statuses = "; ".join(f"{status}: {meaning}" for status, meaning in meanings.items())
    provenance = {
        "page": "page of the source PDF the figure was read on (empty for tables imported from CSV)",
        "snippet": f"the source text around the figure (at most {schema.SNIPPET_MAX} characters)",
        "source_url": "where the figure can be checked: the paper's page, the CSV row's source, or the benchmark file",
        "method": f"how the figure was obtained: one of {_listed(schema.METHODS)}",
        "confidence": "how sure the extractor or importer is, in [0, 1] (1 for curated tables)",
    }
    return {
        "papers": {
            "doi": "normalised DOI (lower case, no https://doi.org/); links to the publisher",
            "ref_id": "curated reference id of the literature tables",
            "authors": "JSON list of names",
            "source_file": "the PDF or CSV this paper was read from",
            "origin": "where the paper came from: import (a CSV, the seed), extract (a PDF), validated (our own run)",
        },
        "models": {"family": "architecture family (normalize.MODEL_FAMILIES)",
                   "params_millions": "parameters, in millions",
                   "curated": "1 when the name is in the curated catalogue kb/data/models.csv"},
        "datasets": {"domain": "the clinical task", "modality": "the imaging modality",
                     "curated": "1 when the name is in the curated catalogue kb/data/datasets.csv"},
        "experiments": {
            "model_raw": "the model name exactly as the source wrote it",
            "dataset_raw": "the dataset name exactly as the source wrote it",
            "setting": "tells apart experiments of one model on one dataset in one paper ('' when there is one)",
            "origin": "import, extract, validated (and benchmark, once benchmark tables are imported)",
            "source_kind": f"literature, benchmark or validated (one of {_listed(schema.SOURCE_KINDS)})"
            if hasattr(schema, "SOURCE_KINDS") else "where the evidence comes from",
        },
        "feature_values": {
            "feature": f"one of the {len(schema.FEATURES)} features: {', '.join(schema.FEATURES)}",
            "value_num": "the value of a count feature (empty when the status says why there is none)",
            "value_text": "the value of a label or yes/no feature",
            "status": statuses,
            "reason": "why a value is missing, or how it was derived",
            **provenance,
        },
        "measurements": {
            "metric": f"one of {_listed(schema.METRICS)}",
            "average": f"how a multi-class metric was averaged: {_listed(schema.AVERAGES)}",
            "value": "a fraction in [0, 1] (a published 93.1% is 0.931)",
            "split": f"the data the figure was measured on: {_listed(schema.SPLITS)}",
            "review_status": "accepted (a fact), needs_review (an extracted number waiting for a curator),"
                             " rejected (kept, out of every fact)",
            "reviewed_by": "the curator of the last decision (review_log holds every one)",
            "reviewed_at": "UTC time of the last decision",
            **provenance,
        },
        "review_log": {"action": "accept, reject or edit", "who": "the curator", "at": "UTC time",
                       "before_json": "the measurement before the action", "after_json": "and after it"},
        "file_status": {"status": f"one of {_listed(schema.FILE_STATUSES)}",
                        "reason": "why a file gave no results"},
        "validation_runs": {"seconds": "wall time of the training run", "size": "input side in pixels"},
    }


# Facets analysts asked for, per table; each kept only when the KB has the column.
FACETS: dict[str, list[str]] = {
    "experiment_wide": ["domain", "modality", "model_family", "dataset", "origin"],
    "experiments": ["origin", "source_kind"],
    "measurements": ["metric", "split", "review_status", "method", "average"],
    "feature_values": ["feature", "status", "method"],
    "datasets": ["domain", "modality", "curated"],
    "models": ["family", "curated"],
    "papers": ["origin", "year"],
    "file_status": ["status"],
    "benchmark_runs": ["source", "training_scheme", "task"],
}

LABEL_COLUMNS = {"papers": "title", "models": "name", "datasets": "name"}

# The domain of an experiment is a feature (feature_values), not a column.
_DOMAIN = ("COALESCE((SELECT f.value_text FROM feature_values f WHERE f.experiment_id = e.id"
           " AND f.feature = 'domain'), d.domain, 'not reported')")
_MODALITY = ("COALESCE((SELECT f.value_text FROM feature_values f WHERE f.experiment_id = e.id"
             " AND f.feature = 'modality'), d.modality, 'not reported')")
_METRIC = "COALESCE(NULLIF(:metric, ''), 'accuracy')"


def _queries(has_table: set[str]) -> dict[str, dict[str, Any]]:
    feature_columns = ", ".join(f"w.{name}" for name in schema.FEATURES if name not in ("domain", "modality"))
    queries: dict[str, dict[str, Any]] = {
        "bench_layout": {
            "title": "Experiments in the bench layout",
            "description": "One row per paper x model x dataset (x setting, when a paper reports several): the"
                           " MedicalRec-Bench columns with accepted measurements only. Each experiment_id links"
                           " to the provenance of its values.",
            "sql": "SELECT w.experiment_id, COALESCE(w.ref_id, w.doi, w.title) AS paper, w.year, w.model,"
                   " w.model_family, w.dataset, w.domain, w.modality, w.setting, " + feature_columns + ","
                   " w.accuracy, w.precision, w.recall, w.f1, w.auc, w.origin"
                   " FROM experiment_wide w ORDER BY paper, w.model, w.dataset, w.setting",
        },
        "best_result": {
            "title": "Best reported result per domain and model",
            "description": "The highest accepted figure of one metric (default accuracy; pass metric=auc, f1, ...)"
                           " for each domain and model, with the paper, page and snippet it comes from.",
            "sql": "SELECT domain, model, model_family, metric, value, n_results, dataset, paper, page, snippet,"
                   " source_url, experiment_id FROM ("
                   f" SELECT {_DOMAIN} AS domain, m.name AS model, m.family AS model_family, ms.metric, ms.value,"
                   " COUNT(*) OVER (PARTITION BY " + _DOMAIN + ", m.name) AS n_results,"
                   " d.name AS dataset, COALESCE(p.ref_id, p.doi, p.source_file, p.title) AS paper, ms.page,"
                   " ms.snippet, COALESCE(ms.source_url, p.source_url) AS source_url, e.id AS experiment_id,"
                   " ROW_NUMBER() OVER (PARTITION BY " + _DOMAIN + ", m.name ORDER BY ms.value DESC, ms.id) AS rank"
                   " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   " JOIN models m ON m.id = e.model_id JOIN papers p ON p.id = e.paper_id"
                   " LEFT JOIN datasets d ON d.id = e.dataset_id"
                   f" WHERE ms.review_status = 'accepted' AND ms.metric = {_METRIC}"
                   ") WHERE rank = 1 ORDER BY domain, value DESC",
            "params": ["metric"],
        },
        "accuracy_by_family": {
            "title": "Reported accuracy by model family per domain",
            "description": "Mean, best and count of accepted figures of one metric (default accuracy) per domain"
                           " and model family: the chart compares families within each domain.",
            "sql": f"SELECT {_DOMAIN} AS domain, m.family AS model_family, ms.metric,"
                   " ROUND(AVG(ms.value), 4) AS mean_value, MAX(ms.value) AS best_value, COUNT(*) AS n_results"
                   " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   " JOIN models m ON m.id = e.model_id LEFT JOIN datasets d ON d.id = e.dataset_id"
                   f" WHERE ms.review_status = 'accepted' AND ms.metric = {_METRIC}"
                   " GROUP BY 1, 2, 3 ORDER BY domain, mean_value DESC",
            "params": ["metric"],
        },
        "missingness": {
            "title": "Missing values per feature and domain",
            "description": "For each domain and feature, how many experiments state it and why the others do not"
                           " (the statuses are explained on the feature_values table).",
            "sql": f"SELECT {_DOMAIN} AS domain, f.feature, COUNT(*) AS n_experiments, "
                   + ", ".join(f"SUM(f.status = '{status}') AS {status}" for status in schema.STATUSES) + ","
                   " ROUND(1.0 * SUM(f.status NOT IN ('reported', 'derived')) / COUNT(*), 3) AS share_missing"
                   " FROM feature_values f JOIN experiments e ON e.id = f.experiment_id"
                   " LEFT JOIN datasets d ON d.id = e.dataset_id GROUP BY 1, 2 ORDER BY domain, f.feature",
        },
        "validated_vs_published": {
            "title": "Validated vs published",
            "description": "Our own training runs (origin validated) next to the figures papers published for the"
                           " same model and dataset: the published median and best, and our value minus the median.",
            "sql": "WITH figures AS (SELECT e.model_id, e.dataset_id, e.origin, ms.metric, ms.value, e.id AS experiment_id"
                   " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   " WHERE ms.review_status = 'accepted'),"
                   " published AS (SELECT model_id, dataset_id, metric, COUNT(*) AS n_published, MAX(value) AS best,"
                   " AVG(value) AS mean FROM figures WHERE origin != 'validated' GROUP BY 1, 2, 3)"
                   " SELECT m.name AS model, d.name AS dataset, v.metric, v.value AS validated,"
                   " ROUND(pub.mean, 4) AS published_mean, pub.best AS published_best, pub.n_published,"
                   " ROUND(v.value - pub.mean, 4) AS difference, v.experiment_id"
                   " FROM figures v JOIN published pub ON pub.model_id = v.model_id"
                   " AND pub.dataset_id IS v.dataset_id AND pub.metric = v.metric"
                   " JOIN models m ON m.id = v.model_id LEFT JOIN datasets d ON d.id = v.dataset_id"
                   " WHERE v.origin = 'validated' ORDER BY model, dataset, v.metric",
        },
        "papers_with_status": {
            "title": "Papers and their extraction status",
            "description": "Every paper with the file it was read from, the outcome of `extract` on that file"
                           " (file_status), and how many of its measurements are facts or wait for review.",
            "sql": "SELECT p.id AS paper_id, COALESCE(p.ref_id, p.doi, p.source_file) AS paper, p.title, p.year,"
                   " p.doi, p.source_file, p.origin, COALESCE(fs.status, 'not extracted') AS file_status,"
                   " fs.reason, fs.n_pages,"
                   " (SELECT COUNT(*) FROM experiments e WHERE e.paper_id = p.id) AS n_experiments,"
                   " (SELECT COUNT(*) FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   "  WHERE e.paper_id = p.id AND ms.review_status = 'accepted') AS n_accepted,"
                   " (SELECT COUNT(*) FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   "  WHERE e.paper_id = p.id AND ms.review_status = 'needs_review') AS n_needs_review"
                   " FROM papers p LEFT JOIN file_status fs ON fs.sha256 = p.sha256"
                   " OR (fs.sha256 IS NULL AND fs.source_file = p.source_file)"
                   " ORDER BY p.year DESC, paper",
        },
        "needs_review": {
            "title": "Measurements waiting for review",
            "description": "Extracted numbers not yet facts, paper by paper and page by page, with the snippet they"
                           " were read from. `medicalrec serve --curate` accepts, rejects or edits them at"
                           " /-/medicalrec/review.",
            "sql": "SELECT ms.id, p.source_file, ms.page, ms.snippet, e.model_raw, e.dataset_raw, e.setting, ms.metric,"
                   " ms.average, ms.split, ms.value, ms.confidence, e.id AS experiment_id"
                   " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   " JOIN papers p ON p.id = e.paper_id WHERE ms.review_status = 'needs_review'"
                   " ORDER BY COALESCE(p.source_file, p.title, ''), p.id, ms.page IS NULL, ms.page, ms.id",
        },
        "provenance": {
            "title": "Provenance of one experiment",
            "description": "Every value of one experiment (pass experiment_id): its features and measurements with"
                           " status, page, snippet, source URL, method and confidence.",
            "sql": "SELECT 'feature' AS kind, f.feature AS name, COALESCE(f.value_text, f.value_num) AS value,"
                   " f.status, f.reason, f.page, f.snippet, f.source_url, f.method, f.confidence,"
                   " p.source_file, p.doi FROM feature_values f JOIN experiments e ON e.id = f.experiment_id"
                   " JOIN papers p ON p.id = e.paper_id WHERE f.experiment_id = :experiment_id"
                   " UNION ALL SELECT 'measurement', ms.metric || CASE ms.average WHEN '' THEN '' ELSE"
                   " ' (' || ms.average || ')' END || ' on ' || ms.split, ms.value, ms.review_status, NULL, ms.page,"
                   " ms.snippet, ms.source_url, ms.method, ms.confidence, p.source_file, p.doi"
                   " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                   " JOIN papers p ON p.id = e.paper_id WHERE ms.experiment_id = :experiment_id",
            "params": ["experiment_id"],
        },
    }
    if "benchmark_runs" in has_table:
        queries["benchmark_evidence"] = {
            "title": "Benchmark evidence",
            "description": "Benchmark results (origin benchmark): the source file and row each figure was read from,"
                           " its task, training scheme and pretraining.",
            "sql": "SELECT b.source, b.task, b.training_scheme, b.pretraining, b.resolution, m.name AS model,"
                   " d.name AS dataset, ms.metric, ms.average, ms.split, ms.value, b.source_file, b.source_row,"
                   " ms.source_url, e.id AS experiment_id FROM benchmark_runs b"
                   " JOIN experiments e ON e.id = b.experiment_id JOIN models m ON m.id = e.model_id"
                   " LEFT JOIN datasets d ON d.id = e.dataset_id JOIN measurements ms ON ms.experiment_id = e.id"
                   " WHERE ms.review_status = 'accepted' ORDER BY b.source, b.task, ms.metric, ms.value DESC",
        }
    return queries


# Charts are datasette-vega's: its settings live in the URL fragment of a table or query page.
CHARTS: list[dict[str, Any]] = [
    # One point per domain and family (size: how many figures), not stacked bars: means do not add up.
    {"title": "Reported accuracy by model family (mean per domain, colour = domain)", "query": "accuracy_by_family",
     "chart": {"mark": "circle", "x_column": "model_family", "x_type": "ordinal", "y_column": "mean_value",
               "y_type": "quantitative", "color_column": "domain", "size_column": "n_results"}},
    {"title": "Missing values: share missing per feature (colour = domain)", "query": "missingness",
     "chart": {"mark": "circle", "x_column": "feature", "x_type": "ordinal", "y_column": "share_missing",
               "y_type": "quantitative", "color_column": "domain", "size_column": "n_experiments"}},
    {"title": "Validated vs published (mean of published figures against our run)", "query": "validated_vs_published",
     "chart": {"mark": "circle", "x_column": "published_mean", "x_type": "quantitative", "y_column": "validated",
               "y_type": "quantitative", "color_column": "model"}},
]


def chart_url(chart: dict[str, Any], base: str = "") -> str:
    return f"{base}/{DATABASE}/{chart['query']}#" + urlencode({f"g.{k}": v for k, v in chart["chart"].items()})


def _kb_shape(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """table or view -> its columns, as the KB file has them."""
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
    return {name: {row[1] for row in conn.execute(f"PRAGMA table_xinfo([{name}])")} for name in names}


def _home_html(meanings: dict[str, str], queries: dict[str, dict[str, Any]], curate: bool) -> str:
    views = "".join(f'<li><a href="/{DATABASE}/{name}">{html.escape(q["title"])}</a></li>' for name, q in queries.items()
                    if name != "provenance")
    charts = "".join(f'<li><a href="{html.escape(chart_url(c))}">{html.escape(c["title"])}</a></li>' for c in CHARTS
                     if c["query"] in queries)
    statuses = "".join(f"<li><code>{html.escape(s)}</code>: {_inline_html(m)}</li>" for s, m in meanings.items())
    curation = ('<p><a href="/-/medicalrec/review">Review queue</a>: accept, reject or edit extracted numbers'
                " (curation mode).</p>") if curate else (
        "<p>Served read-only: nothing can be written from this browser. Curators start"
        " <code>medicalrec serve --kb PATH --curate</code> to review extracted numbers.</p>")
    return (f"<p>Medical-imaging classification results mined from the literature: papers, models, datasets,"
            f" experiments, their features and measurements, each with its provenance.</p>{curation}"
            f"<h3>Views</h3><ul>{views}</ul><h3>Charts</h3><ul>{charts}</ul>"
            f"<h3>Why a value is missing</h3><p>Each feature of an experiment holds a value or a status:</p>"
            f"<ul>{statuses}</ul>")


def build_metadata(conn: sqlite3.Connection, *, curate: bool = False, title: str = "medicalrec KB") -> dict[str, Any]:
    """Datasette metadata for the KB behind `conn`."""
    text = schema_text()
    shape = _kb_shape(conn)
    meanings = status_meanings(text)
    described = table_descriptions(text)
    columns = column_descriptions(meanings)
    tables: dict[str, Any] = {}
    for table, table_columns in shape.items():
        entry: dict[str, Any] = {}
        if table in described:
            entry["description_html"] = _inline_html(described[table])
        if table == "experiment_wide":
            entry["description_html"] = ("One row per experiment, features and accepted metrics side by side; a"
                                         " missing feature is empty here, its status is in feature_values.")
        if table == "feature_values":
            entry["description_html"] += "<br>Statuses: " + "; ".join(
                f"<code>{s}</code>: {_inline_html(m)}" for s, m in meanings.items())
        known = {c: d for c, d in columns.get(table, {}).items() if c in table_columns}
        if known:
            entry["columns"] = known
        facets = [c for c in FACETS.get(table, []) if c in table_columns]
        if facets:
            entry["facets"] = facets
        if table in LABEL_COLUMNS:
            entry["label_column"] = LABEL_COLUMNS[table]
        if table in ("http_cache", "schema_migrations", "model_aliases", "dataset_aliases"):
            entry["hidden"] = True
        if entry:
            tables[table] = entry
    queries = _queries(set(shape))
    return {
        "title": title,
        "description_html": _home_html(meanings, queries, curate),
        "license": "Per source (see each row's source URL or DOI)",
        "source": "medicalrec",
        "about": "kb/SCHEMA.md: the schema and its rules",
        "databases": {DATABASE: {
            "description_html": _home_html(meanings, queries, curate),
            "source": LICENSE_NOTE,
            "tables": tables,
            "queries": queries,
        }},
        "plugins": {PLUGIN: {"curate": curate}},
    }
