"""`kb import`: a CSV file in a known layout (kb/layouts.py) -> papers, experiments, measurements.

Three steps, each testable on its own: `read_table` (encoding, header, layout, ragged rows),
`parse_row` (one row's cells -> checked values, or the reasons it is bad) and `import_file`
(settings, records, one `save_paper` transaction per paper). Bad rows are reported with their
physical line number and skipped; good rows land.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from sqlmodel import create_engine

from ..errors import UserError
from . import db, normalize
from .layouts import LAYOUTS, Layout
from .records import ExperimentRecord, FeatureField, MeasurementRecord, PaperRecord, Provenance
from .schema import FEATURES
from .store import KnowledgeBase

# Rows the curators flagged (approximate value, leaderboard value, descriptive title ...) are
# kept, with lower confidence, so a reader can weigh them.
FLAGGED_CONFIDENCE = 0.8
# The published tables do not say which split a headline metric comes from.
IMPORT_SPLIT = "unspecified"
UNREPORTED = "unreported"  # how an empty cell reads inside a setting label
NOTES_IN_SETTING = 60

Parsed = Union[int, str, None]


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Table:
    path: Path
    layout: Layout
    columns: list[str]  # the layout's column name at each header position
    records: list[tuple[int, list[str]]]  # (physical line where the record starts, cells)
    problems: list[RowProblem]


@dataclass
class ParsedRow:
    line: int
    paper_key: str
    model: str
    dataset: Optional[str]
    features: dict[str, Parsed]  # a feature whose column the file lacks is absent; an empty cell is None
    metrics: dict[str, float]
    paper: dict[str, Parsed]
    source_url: Optional[str]
    model_family: Optional[str]
    notes: Optional[str]
    curation_flags: Optional[str]
    setting: str = ""


@dataclass
class ImportReport:
    file: str
    layout: str
    dry_run: bool
    rows: int = 0
    rows_failed: int = 0
    papers_in_file: int = 0
    papers_added: int = 0
    experiments_added: int = 0
    experiments_skipped: int = 0
    measurements_added: int = 0
    unmatched_models: Counter = field(default_factory=Counter)  # raw name -> rows
    unmatched_datasets: Counter = field(default_factory=Counter)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "file": self.file, "layout": self.layout, "dry_run": self.dry_run, "rows": self.rows,
            "rows_failed": self.rows_failed, "papers_in_file": self.papers_in_file,
            "papers_added": self.papers_added, "experiments_added": self.experiments_added,
            "experiments_skipped": self.experiments_skipped, "measurements_added": self.measurements_added,
            "unmatched_models": dict(self.unmatched_models.most_common()),
            "unmatched_datasets": dict(self.unmatched_datasets.most_common()),
            "errors": [str(p) for p in self.problems],
        }


# ---------------------------------------------------------------- reading

def read_table(path: str | Path) -> Table:
    """The file's layout and records. Unusable files raise UserError; ragged or malformed records
    become problems naming their line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file: {path}: check the FILE argument")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}): check the FILE argument") from exc
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}): re-save it as UTF-8") from exc
    if not content.strip():
        raise UserError(f"{path} is empty: expected a header line and one row per result")
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise UserError(f"{path} line 1: the header is not valid CSV ({exc}): fix the header line") from exc
    layout, columns = detect_layout(header, path)
    records: list[tuple[int, list[str]]] = []
    problems: list[RowProblem] = []
    # A short last record without a final line break is a cut-off file, not a ragged row.
    truncated_at = None if content.endswith(("\n", "\r")) else len(io.StringIO(content, newline="").readlines())
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(start, f"malformed CSV ({exc}); the file may be truncated"))
            if reader.line_num == last_line:
                break
            last_line = reader.line_num
            continue
        last_line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            hint = "the file looks truncated" if reader.line_num == truncated_at else "ragged row"
            problems.append(RowProblem(start, f"expected {len(columns)} fields, found {len(cells)} ({hint})"))
            continue
        records.append((start, cells))
    return Table(path, layout, columns, records, problems)


def detect_layout(header: list[str], path: Path) -> tuple[Layout, list[str]]:
    """The layout whose columns the header uses most; any column outside it is an error."""
    cells = [cell.strip() for cell in header]
    scores = {name: sum(layout.column_of(c) is not None for c in cells) for name, layout in LAYOUTS.items()}
    best = max(scores, key=scores.get)
    if scores[best] == 0:
        raise UserError(
            f"{path}: cannot tell the layout from its header: expected the curated columns (ref_id, model, ...) "
            "or the MedicalRec-Bench columns (Ref, Model, ...); see `medicalrec kb import --help`")
    layout = LAYOUTS[best]
    columns: list[str] = []
    for position, cell in enumerate(cells, start=1):
        column = layout.column_of(cell)
        if column is None:
            raise UserError(f"unknown column {cell!r} in {path} (line 1, field {position}): rename or remove it; "
                            f"the {layout.name} layout's columns are listed by `medicalrec kb import --help`")
        if column in columns:
            raise UserError(f"column {column!r} appears twice in the header of {path}: remove one")
        columns.append(column)
    for column in layout.required:
        if column not in columns:
            raise UserError(f"{path} has no {column!r} column, which the {layout.name} layout needs: add it")
    return layout, columns


# ---------------------------------------------------------------- one row

_WHOLE = re.compile(r"^\+?(\d+)(?:\.0*)?$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def parse_count(cell: str) -> int:
    if _THOUSANDS.match(cell):
        return int(cell.replace(",", ""))
    match = _WHOLE.match(cell)
    if not match:
        raise ValueError("is not a whole number")
    return int(match.group(1))


def parse_flag(cell: str) -> str:
    lowered = cell.lower()
    if lowered in _YES:
        return "yes"
    if lowered in _NO:
        return "no"
    raise ValueError("is not yes or no")


def parse_metric(cell: str) -> float:
    """A fraction in [0, 1]; a value above 1 (or ending in %) is a percentage."""
    percent = cell.endswith("%")
    try:
        value = float(cell.rstrip("%").strip())
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(value) or value < 0 or value > 100 or (percent and value > 100):
        raise ValueError("is outside [0, 1] and [0, 100]")
    if percent or value > 1:
        return round(value / 100, 12)
    return value


def parse_year(cell: str) -> int:
    year = parse_count(cell)
    if not 1800 <= year <= 2100:
        raise ValueError("is not a year")
    return year


_FEATURE_PARSERS = {"int": parse_count, "bool": parse_flag, "cat": str}


def parse_row(layout: Layout, columns: list[str], line: int, cells: list[str]) -> tuple[Optional[ParsedRow], list[str]]:
    """The row's checked values, or None and the reasons it cannot be imported."""
    values = {column: cell.strip() for column, cell in zip(columns, cells)}
    problems: list[str] = []

    def checked(column: str, parser, cell: str):
        try:
            return parser(cell)
        except ValueError as exc:
            problems.append(f"{column} {cell!r} {exc}")
            return None

    for column in layout.required:
        if not values.get(column):
            problems.append(f"{column} is empty")
    features: dict[str, Parsed] = {}
    for feature, column in layout.features.items():
        if column in values:
            cell = values[column]
            features[feature] = checked(column, _FEATURE_PARSERS[FEATURES[feature]], cell) if cell else None
    metrics: dict[str, float] = {}
    for metric, column in layout.metrics.items():
        cell = values.get(column, "")
        if cell:
            value = checked(column, parse_metric, cell)
            if value is not None:
                metrics[metric] = value
    paper: dict[str, Parsed] = {}
    for attribute, column in layout.paper_fields.items():
        cell = values.get(column, "")
        if cell:
            paper[attribute] = checked(column, parse_year, cell) if attribute == "year" else cell
    if problems:
        return None, problems

    def optional(column: Optional[str]) -> Optional[str]:
        return (values.get(column) or None) if column else None

    return ParsedRow(
        line=line, paper_key=values[layout.paper_key], model=values[layout.model], dataset=optional(layout.dataset),
        features=features, metrics=metrics, paper=paper, source_url=optional(layout.source_url),
        model_family=optional(layout.model_family), notes=optional(layout.notes),
        curation_flags=optional(layout.curation_flags),
    ), []


# ---------------------------------------------------------------- settings

class NameResolver:
    """Which entity a raw name will land on, by the same rules as KnowledgeBase.save_paper
    (the alias table first, else the exact name), so rows can be grouped before saving."""

    def __init__(self, kb: KnowledgeBase) -> None:
        with kb.engine.connect() as conn:
            self.models = dict(conn.execute(text(
                "SELECT a.alias_key, m.name FROM model_aliases a JOIN models m ON m.id = a.model_id")).fetchall())
            self.datasets = dict(conn.execute(text(
                "SELECT a.alias_key, d.name FROM dataset_aliases a JOIN datasets d ON d.id = a.dataset_id")).fetchall())

    def model(self, raw: str) -> str:
        return normalize.lookup(raw, self.models) or raw.strip()

    def dataset(self, raw: Optional[str]) -> Optional[str]:
        if not raw:
            return None
        return normalize.lookup(raw, self.datasets) or raw.strip()


def _setting_part(layout: Layout, row: ParsedRow, column: str) -> tuple[str, str]:
    """(label, value) of one distinguishing column, spelled the way an export writes it back."""
    if column == layout.model:
        return "model", row.model
    if column == layout.dataset:
        return "dataset", row.dataset or UNREPORTED
    if column == layout.notes:
        notes = " ".join((row.notes or "").split())
        clipped = notes if len(notes) <= NOTES_IN_SETTING else notes[: NOTES_IN_SETTING - 1] + "…"
        return "notes", clipped or UNREPORTED
    feature = next(name for name, col in layout.features.items() if col == column)
    value = row.features.get(feature)
    return feature, UNREPORTED if value is None else str(value)


def assign_settings(rows: list[ParsedRow], layout: Layout, resolver: NameResolver) -> None:
    """Give rows of one paper x model x dataset distinct, deterministic settings.

    A lone row keeps the empty setting. Rows that share an entity key are told apart by the
    columns whose values differ among them, in `layout.distinguishing` order ("n_classes=2"),
    and, when even the notes agree, by their order in the file ("#2"). The labels depend only on
    the rows' contents, so re-importing the file, or its export, finds the same experiments.
    """
    groups: dict[tuple, list[ParsedRow]] = defaultdict(list)
    for row in rows:
        groups[(row.paper_key, resolver.model(row.model), resolver.dataset(row.dataset))].append(row)
    for members in groups.values():
        if len(members) == 1:
            members[0].setting = ""
            continue
        parts: list[list[str]] = [[] for _ in members]
        for column in layout.distinguishing:
            pairs = [_setting_part(layout, row, column) for row in members]
            if len({value for _, value in pairs}) > 1:
                for part, (label, value) in zip(parts, pairs):
                    part.append(f"{label}={value}")
                if len({", ".join(p) for p in parts}) == len(parts):
                    break
        labels = [", ".join(p) for p in parts]
        occurrence: Counter = Counter()
        for row, label in zip(members, labels):
            if labels.count(label) > 1:
                occurrence[label] += 1
                label = f"{label}, #{occurrence[label]}" if label else f"#{occurrence[label]}"
            row.setting = label


# ---------------------------------------------------------------- records

def experiment_record(row: ParsedRow, layout: Layout, filename: str) -> ExperimentRecord:
    confidence = FLAGGED_CONFIDENCE if row.curation_flags else 1.0
    source = Provenance("import", source_url=row.source_url, confidence=confidence)
    features: dict[str, FeatureField] = {}
    for name in FEATURES:
        if name not in row.features:
            features[name] = FeatureField.missing("not_reported", source, f"no {name} column in {filename}")
        elif row.features[name] is None:
            features[name] = FeatureField.missing("not_reported", source, f"empty cell in {filename}")
        else:
            features[name] = FeatureField.reported(row.features[name], source)
    measurements = [MeasurementRecord(metric, value, source, split=IMPORT_SPLIT) for metric, value in row.metrics.items()]
    return ExperimentRecord(
        model=row.model, dataset=row.dataset, features=features, measurements=measurements, setting=row.setting,
        model_family=row.model_family, notes=row.notes, curation_flags=row.curation_flags,
    )


def paper_record(rows: list[ParsedRow], filename: str) -> PaperRecord:
    fields: dict[str, Parsed] = {}
    for row in rows:
        for attribute, value in row.paper.items():
            fields.setdefault(attribute, value)
    return PaperRecord(
        ref_id=rows[0].paper_key, title=fields.get("title"), doi=fields.get("doi"), year=fields.get("year"),
        source_url=next((r.source_url for r in rows if r.source_url), None), source_file=filename, origin="import",
    )


# ---------------------------------------------------------------- the import

def scratch_copy(kb: KnowledgeBase) -> KnowledgeBase:
    """A writable in-memory copy of `kb`, for a dry run that goes through the real write path."""
    target = sqlite3.connect(":memory:", check_same_thread=False)
    raw = kb.engine.raw_connection()
    try:
        raw.driver_connection.backup(target)
    finally:
        raw.close()
    engine = create_engine("sqlite://", creator=lambda: target, poolclass=StaticPool)
    event.listen(engine, "connect", db._set_pragmas)
    db.migrate(engine)
    copy = KnowledgeBase(engine, kb.location, readonly=False)
    copy.ensure_catalog()
    return copy


def import_file(kb: KnowledgeBase, path: str | Path, *, dry_run: bool = False) -> ImportReport:
    """Import one CSV file; a dry run does the same work on a scratch copy of the KB."""
    table = read_table(path)
    filename = table.path.name
    report = ImportReport(file=str(table.path), layout=table.layout.name, dry_run=dry_run)
    report.problems.extend(table.problems)
    rows: list[ParsedRow] = []
    for line, cells in table.records:
        row, reasons = parse_row(table.layout, table.columns, line, cells)
        if row is None:
            report.problems.append(RowProblem(line, "; ".join(reasons)))
        else:
            rows.append(row)
    report.rows = len(table.records) + len(table.problems)
    target = scratch_copy(kb) if dry_run else kb
    assign_settings(rows, table.layout, NameResolver(target))
    papers: dict[str, list[ParsedRow]] = defaultdict(list)
    for row in rows:
        papers[row.paper_key].append(row)
    report.papers_in_file = len(papers)
    papers_before = target.counts()["papers"]
    for key, members in papers.items():
        try:
            result = target.save_paper(paper_record(members, filename),
                                       [experiment_record(r, table.layout, filename) for r in members])
        except (IntegrityError, ValueError) as exc:
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            report.problems.extend(RowProblem(r.line, f"paper {key!r} not saved ({reason})") for r in members)
            continue
        report.experiments_added += result.experiments_added
        report.experiments_skipped += result.experiments_skipped
        report.measurements_added += result.measurements_added
        for r in members:
            if r.model in result.unmatched_models:
                report.unmatched_models[r.model] += 1
            if r.dataset and r.dataset in result.unmatched_datasets:
                report.unmatched_datasets[r.dataset] += 1
    report.papers_added = target.counts()["papers"] - papers_before
    report.problems.sort(key=lambda p: p.line)
    report.rows_failed = len({p.line for p in report.problems})
    return report
