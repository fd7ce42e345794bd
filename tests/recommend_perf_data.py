"""Synthetic comparisons with a planted winner: in each domain one family wins, so a ranker that
reads task features and model families can learn who wins on tasks it never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd

MODELS = {  # name -> (family, params in millions)
    "EfficientNet-B0": ("EfficientNet", 5.3), "EfficientNet-B3": ("EfficientNet", 12.2),
    "ResNet-18": ("ResNet", 11.7), "ResNet-50": ("ResNet", 25.6), "VGG-16": ("VGG", 138.0),
    "DenseNet-121": ("DenseNet", 8.0), "MetaVote": ("Ensemble", np.nan), "LesionNet": ("CNN", np.nan),
}
DOMAINS = {  # domain -> (modality, winning family)
    "Skin Cancer Classification": ("dermoscopy", "EfficientNet"),
    "Brain Tumour Classification": ("mri", "ResNet"),
    "Chest X-ray Classification": ("x-ray", "DenseNet"),
}


def comparison_experiments(n_tasks: int = 36, seed: int = 0, benchmark_every: int = 0) -> pd.DataFrame:
    """experiments_frame-shaped rows: each task (dataset) is compared in one paper on 3-5 models;
    the domain's winning family scores highest, VGG lowest; `benchmark_every` > 0 marks every k-th
    task as a benchmark task (source_kind benchmark, all six architectures)."""
    rng = np.random.default_rng(seed)
    rows = []
    domains = list(DOMAINS)
    architectures = [m for m in MODELS if MODELS[m][0] not in ("Ensemble", "CNN")]
    for t in range(n_tasks):
        domain = domains[t % len(domains)]
        modality, winner = DOMAINS[domain]
        benchmark = benchmark_every > 0 and t % benchmark_every == 0
        chosen = architectures if benchmark else list(rng.choice(architectures, int(rng.integers(3, 6)), replace=False))
        if not benchmark and t % 4 == 0:
            chosen.append("LesionNet")
        n_classes = int(rng.choice([2, 4, 7]))
        for model in chosen:
            family, params = MODELS[model]
            quality = 0.9 if family == winner else 0.7 if family == "VGG" else 0.8
            rows.append({
                "experiment_id": len(rows) + 1, "paper_id": t + 1, "paper_key": f"10.1000/task{t}", "doi": f"10.1000/task{t}",
                "ref_id": f"T{t}", "year": 2020 + t % 5, "model": model, "model_family": family,
                "model_curated": model != "LesionNet", "params_millions": params,
                "dataset": f"{domain.split()[0]} set {t}", "domain": domain, "modality": modality,
                "n_classes": n_classes, "n_samples": int(rng.integers(500, 20000)), "n_train": np.nan, "n_test": np.nan,
                "n_val": np.nan, "k_fold": np.nan, "width": 224, "height": 224, "channels": 3,
                "augmentation": "yes", "pretrained": "yes", "is_proposed": "no",
                "accuracy": quality + float(rng.normal(0, 0.01)), "auc": np.nan, "f1": np.nan,
                "origin": "benchmark" if benchmark else "import",
                "source_kind": "benchmark" if benchmark else "literature", "setting": "",
            })
    return pd.DataFrame(rows)
