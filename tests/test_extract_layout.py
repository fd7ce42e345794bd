"""extract.layout: positioned words -> lines -> cells -> table grids (row label, header path,
group label, caption), on synthetic word boxes and on small PDFs written here with fpdf2."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from medicalrec.extract.layout import (Word, _page_words, _repair, grids_from_lines, is_numeric_cell, page_lines,
                                       read_grids)

CHAR, HEIGHT, LEADING = 5.0, 10.0, 12.0


def words_from_text(text: str, *, top: float = 100.0, x: float = 0.0) -> list[Word]:
    """Word boxes for a block of monospaced text: every character is CHAR wide, every line HEIGHT
    high and LEADING below the last. One space is a gap of 0.5 em, two or more a column gap."""
    words = []
    for index, line in enumerate(text.splitlines()):
        y = top + index * LEADING
        for match in re.finditer(r"\S+", line):
            words.append(Word(match.group(), x + match.start() * CHAR, x + match.end() * CHAR, y, y + HEIGHT))
    return words


def grids_of(text: str, page: int = 1, **kwargs):
    return grids_from_lines(page_lines(words_from_text(text, **kwargs)), page)


def cells_by_value(grid) -> dict[str, tuple[str, str, str]]:
    return {c.value_text: (c.row_label, c.column_header, c.group_label) for c in grid.cells}


# ---------------------------------------------------------------------------- words -> lines -> cells
def test_words_on_one_baseline_are_one_line_split_into_cells_at_wide_gaps():
    words = words_from_text("VGG-16 (ours)    91.35  0.956\nThe model was trained for ten epochs.")
    # A word set a little higher (a footnote mark) still belongs to its line.
    words.append(Word("*", 34 * CHAR, 35 * CHAR, 99.0, 106.0))
    first, second = page_lines(words)
    assert [c.text for c in first.cells] == ["VGG-16 (ours)", "91.35", "0.956", "*"]
    assert [c.text for c in second.cells] == ["The model was trained for ten epochs."]
    assert first.text.startswith("VGG-16 (ours) 91.35 0.956")


def test_two_numbers_one_space_apart_are_two_cells_and_two_words_are_one():
    (line,) = page_lines(words_from_text("Test set  0.91 0.95 0.87"))
    assert [c.text for c in line.cells] == ["Test set", "0.91", "0.95", "0.87"]


@pytest.mark.parametrize("text, numeric", [
    ("91.35", True), ("95.2%", True), ("0.91 ± 0.02", True), ("(0.88)", True), ("92.1*", True), ("0,750", True),
    ("ResNet-50", False), ("Table", False), ("2.1 Dataset", False), ("", False),
])
def test_numeric_cells(text, numeric):
    assert is_numeric_cell(text) is numeric


# ---------------------------------------------------------------------------- grids
TABLE = """Table 1. Results on the test set
Model           Accuracy (%)   AUC
VGG-16          91.35          0.956
ResNet-50       92.84          0.967
"""


def test_a_table_gives_each_numeric_cell_its_row_label_column_header_and_caption():
    (grid,) = grids_of(TABLE, page=3)
    assert grid.page == 3 and grid.caption.startswith("Table 1. Results on the test set")
    assert (grid.n_rows, grid.n_columns) == (2, 2)
    assert cells_by_value(grid) == {
        "91.35": ("VGG-16", "Accuracy (%)", ""), "0.956": ("VGG-16", "AUC", ""),
        "92.84": ("ResNet-50", "Accuracy (%)", ""), "0.967": ("ResNet-50", "AUC", "")}
    cell = next(c for c in grid.cells if c.value_text == "0.967")
    assert (cell.row_index, cell.column_index, cell.row_text) == (1, 1, "ResNet-50 92.84 0.967")
    assert cell.column_values == ["0.956", "0.967"]


def test_a_caption_below_the_table_is_its_caption_and_a_lone_number_is_no_table():
    below = grids_of("Model        Acc      AUC\nVGG-16       0.91     0.95\nResNet-50    0.93     0.96\n"
                     "Table 4: Accuracy of the baselines\n")
    assert [g.caption for g in below] == ["Table 4: Accuracy of the baselines"]
    assert grids_of("We trained for       50\nepochs in total.\n") == []


def test_a_header_spanning_two_columns_is_read_into_both():
    (grid,) = grids_of("""Table 2. Test results
                  BreastMNIST          PneumoniaMNIST
Model             Acc      AUC         Acc      AUC
ResNet-18         0.833    0.901       0.864    0.956
ViT-B/16          0.812    0.887       0.871    0.949
""")
    headers = {c.value_text: c.column_header for c in grid.cells}
    assert headers["0.833"] == "BreastMNIST / Acc" and headers["0.901"] == "BreastMNIST / AUC"
    assert headers["0.864"] == "PneumoniaMNIST / Acc" and headers["0.956"] == "PneumoniaMNIST / AUC"
    assert {c.row_label for c in grid.cells} == {"ResNet-18", "ViT-B/16"}
    assert grid.n_columns == 4


GROUPED = """Table 3. Results per dataset
Model        Accuracy    F1
ResNet-18    0.833       0.80
ViT          0.812       0.79
PneumoniaMNIST
ResNet-18    0.864       0.85
ViT          0.871       0.86
"""


def test_a_label_row_inside_a_table_does_not_break_it():
    (grid,) = grids_of(GROUPED)
    assert grid.n_rows == 4 and len(grid.cells) == 8
    assert {c.value_text: c.row_label for c in grid.cells}["0.871"] == "ViT"


def test_a_label_row_inside_a_table_is_the_group_of_the_rows_below_it_only():
    (grid,) = grids_of(GROUPED)
    groups = {c.value_text: c.group_label for c in grid.cells}
    assert groups["0.864"] == groups["0.871"] == "PneumoniaMNIST"
    assert groups["0.833"] != "PneumoniaMNIST" and groups["0.812"] != "PneumoniaMNIST"


def test_two_header_rows_bridged_by_a_taller_cell_stay_two_lines():
    # "Cross validation" stands on two lines beside the two header rows, and its lower word
    # overlaps both; a line that grew with each word it took would swallow both header rows.
    words = [Word("Cross", 0, 25, 90.0, 100.0), Word("Metrics", 60, 95, 88.0, 98.0),
             Word("validation", 0, 50, 95.0, 105.0), Word("ACC", 60, 75, 100.0, 110.0),
             Word("AUC", 90, 105, 100.0, 110.0)]
    lines = page_lines(words)
    assert ["Metrics" in line.text and "ACC" in line.text for line in lines].count(True) == 0
    assert any(line.text.endswith("ACC AUC") for line in lines)


SPANNED = """Table 2. Results
Stage      Feature    Folds      ACC       F1
           none       2-fold     0.801     0.791
Stage 1    none       5-fold     0.811     0.802
           none       10-fold    0.821     0.812
           GLCM       2-fold     0.971     0.961
Stage 2    GLCM       5-fold     0.981     0.972
           GLCM       10-fold    0.991     0.982
"""


def test_a_label_cell_set_beside_a_block_of_rows_labels_every_row_of_the_block():
    (grid,) = grids_of(SPANNED)
    by_value = {c.value_text: (c.row_label, c.spanning_labels) for c in grid.cells}
    assert by_value["0.801"] == ("none 2-fold", ("Stage 1",)) and by_value["0.812"] == ("none 10-fold", ("Stage 1",))
    assert by_value["0.971"] == ("GLCM 2-fold", ("Stage 2",)) and by_value["0.982"] == ("GLCM 10-fold", ("Stage 2",))
    # A label column filled on every row is the rows' own label, not a spanning one.
    (plain,) = grids_of(GROUPED)
    assert all(c.spanning_labels == () for c in plain.cells)


PROSE = ["The images were resized to a common size", "and split into training and test sets by",
         "patient so that no patient is in both of", "them; the labels come from two readers."]
RIGHT_COLUMN = ["Each network was trained for 50 epochs", "with a batch size of 32 and early",
                "stopping on the validation loss with a"]


def _two_column_page() -> list[Word]:
    left = "\n".join(PROSE * 3 + ["Table 1. Accuracy on the test set", "Model        Acc      AUC",
                                  "VGG-16       0.91     0.95", "ResNet-50    0.93     0.96"] + PROSE)
    right = "\n".join(RIGHT_COLUMN * 7)
    return words_from_text(left, top=50, x=40) + words_from_text(right, top=50, x=320)


def test_a_two_column_page_keeps_a_table_in_its_column():
    words = _two_column_page()
    (grid,) = grids_from_lines(page_lines(words, width=600), 2)
    assert {c.row_text for c in grid.cells} == {"VGG-16 0.91 0.95", "ResNet-50 0.93 0.96"}
    assert cells_by_value(grid) == {"0.91": ("VGG-16", "Acc", ""), "0.95": ("VGG-16", "AUC", ""),
                                    "0.93": ("ResNet-50", "Acc", ""), "0.96": ("ResNet-50", "AUC", "")}
    assert grid.caption.startswith("Table 1. Accuracy on the test set")
    assert "epochs" not in grid.caption + grid.header_text
    # Without the page width (no gutter), the other column's sentences run into the table's rows.
    (mixed,) = grids_from_lines(page_lines(words), 2)
    assert any("epochs" in c.row_text or "stopping" in c.row_text for c in mixed.cells)


def test_a_single_column_page_is_read_line_by_line_across_the_page():
    vocabulary = "a an the of images model network were trained tested resized split into sets by".split()
    draw = random.Random(7)
    rows = [" ".join(draw.choice(vocabulary) for _ in range(20)) for _ in range(20)]
    lines = page_lines(words_from_text("\n".join(rows)), width=600)
    assert [line.text for line in lines] == rows


# ---------------------------------------------------------------------------- pdfium
class FakeTextPage:
    """What layout._page_words reads of a pypdfium2 text page: characters and their loose boxes
    (left, bottom, right, top in PDF points, origin bottom-left)."""

    def __init__(self, chars: list[tuple[str, float, float]], baseline: float = 700.0, size: float = 10.0):
        self.chars = chars
        self.baseline, self.size = baseline, size

    def count_chars(self) -> int:
        return len(self.chars)

    def get_text_range(self, start: int, count: int) -> str:
        return "".join(c for c, _, _ in self.chars[start:start + count])

    def get_charbox(self, index: int, loose: bool = True):
        _, left, right = self.chars[index]
        return left, self.baseline, right, self.baseline + self.size


def _typeset(*runs: tuple[float, str], width: float = 5.0, tight: dict[str, float] | None = None):
    """Characters laid out left to right from each run's x; `tight` gives narrower glyphs."""
    chars = []
    for x, text in runs:
        for ch in text:
            w = (tight or {}).get(ch, width)
            chars.append((ch, x, x + w))
            x += w + 0.4
    return chars


def test_pdfium_words_keep_a_decimal_point_and_repair_ligatures():
    chars = _typeset((10, "E\ufffecientNet-B0"), (100, "91.35"), (140, "0.956"), (200, "classi\x02"),
                     tight={".": 1.5})
    words = _page_words(FakeTextPage(chars), height=800.0)
    assert [w.text for w in words] == ["EfficientNet-B0", "91.35", "0.956", "classi"]
    assert words[1].x0 == 100 and words[0].top == pytest.approx(800 - 710)


@pytest.mark.parametrize("raw, repaired", [
    ("E\ufffecientNet", "EfficientNet"),   # "ffi" after E/e/u/o before c
    ("classi\ufffecation", "classification"),
    ("con\ufffeguration", "configuration"),
    ("classi\ufffe", "classi"),            # a soft hyphen at the end of a line
    ("pre-\x02", "pre-"),
    ("plain", "plain"),
])
def test_pdfium_replacement_characters_are_repaired(raw, repaired):
    assert _repair(raw) == repaired


def _write_pdf(path: Path, rows: list[tuple[str, ...]], *, char_spacing: float = 0.0) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(600, 800))
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    pdf.set_char_spacing(char_spacing)
    for index, row in enumerate(rows):
        for column, text in enumerate(row):
            pdf.text(60 + column * 120, 100 + index * 12, text)
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("char_spacing", [0.0, 1.2])
def test_read_grids_on_a_real_pdf_keeps_decimals_whole(tmp_path, char_spacing):
    path = _write_pdf(tmp_path / "t.pdf", [("Table 1. Results on the test set",),
                                           ("Model", "Accuracy (%)", "F1-score"),
                                           ("VGG-16", "91.35", "90.12"), ("ResNet-50", "92.84", "91.07")],
                      char_spacing=char_spacing)
    pages = list(read_grids(path))
    assert [number for number, _ in pages] == [1]
    (grid,) = grids_from_lines(pages[0][1], 1)
    assert cells_by_value(grid) == {"91.35": ("VGG-16", "Accuracy (%)", ""), "90.12": ("VGG-16", "F1-score", ""),
                                    "92.84": ("ResNet-50", "Accuracy (%)", ""),
                                    "91.07": ("ResNet-50", "F1-score", "")}
    assert grid.caption.startswith("Table 1.")


# ---------------------------------------------------------------------------- helpers for other tests
def write_text_pdf(path: Path, pages: list[str], *, size: float = 9.0) -> Path:
    """A PDF of plain text pages in Courier (spaces keep their width, so columns of a table typed
    with two or more spaces stay apart); a line too long for the page wraps. Dashes and quotes
    outside Latin-1 (the core fonts' range) are written as their ASCII look-alikes."""
    from fpdf import FPDF

    ascii_forms = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                                 "\u2022": "*"})

    pdf = FPDF(unit="pt", format=(612, 792))
    pdf.set_auto_page_break(True, margin=40)
    pdf.set_margins(40, 40, 40)
    pdf.set_font("Courier", size=size)
    for text in pages:
        pdf.add_page()
        for line in text.splitlines():
            line = line.translate(ascii_forms).encode("latin-1", "replace").decode("latin-1")
            pdf.multi_cell(w=0, h=size * 1.25, text=line or " ", align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_write_text_pdf_keeps_typed_columns(tmp_path):
    path = write_text_pdf(tmp_path / "typed.pdf", [TABLE])
    ((number, lines),) = list(read_grids(path))
    (grid,) = grids_from_lines(lines, number)
    assert cells_by_value(grid)["0.967"] == ("ResNet-50", "AUC", "")
