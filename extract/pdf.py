"""Reading a PDF into pages of text, or a `PdfProblem` that says in one line why it cannot be read.

Plain text is extracted eagerly (the NLP pipeline reads every page); pypdf's layout mode, which
keeps table columns apart but costs several times more, is computed per page only on demand.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import struct
import warnings
import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError
from pypdf.generic import ArrayObject, IndirectObject, StreamObject

from ..errors import UserError

PDF_PROBLEMS = ("not_pdf", "empty", "corrupt", "encrypted", "no_text_layer", "too_large")

# Below this many characters per page on average, a PDF whose pages hold images is a scan.
MIN_TEXT_CHARS_PER_PAGE = 25
# The PDF spec lets the %PDF- header start anywhere in the first 1024 bytes.
HEADER_WINDOW = 1024
DOI_PAGES = 2  # the paper's own DOI sits on its first pages; later pages hold cited DOIs

# pypdf reports a malformed file through its own errors, but a damaged object graph also
# surfaces as these built-in errors from deep inside its parser.
_MALFORMED = (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError,
              RecursionError, zlib.error, struct.error)

DOI_PATTERN = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>\]\[{}]+")
_DOI_TRAILING = ".,;:)]}'\""
_DATE_YEAR = re.compile(r"^(?:D:)?((?:19|20)\d\d)")


class PdfProblem(UserError):
    """A file `read_pdf` cannot turn into text; `status` is one of PDF_PROBLEMS."""

    def __init__(self, status: str, reason: str, path: Optional[Path] = None) -> None:
        if status not in PDF_PROBLEMS:
            raise ValueError(f"unknown PDF problem {status!r}; expected one of {', '.join(PDF_PROBLEMS)}")
        self.status = status
        self.reason = reason
        self.path = path
        super().__init__(f"{path.name}: {reason}" if path is not None else reason)


@dataclass
class Page:
    number: int  # 1-based
    text: str  # pypdf extract_text() in plain mode
    _source: Any = field(default=None, repr=False, compare=False)  # the pypdf PageObject
    _layout: Optional[str] = field(default=None, repr=False, compare=False)

    def layout(self) -> str:
        """The page's text in pypdf's layout mode (columns kept apart); computed once, on demand."""
        if self._layout is None:
            if self._source is None:  # a page that crossed a process boundary keeps no pypdf object
                self._layout = self.text
            else:
                try:
                    with _quiet_pypdf():
                        self._layout = self._source.extract_text(extraction_mode="layout")
                except _MALFORMED:
                    self._layout = self.text
        return self._layout

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_source"] = None  # pypdf objects hold the open file; they don't pickle
        return state


@dataclass
class PdfDocument:
    path: Path
    sha256: str
    pages: list[Page]
    metadata: dict  # title, author, doi, year: None when absent
    warnings: list[str] = field(default_factory=list)  # pages whose text could not be read

    @property
    def text(self) -> str:
        return "\n".join(page.text for page in self.pages)

    def positioned_lines(self) -> list:
        """(page number, lines of positioned words) for every page, read by pdfium; empty, with a
        warning, when pdfium cannot open the file (its tables are then not read)."""
        import pypdfium2

        from .layout import may_hold_results, read_grids

        pages = {page.number for page in self.pages if may_hold_results(page.text)}
        if not pages:
            return []
        try:
            return list(read_grids(self.path, password="", pages=pages))
        except (pypdfium2.PdfiumError, OSError) as exc:
            self.warnings.append(f"tables not read: pdfium could not open the file ({exc})")
            return []


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_pdf(path: str | Path, *, max_chars: Optional[int] = None,
             max_page_content_bytes: Optional[int] = None) -> PdfDocument:
    """Read `path`; raises PdfProblem (status + one-line reason) when it holds no usable text.

    `max_chars` stops reading once the text passes it, and `max_page_content_bytes` refuses a page
    whose content stream is larger, before pypdf parses it (status `too_large` for both): a page of
    a million operators costs pypdf minutes. Unset, they come from the enclosing `text_limits`."""
    path = Path(path)
    default_chars, default_page_bytes = _TEXT_LIMITS.get()
    max_chars = default_chars if max_chars is None else max_chars
    max_page_content_bytes = default_page_bytes if max_page_content_bytes is None else max_page_content_bytes
    head, size = _open_head(path)
    if size == 0:
        raise PdfProblem("empty", "empty file (0 bytes): re-download or re-export it", path)
    if b"%PDF-" not in head:
        raise PdfProblem("not_pdf", f"not a PDF: no %PDF- header; {describe_content(head)}", path)

    with _quiet_pypdf():
        try:
            reader = PdfReader(path)
            _unlock(reader, path)
            page_objects = list(reader.pages)
        except PdfProblem:
            raise
        except _MALFORMED as exc:
            raise _malformed(exc, path, size) from None
        if not page_objects:
            raise PdfProblem("empty", "the PDF has no pages (its page tree is empty): re-download or re-export it", path)
        pages, problems = _read_pages(page_objects, path, max_chars, max_page_content_bytes)
        info = _metadata(reader)

    if len(problems) == len(pages):
        raise _unreadable_pages(problems, path)
    text_chars = sum(len(page.text.strip()) for page in pages)
    if text_chars < MIN_TEXT_CHARS_PER_PAGE * len(pages):
        broken = [message for kind, message in problems if kind == "content"]
        if broken:
            raise PdfProblem("corrupt", f"malformed page content ({broken[0]}); the pages hold "
                                        f"{_count(text_chars, 'character')} of text: repair it (e.g. qpdf "
                                        "--repair) or re-download it", path)
        if any(_has_images(page) for page in page_objects):
            raise PdfProblem("no_text_layer", f"scanned PDF ({_count(len(pages), 'page')} of images, "
                                              f"{_count(text_chars, 'character')} of text): run OCR (e.g. ocrmypdf) "
                                              "first", path)
        raise PdfProblem("no_text_layer", f"no extractable text on {_count(len(pages), 'page')} and no images: the text may "
                                          "be drawn as outlines; run OCR (e.g. ocrmypdf) first", path)

    info["doi"] = info["doi"] or find_doi(" ".join(page.text for page in pages[:DOI_PAGES]))
    return PdfDocument(path=path, sha256=sha256_file(path), pages=pages, metadata=info,
                       warnings=[message for _, message in problems])


_TEXT_LIMITS: ContextVar[tuple[Optional[int], Optional[int]]] = ContextVar("text_limits", default=(None, None))


@contextmanager
def text_limits(max_chars: Optional[int], max_page_content_bytes: Optional[int]) -> Iterator[None]:
    """Limits for every `read_pdf` inside, whoever calls it (the batch runner sets them per file)."""
    token = _TEXT_LIMITS.set((max_chars, max_page_content_bytes))
    try:
        yield
    finally:
        _TEXT_LIMITS.reset(token)


def _open_head(path: Path) -> tuple[bytes, int]:
    """The file's first bytes and its size; only a regular file is opened (a FIFO would block)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise PdfProblem("not_pdf", f"a broken symbolic link (to {os.readlink(path)}): fix the link or pass "
                                        "the PDF itself", path) from None
        raise UserError(f"no such file: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path} is a folder: pass PDF files, or the folder to `extract` to read every PDF in it")
    if not stat.S_ISREG(info.st_mode):
        raise PdfProblem("not_pdf", f"not a regular file but {_file_kind(info.st_mode)}: pass the PDF file itself",
                         path)
    try:
        with open(path, "rb") as fh:
            return fh.read(HEADER_WINDOW), info.st_size
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _malformed(exc: BaseException, path: Path, size: int) -> PdfProblem:
    """The one-line reason for a file pypdf cannot open."""
    message = str(exc)
    if _size_limit(exc):
        return PdfProblem("too_large", f"a stream is larger than pypdf reads ({_describe_error(exc)}): a "
                                       "decompression bomb or a damaged stream; repair or re-export it", path)
    if isinstance(exc, RecursionError) or "depth" in message or "cycl" in message or "loop" in message:
        return PdfProblem("corrupt", f"malformed page tree ({_describe_error(exc)}): repair it (e.g. qpdf --repair) "
                                     "or re-download it", path)
    if "ended unexpectedly" in message or "EOF" in message or "startxref" in message:
        return PdfProblem("corrupt", f"truncated or damaged PDF ({_count(size, 'byte')}; {_describe_error(exc)}): "
                                     "the download or copy was cut short; re-download it (or qpdf --repair)", path)
    return PdfProblem("corrupt", f"corrupt PDF ({_describe_error(exc)}): re-download or repair it (e.g. qpdf --repair)",
                      path)


def _size_limit(exc: BaseException) -> bool:
    """pypdf's own limits on how much it inflates or parses, as opposed to loops and bad syntax."""
    message = str(exc).lower()
    return isinstance(exc, LimitReachedError) and any(w in message for w in ("decompress", "tokens", "output length"))


def _unreadable_pages(problems: list[tuple[str, str]], path: Path) -> PdfProblem:
    kinds = {kind for kind, _ in problems}
    first = problems[0][1]
    if "size" in kinds:
        return PdfProblem("too_large", f"no page could be read ({first}): a stream is over pypdf's size limits (a "
                                       "decompression bomb, or far more than a paper holds); re-export or split it", path)
    if kinds == {"content"}:
        return PdfProblem("corrupt", f"no page could be read ({first}): the page tree or content is malformed; "
                                     "repair it (e.g. qpdf --repair) or re-download it", path)
    return PdfProblem("corrupt", f"no page could be read ({first}): re-download or repair it "
                                 "(e.g. qpdf --repair)", path)


def _unlock(reader: PdfReader, path: Path) -> None:
    """Open an encrypted PDF with the empty user password (a permissions-only lock), or refuse."""
    if not reader.is_encrypted:
        return
    try:
        outcome = reader.decrypt("")
    except DependencyError:
        raise PdfProblem("encrypted", "AES-encrypted PDF: install the 'cryptography' package to let pypdf "
                                      "open it", path) from None
    except FileNotDecryptedError:
        outcome = PasswordType.NOT_DECRYPTED
    if outcome == PasswordType.NOT_DECRYPTED:
        raise PdfProblem("encrypted", "encrypted PDF that needs a password: save an unlocked copy "
                                      "(e.g. qpdf --password=PW --decrypt in.pdf out.pdf)", path)


# Typographic ligatures as PDFs encode them: "speciﬁcity" must read as "specificity".
_LIGATURES = str.maketrans({"ﬁ": "fi", "ﬂ": "fl", "ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})


def _read_pages(page_objects: list, path: Path, max_chars: Optional[int] = None,
                max_page_content_bytes: Optional[int] = None) -> tuple[list[Page], list[tuple[str, str]]]:
    """The pages' text, and (kind, message) for each page that could not be read: kind is
    "content" (malformed /Contents), "size" (over pypdf's limits) or "other"."""
    pages, problems = [], []
    total_chars = 0
    for number, page in enumerate(page_objects, start=1):
        text = ""
        try:
            malformed = _check_contents(page, number, path, max_page_content_bytes)
            if malformed:
                problems.append(("content", f"page {number}: {malformed}"))
            else:
                text = (page.extract_text() or "").translate(_LIGATURES)
        except _MALFORMED as exc:
            problems.append(("size" if _size_limit(exc) else "other", f"page {number}: {_describe_error(exc)}"))
        total_chars += len(text)
        if max_chars is not None and total_chars > max_chars:
            raise PdfProblem("too_large", f"over {max_chars:,} characters of text by page {number} of "
                                          f"{len(page_objects)} (limit --max-chars {max_chars}): not a paper, or raise "
                                          "the limit", path)
        pages.append(Page(number=number, text=text, _source=page))
    return pages, problems


def _check_contents(page, number: int, path: Path, max_bytes: Optional[int]) -> Optional[str]:
    """Why a page's /Contents is not content, checked before pypdf parses it; None when it is.
    Raises PdfProblem `too_large` when the content streams hold more than `max_bytes`.

    pypdf reads a /Contents that is not a stream -- an array holding itself, the page object --
    as an empty page, which then looks like a scan."""
    contents = page.get("/Contents")
    if contents is None:
        return None
    resolved = contents.get_object()
    items = resolved if isinstance(resolved, ArrayObject) else [contents]
    size = 0
    for item in items:
        target = item.get_object() if isinstance(item, IndirectObject) else item
        if not isinstance(target, StreamObject):
            kind = "an array" if isinstance(target, ArrayObject) else f"a {type(target).__name__}"
            return f"malformed page content: /Contents refers to {kind}, not a content stream (a reference loop?)"
        if max_bytes is not None:
            size += len(target.get_data())
            if size > max_bytes:
                raise PdfProblem("too_large", f"page {number}'s content stream is over {size / (1 << 20):.1f} MB "
                                              f"(limit {max_bytes / (1 << 20):g} MB): far more drawing operators than "
                                              "a paper's page holds; re-export or split the PDF", path)
    return None


def _has_images(page) -> bool:
    try:
        resources = page.get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        if xobjects is None:
            return False
        return any(obj.get_object().get("/Subtype") == "/Image" for obj in xobjects.get_object().values())
    except _MALFORMED:
        return False


def _metadata(reader: PdfReader) -> dict:
    try:
        info = reader.metadata or {}
    except _MALFORMED:
        info = {}

    def text(key: str) -> Optional[str]:
        value = info.get(key)
        cleaned = " ".join(str(value).split()) if value is not None else ""
        return cleaned or None

    doi = None
    for key in ("/doi", "/DOI", "/prism:doi", "/Subject", "/Keywords", "/Title"):
        doi = find_doi(text(key) or "")
        if doi:
            break
    year_match = _DATE_YEAR.match(text("/CreationDate") or "")
    return {
        "title": _plausible_title(text("/Title")),
        "author": text("/Author"),
        "doi": doi,
        # The PDF's creation year: the publication year for publisher PDFs, an upper bound otherwise.
        "year": int(year_match.group(1)) if year_match else None,
    }


def _plausible_title(title: Optional[str]) -> Optional[str]:
    """Word processors write file names and placeholders into /Title; those are not titles."""
    if not title:
        return None
    title = re.sub(r"^Microsoft (Word|PowerPoint) - ", "", title)
    if re.search(r"\.(docx?|tex|pdf|pptx?)$", title, re.IGNORECASE) or len(title.split()) < 3:
        return None
    return title


def find_doi(text: str) -> Optional[str]:
    """The first DOI in `text`, without trailing punctuation, lower-cased as the KB stores DOIs."""
    for match in DOI_PATTERN.finditer(text):
        doi = match.group(0).rstrip(_DOI_TRAILING)
        if doi.count("(") < doi.count(")"):  # "(doi: 10.1/x)" caught the closing bracket
            doi = doi.rstrip(")")
        if "/" in doi and len(doi.split("/", 1)[1]) >= 2:
            return doi.lower()
    return None


_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (a .docx/.pptx or zipped download?)"), (b"\x1f\x8b", "gzip-compressed data"),
    (b"%!PS", "a PostScript file"), (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
    (b"{\\rtf", "an RTF document"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
)


def describe_content(head: bytes) -> str:
    """What a file that is not a PDF looks like, from its first bytes."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return f"it looks like {name}"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:200]:
        return "it looks like an HTML page (a login or download page saved instead of the PDF?)"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it looks like binary data of an unknown kind"
    first_line = next((line.strip() for line in decoded.splitlines() if line.strip()), "")
    return f"it looks like plain text starting {first_line[:40]!r}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe_error(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:80]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf logs every repair it makes; the file status already says what went wrong."""
    logger = logging.getLogger("pypdf")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)
