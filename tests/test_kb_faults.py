"""Faults found by a break-it audit (issue 12), each tried again: damaged CSV, absurd values,
ambiguous scales, rows that only differ in a detail, concurrent creation, odd paths, newer and
read-only KBs, formula cells, a full disk, weak messages. Every test would fail on the old code."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import sqlite3
import string
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from kb_rows import CURATED_ROWS, csv_text, curated_csv, curated_row, write_csv

from medicalrec.kb import KnowledgeBase, db, schema
from medicalrec.kb.exporters import escape_formula, export_text
from medicalrec.kb.importers import import_file
from medicalrec.kb.layouts import CURATED
from medicalrec.kb.values import COUNT_RANGES


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def rows_of(n: int, ref: str = "R", **cells: str) -> list[dict[str, str]]:
    return [curated_row(ref_id=f"{ref}{i}", model=f"Model{i}", dataset="HAM10000", accuracy=f"0.{50 + i}", **cells)
            for i in range(n)]


def stored_models(kb: KnowledgeBase) -> list[str]:
    return sorted(kb.frame("SELECT model_raw FROM experiments").model_raw)


# ---------------------------------------------------------------- 1. nothing swallowed

def test_an_unclosed_quote_costs_its_own_line_only(kb, tmp_path):
    rows = rows_of(8)
    text = csv_text(rows, CURATED.columns).splitlines(keepends=True)
    text[2] = text[2].replace("Model1", '"Model1 unclosed', 1)  # line 3
    path = tmp_path / "quote.csv"
    path.write_text("".join(text), encoding="utf-8")
    report = import_file(kb, path)
    assert [p.line for p in report.problems] == [3]
    assert "cannot delimit the row" in report.problems[0].message
    assert report.rows == 8 and report.rows_stored == 7 and report.rows_failed == 1
    assert stored_models(kb) == sorted(f"Model{i}" for i in range(8) if i != 1)


def test_a_quote_that_closes_rows_later_still_costs_one_line(kb, tmp_path):
    rows = rows_of(6)
    rows[4]["notes"] = 'says "hi", twice'  # a quoted cell four lines further down closes the stray quote
    text = csv_text(rows, CURATED.columns).splitlines(keepends=True)
    text[1] = text[1].replace("Model0", '"Model0', 1)
    path = tmp_path / "late.csv"
    path.write_text("".join(text), encoding="utf-8")
    report = import_file(kb, path)
    assert [p.line for p in report.problems] == [2]
    assert report.rows == report.rows_stored + report.rows_failed == 6
    assert stored_models(kb) == [f"Model{i}" for i in range(1, 6)]


def test_a_quoted_cell_over_two_lines_is_still_one_row(kb, tmp_path):
    rows = rows_of(3)
    rows[1]["notes"] = "first line\nsecond line"
    report = import_file(kb, write_csv(tmp_path / "multi.csv", rows, CURATED.columns))
    assert report.ok and report.rows_stored == 3
    assert "first line\nsecond line" in set(kb.frame("SELECT notes FROM experiments").notes)


def test_nul_bytes_and_stray_quotes_fail_their_rows_and_the_rest_lands(kb, tmp_path):
    text = csv_text(rows_of(5), CURATED.columns).splitlines(keepends=True)
    text[2] = text[2].replace("Model1", "Mo\x00del1")
    text[4] = text[4].replace("Model3", '"Model3"x')
    path = tmp_path / "nul.csv"
    path.write_text("".join(text), encoding="utf-8")
    report = import_file(kb, path)
    assert [p.line for p in report.problems] == [3, 5]
    assert report.rows == 5 and report.rows_stored == 3


# ---------------------------------------------------------------- 2. values checked per field

def test_a_400_digit_count_fails_its_row_not_the_file(cli, tmp_path):
    rows = rows_of(3)
    rows[1]["n_samples"] = "9" * 400
    result = cli("kb", "import", write_csv(tmp_path / "huge.csv", rows, CURATED.columns), "--kb", tmp_path / "k.db",
                 "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["errors"] == ["line 3: n_samples '" + "9" * 400 + "' is not a plausible n_samples "
                                "(longer than 12 digits)"]
    assert (report["rows"], report["rows_stored"], report["rows_failed"]) == (3, 2, 1)


@pytest.mark.parametrize("feature", sorted(COUNT_RANGES))
def test_each_count_is_checked_against_its_range(kb, tmp_path, feature):
    low, high = COUNT_RANGES[feature]
    cells = [str(low - 1), str(high + 1), str(low), str(high)]
    rows = [curated_row(ref_id=f"P{i}", model="VGG16", accuracy="0.9", **{feature: cell}) for i, cell in enumerate(cells)]
    report = import_file(kb, write_csv(tmp_path / f"{feature}.csv", rows, CURATED.columns))
    assert [p.line for p in report.problems] == [2, 3]
    assert str(report.problems[1]) == (f"line 3: {feature} '{high + 1}' is outside the plausible range of {feature}"
                                       f" [{low:,}, {high:,}]")
    assert report.rows_stored == 2


def test_zero_is_refused_where_it_means_nothing_and_kept_where_it_does(kb, tmp_path):
    rows = [curated_row(ref_id="A", model="VGG16", accuracy="0.9", n_classes="0"),
            curated_row(ref_id="B", model="VGG16", accuracy="0.9", n_val="0")]
    report = import_file(kb, write_csv(tmp_path / "zero.csv", rows, CURATED.columns))
    assert [p.line for p in report.problems] == [2] and report.rows_stored == 1


# ---------------------------------------------------------------- 3. percent scale per column

def test_a_value_just_above_one_is_ambiguous_not_a_percentage(kb, tmp_path):
    rows = rows_of(2)
    rows[0]["accuracy"] = "1.0000001"
    report = import_file(kb, write_csv(tmp_path / "eps.csv", rows, CURATED.columns))
    assert len(report.problems) == 1 and report.problems[0].line == 2
    assert "accuracy '1.0000001' is ambiguous" in str(report.problems[0])
    assert 0.010000001 not in set(kb.frame("SELECT value FROM measurements").value)


def test_scale_is_decided_per_paper_and_column(kb, tmp_path):
    rows = [curated_row(ref_id="PCT", model="A", accuracy="95.5", f1="0.9"),
            curated_row(ref_id="PCT", model="B", accuracy="0.97", f1="0.8"),  # accuracy ambiguous beside 95.5
            curated_row(ref_id="PCT", model="C", accuracy="88", f1="0.7"),
            curated_row(ref_id="FRA", model="A", accuracy="0.95", f1="0.9")]
    report = import_file(kb, write_csv(tmp_path / "scale.csv", rows, CURATED.columns))
    assert [str(p) for p in report.problems] == [
        "line 3: accuracy '0.97' is ambiguous: ≤ 1 while the paper's other accuracy values are percentages"
        " (line 2: '95.5'); write every accuracy of a paper on one scale"]
    values = kb.frame("SELECT p.ref_id, e.model_raw, m.metric, m.value FROM measurements m JOIN experiments e"
                      " ON e.id = m.experiment_id JOIN papers p ON p.id = e.paper_id")
    got = {(r.ref_id, r.model_raw, r.metric): r.value for r in values.itertuples()}
    assert got == {("PCT", "A", "accuracy"): 0.955, ("PCT", "A", "f1"): 0.9, ("PCT", "C", "accuracy"): 0.88,
                   ("PCT", "C", "f1"): 0.7, ("FRA", "A", "accuracy"): 0.95, ("FRA", "A", "f1"): 0.9}


# ---------------------------------------------------------------- 4. identity and idempotence

def protocol_rows() -> list[dict[str, str]]:
    """The audit's shape: one DOI, many ref_ids, rows that differ only in image size and protocol."""
    rows = []
    for size in ("28", "64", "128", "224"):
        for protocol in ("linear probe", "fine-tune", "kNN"):
            for model in ("ResNet-18", "ViT-B/16"):
                rows.append(curated_row(ref_id=f"bench-{size}-{protocol}", doi="10.1000/BENCH", title="A benchmark",
                                        model=model, dataset="PathMNIST", width=size, height=size, notes=protocol,
                                        accuracy="0.9", auc="0.95"))
    return rows


def test_rows_that_differ_in_any_feature_are_all_stored(kb, tmp_path):
    rows = protocol_rows()
    report = import_file(kb, write_csv(tmp_path / "bench.csv", rows, CURATED.columns))
    assert report.ok and report.experiments_added == len(rows) == 24 and report.experiments_skipped == 0
    assert kb.counts()["papers"] == 1
    exported = list(csv.DictReader(io.StringIO(export_text(kb, layout="curated"))))
    assert sorted(r["ref_id"] for r in exported) == sorted(r["ref_id"] for r in rows)


def test_reimporting_any_subset_in_any_order_adds_exactly_the_missing_rows(kb, tmp_path):
    rows = protocol_rows() + [dict(CURATED_ROWS[0]), dict(CURATED_ROWS[0])]  # and one exact duplicate
    rng = random.Random(12)
    stored = 0
    for attempt in range(4):
        subset = rng.sample(rows, rng.randint(1, len(rows)))
        report = import_file(kb, write_csv(tmp_path / f"part{attempt}.csv", subset, CURATED.columns))
        assert report.ok
        stored = kb.counts()["experiments"]
    report = import_file(kb, write_csv(tmp_path / "all.csv", rng.sample(rows, len(rows)), CURATED.columns))
    assert kb.counts()["experiments"] == len(rows)
    assert report.experiments_added == len(rows) - stored
    again = import_file(kb, write_csv(tmp_path / "again.csv", rows[::-1], CURATED.columns))
    assert again.experiments_added == 0 and again.experiments_skipped == len(rows)


def test_a_changed_value_is_a_new_row_not_already_present(kb, tmp_path):
    row = dict(CURATED_ROWS[4])
    import_file(kb, write_csv(tmp_path / "a.csv", [row], CURATED.columns))
    report = import_file(kb, write_csv(tmp_path / "b.csv", [{**row, "accuracy": "0.84"}], CURATED.columns))
    assert (report.experiments_added, report.experiments_skipped) == (1, 0)


def test_migration_4_backfills_identities_so_an_old_kb_is_not_duplicated(tmp_path):
    path = tmp_path / "old.db"
    kb = KnowledgeBase.open(path, write=True)
    import_file(kb, curated_csv(tmp_path / "small.csv"))
    kb.engine.dispose()
    with sqlite3.connect(path) as conn:  # the KB as migration 3 left it
        conn.execute("DROP INDEX ux_experiments_identity")
        conn.execute("UPDATE experiments SET identity = NULL, ref_id = NULL")
        conn.execute("DELETE FROM schema_migrations WHERE version = 4")
    kb = KnowledgeBase.open(path, write=True)
    assert db.current_version(kb.engine) == schema.SCHEMA_VERSION
    report = import_file(kb, curated_csv(tmp_path / "small.csv"))
    assert (report.experiments_added, report.experiments_skipped) == (0, len(CURATED_ROWS))


# ---------------------------------------------------------------- 5. two processes, one new KB

_OPEN_TOGETHER = """
import sys, time
from pathlib import Path
from medicalrec.kb import KnowledgeBase
kb_path, me, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
me.touch()  # imports done: wait for the other process, then both open at once
deadline = time.time() + 120
while not other.exists() and time.time() < deadline:
    time.sleep(0.001)
kb = KnowledgeBase.open(kb_path, write=True)
print(kb.counts()["models"])
"""


def test_two_processes_creating_one_new_kb_both_succeed(tmp_path):
    for attempt in range(8):  # the race lost about 1 round in 8 before the retry
        path = tmp_path / f"race{attempt}.db"
        ready = [tmp_path / f"ready{attempt}-{i}" for i in range(2)]
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_TOGETHER, str(path), str(ready[i]), str(ready[1 - i])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
        assert [r[2] for r in results] == [0, 0], [r[1][-400:] for r in results]
        kb = KnowledgeBase.open(path)
        assert db.current_version(kb.engine) == schema.SCHEMA_VERSION
        assert {int(r[0]) for r in results} == {kb.counts()["models"]}


# ---------------------------------------------------------------- 6. paths are paths

SPECIALS = [c for c in string.punctuation if c != "/"] + [" "]


def test_every_printable_special_character_in_a_kb_path_opens_exactly_that_file(tmp_path):
    for char in SPECIALS:
        folder = tmp_path / f"d{ord(char)}"
        folder.mkdir()
        path = folder / f"k{char}b{char}.db"
        kb = KnowledgeBase.open(path, write=True)
        kb.engine.dispose()
        assert path.is_file(), char
        names = {p.name for p in folder.iterdir()} - {path.name + "-wal", path.name + "-shm"}
        assert names == {path.name}, char
        assert KnowledgeBase.open(path).counts()["models"] > 0, char


@pytest.mark.parametrize("name", ["a#b.db", "a?mode=memory.db", "a%20b.db", "a%3Fb.db"])
def test_the_cli_writes_the_kb_it_names(cli, tmp_path, name):
    path = tmp_path / name
    result = cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", path)
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [name]
    assert KnowledgeBase.open(path).counts()["experiments"] == len(CURATED_ROWS)


# ---------------------------------------------------------------- 7. newer and read-only KBs

def test_a_kb_of_a_newer_schema_is_not_written(cli, tmp_path):
    path = tmp_path / "future.db"
    cli("kb", "init", "--kb", path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')")
    result = cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", path)
    assert result.exit_code == 2
    assert last_line(result.stderr) == (
        f"Error: {path} was written by a newer medicalrec (schema version 99; this one knows up to "
        f"{schema.SCHEMA_VERSION}): upgrade medicalrec to one that reads schema version 99 to write it")
    assert KnowledgeBase.open(path).counts()["experiments"] == 0


def _can_mount() -> str:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "needs root and mount(8) to make a size-limited or read-only filesystem"
    return ""


@contextmanager
def tmpfs(where: Path, size: str):
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the test needs a size-limited filesystem")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextmanager
def bind_mount_read_only(source: Path, where: Path):
    where.mkdir()
    for args in (["--bind", str(source), str(where)], ["-o", "remount,bind,ro", str(where)]):
        done = subprocess.run(["mount", *args], capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)
            pytest.skip(f"cannot bind-mount read-only here ({done.stderr.strip()}): the test needs read-only storage")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(bool(_can_mount()), reason=_can_mount() or "mount available")
def test_a_kb_on_read_only_storage_is_read_and_says_so(cli, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    assert cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", source / "kb.db").exit_code == 0
    with sqlite3.connect(source / "kb.db") as conn:  # as a KB is left after its writer closed
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in ("kb.db-wal", "kb.db-shm"):
        (source / leftover).unlink(missing_ok=True)
    with bind_mount_read_only(source, tmp_path / "ro") as mount:
        path = mount / "kb.db"
        result = cli("kb", "stats", "--json", "--kb", path)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["counts"]["experiments"] == len(CURATED_ROWS)
        assert "opened read-only: its storage is not writable" in " ".join(result.stderr.split())
        write = cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", path)
        assert write.exit_code == 2
        assert last_line(write.stderr).startswith(f"Error: cannot write the KB at {path}: its storage is read-only")


# ---------------------------------------------------------------- 8. formula cells

def test_csv_export_escapes_formula_cells_by_default_and_raw_on_request(cli, tmp_path):
    rows = [curated_row(ref_id="F1", model='=HYPERLINK("http://x","y")', dataset="@SUM(A1)", notes="+cmd|' /C calc'!A0",
                        accuracy="0.9"),
            curated_row(ref_id="F2", model="-2+3", dataset="\tTabbed", accuracy="0.8")]
    kb_path = tmp_path / "kb.db"
    assert cli("kb", "import", write_csv(tmp_path / "f.csv", rows, CURATED.columns), "--kb", kb_path).exit_code == 0
    safe = list(csv.DictReader(io.StringIO(cli("kb", "export", "--kb", kb_path).stdout)))
    raw = list(csv.DictReader(io.StringIO(cli("kb", "export", "--kb", kb_path, "--no-escape-formulas").stdout)))
    cells = [cell for row in safe for cell in row.values()]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert {r["model"] for r in safe} == {"'=HYPERLINK(\"http://x\",\"y\")", "'-2+3"}
    assert {r["model"] for r in raw} == {'=HYPERLINK("http://x","y")', "-2+3"}
    again = tmp_path / "again.db"  # the escaped file imports back to the same KB
    (tmp_path / "safe.csv").write_text(cli("kb", "export", "--kb", kb_path).stdout, encoding="utf-8")
    cli("kb", "import", tmp_path / "safe.csv", "--kb", again)
    assert stored_models(KnowledgeBase.open(again)) == stored_models(KnowledgeBase.open(kb_path))


@pytest.mark.parametrize("cell, expected", [("-0.5", "-0.5"), ("+3", "+3"), ("-1e-3", "-1e-3"), ("-", "'-"),
                                            ("-2+3", "'-2+3"), ("=1", "'=1"), ("@a", "'@a"), ("\rx", "'\rx"),
                                            ("a=b", "a=b"), (0.5, 0.5)])
def test_escaped_mode_keeps_plain_numbers_as_numbers(cell, expected):
    assert escape_formula(cell) == expected


# ---------------------------------------------------------------- 9. a full disk

def big_rows(n: int) -> list[dict[str, str]]:
    return [curated_row(ref_id=f"D{i}", model=f"Model {i}", dataset=f"Dataset {i}", notes="x" * 300,
                        accuracy="0.9") for i in range(n)]


def test_a_full_database_stops_the_import_with_one_line_and_a_consistent_kb(tmp_path):
    path = tmp_path / "full.db"
    KnowledgeBase.open(path, write=True).engine.dispose()
    kb = KnowledgeBase.open(path, write=True)
    pages = kb.query("PRAGMA page_count")[1][0][0]
    from sqlalchemy import event

    # SQLITE_FULL without a small disk: the file may not grow past a few more pages.
    event.listen(kb.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count = {pages + 40}"))
    kb.engine.dispose()
    with pytest.raises(db.KBError) as caught:
        import_file(kb, write_csv(tmp_path / "big.csv", big_rows(400), CURATED.columns))
    message = str(caught.value)
    assert "\n" not in message and "database or disk is full" in message
    committed = int(re.search(r"(\d+) paper\(s\) were committed", message).group(1))
    after = KnowledgeBase.open(path)
    assert after.query("PRAGMA integrity_check")[1] == [("ok",)]
    assert 0 < committed == after.counts()["papers"] < 400
    assert after.counts()["experiments"] == committed  # one row per paper: no half-written paper


@pytest.mark.skipif(bool(_can_mount()), reason=_can_mount() or "mount available")
def test_a_full_disk_mid_import_is_one_line_naming_the_disk_and_the_papers_committed(cli, tmp_path):
    with tmpfs(tmp_path / "small_disk", "1200k") as mount:
        path = mount / "kb.db"
        assert cli("kb", "init", "--kb", path).exit_code == 0
        result = cli("kb", "import", write_csv(tmp_path / "big.csv", big_rows(3000), CURATED.columns), "--kb", path)
        assert result.exit_code == 2
        assert [line for line in result.stderr.splitlines() if not line.startswith("Using KB")] == [
            last_line(result.stderr)], result.stderr
        line = last_line(result.stderr)
        assert line.startswith(f"Error: the disk holding the KB ({mount}) is full while importing big.csv")
        committed = int(re.search(r"(\d+) paper\(s\) were committed", line).group(1))
        kb = KnowledgeBase.open(path)
        assert kb.query("PRAGMA integrity_check")[1] == [("ok",)]
        assert kb.counts()["papers"] == committed > 0


# ---------------------------------------------------------------- 10. messages that say what is wrong

def test_a_truncated_kb_is_called_damaged_not_unwritable(cli, tmp_path):
    path = tmp_path / "cut.db"
    cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a copy cut short
    for args in (("kb", "stats"), ("kb", "import", curated_csv(tmp_path / "small.csv"))):
        result = cli(*args, "--kb", path)
        assert result.exit_code == 2
        line = last_line(result.stderr)
        assert line.startswith(f"Error: {path} is a damaged SQLite file (") and "writable path" not in line, line
        assert line.endswith("restore it from a backup, or rebuild it with `medicalrec kb init` and "
                             "`medicalrec kb import`")


def test_a_fifo_given_as_the_csv_file_is_named_as_such(cli, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = cli("kb", "import", fifo, "--kb", tmp_path / "k.db")
    assert result.exit_code == 2
    assert last_line(result.stderr) == f"Error: not a regular file: {fifo}: check the FILE argument (a CSV file)"


def test_conflicting_titles_within_one_paper_are_reported(cli, tmp_path):
    rows = [curated_row(ref_id="T", title="First title", model="A", accuracy="0.9"),
            curated_row(ref_id="T", title="Second title", model="B", accuracy="0.8")]
    result = cli("kb", "import", write_csv(tmp_path / "t.csv", rows, CURATED.columns), "--kb", tmp_path / "k.db")
    assert result.exit_code == 0
    assert ("line 3: warning: title 'Second title' differs from 'First title' (line 2) for the same paper;"
            " the first is kept") in result.stderr.replace("\n", " ")
    assert KnowledgeBase.open(tmp_path / "k.db").query("SELECT title FROM papers")[1] == [("First title",)]


@pytest.mark.parametrize("args, message", [
    (("--domain", "Skin Cancer Classification 🩺"), "Error: --domain 'Skin Cancer Classification 🩺' holds '🩺' (U+1FA7A)"),
    (("--domain", "皮肤癌"), "Error: --domain '皮肤癌' holds '皮' (U+76AE)"),
    (("--domain", "Skin Cancer Classification", "--classes", "100000000"),
     "Error: --classes must be a whole number from 1 to 10,000, got 100,000,000"),
    (("--domain", "Skin Cancer Classification", "--samples", "1000000000000"),
     "Error: --samples must be a whole number from 1 to 100,000,000, got 1,000,000,000,000"),
])
def test_recommend_refuses_dropped_characters_and_absurd_counts(cli, tmp_path, args, message):
    result = cli("recommend", *args, "--kb", tmp_path / "absent.db")
    assert result.exit_code == 2
    assert last_line(result.stderr).startswith(message)
