"""One evaluation protocol for every recommender method (RecBole's discipline).

- Splits are grouped by paper (`paper_key`): no paper is on both sides of a split.
- The catalogue is rebuilt on each fold's training part only; a test row whose true model folds
  to an item that training never saw still counts, as a miss.
- Ranks break score ties by catalogue order (most used training item first), as a stable sort
  of the recommended list would, so a method cannot gain from ties.
- Metrics come from `METRIC_REGISTRY` (one function per metric, from ranks); mean +/- sample std
  (ddof=1) over folds.
- Pairwise win accuracy: on held-out papers that compare >= 2 models on one dataset, the share of
  model pairs the method orders like the paper's reported results.
- `paired_test`: Wilcoxon signed-rank (two-sided) on the per-experiment (or per-pair) values of
  two methods over the same held-out rows; zero differences are dropped (scipy's "wilcox").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .catalogue import ABSENT, Catalogue
from .features import feature_set as _check_feature_set
from .methods import METHODS, Method, MethodFactory

RANKER = "transformer"
ABLATION = "transformer_no_missing"
WIN_METRICS = ("accuracy", "auc", "f1")  # who won: the first of these that both results report


# --------------------------------------------------------------------------- splits
def balanced_group_folds(groups: np.ndarray, n_folds: int, seed: int = 0,
                         what: str = "groups") -> list[tuple[np.ndarray, np.ndarray]]:
    """(train positions, test positions) per fold, no group on both sides; groups are shuffled
    with `seed`, then dealt largest first to the fold with the fewest rows so folds have similar
    test counts. `what` names the groups in the error (papers, tasks)."""
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    unique, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} {what} cannot fill {n_folds} folds: lower --folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    load = np.zeros(n_folds, dtype=np.int64)
    for group in order:
        fold = int(np.argmin(load))
        fold_of_group[group] = fold
        load[fold] += sizes[group]
    fold_of_row = fold_of_group[inverse]
    positions = np.arange(len(groups))
    return [(positions[fold_of_row != k], positions[fold_of_row == k]) for k in range(n_folds)]


def grouped_folds(experiments: pd.DataFrame, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by paper (see balanced_group_folds)."""
    return balanced_group_folds(experiments["paper_key"].astype(str).to_numpy(), n_folds, seed, "papers")


# --------------------------------------------------------------------------- ranks and metrics
def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each row's target item (ties broken by item order); inf when ABSENT."""
    scores = np.asarray(scores, dtype=float)
    ranks = np.full(len(targets), np.inf)
    rows = np.flatnonzero(targets != ABSENT)
    if rows.size:
        own = scores[rows, targets[rows]][:, None]
        row_scores = scores[rows]
        before = np.arange(scores.shape[1])[None, :] < targets[rows][:, None]
        ranks[rows] = 1 + (row_scores > own).sum(axis=1) + ((row_scores == own) & before).sum(axis=1)
    return ranks


def _hit(k: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda ranks: (ranks <= k).astype(float)


def _ndcg(k: int) -> Callable[[np.ndarray], np.ndarray]:
    # one relevant item, so the ideal DCG is 1
    return lambda ranks: np.where(ranks <= k, 1.0 / np.log2(np.minimum(ranks, k) + 1.0), 0.0)


METRIC_REGISTRY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hit@1": _hit(1), "hit@3": _hit(3), "hit@5": _hit(5), "hit@10": _hit(10),
    "ndcg@10": _ndcg(10), "mrr": lambda ranks: 1.0 / ranks,
}
PAIRWISE = "pairwise_win_acc"
REPORTED_METRICS = tuple(METRIC_REGISTRY) + (PAIRWISE,)


def score_ranks(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-experiment values of every registered metric."""
    return {name: fn(ranks) for name, fn in METRIC_REGISTRY.items()}


# --------------------------------------------------------------------------- who won
def comparison_pairs(test: pd.DataFrame, catalogue: Catalogue) -> list[tuple[int, int, int, int]]:
    """(winner row, loser row, winner item, loser item) positions for every pair of results a held-out
    paper reports on one dataset (same class count) for two different catalogue items."""
    targets = catalogue.targets(test)
    frame = test.reset_index(drop=True)
    keys = pd.DataFrame({
        "paper": frame["paper_key"].astype(str),
        "dataset": frame["dataset"].fillna(frame.get("dataset_raw", pd.Series(index=frame.index))).fillna("").astype(str),
        "classes": frame["n_classes"].fillna(-1) if "n_classes" in frame else -1,
    })
    pairs: list[tuple[int, int, int, int]] = []
    for _, group in keys.groupby(["paper", "dataset", "classes"], sort=False):
        rows = [r for r in group.index if targets[r] != ABSENT]
        if len(rows) < 2:
            continue
        metric = next((m for m in WIN_METRICS if m in frame and frame.loc[rows, m].notna().sum() >= 2), None)
        if metric is None:
            continue
        rows = [r for r in rows if pd.notna(frame.at[r, metric])]
        for a_pos, a in enumerate(rows):
            for b in rows[a_pos + 1:]:
                va, vb = frame.at[a, metric], frame.at[b, metric]
                if targets[a] == targets[b] or va == vb:
                    continue
                win, lose = (a, b) if va > vb else (b, a)
                pairs.append((win, lose, int(targets[win]), int(targets[lose])))
    return pairs


def pairwise_outcomes(scores: np.ndarray, pairs: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """1 when the method scores the winner's item above the loser's (on the winner's context), 0.5 on a tie."""
    if not pairs:
        return np.zeros(0)
    win_rows, _, win_items, lose_items = (np.array(c) for c in zip(*pairs))
    s_win = scores[win_rows, win_items]
    s_lose = scores[win_rows, lose_items]
    return np.where(s_win > s_lose, 1.0, np.where(s_win == s_lose, 0.5, 0.0))


def pairwise_win_accuracy(scores: np.ndarray, test: pd.DataFrame, catalogue: Catalogue) -> tuple[float, int]:
    """(accuracy, number of pairs); accuracy is NaN when the held-out papers compare no two models."""
    outcomes = pairwise_outcomes(scores, comparison_pairs(test, catalogue))
    return (float(outcomes.mean()) if outcomes.size else float("nan")), int(outcomes.size)


# --------------------------------------------------------------------------- report
@dataclass
class MethodResult:
    folds: list[dict[str, float]] = field(default_factory=list)        # metric -> value per fold
    per_experiment: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> value per test row
    pair_outcomes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fit_seconds: float = 0.0

    def mean(self, metric: str) -> float:
        values = np.array([f[metric] for f in self.folds], dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def std(self, metric: str) -> float:
        values = np.array([f[metric] for f in self.folds], dtype=float)
        values = values[np.isfinite(values)]
        return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


@dataclass
class EvaluationReport:
    feature_set: str
    n_folds: int
    seed: int
    n_test: int                    # test rows scored, summed over folds
    n_items: int                   # catalogue size on all the training data
    fold_items: list[int]          # catalogue size per fold
    fold_tests: list[int]
    n_pairs: int
    experiment_ids: np.ndarray     # test row order of every per-experiment array
    methods: dict[str, MethodResult]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        return {name: {m: {"mean": r.mean(m), "std": r.std(m)} for m in REPORTED_METRICS}
                for name, r in self.methods.items()}

    def best_baseline(self, metric: str, exclude: Iterable[str] = (RANKER,)) -> str:
        excluded = set(exclude)
        candidates = {n: r.mean(metric) for n, r in self.methods.items() if n not in excluded}
        if not candidates:
            raise ValueError("no baseline in the report")
        return max(candidates, key=lambda n: (np.nan_to_num(candidates[n], nan=-1.0), n))

    def to_json(self, significance: Sequence[str] = ("hit@5", "ndcg@10")) -> dict:
        """`{"n_test", "n_items", "methods": {name: {metric: mean}}}` plus std, folds and tests."""
        out = {
            "n_test": int(self.n_test), "n_items": int(self.n_items), "feature_set": self.feature_set,
            "folds": self.n_folds, "seed": self.seed, "fold_items": self.fold_items, "fold_tests": self.fold_tests,
            "n_pairs": self.n_pairs,
            "methods": {n: {m: _finite(r.mean(m)) for m in REPORTED_METRICS} for n, r in self.methods.items()},
            "std": {n: {m: _finite(r.std(m)) for m in REPORTED_METRICS} for n, r in self.methods.items()},
            "fit_seconds": {n: round(r.fit_seconds, 3) for n, r in self.methods.items()},
        }
        if RANKER in self.methods and len(self.methods) > 1:
            out["significance"] = {m: paired_test(self, RANKER, self.best_baseline(m), m).to_json()
                                   for m in significance}
            # the ablation counts as a baseline above; this block answers "vs the best classical one"
            classical = set(self.methods) - {RANKER, ABLATION}
            if classical and ABLATION in self.methods:
                out["significance_vs_classical"] = {
                    m: paired_test(self, RANKER, self.best_baseline(m, exclude=(RANKER, ABLATION)), m).to_json()
                    for m in significance}
        return out


def _finite(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


@dataclass
class PairedTest:
    a: str
    b: str
    metric: str
    n: int             # paired values (experiments, or pairs for pairwise_win_acc)
    n_nonzero: int     # pairs whose values differ (what Wilcoxon uses)
    mean_a: float
    mean_b: float
    statistic: float
    p_value: float
    test: str = "wilcoxon signed-rank, two-sided, per held-out experiment"

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "n": self.n, "n_nonzero": self.n_nonzero,
                "mean_a": self.mean_a, "mean_b": self.mean_b, "statistic": self.statistic,
                "p_value": self.p_value, "test": self.test}


def paired_test(report: EvaluationReport, a: str, b: str, metric: str) -> PairedTest:
    """Wilcoxon signed-rank test of method `a` against `b` on the same held-out rows."""
    from scipy.stats import wilcoxon

    ra, rb = report.methods[a], report.methods[b]
    if metric == PAIRWISE:
        va, vb, unit = ra.pair_outcomes, rb.pair_outcomes, "per held-out model pair"
    else:
        va, vb, unit = ra.per_experiment[metric], rb.per_experiment[metric], "per held-out experiment"
    diff = va - vb
    nonzero = int(np.count_nonzero(diff))
    if nonzero == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = wilcoxon(va, vb, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return PairedTest(a=a, b=b, metric=metric, n=len(diff), n_nonzero=nonzero,
                      mean_a=float(np.mean(va)) if len(va) else float("nan"),
                      mean_b=float(np.mean(vb)) if len(vb) else float("nan"),
                      statistic=statistic, p_value=p_value, test=f"wilcoxon signed-rank, two-sided, {unit}")


# --------------------------------------------------------------------------- evaluation
Methods = Union[None, Sequence[str], Mapping[str, MethodFactory]]
Progress = Optional[Callable[[str], None]]


def _factories(methods: Methods) -> dict[str, MethodFactory]:
    if methods is None:
        return {name: METHODS[name] for name in METHODS}
    if isinstance(methods, Mapping):
        return dict(methods)
    return {name: METHODS[name] for name in methods}


def _fit_score(name: str, factory: MethodFactory, train: pd.DataFrame, test: pd.DataFrame,
               catalogue: Catalogue, feature_set: str, seed: int) -> tuple[np.ndarray, float]:
    method: Method = factory()
    started = time.perf_counter()
    method.fit(train, catalogue, feature_set, seed)
    scores = np.asarray(method.score(test), dtype=float)
    elapsed = time.perf_counter() - started
    expected = (len(test), len(catalogue.items))
    if scores.shape != expected:
        raise ValueError(f"method {name!r} returned scores of shape {scores.shape}, expected {expected}")
    return scores, elapsed


def _score_split(results: dict[str, MethodResult], factories: dict[str, MethodFactory], train: pd.DataFrame,
                 test: pd.DataFrame, feature_set: str, seed: int, progress: Progress,
                 label: str) -> tuple[int, int]:
    catalogue = Catalogue.build(train)
    targets = catalogue.targets(test)
    pairs = comparison_pairs(test, catalogue)
    for name, factory in factories.items():
        if progress:
            progress(f"{label}: {name}")
        scores, elapsed = _fit_score(name, factory, train, test, catalogue, feature_set, seed)
        values = score_ranks(target_ranks(scores, targets))
        outcomes = pairwise_outcomes(scores, pairs)
        result = results[name]
        fold = {m: float(v.mean()) if v.size else float("nan") for m, v in values.items()}
        fold[PAIRWISE] = float(outcomes.mean()) if outcomes.size else float("nan")
        result.folds.append(fold)
        for m, v in values.items():
            result.per_experiment[m] = np.concatenate([result.per_experiment.get(m, np.zeros(0)), v])
        result.pair_outcomes = np.concatenate([result.pair_outcomes, outcomes])
        result.fit_seconds += elapsed
    return len(catalogue), len(pairs)


def _require_rows(experiments: pd.DataFrame, what: str) -> None:
    missing = {"paper_key", "model", "model_family"} - set(experiments.columns)
    if experiments.empty or missing:
        raise ValueError(f"{what} has no experiments to evaluate" if experiments.empty
                         else f"{what} lacks columns {sorted(missing)}")


def evaluate(experiments: pd.DataFrame, methods: Methods = None, n_folds: int = 5, feature_set: str = "IV",
             seed: int = 0, progress: Progress = None) -> EvaluationReport:
    """Grouped k-fold cross-validation of `methods` (names, a name -> factory mapping, or None for all)."""
    _check_feature_set(feature_set)
    _require_rows(experiments, "the KB")
    experiments = experiments.reset_index(drop=True)
    factories = _factories(methods)
    results = {name: MethodResult() for name in factories}
    fold_items, fold_tests, ids, n_pairs = [], [], [], 0
    for k, (train_pos, test_pos) in enumerate(grouped_folds(experiments, n_folds, seed)):
        train, test = experiments.iloc[train_pos], experiments.iloc[test_pos]
        n_items, pairs = _score_split(results, factories, train, test, feature_set, seed + k, progress,
                                      f"fold {k + 1}/{n_folds}")
        fold_items.append(n_items)
        fold_tests.append(len(test))
        n_pairs += pairs
        ids.append(_row_ids(test))
    return EvaluationReport(
        feature_set=feature_set, n_folds=n_folds, seed=seed, n_test=sum(fold_tests),
        n_items=len(Catalogue.build(experiments)), fold_items=fold_items, fold_tests=fold_tests,
        n_pairs=n_pairs, experiment_ids=np.concatenate(ids), methods=results)


def evaluate_on_test(train_experiments: pd.DataFrame, test_experiments: pd.DataFrame, methods: Methods = None,
                     feature_set: str = "IV", seed: int = 0, progress: Progress = None) -> EvaluationReport:
    """Train every method on one KB and score it on another set of experiments (one 'fold')."""
    _check_feature_set(feature_set)
    _require_rows(train_experiments, "the training KB")
    _require_rows(test_experiments, "the test file")
    train = train_experiments.reset_index(drop=True)
    test = test_experiments.reset_index(drop=True)
    factories = _factories(methods)
    results = {name: MethodResult() for name in factories}
    n_items, n_pairs = _score_split(results, factories, train, test, feature_set, seed, progress, "test")
    return EvaluationReport(
        feature_set=feature_set, n_folds=1, seed=seed, n_test=len(test), n_items=n_items,
        fold_items=[n_items], fold_tests=[len(test)], n_pairs=n_pairs, experiment_ids=_row_ids(test),
        methods=results)


def _row_ids(frame: pd.DataFrame) -> np.ndarray:
    if "experiment_id" in frame:
        return frame["experiment_id"].to_numpy()
    return frame.index.to_numpy()
