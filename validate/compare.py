"""Every published figure the KB holds for a (dataset, model, size), and how a run compares with them.

"Published" is every accepted test-split ACC / AUC of the model on the dataset from any paper but
our own validation runs: MedMNIST v2 (the seed's Yang2023MedMNISTv2 rows), and whatever else was
imported or extracted (e.g. the benchmark tables of ../shared/data/benchmarks once imported). A
figure counts for a size when its experiment says so: `width` = size, or `size=N` in its setting;
a figure whose size the KB does not know is left out rather than compared at the wrong resolution.

The published spread of a cell is [min, max] of its figures (one figure: that point). A result is
"within" when its mean ± its own seed std overlaps that range; with one seed and one figure that is
equality, so a single run is honestly reported as outside unless it hits the figure.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Optional

from ..kb import KnowledgeBase
from .writeback import VALIDATION_REF_ID, from_kb_or_seed

METRICS = ("accuracy", "auc")

# A benchmark's hyper-parameter sweep counts by its best-on-validation run only (the others are
# runs its authors would not report), and a figure linked as the duplicate of another counts once.
_SQL = (
    "SELECT m.name AS model, p.ref_id AS ref_id, p.title AS title, e.setting AS setting, ms.metric AS metric,"
    " ms.value AS value, fv.value_num AS width, br.resolution AS resolution FROM experiments e"
    " JOIN papers p ON p.id = e.paper_id"
    " JOIN models m ON m.id = e.model_id JOIN datasets d ON d.id = e.dataset_id"
    " JOIN measurements ms ON ms.experiment_id = e.id"
    " LEFT JOIN feature_values fv ON fv.experiment_id = e.id AND fv.feature = 'width'"
    " LEFT JOIN benchmark_runs br ON br.experiment_id = e.id"
    " WHERE d.name = :dataset AND e.origin != 'validated' AND COALESCE(p.ref_id, '') != :ours"
    " AND ms.split = 'test' AND ms.metric IN ('accuracy', 'auc') AND ms.review_status = 'accepted'"
    " AND ms.average IN ('', 'macro') AND COALESCE(br.is_best_on_val, 1) = 1"
    " AND NOT EXISTS (SELECT 1 FROM fact_links fl WHERE fl.measurement_id = ms.id)"
    " ORDER BY p.ref_id, e.setting")

_SIZE_IN_SETTING = re.compile(r"(?:^|;)\s*size=(\d+)|@(\d+)px\b")


@dataclass(frozen=True)
class PublishedFigure:
    source: str  # the paper's ref_id (or title)
    setting: str
    metric: str
    value: float


@dataclass
class Comparison:
    """One metric of one (dataset, model, size) cell: our mean ± std against the published figures."""

    metric: str
    ours: float
    ours_std: float
    figures: list[PublishedFigure] = field(default_factory=list)

    @property
    def low(self) -> Optional[float]:
        return min((f.value for f in self.figures), default=None)

    @property
    def high(self) -> Optional[float]:
        return max((f.value for f in self.figures), default=None)

    @property
    def published_mean(self) -> Optional[float]:
        return statistics.fmean(f.value for f in self.figures) if self.figures else None

    @property
    def delta(self) -> Optional[float]:
        mean = self.published_mean
        return None if mean is None else self.ours - mean

    @property
    def within(self) -> Optional[bool]:
        if not self.figures:
            return None
        return self.ours + self.ours_std >= self.low and self.ours - self.ours_std <= self.high

    def as_dict(self) -> dict:
        return {
            "metric": self.metric, "ours": self.ours, "ours_std": self.ours_std,
            "published": [{"source": f.source, "setting": f.setting, "value": f.value,
                           "delta": self.ours - f.value} for f in self.figures],
            "published_low": self.low, "published_high": self.high, "delta_vs_mean": self.delta,
            "within_published_spread": self.within,
        }


def _known(value) -> bool:
    return value is not None and value == value  # NaN from pandas when the value is missing


def _size_of(setting: str, width, resolution=None) -> Optional[int]:
    if _known(resolution):  # a benchmark run's own protocol
        return int(resolution)
    if _known(width):
        return int(width)
    match = _SIZE_IN_SETTING.search(setting or "")
    return int(match.group(1) or match.group(2)) if match else None


def published_figures(store: KnowledgeBase, dataset: str, size: int) -> dict[str, list[PublishedFigure]]:
    """{model: [figures]} for `dataset` at `size` px in `store`."""
    frame = store.frame(_SQL, {"dataset": dataset, "ours": VALIDATION_REF_ID})
    figures: dict[str, list[PublishedFigure]] = {}
    for row in frame.itertuples(index=False):
        if _size_of(row.setting, row.width, row.resolution) != size:
            continue
        figures.setdefault(row.model, []).append(
            PublishedFigure(row.ref_id or row.title or "?", row.setting or "", row.metric, float(row.value)))
    return figures


def published_with_seed(store: KnowledgeBase, dataset: str, size: int
                        ) -> tuple[dict[str, list[PublishedFigure]], Optional[str]]:
    """The figures in `store`, else in the bundled seed (a fresh --kb file holds none), with the KB
    they came from."""
    return from_kb_or_seed(store, lambda kb: published_figures(kb, dataset, size))


def compare(figures: list[PublishedFigure], acc: list[float], auc: list[float]) -> dict[str, Comparison]:
    """Our per-seed ACC and AUC against the published figures of one cell."""
    out = {}
    for metric, values in (("accuracy", acc), ("auc", auc)):
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out[metric] = Comparison(metric, statistics.fmean(values), std, [f for f in figures if f.metric == metric])
    return out
