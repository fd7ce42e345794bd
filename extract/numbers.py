"""Numbers as papers write them: "96.5%", "0.965", "96.5 ± 0.3", "96,5", "10,015", "86-88%".

`find_numbers` returns every number in a text with its span, so callers can look at the words
around it (a citation bracket, "epochs", "images"). `metric_fraction` decides whether a number
read in a metric context is a percentage or already a fraction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
WORD_NUMBER_PATTERN = "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))

# One number: thousands-grouped ("10,015", "1 024" is not accepted: too ambiguous in tables),
# decimal with a dot, or decimal with a comma (1-2 digits after the comma; 3 would be a thousands group).
# "0,750" is a decimal comma: a thousands group never follows a lone 0.
_NUMBER = r"(?:0,\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+,\d{1,2}(?![\d])|\.\d+|\d+)"
_PLUS_MINUS = r"(?:±|\+/-|\+-|∓)"
_DASH = r"(?:-|–|—)"  # "from 78% to 77%" is a change, so "to" never makes a range
_PERCENT = r"(?:\s?%|\s?per\s?cent\b|\s?percent\b)"

_NUMBER_RE = re.compile(
    rf"(?<![\w.])(?P<sign>[-−+])?(?P<value>{_NUMBER})"
    rf"(?:\s?(?P<pct1>%))?"
    rf"(?:\s{{0,2}}{_PLUS_MINUS}\s{{0,2}}(?P<error>{_NUMBER}))?"
    rf"(?:(?P<range>\s?{_DASH}\s?)(?P<high>{_NUMBER}))?"
    rf"(?P<pct>{_PERCENT})?"
    # A number glued to the next word by a lost line break ("80Notably") still ends at the digit.
    rf"(?-i:(?![a-z0-9_]|[A-Z](?![a-z])))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedNumber:
    """A number found in text. `value` is as written (96.5 for "96.5%"); `is_percent` says a
    percent sign or word followed it; `high` is set for ranges ("86-88%")."""

    value: float
    text: str
    start: int
    end: int
    is_percent: bool = False
    error: Optional[float] = None
    high: Optional[float] = None
    decimals: int = 0
    grouped: bool = False  # written with thousands separators ("10,015")
    signed: bool = False  # written with an explicit sign ("+4.5%"): a difference, not a score

    @property
    def is_range(self) -> bool:
        return self.high is not None

    @property
    def is_integer(self) -> bool:
        return self.decimals == 0


def _to_float(token: str) -> tuple[float, int, bool]:
    """(value, number of decimals, thousands-grouped) for one matched number token."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token) and not token.startswith("0,"):
        decimals = len(token.split(".")[1]) if "." in token else 0
        return float(token.replace(",", "")), decimals, True
    if "," in token:  # a decimal comma: "96,5"
        whole, frac = token.split(",")
        return float(f"{whole}.{frac}"), len(frac), False
    decimals = len(token.split(".")[1]) if "." in token else 0
    return float(token), decimals, False


def _comma_is_list(text: str, start: int, end: int) -> bool:
    """"[1,2]" or "1,2,3" are lists of integers, not a decimal comma."""
    before = text[max(0, start - 1):start]
    after = text[end:end + 1]
    return before in ("[", ",") or after in (",", "]")


def find_numbers(text: str) -> list[ParsedNumber]:
    numbers: list[ParsedNumber] = []
    for match in _NUMBER_RE.finditer(text):
        raw = match.group("value")
        if "," in raw and not re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
            if _comma_is_list(text, match.start("value"), match.end("value")):
                # A list like "1,2": read the integers one by one.
                for part in re.finditer(r"\d+", match.group(0)):
                    offset = match.start() + part.start()
                    numbers.append(ParsedNumber(float(part.group()), part.group(), offset, offset + len(part.group())))
                continue
        value, decimals, grouped = _to_float(raw)
        signed = match.group("sign") is not None
        if match.group("sign") in ("-", "−"):
            value = -value
        high = None
        if match.group("high") is not None:
            high_value, high_decimals, _ = _to_float(match.group("high"))
            if high_value >= value:
                high = high_value
                decimals = max(decimals, high_decimals)
            else:
                # Not a range ("3-1"): keep the first number only.
                end = match.end("value")
                numbers.append(ParsedNumber(value, text[match.start():end], match.start(), end,
                                            decimals=decimals, grouped=grouped))
                continue
        error = None
        if match.group("error") is not None:
            error = _to_float(match.group("error"))[0]
        is_percent = bool(match.group("pct") or match.group("pct1"))
        numbers.append(ParsedNumber(value, match.group(0), match.start(), match.end(), is_percent=is_percent,
                                    error=error, high=high, decimals=decimals, grouped=grouped, signed=signed))
    return numbers


def parse_number(text: str) -> Optional[ParsedNumber]:
    """The single number a table cell or short string holds ("95.35", "0.79 ± 0.02", "88%"), else None."""
    stripped = text.strip().strip("*†‡§¶").strip()
    # "(88%)" is a number; "(0.309," and "0.453)" are the two ends of an interval split into cells.
    stripped = re.sub(r"^\((.*)\)$", r"\1", stripped)
    found = find_numbers(stripped)
    if len(found) != 1:
        return None
    number = found[0]
    rest = (stripped[:number.start] + stripped[number.end:]).strip()
    return number if rest == "" else None


def metric_fraction(number: ParsedNumber, *, percent_scale: Optional[bool] = None) -> Optional[float]:
    """A metric value as a fraction in [0, 1], or None when the number cannot be one.

    A percent sign, or a column/header that says "(%)" (`percent_scale=True`), means divide by 100;
    a bare value above 1 in a metric context is a percentage too ("accuracy of 95.35").
    """
    if number.is_range or number.signed:
        return None
    value = number.value
    if number.is_percent or percent_scale:
        value /= 100.0
    elif value > 1.0:
        if value > 100.0:
            return None
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        return None
    return round(value, 6)


def parse_count(text: str) -> Optional[int]:
    """An integer count written as digits ("10,015", "5856") or a word ("seven")."""
    stripped = text.strip().lower()
    if stripped in _WORD_NUMBERS:
        return _WORD_NUMBERS[stripped]
    number = parse_number(stripped)
    if number is None or not number.is_integer or number.is_percent or number.is_range or number.value < 0:
        return None
    return int(number.value)


def word_to_int(word: str) -> Optional[int]:
    return _WORD_NUMBERS.get(word.lower())
