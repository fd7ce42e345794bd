"""From PDFs to curated facts through the CLI: `extract` stores every likely result with the
scorer's confidence, accepts those at the threshold (`--min-confidence`), and leaves the rest
waiting in `kb review`; a curator's accept moves one into `kb export`, a reject does not. Bad
inputs keep their status and one-line reason while the batch goes on.

Runs on the synthetic fixture PDFs (fixtures/pdfs/, written by fixtures/make_pdfs.py), offline,
with a KB in tmp_path."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from medicalrec.extract import openalex

PDFS = REPO / "fixtures" / "pdfs"
PNEUMONIA = PDFS / "paper_pneumonia_cxr.pdf"
GOOD = ("paper_pneumonia_cxr.pdf", "paper_skin_lesion_transposed.pdf", "paper_breast_us_permissions.pdf")
BAD = {"bad_empty.pdf": "empty", "bad_encrypted.pdf": "encrypted", "bad_not_a_pdf.pdf": "not_pdf",
       "bad_scanned.pdf": "no_text_layer", "bad_truncated.pdf": "corrupt"}
WAITING = "no result passed the scorer's threshold"


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv(openalex.API_KEY_ENV, raising=False)


def as_json(result):
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def queue(cli, db) -> list[dict]:
    result = cli("kb", "review", "--kb", db, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def exported(cli, db) -> list[dict]:
    result = cli("kb", "export", "--layout", "tuples", "--format", "json", "--kb", db)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_strict_threshold_leaves_every_candidate_waiting_for_review(cli, tmp_path):
    db = tmp_path / "kb.db"
    result = cli("extract", PNEUMONIA, "--kb", db, "--offline", "--min-confidence", "0.99", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["status"], row["n_measurements"], row["n_experiments"]) == ("no_results", 0, 4)
    assert row["n_needs_review"] == 20
    assert row["reason"] == f"{WAITING}; 20 wait for review (medicalrec kb review)"
    assert "20 more wait for review" in result.stderr

    waiting = queue(cli, db)
    assert len(waiting) == 20 and {r["file"] for r in waiting} == {"paper_pneumonia_cxr.pdf"}
    assert {r["model"] for r in waiting} == {"VGG-16", "ResNet-50", "DenseNet-121", "PneuNet"}
    for r in waiting:
        assert r["page"] in (1, 2) and r["snippet"], r
        assert f"{r['value'] * 100:.2f}" in r["snippet"], r  # the number as the page prints it
        assert 0.0 <= r["confidence"] < 0.99 and r["split"] == "test"
    assert [r["page"] for r in waiting] == sorted(r["page"] for r in waiting)  # page by page
    assert exported(cli, db) == []  # nothing is a fact yet


def test_accept_moves_a_candidate_into_the_export_and_reject_does_not(cli, tmp_path):
    db = tmp_path / "kb.db"
    cli("extract", PNEUMONIA, "--kb", db, "--offline", "--min-confidence", "0.99")
    waiting = queue(cli, db)
    chosen = next(r for r in waiting if (r["model"], r["metric"]) == ("PneuNet", "accuracy"))
    dropped = next(r for r in waiting if (r["model"], r["metric"]) == ("VGG-16", "auc"))

    accepted = cli("kb", "review", "accept", chosen["id"], "--kb", db, "--by", "alice")
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.stdout.strip() == f"accepted 1 measurement(s): {chosen['id']} (by alice)"
    (fact,) = exported(cli, db)
    assert (fact["source_file"], fact["model"], fact["dataset"], fact["metric"], fact["average"], fact["split"]) == (
        "paper_pneumonia_cxr.pdf", "PneuNet", "Kermany chest X-ray", "accuracy", "", "test")
    assert fact["value"] == pytest.approx(0.9522) and fact["paper_doi"] == "10.5555/jsmi.2023.0412"
    assert (fact["page"], fact["snippet"], fact["confidence"]) == (chosen["page"], chosen["snippet"],
                                                                  chosen["confidence"])

    rejected = cli("kb", "review", "reject", dropped["id"], "--kb", db, "--by", "bob", "--note", "not sure")
    assert rejected.exit_code == 0, rejected.stderr
    assert [f["model"] for f in exported(cli, db)] == ["PneuNet"]
    left = {r["id"] for r in queue(cli, db)}
    assert len(left) == 18 and not left & {chosen["id"], dropped["id"]}
    # A decision is final: neither can be acted on again.
    again = cli("kb", "review", "accept", dropped["id"], "--kb", db, "--by", "alice")
    assert again.exit_code == 2 and f"measurement {dropped['id']} was already rejected" in again.stderr


def test_the_default_threshold_stores_accepted_tuples_with_their_confidence(cli, tmp_path):
    db = tmp_path / "kb.db"
    rows = as_json(cli("extract", *(PDFS / name for name in GOOD), "--kb", db, "--offline", "--json"))
    assert {r["source_file"]: r["status"] for r in rows} == {name: "ok" for name in GOOD}
    facts = exported(cli, db)
    assert len(facts) == sum(r["n_measurements"] for r in rows) > 0
    assert len(queue(cli, db)) == sum(r["n_needs_review"] for r in rows)
    for fact in facts:
        assert 0.0 <= fact["confidence"] <= 1.0, fact
        assert fact["method"] in ("table", "sentence") and fact["page"] in (1, 2) and fact["snippet"], fact
        assert 0.0 <= fact["value"] <= 1.0
    pneunet = {f["metric"]: f["value"] for f in facts if f["model"] == "PneuNet"}
    assert pneunet == pytest.approx({"accuracy": 0.9522, "precision": 0.948, "recall": 0.9718, "f1": 0.9597,
                                     "auc": 0.9843})
    # One value per (model, dataset, metric, average, split) and file.
    keys = [(f["source_file"], f["model"], f["dataset"], f["metric"], f["average"], f["split"], f["setting"])
            for f in facts]
    assert len(keys) == len(set(keys))
    # The same KB refuses a threshold outside [0, 1] on export, in one line.
    bad = cli("kb", "export", "--layout", "tuples", "--kb", db, "--min-confidence", "1.5")
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines()[-1].startswith("Error: --min-confidence 1.5")


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_bad_file_keeps_its_status_while_the_batch_goes_on(cli, tmp_path, bad):
    db = tmp_path / "kb.db"
    result = cli("extract", PDFS / bad, PNEUMONIA, "--kb", db, "--offline", "--min-confidence", "0.99", "--json")
    assert result.exit_code == 1  # a file failed
    rows = {r["source_file"]: r for r in json.loads(result.stdout)}
    assert rows[bad]["status"] == BAD[bad]
    reason = rows[bad]["reason"]
    assert reason and "\n" not in reason and len(reason) < 300
    assert (rows[bad]["n_measurements"], rows[bad]["n_needs_review"]) == (0, 0)
    good = rows["paper_pneumonia_cxr.pdf"]
    assert (good["status"], good["n_needs_review"]) == ("no_results", 20)
    assert len(queue(cli, db)) == 20
    assert "2 files" in result.stderr


def test_min_confidence_must_be_a_fraction(cli, tmp_path):
    result = cli("extract", PNEUMONIA, "--kb", tmp_path / "kb.db", "--offline", "--min-confidence", "1.5")
    assert result.exit_code == 2
    assert "--min-confidence" in result.stderr and not (tmp_path / "kb.db").exists()


def test_a_forced_re_extraction_keeps_every_curator_decision(cli, tmp_path):
    db = tmp_path / "kb.db"
    cli("extract", PNEUMONIA, "--kb", db, "--offline", "--min-confidence", "0.99")
    waiting = queue(cli, db)
    pick = {key: next(r for r in waiting if (r["model"], r["metric"]) == key)
            for key in (("PneuNet", "accuracy"), ("VGG-16", "auc"), ("ResNet-50", "f1"))}
    assert cli("kb", "review", "accept", pick["PneuNet", "accuracy"]["id"], "--kb", db, "--by", "alice").exit_code == 0
    assert cli("kb", "review", "reject", pick["VGG-16", "auc"]["id"], "--kb", db, "--by", "bob").exit_code == 0
    edited = cli("kb", "review", "edit", pick["ResNet-50", "f1"]["id"], "--value", "0.5", "--kb", db, "--by", "carol")
    assert edited.exit_code == 0, edited.stderr
    before = sorted((f["model"], f["metric"], round(f["value"], 6)) for f in exported(cli, db))

    again = cli("extract", PNEUMONIA, "--kb", db, "--offline", "--min-confidence", "0.99", "--force")
    assert again.exit_code == 0, again.stderr
    # The rows are new (a re-extraction replaces them), the decisions are not.
    assert len(queue(cli, db)) == 17
    assert sorted((f["model"], f["metric"], round(f["value"], 6)) for f in exported(cli, db)) == before
    assert ("ResNet-50", "f1", 0.5) in before
    from medicalrec.kb import KnowledgeBase

    kb = KnowledgeBase.open(db)
    history = kb.query("SELECT rl.action, rl.who, ms.review_status, ms.reviewed_by FROM review_log rl"
                       " JOIN measurements ms ON ms.id = rl.measurement_id ORDER BY rl.id")[1]
    assert history == [("accept", "alice", "accepted", "alice"), ("reject", "bob", "rejected", "bob"),
                       ("edit", "carol", "accepted", "carol")]
