"""Measurement review: averages kept apart, the review queue, accept / reject / edit with their
review_log, accepted-only facts everywhere, the `kb review` commands, and migration 2 of a
version-1 KB."""

from __future__ import annotations

import getpass
import io
import json
import sqlite3

import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError

from medicalrec.errors import UserError
from medicalrec.kb import (
    METRICS,
    ExperimentRecord,
    KBError,
    KnowledgeBase,
    MeasurementRecord,
    PaperRecord,
    Provenance,
    db,
    schema,
)
from medicalrec.kb.details import show
from medicalrec.kb.exporters import TUPLE_KEYS, export_text, tuple_rows
from medicalrec.kb.review import REVIEW_COLUMNS, history
from medicalrec.kb.stats import collect_stats

TABLE = Provenance("table", page=4, snippet="Table 2: VGG16 reaches 93.1% accuracy", source_url="https://example.org/s")
NOT_IN_QUEUE = "only the ids `medicalrec kb review` lists can be accepted, rejected or edited"


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def add_extracted(kb: KnowledgeBase) -> dict[tuple[str, str], int]:
    """One extracted paper: three measurements wait for review, one was stored accepted.
    Returns {(metric, average): measurement id}."""
    pending = dict(split="test", review_status="needs_review")
    kb.save_paper(
        PaperRecord(sha256="abc", title="A fundus study", source_file="study.pdf", origin="extract"),
        [ExperimentRecord("VGG16", "APTOS", measurements=[
            MeasurementRecord("accuracy", 0.931, TABLE, confidence=0.9, **pending),
            MeasurementRecord("f1", 0.88, Provenance("table", page=5), average="macro", confidence=0.6, **pending),
            MeasurementRecord("f1", 0.91, Provenance("table", page=5), average="weighted", confidence=0.5, **pending),
            MeasurementRecord("auc", 0.95, TABLE, split="test"),
        ])])
    return {(r.metric, r.average): r.id for r in kb.frame("SELECT id, metric, average FROM measurements").itertuples()}


@pytest.fixture
def reviewer(monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "curator")
    return "curator"


# ---------------------------------------------------------------- records and schema

def test_measurement_records_carry_average_confidence_and_review_status():
    plain = MeasurementRecord("f1", 0.9, Provenance("table", confidence=0.7))
    assert (plain.average, plain.confidence, plain.review_status) == ("", 0.7, "accepted")
    assert MeasurementRecord("f1", 0.9, Provenance("table", confidence=0.7), confidence=0.4).confidence == 0.4
    for metric in ("balanced_accuracy", "auprc", "mcc", "npv", "top3_accuracy", "top5_accuracy", "dice", "iou"):
        assert metric in METRICS and MeasurementRecord(metric, 0.5, TABLE).metric == metric
    with pytest.raises(ValueError, match="unknown average 'samples'"):
        MeasurementRecord("f1", 0.9, TABLE, average="samples")
    with pytest.raises(ValueError, match=r"confidence 1.5 outside \[0, 1\]"):
        MeasurementRecord("f1", 0.9, TABLE, confidence=1.5)
    with pytest.raises(ValueError, match="unknown review status 'maybe'"):
        MeasurementRecord("f1", 0.9, TABLE, review_status="maybe")


def test_averages_of_one_metric_are_kept_apart_and_the_tuple_stays_unique(kb):
    ids = add_extracted(kb)
    assert {("f1", "macro"), ("f1", "weighted")} <= set(ids)
    rows = kb.frame("SELECT * FROM measurements WHERE id = :i", {"i": ids[("f1", "macro")]}).iloc[0]
    assert (rows.value, rows.confidence, rows.review_status, rows.page) == (0.88, 0.6, "needs_review", 5)
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql(f"UPDATE measurements SET average = 'macro' WHERE id = {ids[('f1', 'weighted')]}")
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE measurements SET average = 'samples'")
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE measurements SET review_status = 'maybe'")


def test_the_schema_version_is_the_last_migration():
    assert schema.SCHEMA_VERSION == db.MIGRATIONS[-1][0] == len(db.MIGRATIONS)


# ---------------------------------------------------------------- queue and actions

def test_the_queue_lists_what_waits_paper_by_paper_page_by_page(kb):
    ids = add_extracted(kb)
    queue = kb.review_queue()
    assert [row["id"] for row in queue] == [ids[("accuracy", "")], ids[("f1", "macro")], ids[("f1", "weighted")]]
    assert tuple(queue[0]) == REVIEW_COLUMNS
    assert {k: queue[0][k] for k in ("source_file", "title", "page", "model_raw", "dataset_raw", "metric", "value")} == {
        "source_file": "study.pdf", "title": "A fundus study", "page": 4, "model_raw": "VGG16", "dataset_raw": "APTOS",
        "metric": "accuracy", "value": 0.931}
    assert queue[0]["snippet"] == TABLE.snippet and queue[1]["average"] == "macro"
    assert [row["id"] for row in kb.review_queue(min_confidence=0.6)] == [ids[("accuracy", "")], ids[("f1", "macro")]]
    assert len(kb.review_queue(limit=1)) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_confidence=1.5), "--min-confidence 1.5 is outside [0, 1]: pass a confidence between 0 and 1"),
    (dict(limit=0), "--limit 0 is not a positive number: pass --limit 1 or more"),
])
def test_bad_queue_filters_name_the_flag(kb, kwargs, message):
    with pytest.raises(UserError) as error:
        kb.review_queue(**kwargs)
    assert str(error.value) == message


def test_accept_records_who_and_when_and_logs_before_and_after(kb, reviewer):
    ids = add_extracted(kb)
    accuracy = ids[("accuracy", "")]
    assert kb.accept([accuracy, accuracy]) == [accuracy]  # repeated ids count once
    row = kb.frame("SELECT review_status, reviewed_by, reviewed_at FROM measurements WHERE id = :i", {"i": accuracy}).iloc[0]
    assert (row.review_status, row.reviewed_by) == ("accepted", reviewer)
    assert row.reviewed_at.endswith("+00:00")  # UTC
    [entry] = history(kb, accuracy)
    assert (entry["action"], entry["who"], entry["at"], entry["note"]) == ("accept", reviewer, row.reviewed_at, None)
    assert entry["before"]["review_status"] == "needs_review" and entry["after"]["review_status"] == "accepted"
    assert entry["before"]["value"] == entry["after"]["value"] == 0.931
    assert [r["id"] for r in kb.review_queue()] == [ids[("f1", "macro")], ids[("f1", "weighted")]]


def test_reject_keeps_the_row_out_of_the_facts_with_its_reason(kb):
    ids = add_extracted(kb)
    weighted = ids[("f1", "weighted")]
    assert kb.reject([weighted], who="bob", note="a cited result") == [weighted]
    [entry] = history(kb, weighted)
    assert (entry["action"], entry["who"], entry["note"], entry["after"]["review_status"]) == (
        "reject", "bob", "a cited result", "rejected")
    assert kb.frame("SELECT review_status FROM measurements WHERE id = :i", {"i": weighted}).review_status[0] == "rejected"


def test_edit_corrects_the_tuple_accepts_it_and_logs_both_versions(kb):
    ids = add_extracted(kb)
    accuracy = ids[("accuracy", "")]
    after = kb.edit(accuracy, "alice", value=0.913, metric="balanced_accuracy", split="val", note="typo in the PDF")
    assert {k: after[k] for k in ("metric", "average", "split", "value", "review_status", "reviewed_by")} == {
        "metric": "balanced_accuracy", "average": "", "split": "val", "value": 0.913, "review_status": "accepted",
        "reviewed_by": "alice"}
    stored = kb.frame("SELECT metric, split, value, review_status FROM measurements WHERE id = :i", {"i": accuracy})
    assert stored.iloc[0].tolist() == ["balanced_accuracy", "val", 0.913, "accepted"]
    [entry] = history(kb, accuracy)
    assert entry["action"] == "edit" and entry["note"] == "typo in the PDF"
    assert (entry["before"]["metric"], entry["before"]["value"]) == ("accuracy", 0.931)
    assert (entry["after"]["metric"], entry["after"]["value"]) == ("balanced_accuracy", 0.913)


@pytest.mark.parametrize("kwargs, message", [
    (dict(value=93.1), "value 93.1 is not a fraction in [0, 1]: pass --value as a fraction (93% is 0.93)"),
    (dict(metric="f2"), "unknown metric 'f2': pass --metric as one of " + ", ".join(METRICS)),
    (dict(split="holdout"), "unknown split 'holdout': pass --split as one of test, val, train, cv, external, unspecified"),
    (dict(average="samples"), "unknown average 'samples': pass --average as one of macro, weighted, micro, or '' when"
                              " the source does not say"),
    ({}, "nothing to edit in measurement {id}: pass --value, --metric, --average or --split"
         " (or accept it as read with `medicalrec kb review accept {id}`)"),
    (dict(average="macro"), "measurement {id} cannot become f1 (macro, test split): measurement {macro} of the same"
                            " experiment already is; reject one of the two instead"),
])
def test_a_bad_edit_is_one_line_naming_the_flag_and_changes_nothing(kb, kwargs, message):
    ids = add_extracted(kb)
    target = ids[("f1", "weighted")]
    before = kb.frame("SELECT * FROM measurements ORDER BY id")
    with pytest.raises(UserError) as error:
        kb.edit(target, "alice", **kwargs)
    assert str(error.value) == message.format(id=target, macro=ids[("f1", "macro")])
    assert kb.frame("SELECT * FROM measurements ORDER BY id").equals(before) and history(kb) == []


def test_unknown_or_already_reviewed_ids_are_refused_and_nothing_changes(kb):
    ids = add_extracted(kb)
    accuracy, macro, auc = ids[("accuracy", "")], ids[("f1", "macro")], ids[("auc", "")]
    kb.reject([macro], who="bob")
    cases = [
        (lambda: kb.accept([accuracy, 998, 999], who="a"),
         "no measurements with ids 998, 999: `medicalrec kb review` lists the ids waiting for review"),
        (lambda: kb.reject([999], who="a"),
         "no measurement with id 999: `medicalrec kb review` lists the ids waiting for review"),
        (lambda: kb.accept([accuracy, auc], who="a"), f"measurement {auc} was already accepted: {NOT_IN_QUEUE}"),
        (lambda: kb.edit(macro, "a", value=0.5), f"measurement {macro} was already rejected: {NOT_IN_QUEUE}"),
        (lambda: kb.reject([auc, macro], who="a"),
         f"measurements {auc} (accepted), {macro} (rejected) were already reviewed: {NOT_IN_QUEUE}"),
        (lambda: kb.accept([], who="a"),
         "no measurement ids given: pass one or more IDs (`medicalrec kb review` lists the ids waiting for review)"),
        (lambda: kb.accept([accuracy], who=" "), "--by is empty: pass --by NAME"),
    ]
    for action, message in cases:
        with pytest.raises(UserError) as error:
            action()
        assert str(error.value) == message
    # The first call named a good id too: one transaction, so it stayed in the queue.
    assert [r["id"] for r in kb.review_queue()] == [accuracy, ids[("f1", "weighted")]]
    assert len(history(kb)) == 1


def test_who_defaults_to_the_login_name_or_asks_for_by(kb, monkeypatch):
    ids = add_extracted(kb)
    monkeypatch.setattr(getpass, "getuser", lambda: "login-name")
    kb.accept([ids[("accuracy", "")]])
    assert history(kb)[0]["who"] == "login-name"

    def no_user():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    with pytest.raises(UserError) as error:
        kb.reject([ids[("f1", "macro")]])
    assert str(error.value) == "cannot tell who is reviewing: pass --by NAME"


def test_reviewing_a_read_only_kb_names_the_fix(tmp_path):
    path = tmp_path / "kb.db"
    ids = add_extracted(KnowledgeBase.open(path, write=True))
    with pytest.raises(KBError, match="is read-only: pass --kb PATH"):
        KnowledgeBase.open(path).accept([ids[("accuracy", "")]], who="a")


def test_the_log_outlives_a_re_extraction_that_replaces_the_row(kb):
    ids = add_extracted(kb)
    kb.accept([ids[("accuracy", "")]], who="alice")
    kb.save_paper(PaperRecord(sha256="abc", origin="extract"), [ExperimentRecord("VGG16", "APTOS")], replace=True)
    [entry] = history(kb)
    assert entry["measurement_id"] is None and entry["before"]["metric"] == "accuracy" and entry["who"] == "alice"


# ---------------------------------------------------------------- accepted measurements are the facts

def test_only_accepted_measurements_reach_views_frames_exports_stats_and_show(kb):
    ids = add_extracted(kb)
    fingerprint = kb.fingerprint()

    def facts():
        frame = kb.experiments_frame().iloc[0]
        wide = kb.frame("SELECT accuracy, auc, f1 FROM experiment_wide").iloc[0]
        shown = show(kb, "model", "VGG16")["experiments"][0]["measurements"]
        return ({m: frame[m] for m in ("accuracy", "auc", "f1")}, wide.to_dict(),
                sorted((t["metric"], t["average"]) for t in tuple_rows(kb)), sorted(m["metric"] for m in shown))

    frame, wide, tuples, shown = facts()
    assert frame["auc"] == wide["auc"] == 0.95
    assert pd.isna(frame["accuracy"]) and pd.isna(wide["accuracy"]) and pd.isna(frame["f1"])
    assert tuples == [("auc", "")] and shown == ["auc"]
    stats = collect_stats(kb)
    assert (stats["counts"]["measurements"], stats["counts"]["measurements_needs_review"]) == (1, 3)
    assert stats["measurements_by_metric"] == {"auc": 1}

    kb.accept([ids[("accuracy", "")], ids[("f1", "macro")], ids[("f1", "weighted")]], who="alice")
    frame, wide, tuples, shown = facts()
    assert frame["accuracy"] == wide["accuracy"] == 0.931
    assert frame["f1"] == wide["f1"] == 0.88  # macro before weighted (db.measurement_order)
    assert tuples == [("accuracy", ""), ("auc", ""), ("f1", "macro"), ("f1", "weighted")]
    assert collect_stats(kb)["counts"]["measurements_needs_review"] == 0
    assert kb.fingerprint() != fingerprint  # a cached recommender model is retrained on the new facts


def test_export_min_confidence_drops_measurements_below_it(kb):
    ids = add_extracted(kb)
    kb.accept([ids[("accuracy", "")], ids[("f1", "macro")]], who="a")
    assert [t["metric"] for t in tuple_rows(kb, min_confidence=0.7)] == ["accuracy", "auc"]
    curated = pd.read_csv(io.StringIO(export_text(kb, layout="curated", min_confidence=0.95)), dtype=str,
                          keep_default_na=False)
    assert (curated.accuracy[0], curated.f1[0], curated.auc[0]) == ("", "", "0.95")
    with pytest.raises(UserError, match=r"^--min-confidence -0.1 is outside \[0, 1\]"):
        export_text(kb, layout="tuples", min_confidence=-0.1)


# ---------------------------------------------------------------- the kb review commands

@pytest.fixture
def review_kb(tmp_path):
    path = tmp_path / "review.db"
    kb = KnowledgeBase.open(path, write=True)
    ids = add_extracted(kb)
    kb.engine.dispose()
    return path, ids


def test_bare_kb_review_lists_the_queue_as_table_json_and_csv(cli, review_kb):
    path, ids = review_kb
    rows = json.loads(cli("kb", "review", "--kb", path, "--json").stdout)
    assert [r["id"] for r in rows] == [ids[("accuracy", "")], ids[("f1", "macro")], ids[("f1", "weighted")]]
    assert list(rows[0]) == ["id", "file", "page", "model", "dataset", "setting", "metric", "average", "split", "value",
                             "confidence", "snippet"]
    assert (rows[0]["file"], rows[0]["page"], rows[0]["snippet"]) == ("study.pdf", 4, TABLE.snippet)
    limited = cli("kb", "review", "--kb", path, "--csv", "--min-confidence", "0.6", "--limit", "1").stdout.splitlines()
    assert limited[0].startswith("id,file,page,") and len(limited) == 2
    table = cli("kb", "review", "--kb", path)
    assert table.exit_code == 0 and "Measurements waiting for review" in table.stdout  # columns fold at 80 wide


def test_review_commands_accept_reject_and_edit(cli, review_kb):
    path, ids = review_kb
    accepted = cli("kb", "review", "accept", ids[("accuracy", "")], "--kb", path, "--by", "alice")
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.stdout.strip() == f"accepted 1 measurement(s): {ids[('accuracy', '')]} (by alice)"
    rejected = cli("kb", "review", "reject", ids[("f1", "weighted")], "--kb", path, "--by", "bob", "--note", "cited")
    assert rejected.stdout.strip() == f"rejected 1 measurement(s): {ids[('f1', 'weighted')]} (by bob)"
    edited = cli("kb", "review", "edit", ids[("f1", "macro")], "--value", "0.93", "--average", "weighted", "--split",
                 "external", "--by", "carol", "--kb", path)
    assert edited.stdout.strip() == (f"edited and accepted measurement {ids[('f1', 'macro')]}: f1, weighted = 0.93"
                                     " (external split, by carol)")
    log = history(KnowledgeBase.open(path))
    assert [(e["action"], e["who"], e["note"]) for e in log] == [("accept", "alice", None), ("reject", "bob", "cited"),
                                                                ("edit", "carol", None)]
    assert json.loads(cli("kb", "review", "--kb", path, "--json").stdout) == []
    assert json.loads(cli("kb", "stats", "--kb", path, "--json").stdout)["counts"]["measurements_needs_review"] == 0


@pytest.mark.parametrize("args, message", [
    (("accept", "999"), "no measurement with id 999: `medicalrec kb review` lists the ids waiting for review"),
    (("edit", "{auc}", "--value", "0.5"), f"measurement {{auc}} was already accepted: {NOT_IN_QUEUE}"),
    (("edit", "{accuracy}", "--value", "93"),
     "value 93 is not a fraction in [0, 1]: pass --value as a fraction (93% is 0.93)"),
    (("--min-confidence", "2"), "--min-confidence 2 is outside [0, 1]: pass a confidence between 0 and 1"),
])
def test_review_command_errors_are_one_exact_line(cli, review_kb, args, message):
    path, ids = review_kb
    fill = {"auc": ids[("auc", "")], "accuracy": ids[("accuracy", "")]}
    result = cli("kb", "review", *(a.format(**fill) for a in args), "--kb", path, "--by", "alice") if args[0] in (
        "accept", "edit") else cli("kb", "review", *args, "--kb", path)
    assert result.exit_code == 2
    assert last_line(result.stderr) == "Error: " + message.format(**fill)


def test_an_accepted_tuple_is_exported_and_a_waiting_one_is_not(cli, review_kb):
    path, ids = review_kb

    def exported():
        out = cli("kb", "export", "--layout", "tuples", "--format", "json", "--kb", path)
        assert out.exit_code == 0, out.stderr
        return {(t["metric"], t["average"]) for t in json.loads(out.stdout)}

    assert exported() == {("auc", "")}
    cli("kb", "review", "accept", ids[("f1", "macro")], "--kb", path, "--by", "alice")
    assert exported() == {("auc", ""), ("f1", "macro")}
    csv_out = cli("kb", "export", "--layout", "tuples", "--kb", path, "--min-confidence", "0.9").stdout.splitlines()
    header = csv_out[0].split(",")
    assert header[:len(TUPLE_KEYS)] == list(TUPLE_KEYS) and "average" in header and "confidence" in header
    assert len(csv_out) == 2  # the macro F1 (confidence 0.6) is below 0.9
    bad = cli("kb", "export", "--kb", path, "--min-confidence", "7")
    assert last_line(bad.stderr) == "Error: --min-confidence 7 is outside [0, 1]: pass a confidence between 0 and 1"


def test_stats_say_how_many_measurements_wait(cli, review_kb):
    path, _ = review_kb
    stats = json.loads(cli("kb", "stats", "--kb", path, "--json").stdout)
    assert (stats["counts"]["measurements"], stats["counts"]["measurements_needs_review"],
            stats["counts"]["measurements_rejected"]) == (1, 3, 0)
    table = cli("kb", "stats", "--kb", path).stdout
    assert "3 measurements wait for review: `medicalrec kb review` lists them" in table


# ---------------------------------------------------------------- migration 2

# The version-1 schema exactly as migration 1 created it before the review columns existed
# (the experiment_wide view is shortened to two metrics: migration 2 replaces it anyway).
V1_DDL = """
CREATE TABLE schema_migrations (version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at VARCHAR NOT NULL,
  PRIMARY KEY (version));
CREATE TABLE papers (id INTEGER NOT NULL, sha256 VARCHAR, doi VARCHAR, ref_id VARCHAR, openalex_id VARCHAR,
  title VARCHAR, year INTEGER, venue VARCHAR, authors VARCHAR, abstract VARCHAR, source_file VARCHAR,
  source_url VARCHAR, origin VARCHAR NOT NULL, created_at VARCHAR NOT NULL, PRIMARY KEY (id), UNIQUE (sha256),
  UNIQUE (ref_id));
CREATE INDEX ix_papers_doi ON papers (doi);
CREATE TABLE models (id INTEGER NOT NULL, name VARCHAR NOT NULL, family VARCHAR NOT NULL, params_millions FLOAT,
  curated BOOLEAN NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE datasets (id INTEGER NOT NULL, name VARCHAR NOT NULL, domain VARCHAR, modality VARCHAR,
  curated BOOLEAN NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE file_status (source_file VARCHAR NOT NULL, sha256 VARCHAR, status VARCHAR NOT NULL, reason VARCHAR,
  n_pages INTEGER, n_experiments INTEGER NOT NULL, n_measurements INTEGER NOT NULL, updated_at VARCHAR NOT NULL,
  PRIMARY KEY (source_file), CONSTRAINT file_status_known CHECK (status IN ('ok', 'no_text_layer', 'encrypted',
  'corrupt', 'empty', 'not_pdf', 'no_results', 'error')));
CREATE INDEX ix_file_status_sha256 ON file_status (sha256);
CREATE TABLE http_cache (url VARCHAR NOT NULL, status_code INTEGER NOT NULL, body VARCHAR NOT NULL,
  fetched_at VARCHAR NOT NULL, PRIMARY KEY (url));
CREATE TABLE model_aliases (alias_key VARCHAR NOT NULL, alias VARCHAR NOT NULL, model_id INTEGER NOT NULL,
  PRIMARY KEY (alias_key), FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE);
CREATE TABLE dataset_aliases (alias_key VARCHAR NOT NULL, alias VARCHAR NOT NULL, dataset_id INTEGER NOT NULL,
  PRIMARY KEY (alias_key), FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE CASCADE);
CREATE TABLE experiments (id INTEGER NOT NULL, paper_id INTEGER NOT NULL, model_id INTEGER NOT NULL,
  dataset_id INTEGER, model_raw VARCHAR NOT NULL, dataset_raw VARCHAR, setting VARCHAR NOT NULL, notes VARCHAR,
  curation_flags VARCHAR, origin VARCHAR NOT NULL, created_at VARCHAR NOT NULL, PRIMARY KEY (id),
  UNIQUE (paper_id, dataset_id, model_id, setting), FOREIGN KEY(paper_id) REFERENCES papers (id) ON DELETE CASCADE,
  FOREIGN KEY(model_id) REFERENCES models (id), FOREIGN KEY(dataset_id) REFERENCES datasets (id));
CREATE INDEX ix_experiments_dataset_id ON experiments (dataset_id);
CREATE INDEX ix_experiments_model_id ON experiments (model_id);
CREATE INDEX ix_experiments_paper_id ON experiments (paper_id);
CREATE TABLE feature_values (experiment_id INTEGER NOT NULL, feature VARCHAR NOT NULL, value_num FLOAT,
  value_text VARCHAR, status VARCHAR NOT NULL, reason VARCHAR, page INTEGER, snippet VARCHAR, source_url VARCHAR,
  method VARCHAR NOT NULL, confidence FLOAT NOT NULL, PRIMARY KEY (experiment_id, feature),
  CONSTRAINT feature_status_known CHECK (status IN ('reported', 'derived', 'not_reported', 'not_applicable',
  'ambiguous', 'extraction_failed')),
  CONSTRAINT value_iff_status CHECK ((status IN ('reported','derived')) = (value_num IS NOT NULL OR value_text IS NOT NULL)),
  CONSTRAINT feature_method_known CHECK (method IN ('table', 'sentence', 'openalex', 'import', 'validated', 'derived')),
  CONSTRAINT feature_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
  FOREIGN KEY(experiment_id) REFERENCES experiments (id) ON DELETE CASCADE);
CREATE TABLE measurements (id INTEGER NOT NULL, experiment_id INTEGER NOT NULL, metric VARCHAR NOT NULL,
  value FLOAT NOT NULL, split VARCHAR NOT NULL, page INTEGER, snippet VARCHAR, source_url VARCHAR,
  method VARCHAR NOT NULL, confidence FLOAT NOT NULL, PRIMARY KEY (id), UNIQUE (experiment_id, metric, split),
  CONSTRAINT measurement_is_fraction CHECK (value >= 0 AND value <= 1),
  CONSTRAINT measurement_split_known CHECK (split IN ('test', 'val', 'train', 'cv', 'external', 'unspecified')),
  CONSTRAINT measurement_method_known CHECK (method IN ('table', 'sentence', 'openalex', 'import', 'validated', 'derived')),
  FOREIGN KEY(experiment_id) REFERENCES experiments (id) ON DELETE CASCADE);
CREATE INDEX ix_measurements_experiment_id ON measurements (experiment_id);
CREATE INDEX ix_measurements_metric ON measurements (metric);
CREATE TABLE validation_runs (id INTEGER NOT NULL, experiment_id INTEGER NOT NULL, seed INTEGER NOT NULL,
  epochs INTEGER NOT NULL, device VARCHAR NOT NULL, seconds FLOAT NOT NULL, gpu_hours FLOAT NOT NULL,
  size INTEGER NOT NULL, created_at VARCHAR NOT NULL, PRIMARY KEY (id),
  FOREIGN KEY(experiment_id) REFERENCES experiments (id) ON DELETE CASCADE);
CREATE INDEX ix_validation_runs_experiment_id ON validation_runs (experiment_id);
CREATE VIEW experiment_wide AS SELECT e.id AS experiment_id, p.ref_id, e.setting,
  (SELECT value FROM measurements ms WHERE ms.experiment_id = e.id AND ms.metric = 'accuracy' ORDER BY CASE ms.split
   WHEN 'test' THEN 0 WHEN 'external' THEN 1 WHEN 'cv' THEN 2 ELSE 3 END LIMIT 1) AS accuracy,
  (SELECT value FROM measurements ms WHERE ms.experiment_id = e.id AND ms.metric = 'auc' ORDER BY CASE ms.split
   WHEN 'test' THEN 0 WHEN 'external' THEN 1 WHEN 'cv' THEN 2 ELSE 3 END LIMIT 1) AS auc
FROM experiments e JOIN papers p ON p.id = e.paper_id;
INSERT INTO schema_migrations VALUES (1, 'initial schema: papers, models, datasets, experiments, feature_values,
  measurements', '2025-01-01T00:00:00+00:00');
INSERT INTO papers (id, ref_id, title, origin, created_at) VALUES (1, 'OLD1', 'An old paper', 'import', '2025');
INSERT INTO models VALUES (1, 'MyNet', 'CNN', NULL, 0);
INSERT INTO datasets VALUES (1, 'My cohort', NULL, NULL, 0);
INSERT INTO experiments VALUES (1, 1, 1, 1, 'MyNet', 'My cohort', '', NULL, NULL, 'import', '2025'),
  (2, 1, 1, 1, 'MyNet', 'My cohort', 'n_classes=3', NULL, NULL, 'import', '2025');
INSERT INTO feature_values (experiment_id, feature, status, method, confidence)
  VALUES (1, 'width', 'not_reported', 'import', 1.0), (2, 'width', 'not_reported', 'import', 1.0);
INSERT INTO measurements VALUES (3, 1, 'accuracy', 0.9, 'test', 2, 'acc 90%', NULL, 'table', 0.8),
  (5, 1, 'accuracy', 0.85, 'val', NULL, NULL, NULL, 'import', 1.0), (8, 2, 'auc', 0.7, 'unspecified', NULL, NULL,
  'https://example.org/old', 'import', 1.0);
INSERT INTO validation_runs VALUES (1, 1, 0, 3, 'cpu', 1.5, 0.0, 28, '2025');
"""
V1_MEASUREMENTS = "SELECT id, experiment_id, metric, value, split, page, snippet, source_url, method, confidence" \
                  " FROM measurements ORDER BY id"


@pytest.fixture
def v1_kb(tmp_path):
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
    conn.close()
    return path


def test_migration_2_brings_a_version_1_kb_up_keeping_every_measurement(v1_kb):
    with sqlite3.connect(v1_kb) as conn:
        before = conn.execute(V1_MEASUREMENTS).fetchall()
    conn.close()
    kb = KnowledgeBase.open(v1_kb, write=True)
    assert db.current_version(kb.engine) == schema.SCHEMA_VERSION
    after = [tuple(None if pd.isna(v) else v for v in row) for row in kb.frame(V1_MEASUREMENTS).itertuples(index=False)]
    assert after == [tuple(row) for row in before]  # ids, values and provenance kept
    extra = kb.frame("SELECT DISTINCT average, review_status, reviewed_by FROM measurements")
    assert extra.iloc[0].tolist()[:2] == ["", "accepted"] and len(extra) == 1 and extra.reviewed_by.isna().all()
    assert kb.counts()["validation_runs"] == 1 and kb.counts()["experiments"] == 2
    indexes = set(kb.frame("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'measurements'").name)
    assert {"ix_measurements_experiment_id", "ix_measurements_metric", "ix_measurements_review_status"} <= indexes
    with kb.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert "measurements_new" not in {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    wide = kb.frame("SELECT experiment_id, accuracy, auc, mcc FROM experiment_wide ORDER BY experiment_id")
    assert wide.accuracy.tolist()[0] == 0.9 and wide.auc.tolist()[1] == 0.7  # the new view, new metrics included
    # The new uniqueness: a macro and a weighted F1 of one experiment and split now coexist.
    kb.save_paper(PaperRecord(ref_id="OLD1"), [ExperimentRecord("MyNet", "My cohort", setting="avg", measurements=[
        MeasurementRecord("f1", 0.8, TABLE, average="macro"), MeasurementRecord("f1", 0.7, TABLE, average="weighted")])])
    assert kb.frame("SELECT COUNT(*) AS n FROM measurements WHERE metric = 'f1'").n[0] == 2
    assert db.migrate(kb.engine) == []  # applied once


def test_reading_a_version_1_kb_asks_for_the_migration(cli, v1_kb):
    message = (f"{v1_kb} is a version-1 KB and this medicalrec reads version {schema.SCHEMA_VERSION}: migrate it with "
               f"`medicalrec kb init --kb {v1_kb}` (or pass another --kb)")
    with pytest.raises(KBError) as error:
        KnowledgeBase.open(v1_kb)
    assert str(error.value) == message
    result = cli("kb", "stats", "--kb", v1_kb)
    assert result.exit_code == 2 and last_line(result.stderr) == f"Error: {message}"
    assert cli("kb", "init", "--kb", v1_kb).exit_code == 0
    assert json.loads(cli("kb", "stats", "--kb", v1_kb, "--json").stdout)["counts"]["measurements"] == 3


def test_a_failing_migration_leaves_the_version_1_kb_as_it_was(v1_kb):
    # Version 1 had no CHECK on a measurement's confidence; the rebuilt table has one.
    with sqlite3.connect(v1_kb) as conn:
        conn.execute("UPDATE measurements SET confidence = 1.5 WHERE id = 8")
        before = conn.execute(V1_MEASUREMENTS).fetchall()
        schema_before = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    with pytest.raises(KBError) as error:
        KnowledgeBase.open(v1_kb, write=True)
    assert str(error.value) == (
        "cannot migrate the KB to schema version 2 (CHECK constraint failed: measurement_confidence_range); it was"
        " left unchanged: repair that row with sqlite3 or pass another --kb")
    with sqlite3.connect(v1_kb) as conn:
        assert conn.execute(V1_MEASUREMENTS).fetchall() == before
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (1,)
        assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema_before
    conn.close()


def test_a_migration_refuses_to_keep_dangling_references(v1_kb):
    with sqlite3.connect(v1_kb) as conn:  # sqlite3 leaves foreign keys off unless asked
        conn.execute("INSERT INTO measurements VALUES (9, 99, 'auc', 0.5, 'test', NULL, NULL, NULL, 'import', 1.0)")
    conn.close()
    with pytest.raises(KBError) as error:
        KnowledgeBase.open(v1_kb, write=True)
    assert str(error.value) == ("cannot migrate the KB to schema version 2 (1 row(s) of measurements point at missing"
                                " experiments rows); it was left unchanged: repair those rows with sqlite3 or pass"
                                " another --kb")
    with sqlite3.connect(v1_kb) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone() == (4,)
    conn.close()
