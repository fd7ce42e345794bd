"""Tables from positioned text: words with their boxes (pdfium), lines by vertical overlap, cells
by horizontal gaps, and each numeric cell tied to its row label and to the header cells stacked
above it (a header spanning several columns applies to each of them).

pdfium's text page gives every character its box and is much faster than pypdf's layout mode,
whose strings lose the columns a header spans. The structure found here is deliberately loose: it
yields *candidate* cells with their context; which of them are results is the scorer's call.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

__all__ = ["Word", "Line", "Cell", "TableCell", "Grid", "page_lines", "read_grids", "grids_from_lines",
           "is_numeric_cell", "may_hold_results", "CAPTION_RE"]

CAPTION_RE = re.compile(r"^\s*(?:table|tab\.)\s*([0-9]{1,2}|[IVX]{1,5})\b\s*[.:|-]?", re.IGNORECASE)
_NUMERIC = re.compile(r"^[(\[]?[-+−]?(?:\d+(?:[.,]\d+)?|[.,]\d+)\s*%?(?:\s*(?:±|\+/-|\+-)\s*\d+(?:[.,]\d+)?%?)?"
                      r"[)\],*†‡§¶]*$")
# A cell that is a sentence of the neighbouring text column, not a table cell.
_PROSE_WORDS = 9


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass
class Cell:
    text: str
    x0: float
    x1: float

    @property
    def numeric(self) -> bool:
        return is_numeric_cell(self.text)


@dataclass
class Line:
    words: list[Word]
    top: float
    bottom: float
    cells: list[Cell] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass
class TableCell:
    """One numeric cell of a table with everything around it a reader would use."""

    value_text: str
    row_label: str
    column_header: str
    group_label: str      # a label row above (a dataset, a setting) that spans the table
    row_index: int
    column_index: int
    n_rows: int
    n_columns: int
    row_text: str
    column_values: list[str]  # the numeric cells of the same column, for "best in column"
    # The row label's cells with the header above each ("Dataset": "HSJ.2D.r", "Engine": ...),
    # when the label spans several columns.
    label_parts: tuple[tuple[str, str], ...] = ()
    # The label cells set once beside a block of rows ("Stage 1", a model beside its per-class rows).
    spanning_labels: tuple[str, ...] = ()


@dataclass
class Grid:
    page: int
    caption: str
    cells: list[TableCell]
    header_text: str
    n_rows: int
    n_columns: int
    top: float = 0.0


_SCORE_LIKE = re.compile(r"(?<![\w.])(?:\d{1,3}[.,]\d{1,6}|\d{1,3}(?:\.\d+)?\s?%)(?![\w])")


def may_hold_results(text: str) -> bool:
    """Whether a page's plain text holds enough score-like numbers (0.93, 95.3%) to hold a results
    table; laying out the others would cost time and find nothing."""
    return len(_SCORE_LIKE.findall(text)) >= 4


def is_numeric_cell(text: str) -> bool:
    return bool(_NUMERIC.match(text.strip()))


# ------------------------------------------------------------------------------------ pdfium
def _page_words(textpage, height: float) -> list[Word]:
    count = textpage.count_chars()
    if count <= 0:
        return []
    text = textpage.get_text_range(0, count)
    if len(text) != count:  # characters outside the BMP: read them one by one
        import pypdfium2.raw as raw
        text = "".join(chr(raw.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count))
    words: list[Word] = []
    chars: list[tuple[str, float, float, float, float]] = []

    def flush() -> None:
        if chars:
            words.append(Word(_repair("".join(c[0] for c in chars)), min(c[1] for c in chars),
                              max(c[2] for c in chars), min(c[3] for c in chars), max(c[4] for c in chars)))
            chars.clear()

    for index, char in enumerate(text):
        if char.isspace() or char == "\x00":
            flush()
            continue
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        if right <= left and top <= bottom:
            flush()
            continue
        box = (char, left, right, height - top, height - bottom)
        if chars:
            previous = chars[-1]
            size = max(previous[4] - previous[3], 1.0)
            # A gap wider than a space, or a jump to another line, ends the word.
            if left - previous[2] > 0.25 * size or abs(box[3] - previous[3]) > 0.6 * size or left < previous[1] - 1:
                flush()
        chars.append(box)
    flush()
    return words


def _repair(word: str) -> str:
    """pdfium writes U+FFFE for a glyph it cannot map: a soft hyphen at a word's end, a ligature
    inside it ("E\ufffecientNet" is EfficientNet, "classi\ufffecation" classification)."""
    word = word.replace("\x02", "\ufffe")  # pdfium's hyphen at a line end
    word = "".join(ch for ch in word if ch >= " " or ch == "\ufffe")
    if "\ufffe" not in word:
        return word
    word = word.rstrip("\ufffe")
    return re.sub("(?<=[EeuUoO])\ufffe(?=c)", "ffi", word).replace("\ufffe", "fi")


def page_lines(words: list[Word], width: float = 0.0) -> list[Line]:
    """Words grouped into lines by vertical overlap, each line split into cells at wide gaps. On a
    two-column page the left column's lines come first, then the right column's, then the lines
    that span the gutter, so that a table in one column is not read across into the other."""
    gutter = _gutter(words, width) if width else None
    if gutter is None:
        return _lines(words)
    left = _lines([w for w in words if w.x1 <= gutter])
    right = _lines([w for w in words if w.x0 >= gutter])
    spanning = _lines([w for w in words if w.x0 < gutter < w.x1])
    return _rejoin_split_rows(left, right) + spanning


def _rejoin_split_rows(left: list[Line], right: list[Line]) -> list[Line]:
    """A full-width table's row that the gutter cut in two: a right half that starts with a number,
    beside a left half at the same height that holds numbers too, is one row again; so are the
    header rows just above such rows."""
    joined: list[Line] = []
    used: set[int] = set()

    def partner_of(half: Line, numeric: bool) -> Optional[int]:
        return next((i for i, line in enumerate(left) if i not in used
                     and abs(line.top - half.top) < 0.5 * max(line.height, 1.0)
                     and (not numeric or any(c.numeric for c in line.cells))), None)

    def join(half: Line, partner: Optional[int]) -> None:
        words = half.words + (left[partner].words if partner is not None else [])
        whole = Line(sorted(words, key=lambda w: w.x0), min(w.top for w in words), max(w.bottom for w in words))
        whole.cells = _cells(whole)
        joined.append(whole)
        if partner is not None:
            used.add(partner)
        half.words = []

    for half in right:
        if half.cells and half.cells[0].numeric and (partner := partner_of(half, numeric=True)) is not None:
            join(half, partner)
    for half in right:
        below = min((row.top - half.bottom for row in joined if row.top > half.bottom), default=None)
        if half.words and below is not None and below <= 3.0 * max(half.height, 6.0):
            # A header wholly right of the gutter (no partner) still heads the table.
            join(half, partner_of(half, numeric=False))
    kept_left = [line for i, line in enumerate(left) if i not in used]
    kept_right = [line for line in right if line.words]
    # Rejoined rows go back in reading order among the left column's lines.
    return sorted(kept_left + joined, key=lambda line: line.top) + kept_right


def _gutter(words: list[Word], width: float) -> Optional[float]:
    """The x of an empty vertical strip near the middle that most text rows leave free."""
    if len(words) < 80:
        return None
    rows: dict[int, list[Word]] = {}
    for word in words:
        rows.setdefault(int(word.top // 4), []).append(word)
    best, best_count = None, len(rows)
    for step in range(int(0.38 * width), int(0.62 * width), 2):
        crossing = sum(any(w.x0 < step < w.x1 for w in row) for row in rows.values())
        if crossing < best_count:
            best, best_count = float(step), crossing
    # Both sides must read as columns of prose (rows of several words), not as a table's columns.
    left = sum(sum(w.x1 <= best for w in row) >= 5 for row in rows.values()) if best else 0
    right = sum(sum(w.x0 >= best for w in row) >= 5 for row in rows.values()) if best else 0
    # Full-width titles, tables and figures may cross the gutter; most rows must not.
    if best is None or best_count > 0.25 * len(rows) or min(left, right) < 0.3 * len(rows):
        return None
    return best


def _lines(words: list[Word]) -> list[Line]:
    lines: list[Line] = []
    # A word joins a line when its middle lies in the band of the word that started the line, not
    # in the line's growing extent: otherwise two stacked header rows, bridged by a taller cell
    # ("Cross" above "validation"), chain into one line of interleaved words.
    bands: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: (round(w.top, 1), w.x0)):
        middle = (word.top + word.bottom) / 2
        for index in range(len(lines) - 1, max(-1, len(lines) - 5), -1):
            line, (top, bottom) = lines[index], bands[index]
            if top - 0.5 <= middle <= bottom + 0.5:
                line.words.append(word)
                line.top, line.bottom = min(line.top, word.top), max(line.bottom, word.bottom)
                break
        else:
            lines.append(Line([word], word.top, word.bottom))
            bands.append((word.top, word.bottom))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
        line.cells = _cells(line)
    return lines


def _cells(line: Line) -> list[Cell]:
    size = statistics.median(w.bottom - w.top for w in line.words) or 8.0
    cells: list[Cell] = []
    current: list[Word] = []
    for word in line.words:
        # A gap over ~0.9 em separates columns; between words of prose it is ~0.3 em. A number
        # next to a number is always two cells.
        if current and (word.x0 - current[-1].x1 > 0.9 * size
                        or (word.x0 - current[-1].x1 > 0.35 * size and is_numeric_cell(word.text)
                            and is_numeric_cell(current[-1].text))):
            cells.append(Cell(" ".join(w.text for w in current), current[0].x0, current[-1].x1))
            current = []
        current.append(word)
    if current:
        cells.append(Cell(" ".join(w.text for w in current), current[0].x0, current[-1].x1))
    # Prose of a neighbouring text column shares the line of a table row: drop it.
    return [c for c in cells if len(c.text.split()) < _PROSE_WORDS or len(cells) == 1]


def read_grids(path: str | Path, password: Optional[str] = None,
               pages: Optional[set[int]] = None) -> Iterator[tuple[int, list[Line]]]:
    """(1-based page number, lines) for every page of a PDF (or those in `pages`), from pdfium's
    positioned text."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path), password=password)
    try:
        for index in range(len(document)):
            if pages is not None and index + 1 not in pages:
                continue
            page = document[index]
            textpage = page.get_textpage()
            height = page.get_height()
            yield index + 1, page_lines(_page_words(textpage, height), page.get_width())
            textpage.close()
            page.close()
    finally:
        document.close()


# ------------------------------------------------------------------------------------ tables
def _is_row(line: Line) -> bool:
    numeric = sum(c.numeric for c in line.cells)
    return numeric >= 1 and len(line.cells) >= 2


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def grids_from_lines(lines: list[Line], page: int) -> list[Grid]:
    """Table regions of one page: runs of lines holding numeric cells, with the text lines just
    above them as headers and the nearest "Table N" line as caption."""
    grids: list[Grid] = []
    index = 0
    while index < len(lines):
        if not _is_row(lines[index]):
            index += 1
            continue
        start = index
        rows = [lines[index]]
        index += 1
        # Rows continue through short label lines ("BreastMNIST", a group header) while the
        # vertical rhythm holds.
        while index < len(lines):
            line, previous = lines[index], lines[index - 1]
            gap = line.top - previous.bottom
            if gap > 2.5 * max(previous.height, 6.0):
                break
            if _is_row(line) or (len(line.cells) <= 3 and len(line.text.split()) <= 6
                                 and index + 1 < len(lines) and _is_row(lines[index + 1])):
                rows.append(line)
                index += 1
                continue
            break
        numeric_rows = [r for r in rows if _is_row(r)]
        if len(numeric_rows) < 2 and max(sum(c.numeric for c in r.cells) for r in numeric_rows) < 2:
            continue  # a lone number in a sentence is no table
        headers = _header_lines(lines, start)
        caption = _caption(lines, start, index)
        grids.append(_grid(page, caption, headers, rows))
    return grids


def _header_lines(lines: list[Line], start: int) -> list[Line]:
    headers: list[Line] = []
    cursor = start - 1
    while cursor >= 0 and len(headers) < 4:
        line = lines[cursor]
        below = headers[0] if headers else lines[start]
        if below.top - line.bottom > 2.5 * max(line.height, 6.0) or CAPTION_RE.match(line.text):
            break
        if len(line.text.split()) > 3 * max(len(line.cells), 1) + 6 and len(line.cells) <= 1:
            break  # a sentence of prose above the table
        headers.insert(0, line)
        cursor -= 1
    return headers


def _caption(lines: list[Line], start: int, end: int) -> str:
    for cursor in range(start - 1, max(-1, start - 9), -1):
        if CAPTION_RE.match(lines[cursor].text):
            return " ".join(line.text for line in lines[cursor:min(cursor + 3, start)])[:300]
    for cursor in range(end, min(len(lines), end + 3)):
        if CAPTION_RE.match(lines[cursor].text):
            return " ".join(line.text for line in lines[cursor:cursor + 2])[:300]
    return ""


def _grid(page: int, caption: str, headers: list[Line], rows: list[Line]) -> Grid:
    cells: list[TableCell] = []
    numeric_rows = [r for r in rows if _is_row(r)]
    n_columns = max(sum(c.numeric for c in r.cells) for r in numeric_rows)
    # Columns: the x-spans of numeric cells, merged across rows.
    spans = _column_spans(cell for row in numeric_rows for cell in row.cells if cell.numeric)
    column_values: dict[int, list[str]] = {}
    group = ""
    placed: list[tuple[int, int, Cell, str, Line]] = []
    own_labels, spanning = _spanning_labels(numeric_rows)
    for row_index, row in enumerate(rows):
        if not _is_row(row):
            group = row.text
            continue
        label_cells = own_labels[id(row)]
        label = " ".join(c.text for c in label_cells)
        for cell in row.cells:
            if not cell.numeric:
                continue
            column = min(range(len(spans)), key=lambda k: 0 if _overlap(spans[k][0], spans[k][1], cell.x0, cell.x1) > 0
                         else abs((spans[k][0] + spans[k][1]) / 2 - (cell.x0 + cell.x1) / 2))
            column_values.setdefault(column, []).append(cell.text)
            parts = tuple((c.text, _header_for(headers, c.x0, c.x1)) for c in label_cells) \
                if len(label_cells) > 1 else ()
            placed.append((row_index, column, cell, label, row, group, parts))
    for row_index, column, cell, label, row, group, parts in placed:
        span = spans[column]
        header = _header_for(headers, span[0], span[1])
        cells.append(TableCell(cell.text, label, header, group, row_index, column, len(numeric_rows), n_columns,
                               row.text, column_values[column], parts, spanning.get(id(row), ())))
    return Grid(page, caption, cells, " | ".join(h.text for h in headers), len(numeric_rows), n_columns,
                rows[0].top)


def _column_spans(cells: Iterable[Cell]) -> list[list[float]]:
    """The x-spans of cells, merged where they overlap: a table's columns, left to right."""
    spans: list[list[float]] = []
    for cell in cells:
        for span in spans:
            if _overlap(span[0], span[1], cell.x0, cell.x1) > 0:
                span[0], span[1] = min(span[0], cell.x0), max(span[1], cell.x1)
                break
        else:
            spans.append([cell.x0, cell.x1])
    return sorted(spans)


def _label_cells(row: Line) -> list[Cell]:
    first_number = min((n.x0 for n in row.cells if n.numeric), default=1e9)
    return [c for c in row.cells if not c.numeric and c.x1 <= first_number + 1]


def _spanning_labels(rows: list[Line]) -> tuple[dict[int, list[Cell]], dict[int, tuple[str, ...]]]:
    """Each row's own label cells, and the text of the label cells that span several rows.

    A cell set once, vertically centred beside a block of rows ("Stage 1" beside its 2-, 5- and
    10-fold rows; a model beside one row per class) stands on one line of the block only. Its
    label column has a cell on fewer than half of the rows but on two at least; each row takes the
    nearest such cell of that column, above or below, and keeps its own label without it."""
    labels = {id(row): _label_cells(row) for row in rows}
    own = dict(labels)
    spanning: dict[int, list[tuple[float, str]]] = {id(row): [] for row in rows}
    for x0, x1 in _column_spans(cell for cells in labels.values() for cell in cells):
        holders = [(row, cell) for row in rows for cell in labels[id(row)] if _overlap(x0, x1, cell.x0, cell.x1) > 0]
        held_rows = len({id(row) for row, _ in holders})
        # Two blocks at least: one cell beside one row (a mark, a citation) spans nothing.
        if len(rows) < 3 or held_rows < 2 or held_rows * 2 >= len(rows):
            continue
        for row in rows:
            _, nearest_cell = min(holders, key=lambda held: (abs(held[0].top - row.top), held[0].top > row.top))
            own[id(row)] = [c for c in own[id(row)] if not _overlap(x0, x1, c.x0, c.x1) > 0]
            spanning[id(row)].append((x0, nearest_cell.text))
    return own, {key: tuple(text for _, text in sorted(found)) for key, found in spanning.items() if found}


def _header_for(headers: list[Line], x0: float, x1: float) -> str:
    """The header words above a column: every header cell overlapping it, top to bottom (an upper
    header spanning several columns is read into each); else the nearest header cell."""
    parts = []
    for line in headers:
        overlapping = [c for c in line.cells if _overlap(c.x0, c.x1, x0, x1) > -2]
        if overlapping:
            parts.append(" ".join(c.text for c in overlapping))
    if parts:
        return " / ".join(parts)
    if headers:
        bottom = headers[-1]
        nearest = min(bottom.cells, key=lambda c: abs((c.x0 + c.x1) / 2 - (x0 + x1) / 2), default=None)
        return nearest.text if nearest else ""
    return ""
