"""`kb import` of benchmark result tables: recognise a file's layout by its header, map each row
to an experiment (origin `benchmark`, so `source_kind = 'benchmark'`), store it in batches.

The layouts are data (kb/benchmark_sources.py); this module interprets them. Three steps:
`read_csv_records` / `read_markdown_tables` (header, records with their physical line, ragged
rows), a row mapper per layout shape (kb/benchmark_rows.py: cells -> `BenchRow`, or a skip reason
the README names, or a problem naming the line) and `store_rows` (kb/benchmark_store.py: one
transaction per file, executemany inserts). `import_benchmarks` walks a folder and
names every file it skips and why. Re-importing adds nothing: experiments are found by
(paper, model, dataset, setting) and measurements by their unique key.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .benchmark_rows import LONG_MAPPERS, BenchRow, RowError, RowSkip, markdown_rows, wide_rows
from .benchmark_sources import DOCUMENTATION_FILES, EVA_SEGMENTATION, LAYOUTS, LAYOUTS_BY_NAME, MEDMNIST_DATASETS, Layout
from .benchmark_store import link_duplicate_facts, store_rows, sync_dataset_metadata
from .importers import RowProblem
from .store import KnowledgeBase


@dataclass
class FileReport:
    file: str  # relative to the imported folder
    layout: Optional[str] = None
    skipped: Optional[str] = None  # why the whole file was not imported
    rows: int = 0  # data rows (markdown: model rows) read
    rows_imported: int = 0  # rows that became (or already were) an experiment or measurement
    rows_skipped: Counter = field(default_factory=Counter)  # reason -> rows left out by a README rule
    experiments_added: int = 0
    experiments_present: int = 0
    measurements_added: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    note: Optional[str] = None

    @property
    def rows_failed(self) -> int:
        return len({p.line for p in self.problems if p.line > 1})

    def to_dict(self) -> dict:
        return {"file": self.file, "layout": self.layout, "skipped": self.skipped, "rows": self.rows,
                "rows_imported": self.rows_imported, "rows_skipped": dict(self.rows_skipped),
                "rows_failed": self.rows_failed, "experiments_added": self.experiments_added,
                "experiments_present": self.experiments_present, "measurements_added": self.measurements_added,
                "errors": [str(p) for p in self.problems], "note": self.note}


@dataclass
class BenchmarkImport:
    path: str
    dry_run: bool
    files: list[FileReport] = field(default_factory=list)
    fact_links_added: int = 0
    aggregates_unmatched: int = 0
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        return [f"{f.file} {p}" for f in self.files for p in f.problems]

    def by_source(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for f in self.files:
            if f.layout is None:
                continue
            source = LAYOUTS_BY_NAME[f.layout].source
            t = totals.setdefault(source, Counter())
            t["files"] += 1
            t["rows"] += f.rows
            t["rows_imported"] += f.rows_imported
            t["rows_skipped"] += sum(f.rows_skipped.values())
            t["rows_failed"] += f.rows_failed
            t["experiments_added"] += f.experiments_added
            t["measurements_added"] += f.measurements_added
        return {k: dict(v) for k, v in totals.items()}

    def to_dict(self) -> dict:
        return {"path": self.path, "dry_run": self.dry_run, "seconds": round(self.seconds, 2),
                "by_source": self.by_source(), "fact_links_added": self.fact_links_added,
                "aggregates_unmatched": self.aggregates_unmatched, "files": [f.to_dict() for f in self.files]}


# ---------------------------------------------------------------- provenance (SOURCES.md)

@dataclass(frozen=True)
class FileSource:
    repo: str
    commit: str
    original_path: str
    md5: str


def read_sources_md(folder: Path) -> dict[str, FileSource]:
    """SOURCES.md's file table: local path -> repo, commit, original path, md5."""
    path = folder / "SOURCES.md"
    if not path.is_file():
        return {}
    table: dict[str, FileSource] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and re.fullmatch(r"[0-9a-f]{40}", cells[2]) and re.fullmatch(r"[0-9a-f]{32}", cells[5]):
            table[cells[0]] = FileSource(cells[1], cells[2], cells[3], cells[5])
    return table


def _sources_root(path: Path) -> Path:
    """The folder whose SOURCES.md describes `path` (its nearest ancestor holding one)."""
    for parent in [path.parent, *path.parents]:
        if (parent / "SOURCES.md").is_file():
            return parent
    return path.parent


# ---------------------------------------------------------------- reading

@dataclass
class RawTable:
    header: list[str]
    records: list[tuple[int, list[str]]]
    problems: list[RowProblem]
    sections: list[tuple[str, int]] = field(default_factory=list)  # markdown: (heading, line)


def read_csv_records(text: str) -> RawTable:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return RawTable([], [], [])
    records, problems = [], []
    last = reader.line_num
    while True:
        start = last + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(start, f"malformed CSV ({exc})"))
            last = reader.line_num
            continue
        last = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank lines (fined_pneumonia.csv ends with 21)
        if len(cells) != len(header):
            problems.append(RowProblem(start, f"expected {len(header)} fields, found {len(cells)} (ragged row)"))
            continue
        records.append((start, cells))
    return RawTable(header, records, problems)


def read_markdown_tables(text: str) -> RawTable:
    """torchxrayvision's BENCHMARKS.md: each `## heading` followed by a `|Model Name|...` table.
    Records are (line, [heading, *cells]) with the table's header per record in `sections`."""
    table = RawTable(["Model Name"], [], [])
    heading, columns = None, None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("## "):
            heading, columns = stripped[3:].strip(), None
            continue
        if not stripped.startswith("|"):
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if cells and cells[0] == "Model Name":
            columns = cells
            table.sections.append((heading or "", number))
            continue
        if columns is None or all(set(c) <= set("-: ") for c in cells):
            continue
        if len(cells) != len(columns):
            table.problems.append(RowProblem(number, f"expected {len(columns)} cells, found {len(cells)} (ragged row)"))
            continue
        table.records.append((number, [heading or "", json.dumps(columns), *cells]))
    return table


def recognise(header: list[str]) -> Optional[Layout]:
    cells = [c.strip() for c in header]
    for layout in LAYOUTS:
        if layout.shape == "markdown":
            continue
        if all(r in cells for r in layout.required):
            if layout.name == "eva" and cells[0] != "model":
                continue
            if layout.name == "medmnist_aggregate" and not any(c.endswith("mnist") for c in cells):
                continue
            return layout
    return None


# ---------------------------------------------------------------- one file

def _unknown_columns(layout: Layout, header: list[str]) -> list[tuple[int, str]]:
    if layout.name == "medmnist_aggregate":
        allowed = {"", "source", *MEDMNIST_DATASETS}
    else:
        allowed = {*layout.required, *layout.known}
    return [(i, c) for i, c in enumerate(header, start=1)
            if c.strip() not in allowed and not c.startswith(layout.known_prefixes or ("\0",))]


def _dedupe(rows: list[BenchRow], report: FileReport) -> list[BenchRow]:
    """One row per (model, dataset, setting): an exact repeat (retries of one checkpoint, lines
    listed twice) is skipped and counted; a repeat with another result is a problem, never a guess."""
    kept: dict[tuple, BenchRow] = {}
    for row in rows:
        key = (row.model, row.dataset, row.setting)
        first = kept.get(key)
        if first is None:
            kept[key] = row
        elif sorted(m[:4] for m in first.metrics) == sorted(m[:4] for m in row.metrics):
            report.rows_skipped["exact repeat of an earlier line (same protocol, same result)"] += 1
        elif first.line == row.line:
            first.metrics.extend(m for m in row.metrics if m[:3] not in {x[:3] for x in first.metrics})
        else:
            report.problems.append(RowProblem(row.line, f"same model, dataset and protocol as line {first.line}"
                                                        " but another result: fix or remove one of them"))
    return list(kept.values())


def _mark_best_on_val(rows: list[BenchRow]) -> None:
    """In each sweep, the run with the lowest val_loss is the one the source selects
    (`groupby(source_flag).val_loss.idxmin()` in the authors' notebooks); ties go to the first."""
    best: dict[str, BenchRow] = {}
    for row in rows:
        if row.sweep is None:
            continue
        row.is_best_on_val = 0
        if row.val_loss is not None and (row.sweep not in best or row.val_loss < best[row.sweep].val_loss):
            best[row.sweep] = row
    for row in best.values():
        row.is_best_on_val = 1


def import_file(kb: KnowledgeBase, path: Path, *, root: Optional[Path] = None,
                sources: Optional[dict[str, FileSource]] = None) -> FileReport:
    """Import one benchmark file; the report says what landed, what a README rule left out, and
    which lines are broken (their good neighbours still land)."""
    path = Path(path)
    root = root or _sources_root(path)
    sources = read_sources_md(root) if sources is None else sources
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = path.name
    report = FileReport(relative)
    if path.name in DOCUMENTATION_FILES:
        report.skipped = "documentation, not a results table"
        return report
    if path.suffix.lower() not in (".csv", ".md"):
        report.skipped = "not a .csv or .md file"
        return report
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.skipped = f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        return report
    if path.suffix.lower() == ".md":
        table = read_markdown_tables(text)
        if not table.sections:
            report.skipped = "no '|Model Name|' table: not a benchmark layout"
            return report
        layout = LAYOUTS_BY_NAME["torchxrayvision"]
    else:
        table = read_csv_records(text)
        layout = recognise(table.header)
        if layout is None:
            shown = ", ".join(table.header[:4]) + (", ..." if len(table.header) > 4 else "")
            report.skipped = f"header ({shown}) matches no benchmark layout in kb/benchmark_sources.py"
            return report
    report.layout = layout.name
    file_source = sources.get(relative)
    if file_source is not None and hashlib.md5(raw).hexdigest() != file_source.md5:
        report.note = "md5 differs from SOURCES.md: the commit named there may not be this file's"
    report.problems.extend(table.problems)
    unknown = [] if layout.shape == "markdown" else _unknown_columns(layout, table.header)
    for position, name in unknown:
        report.problems.append(RowProblem(1, f"unknown column {name!r} (field {position}) is not in the {layout.name}"
                                             " layout: its cells are not imported; add it to kb/benchmark_sources.py"))
    dropped = [c for c in table.header if c in EVA_SEGMENTATION] if layout.name == "eva" else []
    if dropped:
        report.note = f"columns {', '.join(dropped)} left out: segmentation (Dice), not classification"
    unknown_names = {name for _, name in unknown}
    header = [("\0unknown" if c in unknown_names else c.strip()) for c in table.header]
    rows: list[BenchRow] = []
    for line, cells in table.records:
        try:
            if layout.shape == "long":
                rows.append(LONG_MAPPERS[layout.name](layout, dict(zip(header, cells)), line, layout.source))
            elif layout.shape == "wide":
                rows.extend(wide_rows(layout, header, line, cells, layout.source))
            else:
                rows.extend(markdown_rows(layout, line, cells, layout.source))
        except RowSkip as skip:
            report.rows_skipped[str(skip)] += 1
        except (RowError, KeyError) as exc:
            report.problems.append(RowProblem(line, str(exc) if isinstance(exc, RowError) else f"no {exc} cell"))
    report.rows = len(table.records) + len({p.line for p in table.problems})
    rows = _dedupe(rows, report)
    _mark_best_on_val(rows)
    if not rows and not report.problems and not report.rows_skipped:
        report.skipped = "no data rows"
        return report
    store_rows(kb, layout, relative, file_source, rows, report)
    report.rows_imported = len({r.line for r in rows})
    report.problems.sort(key=lambda p: p.line)
    return report


# ---------------------------------------------------------------- a folder

def is_benchmark_file(path: Path) -> bool:
    """Whether `kb import` should read `path` as a benchmark table (a folder always is)."""
    path = Path(path)
    if path.is_dir():
        return True
    if not path.is_file() or path.suffix.lower() not in (".csv", ".md"):
        return False
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            if path.suffix.lower() == ".md":
                return "|ModelName|" in fh.read().replace(" ", "")
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return recognise(header) is not None


def import_benchmarks(kb: KnowledgeBase, path: str | Path, *, dry_run: bool = False,
                      on_file: Optional[Callable[[Path], None]] = None) -> BenchmarkImport:
    """Import a benchmark file, or every file of a folder whose layout is recognised; the report
    names each file skipped and why. A dry run does the same work on a scratch copy of the KB."""
    import time

    from ..errors import UserError
    from .importers import scratch_copy

    start = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}: check the PATH argument")
    target = scratch_copy(kb) if dry_run else kb
    root = path if path.is_dir() else _sources_root(path)
    files = ([p for p in sorted(path.rglob("*")) if p.is_file() and not any(part.startswith(".") for part in
              p.relative_to(path).parts)] if path.is_dir() else [path])
    sources = read_sources_md(root)
    result = BenchmarkImport(str(path), dry_run)
    sync_dataset_metadata(target)
    for file in files:
        if on_file:
            on_file(file)
        result.files.append(import_file(target, file, root=root, sources=sources))
    result.fact_links_added, result.aggregates_unmatched = link_duplicate_facts(target)
    result.seconds = time.perf_counter() - start
    return result


def render_benchmark_import(report: BenchmarkImport, console) -> None:
    """Per source: rows read, imported, left out by a README rule, failed; then the skipped files."""
    from rich.table import Table

    verb = "would add" if report.dry_run else "added"
    table = Table(title=f"Benchmark import of {report.path} ({report.seconds:.1f} s)")
    for column in ("source", "files", "rows", "imported", "left out (rule)", "failed", f"experiments {verb}",
                   f"measurements {verb}"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, t in sorted(report.by_source().items()):
        table.add_row(source, *(str(t.get(k, 0)) for k in ("files", "rows", "rows_imported", "rows_skipped",
                                                            "rows_failed", "experiments_added", "measurements_added")))
    console.print(table)
    reasons: Counter = Counter()
    for f in report.files:
        reasons.update(f.rows_skipped)
    for reason, n in reasons.most_common():
        console.print(f"left out: {n} rows: {reason}", markup=False, highlight=False)
    for f in report.files:
        if f.skipped:
            console.print(f"skipped {f.file}: {f.skipped}", markup=False, highlight=False)
        if f.note:
            console.print(f"note {f.file}: {f.note}", markup=False, highlight=False)
    console.print(f"duplicate facts linked: {report.fact_links_added} (authors' table cells = their runs);"
                  f" aggregate figures without a run: {report.aggregates_unmatched}", markup=False, highlight=False)
