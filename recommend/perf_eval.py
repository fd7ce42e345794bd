"""`recommend evaluate --objective performance`: does the ranker pick the model that WINS on tasks it never saw?

Protocol (one for every method):
- Leave-tasks-out folds: a task is a dataset (comparisons.task_keys; a row naming no dataset is a
  task of its paper). Tasks are shuffled with the split seed and dealt, largest first, to the fold
  with the fewest rows, so every row of a held-out dataset — literature and benchmark alike — is on
  the test side. `n_seeds` split seeds (default 5) x `n_folds` folds.
- Each method trains on the training side only (the catalogue too: performance.performance_catalogue),
  then scores the catalogue for each held-out comparison group's context; only the group's measured
  items are ranked (ties broken by catalogue order, most used first, so ties never help).
- Per group: best@1 / best@3 (a truly best item — the measured maximum, ties included — in the top
  k; best@3 counts only groups with > 3 items, where it is not trivially 1), NDCG@5 with graded gain
  = the measured score rescaled to [0, 1] within the group, Kendall tau-b between the method's and
  the measured scores (0 when the method ties every item), pairwise win accuracy (share of item pairs
  with different measured scores that the method orders the same way; a tie counts 0.5).
- Per-task values are averaged over the seeds (each seed holds every task out once), then methods
  are compared on those per-task values: Wilcoxon signed-rank (two-sided), the mean difference with a
  95 % bootstrap CI (2,000 resamples of tasks, seeded) and the matched-pairs rank-biserial
  correlation; Holm's correction over the baselines of each metric.

Methods: "transformer" = the performance ranker; every registered usage method (the usage
transformer as "transformer_usage", its ablation and the 11 classical baselines) trained on the
training side's literature rows, each ranking by its own scores for the task; and two that learn from
the training comparisons: "best_mean_rank" (the item with the best mean normalised rank over the
training groups that measured it) and "family_nearest_task" (the training groups ordered by Gower
distance of their task features; an item scores its own relevance in the nearest group that measured
it, else the best relevance of its family in the nearest group that measured that family).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from .catalogue import Catalogue
from .comparisons import comparison_frame, task_keys, usage_rows
from .protocol import balanced_group_folds

RANKER = "transformer"
USAGE_RANKER = "transformer_usage"
PERF_METRICS = ("best@1", "best@3", "ndcg@5", "kendall_tau", "pairwise_win_acc")
SIGNIFICANCE_METRICS = PERF_METRICS
COMPARISON_BASELINES = ("best_mean_rank", "family_nearest_task")
Progress = Optional[Callable[[str], None]]


# ---------------------------------------------------------------------- folds
def task_folds(experiments: pd.DataFrame, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-tasks-out folds: every row of a task on one side (see protocol.balanced_group_folds)."""
    tasks = task_keys(experiments.reset_index(drop=True)).to_numpy()
    return balanced_group_folds(tasks, n_folds, seed, "tasks")


# ---------------------------------------------------------------------- per-group metrics
def group_metrics(method_scores: np.ndarray, items: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """The five metrics of one group: `method_scores` over the catalogue, `items` the group's item
    columns, `measured` their measured scores."""
    from scipy.stats import kendalltau

    s = method_scores[items]
    order = np.lexsort((items, -s))  # method's order; ties by catalogue order
    best = measured == measured.max()
    span = measured.max() - measured.min()
    gain = (measured - measured.min()) / span if span > 0 else np.ones_like(measured)
    k = min(5, len(items))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = float((np.sort(gain)[::-1][:k] * discounts).sum())
    ndcg = float((gain[order][:k] * discounts).sum() / ideal) if ideal > 0 else 1.0
    better = measured[:, None] > measured[None, :]
    diff = s[:, None] - s[:, None].T
    outcome = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    pairs = better.sum()
    tau = 0.0
    if np.ptp(s) > 0 and span > 0:
        value = kendalltau(s, measured).statistic
        tau = float(value) if np.isfinite(value) else 0.0
    return {"best@1": float(best[order[0]]), "best@3": float(best[order[:3]].any()) if len(items) > 3 else np.nan,
            "ndcg@5": ndcg, "kendall_tau": tau,
            "pairwise_win_acc": float((outcome * better).sum() / pairs) if pairs else np.nan}


# ---------------------------------------------------------------------- comparison baselines
class BestMeanRank:
    name = "best_mean_rank"

    def fit(self, train: pd.DataFrame, catalogue: Catalogue, feature_set: str, seed: int,
            comparisons: Optional[pd.DataFrame] = None) -> "BestMeanRank":
        comps = comparison_frame(train, catalogue) if comparisons is None else comparisons
        values = np.full(len(catalogue.items), -2.0)  # never compared: below every compared item
        if not comps.empty:
            normalised = (comps["rank"] - 1) / (comps["n_items"] - 1).clip(lower=1)
            for item, mean in normalised.groupby(comps["item"]).mean().items():
                values[catalogue.index(item)] = -float(mean)
        self.values = values
        return self

    def score(self, test: pd.DataFrame) -> np.ndarray:
        return np.repeat(self.values[None, :], len(test), axis=0)


class FamilyNearestTask:
    name = "family_nearest_task"

    def fit(self, train: pd.DataFrame, catalogue: Catalogue, feature_set: str, seed: int,
            comparisons: Optional[pd.DataFrame] = None) -> "FamilyNearestTask":
        from .baselines import ContextKNN

        train = train.reset_index(drop=True)
        self.catalogue = catalogue
        self.comps = comparison_frame(train, catalogue) if comparisons is None else comparisons
        self.knn = None
        if self.comps.empty:
            return self
        first = self.comps.drop_duplicates("group")
        contexts = train.iloc[first["row"].to_numpy()]
        self.knn = ContextKNN()
        self.knn.fit(contexts.assign(model=catalogue.items[0], model_family=catalogue.family_of[catalogue.items[0]]),
                     catalogue, feature_set, seed)
        self.group_ids = first["group"].to_numpy()
        family = np.array([catalogue.family_of[i] for i in catalogue.items], dtype=object)
        n_groups, n_items = len(first), len(catalogue.items)
        self.item_rel = np.full((n_groups, n_items), np.nan)
        position = {g: p for p, g in enumerate(self.group_ids)}
        for g, item, rel in zip(self.comps["group"], self.comps["item"], self.comps["relevance"]):
            self.item_rel[position[g], catalogue.index(item)] = rel
        families = sorted(set(family))
        self.family_rel = np.full((n_groups, len(families)), np.nan)
        self.family_col = np.array([families.index(f) for f in family])
        for f_index, f in enumerate(families):
            columns = family == f
            block = self.item_rel[:, columns]
            has = ~np.isnan(block).all(axis=1)
            self.family_rel[has, f_index] = np.nanmax(block[has], axis=1)
        return self

    def score(self, test: pd.DataFrame) -> np.ndarray:
        n_items = len(self.catalogue.items)
        if self.knn is None:
            return np.zeros((len(test), n_items))
        from .features import context_frame

        distances = self.knn.distances(context_frame(test))
        out = np.full((len(test), n_items), -1.0)
        for r, row in enumerate(distances):
            nearest = np.argsort(row, kind="stable")
            own = self.item_rel[nearest]
            fam = self.family_rel[nearest][:, self.family_col]
            own_first = np.argmax(~np.isnan(own), axis=0)
            fam_first = np.argmax(~np.isnan(fam), axis=0)
            has_own = ~np.isnan(own).all(axis=0)
            has_fam = ~np.isnan(fam).all(axis=0)
            cols = np.arange(n_items)
            # the item's own result when it was measured on the nearest task of its family; else its family's best
            use_own = has_own & (own_first <= fam_first)
            value = np.where(use_own, own[own_first, cols], fam[fam_first, cols])
            position = np.where(use_own, own_first, fam_first)
            out[r] = np.where(has_fam, value - 1e-4 * position, -1.0)
        return out


# ---------------------------------------------------------------------- methods
def method_factories(names: Optional[Sequence[str]] = None) -> dict[str, Callable[[], object]]:
    from .methods import METHODS
    from .performance import PerformanceRanker

    factories: dict[str, Callable[[], object]] = {RANKER: PerformanceRanker}
    for name in METHODS:
        factories[USAGE_RANKER if name == "transformer" else name] = METHODS[name]
    factories["best_mean_rank"] = BestMeanRank
    factories["family_nearest_task"] = FamilyNearestTask
    if names is None:
        return factories
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; expected some of {', '.join(factories)}")
    return {n: factories[n] for n in names}


def _fit(name: str, factory, train: pd.DataFrame, catalogue: Catalogue, feature_set: str, seed: int,
         comparisons: pd.DataFrame):
    method = factory()
    if name == RANKER or name in COMPARISON_BASELINES:
        return method.fit(train, catalogue, feature_set, seed, comparisons=comparisons)
    usage = usage_rows(train)  # usage methods learn what papers use; a benchmark runs every model by design
    return method.fit(usage.reset_index(drop=True), catalogue, feature_set, seed)


@dataclass
class PerformanceReport:
    n_folds: int
    seeds: list[int]
    feature_set: str
    n_items: int
    values: dict[str, dict[str, list[dict[str, float]]]]  # method -> group key -> per-seed metric dicts
    group_info: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)

    def per_task(self, method: str, metric: str) -> pd.Series:
        """Each task's value averaged over seeds (NaN where the metric does not apply)."""
        data = {key: np.nanmean([v[metric] for v in runs]) if any(np.isfinite(v[metric]) for v in runs) else np.nan
                for key, runs in self.values[method].items()}
        return pd.Series(data, dtype=float).sort_index()

    def mean(self, method: str, metric: str) -> Optional[float]:
        values = self.per_task(method, metric).dropna()
        return float(values.mean()) if len(values) else None

    def seed_std(self, method: str, metric: str) -> Optional[float]:
        means = []
        for s in range(len(self.seeds)):
            values = [runs[s][metric] for runs in self.values[method].values() if len(runs) > s and np.isfinite(runs[s][metric])]
            if values:
                means.append(np.mean(values))
        return float(np.std(means, ddof=1)) if len(means) > 1 else None

    def to_json(self) -> dict:
        methods = list(self.values)
        out = {"n_groups": len(self.group_info), "n_items": int(self.n_items), "objective": "performance",
               "folds": self.n_folds, "seeds": self.seeds, "feature_set": self.feature_set,
               "groups_by_source_kind": pd.Series([g["source_kind"] for g in self.group_info.values()],
                                                  dtype=object).value_counts().to_dict(),
               "n_groups_best@3": int(sum(g["n_items"] > 3 for g in self.group_info.values())),
               "skipped": self.skipped,
               "methods": {m: {k: _round(self.mean(m, k)) for k in PERF_METRICS} for m in methods},
               "seed_std": {m: {k: _round(self.seed_std(m, k)) for k in PERF_METRICS} for m in methods},
               "fit_seconds": {m: round(v, 2) for m, v in self.fit_seconds.items()}}
        if RANKER in self.values and len(methods) > 1:
            out["significance"] = {k: significance(self, k) for k in SIGNIFICANCE_METRICS}
        return out


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def significance(report: PerformanceReport, metric: str, n_boot: int = 2000) -> dict[str, dict]:
    """The ranker against each other method on per-task values (averaged over seeds)."""
    from scipy.stats import wilcoxon

    ours = report.per_task(RANKER, metric)
    results: dict[str, dict] = {}
    rng = np.random.default_rng(0)
    for other in report.values:
        if other == RANKER:
            continue
        theirs = report.per_task(other, metric)
        both = pd.concat([ours, theirs], axis=1, keys=["a", "b"]).dropna()
        diff = (both["a"] - both["b"]).to_numpy()
        nonzero = diff[diff != 0]
        p_value = 1.0
        if len(nonzero):
            p_value = float(wilcoxon(both["a"], both["b"], zero_method="wilcox", alternative="two-sided").pvalue)
        ranks = pd.Series(np.abs(nonzero)).rank().to_numpy()
        rank_biserial = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum()) if len(nonzero) else 0.0
        boot = rng.choice(diff, size=(n_boot, len(diff)), replace=True).mean(axis=1) if len(diff) else np.zeros(1)
        results[other] = {"n_tasks": int(len(diff)), "mean_a": _round(both["a"].mean()), "mean_b": _round(both["b"].mean()),
                          "mean_diff": _round(diff.mean()) if len(diff) else None,
                          "ci95": [_round(np.percentile(boot, 2.5)), _round(np.percentile(boot, 97.5))],
                          "rank_biserial": round(rank_biserial, 4), "p_value": p_value}
    # Holm over the baselines of this metric
    order = sorted(results, key=lambda name: results[name]["p_value"])
    running = 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * results[name]["p_value"]))
        results[name]["p_holm"] = running
    return results


def _score_groups(report: PerformanceReport, factories: dict, train: pd.DataFrame, test: pd.DataFrame,
                  feature_set: str, seed: int, progress: Progress, label: str,
                  test_keys: Optional[pd.Series] = None) -> None:
    from .performance import performance_catalogue

    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    train_groups = comparison_frame(train)
    catalogue = performance_catalogue(train, train_groups)
    train_comparisons = comparison_frame(train, catalogue)
    report.n_items = max(report.n_items, len(catalogue.items))
    every = comparison_frame(test, None, keys=test_keys)
    comps = comparison_frame(test, catalogue, keys=test_keys)
    lost = set(every["group_key"]) - set(comps["group_key"])
    if lost:
        reason = "fewer than 2 of its models in the training catalogue"
        report.skipped[reason] = report.skipped.get(reason, 0) + len(lost)
    if comps.empty:
        return
    first = comps.drop_duplicates("group")
    contexts = test.iloc[first["row"].to_numpy()].reset_index(drop=True)
    blocks = [(key, np.array([catalogue.index(i) for i in b["item"]]), b["score"].to_numpy(float))
              for key, b in comps.groupby("group_key", sort=False)]
    for key, b in comps.groupby("group_key", sort=False):
        report.group_info.setdefault(key, {"source_kind": b["source_kind"].iloc[0], "n_items": int(len(b)),
                                           "task": b["task"].iloc[0], "metric": b["metric"].iloc[0]})
    for name, factory in factories.items():
        if progress:
            progress(f"{label}: {name}")
        started = time.perf_counter()
        method = _fit(name, factory, train, catalogue, feature_set, seed, train_comparisons)
        scores = np.asarray(method.score(contexts), dtype=float)
        report.fit_seconds[name] = report.fit_seconds.get(name, 0.0) + time.perf_counter() - started
        runs = report.values.setdefault(name, {})
        for position, (key, items, measured) in enumerate(blocks):
            runs.setdefault(key, []).append(group_metrics(scores[position], items, measured))


def evaluate_performance(experiments: pd.DataFrame, methods: Optional[Sequence[str]] = None, n_folds: int = 5,
                         seeds: Sequence[int] = (0, 1, 2, 3, 4), feature_set: str = "IV",
                         progress: Progress = None) -> PerformanceReport:
    experiments = experiments.reset_index(drop=True)
    if comparison_frame(experiments).empty:
        raise ValueError("the KB holds no comparison (a paper or benchmark task measuring >= 2 models): "
                         "import some, or evaluate with --objective usage")
    factories = method_factories(methods)
    report = PerformanceReport(n_folds=n_folds, seeds=list(seeds), feature_set=feature_set, n_items=0, values={})
    for s_index, seed in enumerate(seeds):
        for k, (train_pos, test_pos) in enumerate(task_folds(experiments, n_folds, seed)):
            _score_groups(report, factories, experiments.iloc[train_pos], experiments.iloc[test_pos], feature_set,
                          seed * 1000 + k, progress, f"seed {s_index + 1}/{len(seeds)} fold {k + 1}/{n_folds}")
    return report


def evaluate_performance_on_test(train: pd.DataFrame, test: pd.DataFrame, methods: Optional[Sequence[str]] = None,
                                 feature_set: str = "IV", seed: int = 0, progress: Progress = None) -> PerformanceReport:
    """Train on the KB, score on a file's experiments: rows sharing a ref_id (else DOI), dataset and
    class count form one comparison group."""
    factories = method_factories(methods)
    report = PerformanceReport(n_folds=1, seeds=[seed], feature_set=feature_set, n_items=0, values={})
    test = test.reset_index(drop=True)
    ref = test["ref_id"].fillna(test["paper_key"]) if "ref_id" in test else test["paper_key"]
    classes = pd.to_numeric(test.get("n_classes"), errors="coerce").map(lambda v: "?" if pd.isna(v) else str(int(v)))
    keys = ref.astype(str) + " | " + task_keys(test) + " | classes=" + classes
    _score_groups(report, factories, train, test, feature_set, seed, progress, "test", test_keys=keys)
    return report
