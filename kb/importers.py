"""`kb import`: a CSV file in a known layout (kb/layouts.py) -> papers, experiments, measurements.

Three steps, each testable on its own: `read_table` (encoding, header, layout, ragged rows),
`parse_row` (one row's cells -> checked values, or the reasons it is bad) and `import_file`
(metric scales per paper, settings, identities, one `save_paper` transaction per paper). Bad rows
are reported with their physical line number and skipped; good rows land. Nothing is lost
silently: rows read = rows stored (added or already present) + rows reported failed.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import create_engine

from ..errors import UserError
from . import db, normalize
from .layouts import LAYOUTS, Layout
from .records import (
    ExperimentRecord,
    FeatureField,
    MeasurementRecord,
    PaperRecord,
    Provenance,
    experiment_identity,
    normalize_doi,
)
from .schema import FEATURES
from .store import KnowledgeBase
from .values import (  # noqa: F401  (parse_count, parse_flag, parse_metric, parse_year: the importer's API)
    MetricReading,
    parse_count,
    parse_feature_count,
    parse_flag,
    parse_label,
    parse_metric,
    parse_year,
    read_metric,
    scale_column,
)

# Rows the curators flagged (approximate value, leaderboard value, descriptive title ...) are
# kept, with lower confidence, so a reader can weigh them.
FLAGGED_CONFIDENCE = 0.8
# The published tables do not say which split a headline metric comes from.
IMPORT_SPLIT = "unspecified"
UNREPORTED = "unreported"  # how an empty cell reads inside a setting label
NOTES_IN_SETTING = 60
# A quoted field may span lines, but not without end: past this many lines a quote that never
# closes is a damaged row, and reading resumes on the line after it.
MAX_RECORD_LINES = 200

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
    readings: dict[str, MetricReading] = field(default_factory=dict)  # metric -> cell, scale undecided
    group: str = ""  # the paper the row lands in: its DOI, else its reference id (see group_papers)
    identity: Optional[str] = None


@dataclass
class ImportReport:
    file: str
    layout: str
    dry_run: bool
    rows: int = 0
    rows_stored: int = 0  # added or already present; rows = rows_stored + rows_failed
    rows_failed: int = 0
    papers_in_file: int = 0
    papers_added: int = 0
    experiments_added: int = 0
    experiments_skipped: int = 0
    measurements_added: int = 0
    unmatched_models: Counter = field(default_factory=Counter)  # raw name -> rows
    unmatched_datasets: Counter = field(default_factory=Counter)
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)  # stored, but worth a look (conflicting titles)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "file": self.file, "layout": self.layout, "dry_run": self.dry_run, "rows": self.rows,
            "rows_stored": self.rows_stored, "rows_failed": self.rows_failed, "papers_in_file": self.papers_in_file,
            "papers_added": self.papers_added, "experiments_added": self.experiments_added,
            "experiments_skipped": self.experiments_skipped, "measurements_added": self.measurements_added,
            "unmatched_models": dict(self.unmatched_models.most_common()),
            "unmatched_datasets": dict(self.unmatched_datasets.most_common()),
            "errors": [str(p) for p in self.problems], "warnings": [str(p) for p in self.warnings],
        }


# ---------------------------------------------------------------- reading

def read_table(path: str | Path) -> Table:
    """The file's layout and records. Unusable files raise UserError; ragged or undelimitable
    records become problems naming their line, and reading goes on at the next line."""
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file" if path.exists() else "no such file"
        raise UserError(f"{what}: {path}: check the FILE argument (a CSV file)" if what != "no such file"
                        else f"no such file: {path}: check the FILE argument")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}): check the FILE argument") from exc
    content = decode(raw, path)
    if not content.strip():
        raise UserError(f"{path} is empty: expected a header line and one row per result")
    lines = physical_lines(content)
    try:
        header = next(csv.reader([lines[0]], strict=True), [])
    except csv.Error as exc:
        raise UserError(f"{path} line 1: the header is not valid CSV ({exc}): fix the header line") from exc
    layout, columns = detect_layout(header, path)
    records: list[tuple[int, list[str]]] = []
    problems: list[RowProblem] = []
    index = 1
    while index < len(lines):
        cells, consumed, problem = delimit(lines, index, len(columns))
        if problem is not None:
            problems.append(problem)
        elif cells is not None and any(cell.strip() for cell in cells):
            records.append((index + 1, cells))
        index += consumed
    return Table(path, layout, columns, records, problems)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(raw: bytes, path: Path) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 when a BOM says so; anything else is refused."""
    encoding = "utf-16" if raw.startswith(_UTF16_BOMS) else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not {'UTF-16' if encoding == 'utf-16' else 'UTF-8'} (byte 0x{raw[exc.start]:02x}"
                        f" at offset {exc.start}): re-save it as UTF-8") from exc


_LINE_END = re.compile(r"\r\n|\r|\n")


def physical_lines(content: str) -> list[str]:
    """The file's lines with their line ends, split where the csv module ends a line."""
    lines, position = [], 0
    for match in _LINE_END.finditer(content):
        lines.append(content[position:match.end()])
        position = match.end()
    if position < len(content):
        lines.append(content[position:])
    return lines


def _fields_alone(line: str) -> Optional[list[str]]:
    """The fields of one line read on its own, or None when it is no complete record."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        return None


def delimit(lines: list[str], index: int, width: int) -> tuple[Optional[list[str]], int, Optional[RowProblem]]:
    """The record starting at `lines[index]`: (cells, lines consumed, None), or (None, lines to skip,
    the problem). A row whose quotes cannot be balanced costs that line only: a quoted field may
    span lines, but when the record it makes has the wrong width, or swallows a line that is a
    complete record by itself, the quote is the damage, not a line break inside a cell."""
    line_number = index + 1
    consumed = 0

    def feed():
        nonlocal consumed
        for line in lines[index:index + MAX_RECORD_LINES]:
            consumed += 1
            yield line

    at_end = not lines[-1].endswith(("\n", "\r"))
    try:
        cells = next(csv.reader(feed(), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            hit_eof = index + consumed >= len(lines)
            where = ("the file may be truncated" if hit_eof and at_end
                     else f"reading resumes at line {line_number + 1}")
            return None, 1, RowProblem(line_number, f"cannot delimit the row: a quote opened on it never closes ({where})")
        return None, 1, RowProblem(line_number, f"malformed CSV ({exc}); the row is skipped and reading resumes"
                                                f" at line {line_number + 1}")
    if consumed > 1:
        swallowed = next((line_number + k for k in range(1, consumed)
                          if len(_fields_alone(lines[index + k]) or ()) == width), None)
        if len(cells) != width or swallowed is not None:
            why = (f"line {swallowed} would be swallowed" if swallowed is not None
                   else f"the record it makes has {len(cells)} fields, not {width}")
            return None, 1, RowProblem(line_number, f"cannot delimit the row: a quote opened on it closes only on line"
                                                    f" {line_number + consumed - 1} and {why}; reading resumes at line"
                                                    f" {line_number + 1}")
        return cells, consumed, None
    if cells and len(cells) != width and any(cell.strip() for cell in cells):
        hint = "the file looks truncated" if at_end and index + consumed >= len(lines) else "ragged row"
        return None, consumed, RowProblem(line_number, f"expected {width} fields, found {len(cells)} ({hint})")
    return cells, consumed, None


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

_FEATURE_PARSERS = {"bool": parse_flag, "cat": parse_label}
_ESCAPED_FORMULA = re.compile(r"^'[=+\-@\t\r]")


def unescape_formula(cell: str) -> str:
    """A cell `kb export` escaped for spreadsheets ("'=x", exporters.escape_formula) reads back as written."""
    return cell[1:] if _ESCAPED_FORMULA.match(cell) else cell


def _feature_parser(feature: str):
    if FEATURES[feature] == "int":
        return lambda cell: parse_feature_count(feature, cell)
    return _FEATURE_PARSERS[FEATURES[feature]]


def parse_row(layout: Layout, columns: list[str], line: int, cells: list[str]) -> tuple[Optional[ParsedRow], list[str]]:
    """The row's checked values, or None and the reasons it cannot be imported."""
    values = {column: unescape_formula(cell.strip()) for column, cell in zip(columns, cells)}
    problems: list[str] = []

    def checked(column: str, parser, cell: str):
        try:
            return parser(cell)
        except ValueError as exc:
            problems.append(f"{column} {cell!r} {exc}")
            return None

    for column, cell in values.items():
        if "\x00" in cell:  # binary damage, never text a curator wrote
            problems.append(f"{column} holds a NUL byte")
    for column in layout.required:
        if not values.get(column):
            problems.append(f"{column} is empty")
    features: dict[str, Parsed] = {}
    for feature, column in layout.features.items():
        if column in values:
            cell = values[column]
            features[feature] = checked(column, _feature_parser(feature), cell) if cell else None
    readings: dict[str, MetricReading] = {}
    for metric, column in layout.metrics.items():
        cell = values.get(column, "")
        if cell:
            reading = checked(column, lambda c: read_metric(c, line), cell)
            if reading is not None:
                readings[metric] = reading
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
        features=features, metrics={}, paper=paper, source_url=optional(layout.source_url),
        model_family=optional(layout.model_family), notes=optional(layout.notes),
        curation_flags=optional(layout.curation_flags), readings=readings,
    ), []


# ---------------------------------------------------------------- papers and metric scales

def group_papers(rows: list[ParsedRow]) -> list[RowProblem]:
    """Set each row's paper (`group`): its DOI, else a DOI another row of its reference id gives,
    else the reference id, as the KB identifies papers. Returns a warning for each paper field
    (title, year, DOI) that disagrees with the paper's first value, which is the one kept."""
    doi_of_ref: dict[str, str] = {}
    for row in rows:
        doi = normalize_doi(row.paper.get("doi"))  # type: ignore[arg-type]
        if doi:
            doi_of_ref.setdefault(row.paper_key, doi)
    for row in rows:
        doi = doi_of_ref.get(row.paper_key)
        row.group = f"doi:{doi}" if doi else f"ref:{row.paper_key}"
    warnings: list[RowProblem] = []
    first: dict[tuple[str, str], tuple[object, int]] = {}
    for row in rows:
        for attribute, value in row.paper.items():
            if value is None:
                continue
            compared = normalize_doi(value) if attribute == "doi" else value  # type: ignore[arg-type]
            kept = first.setdefault((row.group, attribute), (compared, row.line))
            if kept[0] != compared:
                warnings.append(RowProblem(row.line, f"warning: {attribute} {value!r} differs from {kept[0]!r} (line"
                                                     f" {kept[1]}) for the same paper; the first is kept"))
    return warnings


def scale_metrics(rows: list[ParsedRow], layout: Layout) -> dict[int, list[str]]:
    """Turn every row's metric readings into fractions, the scale decided per metric column within
    each paper (values.scale_column). Returns the reasons of the rows whose value is ambiguous."""
    columns: dict[tuple[str, str], list[ParsedRow]] = defaultdict(list)
    for row in rows:
        for metric in row.readings:
            columns[(row.group, metric)].append(row)
    failures: dict[int, list[str]] = defaultdict(list)
    for (_, metric), members in columns.items():
        results = scale_column([row.readings[metric] for row in members], layout.metrics[metric])
        for row, (value, reason) in zip(members, results):
            if reason is not None:
                failures[row.line].append(reason)
            else:
                row.metrics[metric] = value  # type: ignore[assignment]
    return failures


# ---------------------------------------------------------------- settings and identities

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
    if column == layout.paper_key:
        return "ref_id", row.paper_key
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
    """Give rows of one paper x model x dataset distinct, deterministic setting labels.

    A lone row keeps the empty setting. Rows that share an entity key are told apart by the
    columns whose values differ among them, in `layout.distinguishing` order ("n_classes=2"),
    and, when even the notes agree, by their order in the file ("#2"). Labels are for people:
    whether a row is already stored is decided by its identity (assign_identities), which does
    not depend on the rows it was imported with.
    """
    groups: dict[tuple, list[ParsedRow]] = defaultdict(list)
    for row in rows:
        groups[(row.group, resolver.model(row.model), resolver.dataset(row.dataset))].append(row)
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


def assign_identities(rows: list[ParsedRow]) -> None:
    """Each row's identity within its paper (records.experiment_identity): its content, and for
    identical rows their occurrence (the second copy of a row is a second experiment)."""
    seen: Counter = Counter()
    for row in rows:
        content = experiment_identity(row.paper_key, row.model, row.dataset, row.features, row.metrics, row.notes)
        seen[(row.group, content)] += 1
        row.identity = experiment_identity(row.paper_key, row.model, row.dataset, row.features, row.metrics,
                                           row.notes, occurrence=seen[(row.group, content)])


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
        identity=row.identity, ref_id=row.paper_key,
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
    db.migrate(engine, kb.location)
    copy = KnowledgeBase(engine, kb.location, readonly=False)
    copy.ensure_catalog()
    return copy


def disk_failure(exc: BaseException) -> Optional[str]:
    """SQLite's reason when a write failed for want of disk (or the disk failed), else None."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0] if str(getattr(exc, "orig", exc)) else ""
    return reason if ("disk is full" in reason or "disk I/O error" in reason) else None


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
    report.warnings.extend(group_papers(rows))
    ambiguous = scale_metrics(rows, table.layout)
    report.problems.extend(RowProblem(line, "; ".join(reasons)) for line, reasons in ambiguous.items())
    rows = [row for row in rows if row.line not in ambiguous]
    target = scratch_copy(kb) if dry_run else kb
    assign_settings(rows, table.layout, NameResolver(target))
    assign_identities(rows)
    papers: dict[str, list[ParsedRow]] = defaultdict(list)
    for row in rows:
        papers[row.group].append(row)
    report.papers_in_file = len(papers)
    papers_before = target.counts()["papers"]
    committed = 0
    for key, members in papers.items():
        try:
            result = target.save_paper(paper_record(members, filename),
                                       [experiment_record(r, table.layout, filename) for r in members])
        except (IntegrityError, ValueError, OverflowError) as exc:
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            paper = members[0].paper_key
            report.problems.extend(RowProblem(r.line, f"paper {paper!r} not saved ({reason})") for r in members)
            continue
        except (OperationalError, sqlite3.OperationalError) as exc:
            reason = disk_failure(exc)
            if reason is None:
                raise
            what = "is full" if "full" in reason else "failed"
            raise db.KBError(
                f"the disk holding the KB ({db.mount_point(target.location.path)}) {what} while importing {filename}"
                f" ({reason}): {committed} paper(s) were committed before it and the KB is consistent; free space"
                " and run the import again (it adds only the missing rows)") from exc
        committed += 1
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
    report.warnings.sort(key=lambda p: p.line)
    report.rows_failed = len({p.line for p in report.problems})
    report.rows_stored = report.experiments_added + report.experiments_skipped
    return report
