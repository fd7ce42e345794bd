"""Property-based tests (Hypothesis) of `kb import` and its value parsers: arbitrary rows,
encodings and damage. The invariants: rows read = rows stored + rows reported failed; damage to
one line costs at most that line; export(import(x)) = x for valid rows; parsers refuse with
ValueError only and never accept a value outside its field's range."""

from __future__ import annotations

import csv
import io
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kb_rows import csv_text, curated_row

from medicalrec.errors import UserError
from medicalrec.kb import KnowledgeBase
from medicalrec.kb.exporters import export_text
from medicalrec.kb.importers import import_file, unescape_formula
from medicalrec.kb.layouts import CURATED
from medicalrec.kb.normalize import MODEL_FAMILIES
from medicalrec.kb.values import (
    COUNT_RANGES,
    MetricReading,
    parse_feature_count,
    parse_flag,
    parse_metric,
    parse_year,
    read_metric,
    scale_column,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
METRIC_COLUMNS = tuple(CURATED.metrics.values())
COUNT_COLUMNS = tuple(COUNT_RANGES)

# Text a curator might write, quotes, commas, spreadsheet trigger characters and non-Latin
# letters included; stripped, as the importer strips cells. No line breaks here: the damage
# tests need one row per line to say which line a fault costs.
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20).map(
    str.strip).filter(bool)
_metric = st.floats(0, 1, allow_nan=False).map(lambda x: repr(round(x, 4)))


@st.composite
def valid_rows(draw, min_size=1, max_size=8, quotes=True):
    text = _text if quotes else _text.filter(lambda t: '"' not in t)
    # One title per DOI (rows of a paper that disagree on its title are a warning, tested apart).
    papers = draw(st.lists(st.tuples(st.sampled_from(["", "10.1000/a", "10.1000/b"]), text), min_size=1, max_size=3,
                           unique_by=lambda paper: paper[0]))
    rows = []
    for i in range(draw(st.integers(min_size, max_size))):
        doi, title = papers[draw(st.integers(0, len(papers) - 1))]
        ref = f"ref{draw(st.integers(0, 3))}" + (f"-{doi[-1]}" if doi else "-x")
        counts = {c: str(draw(st.integers(*COUNT_RANGES[c]))) for c in draw(st.sets(st.sampled_from(COUNT_COLUMNS)))}
        metrics = {c: draw(_metric) for c in draw(st.sets(st.sampled_from(METRIC_COLUMNS), min_size=1))}
        model = "Net " + draw(text)
        rows.append(curated_row(
            ref_id=ref, doi=doi, title=f"{title} {doi}".strip(), year="2020", source_url=f"https://example.org/{i}",
            model=model, model_family=MODEL_FAMILIES[hash(model) % len(MODEL_FAMILIES)],
            dataset=draw(st.one_of(st.just(""), text)), notes=draw(st.one_of(st.just(""), text)),
            augmentation=draw(st.sampled_from(["", "yes", "no"])), domain=draw(st.one_of(st.just(""), text)),
            **counts, **metrics))
    return rows


def check_invariant(kb: KnowledgeBase, report) -> None:
    assert report.rows == report.rows_stored + report.rows_failed
    assert kb.counts()["experiments"] == report.experiments_added
    assert len({p.line for p in report.problems}) == report.rows_failed


# ---------------------------------------------------------------- the importer

@SETTINGS
@given(rows=valid_rows(quotes=False), data=st.data())
def test_a_stray_quote_costs_at_most_its_own_line(tmp_path_factory, rows, data):
    lines = csv_text(rows, CURATED.columns).splitlines(keepends=True)
    target = data.draw(st.integers(1, len(lines) - 1))
    position = data.draw(st.integers(0, len(lines[target]) - 1))
    lines[target] = lines[target][:position] + '"' + lines[target][position:]
    path = tmp_path_factory.mktemp("quote") / "q.csv"
    path.write_text("".join(lines), encoding="utf-8")
    kb = KnowledgeBase.in_memory()
    report = import_file(kb, path)
    check_invariant(kb, report)
    assert report.rows == len(rows)
    assert {p.line for p in report.problems} <= {target + 1}
    stored = sorted(kb.frame("SELECT model_raw FROM experiments").model_raw)
    others = sorted(r["model"] for i, r in enumerate(rows, start=1) if i != target)
    assert set(others) <= set(stored) and len(stored) >= len(others)


_DAMAGE = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(['"', ",", "\n", "\r", "\x00", "'=", "\ufeff"])),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


@SETTINGS
@given(rows=valid_rows(), damage=st.lists(_DAMAGE, max_size=4),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
def test_rows_read_are_rows_stored_plus_rows_failed_whatever_the_damage(tmp_path_factory, rows, damage, encoding):
    text = csv_text(rows, CURATED.columns)
    header_end = text.index("\n") + 1
    for kind, where, what in damage:  # the body only: a damaged header makes the file unusable, by design
        at = header_end + where % max(1, len(text) - header_end)
        if kind == "insert":
            text = text[:at] + what + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + what:]
        else:
            text = text[:at]
    path = tmp_path_factory.mktemp("damage") / "d.csv"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        assume(False)
    kb = KnowledgeBase.in_memory()
    try:
        report = import_file(kb, path)
    except UserError as exc:  # an unusable file is one line, and nothing is written
        assert "\n" not in str(exc) and kb.counts()["experiments"] == 0
        assert encoding == "latin-1" or not text.strip("\n")
        return
    check_invariant(kb, report)


def _parse(text: str) -> list[dict[str, str]]:
    return [{k: unescape_formula(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


@SETTINGS
@given(rows=valid_rows())
def test_export_of_import_gives_back_the_valid_rows(tmp_path_factory, rows):
    kb = KnowledgeBase.in_memory()
    path = tmp_path_factory.mktemp("round") / "rows.csv"
    path.write_text(csv_text(rows, CURATED.columns), encoding="utf-8")
    report = import_file(kb, path)
    assert report.ok and report.rows_stored == len(rows)
    key = lambda row: tuple(row[c] for c in CURATED.columns)  # noqa: E731
    expected = sorted((key({**r, "doi": r["doi"].lower()}) for r in rows))
    assert sorted(key(r) for r in _parse(export_text(kb, layout="curated"))) == expected
    raw = list(csv.DictReader(io.StringIO(export_text(kb, layout="curated", escape_formulas=False))))
    assert sorted(key(r) for r in raw) == expected


# ---------------------------------------------------------------- the value parsers

@settings(max_examples=100, deadline=None)
@given(feature=st.sampled_from(COUNT_COLUMNS), cell=st.one_of(st.text(max_size=30), st.integers().map(str),
                                                               st.from_regex(r"\A[0-9]{1,3}(,[0-9]{3}){1,4}\Z")))
def test_count_parser_refuses_with_value_error_only_and_keeps_to_the_range(feature, cell):
    try:
        value = parse_feature_count(feature, cell)
    except ValueError:
        return
    low, high = COUNT_RANGES[feature]
    assert isinstance(value, int) and low <= value <= high


@settings(max_examples=100, deadline=None)
@given(feature=st.sampled_from(COUNT_COLUMNS), data=st.data())
def test_every_count_in_range_reads_back(feature, data):
    value = data.draw(st.integers(*COUNT_RANGES[feature]))
    assert parse_feature_count(feature, str(value)) == value
    assert parse_feature_count(feature, f"{value:,}") == value


@settings(max_examples=100, deadline=None)
@given(cell=st.one_of(st.text(max_size=30), st.floats().map(repr), st.floats().map(lambda f: f"{f}%")))
def test_metric_parser_gives_a_fraction_or_a_value_error(cell):
    try:
        value = parse_metric(cell)
    except ValueError:
        return
    assert math.isfinite(value) and 0 <= value <= 1


@settings(max_examples=100, deadline=None)
@given(value=st.floats(0, 1))
def test_a_fraction_reads_as_itself_and_its_percentage_as_the_same(value):
    assert parse_metric(repr(value)) == value
    assert parse_metric(f"{value * 100!r}%") == pytest.approx(value, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.tuples(st.floats(0, 100), st.booleans()), min_size=1, max_size=8))
def test_a_column_is_read_on_one_scale(values):
    readings = []
    for value, percent in values:
        try:
            readings.append(read_metric(f"{value!r}{'%' if percent else ''}", len(readings) + 2))
        except ValueError:
            continue
    assume(readings)
    results = scale_column(readings, "accuracy")
    assert len(results) == len(readings)
    percent_column = any(r.explicit_percent or r.bare_percent for r in readings)
    for reading, (fraction, reason) in zip(readings, results):
        assert (fraction is None) != (reason is None)
        if fraction is not None:
            assert 0 <= fraction <= 1
            if percent_column and reading.bare_fraction:
                pytest.fail(f"{reading.cell} accepted as a fraction in a percentage column")
            if not percent_column:
                assert fraction == reading.value


@settings(max_examples=100, deadline=None)
@given(cell=st.text(max_size=12))
def test_flag_and_year_parsers_refuse_with_value_error_only(cell):
    for parser in (parse_flag, parse_year):
        try:
            value = parser(cell)
        except ValueError:
            continue
        assert value in ("yes", "no") or 1800 <= value <= 2100


def test_metric_reading_keeps_its_line():
    assert read_metric("95%", 7) == MetricReading("95%", 95.0, True, 7)
