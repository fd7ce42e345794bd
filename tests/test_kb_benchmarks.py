"""Benchmark result tables into the KB (kb/benchmarks.py): layouts recognised by header, README
quirks, broken rows and unknown columns named, provenance, sweeps, duplicate facts, source kinds."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from medicalrec.kb import KnowledgeBase, db
from medicalrec.kb.benchmarks import import_benchmarks, import_file, is_benchmark_file
from medicalrec.kb.records import ExperimentRecord, MeasurementRecord, PaperRecord, Provenance
from medicalrec.kb.stats import collect_stats

from conftest import REPO, shared_path

FIXTURES = REPO / "fixtures" / "benchmarks"


def _rows(kb: KnowledgeBase, sql: str, **params) -> list[tuple]:
    with kb.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


@pytest.fixture
def imported(kb):
    return kb, import_benchmarks(kb, FIXTURES)


def _file(report, name: str):
    return next(f for f in report.files if f.file == name)


def test_folder_names_every_skipped_file_and_why(imported):
    _, report = imported
    skipped = {f.file: f.skipped for f in report.files if f.skipped}
    assert skipped == {
        "README.md": "documentation, not a results table",
        "SOURCES.md": "documentation, not a results table",
        "notes.txt": "not a .csv or .md file",
        "other_results.csv": "header (ref, score) matches no benchmark layout in kb/benchmark_sources.py",
    }
    layouts = {f.file: f.layout for f in report.files if f.layout}
    assert layouts["pathbench/data/benchmarking_small.csv"] == "pathbench"
    assert layouts["medmnist-transferability/finetuned_AUCs/fined_breast_small.csv"] == "medmnist_runs"
    assert layouts["medmnist-transferability/results/AUCs_model_small.csv"] == "medmnist_aggregate"
    assert layouts["slampai-lspt/results/finetuning_results_covidx_cxr2_test_acc.csv"] == "slampai"
    assert layouts["eva/pathology.csv"] == "eva"
    assert layouts["torchxrayvision/BENCHMARKS.md"] == "torchxrayvision"


def test_broken_row_is_named_and_its_neighbours_land(imported):
    kb, report = imported
    pathbench = _file(report, "pathbench/data/benchmarking_small.csv")
    assert [str(p) for p in pathbench.problems] == ["line 4: AUROC 'not-a-number' is not a number"]
    assert (pathbench.rows, pathbench.rows_imported, pathbench.rows_failed) == (4, 3, 1)
    runs = _file(report, "medmnist-transferability/finetuned_AUCs/fined_breast_small.csv")
    assert [str(p) for p in runs.problems] == ["line 7: expected 19 fields, found 4 (ragged row)"]
    auc = _file(report, "slampai-lspt/results/finetuning_results_covidx_cxr2_test_mean_auc.csv")
    assert [str(p) for p in auc.problems] == ["line 4: metric_value '1.7' is outside [0, 1]"]
    # The broken MHIST row of UNI is absent; Phikon's MHIST row landed with its four metrics.
    rows = _rows(kb, "SELECT m.name, d.name FROM experiments e JOIN models m ON m.id = e.model_id"
                     " JOIN datasets d ON d.id = e.dataset_id JOIN benchmark_runs b ON b.experiment_id = e.id"
                     " WHERE b.layout = 'pathbench' ORDER BY b.source_row")
    assert rows == [("UNI", "BACH"), ("Phikon", "BACH"), ("Phikon", "MHIST")]
    assert "pathbench/data/benchmarking_small.csv line 4: AUROC 'not-a-number' is not a number" in report.problems


def test_unknown_column_is_named_and_the_rest_imports(imported):
    kb, report = imported
    eva = _file(report, "eva/pathology.csv")
    assert [str(p) for p in eva.problems] == [
        "line 1: unknown column 'new_task' (field 7) is not in the eva layout: its cells are not imported;"
        " add it to kb/benchmark_sources.py"]
    assert eva.note == "columns consep left out: segmentation (Dice), not classification"
    assert eva.rows_failed == 0 and eva.rows_imported == 2
    # Validation and test columns of one task are one experiment with two splits.
    splits = _rows(kb, "SELECT ms.split, ms.value FROM measurements ms JOIN benchmark_runs b"
                       " ON b.experiment_id = ms.experiment_id JOIN models m ON m.id ="
                       " (SELECT model_id FROM experiments WHERE id = ms.experiment_id)"
                       " WHERE b.task = 'eva/patch_camelyon/linear_probe' AND m.name = 'UNI' ORDER BY ms.split")
    assert splits == [("test", 0.94), ("val", 0.93)]


def test_readme_rules_leave_rows_out_with_their_reason(imported):
    _, report = imported
    runs = _file(report, "medmnist-transferability/finetuned_AUCs/fined_breast_small.csv")
    assert dict(runs.rows_skipped) == {"FAILED run (no metrics)": 1,
                                       "exact repeat of an earlier line (same protocol, same result)": 1}
    acc = _file(report, "slampai-lspt/results/finetuning_results_covidx_cxr2_test_acc.csv")
    assert dict(acc.rows_skipped) == {"natural-image control (cifar10), not medical": 1,
                                      "exact repeat of an earlier line (same protocol, same result)": 2}
    recall = _file(report, "slampai-lspt/results/finetuning_results_covidx_cxr2_test_recall_0.csv")
    assert dict(recall.rows_skipped) == {"test/recall_0: class-0 one-vs-rest score, not a macro recall": 1}
    assert recall.experiments_added == 0


def test_sweep_keeps_every_run_and_marks_the_best_on_validation(imported):
    kb, _ = imported
    rows = _rows(kb, "SELECT run_id, pretraining, is_best_on_val, hyperparams, e.setting FROM benchmark_runs b"
                     " JOIN experiments e ON e.id = b.experiment_id WHERE layout = 'medmnist_runs' ORDER BY run_id")
    assert [(r[0], r[1], r[2]) for r in rows] == [("r1", "imagenet", 0), ("r2", "imagenet", 1), ("r3", "radimagenet", 1)]
    assert json.loads(rows[1][3]) == {"batch_size": 32, "epochs": 200, "lr": 0.001, "momentum": 0.9, "wd": 0.0}
    assert rows[1][4] == ("fine_tune@224px, shots=100, pretrain=imagenet, batch_size=32, epochs=200, lr=0.001,"
                          " momentum=0.9, wd=0.0")


def test_provenance_names_file_commit_and_row(imported):
    kb, _ = imported
    (row,) = _rows(kb, "SELECT b.source_file, b.source_commit, b.source_row, ms.snippet, ms.source_url"
                       " FROM benchmark_runs b JOIN measurements ms ON ms.experiment_id = b.experiment_id"
                       " JOIN models m ON m.id = (SELECT model_id FROM experiments WHERE id = b.experiment_id)"
                       " WHERE b.task = 'eva/bach/linear_probe' AND m.name = 'Phikon'")
    assert row == ("eva/pathology.csv", "0" * 39 + "1", 3, "eva/pathology.csv line 3: bach",
                   "https://github.com/kaiko-ai/eva/blob/" + "0" * 39 + "1/tools/data/leaderboards/pathology.csv#L3")
    # A file SOURCES.md does not list still names its file and row, without a commit.
    (other,) = _rows(kb, "SELECT source_commit, source_row FROM benchmark_runs WHERE run_id = 'r2'")
    assert other == (None, 3)


def test_aggregates_link_to_their_run_and_are_counted_once(imported):
    kb, report = imported
    assert (report.fact_links_added, report.aggregates_unmatched) == (4, 3)
    links = _rows(kb, "SELECT f.rule, dup.value, canon.value, cb.run_id FROM fact_links f"
                      " JOIN measurements dup ON dup.id = f.measurement_id JOIN measurements canon ON canon.id = f.same_as_id"
                      " LEFT JOIN benchmark_runs cb ON cb.experiment_id = canon.experiment_id ORDER BY f.measurement_id")
    assert sorted(links, key=lambda r: (r[0], r[3] or "")) == [
        ("aggregate_of_run", 0.88, 0.88, "r2"), ("aggregate_of_run", 0.88, 0.88, "r2"),
        ("aggregate_of_run", 0.81, 0.81, "r3"), ("same_aggregate", 0.975, 0.975, None)]
    stats = collect_stats(kb)["by_source_kind"]
    assert stats["benchmark"]["measurements_duplicate"] == 4
    assert stats["literature"] == {"experiments": 0, "measurements": 0, "measurements_duplicate": 0}


def test_reimport_adds_nothing(imported):
    kb, _ = imported
    before = kb.counts() | {"links": _rows(kb, "SELECT COUNT(*) FROM fact_links")[0][0],
                            "runs": _rows(kb, "SELECT COUNT(*) FROM benchmark_runs")[0][0]}
    again = import_benchmarks(kb, FIXTURES)
    after = kb.counts() | {"links": _rows(kb, "SELECT COUNT(*) FROM fact_links")[0][0],
                           "runs": _rows(kb, "SELECT COUNT(*) FROM benchmark_runs")[0][0]}
    assert after == before
    assert sum(f.experiments_added + f.measurements_added for f in again.files) == 0
    assert again.fact_links_added == 0


def test_features_come_from_the_protocol_and_the_dataset_catalogue(imported):
    kb, _ = imported
    features = dict((f, (v_num, v_text, status)) for f, v_num, v_text, status in _rows(
        kb, "SELECT feature, value_num, value_text, status FROM feature_values WHERE experiment_id ="
            " (SELECT experiment_id FROM benchmark_runs WHERE run_id = 'r2')"))
    assert features["n_classes"] == (2.0, None, "reported")
    assert features["n_train"] == (200.0, None, "derived")  # 100 images per class x 2 classes
    assert features["width"] == (224.0, None, "reported")
    assert features["modality"] == (None, "ultrasound", "derived")
    assert features["pretrained"] == (None, "yes", "reported")
    assert features["is_proposed"][2] == "not_applicable"
    assert features["augmentation"][2] == "not_reported"
    metadata = dict((f, (v, s)) for f, v, s in _rows(
        kb, "SELECT feature, COALESCE(value_text, value_num), status FROM dataset_metadata"
            " WHERE dataset_id = (SELECT id FROM datasets WHERE name = :n)", n="Camelyon16"))
    assert metadata["n_classes"] == (2.0, "reported")
    assert metadata["width"] == (None, "not_applicable")  # whole-slide images
    assert metadata["n_train"] == (None, "not_reported")


def test_source_kind_follows_origin_for_every_writer(kb):
    provenance = Provenance("import")
    for origin, ref in (("import", "lit-1"), ("validated", "ours-1"), ("extract", "pdf-1")):
        kb.save_paper(PaperRecord(ref_id=ref, origin=origin), [ExperimentRecord(
            "ResNet-18", "BreastMNIST", measurements=[MeasurementRecord("auc", 0.9, provenance)])])
    import_file(kb, FIXTURES / "eva" / "pathology.csv")
    kinds = dict(_rows(kb, "SELECT origin, MIN(source_kind) FROM experiments GROUP BY origin"))
    assert kinds == {"import": "literature", "validated": "validated", "extract": "literature",
                     "benchmark": "benchmark"}
    stats = collect_stats(kb)["by_source_kind"]
    assert (stats["literature"]["experiments"], stats["validated"]["experiments"], stats["benchmark"]["experiments"]) \
        == (2, 1, 6)


def test_migration_maps_existing_rows_from_origin(tmp_path, monkeypatch):
    path = tmp_path / "v2.db"
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:2])
    engine = db.make_engine(path)
    db.migrate(engine)
    with engine.begin() as conn:
        # Migration 1 builds tables from today's models; a KB made before migration 3 had no such column.
        conn.exec_driver_sql("ALTER TABLE experiments DROP COLUMN source_kind")
        assert "source_kind" not in [r[1] for r in conn.exec_driver_sql("PRAGMA table_xinfo(experiments)")]
        conn.exec_driver_sql("INSERT INTO papers (id, ref_id, origin, created_at) VALUES (1, 'p', 'seed', 'now')")
        conn.exec_driver_sql("INSERT INTO models (id, name, family, curated) VALUES (1, 'ResNet-18', 'ResNet', 1)")
        for i, origin in enumerate(("seed", "validated", "extract"), start=1):
            conn.exec_driver_sql("INSERT INTO experiments (id, paper_id, model_id, model_raw, setting, origin, created_at)"
                                 f" VALUES ({i}, 1, 1, 'ResNet-18', '{origin}', '{origin}', 'now')")
    engine.dispose()
    monkeypatch.undo()
    kb = KnowledgeBase.open(path, write=True)
    assert _rows(kb, "SELECT origin, source_kind FROM experiments ORDER BY id") == [
        ("seed", "literature"), ("validated", "validated"), ("extract", "literature")]
    assert (3,) in _rows(kb, "SELECT version FROM schema_migrations")


def test_is_benchmark_file_tells_layouts_apart(tmp_path):
    assert is_benchmark_file(FIXTURES)
    assert is_benchmark_file(FIXTURES / "torchxrayvision" / "BENCHMARKS.md")
    assert not is_benchmark_file(FIXTURES / "other_results.csv")
    curated = tmp_path / "lit.csv"
    curated.write_text("ref_id,model,dataset,accuracy\nA,ResNet-18,BUSI,0.9\n", encoding="utf-8")
    assert not is_benchmark_file(curated)


def test_cli_imports_a_folder_and_names_bad_lines(cli, tmp_path, capsys):
    target = tmp_path / "kb.db"
    result = cli("kb", "import", FIXTURES, "--kb", target, "--json")
    assert result.exit_code == 1  # broken rows were reported
    body = json.loads(result.stdout[result.stdout.index("{"):])
    assert body["by_source"]["pathbench"]["rows_failed"] == 1
    assert "pathbench/data/benchmarking_small.csv line 4: AUROC 'not-a-number' is not a number" in result.stderr
    again = cli("kb", "import", FIXTURES, "--kb", target, "--json")
    body = json.loads(again.stdout[again.stdout.index("{"):])
    assert sum(s["experiments_added"] for s in body["by_source"].values()) == 0
    stats = cli("kb", "stats", "--kb", target, "--json")
    assert json.loads(stats.stdout)["by_source_kind"]["benchmark"]["experiments"] == 26


@pytest.mark.shared
def test_real_benchmarks_folder_imports_every_source(tmp_path):
    """Per-source row counts against ../shared/data/benchmarks/SOURCES.md (Totals table)."""
    folder = shared_path("data", "benchmarks")
    kb = KnowledgeBase.open(tmp_path / "bench.db", write=True)
    report = import_benchmarks(kb, folder)
    by_source = report.by_source()
    totals = {}
    for line in (folder / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*([\w-]+)\s*\|\s*(\d+)\s*\|\s*[\d,]+\s*\|\s*([\d,]+)", line)
        if match and match.group(1) in by_source:
            totals[match.group(1)] = (int(match.group(2)), int(match.group(3).replace(",", "")))
    assert set(totals) == {"pathbench", "medmnist-transferability", "slampai-lspt", "eva", "torchxrayvision"}
    for source, (files, rows) in totals.items():
        assert (by_source[source]["files"], by_source[source]["rows"]) == (files, rows), source
        assert by_source[source]["rows_failed"] == 0, source
    assert report.problems == []
    # README §2: the min-val_loss rule reproduces both authors' tables (88 + 168 cells, plus the
    # 11 ResNet-18 cells of AUCs_model) exactly.
    assert (report.fact_links_added, report.aggregates_unmatched) == (88 + 11 + 168, 0)
    assert by_source["pathbench"]["experiments_added"] == 1312
    # slampai: 8,640 distinct runs x metrics; acc and mean_auc of the 3 medical sets kept: 2 x 1,044
    assert by_source["slampai-lspt"]["rows_imported"] == 2 * (420 + 375 + 249)
