"""The recommender's items: which model labels it can recommend.

An item is a curated (canonical) architecture seen in at least `min_count` distinct papers of
the training KB. Everything rarer or bespoke is folded into its family's label ("Custom CNN"
for the plain CNN family, else the family name: "Ensemble", "Hybrid CNN-Transformer", ...), so a
paper's "proposed lightweight CNN" still teaches the ranker that a custom CNN was used.
Counting papers rather than experiments keeps one paper's many datasets from minting an item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

FOLD_LABELS: dict[str, str] = {"CNN": "Custom CNN"}
UNKNOWN_FAMILY = "Other"
ABSENT = -1  # target index of a row whose item the catalogue does not hold


def family_label(family: str | None) -> str:
    family = family if isinstance(family, str) and family.strip() else UNKNOWN_FAMILY
    return FOLD_LABELS.get(family, family)


@dataclass
class Catalogue:
    items: list[str]
    family_of: dict[str, str]
    named_models: set[str] = field(default_factory=set)  # canonical names kept as their own item
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {item: i for i, item in enumerate(self.items)}
        if len(self._index) != len(self.items):
            raise ValueError("catalogue items must be unique")
        if not self.named_models:
            self.named_models = {i for i in self.items if i not in set(map(family_label, self.family_of.values()))}

    def __len__(self) -> int:
        return len(self.items)

    def item_of(self, model: str, family: str) -> str:
        """The item label of a model: its own name when it is a catalogue model, else its family's label."""
        if model in self.named_models:
            return model
        return family_label(family)

    def index(self, item: str) -> int:
        """The item's column in a score matrix; KeyError for an item the catalogue lacks."""
        return self._index[item]

    def targets(self, experiments: pd.DataFrame) -> np.ndarray:
        """Item index per row (int64); ABSENT (-1) when the row's item is not in the catalogue."""
        labels = [self.item_of(m, f) for m, f in zip(experiments["model"], experiments["model_family"])]
        return np.array([self._index.get(label, ABSENT) for label in labels], dtype=np.int64)

    def families(self) -> list[str]:
        """Distinct families, in a stable order (for a family head)."""
        return sorted(set(self.family_of.values()))

    @classmethod
    def build(cls, experiments: pd.DataFrame, min_count: int = 2, extra_named: Iterable[str] = ()) -> "Catalogue":
        """`extra_named`: models kept as their own item whatever their paper count (the performance
        ranker passes the models a benchmark compares on >= 2 tasks: one source, many tasks)."""
        if experiments.empty:
            raise ValueError("cannot build a catalogue from an empty KB")
        curated = experiments["model_curated"].fillna(False).astype(bool) if "model_curated" in experiments \
            else pd.Series(True, index=experiments.index)
        papers = experiments["paper_key"] if "paper_key" in experiments else pd.Series(
            np.arange(len(experiments)), index=experiments.index)
        paper_counts = (
            pd.DataFrame({"model": experiments["model"], "paper": papers})[curated]
            .drop_duplicates().groupby("model").size()
        )
        named = {m for m, n in paper_counts.items() if n >= min_count} | set(extra_named)
        family_of: dict[str, str] = {}
        counts: dict[str, int] = {}
        for model, family in zip(experiments["model"], experiments["model_family"]):
            family = family if isinstance(family, str) and family.strip() else UNKNOWN_FAMILY
            item = model if model in named else family_label(family)
            family_of.setdefault(item, family)
            counts[item] = counts.get(item, 0) + 1
        # Most used first, so ties in a score matrix break towards common items.
        items = sorted(counts, key=lambda i: (-counts[i], i))
        return cls(items=items, family_of={i: family_of[i] for i in items}, named_models=named & set(items))

    def to_dict(self) -> dict:
        return {"items": list(self.items), "family_of": dict(self.family_of),
                "named_models": sorted(self.named_models)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Catalogue":
        return cls(items=list(d["items"]), family_of=dict(d["family_of"]),
                   named_models=set(d.get("named_models", [])))
