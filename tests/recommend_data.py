"""Test data for the recommender: a seeded synthetic experiments frame with a known signal, and a
small loader that puts literature-CSV rows into a KB through the store API (so the tests exercise
the real `experiments_frame()` shape without depending on the importer)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from medicalrec.kb import FEATURES, ExperimentRecord, FeatureField, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance

# domain -> (modality, models the domain's papers prefer, with family)
SYNTHETIC_TASKS = {
    "Skin Cancer Classification": ("dermoscopy", [("EfficientNet-B0", "EfficientNet"), ("ResNet-50", "ResNet")]),
    "Brain Tumour Classification": ("mri", [("VGG-16", "VGG"), ("DenseNet-121", "DenseNet")]),
    "Chest X-ray Classification": ("x-ray", [("DenseNet-121", "DenseNet"), ("Vision Transformer", "Vision Transformer")]),
    "Breast Cancer Classification": ("histopathology", [("ResNet-50", "ResNet"), ("Custom CNN", "CNN")]),
}
BESPOKE = [("LesionNet", "CNN"), ("TumorFormer", "Hybrid CNN-Transformer"), ("MetaVote", "Ensemble")]


def synthetic_experiments(n_papers: int = 60, seed: int = 0) -> pd.DataFrame:
    """experiments_frame-shaped rows: each paper compares 1-3 models on one dataset of one domain;
    the domain's first preferred model usually wins, so who-won and domain signals are learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    domains = list(SYNTHETIC_TASKS)
    for p in range(n_papers):
        domain = domains[p % len(domains)]
        modality, preferred = SYNTHETIC_TASKS[domain]
        n_classes = int(rng.choice([2, 3, 7]))
        n_samples = int(rng.integers(200, 20000))
        size = rng.choice([224, 299, np.nan])
        n_models = int(rng.integers(1, 4))
        pool = list(preferred) + [("VGG-19", "VGG"), BESPOKE[p % len(BESPOKE)]]
        chosen = [pool[0]] + [pool[i] for i in rng.choice(np.arange(1, len(pool)), n_models - 1, replace=False)]
        for rank, (model, family) in enumerate(chosen):
            rows.append({
                "experiment_id": len(rows) + 1, "paper_id": p + 1, "paper_key": f"10.1000/paper{p}",
                "doi": f"10.1000/paper{p}", "ref_id": None, "year": int(rng.integers(2016, 2026)),
                "model": model, "model_family": family, "model_curated": model not in dict(BESPOKE),
                "params_millions": np.nan, "dataset": f"{domain.split()[0]} set {p % 3}",
                "domain": domain, "modality": modality, "n_classes": n_classes, "n_samples": n_samples,
                "n_train": np.nan if p % 2 else int(n_samples * 0.8), "n_test": np.nan if p % 2 else int(n_samples * 0.2),
                "n_val": np.nan, "k_fold": 5 if p % 5 == 0 else np.nan, "width": size, "height": size,
                "channels": 3 if p % 3 else np.nan, "augmentation": ["yes", "no", None][p % 3],
                "pretrained": ["yes", None][p % 2], "is_proposed": "yes" if rank == 0 else "no",
                "accuracy": 0.95 - 0.03 * rank + float(rng.normal(0, 0.003)), "auc": np.nan, "f1": np.nan,
            })
    return pd.DataFrame(rows)


def _cell(row: dict, name: str):
    value = (row.get(name) or "").strip()
    return value or None


def load_literature(kb: KnowledgeBase, csv_path: Path, limit: int | None = None) -> int:
    """Store literature-CSV rows through `save_paper`; returns the number of rows read."""
    with open(csv_path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    by_paper: dict[str, list[dict]] = {}
    for row in rows:
        by_paper.setdefault(row["ref_id"], []).append(row)
    for ref_id, paper_rows in by_paper.items():
        first = paper_rows[0]
        prov = Provenance(method="import", source_url=_cell(first, "source_url"))
        paper = PaperRecord(title=_cell(first, "title"), doi=_cell(first, "doi"), ref_id=ref_id,
                            year=int(first["year"]) if _cell(first, "year") else None,
                            source_url=_cell(first, "source_url"))
        experiments = []
        for i, row in enumerate(paper_rows):
            features = {}
            for name, kind in FEATURES.items():
                value = _cell(row, name)
                if value is not None:
                    features[name] = FeatureField.reported(int(float(value)) if kind == "int" else value, prov)
            measurements = [MeasurementRecord(m, float(row[m]), prov) for m in ("accuracy", "precision", "recall", "f1", "auc")
                            if _cell(row, m) is not None]
            experiments.append(ExperimentRecord(model=row["model"], dataset=_cell(row, "dataset"), features=features,
                                                measurements=measurements, setting=f"row{i}",
                                                model_family=_cell(row, "model_family")))
        kb.save_paper(paper, experiments)
    return len(rows)
