"""`kb stats`: counts and per-feature status shares, checked against the files they come from."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import shared_path
from kb_rows import CURATED_ROWS, curated_csv

from medicalrec.kb import FEATURES, STATUSES, ExperimentRecord, FeatureField, PaperRecord, Provenance
from medicalrec.kb.importers import import_file
from medicalrec.kb.stats import collect_stats


def test_counts_and_shares_of_a_small_import(kb, tmp_path):
    import_file(kb, curated_csv(tmp_path / "small.csv"))
    stats = collect_stats(kb)
    counts = stats["counts"]
    rows = pd.DataFrame(CURATED_ROWS)
    assert counts["papers"] == rows.ref_id.nunique()
    assert counts["experiments"] == len(rows)
    assert counts["measurements"] == sum((rows[m] != "").sum() for m in ("accuracy", "precision", "recall", "f1", "auc"))
    assert counts["models_unmatched"] == 1 and counts["experiments_without_dataset"] == 0
    assert stats["experiments_by_origin"] == {"import": len(rows)}
    for feature, shares in stats["feature_status_shares"].items():
        assert set(shares) == set(STATUSES)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares["reported"] == pytest.approx((rows[feature] != "").mean())


def test_shares_count_every_status(kb):
    source = Provenance("table", page=3)
    features = {
        "width": FeatureField.derived(224, source, "resized"),
        "k_fold": FeatureField.missing("not_applicable", source, "fixed split"),
        "n_classes": FeatureField.missing("ambiguous", source, "2 or 3"),
        "n_train": FeatureField.missing("extraction_failed", source, "table unreadable"),
    }
    kb.save_paper(PaperRecord(ref_id="X"), [ExperimentRecord("VGG16", "APTOS", features=features),
                                            ExperimentRecord("VGG19", "APTOS")])
    shares = collect_stats(kb)["feature_status_shares"]
    assert shares["width"]["derived"] == 0.5 and shares["width"]["not_reported"] == 0.5
    assert shares["k_fold"]["not_applicable"] == 0.5
    assert shares["n_classes"]["ambiguous"] == 0.5
    assert shares["n_train"]["extraction_failed"] == 0.5
    assert shares["height"]["not_reported"] == 1.0


def test_stats_of_an_empty_kb_are_zeros(kb):
    stats = collect_stats(kb)
    assert stats["counts"]["experiments"] == 0
    assert all(share == 0 for shares in stats["feature_status_shares"].values() for share in shares.values())


def test_not_reported_shares_equal_the_literature_csvs_empty_cell_shares(cli, tmp_path):
    source = shared_path("data", "literature", "medrec_literature.csv")
    kb_path = tmp_path / "literature.db"
    imported = cli("kb", "import", source, "--kb", kb_path, "--json")
    assert imported.exit_code == 0, imported.stderr
    table = pd.read_csv(source, dtype=str, keep_default_na=False)
    report = json.loads(imported.stdout)
    assert report["experiments_added"] == len(table) and report["papers_added"] == table.ref_id.nunique()

    stats = json.loads(cli("kb", "stats", "--kb", kb_path, "--json").stdout)
    assert stats["counts"]["experiments"] == len(table)
    for feature in FEATURES:
        empty_share = (table[feature].str.strip() == "").mean()
        assert stats["feature_status_shares"][feature]["not_reported"] == pytest.approx(empty_share, abs=1e-12), feature
        assert stats["feature_status_shares"][feature]["reported"] == pytest.approx(1 - empty_share, abs=1e-12)
