"""Tables from a page's layout text: caption, header and rows of cells.

pypdf's layout mode keeps each text line at its horizontal position, so a table's columns are
separated by runs of spaces. A table is a run of lines that split into at least two cells on two or
more spaces, holds numbers, and is not justified prose (which also has double spaces, but between
lower-case words). Two-column pages are first cut at their gutter, so a table in one column is
not mixed with the prose of the other.

A narrow table may come out with single spaces ("Resnet50 0.98765 0.97654"): a label followed by
values is then split into one cell per value, and the header line above it into one cell per name.

Layout extraction costs about as much as plain extraction, so `page_may_have_table` looks at the
cheap plain text first and only pages that pass are laid out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .numbers import parse_number

CAPTION_RE = re.compile(r"^\s*(?:Table|TABLE|Tab\.)\s*(?P<label>\d+|[IVXL]+)\b\s*[.:|-]?\s*(?P<rest>.*)$")
_CELL_SPLIT = re.compile(r"\S+(?: \S+)*")  # words joined by single spaces
_NUMERIC_LINE_TOKEN = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?%?(?![\w])")


@dataclass
class Cell:
    text: str
    start: int
    end: int

    @property
    def center(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Table:
    page: int
    caption: Optional[str]
    header: list[str]            # column names; "" where the layout left a column unnamed
    rows: list[list[str]]        # each row aligned to `header` (same length)
    lines: list[str] = field(default_factory=list)
    section: str = "body"        # the paper's section it stands in ("related": other papers' results)

    @property
    def snippet(self) -> str:
        head = (self.caption or "") + " | " + " | ".join(self.header)
        return head.strip(" |")

    def row_snippet(self, row: list[str]) -> str:
        prefix = f"{self.caption} " if self.caption else ""
        return f"{prefix}[{' | '.join(self.header)}] {' | '.join(c for c in row if c)}"


# A score as tables print it: "0.98765", ".95", "96.52", "96.5%" (also glued to its neighbour
# when the plain text lost the space between two cells: "0.987650.97654").
_SCORE = re.compile(r"\d{0,2}\.\d{2,}%?|(?<![\d.])\d{1,3}%")


def page_may_have_table(plain_text: str) -> bool:
    """Cheap test on the plain text: rows of numbers (lines at least half numbers), with a
    "Table N" caption or enough of them to be a table without one; or two rows that each hold
    several scores (a small results table without a caption). A caption alone is not enough:
    many papers print tables as images, and laying out their pages finds nothing."""
    dense = 0
    score_rows = 0
    caption = False
    for line in plain_text.splitlines():
        if CAPTION_RE.match(line):
            caption = True
        tokens = line.split()
        numbers = len(_NUMERIC_LINE_TOKEN.findall(line))
        if numbers >= 1 and len(tokens) >= 2 and numbers >= 0.4 * len(tokens):
            dense += 1
            if dense >= 4 or (caption and dense >= 2):
                return True
        if len(tokens) <= 12 and len(_SCORE.findall(line)) >= 2 and len(_SCORE.findall(line)) >= 0.3 * len(tokens):
            score_rows += 1
            if score_rows >= 2:
                return True
    return caption and dense >= 2


# A value with what belongs to it: "95.3", "95.3%", "95.3 ± 0.4", "95.3 (0.4)".
_VALUE_TOKEN = r"[(]?(?:\d*\.\d+%?|\d+%)[)*†]?(?: ?(?:±|\+/-) ?\d*\.?\d+%?| ?\(\d*\.?\d+%?\))?"
_PACKED_ROW = re.compile(rf"^(?P<label>(?:(?!{_VALUE_TOKEN}(?: |$))\S+ ){{1,5}})?"
                         rf"(?P<values>{_VALUE_TOKEN}(?: {_VALUE_TOKEN})*)$")
_PACKED_VALUE = re.compile(_VALUE_TOKEN)


def _cells(line: str, offset: int = 0) -> list[Cell]:
    cells = []
    for match in _CELL_SPLIT.finditer(line):
        cells.extend(_unpack(match.group(), match.start() + offset))
    return cells


def _unpack(text: str, start: int) -> list[Cell]:
    """A cell that is a label followed by values one space apart ("Resnet18 0.98 0.97 0.98": a
    narrow table the layout did not spread out) is one cell per value: two numbers never share
    a cell. Prose never ends in two bare numbers, so it is left whole; a label with a single
    value is split only when its words are capitalised ("Validation Set 0.954")."""
    packed = _PACKED_ROW.match(text)
    if not packed or (not packed.group("label") and " " not in packed.group("values")):
        return [Cell(text, start, start + len(text))]
    cells = []
    label = packed.group("label")
    if label:
        single = " " not in packed.group("values").replace("± ", "±").replace(" (", "(")
        if re.search(r"[a-z]{3,} [a-z]{3,}", label) or (single and (label.rstrip().endswith(":") or not all(
                re.match(r"[A-Z0-9(]", word) for word in label.split()))):
            # Prose, a phrase ending in a number ("accuracy of 0.95"), a listing ("Recall: 0.97").
            return [Cell(text, start, start + len(text))]
        cells.append(Cell(label.strip(), start, start + len(label.rstrip())))
    base = packed.start("values")
    for value in _PACKED_VALUE.finditer(packed.group("values")):
        cells.append(Cell(value.group(), start + base + value.start(), start + base + value.end()))
    return cells


_NUMERIC_CELL = re.compile(r"[(]?\d+(?:\.\d+)?\s?%?(?:\s?[-–—]\s?\d+(?:\.\d+)?\s?%?)?(?:\s?\(\d+(?:\.\d+)?\))?[)*†]?")


def _is_numeric_cell(text: str) -> bool:
    """A number, a range ("0.10–0.19") or a value with its deviation in brackets ("95.3 (0.4)")."""
    return parse_number(text) is not None or bool(_NUMERIC_CELL.fullmatch(text.strip()))


def _is_prose(cells: list[Cell]) -> bool:
    """Justified prose (and references): many one-word cells, several of them lower-case words."""
    if all(_METRIC_HEADER.match(c.text) for c in cells):
        return False  # a classification report's header: "precision    recall  f1-score   support"
    words = " ".join(c.text for c in cells).split()
    numeric = sum(_is_numeric_cell(c.text) for c in cells)
    if numeric and len(cells) <= 6:
        return sum(1 for c in cells if re.fullmatch(r"[a-z][a-z'’,.;:()-]*", c.text)) >= 4
    if len(cells) < 4:
        return len(words) >= 8 and sum(w[:1].islower() for w in words) / len(words) > 0.6
    lower = sum(1 for c in cells if re.fullmatch(r"[a-z][a-z'’,.;:()-]*", c.text))
    alpha = sum(1 for c in cells if re.fullmatch(r"[A-Za-z][A-Za-z'’,.;:()-]*", c.text))
    return lower / len(cells) >= 0.5 or (lower >= 2 and alpha / len(cells) >= 0.6)


_METRIC_HEADER = re.compile(r"^(?:precision|recall|f1[- ]?score|f1|support|accuracy|sensitivity|specificity|auc|"
                            r"kappa)$", re.IGNORECASE)


@dataclass
class _Row:
    index: int
    cells: list[Cell]

    @property
    def numeric(self) -> int:
        return sum(_is_numeric_cell(c.text) for c in self.cells)


def _gutter(lines: list[str]) -> Optional[int]:
    """The column of a two-column page's gutter: a position in the middle of the page where
    (almost) every line that reaches past it has a space, and many lines have text on both sides."""
    width = max((len(line) for line in lines), default=0)
    if width < 60:
        return None
    best, best_score = None, 0
    long_lines = [line for line in lines if len(line.strip()) > 0]
    for x in range(int(width * 0.35), int(width * 0.65)):
        both, blocked = 0, 0
        for line in long_lines:
            if len(line) <= x + 1:
                continue
            if line[x - 1:x + 2].strip():
                blocked += 1
            elif line[:x].strip() and line[x:].strip():
                both += 1
        if both >= 8 and blocked <= max(2, 0.08 * (both + blocked)) and both - 3 * blocked > best_score:
            best, best_score = x, both - 3 * blocked
    return best


def _streams(lines: list[str]) -> list[list[tuple[int, str, int]]]:
    """Text streams to search: the whole page, or each column of a two-column page.
    Each stream is a list of (line index, text, x offset)."""
    gutter = _gutter(lines)
    if gutter is None:
        return [[(i, line, 0) for i, line in enumerate(lines)]]
    left, right = [], []
    for i, line in enumerate(lines):
        if len(line) > gutter + 1 and line[gutter - 1:gutter + 2].strip():
            left.append((i, line, 0))  # a line across the gutter: a title or a full-width table row
            continue
        left.append((i, line[:gutter], 0))
        right.append((i, line[gutter:], gutter))
    return [left, right]


def _blocks(stream: list[tuple[int, str, int]]) -> list[list[_Row]]:
    """Runs of table-like lines (a single blank line may separate rows)."""
    blocks: list[list[_Row]] = []
    current: list[_Row] = []
    gap = 0
    for index, text, offset in stream:
        cells = _cells(text, offset)
        tabular = len(cells) >= 2 and not _is_prose(cells) and not CAPTION_RE.match(text)
        if tabular:
            current.append(_Row(index, cells))
            gap = 0
            continue
        if not text.strip() and current and gap == 0:
            gap = 1
            continue
        if current:
            blocks.append(current)
        current, gap = [], 0
    if current:
        blocks.append(current)
    return [b for b in blocks if sum(1 for r in b if r.numeric >= 1) >= 2 or
            (len(b) >= 2 and sum(1 for r in b if r.numeric >= 1) >= 1)]


def _trim_block(block: list[_Row]) -> list[_Row]:
    """Keep from the header (the one or two text rows right above the first numeric row: a header
    may wrap, "Accuracy" over "(%)") to the last numeric row."""
    first_numeric = next(i for i, r in enumerate(block) if r.numeric >= 1)
    last_numeric = max(i for i, r in enumerate(block) if r.numeric >= 1)
    start = first_numeric
    if first_numeric >= 1:
        start = first_numeric - 1
        if first_numeric >= 2 and block[first_numeric - 2].numeric == 0 \
                and block[first_numeric - 1].index - block[first_numeric - 2].index == 1:
            start = first_numeric - 2
    return block[start:last_numeric + 1]


def _align(header: list[Cell], row: list[Cell]) -> list[str]:
    """Row cells placed under the header columns they sit below: a monotone alignment (cells keep
    their order) that minimises the horizontal distance to each column; two numbers never share
    a column, two words may (a row label split by a wide gap)."""
    if len(row) == len(header):
        return [c.text for c in row]
    n, m = len(row), len(header)
    inf = float("inf")

    def distance(cell: Cell, column: Cell) -> float:
        gap = max(0, column.start - cell.end, cell.start - column.end)
        return gap + 0.1 * abs(column.center - cell.center)

    cost = [[inf] * m for _ in range(n)]
    back = [[-1] * m for _ in range(n)]
    for j in range(m):
        cost[0][j] = distance(row[0], header[j]) + (0 if j == 0 else 0.5 * j)
    for i in range(1, n):
        numeric = _is_numeric_cell(row[i].text) or _is_numeric_cell(row[i - 1].text)
        for j in range(m):
            here = distance(row[i], header[j])
            for k in range(j + 1):
                step = cost[i - 1][k]
                if k == j:
                    step += 1000 if numeric else 4
                if step + here < cost[i][j]:
                    cost[i][j], back[i][j] = step + here, k
    j = min(range(m), key=lambda col: cost[n - 1][col])
    slots: list[list[str]] = [[] for _ in header]
    for i in range(n - 1, -1, -1):
        slots[j].insert(0, row[i].text)
        j = back[i][j] if i > 0 else j
    return [" ".join(s) for s in slots]


def _merge_header_rows(upper: list[Cell], lower: list[Cell]) -> list[Cell]:
    """One header from a wrapped one: each cell of the shorter row joins the column it sits in.
    A cell of the shorter row that ends left of every column of the longer one heads a column of
    its own (the row-label column: "Model" above nothing), and a group label over several columns
    ("Classification metrics" above "Accuracy Precision Recall") names no single column."""
    base, other = (upper, lower) if len(upper) >= len(lower) else (lower, upper)
    leading = [c for c in other if c.end < base[0].start]
    other = [c for c in other if c not in leading and not _GROUP_LABEL.match(c.text)]
    if not other:
        placed = [""] * len(base)
    else:
        placed = _align(base, other) if len(other) != len(base) else [c.text for c in other]
    merged = list(leading)
    for cell, extra in zip(base, placed):
        parts = [extra, cell.text] if base is lower else [cell.text, extra]
        merged.append(Cell(" ".join(p for p in parts if p), cell.start, cell.end))
    return merged


_GROUP_LABEL = re.compile(r"^(?:[\w-]+\s+)?(?:metrics|measures|performance(?:\s+(?:metrics|measures))?|"
                          r"results|scores)$", re.IGNORECASE)


def _header_and_rows(block: list[_Row]) -> tuple[list[Cell], list[list[Cell]]]:
    rows = [r.cells for r in block]
    if len(block) >= 3 and block[0].numeric == 0 and block[1].numeric == 0:
        rows = [_merge_header_rows(rows[0], rows[1])] + rows[2:]
        block = block[1:]
    if block[0].numeric == 0 and len(block) >= 2:
        header = rows[0]
        body = rows[1:]
        widest = max(len(r) for r in body)
        if len(header) == 1 and widest >= 3:
            header = _spread_header(header[0], widest)
        widest = max(len(r) for r in body)
        if len(header) < widest:
            # The row label column often has no header ("", then the metric names).
            label_end = min(r[0].end for r in body if len(r) == widest)
            if header[0].start > label_end:
                header = [Cell("", min(r[0].start for r in body), label_end)] + header
        return header, body
    widest = max(rows, key=len)
    header = [Cell("", c.start, c.end) for c in widest]
    return header, rows


def _header_above(stream: list[tuple[int, str, int]], first: int, unnamed: list[Cell]) -> list[Cell]:
    """The header line of a narrow table sits right above its rows, its names one space apart
    ("Model Accuracy Precision Recall"), so it was not read as a table line."""
    above = [(text, offset) for index, text, offset in stream if index == first - 1]
    if not above or not above[0][0].strip() or CAPTION_RE.match(above[0][0]):
        return unnamed
    text, offset = above[0]
    words = text.split()
    if not words or not all(re.fullmatch(r"[A-Za-z][\w()%/.-]*", w) for w in words) \
            or sum(1 for w in words if w[:1].isupper()) < 0.6 * len(words):
        return unnamed
    stripped = text.strip()
    cell = Cell(stripped, offset + text.index(stripped), offset + text.index(stripped) + len(stripped))
    spread = _spread_header(cell, len(unnamed))
    if len(spread) == len(unnamed) - 1:
        spread = [Cell("", unnamed[0].start, unnamed[0].end)] + spread
    return spread if len(spread) == len(unnamed) else unnamed


def _spread_header(cell: Cell, columns: int) -> list[Cell]:
    """The header of a narrow table, its names one space apart ("Model Accuracy Precision"), as
    one cell per word when the words match the columns (the row-label column may be unnamed)."""
    words: list[Cell] = []
    for m in re.finditer(r"\S+", cell.text):
        if words and re.fullmatch(r"(?i:scores?|rate|value|\(%\)|%|\[%\])", m.group()):
            # "F1 Score", "Accuracy (%)": one name.
            last = words[-1]
            words[-1] = Cell(f"{last.text} {m.group()}", last.start, cell.start + m.end())
            continue
        words.append(Cell(m.group(), cell.start + m.start(), cell.start + m.end()))
    if len(words) in (columns, columns - 1):
        return words
    return [cell]


def _captions(stream: list[tuple[int, str, int]]) -> list[tuple[int, str]]:
    """(line index, caption) for each "Table N" caption in a stream; a caption may wrap onto the
    next line of the same column when that line goes on in lower case."""
    found = []
    for position, (index, text, _) in enumerate(stream):
        for segment in re.split(r"\s{3,}", text.strip()):
            if not CAPTION_RE.match(segment):
                continue
            caption = segment.strip()
            if position + 1 < len(stream):
                following = stream[position + 1][1].strip()
                if following[:1].islower() and len(_cells(following)) <= 2 and len(following.split()) <= 14:
                    caption += " " + following
            found.append((index, " ".join(caption.split())))
            break
    return found


def find_tables(layout_text: str, page: int) -> list[Table]:
    lines = [line.rstrip() for line in layout_text.splitlines()]
    streams = _streams(lines)
    page_captions = _captions([(i, line, 0) for i, line in enumerate(lines)])
    used_captions: set[int] = set()
    found: list[tuple[int, Table]] = []
    for stream in streams:
        stream_captions = _captions(stream) if len(streams) > 1 else page_captions
        for block in _blocks(stream):
            block = _trim_block(block)
            if len(block) < 2 and block[0].numeric < 2:
                continue
            header_cells, body = _header_and_rows(block)
            if not any(c.text for c in header_cells):
                header_cells = _header_above(stream, block[0].index, header_cells)
            if len(header_cells) < 2:
                continue
            first, last = block[0].index, block[-1].index
            caption = (_nearest_caption(stream_captions, used_captions, first, last)
                       or _nearest_caption(page_captions, used_captions, first, last))
            rows = [_align(header_cells, cells) for cells in body]
            table = Table(page=page, caption=caption, header=[c.text for c in header_cells], rows=rows,
                          lines=[lines[r.index] for r in block])
            found.append((first, table))
    return [table for _, table in sorted(found, key=lambda item: item[0])]


def _nearest_caption(captions: list[tuple[int, str]], used: set[int], first: int, last: int) -> Optional[str]:
    best, best_distance = None, None
    for index, text in captions:
        if index in used:
            continue
        if index < first:
            distance = first - index
            if distance > 10:
                continue
        elif index > last:
            distance = (index - last) + 0.5  # captions above a table are the common style
            if distance > 6:
                continue
        else:
            continue
        if best_distance is None or distance < best_distance:
            best, best_distance = index, distance
    if best is None:
        return None
    used.add(best)
    return dict(captions)[best]
