"""Numbers as papers print them: percentages, fractions, deviations, decimal commas, ranges."""

from __future__ import annotations

import pytest

from medicalrec.extract.numbers import find_numbers, metric_fraction, parse_count, parse_number


def one(text: str):
    found = find_numbers(text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("text, value, percent", [
    ("96.5%", 96.5, True),
    ("96.5 %", 96.5, True),
    ("0.965", 0.965, False),
    ("99.4 percent", 99.4, True),
    ("12 per cent", 12.0, True),
    (".91", 0.91, False),
])
def test_single_values_and_percent_signs(text, value, percent):
    number = one(text)
    assert number.value == pytest.approx(value)
    assert number.is_percent is percent
    assert not number.is_range


@pytest.mark.parametrize("text", ["96.5 ± 0.3", "96.5±0.3", "96.5 +/- 0.3", "96.5 ±  0.3"])
def test_plus_minus_keeps_the_mean_and_the_deviation(text):
    number = one(text)
    assert number.value == pytest.approx(96.5)
    assert number.error == pytest.approx(0.3)


def test_percent_after_the_deviation_marks_the_mean_as_percent():
    number = one("72.1 ± 0.9% overall accuracy")
    assert number.is_percent and number.value == pytest.approx(72.1)
    assert metric_fraction(number) == pytest.approx(0.721)


def test_decimal_comma_only_when_unambiguous():
    assert one("96,5").value == pytest.approx(96.5)
    assert one("an AUC of 0,93 was").value == pytest.approx(0.93)
    # Three digits after a comma are a thousands group, never a decimal.
    assert one("10,015 images").value == 10015 and one("10,015 images").grouped
    # A bracketed list of integers is a citation, not "1.2".
    assert [n.value for n in find_numbers("[1,2]")] == [1, 2]
    assert [n.value for n in find_numbers("1,2,3")] == [1, 2, 3]


def test_ranges_are_marked_and_never_become_metrics():
    number = one("86-88%")
    assert number.is_range and number.value == 86 and number.high == 88 and number.is_percent
    assert one("0.10–0.19").is_range
    assert metric_fraction(one("0.10–0.19")) is None


def test_from_to_is_two_numbers_not_a_range():
    assert [n.value for n in find_numbers("from 78.21% to 77.56%")] == [78.21, 77.56]


def test_signed_numbers_are_differences():
    number = one("+4.5%")
    assert number.signed
    assert metric_fraction(number) is None


def test_numbers_glued_to_a_word_by_a_lost_line_break():
    assert [n.value for n in find_numbers("an accuracy of 80Notably, two")] == [80]
    # ...but a unit or a model suffix is not a number boundary.
    assert find_numbers("3D images and B0") == []


@pytest.mark.parametrize("text, expected", [
    ("96.5%", 0.965),
    ("95.35", 0.9535),       # a bare value above 1 in a metric context is a percentage
    ("0.79", 0.79),
    ("1", 1.0),
    ("100", 1.0),
    ("250", None),           # not a percentage of anything
])
def test_metric_fraction(text, expected):
    result = metric_fraction(parse_number(text))
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_parse_number_wants_a_single_number_cell():
    assert parse_number("0.79 ± 0.02").value == pytest.approx(0.79)
    assert parse_number("(88%)").value == 88
    assert parse_number("VGG16 0.9") is None
    assert parse_number("0.8 0.9") is None
    # The ends of a confidence interval set in two cells are no single number.
    assert parse_number("(0.309,") is None and parse_number("0.453)") is None and parse_number("(0.309") is None


@pytest.mark.parametrize("text, expected", [
    ("10,015", 10015), ("5856", 5856), ("seven", 7), ("Two", 2), ("96.5", None), ("12%", None), ("ten", 10),
])
def test_parse_count(text, expected):
    assert parse_count(text) == expected
