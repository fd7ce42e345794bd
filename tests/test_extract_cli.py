"""`medicalrec extract` through the CLI (in-process), offline or with OpenAlex replayed."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, shared_path
from medicalrec.extract import openalex
from medicalrec.kb import KnowledgeBase
from openalex_replay import Replay, own_routes

PDFS = REPO / "fixtures" / "pdfs"
GOOD = ("paper_pneumonia_cxr.pdf", "paper_skin_lesion_transposed.pdf", "paper_breast_us_permissions.pdf")


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv(openalex.API_KEY_ENV, raising=False)


@pytest.fixture
def replayed(monkeypatch):
    """OPENALEX_API_KEY set, and every client the CLI makes answers from our fixtures."""
    replay = Replay(own_routes())
    real_make_client = openalex.make_client
    monkeypatch.setenv(openalex.API_KEY_ENV, "test-key")
    monkeypatch.setattr(openalex, "make_client", lambda config, transport=None: real_make_client(config, replay.transport))
    return replay


def test_help_has_an_example(cli):
    result = cli("extract", "--help")
    assert result.exit_code == 0
    assert "Example: medicalrec extract" in result.stdout
    for flag in ("--kb", "--doi", "--offline", "--workers", "--force", "--min-confidence", "--json"):
        assert flag in result.stdout


def test_folder_with_bad_files_reports_every_status_and_exits_1(cli, tmp_path, no_key):
    db = tmp_path / "e.db"
    result = cli("extract", PDFS, "--kb", db, "--offline", "--json")
    assert result.exit_code == 1
    rows = {row["source_file"]: row for row in json.loads(result.stdout)}
    assert {name: rows[name]["status"] for name in rows if name.startswith("bad_")} == {
        "bad_empty.pdf": "empty", "bad_encrypted.pdf": "encrypted", "bad_not_a_pdf.pdf": "not_pdf",
        "bad_scanned.pdf": "no_text_layer", "bad_truncated.pdf": "corrupt"}
    for name in GOOD:
        assert rows[name]["status"] == "ok" and rows[name]["n_measurements"] > 0
    assert all(rows[n]["reason"] and "\n" not in rows[n]["reason"] for n in rows if n.startswith("bad_"))
    assert all(rows[n]["n_measurements"] == rows[n]["n_needs_review"] == 0 for n in rows if n.startswith("bad_"))
    assert "8 files" in result.stderr and "OPENALEX_API_KEY" not in result.stderr
    store = KnowledgeBase.open(db)
    assert store.counts()["papers"] == 3 and store.counts()["file_status"] == 8


def test_good_files_exit_0_and_rerun_skips_them(cli, tmp_path, no_key):
    db = tmp_path / "e.db"
    good = [PDFS / name for name in GOOD]
    first = cli("extract", *good, "--kb", db, "--offline")
    assert first.exit_code == 0
    assert "medicalrec extract" in first.stdout and first.stdout.count(" ok ") == 3  # the closing table
    again = cli("extract", *good, "--kb", db, "--offline", "--json")
    assert again.exit_code == 0
    assert {row["reason"] for row in json.loads(again.stdout)} == {"unchanged; --force re-extracts"}
    forced = cli("extract", good[0], "--kb", db, "--offline", "--force", "--json")
    assert json.loads(forced.stdout)[0]["reason"] is None


def test_missing_key_prints_one_notice_and_goes_on(cli, tmp_path, no_key):
    result = cli("extract", PDFS / GOOD[0], PDFS / GOOD[1], "--kb", tmp_path / "e.db")
    assert result.exit_code == 0
    assert result.stderr.count(openalex.NO_KEY_NOTICE) == 1


def test_openalex_metadata_through_the_cli(cli, tmp_path, replayed):
    db = tmp_path / "e.db"
    result = cli("extract", PDFS / GOOD[0], PDFS / GOOD[1], "--kb", db, "--json")
    assert result.exit_code == 0, result.stderr
    titles = {row["source_file"]: row["title"] for row in json.loads(result.stdout)}
    assert titles[GOOD[1]].startswith("Comparing Lightweight")
    papers = KnowledgeBase.open(db).frame("SELECT source_file, openalex_id, venue FROM papers ORDER BY source_file")
    assert dict(zip(papers.source_file, papers.openalex_id)) == {GOOD[0]: "W5555000412", GOOD[1]: "W5555000017"}
    # the skin paper prints its DOI, which OpenAlex lacks (404), so a title search follows
    assert len(replayed.requests) == 3 and "title.search" in str(replayed.requests[-1].url)


def test_doi_without_pdf_extracts_from_the_abstract(cli, tmp_path, replayed):
    db = tmp_path / "e.db"
    result = cli("extract", "--doi", "https://doi.org/10.5555/JSMI.2023.0412", "--kb", db, "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["doi"] == "10.5555/jsmi.2023.0412" and row["status"] in ("ok", "no_results")
    paper = KnowledgeBase.open(db).frame("SELECT doi, year, abstract, origin FROM papers").iloc[0]
    assert paper.year == 2023 and "PneuNet" in paper.abstract and paper.origin == "extract"


def test_unknown_doi_without_pdf_is_a_one_line_error(cli, tmp_path, replayed):
    result = cli("extract", "--doi", "10.5555/not.there", "--kb", tmp_path / "e.db")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: DOI 10.5555/not.there is not in OpenAlex: check it, or pass the paper's PDF"


@pytest.mark.parametrize("args, message", [
    ((), "nothing to extract"),
    (("--doi", "10.5555/x", "--offline"), "drop --offline"),
    (("--doi", "10.5555/x"), "OPENALEX_API_KEY is not set"),
    (("missing.pdf", "--offline"), "no such file or folder: missing.pdf"),
    ((str(PDFS), "--doi", "10.5555/x", "--offline"), "single PDF with --doi"),
])
def test_user_errors_are_one_line_exit_2(cli, tmp_path, no_key, args, message):
    result = cli("extract", *args, "--kb", tmp_path / "e.db")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_workers_with_a_threshold_store_what_one_process_stores(cli, tmp_path, no_key):
    good = [PDFS / name for name in GOOD]
    one = json.loads(cli("extract", *good, "--kb", tmp_path / "one.db", "--offline", "--json",
                         "--min-confidence", "0.99").stdout)
    two = json.loads(cli("extract", *good, "--kb", tmp_path / "two.db", "--offline", "--json",
                         "--min-confidence", "0.99", "--workers", "2").stdout)

    def counts(rows):
        return {r["source_file"]: (r["status"], r["n_measurements"], r["n_needs_review"]) for r in rows}

    assert counts(one) == counts(two)
    # The threshold reached the worker processes: nothing passed it there either.
    assert {r["status"] for r in two} == {"no_results"} and all(r["n_needs_review"] > 0 for r in two)


def test_workers_must_be_positive(cli, tmp_path):
    result = cli("extract", PDFS, "--workers", "0", "--kb", tmp_path / "e.db")
    assert result.exit_code == 2


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("folder_name, n_files", [("pdfs", 20), ("pdfs_more", 26)])
def test_shared_pdfs_all_land(cli, tmp_path, no_key, folder_name, n_files):
    folder = shared_path("fixtures", folder_name)
    result = cli("extract", folder, "--kb", tmp_path / "e.db", "--offline", "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == n_files
    assert all(row["status"] in ("ok", "no_results") for row in rows), [r for r in rows if r["status"] not in ("ok", "no_results")]
    assert result.exit_code == 0
    assert sum(row["n_measurements"] for row in rows) > 0


def test_per_file_limits_are_options_and_a_file_over_one_gets_too_large(cli, tmp_path, no_key):
    help_text = cli("extract", "--help").stdout
    for flag in ("--max-seconds", "--max-chars", "--max-memory"):
        assert flag in help_text
    db = tmp_path / "e.db"
    result = cli("extract", PDFS / GOOD[0], PDFS / "bad_empty.pdf", "--kb", db, "--offline", "--json",
                 "--max-chars", "1000")
    assert result.exit_code == 1
    rows = {row["source_file"]: row for row in json.loads(result.stdout)}
    assert rows[GOOD[0]]["status"] == "too_large"
    assert "(limit --max-chars 1000): not a paper, or raise the limit" in rows[GOOD[0]]["reason"]
    assert rows["bad_empty.pdf"]["status"] == "empty"  # the batch went on
    statuses = {row.source_file: row.status for row in KnowledgeBase.open(db).file_statuses()}
    assert statuses == {GOOD[0]: "too_large", "bad_empty.pdf": "empty"}
    assert "1 too_large" in result.stderr


@pytest.mark.parametrize("flag, value", [("--max-seconds", "0"), ("--max-chars", "10"), ("--max-memory", "1")])
def test_limits_below_their_minimum_are_refused(cli, tmp_path, flag, value):
    result = cli("extract", PDFS / GOOD[0], flag, value, "--kb", tmp_path / "e.db", "--offline")
    assert result.exit_code == 2 and flag in result.output
