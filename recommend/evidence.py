"""The evidence behind a recommendation: what the KB's similar tasks say about each item.

Similar tasks are the KB experiments in the same domain; when the KB has none there, the same
modality; else the whole KB. For each recommended item we report how many of those experiments
used it, their median reported accuracy, two or three references (DOI or URL, best accuracy
first) and the parameter count where the curated catalogue knows it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from .catalogue import Catalogue

# Fewer similar experiments than this and the recommendation comes with a warning.
LOW_COVERAGE = 10
MAX_REFERENCES = 3


@dataclass
class Evidence:
    n_experiments: int  # similar-task KB experiments that used this item
    median_accuracy: Optional[float]
    references: list[str] = field(default_factory=list)
    params_millions: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Coverage:
    scope: str  # "domain", "modality" or "KB": which experiments count as similar tasks
    scope_value: Optional[str]
    n_similar: int
    warning: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EvidenceIndex:
    """The KB's experiments reduced to the columns evidence needs, as arrays (built once per KB, so a
    recommendation costs a few vectorised masks, not DataFrame scans)."""

    def __init__(self, experiments: pd.DataFrame, catalogue: Catalogue) -> None:
        n = len(experiments)

        def column(name: str) -> np.ndarray:
            return experiments[name].to_numpy(dtype=object) if name in experiments else np.full(n, None, dtype=object)

        self.domain = column("domain")
        self.modality = column("modality")
        self.label = np.array([catalogue.item_of(m, f) for m, f in zip(experiments["model"], experiments["model_family"])],
                              dtype=object) if n else np.zeros(0, dtype=object)
        accuracy = pd.to_numeric(experiments["accuracy"], errors="coerce") if "accuracy" in experiments else None
        self.accuracy = accuracy.to_numpy(dtype=float) if accuracy is not None else np.full(n, np.nan)
        self.reference = np.array([reference_of(r) for r in
                                   experiments.reindex(columns=["doi", "source_url"]).to_dict("records")], dtype=object)
        self.params = params_by_item(experiments, pd.Series(self.label, index=experiments.index), catalogue) if n else {}

    def similar(self, task: Mapping[str, Any]) -> tuple[np.ndarray, Coverage]:
        """A mask of the experiments that count as similar to `task`, and how well the KB covers it."""
        for scope, values in (("domain", self.domain), ("modality", self.modality)):
            value = task.get(scope)
            if value is not None:
                mask = values == value
                if mask.any():
                    return mask, _coverage(scope, value, int(mask.sum()), task)
        return np.ones(len(self.label), dtype=bool), _coverage("KB", None, 0, task)

    def evidence(self, similar: np.ndarray, item: str) -> Evidence:
        used = np.flatnonzero(similar & (self.label == item))
        accuracy = self.accuracy[used]
        known = ~np.isnan(accuracy)
        median = float(np.median(accuracy[known])) if known.any() else None
        # best reported accuracy first; rows without one last, in KB order
        order = used[np.lexsort((np.arange(len(used)), -np.nan_to_num(accuracy, nan=-np.inf)))]
        references: list[str] = []
        for ref in self.reference[order]:
            if ref and ref not in references:
                references.append(ref)
                if len(references) == MAX_REFERENCES:
                    break
        return Evidence(n_experiments=int(len(used)), median_accuracy=median, references=references,
                        params_millions=self.params.get(item))


def _coverage(scope: str, value: Optional[str], n: int, task: Mapping[str, Any]) -> Coverage:
    warning = None
    if scope == "KB":
        asked = " / ".join(str(task[k]) for k in ("domain", "modality", "dataset") if task.get(k)) or "this task"
        warning = (f"low coverage: the KB has no experiments for {asked}; these recommendations rest on the "
                   f"whole KB — import papers on this task (medicalrec kb import) for better ones")
    elif n < LOW_COVERAGE:
        warning = (f"low coverage: only {n} KB experiment(s) share this {scope} ({value}); "
                   f"treat the ranking as weak evidence")
    elif scope == "modality" and task.get("domain"):
        warning = (f"the KB has no experiments for domain {task['domain']!r}; evidence comes from "
                   f"{n} experiments with the same modality ({value})")
    return Coverage(scope=scope, scope_value=value, n_similar=n, warning=warning)


def reference_of(row: Mapping[str, Any]) -> Optional[str]:
    doi = row.get("doi")
    if isinstance(doi, str) and doi.strip():
        return f"https://doi.org/{doi.strip()}"
    url = row.get("source_url")
    if isinstance(url, str) and url.strip():
        return url.strip()
    return None


def item_labels_of(experiments: pd.DataFrame, catalogue: Catalogue) -> pd.Series:
    """Each experiment's item in `catalogue` (its model, or the family label it folds into)."""
    return pd.Series([catalogue.item_of(m, f) for m, f in zip(experiments["model"], experiments["model_family"])],
                     index=experiments.index, dtype=object)


def params_by_item(experiments: pd.DataFrame, labels: pd.Series, catalogue: Catalogue) -> dict[str, float]:
    """Parameter counts (millions) of the named architectures, from the curated catalogue via the KB.
    Only rows of the architecture itself count: a family label ("Custom CNN") that also collects
    folded rare models (AlexNet, SqueezeNet, ...) gets no count from them."""
    if "params_millions" not in experiments:
        return {}
    values = pd.to_numeric(experiments["params_millions"], errors="coerce")
    own = (experiments["model"].to_numpy(dtype=object) == labels.reindex(experiments.index).to_numpy(dtype=object))
    out: dict[str, float] = {}
    for item, group in values[own].groupby(experiments["model"][own]):
        known = group.dropna()
        if item in catalogue.named_models and not known.empty and not math.isnan(float(known.median())):
            out[str(item)] = float(known.median())
    return out
