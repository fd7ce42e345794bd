"""`kb import` / `kb export`: layouts, validation with line numbers, idempotence, round trips."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from conftest import shared_path
from kb_rows import BENCH_ROWS, CURATED_ROWS, bench_csv, curated_csv, write_csv

from medicalrec.errors import UserError
from medicalrec.kb import KnowledgeBase
from medicalrec.kb.exporters import TUPLE_KEYS, export_text
from medicalrec.kb.importers import (
    FLAGGED_CONFIDENCE,
    import_file,
    parse_metric,
    read_table,
)
from medicalrec.kb.layouts import CURATED


def feature(kb, ref_id, model_raw, name, setting=""):
    frame = kb.frame(
        "SELECT f.* FROM feature_values f JOIN experiments e ON e.id = f.experiment_id JOIN papers p"
        " ON p.id = e.paper_id WHERE p.ref_id = :r AND e.model_raw = :m AND e.setting = :s AND f.feature = :f",
        {"r": ref_id, "m": model_raw, "s": setting, "f": name})
    assert len(frame) == 1
    return frame.iloc[0]


def snapshot(kb) -> list[tuple]:
    """Everything an import stores about experiments, keyed without database ids."""
    key = ("SELECT e.id, COALESCE(p.ref_id, p.doi) AS paper, m.name AS model, d.name AS dataset, e.setting"
           " FROM experiments e JOIN papers p ON p.id = e.paper_id JOIN models m ON m.id = e.model_id"
           " LEFT JOIN datasets d ON d.id = e.dataset_id")
    keys = {row.id: (row.paper, row.model, row.dataset, row.setting) for row in kb.frame(key).itertuples()}
    features = kb.frame("SELECT experiment_id, feature, status, value_num, value_text, source_url, confidence"
                        " FROM feature_values")
    measurements = kb.frame("SELECT experiment_id, metric, split, value, source_url FROM measurements")
    rows = [(keys[r.experiment_id], r.feature, r.status, None if pd.isna(r.value_num) else r.value_num,
             r.value_text, r.source_url, r.confidence) for r in features.itertuples()]
    rows += [(keys[r.experiment_id], r.metric, r.split, r.value, r.source_url) for r in measurements.itertuples()]
    return sorted(rows, key=repr)


# ---------------------------------------------------------------- what lands

def test_curated_import_stores_values_statuses_and_provenance(kb, tmp_path):
    path = curated_csv(tmp_path / "small.csv")
    report = import_file(kb, path)
    assert report.ok and report.layout == "curated"
    assert report.papers_added == len({r["ref_id"] for r in CURATED_ROWS})
    assert report.experiments_added == len(CURATED_ROWS)
    metrics = [c for c in CURATED.metrics]
    assert report.measurements_added == sum(bool(r[m]) for r in CURATED_ROWS for m in metrics)

    n_samples = feature(kb, "P1", "VGG16", "n_samples")
    assert (n_samples.status, n_samples.value_num, n_samples.method) == ("reported", 10015, "import")
    assert n_samples.source_url == "https://example.org/p1"
    width = feature(kb, "P1", "VGG16", "width")
    assert width.status == "not_reported" and width.reason == "empty cell in small.csv"
    assert width.method == "import" and width.source_url == "https://example.org/p1"
    assert feature(kb, "P1", "Our LesionNet", "n_classes").confidence == FLAGGED_CONFIDENCE

    models = dict(kb.query("SELECT model_raw, m.name FROM experiments e JOIN models m ON m.id = e.model_id")[1])
    assert models["VGG16"] == "VGG-16"
    assert report.unmatched_models == {"Our LesionNet": 1}
    datasets = set(kb.experiments_frame().dataset.dropna())
    assert {"HAM10000", "APTOS 2019", "SARS-CoV-2 CT-scan dataset"} == datasets
    paper = kb.frame("SELECT * FROM papers WHERE ref_id = 'P1'").iloc[0]
    assert (paper.doi, paper.year, paper.source_file) == ("10.1000/p1", 2021, "small.csv")


def test_rows_of_one_paper_model_and_dataset_get_distinct_settings(kb, tmp_path):
    import_file(kb, curated_csv(tmp_path / "small.csv"))
    settings = kb.frame("SELECT e.setting, e.model_raw FROM experiments e JOIN papers p ON p.id = e.paper_id"
                        " WHERE p.ref_id = 'P2' ORDER BY e.setting")
    expected = sorted(f"n_classes={r['n_classes']}" for r in CURATED_ROWS if r["ref_id"] == "P2")
    assert list(settings.setting) == expected
    others = kb.frame("SELECT e.setting FROM experiments e JOIN papers p ON p.id = e.paper_id WHERE p.ref_id != 'P2'")
    assert set(others.setting) == {""}


def test_identical_rows_are_both_kept_in_file_order(kb, tmp_path):
    twin = dict(CURATED_ROWS[4])
    path = write_csv(tmp_path / "twins.csv", [CURATED_ROWS[4], twin, {**twin, "accuracy": "0.5"}], CURATED.columns)
    report = import_file(kb, path)
    assert report.experiments_added == 3
    settings = kb.frame("SELECT setting, (SELECT value FROM measurements m WHERE m.experiment_id = e.id"
                        " AND metric = 'accuracy') AS acc FROM experiments e ORDER BY id")
    assert list(settings.setting) == ["#1", "#2", "#3"]
    assert list(settings.acc) == [0.83, 0.83, 0.5]


def test_bench_layout_reads_percentages_and_fractions(kb, tmp_path):
    report = import_file(kb, bench_csv(tmp_path / "bench.csv"))
    assert report.ok and report.layout == "bench" and report.experiments_added == len(BENCH_ROWS)
    frame = kb.experiments_frame().set_index("setting")
    binary, multi = frame.loc["n_classes=2"], frame.loc["n_classes=5"]
    assert multi.accuracy == pytest.approx(float(BENCH_ROWS[0]["Accu"]) / 100)
    assert multi.auc == pytest.approx(float(BENCH_ROWS[0]["AUC"]) / 100)
    assert multi.precision == pytest.approx(float(BENCH_ROWS[0]["Pre"]))
    assert binary.accuracy == pytest.approx(float(BENCH_ROWS[1]["Accu"]) / 100)
    modality = feature(kb, "12", "ResNet-50", "modality", "n_classes=2")
    assert modality.status == "not_reported" and modality.reason == "no modality column in bench.csv"
    assert feature(kb, "40", "Custom CNN", "k_fold").value_num == 10


@pytest.mark.parametrize("cell, expected", [("0.5", 0.5), ("1", 1.0), ("95", 0.95), ("95.5%", 0.955), ("0", 0.0),
                                            ("100", 1.0)])
def test_metric_cells_become_fractions(cell, expected):
    assert parse_metric(cell) == pytest.approx(expected)


@pytest.mark.parametrize("cell", ["130", "-0.1", "nan", "inf", "abc", "101%"])
def test_metric_cells_outside_both_scales_are_refused(cell):
    with pytest.raises(ValueError):
        parse_metric(cell)


# ---------------------------------------------------------------- idempotence and dry runs

def test_reimporting_a_file_adds_nothing(kb, tmp_path):
    path = curated_csv(tmp_path / "small.csv")
    import_file(kb, path)
    before, fingerprint = kb.counts(), kb.fingerprint()
    again = import_file(kb, path)
    assert (again.papers_added, again.experiments_added, again.measurements_added) == (0, 0, 0)
    assert again.experiments_skipped == len(CURATED_ROWS)
    assert kb.counts() == before and kb.fingerprint() == fingerprint


def test_dry_run_reports_what_an_import_adds_and_writes_nothing(cli, tmp_path):
    path = curated_csv(tmp_path / "small.csv")
    kb_path = tmp_path / "kb.db"
    dry = cli("kb", "import", path, "--kb", kb_path, "--dry-run", "--json")
    assert dry.exit_code == 0 and not kb_path.exists()
    cli("kb", "init", "--kb", kb_path)
    dry = json.loads(cli("kb", "import", path, "--kb", kb_path, "--dry-run", "--json").stdout)
    assert KnowledgeBase.open(kb_path).counts()["experiments"] == 0
    real = json.loads(cli("kb", "import", path, "--kb", kb_path, "--json").stdout)
    assert dry["dry_run"] and not real["dry_run"]
    for key in ("papers_added", "experiments_added", "measurements_added", "unmatched_models"):
        assert dry[key] == real[key]
    assert KnowledgeBase.open(kb_path).counts()["experiments"] == real["experiments_added"] == len(CURATED_ROWS)


# ---------------------------------------------------------------- damaged and unusable files

def test_damaged_file_imports_its_good_rows_and_names_each_bad_line(cli, tmp_path):
    from kb_rows import csv_text

    good = csv_text(CURATED_ROWS[:1], CURATED.columns)  # header + line 2
    body = csv_text([
        {**CURATED_ROWS[2], "n_train": "12x"},  # line 3
        {**CURATED_ROWS[3], "accuracy": "130"},  # line 4
        {**CURATED_ROWS[4], "notes": "spans\ntwo lines"},  # lines 5-6, good
        {**CURATED_ROWS[1], "augmentation": "maybe", "model": ""},  # line 7
    ], CURATED.columns).split("\n", 1)[1]
    ragged = "P9,Short row,2020\n"  # line 8
    truncated = ",".join(list(CURATED_ROWS[0].values())[:12])  # line 9, cut off without a line break
    path = tmp_path / "damaged.csv"
    path.write_text(good + body + ragged + truncated, encoding="utf-8")

    result = cli("kb", "import", path, "--kb", tmp_path / "kb.db")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors == [
        "line 3: n_train '12x' is not a whole number",
        "line 4: accuracy '130' is outside [0, 1] and [0, 100]",
        "line 7: model is empty; augmentation 'maybe' is not yes or no",
        "line 8: expected 29 fields, found 3 (ragged row)",
        "line 9: expected 29 fields, found 12 (the file looks truncated)",
    ]
    kb = KnowledgeBase.open(tmp_path / "kb.db")
    assert sorted(kb.experiments_frame().model_raw) == sorted([CURATED_ROWS[0]["model"], CURATED_ROWS[4]["model"]])


def test_unterminated_quote_is_reported_at_its_line(tmp_path):
    path = tmp_path / "cut.csv"
    lines = curated_csv(tmp_path / "ok.csv").read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3]) + '\nP7,"Cut off title', encoding="utf-8")
    table = read_table(path)
    assert len(table.records) == 2
    assert [p.line for p in table.problems] == [4] and "truncated" in table.problems[0].message


def test_unusable_files_are_one_line_errors_with_exit_code_2(cli, tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(curated_csv(tmp_path / "ok.csv").read_text().replace("Fundus", "Fündus").encode("latin-1"))
    offset = latin.read_bytes().index(b"\xfc")
    extra = write_csv(tmp_path / "extra.csv", [{**CURATED_ROWS[0], "colour": "red"}])
    stranger = write_csv(tmp_path / "stranger.csv", [{"a": "1", "b": "2"}])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases = {
        latin: f"Error: {latin} is not UTF-8 (byte 0xfc at offset {offset}): re-save it as UTF-8",
        extra: f"Error: unknown column 'colour' in {extra} (line 1, field 30): rename or remove it; "
               "the curated layout's columns are listed by `medicalrec kb import --help`",
        stranger: f"Error: {stranger}: cannot tell the layout from its header: expected the curated columns "
                  "(ref_id, model, ...) or the MedicalRec-Bench columns (Ref, Model, ...); "
                  "see `medicalrec kb import --help`",
        empty: f"Error: {empty} is empty: expected a header line and one row per result",
        tmp_path / "absent.csv": f"Error: no such file: {tmp_path / 'absent.csv'}: check the FILE argument",
    }
    for path, message in cases.items():
        result = cli("kb", "import", path, "--kb", tmp_path / "kb.db")
        assert result.exit_code == 2, path
        assert result.stderr.strip().splitlines()[-1] == message


def test_header_without_a_required_column_is_refused(tmp_path):
    columns = [c for c in CURATED.columns if c != "model"]
    path = write_csv(tmp_path / "nomodel.csv", [{c: CURATED_ROWS[0][c] for c in columns}], columns)
    with pytest.raises(UserError, match="has no 'model' column"):
        read_table(path)


# ---------------------------------------------------------------- export and round trips

@pytest.mark.parametrize("layout, writer", [("curated", curated_csv), ("bench", bench_csv)])
def test_import_export_import_round_trips(kb, tmp_path, layout, writer):
    import_file(kb, writer(tmp_path / f"{layout}.csv"))
    exported = tmp_path / f"exported_{layout}.csv"
    exported.write_text(export_text(kb, layout=layout), encoding="utf-8")
    again = KnowledgeBase.in_memory()
    report = import_file(again, exported)
    assert report.ok and report.layout == layout
    assert again.counts() == kb.counts()
    assert snapshot(again) == snapshot(kb)


def test_shared_literature_round_trips_through_the_curated_layout(tmp_path):
    source = shared_path("data", "literature", "medrec_literature.csv")
    first = KnowledgeBase.in_memory()
    import_file(first, source)
    exported = tmp_path / "literature_export.csv"
    exported.write_text(export_text(first, layout="curated"), encoding="utf-8")
    second = KnowledgeBase.in_memory()
    assert import_file(second, exported).ok
    assert second.counts() == first.counts()
    assert snapshot(second) == snapshot(first)


def test_export_cli_writes_json_tuples_with_the_agreed_keys(cli, tmp_path):
    kb_path = tmp_path / "kb.db"
    cli("kb", "import", curated_csv(tmp_path / "small.csv"), "--kb", kb_path)
    out = tmp_path / "tuples.json"
    result = cli("kb", "export", "--layout", "tuples", "--format", "json", "--kb", kb_path, "--output", out)
    assert result.exit_code == 0 and f"to {out}" in " ".join(result.stderr.split())  # notes wrap
    tuples = json.loads(out.read_text(encoding="utf-8"))
    assert len(tuples) == KnowledgeBase.open(kb_path).counts()["measurements"]
    assert all(set(TUPLE_KEYS) <= set(t) for t in tuples)
    vgg = [t for t in tuples if t["model"] == "VGG-16" and t["metric"] == "accuracy"]
    assert [(t["dataset"], t["value"], t["split"], t["paper_doi"], t["source_file"]) for t in vgg] == [
        ("HAM10000", float(CURATED_ROWS[0]["accuracy"]), "unspecified", "10.1000/p1", "small.csv")]


def test_export_leaves_missing_statuses_empty(kb, tmp_path):
    import_file(kb, curated_csv(tmp_path / "small.csv"))
    exported = pd.read_csv(io.StringIO(export_text(kb, layout="curated")), dtype=str, keep_default_na=False)
    assert list(exported.columns) == list(CURATED.columns)
    original = pd.DataFrame(CURATED_ROWS)
    for column in ("width", "n_classes", "pretrained", "accuracy", "auc"):
        assert list(exported[column] == "") == list(original[column] == "")
