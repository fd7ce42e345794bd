"""Many PDFs into the KB: find the inputs, skip what is unchanged, extract (optionally in a process
pool), add OpenAlex metadata, and store each paper in one transaction.

Extraction runs in worker processes; every KB write happens here in the parent, because SQLite
has one writer and a connection must not cross a fork. A file that cannot be read, or whose
extraction fails, gets a status and a one-line reason and never stops the batch.
"""

from __future__ import annotations

import glob
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import UserError
from ..kb import KBError, KnowledgeBase, PaperRecord, Provenance
from ..kb.records import normalize_doi
from ..kb.schema import FileStatus
from .openalex import OpenAlex, OpenAlexError, apply_work, work_url_by_doi
from .pdf import PdfProblem, read_pdf, sha256_file

if TYPE_CHECKING:
    from .pipeline import DocumentResult

OK_STATUSES = ("ok", "no_results")
ERROR_STATUS = "error"  # extraction or storage failed; the reason says why
UNCHANGED = "unchanged; --force re-extracts"
NO_RESULTS = "no (model, dataset, metric) result found in the text or tables"
MISSING_REASON = "not found in the PDF's text or tables"


@dataclass
class FileOutcome:
    """What happened to one input: the row of the closing table and of `--json`."""

    source_file: str
    path: str
    status: str  # a kb file status (ok, no_results, not_pdf, ...) or "error"
    reason: Optional[str] = None
    sha256: Optional[str] = None
    n_pages: Optional[int] = None
    n_experiments: int = 0
    n_measurements: int = 0       # accepted: they pass the scorer's threshold (or a curator's review)
    n_needs_review: int = 0       # stored, waiting in `medicalrec kb review`
    title: Optional[str] = None
    doi: Optional[str] = None
    warnings: list[str] = field(default_factory=list)
    unmatched_models: list[str] = field(default_factory=list)
    unmatched_datasets: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status not in OK_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Extraction:
    """A worker's answer (picklable): the document's result, or why there is none."""

    path: str
    sha256: Optional[str]
    n_pages: Optional[int] = None
    metadata: dict = field(default_factory=dict)
    result: Optional["DocumentResult"] = None
    problem: Optional[tuple[str, str]] = None  # (pdf status, reason)
    error: Optional[str] = None  # an unexpected failure inside the extraction
    seconds: float = 0.0


# ---------------------------------------------------------------- inputs

def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """PDF files, folders (every *.pdf below, recursively) and globs, in order, without duplicates.
    A file named explicitly is taken whatever its suffix: `read_pdf` says what it really is."""
    found: list[Path] = []
    for item in inputs:
        raw = str(item)
        path = Path(raw).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf")
            if not matches:
                raise UserError(f"no *.pdf file under {raw}: pass PDF files, folders or globs")
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(raw):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            if not matches:
                raise UserError(f"no file matches {raw!r}: check the pattern")
        else:
            raise UserError(f"no such file or folder: {raw}")
        found.extend(matches)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


# ---------------------------------------------------------------- the worker side

def extract_path(path: str, min_confidence: Optional[float] = None) -> Extraction:
    """read_pdf + extract_document for one file; runs in a worker process (or in-process)."""
    from .pipeline import extract_document

    started = time.perf_counter()
    try:
        document = read_pdf(path)
    except PdfProblem as problem:
        return Extraction(path, _sha256_or_none(path), problem=(problem.status, problem.reason),
                          seconds=time.perf_counter() - started)
    except UserError as exc:  # unreadable (permissions, vanished)
        return Extraction(path, None, error=str(exc), seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 -- the batch's isolation boundary: one file's failure is its status
        return Extraction(path, _sha256_or_none(path), error=f"reading the PDF failed: {_one_line(exc)}",
                          seconds=time.perf_counter() - started)
    extraction = Extraction(path, document.sha256, n_pages=len(document.pages), metadata=document.metadata)
    try:
        extraction.result = extract_document(document, min_confidence=min_confidence)
    except Exception as exc:  # noqa: BLE001 -- as above: a pipeline failure on one file is that file's status
        extraction.error = _one_line(exc)
    extraction.seconds = time.perf_counter() - started
    return extraction


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def _sha256_or_none(path: str) -> Optional[str]:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _warm_worker() -> None:
    """Load the spaCy pipeline once per worker, before the first file."""
    from .pipeline import build_pipeline

    build_pipeline()


def _extract_all(paths: Sequence[str], workers: int, extract: Callable[[str], Extraction]) -> Iterator[Extraction]:
    if workers <= 1 or len(paths) <= 1:
        for path in paths:
            yield extract(path)
        return
    # spawn, not fork: the parent holds an open SQLite connection that must not be shared.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(paths)), mp_context=context,
                             initializer=_warm_worker) as pool:
        futures: dict[Future, str] = {pool.submit(extract, path): path for path in paths}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                yield Extraction(futures[future], None, error="a worker process died or could not start (out of memory?): "
                                                             "re-run with --workers 1")


# ---------------------------------------------------------------- the parent side

def run_batch(
    inputs: Iterable[str | Path],
    kb: KnowledgeBase,
    *,
    workers: int = 1,
    force: bool = False,
    doi: Optional[str] = None,
    openalex: Optional[OpenAlex] = None,
    on_start: Optional[Callable[[int], None]] = None,
    on_file: Optional[Callable[[FileOutcome], None]] = None,
    extract: Callable[[str], Extraction] = extract_path,
) -> list[FileOutcome]:
    """Extract every input into `kb`; returns one outcome per file, in input order.

    `doi` overrides the DOI of a single input (and re-extracts it). `on_start(total)` and `on_file(outcome)` drive a
    progress display. `extract` must be picklable when workers > 1.
    """
    paths = collect_inputs(inputs)
    if doi and len(paths) != 1:
        raise UserError(f"--doi names one paper but {len(paths)} files were given: pass a single PDF with --doi")
    if on_start:
        on_start(len(paths))
    names = _source_names(paths)
    outcomes: dict[str, FileOutcome] = {}
    pending: list[str] = []
    for path in paths:
        skipped = None if force or doi else _unchanged(kb, path, names[str(path)])
        if skipped is None:
            pending.append(str(path))
            continue
        outcomes[str(path)] = skipped
        if on_file:
            on_file(skipped)
    for extraction in _extract_all(pending, workers, extract):
        outcome = store_extraction(kb, extraction, names[extraction.path], openalex=openalex, doi=doi)
        outcomes[extraction.path] = outcome
        if on_file:
            on_file(outcome)
    return [outcomes[str(path)] for path in paths]


def _source_names(paths: Sequence[Path]) -> dict[str, str]:
    """The KB keys files by name; two files of one name in one batch get their parent folder too."""
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.name] = counts.get(path.name, 0) + 1
    return {str(p): p.name if counts[p.name] == 1 else f"{p.parent.name}/{p.name}" for p in paths}


def _unchanged(kb: KnowledgeBase, path: Path, name: str) -> Optional[FileOutcome]:
    sha = _sha256_or_none(str(path))
    paper = kb.paper_by_sha256(sha) if sha else None  # unreadable: the worker reports why
    if paper is None:
        return None
    with kb.session() as s:
        previous = s.get(FileStatus, name)
    if previous is not None and previous.sha256 == sha and previous.status in OK_STATUSES:
        n_pages, n_experiments, n_measurements = previous.n_pages, previous.n_experiments, previous.n_measurements
    else:
        n_pages = None
        n_experiments, n_measurements = _paper_counts(kb, paper.id)
    status = "ok" if n_measurements else "no_results"
    kb.record_file_status(name, status, sha256=sha, reason=UNCHANGED, n_pages=n_pages,
                          n_experiments=n_experiments, n_measurements=n_measurements)
    return FileOutcome(name, str(path), status, UNCHANGED, sha, n_pages, n_experiments, n_measurements,
                       title=paper.title, doi=paper.doi)


def _paper_counts(kb: KnowledgeBase, paper_id: int) -> tuple[int, int]:
    with kb.engine.connect() as conn:
        n_experiments = conn.execute(text(
            "SELECT COUNT(*) FROM experiments WHERE paper_id = :p"), {"p": paper_id}).scalar_one()
        n_measurements = conn.execute(text(
            "SELECT COUNT(*) FROM measurements m JOIN experiments e ON e.id = m.experiment_id"
            " WHERE e.paper_id = :p AND m.review_status = 'accepted'"), {"p": paper_id}).scalar_one()
    return n_experiments, n_measurements


def _experiment_counts(kb: KnowledgeBase, experiment_ids: list[int]) -> tuple[int, int, int]:
    """How many experiments this file's extraction maps to in the KB, with their accepted
    measurements and those waiting for review."""
    ids = sorted(set(experiment_ids))
    if not ids:
        return 0, 0, 0
    marks = ", ".join(f":e{i}" for i in range(len(ids)))
    with kb.engine.connect() as conn:
        counts = dict(conn.execute(text(f"SELECT review_status, COUNT(*) FROM measurements WHERE experiment_id IN"
                                        f" ({marks}) GROUP BY review_status"),
                                   {f"e{i}": v for i, v in enumerate(ids)}).all())
    return len(ids), counts.get("accepted", 0), counts.get("needs_review", 0)


def _metadata_from_openalex(openalex: Optional[OpenAlex], paper: PaperRecord) -> list[str]:
    if openalex is None:
        return []
    try:
        found = openalex.lookup(doi=paper.doi, title=paper.title)
    except OpenAlexError as exc:
        return [f"OpenAlex: {exc}"]
    if found.work is not None:
        apply_work(paper, found.work)
    return [f"OpenAlex: {found.note}"] if found.note and found.work is None else []


def save_result(kb: KnowledgeBase, paper: PaperRecord, result: "DocumentResult"
                ) -> tuple[int, int, int, list[str], list[str]]:
    """Store the paper and its experiments (one transaction); returns the paper's counts
    (experiments, accepted and waiting measurements) and the names the catalogue did not know."""
    paper.doi = normalize_doi(paper.doi)
    saved = kb.save_paper(
        paper, result.experiments, replace=True,
        missing_provenance=Provenance(method="sentence", source_url=paper.source_url), missing_reason=MISSING_REASON,
    )
    n_experiments, n_accepted, n_waiting = _experiment_counts(kb, saved.experiment_ids)
    return n_experiments, n_accepted, n_waiting, saved.unmatched_models, [d for d in saved.unmatched_datasets if d]


def store_extraction(kb: KnowledgeBase, extraction: Extraction, name: str, *,
                     openalex: Optional[OpenAlex] = None, doi: Optional[str] = None) -> FileOutcome:
    """Turn a worker's answer into KB rows and a file status."""
    outcome = FileOutcome(name, extraction.path, "ok", sha256=extraction.sha256, n_pages=extraction.n_pages,
                          seconds=round(extraction.seconds, 3))
    if extraction.problem is not None:
        outcome.status, outcome.reason = extraction.problem
        kb.record_file_status(name, outcome.status, sha256=extraction.sha256, reason=outcome.reason)
        return outcome
    if extraction.error is not None:
        return _failed(kb, outcome, f"extraction error ({extraction.error})")

    result = extraction.result
    paper = PaperRecord(
        sha256=extraction.sha256, source_file=name, origin="extract",
        title=result.title or extraction.metadata.get("title"),
        doi=doi or extraction.metadata.get("doi") or result.doi,
        year=result.year or extraction.metadata.get("year"),
    )
    outcome.warnings = _metadata_from_openalex(openalex, paper) + list(result.warnings)
    try:
        (outcome.n_experiments, outcome.n_measurements, outcome.n_needs_review,
         outcome.unmatched_models, outcome.unmatched_datasets) = save_result(kb, paper, result)
    except (KBError, ValueError, SQLAlchemyError) as exc:
        return _failed(kb, outcome, f"not stored ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})")
    outcome.title, outcome.doi = paper.title, paper.doi
    outcome.status = "ok" if outcome.n_measurements else "no_results"
    openalex_notes = [w for w in outcome.warnings if w.startswith("OpenAlex:")]
    from .pipeline import SKIPPED_NOTES  # spaCy loads with it: not at CLI start-up

    why_none = next((w for w in result.warnings if w in SKIPPED_NOTES), NO_RESULTS)
    if outcome.n_needs_review and why_none == NO_RESULTS:
        why_none = (f"no result passed the scorer's threshold; {outcome.n_needs_review} wait for review "
                    "(medicalrec kb review)")
    outcome.reason = "; ".join(([] if outcome.status == "ok" else [why_none]) + openalex_notes) or None
    kb.record_file_status(name, outcome.status, sha256=extraction.sha256, reason=outcome.reason,
                          n_pages=extraction.n_pages, n_experiments=outcome.n_experiments,
                          n_measurements=outcome.n_measurements)
    return outcome


def _failed(kb: KnowledgeBase, outcome: FileOutcome, reason: str) -> FileOutcome:
    outcome.status, outcome.reason = ERROR_STATUS, reason
    kb.record_file_status(outcome.source_file, ERROR_STATUS, sha256=outcome.sha256, reason=reason,
                          n_pages=outcome.n_pages)
    return outcome


# ---------------------------------------------------------------- one DOI, no PDF

def extract_doi(doi: str, kb: KnowledgeBase, openalex: OpenAlex) -> FileOutcome:
    """`extract --doi DOI` without a PDF: the OpenAlex abstract is the text."""
    started = time.perf_counter()
    url = work_url_by_doi(doi, openalex.config.base_url)
    work = openalex.work_by_doi(doi)
    if work is None:
        raise UserError(f"DOI {normalize_doi(doi)} is not in OpenAlex: check it, or pass the paper's PDF")
    paper = PaperRecord(doi=work.doi or normalize_doi(doi), origin="extract")
    apply_work(paper, work)
    outcome = FileOutcome(f"doi:{paper.doi}", url, "ok", title=paper.title, doi=paper.doi)
    from .pipeline import DocumentResult, extract_from_text

    if work.abstract:
        result = extract_from_text(work.abstract, source_url=paper.source_url)
    else:
        result = DocumentResult(title=paper.title, doi=paper.doi, year=paper.year, experiments=[],
                                warnings=["OpenAlex has no abstract for this work"])
    outcome.warnings = list(result.warnings)
    (outcome.n_experiments, outcome.n_measurements, outcome.n_needs_review,
     outcome.unmatched_models, outcome.unmatched_datasets) = save_result(kb, paper, result)
    outcome.status = "ok" if outcome.n_measurements else "no_results"
    if outcome.status == "no_results":
        outcome.reason = "OpenAlex has no abstract for this work" if not work.abstract else \
            f"{NO_RESULTS} (abstract only: pass the PDF for tables)"
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome
