"""The KB's foundation: schema guarantees, migrations, transactions, name normalisation."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError

from medicalrec.kb import (
    FEATURES,
    ExperimentRecord,
    FeatureField,
    KBError,
    KnowledgeBase,
    MeasurementRecord,
    PaperRecord,
    Provenance,
)
from medicalrec.kb import db, normalize

SRC = Provenance("import", source_url="https://example.org/paper")


def _experiment(model="VGG16", dataset="APTOS", accuracy=0.9, **features):
    fields = {name: FeatureField.reported(value, SRC) for name, value in features.items()}
    return ExperimentRecord(model=model, dataset=dataset, features=fields,
                            measurements=[MeasurementRecord("accuracy", accuracy, SRC)])


def test_file_kb_records_migrations_and_uses_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "kb.db"
    store = KnowledgeBase.open(path, write=True)
    assert db.current_version(store.engine) == db.MIGRATIONS[-1][0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations")]
    assert names and names[0].startswith("initial schema")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # Re-opening applies nothing twice.
    assert db.migrate(store.engine) == []


def test_every_feature_gets_a_value_or_a_status(kb):
    kb.save_paper(PaperRecord(ref_id="P1"), [_experiment(n_classes=5)])
    rows = kb.frame("SELECT feature, status, value_num, value_text, method FROM feature_values")
    assert sorted(rows.feature) == sorted(FEATURES)
    reported = rows[rows.feature == "n_classes"].iloc[0]
    assert reported.status == "reported" and reported.value_num == 5
    missing = rows[rows.feature != "n_classes"]
    assert set(missing.status) == {"not_reported"}
    assert missing.value_num.isna().all() and missing.value_text.isna().all()


def test_schema_refuses_a_bare_null_and_a_value_with_a_missing_status(kb):
    kb.save_paper(PaperRecord(ref_id="P1"), [_experiment()])
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE feature_values SET status = 'reported' WHERE feature = 'width'")
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE feature_values SET value_num = 3 WHERE feature = 'channels'")
    with kb.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE measurements SET value = 96.5")


def test_record_validation_rejects_inconsistent_fields():
    with pytest.raises(ValueError, match="does not match"):
        FeatureField("not_reported", SRC, value=3)
    with pytest.raises(ValueError, match="not a fraction"):
        MeasurementRecord("accuracy", 96.5, SRC)
    with pytest.raises(ValueError, match="unknown feature"):
        ExperimentRecord(model="x", dataset=None, features={"colour": FeatureField.reported(1, SRC)})
    assert len(Provenance("table", snippet="word " * 100).snippet) <= 200


def test_a_failing_write_leaves_the_kb_as_it_was(kb, monkeypatch):
    kb.save_paper(PaperRecord(ref_id="P1"), [_experiment()])
    before = kb.counts()
    bad = _experiment(model="ResNet-50")
    bad.measurements.append(MeasurementRecord("auc", 0.8, SRC))
    bad.measurements[-1].value = 7.0  # corrupted after validation: the CHECK constraint must stop it
    with pytest.raises(IntegrityError):
        kb.save_paper(PaperRecord(ref_id="P2"), [_experiment(model="DenseNet121"), bad])
    assert kb.counts() == before


def test_reimport_is_idempotent_and_replace_swaps_a_papers_experiments(kb):
    paper = PaperRecord(ref_id="P1", title="A study")
    first = kb.save_paper(paper, [_experiment(), _experiment(model="ResNet50")])
    again = kb.save_paper(paper, [_experiment(model="VGG-16"), _experiment(model="resnet 50")])
    assert (first.experiments_added, again.experiments_added, again.experiments_skipped) == (2, 0, 2)
    replaced = kb.save_paper(paper, [_experiment(model="Xception")], replace=True)
    assert replaced.experiments_added == 1
    assert kb.counts()["experiments"] == 1
    assert kb.frame("SELECT COUNT(*) AS n FROM feature_values").n[0] == len(FEATURES)


@pytest.mark.parametrize("raw, canonical", [
    ("VGG16", "VGG-16"), ("VGG-16", "VGG-16"), ("vgg 16", "VGG-16"), ("VGG16 (fine-tuned)", "VGG-16"),
    ("ResNet50", "ResNet-50"), ("Inception-V3", "Inception-V3"), ("ViT", "Vision Transformer"),
])
def test_model_names_normalise_to_the_catalogue(kb, raw, canonical):
    assert normalize.lookup(raw, kb.model_alias_index()) == canonical


def test_dataset_aliases_merge_only_where_curated(kb):
    index = kb.dataset_alias_index()
    assert normalize.lookup("APTOS", index) == normalize.lookup("APTOS 2019", index) == "APTOS 2019"
    assert normalize.lookup("ISIC 2019", index) != normalize.lookup("ISIC 2018", index)
    assert normalize.lookup("My private hospital set", index) is None


def test_unknown_names_are_reported_not_guessed(kb):
    result = kb.save_paper(PaperRecord(ref_id="P1"), [_experiment(model="HQCNN (5-layer CNN + qubits)", dataset="Local cohort")])
    assert result.unmatched_models == ["HQCNN (5-layer CNN + qubits)"]
    assert result.unmatched_datasets == ["Local cohort"]
    row = kb.frame("SELECT m.name, m.family, m.curated FROM models m WHERE m.name LIKE 'HQCNN%'").iloc[0]
    assert row["curated"] == 0 and row["family"] == "CNN"


def test_curator_alias_extends_the_table(kb):
    kb.add_alias("dataset", "Kaggle DR 2015", "EyePACS")
    assert normalize.lookup("kaggle-dr-2015", kb.dataset_alias_index()) == "EyePACS"
    with pytest.raises(KBError, match="unknown model"):
        kb.add_alias("model", "X", "No Such Net")


def test_query_is_read_only(kb):
    with pytest.raises(KBError, match="read-only"):
        kb.query("DROP TABLE papers")
    with pytest.raises(KBError, match="read-only"):
        kb.query("  -- sneaky\n UPDATE papers SET title = 'x'")
    columns, rows = kb.query("SELECT COUNT(*) AS n FROM models")
    assert columns == ["n"] and rows[0][0] > 20


def test_reading_a_missing_kb_names_the_fix(tmp_path):
    with pytest.raises(KBError, match="kb init --kb"):
        KnowledgeBase.open(tmp_path / "absent.db")


def test_fingerprint_changes_with_content(kb):
    empty = kb.fingerprint()
    kb.save_paper(PaperRecord(ref_id="P1"), [_experiment()])
    assert kb.fingerprint() != empty


def test_replace_drops_only_the_same_origins_experiments(kb):
    kb.save_paper(PaperRecord(doi="10.1/x", ref_id="R1", origin="import"), [_experiment(model="VGG16")])
    extracted = PaperRecord(doi="10.1/x", sha256="abc", origin="extract")
    kb.save_paper(extracted, [_experiment(model="ResNet50")], replace=True)
    kb.save_paper(extracted, [_experiment(model="Xception")], replace=True)
    rows = kb.frame("SELECT m.name, e.origin FROM experiments e JOIN models m ON m.id = e.model_id ORDER BY m.name")
    assert list(zip(rows.name, rows.origin)) == [("VGG-16", "import"), ("Xception", "extract")]


def test_replace_existing_swaps_one_experiment_in_place(kb):
    paper = PaperRecord(ref_id="RUNS", origin="validated")
    kb.save_paper(paper, [_experiment(model="ResNet-18", accuracy=0.80), _experiment(model="VGG16", accuracy=0.70)])
    again = kb.save_paper(paper, [_experiment(model="ResNet-18", accuracy=0.85)], replace_existing=True)
    assert (again.experiments_added, again.experiments_skipped) == (1, 0)
    rows = kb.frame("SELECT model, accuracy FROM experiment_wide ORDER BY model")
    assert list(zip(rows.model, rows.accuracy)) == [("ResNet-18", 0.85), ("VGG-16", 0.70)]
