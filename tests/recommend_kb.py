"""A small KB file for the recommend CLI/service tests: E1's synthetic experiments stored through the
real store API (so `experiments_frame()`, fingerprints and aliases are the KB's own)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from recommend_data import synthetic_experiments

from medicalrec.kb import FEATURES, ExperimentRecord, FeatureField, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance

CURATED_COLUMNS = (
    "ref_id", "title", "year", "source_url", "doi", "domain", "modality", "dataset", "n_samples", "n_train",
    "n_test", "n_val", "k_fold", "width", "height", "channels", "n_classes", "augmentation", "pretrained",
    "model", "model_family", "accuracy", "precision", "recall", "f1", "auc", "is_proposed", "notes",
    "curation_flags",
)


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def store_frame(kb: KnowledgeBase, frame: pd.DataFrame) -> None:
    for paper_key, rows in frame.groupby("paper_key", sort=False):
        first = rows.iloc[0]
        prov = Provenance("import", source_url=f"https://example.org/{paper_key}")
        experiments = []
        for i, row in enumerate(rows.to_dict("records")):
            features = {
                name: FeatureField.reported(int(row[name]) if kind == "int" else row[name], prov)
                for name, kind in FEATURES.items() if _present(row.get(name))
            }
            measurements = [MeasurementRecord("accuracy", float(row["accuracy"]), prov)] if _present(row["accuracy"]) else []
            experiments.append(ExperimentRecord(model=row["model"], dataset=row["dataset"], features=features,
                                                measurements=measurements, setting=f"row{i}",
                                                model_family=row["model_family"]))
        kb.save_paper(PaperRecord(title=f"Paper {paper_key}", doi=first["doi"], year=int(first["year"]),
                                  source_url=f"https://example.org/{paper_key}"), experiments)


def synthetic_kb(path: Path, n_papers: int = 48, seed: int = 5) -> KnowledgeBase:
    kb = KnowledgeBase.open(path, write=True)
    store_frame(kb, synthetic_experiments(n_papers=n_papers, seed=seed))
    return kb


def write_curated_csv(path: Path, frame: pd.DataFrame) -> Path:
    """The rows in the curated import layout (empty cell = not reported)."""
    out = pd.DataFrame({c: frame[c] if c in frame else None for c in CURATED_COLUMNS})
    out["ref_id"] = frame["paper_key"].str.replace("/", "_")
    out["title"] = "Paper " + out["ref_id"]
    for column in ("n_samples", "n_train", "n_test", "n_val", "k_fold", "width", "height", "channels", "n_classes"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("Int64")
    out.to_csv(path, index=False)
    return path
