"""The learned resolver: which of a paper's conflicting statements of a count is the paper's own.

A paper often states several values for one count: "ImageNet's 1,000 classes" beside its own
four, the 112,120 images of a public dataset beside the 420 it annotated, a per-class count
beside the total. `features.resolve` used to give up on such a conflict (status `ambiguous`).
Here each stated value becomes a row of features (how strongly and how often it is stated,
where in the paper, in a table or a sentence, how it compares with the other values) and a
logistic model trained on the gold annotations gives the probability that it is the paper's
value. The most probable value is taken when it passes a threshold chosen by cross-validation
grouped by paper (`bench/feature_resolver.py`); otherwise the conflict stays `ambiguous`.

It ships as plain JSON (`data/resolver.json`: feature names, standardisation, coefficients,
threshold), so loading it runs no code and needs no scikit-learn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from .features import Evidence

__all__ = ["Resolver", "RESOLVED_FEATURES", "RESOLVER_PATH", "value_rows", "load_resolver", "fit_resolver"]

RESOLVER_PATH = Path(__file__).resolve().parent / "data" / "resolver.json"
RESOLVED_FEATURES = ("n_samples", "n_train", "n_test", "n_val", "n_classes", "k_fold")
_SECTIONS = ("abstract", "body", "conclusion", "future", "related")
_SPLITS = ("n_train", "n_val", "n_test")


def _stated(evidence: Sequence["Evidence"], feature: str) -> set[int]:
    return {int(e.value) for e in evidence if e.feature == feature and isinstance(e.value, (int, float))}


def _agrees_with_other_counts(feature: str, value: object, evidence: Sequence["Evidence"]) -> float:
    """1 when the value fits the paper's other counts: a total that is the sum of stated split
    sizes, a split size that completes a stated total, or a stated share of a stated total."""
    if not isinstance(value, (int, float)) or feature not in ("n_samples", *_SPLITS):
        return 0.0
    value = int(value)
    splits = {name: _stated(evidence, name) | {0} for name in _SPLITS}
    totals = _stated(evidence, "n_samples")
    if feature == "n_samples":
        sums = {a + b + c for a in splits["n_train"] for b in splits["n_val"] for c in splits["n_test"]
                if (a > 0) + (b > 0) + (c > 0) >= 2}
        return float(value in sums)
    others = [splits[name] for name in _SPLITS if name != feature]
    completes = any(value + a + b in totals for a in others[0] for b in others[1] if a or b)
    shares = {e.ratio for e in evidence if e.feature == feature and e.ratio}
    of_total = any(abs(total * share - value) < 1 for total in totals for share in shares)
    return float(completes or of_total)


def value_rows(feature: str, evidence: Sequence["Evidence"]) -> dict[object, dict[str, float]]:
    """Each value stated for `feature`, with the features the resolver scores it by."""
    stated = [e for e in evidence if e.feature == feature and e.value is not None]
    by_value: dict[object, list] = {}
    for e in stated:
        by_value.setdefault(e.value, []).append(e)
    total_support = sum(e.weight for e in stated) or 1.0
    earliest = sorted(by_value, key=lambda v: min(e.position for e in by_value[v]))
    by_support = sorted(by_value, key=lambda v: -sum(e.weight for e in by_value[v]))
    numbers = [float(v) for v in by_value if isinstance(v, (int, float))]
    rows: dict[object, dict[str, float]] = {}
    for value, items in by_value.items():
        support = sum(e.weight for e in items)
        number = float(value) if isinstance(value, (int, float)) else 0.0
        row = {
            "support": support,
            "support_share": support / total_support,
            "mentions": float(len(items)),
            "max_weight": max(e.weight for e in items),
            "support_rank": float(by_support.index(value)),
            "values_stated": float(len(by_value)),
            "first_position": min(e.position for e in items),
            "last_position": max(e.position for e in items),
            "earliest_value": float(earliest[0] == value),
            "from_table": float(any(e.method == "table" for e in items)),
            "narrows": float(any(e.narrows for e in items)),
            "log_value": math.log10(max(number, 1.0)),
            "largest": float(bool(numbers) and number == max(numbers)),
            "smallest": float(bool(numbers) and number == min(numbers)),
            "round_value": float(number >= 100 and number % 100 == 0),
            "agrees_with_counts": _agrees_with_other_counts(feature, value, evidence),
        }
        for section in _SECTIONS:
            row[f"in_{section}"] = float(any(e.section == section for e in items))
        for name in RESOLVED_FEATURES:
            row[f"is_{name}"] = float(feature == name)
        rows[value] = row
    return rows


@dataclass
class Resolver:
    feature_names: list[str]
    means: list[float]
    scales: list[float]
    coefficients: list[float]
    intercept: float
    threshold: float
    trained_on: dict

    def probability(self, row: dict[str, float]) -> float:
        z = self.intercept + sum(c * ((row.get(name, 0.0) - m) / s) for name, m, s, c in
                                 zip(self.feature_names, self.means, self.scales, self.coefficients))
        return 1.0 / (1.0 + math.exp(-z)) if z > -50 else 0.0

    def choose(self, feature: str, evidence: Sequence["Evidence"]) -> Optional[tuple[object, float]]:
        """The most probable stated value and its probability, or None below the threshold."""
        if feature not in RESOLVED_FEATURES:
            return None
        scored = sorted(((self.probability(row), value) for value, row in value_rows(feature, evidence).items()),
                        key=lambda pair: -pair[0])
        if not scored or scored[0][0] < self.threshold:
            return None
        return scored[0][1], scored[0][0]

    def to_json(self) -> str:
        return json.dumps({"feature_names": self.feature_names, "means": self.means, "scales": self.scales,
                           "coefficients": self.coefficients, "intercept": self.intercept,
                           "threshold": self.threshold, "trained_on": self.trained_on}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Resolver":
        data = json.loads(text)
        return cls(data["feature_names"], data["means"], data["scales"], data["coefficients"],
                   float(data["intercept"]), float(data["threshold"]), data.get("trained_on", {}))


@lru_cache(maxsize=4)
def load_resolver(path: Optional[str] = None) -> Optional[Resolver]:
    """The shipped resolver (or the one at `path`); None when there is none."""
    target = Path(path) if path else RESOLVER_PATH
    if not target.exists():
        return None
    return Resolver.from_json(target.read_text(encoding="utf-8"))


def fit_resolver(rows: Sequence[dict[str, float]], labels: Sequence[int], *, threshold: float = 0.5,
                 trained_on: Optional[dict] = None) -> Resolver:
    """Fit the logistic model on stated values labelled against gold (1: the gold value)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    names = sorted({name for row in rows for name in row})
    matrix = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=float)
    target = np.asarray(labels, dtype=int)
    if len(set(target.tolist())) < 2:
        raise ValueError("the training values hold only one class")
    means = matrix.mean(axis=0)
    scales = matrix.std(axis=0)
    scales[scales == 0] = 1.0
    # Strong regularisation: a few hundred values from 46 papers.
    model = LogisticRegression(C=0.3, max_iter=2000, class_weight="balanced")
    model.fit((matrix - means) / scales, target)
    return Resolver(names, [float(v) for v in means], [float(v) for v in scales],
                    [float(v) for v in model.coef_[0]], float(model.intercept_[0]), threshold, trained_on or {})
