"""The `medicalrec kb` commands: KB resolution and notices, query, show, alias, unmatched, help."""

from __future__ import annotations

import json

import pytest
import typer
from kb_rows import CURATED_ROWS, curated_csv

from medicalrec.kb import KnowledgeBase, db
from medicalrec.kb.seed import open_seed
from medicalrec.kb.store import READ_ONLY_QUERY


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def squashed(text: str) -> str:
    """Notes are wrapped to the terminal's width (even inside a path): compare without whitespace."""
    return "".join(text.split())


@pytest.fixture
def small_kb(cli, tmp_path):
    path = tmp_path / "small.db"
    assert cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", path).exit_code == 0
    return path


# ---------------------------------------------------------------- which KB

def test_without_kb_commands_read_the_bundled_seed_and_say_so(cli):
    result = cli("kb", "stats", "--json")
    assert result.exit_code == 0
    assert squashed(f"Using bundled seed KB (read-only) at {db.seed_path()}") in squashed(result.stderr)
    stats = json.loads(result.stdout)  # the notice stays off stdout
    assert stats["counts"]["experiments"] == open_seed().counts()["experiments"]


def test_environment_variable_names_the_kb(cli, small_kb, monkeypatch):
    monkeypatch.setenv(db.ENV_VAR, str(small_kb))
    result = cli("kb", "stats", "--json")
    assert squashed(f"{small_kb} (from {db.ENV_VAR})") in squashed(result.stderr)
    assert json.loads(result.stdout)["counts"]["experiments"] == len(CURATED_ROWS)


def test_a_write_without_kb_copies_the_seed_to_the_user_data_dir(cli):
    seed_fingerprint = open_seed().fingerprint()
    result = cli("kb", "alias", "model", "Pre-trained ViT", "Vision Transformer")
    assert result.exit_code == 0
    assert squashed(f"copying it to {db.user_kb_path()} and writing there") in squashed(result.stderr)
    assert db.user_kb_path().exists() and open_seed().fingerprint() == seed_fingerprint
    assert squashed(f"{db.user_kb_path()} (from user data dir)") in squashed(cli("kb", "stats").stderr)


def test_a_file_that_is_no_sqlite_database_is_a_one_line_error(cli, tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("this is not a database\n" * 100)
    result = cli("kb", "stats", "--kb", bogus)
    assert result.exit_code == 2
    assert last_line(result.stderr) == (f"Error: {bogus} is not a SQLite file: pass a KB file with --kb "
                                        "(or create one with `medicalrec kb init --kb PATH`)")


def test_a_sqlite_file_without_the_kb_schema_is_a_one_line_error(cli, tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (id INTEGER)")
    result = cli("kb", "query", "SELECT 1", "--kb", other)
    assert result.exit_code == 2
    assert last_line(result.stderr) == (f"Error: {other} is not a medicalrec KB (no schema_migrations table): "
                                        "pass a KB file with --kb (or create one with `medicalrec kb init --kb PATH`)")


def test_a_kb_under_a_path_that_cannot_be_a_directory_is_a_one_line_error(cli, tmp_path):
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    result = cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", blocker / "kb.db")
    assert result.exit_code == 2
    line = last_line(result.stderr)
    assert line.startswith(f"Error: cannot open the KB at {blocker / 'kb.db'} (") and line.endswith(
        "): pass a writable path with --kb")


def test_a_missing_kb_file_is_a_one_line_error_naming_kb(cli, tmp_path):
    result = cli("kb", "stats", "--kb", tmp_path / "absent.db")
    assert result.exit_code == 2
    assert last_line(result.stderr) == (f"Error: no KB at {tmp_path / 'absent.db'}: create one with "
                                        f"`medicalrec kb init --kb {tmp_path / 'absent.db'}` or pass another --kb")


# ---------------------------------------------------------------- query

def test_query_prints_rows_as_json_and_csv(cli, small_kb):
    sql = "SELECT ref_id, COUNT(*) AS n FROM experiment_wide GROUP BY ref_id ORDER BY ref_id"
    rows = json.loads(cli("kb", "query", sql, "--kb", small_kb, "--json").stdout)
    expected = {}
    for row in CURATED_ROWS:
        expected[row["ref_id"]] = expected.get(row["ref_id"], 0) + 1
    assert {r["ref_id"]: r["n"] for r in rows} == expected
    csv_out = cli("kb", "query", sql, "--kb", small_kb, "--csv").stdout.splitlines()
    assert csv_out[0] == "ref_id,n" and len(csv_out) == len(expected) + 1


@pytest.mark.parametrize("sql", ["DELETE FROM papers", "WITH x AS (SELECT 1) DELETE FROM papers",
                                 "PRAGMA journal_mode = DELETE", "ATTACH DATABASE 'x.db' AS x"])
def test_query_refuses_writes_with_one_exact_line(cli, small_kb, sql):
    before = KnowledgeBase.open(small_kb).counts()
    result = cli("kb", "query", sql, "--kb", small_kb)
    assert result.exit_code == 2
    assert last_line(result.stderr) == f"Error: {READ_ONLY_QUERY}"
    assert READ_ONLY_QUERY == "kb query is read-only: only SELECT / WITH / EXPLAIN / PRAGMA reads are allowed"
    assert KnowledgeBase.open(small_kb).counts() == before


def test_query_reports_sql_errors_on_one_line(cli, small_kb):
    result = cli("kb", "query", "SELECT nope FROM papers", "--kb", small_kb)
    assert result.exit_code == 2
    assert last_line(result.stderr) == "Error: SQL error: no such column: nope: fix the statement passed to kb query"


def test_query_allows_introspection_pragmas(cli, small_kb):
    rows = json.loads(cli("kb", "query", "PRAGMA table_info(papers)", "--kb", small_kb, "--json").stdout)
    assert "doi" in {r["name"] for r in rows}


# ---------------------------------------------------------------- show

def test_show_model_by_alias_lists_its_experiments(cli, small_kb):
    detail = json.loads(cli("kb", "show", "model", "resnet50", "--kb", small_kb, "--json").stdout)
    assert detail["model"]["name"] == "ResNet-50" and "R50" in detail["model"]["aliases"]
    expected = [r for r in CURATED_ROWS if r["model"] in ("ResNet-50", "ResNet50")]
    assert len(detail["experiments"]) == len(expected)
    accuracies = sorted(m["value"] for e in detail["experiments"] for m in e["measurements"] if m["metric"] == "accuracy")
    assert accuracies == sorted(float(r["accuracy"]) for r in expected)


def test_show_paper_by_doi_carries_provenance(cli, small_kb):
    detail = json.loads(cli("kb", "show", "paper", "https://doi.org/10.1000/P1", "--kb", small_kb, "--json").stdout)
    assert detail["paper"]["ref_id"] == "P1"
    width = detail["experiments"][0]["features"]["width"]
    assert width == {"value": None, "status": "not_reported", "reason": "empty cell in small.csv", "method": "import",
                     "page": None, "snippet": None, "source_url": "https://example.org/p1", "confidence": 1.0}
    table = cli("kb", "show", "paper", "Fundus grad", "--kb", small_kb)
    assert table.exit_code == 0 and "EfficientNet-B3" in table.stdout


def test_show_unknown_names_suggest_close_matches(cli, small_kb):
    result = cli("kb", "show", "model", "ResNet-5O", "--kb", small_kb)
    assert result.exit_code == 2
    assert last_line(result.stderr).startswith("Error: unknown model 'ResNet-5O': did you mean ResNet-50")
    paper = cli("kb", "show", "paper", "P11", "--kb", small_kb)
    assert last_line(paper.stderr) == ("Error: no paper matches 'P11': did you mean P1? "
                                       "(search by DOI, ref_id or a piece of the title)")


def test_show_asks_for_a_doi_when_a_title_piece_matches_several_papers(cli, small_kb):
    result = cli("kb", "show", "paper", "s", "--kb", small_kb)
    assert last_line(result.stderr) == "Error: 's' matches 2 papers (P1, P3): give a DOI or ref_id"


# ---------------------------------------------------------------- curation

def test_alias_relinks_stored_experiments_and_unmatched_shrinks(cli, small_kb):
    unmatched = json.loads(cli("kb", "unmatched", "--kb", small_kb, "--json").stdout)
    assert {"kind": "model", "name": "Our LesionNet", "experiments": 1, "papers": 1} in unmatched
    result = cli("kb", "alias", "model", "Our LesionNet", "custom cnn", "--kb", small_kb)
    assert result.exit_code == 0
    assert "'Our LesionNet' -> 'Custom CNN': 1 experiment(s) re-linked" in result.stdout
    after = json.loads(cli("kb", "unmatched", "--kb", small_kb, "--json").stdout)
    assert all(row["name"] != "Our LesionNet" for row in after)
    kb = KnowledgeBase.open(small_kb)
    assert kb.query("SELECT COUNT(*) FROM models WHERE name = 'Our LesionNet'")[1] == [(0,)]
    assert kb.model_alias_index()["ourlesionnet"] == "Custom CNN"


def test_alias_to_an_unknown_canonical_name_is_refused(cli, small_kb):
    result = cli("kb", "alias", "dataset", "HAM", "HAM1000", "--kb", small_kb)
    assert result.exit_code == 2
    assert last_line(result.stderr).startswith("Error: unknown dataset 'HAM1000': did you mean HAM10000")


# ---------------------------------------------------------------- help

def _commands(command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, path + (name,))


def test_every_command_has_help_with_an_example():
    import medicalrec.cli

    root = typer.main.get_command(medicalrec.cli.app)
    commands = list(_commands(root))
    assert {("kb", name) for name in ("import", "export", "stats", "query", "show", "alias", "unmatched", "review")} | {
        ("kb", "review", name) for name in ("accept", "reject", "edit")} <= {path for path, _ in commands}
    for path, command in commands:
        assert "Example" in (command.help or ""), f"`medicalrec {' '.join(path)}` help has no Example line"
