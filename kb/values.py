"""The values of an imported table's cells: their syntax, a plausible range per field, and the scale
(fraction or percentage) of each metric column.

Every parser raises ValueError with the reason a cell is refused; the importer turns it into a
problem on the cell's row, so a bad value fails its row, never the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

# Plausible ranges of the count features, inclusive. Zero is refused where it means nothing
# (no images, no classes, a 0-pixel side); a validation set may be absent (0). The upper bounds
# are far above any medical-imaging study (whole-slide images reach ~150k px a side, the largest
# public sets a few million images) and far below what overflows a float.
COUNT_RANGES: dict[str, tuple[int, int]] = {
    "n_samples": (1, 100_000_000),
    "n_train": (1, 100_000_000),
    "n_test": (1, 100_000_000),
    "n_val": (0, 100_000_000),
    "k_fold": (2, 10_000),
    "width": (1, 200_000),
    "height": (1, 200_000),
    "channels": (1, 1_024),
    "n_classes": (1, 10_000),
}
YEAR_RANGE = (1800, 2100)
MAX_DIGITS = 12  # longer digit strings are refused before any conversion
MAX_TEXT = 2_000  # characters in a categorical cell (domain, modality)

# ASCII digits only: Python's \d and int() also accept other scripts' digits ("٣"), which no
# curated table means.
_WHOLE = re.compile(r"^\+?([0-9]{1,%d})(?:\.0*)?$" % MAX_DIGITS)
_THOUSANDS = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3}){1,3}$")
_DECIMAL = re.compile(r"^\+?(?:[0-9]{1,%d}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$" % MAX_DIGITS)
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def parse_count(cell: str) -> int:
    """A whole number written plainly ("224", "224.0", "+3") or with thousands commas ("10,015")."""
    if _THOUSANDS.match(cell):
        return int(cell.replace(",", ""))
    match = _WHOLE.match(cell)
    if not match:
        raise ValueError("is not a whole number")
    return int(match.group(1))


def parse_feature_count(feature: str, cell: str) -> int:
    """A count checked against the feature's plausible range (COUNT_RANGES)."""
    if len(cell) > MAX_DIGITS + 4:
        raise ValueError(f"is not a plausible {feature} (longer than {MAX_DIGITS} digits)")
    value = parse_count(cell)
    low, high = COUNT_RANGES.get(feature, (0, 10 ** MAX_DIGITS))
    if not low <= value <= high:
        raise ValueError(f"is outside the plausible range of {feature} [{low:,}, {high:,}]")
    return value


def parse_flag(cell: str) -> str:
    lowered = cell.lower()
    if lowered in _YES:
        return "yes"
    if lowered in _NO:
        return "no"
    raise ValueError("is not yes or no")


def parse_label(cell: str) -> str:
    if len(cell) > MAX_TEXT:
        raise ValueError(f"is longer than {MAX_TEXT} characters")
    return cell


def parse_year(cell: str) -> int:
    year = parse_count(cell) if len(cell) <= MAX_DIGITS else -1
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        raise ValueError(f"is not a year in [{YEAR_RANGE[0]}, {YEAR_RANGE[1]}]")
    return year


# ---------------------------------------------------------------- metrics and their scale

# A bare value above 1 cannot be a fraction; read as a percentage it must also be plausible for a
# published metric. Between 1 and this floor it is neither: 1.0000001 is a fraction with float
# noise or a typo, not an accuracy of 1.0000001 %.
PERCENT_FLOOR = 2.0


@dataclass(frozen=True)
class MetricReading:
    """A metric cell read without deciding its scale: the number and whether it carried a % sign."""

    cell: str
    value: float
    explicit_percent: bool
    line: int = 0

    @property
    def bare_percent(self) -> bool:
        return not self.explicit_percent and self.value >= PERCENT_FLOOR

    @property
    def bare_fraction(self) -> bool:
        return not self.explicit_percent and 0 < self.value <= 1


def read_metric(cell: str, line: int = 0) -> MetricReading:
    """The number in a metric cell; ValueError for one that is no metric on either scale."""
    text = cell.strip()
    percent = text.endswith("%")
    number = text[:-1].strip() if percent else text
    if not _DECIMAL.match(number):
        raise ValueError("is not a number")
    value = float(number)
    if not math.isfinite(value) or value > 100:
        raise ValueError("is outside [0, 1] and [0, 100]")
    if not percent and 1 < value < PERCENT_FLOOR:
        raise ValueError(f"is ambiguous: above 1, so no fraction, yet {value:g} % is no plausible metric;"
                         " write a fraction ≤ 1 or add a % sign")
    return MetricReading(cell, value, percent, line)


def column_is_percent(readings: list[MetricReading]) -> bool:
    """The scale of one metric column within one paper: percentages when any value says so (a %
    sign, or a bare value of at least PERCENT_FLOOR), else fractions."""
    return any(r.explicit_percent or r.bare_percent for r in readings)


def scaled(reading: MetricReading, percent_column: bool, column: str,
           evidence: Optional[MetricReading] = None) -> float:
    """The reading as a fraction on its column's scale; ValueError when its scale is ambiguous."""
    if reading.explicit_percent or reading.bare_percent:
        return round(reading.value / 100, 12)
    if percent_column and reading.value > 0:
        where = f" (line {evidence.line}: {evidence.cell!r})" if evidence is not None and evidence.line else ""
        raise ValueError(f"is ambiguous: ≤ 1 while the paper's other {column} values are percentages{where};"
                         f" write every {column} of a paper on one scale")
    return reading.value


def scale_column(readings: list[MetricReading], column: str) -> list[tuple[Optional[float], Optional[str]]]:
    """(fraction, None) or (None, reason) for each reading of one metric column of one paper."""
    percent = column_is_percent(readings)
    evidence = next((r for r in readings if r.explicit_percent or r.bare_percent), None)
    results: list[tuple[Optional[float], Optional[str]]] = []
    for reading in readings:
        try:
            results.append((scaled(reading, percent, column, evidence), None))
        except ValueError as exc:
            results.append((None, f"{column} {reading.cell!r} {exc}"))
    return results


def parse_metric(cell: str) -> float:
    """One metric cell as a fraction, its scale decided as if it were alone in its column."""
    reading = read_metric(cell)
    return scaled(reading, column_is_percent([reading]), "metric")
