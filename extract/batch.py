"""Many PDFs into the KB: find the inputs, skip what is unchanged, extract (optionally in a process
pool), add OpenAlex metadata, and store each paper in one transaction.

Extraction runs in worker processes; every KB write happens here in the parent, because SQLite
has one writer and a connection must not cross a fork. A file that cannot be read, or whose
extraction fails, gets a status and a one-line reason and never stops the batch.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
import time
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
from .pdf import PdfProblem, read_pdf, sha256_file, text_limits
from .workers import Limits, run_extractions, run_limited

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
    A file named explicitly is taken whatever its suffix or kind: `read_pdf` says what it really is.

    Names are taken as the bytes they are (a name that is not UTF-8 is kept, surrogate-escaped);
    folders are walked once each, by inode, so a symbolic link back up the tree is not followed twice.
    """
    found: list[Path] = []
    for item in inputs:
        raw = os.fsdecode(item) if isinstance(item, bytes) else str(item)
        path = Path(raw).expanduser()
        if path.is_dir():
            matches = sorted(p for p in _walk_files(path) if p.suffix.lower() == ".pdf")
            if not matches:
                raise UserError(f"no *.pdf file under {display(raw)} (its subfolders included): pass PDF files, "
                                "folders or globs")
        elif path.exists() or path.is_symlink():
            matches = [path]  # a file, a FIFO, a device or a broken link: each gets a status
        elif glob.has_magic(raw):
            matches = sorted(_glob_files(str(path)))
            if not matches:
                raise UserError(f"no file matches {display(raw)!r}: check the pattern")
        else:
            raise UserError(f"no such file or folder: {display(raw)}")
        found.extend(matches)
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def display(name: str | Path) -> str:
    """A file name (or a message holding one) as it can be printed and stored: bytes that are not
    UTF-8 appear as \\xNN."""
    text = os.fspath(name)
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _walk_files(root: Path) -> Iterator[Path]:
    """Every non-folder entry below `root`; symbolic links to folders are followed, each folder once."""
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            subfolders.clear()
            continue
        if (info.st_dev, info.st_ino) in seen:
            subfolders.clear()  # a loop, or a second way into a folder already read
            continue
        seen.add((info.st_dev, info.st_ino))
        subfolders.sort()
        for name in files:
            yield Path(folder, name)


def _glob_files(pattern: str) -> Iterator[Path]:
    """glob.glob without its hazards: a recursive `**` walks each folder once (glob itself follows
    a symbolic-link loop until the path is too long); folders that match are not files."""
    if "**" not in pattern:
        for match in glob.glob(pattern):
            if not os.path.isdir(match):
                yield Path(match)
        return
    parts = Path(pattern).parts
    first_magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first_magic]) if first_magic else Path(".")
    wanted = parts[first_magic:]
    if not root.is_dir():
        return
    for path in _walk_files(root):
        if _match_parts(path.relative_to(root).parts, wanted):
            yield path if first_magic else Path(os.path.relpath(path))


def _match_parts(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Path components against glob components, where `**` matches any number of folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    hidden = parts and parts[0].startswith(".") and not pattern[0].startswith(".")
    return bool(parts) and not hidden and fnmatch.fnmatchcase(parts[0], pattern[0]) and \
        _match_parts(parts[1:], pattern[1:])


# ---------------------------------------------------------------- the worker side

def extract_path(path: str, min_confidence: Optional[float] = None, limits: Limits = Limits()) -> Extraction:
    """read_pdf + extract_document for one file; runs in a worker process (or in-process). The
    text-size limits are checked here, before the NLP pipeline sees the text; `run_extractions`
    enforces the time and memory limits around this call."""
    from .pipeline import extract_document

    started = time.perf_counter()
    try:
        with text_limits(limits.chars, limits.page_content_bytes):
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


def over_limit(path: str, status: str, reason: str, seconds: float) -> Extraction:
    """The answer for a file stopped at a limit (status `timeout` or `too_large`)."""
    return Extraction(path, _sha256_or_none(path), problem=(status, reason), seconds=seconds)


def worker_died(path: str, why: str) -> Extraction:
    return Extraction(path, _sha256_or_none(path), error=f"{why}: re-run this file alone to see why")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def _sha256_or_none(path: str) -> Optional[str]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or a device: reading it could block or never end
        return sha256_file(path)
    except OSError:
        return None


def warm_worker() -> None:
    """Load the spaCy pipeline once per worker, before the first file."""
    from .pipeline import build_pipeline

    build_pipeline()


def _limited_on_ray(job: tuple[Callable[[str], Extraction], str, Limits]) -> Extraction:
    """One file as a Ray task: the spaCy pipeline loaded once per Ray worker, the file under its
    limits there, the Extraction sent back to the driver, which alone writes the KB."""
    extract, path, limits = job
    warm_worker()
    return run_limited(extract, path, limits, over_limit)


def _on_ray(paths: Sequence[str], extract: Callable[[str], Extraction], limits: Limits,
            address: Optional[str]) -> Iterator[Extraction]:
    from ..executor import Job, run_jobs

    jobs = [Job(path, _limited_on_ray, (extract, path, limits)) for path in paths]
    for outcome in run_jobs(jobs, "ray", address=address):
        yield outcome.value if outcome.ok else worker_died(outcome.job.key, outcome.error)


def _extract_all(paths: Sequence[str], workers: int, extract: Callable[[str], Extraction],
                 limits: Limits, executor: str = "local", address: Optional[str] = None) -> Iterator[Extraction]:
    """Where the extractions run: this process, `workers` processes (see workers.py), or Ray tasks."""
    if executor == "ray":
        return _on_ray(paths, extract, limits, address)
    return run_extractions(paths, workers, extract, limits, on_limit=over_limit, on_death=worker_died,
                           warm=warm_worker if extract is extract_path or getattr(extract, "func", None) is extract_path
                           else None)


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
    limits: Limits = Limits(),
    executor: str = "local",
    ray_address: Optional[str] = None,
) -> list[FileOutcome]:
    """Extract every input into `kb`; returns one outcome per file, in input order.

    `doi` overrides the DOI of a single input (and re-extracts it). `on_start(total)` and `on_file(outcome)` drive a
    progress display. `extract` must be picklable when workers > 1. Each file runs under `limits`
    (time and memory here; `extract_path` takes the text-size limits as its own argument).
    `executor="ray"` runs each file as a Ray task (`workers` is then Ray's business).
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
    for extraction in _extract_all(pending, workers, extract, limits, executor, ray_address):
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
    return {str(p): display(p.name if counts[p.name] == 1 else f"{p.parent.name}/{p.name}") for p in paths}


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
    return FileOutcome(name, display(path), status, UNCHANGED, sha, n_pages, n_experiments, n_measurements,
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
    outcome = FileOutcome(name, display(extraction.path), "ok", sha256=extraction.sha256, n_pages=extraction.n_pages,
                          seconds=round(extraction.seconds, 3))
    if extraction.problem is not None:
        outcome.status, outcome.reason = extraction.problem[0], display(extraction.problem[1])
        kb.record_file_status(name, outcome.status, sha256=extraction.sha256, reason=outcome.reason)
        return outcome
    if extraction.error is not None:
        return _failed(kb, outcome, f"extraction error ({display(extraction.error)})")

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
