"""The performance side of the recommender: comparison groups, the two-objective ranker, picks and
the leave-tasks-out evaluation, on small synthetic data with a planted winner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from recommend_perf_data import DOMAINS, MODELS, comparison_experiments

from medicalrec.recommend.comparisons import (
    choose_metric,
    comparison_frame,
    group_keys,
    has_comparisons,
    protocol_of,
    usage_rows,
)
from medicalrec.recommend.perf_eval import (
    BestMeanRank,
    FamilyNearestTask,
    evaluate_performance,
    group_metrics,
    task_folds,
)
from medicalrec.recommend.performance import PerformanceConfig, PerformanceRanker, performance_catalogue
from medicalrec.recommend.picks import ComparisonIndex, choose_picks, expected_ranks, pareto_front

SMALL = dict(d_model=16, n_layers=1, n_models=1, max_epochs=30, patience=6, threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _row(model, value, **extra):
    base = {"paper_key": "p1", "dataset": "D", "n_classes": 2, "model": model, "model_family": MODELS.get(model, ("CNN",))[0],
            "model_curated": True, "accuracy": np.nan, "auc": np.nan, "f1": np.nan, "balanced_accuracy": np.nan,
            "origin": "import", "setting": ""}
    base.update(extra)
    if "metric" in base:
        base[base.pop("metric")] = value
    else:
        base["accuracy"] = value
    return base


# ---------------------------------------------------------------------- comparison groups
def test_a_paper_comparing_models_is_one_group_ranked_by_score():
    frame = pd.DataFrame([_row("ResNet-18", 0.80), _row("VGG-16", 0.90), _row("DenseNet-121", 0.85),
                          _row("ResNet-50", 0.70, paper_key="p2")])  # p2 measures one model: no comparison
    comps = comparison_frame(frame)
    assert comps["group"].nunique() == 1
    ordered = comps.sort_values("rank")
    assert list(ordered["model"]) == ["VGG-16", "DenseNet-121", "ResNet-18"]
    assert list(ordered["rank"]) == [1, 2, 3]
    assert list(ordered["relevance"]) == pytest.approx([1.0, 0.5, 0.0])
    assert has_comparisons(frame) and not has_comparisons(frame.iloc[[0, 3]])


def test_the_metric_is_the_one_most_models_report_ties_to_auc():
    frame = pd.DataFrame([_row("A", 0.9), _row("B", 0.8), _row("C", 0.7, metric="auc")])
    labels = frame["model"]
    assert choose_metric(frame, labels) == "accuracy"  # 2 models report accuracy, 1 reports auc
    frame.loc[0, "auc"] = 0.5
    assert choose_metric(frame, labels) == "auc"  # 2 and 2: the tie goes to auc
    frame.loc[1, "auc"] = 0.6
    comps = comparison_frame(frame)
    assert set(comps["metric"]) == {"auc"} and comps.loc[comps["rank"] == 1, "model"].item() == "C"


def test_benchmark_rows_keep_the_selected_run_average_seeds_and_drop_duplicates():
    rows = []
    for seed, (a, b) in enumerate([(0.70, 0.80), (0.72, 0.78)]):  # B wins on the mean over seeds
        rows += [_row("A", a, origin="benchmark", benchmark_task="T", run_seed=seed),
                 _row("B", b, origin="benchmark", benchmark_task="T", run_seed=seed)]
    rows.append(_row("C", 0.99, origin="benchmark", benchmark_task="T", is_best_on_val=0))  # not the selected run
    rows.append(_row("C", 0.60, origin="benchmark", benchmark_task="T", is_best_on_val=1))
    rows.append(_row("D", 0.95, origin="benchmark", benchmark_task="T", duplicate_fact=True))
    comps = comparison_frame(pd.DataFrame(rows))
    scores = comps.set_index("model")["score"]
    assert set(scores.index) == {"A", "B", "C"}
    assert scores["A"] == pytest.approx(0.71) and scores["B"] == pytest.approx(0.79) and scores["C"] == pytest.approx(0.60)
    assert comps.set_index("model").loc["B", "rank"] == 1


def test_a_protocol_that_varies_within_a_model_splits_the_benchmark_task():
    rows = [_row(m, v, origin="benchmark", benchmark_task="T", pretraining=p)
            for m, v, p in [("A", 0.8, "imagenet"), ("B", 0.7, "imagenet"), ("A", 0.6, "radimagenet")]]
    # a second task whose models each have their own pretraining: that is a model trait, not a protocol
    rows += [_row(m, v, origin="benchmark", benchmark_task="U", pretraining=p)
             for m, v, p in [("A", 0.8, "x"), ("B", 0.9, "y")]]
    keys = group_keys(pd.DataFrame(rows))
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] == keys[4] == "U"
    assert protocol_of("fine_tune@480px, shots=5, lr=0.01, seed=3") == "fine_tune@480px; shots=5"


def test_usage_rows_leave_benchmarks_out():
    frame = comparison_experiments(n_tasks=6, benchmark_every=3)
    assert set(usage_rows(frame)["source_kind"]) == {"literature"}
    assert len(usage_rows(frame)) < len(frame)


# ---------------------------------------------------------------------- folds and metrics
def test_leave_tasks_out_puts_every_row_of_a_dataset_on_one_side():
    frame = comparison_experiments(n_tasks=20)
    for train, test in task_folds(frame, 4, seed=3):
        assert not set(frame.iloc[train]["dataset"]) & set(frame.iloc[test]["dataset"])
    held = np.concatenate([test for _, test in task_folds(frame, 4, seed=3)])
    assert sorted(held) == list(range(len(frame)))


def test_group_metrics_on_a_hand_made_group():
    measured = np.array([0.9, 0.8, 0.7, 0.6])
    items = np.array([0, 1, 2, 3])
    perfect = group_metrics(np.array([4.0, 3.0, 2.0, 1.0]), items, measured)
    assert perfect == {"best@1": 1.0, "best@3": 1.0, "ndcg@5": pytest.approx(1.0), "kendall_tau": pytest.approx(1.0),
                       "pairwise_win_acc": 1.0}
    reversed_ = group_metrics(np.array([1.0, 2.0, 3.0, 4.0]), items, measured)
    assert reversed_["best@1"] == 0.0 and reversed_["best@3"] == 0.0 and reversed_["pairwise_win_acc"] == 0.0
    assert reversed_["kendall_tau"] == pytest.approx(-1.0)
    ties = group_metrics(np.zeros(4), items, measured)  # ties: catalogue order, half credit per pair
    assert ties["pairwise_win_acc"] == 0.5 and ties["best@1"] == 1.0 and ties["kendall_tau"] == 0.0
    small = group_metrics(np.array([1.0, 2.0]), np.array([0, 1]), np.array([0.9, 0.8]))
    assert np.isnan(small["best@3"])  # trivially 1 with <= 3 items: not counted


def test_the_comparison_baselines_learn_from_training_groups():
    frame = comparison_experiments(n_tasks=24, seed=2)
    catalogue = performance_catalogue(frame)
    mean_rank = BestMeanRank().fit(frame, catalogue, "IV", 0).score(frame.iloc[:1])[0]
    assert mean_rank[catalogue.index("VGG-16")] < mean_rank[catalogue.index("ResNet-18")]
    nearest = FamilyNearestTask().fit(frame, catalogue, "IV", 0)
    skin = frame[frame["domain"] == "Skin Cancer Classification"].iloc[:1]
    scores = nearest.score(skin)[0]
    assert scores[catalogue.index("EfficientNet-B0")] > scores[catalogue.index("VGG-16")]


# ---------------------------------------------------------------------- the ranker
@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    frame = comparison_experiments(n_tasks=45, seed=1, benchmark_every=5)
    test_tasks = set(frame["dataset"].unique()[1::4])
    train = frame[~frame["dataset"].isin(test_tasks)].reset_index(drop=True)
    test = frame[frame["dataset"].isin(test_tasks)].reset_index(drop=True)
    return PerformanceRanker(PerformanceConfig(**SMALL)).fit(train, None, "IV", seed=0), train, test


def test_the_ranker_orders_held_out_tasks_better_than_chance(fitted):
    ranker, _, test = fitted
    comps = comparison_frame(test, ranker.catalogue)
    first = comps.drop_duplicates("group")
    scores = ranker.score(test.iloc[first["row"].to_numpy()])
    accuracies = [group_metrics(scores[i], np.array([ranker.catalogue.index(x) for x in block["item"]]),
                                block["score"].to_numpy())["pairwise_win_acc"]
                  for i, (_, block) in enumerate(comps.groupby("group", sort=True))]
    assert np.nanmean(accuracies) > 0.7  # chance is 0.5; the planted winner is learnable from domain + family


def test_the_winning_family_depends_on_the_task(fitted):
    ranker, _, test = fitted
    catalogue = ranker.catalogue
    architectures = [m for m in catalogue.named_models if MODELS[m][0] not in ("Ensemble", "CNN")]
    right = 0
    for domain, (_, winner) in DOMAINS.items():
        scores = ranker.score(test[test["domain"] == domain].iloc[:1])[0]
        family_best = {}
        for m in architectures:
            family_best[MODELS[m][0]] = max(family_best.get(MODELS[m][0], -np.inf), scores[catalogue.index(m)])
        assert family_best[winner] > family_best["VGG"], domain  # VGG loses everywhere
        right += max(family_best, key=family_best.get) == winner
    assert right >= 2  # the winner changes with the domain: one global favourite would get 1 of 3


def test_benchmark_models_are_items_and_the_checkpoint_round_trips(fitted):
    ranker, train, test = fitted
    assert {"EfficientNet-B3", "VGG-16"} <= ranker.catalogue.named_models
    again = PerformanceRanker.from_state(ranker.state_dict())
    assert np.allclose(again.score(test.iloc[:5]), ranker.score(test.iloc[:5]))
    assert ranker.history["n_groups"] == comparison_frame(train, ranker.catalogue)["group"].nunique()


# ---------------------------------------------------------------------- picks
def test_picks_are_concrete_architectures_with_evidence_and_a_pareto_view(fitted):
    ranker, train, test = fitted
    index = ComparisonIndex(train, ranker.catalogue)
    task = {"domain": "Skin Cancer Classification", "modality": "dermoscopy"}
    scores = ranker.score(test[test["domain"] == task["domain"]].iloc[:1])[0]
    params = ranker.attributes.params_millions
    picks, left = choose_picks(scores, ranker.catalogue, params, index, task, top=10)
    assert picks and all(not p.is_family_label for p in picks)
    assert "LesionNet" not in [p.model for p in picks] and left["family_labels_and_ensembles"] >= 1
    assert picks[0].family == "EfficientNet"
    top = picks[0].evidence
    assert top.scope == "domain" and top.n_tasks > 0 and top.n_best <= top.n_top3 <= top.n_tasks
    assert top.sentence.startswith(f"on {top.n_tasks} similar task")
    assert top.sentence.endswith(f"{picks[0].model} was best in {top.n_best}, top-3 in {top.n_top3}")
    assert [p.expected_rank for p in picks] == sorted(p.expected_rank for p in picks)
    small, left = choose_picks(scores, ranker.catalogue, params, index, task, top=10, max_params=12.0)
    assert small and all(p.params_millions <= 12.0 for p in small) and left["over_max_params"] >= 1
    with_families, _ = choose_picks(scores, ranker.catalogue, params, index, task, top=50, include_families=True)
    assert any(p.is_family_label for p in with_families)


def test_a_pick_without_similar_evidence_says_so(fitted):
    ranker, train, _ = fitted
    index = ComparisonIndex(train[train["model"] != "DenseNet-121"], ranker.catalogue)
    scope, block = index.similar({"domain": "Chest X-ray Classification"})
    evidence = index.evidence(scope, block, "DenseNet-121")
    assert evidence.n_tasks == 0 and evidence.sentence.startswith("no evidence")


def test_expected_ranks_and_the_pareto_front():
    ranks = expected_ranks(np.array([10.0, 0.0, -10.0]))
    assert ranks == pytest.approx([1.0, 2.0, 3.0], abs=1e-3)
    assert pareto_front([5.0, 10.0, 3.0, None], [2.0, 1.0, 3.0, 1.0]) == [True, True, True, False]
    assert pareto_front([5.0, 10.0], [1.0, 2.0]) == [True, False]  # bigger and worse: dominated


# ---------------------------------------------------------------------- evaluation
def test_leave_tasks_out_evaluation_reports_every_method_and_its_significance():
    frame = comparison_experiments(n_tasks=30, seed=4, benchmark_every=4)
    report = evaluate_performance(frame, ["transformer", "popularity", "random", "best_mean_rank", "family_nearest_task"],
                                  n_folds=3, seeds=[0, 1], progress=None)
    out = report.to_json()
    assert out["n_groups"] == comparison_frame(frame)["group"].nunique()
    assert set(out["methods"]) == {"transformer", "popularity", "random", "best_mean_rank", "family_nearest_task"}
    for values in out["methods"].values():
        assert set(values) == {"best@1", "best@3", "ndcg@5", "kendall_tau", "pairwise_win_acc"}
    assert all(len(runs) == 2 for runs in report.values["transformer"].values())  # each task held out once per seed
    test = out["significance"]["pairwise_win_acc"]["random"]
    assert test["ci95"][0] <= test["mean_diff"] <= test["ci95"][1] and 0 <= test["p_value"] <= 1
    assert out["methods"]["transformer"]["pairwise_win_acc"] > out["methods"]["random"]["pairwise_win_acc"]
