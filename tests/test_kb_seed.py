"""The bundled seed KB against its sources: kb/data/medmnist_v2.csv (and shared's
published_results.csv), medmnist.INFO, and the curated literature table."""

from __future__ import annotations

import csv
import sqlite3

import pandas as pd
import pytest
from conftest import shared_path

from medicalrec.kb import db
from medicalrec.kb.seed import (
    MEDMNIST_BENCHMARK,
    MEDMNIST_COLUMNS,
    MEDMNIST_PAPER,
    medmnist_info,
    medmnist_setting,
    open_seed,
    read_medmnist_csv,
)

MEDMNIST_DATASETS = {"BreastMNIST", "PneumoniaMNIST", "PathMNIST", "ChestMNIST", "DermaMNIST", "OCTMNIST",
                     "RetinaMNIST", "BloodMNIST", "TissueMNIST", "OrganAMNIST", "OrganCMNIST", "OrganSMNIST"}
MEDMNIST_MODELS = {("ResNet-18", "size=28"), ("ResNet-18", "size=224"), ("ResNet-50", "size=28"),
                   ("ResNet-50", "size=224"), ("auto-sklearn", ""), ("AutoKeras", ""), ("Google AutoML Vision", "")}


@pytest.fixture(scope="module")
def seed():
    return open_seed()


@pytest.fixture(scope="module")
def medmnist(seed):
    frame = seed.experiments_frame()
    return frame[frame.ref_id == MEDMNIST_PAPER["ref_id"]].set_index(["dataset", "model", "setting"])


def test_the_seed_is_one_read_only_file(seed):
    assert seed.readonly and seed.location.is_seed
    with sqlite3.connect(f"file:{db.seed_path()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.current_version(seed.engine) == db.MIGRATIONS[-1][0]


def test_medmnist_paper_follows_the_contract(seed):
    paper = seed.frame("SELECT * FROM papers WHERE ref_id = :r", {"r": MEDMNIST_PAPER["ref_id"]}).iloc[0]
    assert paper.doi == "10.1038/s41597-022-01721-8" and paper.year == 2023
    assert paper.title == ("MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image "
                           "classification")


def test_medmnist_experiments_match_the_bundled_table(medmnist, seed):
    rows = read_medmnist_csv()
    assert len(rows) == len(MEDMNIST_DATASETS) * len(MEDMNIST_MODELS) == len(medmnist)
    assert {d for d, _, _ in medmnist.index} == MEDMNIST_DATASETS
    assert {(m, s) for _, m, s in medmnist.index} == MEDMNIST_MODELS
    for row in rows:
        experiment = medmnist.loc[(row["dataset"], row["method"], medmnist_setting(row))]
        assert experiment.accuracy == float(row["test_acc"]) and experiment.auc == float(row["test_auc"])
        size = int(row["resolution"] or 28)
        assert experiment.width == experiment.height == size
    provenance = seed.frame(
        "SELECT ms.metric, ms.split, ms.method, ms.source_url FROM measurements ms JOIN experiments e"
        " ON e.id = ms.experiment_id JOIN papers p ON p.id = e.paper_id WHERE p.ref_id = :r",
        {"r": MEDMNIST_PAPER["ref_id"]})
    assert len(provenance) == 2 * len(rows)
    assert set(provenance.metric) == {"accuracy", "auc"}
    assert set(provenance.split) == {"test"} and set(provenance.method) == {"import"}
    assert set(provenance.source_url) == {row["source_url"] for row in rows}


def test_medmnist_features_come_from_medmnist_info(medmnist):
    INFO = medmnist_info()
    assert INFO["pathmnist"]["python_class"] == "PathMNIST"  # the package's own table, read without torch
    for (dataset, _, _), experiment in medmnist.iterrows():
        info = INFO[dataset.lower()]
        splits = info["n_samples"]
        assert (experiment.n_train, experiment.n_val, experiment.n_test) == (splits["train"], splits["val"], splits["test"])
        assert experiment.n_samples == sum(splits.values())
        assert experiment.channels == info["n_channels"] and experiment.n_classes == len(info["label"])
        assert experiment.is_proposed == "no"
        assert experiment.pretrained_status == experiment.augmentation_status == "not_reported"
        assert experiment.domain and experiment.modality
    assert medmnist.loc[("ChestMNIST", "ResNet-18", "size=28")].modality == "X-ray"


def test_bundled_table_is_shareds_v2_rows():
    published = shared_path("data", "medmnist", "published_results.csv")
    with published.open(encoding="utf-8", newline="") as fh:
        v2 = [{c: row[c] for c in MEDMNIST_COLUMNS} for row in csv.DictReader(fh) if row["benchmark"] == MEDMNIST_BENCHMARK]
    assert read_medmnist_csv() == v2


def test_literature_part_matches_the_curated_table(seed):
    source = shared_path("data", "literature", "medrec_literature.csv")
    table = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame = seed.experiments_frame()
    literature = frame[frame.source_file == source.name]
    assert len(literature) == len(table)
    assert literature.ref_id.nunique() == table.ref_id.nunique()
    sample = table.iloc[::37]
    for row in sample.itertuples():
        matches = literature[(literature.ref_id == row.ref_id) & (literature.model_raw == row.model)]
        assert len(matches) >= 1
        if row.accuracy:
            assert float(row.accuracy) in set(matches.accuracy)
        if row.n_classes:
            assert float(row.n_classes) in set(matches.n_classes)


def test_demo_shows_the_seed_kbs_stats(seed):
    import io

    from rich.console import Console

    from medicalrec.demo import show_kb_section

    out = io.StringIO()
    show_kb_section(seed, Console(file=out, width=120))
    text = out.getvalue()
    assert "bundled seed KB (read-only)" in text and "Feature status" in text
    assert f"% of {seed.counts()['experiments']} experiments" in text
