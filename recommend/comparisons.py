"""Comparison groups: within one task, the models ordered by what they measured.

This module is the ONE place that reads "who won" out of the KB; the performance ranker, its
evaluation, the baselines that learn from rankings and each pick's explanation all call
`comparison_frame`.

A comparison group is one task under one protocol:
- a literature (or validated) paper that reports >= 2 models on one dataset with one class count:
  key (paper, dataset, n_classes) — the paper's own comparison;
- a benchmark task: key (source, dataset, n_classes, protocol), where the protocol is the
  experiment's `setting` without its hyper-parameters and seed (resolution, training scheme,
  shot count, pretraining source stay: they set rows apart). Rows of a hyper-parameter sweep
  count through their best-on-validation run only when the KB marks one; repeated seeds of one
  model are averaged.

One metric per group, by a fixed rule: the metric measured for the most distinct models of the
group; a tie goes to the earlier of METRIC_PRIORITY (threshold-free and class-balanced metrics
first). Models that fold into one catalogue item (a family label) keep their best score. A group
needs >= 2 items with a score; rank 1 is the best, ties share the better rank; relevance is the
score rescaled to [0, 1] within the group (the best 1, the worst 0): the graded gain of NDCG.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pandas as pd

from ..kb.normalize import name_key
from .catalogue import ABSENT, Catalogue

METRIC_PRIORITY: tuple[str, ...] = ("auc", "balanced_accuracy", "accuracy", "f1")
SOURCE_KIND = "source_kind"
BENCHMARK = "benchmark"
# Column names a KB may use for "this run is the one a sweep selected on validation".
BEST_FLAG_COLUMNS: tuple[str, ...] = ("is_best_on_val", "best_on_validation", "is_best_on_validation", "best_on_val", "selected")
# Parts of a benchmark setting that tell runs of ONE protocol apart, not protocols.
HYPERPARAMETER_KEYS = frozenset({
    "lr", "learning_rate", "wd", "weight_decay", "momentum", "batch_size", "bs", "epochs", "seed", "run",
    "run_id", "dropout", "optimizer", "optimiser", "steps", "last_step", "label", "pathology", "row",
})

COLUMNS = ("group", "group_key", "task", "paper_key", "source_kind", "item", "model", "metric", "score", "rank",
           "relevance", "n_items", "row")


def _map_unique(values: pd.Series, function) -> pd.Series:
    """`values.map(function)` computed once per distinct value (30,000 benchmark rows hold a few hundred)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([function(u) for u in uniques] + [function(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def source_kinds(experiments: pd.DataFrame) -> pd.Series:
    """Each row's source kind; a KB from before source kinds existed holds literature only."""
    if SOURCE_KIND in experiments:
        return experiments[SOURCE_KIND].fillna("literature").astype(str)
    if "origin" in experiments:
        return experiments["origin"].map(lambda o: o if o in ("benchmark", "validated") else "literature").astype(object)
    return pd.Series("literature", index=experiments.index, dtype=object)


# benchmark_runs columns read beside experiments_frame() (kb migration 3): the protocol of each run
BENCHMARK_COLUMNS = {"task": "benchmark_task", "training_scheme": "training_scheme", "resolution": "resolution",
                     "shots": "shots", "pretraining": "pretraining", "seed": "run_seed", "sweep": "sweep",
                     "is_best_on_val": "is_best_on_val", "is_aggregate": "is_aggregate", "label": "benchmark_label"}
# A benchmark task's protocol columns: one that varies WITHIN a model (e.g. ResNet-18 under 14
# pretrainings) sets groups apart; one that only varies between models is a trait of the model.
PROTOCOL_COLUMNS = ("training_scheme", "resolution", "shots", "pretraining", "benchmark_label")


def load_experiments(store) -> pd.DataFrame:
    """`store.experiments_frame()` plus each benchmark row's protocol (benchmark_runs) and a
    `duplicate_fact` flag for rows whose figures the KB links as repeats of another row's (kb
    fact_links): the one function through which the recommender reads the KB."""
    frame = store.experiments_frame()
    if frame.empty:
        return frame
    tables = set(store.frame("SELECT name FROM sqlite_master WHERE type = 'table'")["name"])
    if "benchmark_runs" in tables:
        columns = ", ".join(f"{k} AS {v}" for k, v in BENCHMARK_COLUMNS.items())
        runs = store.frame(f"SELECT experiment_id, {columns} FROM benchmark_runs")
        frame = frame.merge(runs, on="experiment_id", how="left")
    if "fact_links" in tables:
        linked = store.frame("SELECT DISTINCT m.experiment_id FROM fact_links f"
                             " JOIN measurements m ON m.id = f.measurement_id")["experiment_id"]
        frame["duplicate_fact"] = frame["experiment_id"].isin(set(linked))
    return frame


def usage_rows(experiments: pd.DataFrame) -> pd.DataFrame:
    """The rows that say what people USE (literature and our own runs): a benchmark runs every model
    by design, so its rows would teach popularity nothing true."""
    return experiments[source_kinds(experiments) != BENCHMARK]


def protocol_of(setting: object) -> str:
    """A benchmark setting without hyper-parameters and seed
    ("fine_tune@480px, shots=5, lr=0.01, seed=1" -> "fine_tune@480px; shots=5")."""
    if not isinstance(setting, str) or not setting.strip():
        return ""
    kept = []
    for part in re.split(r"[;,|]", setting):
        key = part.split("=", 1)[0].strip().lower() if "=" in part else None
        if part.strip() and key not in HYPERPARAMETER_KEYS:
            kept.append(part.strip())
    return "; ".join(kept)


def task_keys(experiments: pd.DataFrame) -> pd.Series:
    """The task a row belongs to, for leave-tasks-out splits: its dataset (spelling-insensitive), else
    its paper (a row naming no dataset is a task of its own paper)."""
    dataset = experiments["dataset"] if "dataset" in experiments else pd.Series(None, index=experiments.index)
    if "dataset_raw" in experiments:
        dataset = dataset.fillna(experiments["dataset_raw"])
    keys = _map_unique(dataset, lambda v: name_key(v) if isinstance(v, str) and v.strip() else None)
    papers = experiments["paper_key"].astype(str) if "paper_key" in experiments else pd.Series(
        experiments.index.astype(str), index=experiments.index)
    return keys.where(keys.notna() & (keys != ""), "paper:" + papers).astype(str)


def group_keys(experiments: pd.DataFrame) -> pd.Series:
    """The comparison group of each row (see the module docstring)."""
    kinds = source_kinds(experiments)
    papers = experiments["paper_key"].astype(str) if "paper_key" in experiments else pd.Series(
        "paper", index=experiments.index)
    classes = _map_unique(pd.to_numeric(experiments.get("n_classes", pd.Series(np.nan, index=experiments.index)),
                                        errors="coerce"), lambda v: "?" if v is None or pd.isna(v) else str(int(v)))
    keys = papers + " | " + task_keys(experiments) + " | classes=" + classes
    benchmark = kinds == BENCHMARK
    if not benchmark.any():
        return keys
    if "benchmark_task" in experiments:
        bench = experiments[benchmark]
        task = bench["benchmark_task"].fillna(keys[benchmark]).astype(str)
        parts = task.copy()
        for column in PROTOCOL_COLUMNS:
            if column not in bench:
                continue
            values = _map_unique(bench[column], lambda v: "" if v is None or pd.isna(v) else str(v))
            varies = values.groupby([task, bench["model"]]).transform("nunique") > 1
            split_tasks = set(task[varies])
            if split_tasks:
                inside = task.isin(split_tasks)
                parts = parts.where(~inside, parts + f" | {column}=" + values)
        keys = keys.copy()
        keys[benchmark] = parts
    else:
        settings = experiments["setting"] if "setting" in experiments else pd.Series("", index=experiments.index)
        keys = keys.where(~benchmark, keys + " | " + settings.map(protocol_of))
    return keys


def has_comparisons(experiments: pd.DataFrame) -> bool:
    """Whether any group measures >= 2 models (cheap: no ranking, for choosing the default objective)."""
    if experiments.empty or "model" not in experiments:
        return False
    metrics = [m for m in METRIC_PRIORITY if m in experiments]
    if not metrics:
        return False
    scored = experiments[experiments[metrics].notna().any(axis=1)]
    if scored.empty:
        return False
    return bool((scored["model"].groupby(group_keys(scored)).nunique() >= 2).any())


def _best_flag(experiments: pd.DataFrame) -> Optional[pd.Series]:
    for column in BEST_FLAG_COLUMNS:
        if column in experiments:
            values = experiments[column]
            # 1: the run a sweep selected; 0: another run of that sweep; NULL: not part of a sweep
            return _map_unique(values, lambda v: None if v is None or pd.isna(v)
                               else str(v).strip().lower() in ("1", "true", "yes", "1.0"))
    return None


def choose_metric(block: pd.DataFrame, labels: pd.Series) -> Optional[str]:
    """The group's metric: measured for the most distinct items; ties by METRIC_PRIORITY."""
    best, best_count = None, 1
    for metric in METRIC_PRIORITY:
        if metric not in block:
            continue
        count = labels[block[metric].notna()].nunique()
        if count > best_count:
            best, best_count = metric, count
    return best


def comparison_frame(experiments: pd.DataFrame, catalogue: Optional[Catalogue] = None,
                     keys: Optional[pd.Series] = None) -> pd.DataFrame:
    """One row per (group, item) with its score, rank and relevance (columns COLUMNS); `row` is the
    position in `experiments` of the group's context row (the same for every item of a group).

    Items are catalogue items when a catalogue is given (rows whose item it lacks are left out),
    else model names. `keys` overrides the grouping (e.g. rows sharing a ref_id in a test file)."""
    empty = pd.DataFrame(columns=list(COLUMNS))
    if experiments.empty:
        return empty
    frame = experiments.reset_index(drop=True)
    keys = (group_keys(frame) if keys is None else pd.Series(np.asarray(keys), index=frame.index)).astype(str)
    if catalogue is not None:
        targets = catalogue.targets(frame)
        labels = pd.Series([catalogue.items[t] if t != ABSENT else None for t in targets], index=frame.index, dtype=object)
    else:
        labels = frame["model"].astype(str)
    values = frame.reindex(columns=list(METRIC_PRIORITY)).apply(pd.to_numeric, errors="coerce")
    keep = labels.notna() & values.notna().any(axis=1)
    best = _best_flag(frame)
    if best is not None:
        keep &= (best != False).to_numpy()  # noqa: E712 (None = not part of a sweep: kept)
    if "duplicate_fact" in frame:
        keep &= ~frame["duplicate_fact"].eq(True).to_numpy()  # the same published figure twice counts once
    rows = frame.index[keep]
    if not len(rows):
        return empty
    data = pd.DataFrame({"key": keys[rows], "item": labels[rows], "model": frame.loc[rows, "model"].astype(str),
                         "position": rows})
    # the group's metric: measured for the most distinct items, ties by METRIC_PRIORITY
    counts = pd.DataFrame({m: data["item"].where(values.loc[rows, m].notna()).groupby(data["key"]).nunique()
                           for m in METRIC_PRIORITY})
    rank_score = counts.to_numpy() * 100 - np.arange(len(METRIC_PRIORITY))[None, :]
    chosen = pd.Series(np.asarray(METRIC_PRIORITY, dtype=object)[rank_score.argmax(axis=1)], index=counts.index)
    chosen = chosen[counts.max(axis=1) >= 2]
    data = data[data["key"].isin(chosen.index)]
    data["metric"] = data["key"].map(chosen)
    metric_column = data["metric"].map({m: i for i, m in enumerate(METRIC_PRIORITY)}).to_numpy()
    data["score"] = values.loc[data["position"]].to_numpy()[np.arange(len(data)), metric_column]
    data = data[data["score"].notna()]
    if data.empty:
        return empty
    # seeds / repeats of one model averaged, then the best model of each item (a family label folds several)
    per_model = data.groupby(["key", "item", "model"], sort=False).agg(score=("score", "mean"), metric=("metric", "first"))
    per_model = per_model.reset_index()
    best_model = per_model.loc[per_model.groupby(["key", "item"], sort=False)["score"].idxmax()]
    n_items = best_model.groupby("key")["item"].transform("size")
    out = best_model[n_items >= 2].copy()
    if out.empty:
        return empty
    out["n_items"] = out.groupby("key")["item"].transform("size")
    out["rank"] = out.groupby("key")["score"].rank(ascending=False, method="min").astype(int)
    low = out.groupby("key")["score"].transform("min")
    span = out.groupby("key")["score"].transform("max") - low
    out["relevance"] = np.where(span > 0, (out["score"] - low) / span.where(span > 0, 1.0), 1.0)
    context = data.groupby("key")["position"].min()
    out["row"] = out["key"].map(context).astype(np.int64)
    tasks, kinds = task_keys(frame), source_kinds(frame)
    papers = frame["paper_key"].astype(str) if "paper_key" in frame else pd.Series("", index=frame.index)
    out["task"] = tasks.to_numpy()[out["row"].to_numpy()]
    out["paper_key"] = papers.to_numpy()[out["row"].to_numpy()]
    out["source_kind"] = kinds.to_numpy()[out["row"].to_numpy()]
    out = out.rename(columns={"key": "group_key"}).sort_values(["row", "rank", "item"], kind="stable")
    out.insert(0, "group", pd.factorize(out["group_key"])[0])
    return out[list(COLUMNS)].reset_index(drop=True)


def summary(comparisons: pd.DataFrame) -> dict:
    """Counts for reports: groups, items, by source kind and by metric."""
    groups = comparisons.drop_duplicates("group")
    return {"n_groups": int(len(groups)), "n_rows": int(len(comparisons)),
            "by_source_kind": {str(k): int(v) for k, v in groups["source_kind"].value_counts().items()},
            "by_metric": {str(k): int(v) for k, v in groups["metric"].value_counts().items()},
            "items_per_group": {str(k): int(v) for k, v in groups["n_items"].value_counts().sort_index().items()}}
