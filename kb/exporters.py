"""`kb export`: the KB back out, in the import layouts (curated, bench) or as one tuple per
measurement. The curated and bench layouts are written from the same declarations the importer
reads (kb/layouts.py), so import -> export -> import gives the same KB.

Only accepted measurements are exported (those waiting for review, or rejected, are no facts), and
`min_confidence` drops those below it: an empty metric cell, a missing tuple."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any, Optional, TextIO

import pandas as pd

from . import db
from .layouts import BENCH, CURATED, Layout
from .review import check_min_confidence
from .schema import FEATURES, VALUE_STATUSES
from .store import KnowledgeBase

EXPORT_LAYOUTS = ("curated", "bench", "tuples")
EXPORT_FORMATS = ("csv", "json")

TUPLE_KEYS = ("source_file", "paper_doi", "model", "dataset", "metric", "average", "value", "page", "split")
_TUPLE_EXTRAS = ("snippet", "method", "confidence", "source_url", "ref_id", "model_raw", "dataset_raw", "setting",
                 "experiment_id")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any, kind: str = "text") -> str:
    """How a value is written to a cell: counts as integers, numbers in their shortest exact form."""
    if _missing(value):
        return ""
    if kind == "int":
        return str(int(float(value)))
    if kind == "float":
        return repr(float(value))
    return str(value)


def _row_sources(kb: KnowledgeBase) -> dict[int, str]:
    """Each experiment's own source URL (a paper's rows may cite different pages)."""
    frame = kb.frame("SELECT experiment_id, MIN(source_url) AS source_url FROM feature_values"
                     " WHERE source_url IS NOT NULL GROUP BY experiment_id")
    return dict(zip(frame.experiment_id, frame.source_url))


def layout_rows(kb: KnowledgeBase, layout: Layout, min_confidence: Optional[float] = None) -> list[dict[str, str]]:
    """One dict per experiment with `layout.columns` as keys; a feature without a value (any
    missing status) is an empty cell."""
    frame = kb.experiments_frame(min_confidence=min_confidence)
    if frame.empty:
        return []
    sources = _row_sources(kb)
    rows = []
    for record in frame.to_dict("records"):
        # The row's own reference id first: one paper (DOI) may have been imported from several.
        paper_key = next((record[k] for k in ("row_ref_id", "ref_id", "doi") if not _missing(record.get(k))),
                         f"paper-{record['paper_id']}")
        row = {column: "" for column in layout.columns}
        row[layout.paper_key] = paper_key
        row[layout.model] = record["model_raw"] or record["model"]
        if layout.dataset:
            row[layout.dataset] = _cell(record["dataset_raw"] if not _missing(record["dataset_raw"]) else record["dataset"])
        if layout.model_family:
            row[layout.model_family] = _cell(record["model_family"])
        for attribute, column in layout.paper_fields.items():
            row[column] = _cell(record[attribute], "int" if attribute == "year" else "text")
        if layout.source_url:
            row[layout.source_url] = _cell(sources.get(record["experiment_id"], record["source_url"]))
        for name in ("notes", "curation_flags"):
            column = getattr(layout, name)
            if column:
                row[column] = _cell(record[name])
        for feature, column in layout.features.items():
            if record[f"{feature}_status"] in VALUE_STATUSES:
                row[column] = _cell(record[feature], FEATURES[feature])
        for metric, column in layout.metrics.items():
            row[column] = _cell(record[metric], "float")
        rows.append(row)
    return rows


def tuple_rows(kb: KnowledgeBase, min_confidence: Optional[float] = None) -> list[dict[str, Any]]:
    """One dict per accepted measurement: where it comes from, what it measures, and its value."""
    frame = kb.frame(
        "SELECT p.source_file, p.doi AS paper_doi, m.name AS model, d.name AS dataset, ms.metric, ms.average,"
        " ms.value, ms.page, ms.split, ms.snippet, ms.method, ms.confidence,"
        " COALESCE(ms.source_url, p.source_url) AS source_url, p.ref_id, e.model_raw, e.dataset_raw, e.setting,"
        " e.id AS experiment_id"
        " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id JOIN papers p ON p.id = e.paper_id"
        " JOIN models m ON m.id = e.model_id LEFT JOIN datasets d ON d.id = e.dataset_id"
        f" WHERE ms.{db.ACCEPTED} AND (:minimum IS NULL OR ms.confidence >= :minimum)"
        " ORDER BY e.id, ms.metric, ms.average, ms.split", {"minimum": min_confidence})
    frame = frame.astype(object).where(pd.notna(frame), None)
    return [{key: record[key] for key in TUPLE_KEYS + _TUPLE_EXTRAS} for record in frame.to_dict("records")]


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); tab and
# carriage return are on OWASP's list because some spreadsheets strip them and then see the rest.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def escape_formula(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with a trigger gets a leading apostrophe
    (shown by spreadsheets as text). A plain number stays as it is, negative or not ("-0.5" is a
    number to a spreadsheet, not a formula); `kb import` removes the apostrophe again."""
    if not isinstance(value, str) or not value.startswith(FORMULA_TRIGGERS) or _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


def export(kb: KnowledgeBase, out: TextIO, *, layout: str = "curated", fmt: str = "csv",
           min_confidence: Optional[float] = None, escape_formulas: bool = True) -> int:
    """Write the KB to `out`; returns the number of rows written. CSV cells that a spreadsheet
    would run as formulas are escaped (escape_formula) unless `escape_formulas` is False."""
    check_min_confidence(min_confidence)
    if layout == "tuples":
        rows: list[dict[str, Any]] = tuple_rows(kb, min_confidence)
        columns: tuple[str, ...] = TUPLE_KEYS + _TUPLE_EXTRAS
    else:
        spec = {"curated": CURATED, "bench": BENCH}[layout]
        rows, columns = layout_rows(kb, spec, min_confidence), spec.columns
    if fmt == "json":
        out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        clean = escape_formula if escape_formulas else (lambda v: v)
        writer.writerows({k: "" if _missing(v) else clean(v) for k, v in row.items()} for row in rows)
    return len(rows)


def export_text(kb: KnowledgeBase, *, layout: str = "curated", fmt: str = "csv",
                min_confidence: Optional[float] = None, escape_formulas: bool = True) -> str:
    buffer = io.StringIO()
    export(kb, buffer, layout=layout, fmt=fmt, min_confidence=min_confidence, escape_formulas=escape_formulas)
    return buffer.getvalue()
