"""The learned scorer: how likely a candidate is a result the paper reports for its own work.

A gradient-boosted tree model (scikit-learn's HistGradientBoostingClassifier) trained on
candidates labelled against the gold annotations. It ships as plain JSON (`data/scorer.json`:
feature names, trees, threshold), never as a pickle, so loading it runs no code and needs no
scikit-learn; scikit-learn is needed only to train. The threshold is the one that maximised
tuple F1 on papers held out by grouped cross-validation (`bench/extract_quality.py --train`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Scorer", "load_scorer", "fit_scorer", "SCORER_PATH", "REVIEW_FLOOR"]

SCORER_PATH = Path(__file__).resolve().parent / "data" / "scorer.json"
# Candidates scoring below this are too unlikely to be worth a curator's time; they are counted
# in the file's warnings, not stored.
REVIEW_FLOOR = 0.05


@dataclass
class Scorer:
    feature_names: list[str]
    trees: list[dict]            # each: parallel lists feature, threshold, left, right, leaf, value, missing_left
    baseline: float
    threshold: float
    trained_on: dict

    def vector(self, features: dict[str, float]) -> list[float]:
        return [float(features.get(name, 0.0)) for name in self.feature_names]

    def raw(self, row: Sequence[float]) -> float:
        total = self.baseline
        for tree in self.trees:
            node = 0
            while not tree["leaf"][node]:
                value = row[tree["feature"][node]]
                if value != value:  # NaN
                    node = tree["left"][node] if tree["missing_left"][node] else tree["right"][node]
                elif value <= tree["threshold"][node]:
                    node = tree["left"][node]
                else:
                    node = tree["right"][node]
            total += tree["value"][node]
        return total

    def probability(self, features: dict[str, float]) -> float:
        raw = self.raw(self.vector(features))
        return 1.0 / (1.0 + math.exp(-raw)) if raw > -50 else 0.0

    def to_json(self) -> str:
        return json.dumps({"feature_names": self.feature_names, "trees": self.trees, "baseline": self.baseline,
                           "threshold": self.threshold, "trained_on": self.trained_on}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Scorer":
        data = json.loads(text)
        return cls(data["feature_names"], data["trees"], float(data["baseline"]), float(data["threshold"]),
                   data.get("trained_on", {}))


@lru_cache(maxsize=4)
def load_scorer(path: Optional[str] = None) -> Optional[Scorer]:
    """The shipped scorer (or the one at `path`); None when there is none yet."""
    target = Path(path) if path else SCORER_PATH
    if not target.exists():
        return None
    return Scorer.from_json(target.read_text(encoding="utf-8"))


def fit_scorer(rows: Sequence[dict[str, float]], labels: Sequence[int], *, weights: Optional[Sequence[float]] = None,
               feature_names: Optional[list[str]] = None, threshold: float = 0.5, trained_on: Optional[dict] = None,
               seed: int = 0, groups: Optional[Sequence[str]] = None, bags: int = 1) -> Scorer:
    """Fit the tree model on labelled candidates and export it to the JSON form.

    `bags` > 1 with `groups` (the paper of each row): the mean of that many models, each fit on a
    random four fifths of the papers. One paper more or less then moves the scores less, so a
    small paper does not cross the threshold by the luck of which papers trained the scorer."""
    import numpy as np

    names = feature_names or sorted({name for row in rows for name in row})
    matrix = np.array([[float(row.get(name, 0.0)) for name in names] for row in rows], dtype=float)
    target = np.asarray(labels, dtype=int)
    if len(set(target.tolist())) < 2:
        raise ValueError("the training candidates hold only one class: no gold tuple was matched")
    sample_weight = None if weights is None else np.asarray(weights, dtype=float)
    if bags <= 1 or groups is None:
        subsets = [np.arange(len(rows))]
    else:
        papers = sorted(set(groups))
        group_array = np.asarray(groups)
        rng = np.random.default_rng(seed)
        subsets = []
        while len(subsets) < bags:
            chosen = rng.choice(len(papers), size=max(1, round(0.8 * len(papers))), replace=False)
            index = np.flatnonzero(np.isin(group_array, [papers[i] for i in chosen]))
            if len(set(target[index].tolist())) == 2:
                subsets.append(index)
    trees, baselines = [], []
    for index in subsets:
        part_trees, part_baseline = _fit_trees(matrix[index], target[index],
                                               None if sample_weight is None else sample_weight[index], seed)
        for tree in part_trees:
            tree["value"] = [v / len(subsets) for v in tree["value"]]
        trees.extend(part_trees)
        baselines.append(part_baseline)
    return Scorer(names, trees, float(sum(baselines) / len(baselines)), threshold, trained_on or {})


def _fit_trees(matrix, target, sample_weight, seed: int) -> tuple[list[dict], float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    import numpy as np

    # Shallow, strongly regularised trees: 46 papers are few, and a deep tree learns to recognise
    # a paper rather than a result.
    model = HistGradientBoostingClassifier(max_iter=120, learning_rate=0.06, max_depth=3, min_samples_leaf=40,
                                           l2_regularization=5.0, random_state=seed)
    model.fit(matrix, target, sample_weight=sample_weight)
    trees = []
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        trees.append({
            "feature": [int(v) for v in nodes["feature_idx"]],
            "threshold": [float(v) for v in nodes["num_threshold"]],
            "left": [int(v) for v in nodes["left"]],
            "right": [int(v) for v in nodes["right"]],
            "leaf": [bool(v) for v in nodes["is_leaf"]],
            "value": [float(v) for v in nodes["value"]],
            "missing_left": [bool(v) for v in nodes["missing_go_to_left"]],
        })
    return trees, float(np.ravel(model._baseline_prediction)[0])


def best_threshold(papers: Sequence[tuple[Sequence[float], Sequence[int], int]],
                   grid: Sequence[float] = tuple(x / 100 for x in range(5, 96, 1))) -> tuple[float, float]:
    """The threshold that maximises the mean per-paper F1 of the kept candidates, from
    (scores, labels, gold tuple count) per paper. Per paper, not pooled: a paper with 500 table
    cells would otherwise set the threshold for every other paper. A paper with no gold and
    nothing kept scores 1."""
    best = (0.5, -1.0)
    for threshold in grid:
        total = 0.0
        for scores, labels, gold in papers:
            kept = [label for score, label in zip(scores, labels) if score >= threshold]
            hits = min(sum(kept), gold)
            if not kept and not gold:
                total += 1.0
                continue
            precision = hits / len(kept) if kept else 0.0
            recall = hits / gold if gold else 0.0
            total += 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        mean = total / len(papers) if papers else 0.0
        if mean > best[1]:
            best = (threshold, mean)
    return best
