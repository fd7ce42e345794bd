"""From page text to prose: headings, captions and table lines set apart, each offset tagged with
its page and section (abstract, body, related work, references...), so later steps know which
sentences speak of the paper's own work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from .layout import CAPTION_RE

_SECTION_WORDS = re.compile(
    r"^(?P<name>abstract|introduction|related works?|literature (?:survey|review)|background|previous work|"
    r"prior work|methods?|methodology|materials and methods|proposed (?:work|method|approach|model)|"
    r"datasets?|data(?: description| collection| preparation)?|experiments?|experimental (?:setup|results)|"
    r"results?(?: and (?:discussions?|analysis))?|results/discussions|evaluation|discussions?|"
    r"conclusions?(?: and future works?)?|future (?:works?|directions|scope)|references|bibliography|"
    r"acknowledge?ments?|appendix|supplementary|extended data|online content|(?:table of )?contents|"
    r"list of (?:tables|figures|abbreviations|symbols)|abbreviations|nomenclature)\b", re.IGNORECASE)
# Sections that say nothing about the paper's own experiments: front matter (contents, lists of
# tables), related work and references.
NOT_OWN_WORK = frozenset({"front", "related", "references"})
_NUMBERED_HEADING = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2}){0,3}|[IVX]{1,5}|[A-H])[.)]?\s+"
                               r"(?P<title>[A-Z][\w ,:/&()'’+-]{2,80}?)\s*:?\s*$")
_CHAPTER = re.compile(r"^\s*chapter\s+(?:\d{1,2}|[ivx]{1,5})\s*[.:]?\s*$", re.IGNORECASE)
_PLAIN_HEADING = re.compile(r"^\s*(?P<title>[A-Z][\w ,/&'’-]{2,60}?)\s*:?\s*$")
_INLINE_ABSTRACT = re.compile(r"^\s*Abstract\s*[—:–.-]\s*", re.IGNORECASE)
_FURNITURE = re.compile(r"^\s*(?:\d{1,4}|page \d+(?: of \d+)?|authorized licensed use limited to.*|"
                        r".*downloaded on .* from ieee xplore.*|"
                        r".*(?:\.\s?){4,}\s*[\divxlc]*)\s*$", re.IGNORECASE)  # contents lines with dot leaders
_REVIEW = re.compile(r"\b(?:review|survey|overview|meta-analysis|state of the art)\b", re.IGNORECASE)
# The article-type label journals print on a line of its own above the title ("REVIEW ARTICLE").
_REVIEW_LABEL = re.compile(r"^\s*(?:(?:systematic|narrative|scoping|invited)\s+)?(?:review|survey)(?:\s+article)?\s*$",
                           re.IGNORECASE)
# A paper that calls itself a review on its first page ("the primary focus of this review", "we survey").
_SELF_REVIEW = re.compile(r"\b(?:this|the present|our)\s+"
                          r"(?:(?:systematic|narrative|scoping|literature|comprehensive)\s+)?"
                          r"(?:review|survey|overview|meta-analysis)\b|"
                          r"\bwe\s+(?:systematically\s+)?(?:review|survey)\b|"
                          r"\b(?:this|the present|our)\s+(?:paper|article|work|chapter)\s+(?:reviews|surveys|"
                          r"(?:presents|provides|offers|gives) an?\s+(?:[\w-]+\s+){0,2}?(?:review|survey|overview))\b",
                          re.IGNORECASE)
# A segmentation paper scores pixels, not images: its sensitivity or PPV is no classification result.
_SEGMENTATION_TASK = re.compile(r"segment", re.IGNORECASE)
_CLASSIFICATION_TASK = re.compile(r"classif|detect|diagnos|recogni|grading|predict|screening", re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(?:we|our|us)\b|\bthis (?:study|paper|work|report|article)\b", re.IGNORECASE)
# A notebook export's cell prompt ("In [15]:"): a new paragraph, and no citation.
_NOTEBOOK_PROMPT = re.compile(r"^\s*(?:In|Out)\s*\[\s*\d*\s*\]\s*:\s*")
_BULLET = re.compile(r"^\s*(?:[•▪◦●■–]|\(?[ivx]{1,4}\)|\d{1,2}\))\s")
_NUMERIC_TOKEN = re.compile(r"^[(\[]?[-+]?\d+(?:[.,]\d+)?%?[)\],]?$")


def _section_of(title: str, current: str, numbered: bool, subsection: bool = False) -> str:
    """The section a heading opens. An unknown heading opens a plain body section when it is
    numbered at the top level (a new part of the paper: "3 Proposed Method", "CHAPTER 3"), and
    continues the current one otherwise ("2.1 Research Papers" inside a literature survey)."""
    match = _SECTION_WORDS.match(title.strip())
    if not match:
        if current == "references":
            return current
        if subsection and current != "abstract":
            return current
        return "body" if numbered or current == "abstract" else current
    name = match.group("name").lower()
    if name.startswith("abstract"):
        return "abstract"
    if re.match(r"related|literature|previous|prior", name):
        return "related"
    if name in ("references", "bibliography"):
        return "references"
    if re.match(r"(?:table of )?contents|list of|abbreviations|nomenclature", name):
        return "front"
    if name.startswith("future"):
        return "future"
    if name.startswith("conclusion"):
        return "conclusion"
    return "body"


def _heading(line: str) -> Optional[tuple[str, bool, bool]]:
    """(title, numbered, subsection) when a line is a section heading."""
    stripped = line.strip()
    if not stripped or len(stripped.split()) > 9 or stripped.endswith((",", ";")):
        return None
    if _CHAPTER.match(stripped):
        return stripped, True, False
    numbered = _NUMBERED_HEADING.match(stripped)
    if numbered and not re.search(r"\d{3,}|[=%]", numbered.group("title")) \
            and not numbered.group("title").rstrip().endswith("."):
        return numbered.group("title"), True, bool(re.match(r"\s*\d{1,2}\.\d", stripped))
    plain = _PLAIN_HEADING.match(stripped)
    if plain and _SECTION_WORDS.match(plain.group("title")) and len(stripped.split()) <= 5:
        return plain.group("title"), False, False
    return None


def _tabular(line: str) -> bool:
    """A table row (or an axis label) in plain text: at least half its tokens are numbers."""
    tokens = line.split()
    numeric = sum(bool(_NUMERIC_TOKEN.match(t)) for t in tokens)
    return numeric >= 1 and numeric >= 0.5 * len(tokens)


@dataclass
class Prose:
    text: str
    page_starts: list[tuple[int, int]]      # (char offset, page number)
    sections: list[tuple[int, str]]         # (char offset, section)

    def page_at(self, offset: int) -> Optional[int]:
        page = None
        for start, number in self.page_starts:
            if start > offset:
                break
            page = number
        return page

    def _page_span(self, page: int) -> Optional[tuple[int, int]]:
        """The (start, end) character offsets of a page's prose, None for a page not in it."""
        bounds = [start for start, number in self.page_starts if number == page]
        if not bounds:
            return None
        later = [start for start, number in self.page_starts if start > bounds[0]]
        return bounds[0], later[0] if later else len(self.text)

    def holds_no_own_work(self, page: int) -> bool:
        """Whether a page holds nothing but front matter, related work and references: its tables
        list other papers' results or none, so it is not laid out for tables."""
        span = self._page_span(page)
        if span is None:
            return False
        start, end = span
        names = {self.section_at(start)} | {name for offset, name in self.sections if start <= offset < end}
        return names <= NOT_OWN_WORK

    def section_of(self, page: int, text: str) -> Optional[str]:
        """The section where a line of a page (a table's caption) stands, None when not found."""
        span = self._page_span(page)
        if span is None or not text.strip():
            return None
        found = self.text.find(" ".join(text.split())[:40], *span)
        return self.section_at(found) if found >= 0 else None

    def section_at(self, offset: int) -> str:
        section = "body"
        for start, name in self.sections:
            if start > offset:
                break
            section = name
        return section


def prepare_prose(pages: Iterable[tuple[Optional[int], str]], first_section: str = "body") -> Prose:
    """Join each page's lines into running text: line-break hyphens removed, headings and
    captions set apart by blank lines, runs of table lines and page furniture left out, and the
    section of every stretch recorded (abstract, related work, references, ...)."""
    parts: list[str] = []
    length = 0
    page_starts: list[tuple[int, int]] = []
    sections: list[tuple[int, str]] = [(0, first_section)]
    section = first_section

    def emit(piece: str) -> None:
        nonlocal length
        parts.append(piece)
        length += len(piece)

    for number, text in pages:
        if number is not None:
            page_starts.append((length, number))
        lines = [line.rstrip() for line in text.splitlines()]
        tabular = [_tabular(line) for line in lines]
        for i, line in enumerate(lines):
            if not line.strip() or _FURNITURE.match(line):
                continue
            if tabular[i] and ((i > 0 and tabular[i - 1]) or (i + 1 < len(lines) and tabular[i + 1])):
                emit("\n\n")
                continue
            heading = _heading(line)
            if heading is not None or CAPTION_RE.match(line):
                if heading is not None:
                    new_section = _section_of(heading[0], section, heading[1], heading[2])
                    if new_section != section:
                        section = new_section
                        sections.append((length, section))
                emit("\n\n" + line.strip() + "\n\n")
                continue
            if _INLINE_ABSTRACT.match(line) and section != "abstract":
                section = "abstract"
                sections.append((length, section))
            prompt = _NOTEBOOK_PROMPT.match(line)
            if prompt:
                line = line[prompt.end():]
            if _BULLET.match(line) or prompt:
                emit("\n\n")
            line = " ".join(line.split())
            if parts and parts[-1].endswith("-") and line[:1].islower() and len(parts[-1]) > 1 \
                    and parts[-1][-2].islower():
                parts[-1] = parts[-1][:-1]
                length -= 1
                emit(line)
            else:
                emit(("" if not parts or parts[-1].endswith("\n") else " ") + line)
        emit("\n\n")
    return Prose("".join(parts), page_starts, sections)


def is_review(title: Optional[str], first_page: str) -> bool:
    """A review, survey or overview: by its title, the article-type label above it, or the way
    its first page refers to itself."""
    return bool(title and _REVIEW.search(title)) \
        or any(_REVIEW_LABEL.match(line) for line in first_page.splitlines()[:12]) \
        or bool(_SELF_REVIEW.search(" ".join(first_page.split())))


def is_segmentation_paper(title: Optional[str]) -> bool:
    """A paper whose title announces segmentation and no image-level task."""
    return bool(title and _SEGMENTATION_TASK.search(title) and not _CLASSIFICATION_TASK.search(title))


def titled_review(title: Optional[str]) -> bool:
    """A title that announces a review, survey or overview."""
    return bool(title and _REVIEW.search(title))


_IMAGING = re.compile(r"\bimag(?:e|es|ing)\b|\bscans?\b|\bx-?rays?\b|\bradiograph|\bmri\b|\bct\b|"
                      r"\bmammogra|\bultrasound|\bfundus|\bdermoscop|\bhistopatholog|\bmicroscop|\bpixels?\b",
                      re.IGNORECASE)
_SEGMENTATION_WORDS = re.compile(r"\bsegment\w*|\bdice\b|\biou\b|\bmask(?:s)?\b", re.IGNORECASE)
_SIGNAL_WORDS = re.compile(r"\btime[- ]series\b|\bsignals?\b|\becg\b|\beeg\b|\btabular\b|\bsensor", re.IGNORECASE)
_CLASSIFICATION_WORDS = re.compile(r"\bclassif\w*", re.IGNORECASE)


def topic_rates(text: str) -> dict[str, float]:
    """Mentions per 1,000 words of images, segmentation, classification and signals."""
    words = max(len(text.split()), 1) / 1000
    return {name: len(pattern.findall(text)) / words for name, pattern in
            (("imaging", _IMAGING), ("segmentation", _SEGMENTATION_WORDS),
             ("classification", _CLASSIFICATION_WORDS), ("signal", _SIGNAL_WORDS))}


def is_segmentation_text(rates: dict[str, float]) -> bool:
    """A paper that speaks of segmentation (masks, Dice, IoU) far more than of classification."""
    return rates["segmentation"] >= 10.0 and rates["classification"] <= 2.5


def is_non_imaging_text(rates: dict[str, float]) -> bool:
    """A paper about signals (ECG, EEG, time series) that hardly speaks of images."""
    return rates["signal"] >= 5.0 and rates["imaging"] < 2.0
