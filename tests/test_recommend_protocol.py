"""protocol.py: grouped splits, the metric registry, pairwise wins, evaluation and the paired test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from recommend_data import synthetic_experiments

from medicalrec.recommend import protocol as P
from medicalrec.recommend.catalogue import ABSENT, Catalogue


class Oracle:
    """Reads the true model from the test rows: perfect wherever the catalogue holds the item."""

    name = "oracle"

    def fit(self, train, catalogue, feature_set, seed):
        self.catalogue = catalogue
        return self

    def score(self, test):
        scores = np.zeros((len(test), len(self.catalogue)))
        targets = self.catalogue.targets(test)
        rows = np.flatnonzero(targets != ABSENT)
        scores[rows, targets[rows]] = 1.0
        return scores


class Recorder:
    """Remembers what the protocol handed it, and scores uniformly at random."""

    calls: list = []

    def __init__(self):
        self.name = "recorder"

    def fit(self, train, catalogue, feature_set, seed):
        self.catalogue = catalogue
        self.train_papers = set(train["paper_key"])
        self.seed = seed
        self.feature_set = feature_set
        return self

    def score(self, test):
        Recorder.calls.append((self.train_papers, set(test["paper_key"]), self.catalogue, test, self.seed,
                               self.feature_set))
        return np.random.default_rng(self.seed).random((len(test), len(self.catalogue)))


@pytest.fixture(scope="module")
def experiments() -> pd.DataFrame:
    return synthetic_experiments(n_papers=50, seed=7)


def test_grouped_folds_partition_rows_by_paper(experiments):
    folds = P.grouped_folds(experiments, 5, seed=1)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(experiments)))
    papers = experiments["paper_key"].to_numpy()
    for train, test in folds:
        assert not set(papers[train]) & set(papers[test])
        assert len(train) + len(test) == len(experiments)
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= experiments.groupby("paper_key").size().max()
    again = P.grouped_folds(experiments, 5, seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = P.grouped_folds(experiments, 5, seed=2)
    assert any(set(a[1]) != set(b[1]) for a, b in zip(folds, other))
    with pytest.raises(ValueError, match="folds"):
        P.grouped_folds(experiments.head(3), 5)


def test_ranks_break_ties_by_catalogue_order_and_absent_is_a_miss():
    scores = np.array([[0.1, 0.5, 0.5, 0.2],
                       [0.3, 0.3, 0.3, 0.3],
                       [0.9, 0.0, 0.0, 0.0]])
    ranks = P.target_ranks(scores, np.array([2, 3, ABSENT]))
    assert ranks[0] == 2  # item 1 ties and comes first
    assert ranks[1] == 4
    assert math.isinf(ranks[2])
    values = P.score_ranks(np.array([1.0, 3.0, 11.0, np.inf]))
    np.testing.assert_allclose(values["hit@1"], [1, 0, 0, 0])
    np.testing.assert_allclose(values["hit@3"], [1, 1, 0, 0])
    np.testing.assert_allclose(values["hit@10"], [1, 1, 0, 0])
    np.testing.assert_allclose(values["ndcg@10"], [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(values["mrr"], [1.0, 1 / 3, 1 / 11, 0.0])


def _comparison_frame() -> pd.DataFrame:
    rows = [
        # paper a compares three models on one dataset (accuracy)
        ("a", "D1", 2, "VGG-16", "VGG", 0.90, np.nan),
        ("a", "D1", 2, "ResNet-50", "ResNet", 0.80, np.nan),
        ("a", "D1", 2, "LesionNet", "CNN", 0.85, np.nan),
        # paper b only reports AUC
        ("b", "D2", 3, "VGG-16", "VGG", np.nan, 0.70),
        ("b", "D2", 3, "ResNet-50", "ResNet", np.nan, 0.75),
        # paper c: two datasets, one model each -> no comparison
        ("c", "D1", 2, "VGG-16", "VGG", 0.9, np.nan),
        ("c", "D3", 2, "ResNet-50", "ResNet", 0.7, np.nan),
    ]
    frame = pd.DataFrame(rows, columns=["paper_key", "dataset", "n_classes", "model", "model_family", "accuracy", "auc"])
    frame["model_curated"] = frame["model"] != "LesionNet"
    frame["f1"] = np.nan
    return frame


def test_pairwise_pairs_follow_reported_results():
    frame = _comparison_frame()
    catalogue = Catalogue(items=["VGG-16", "ResNet-50", "Custom CNN"],
                          family_of={"VGG-16": "VGG", "ResNet-50": "ResNet", "Custom CNN": "CNN"})
    pairs = P.comparison_pairs(frame, catalogue)
    assert len(pairs) == 4  # 3 in paper a, 1 in paper b (auc), none in paper c
    assert (0, 1, 0, 1) in pairs and (4, 3, 1, 0) in pairs
    prefers_vgg = np.tile([3.0, 1.0, 2.0], (len(frame), 1))
    accuracy, n = P.pairwise_win_accuracy(prefers_vgg, frame, catalogue)
    assert n == 4 and accuracy == pytest.approx(3 / 4)  # wrong only on paper b, where ResNet won
    tied = np.ones((len(frame), 3))
    assert P.pairwise_win_accuracy(tied, frame, catalogue)[0] == pytest.approx(0.5)
    nothing = P.pairwise_win_accuracy(prefers_vgg, frame[frame["paper_key"] == "c"], catalogue)
    assert math.isnan(nothing[0]) and nothing[1] == 0


def test_evaluate_builds_the_catalogue_on_training_papers_only(experiments):
    Recorder.calls = []
    report = P.evaluate(experiments, {"recorder": Recorder, "oracle": Oracle}, n_folds=4, feature_set="II", seed=3)
    recorded = Recorder.calls
    assert len(recorded) == 4
    for train_papers, test_papers, catalogue, test, seed, feature_set in recorded:
        assert not train_papers & test_papers
        assert feature_set == "II"
        train = experiments[experiments["paper_key"].isin(train_papers)]
        assert catalogue.items == Catalogue.build(train).items
    assert sorted(c[4] for c in recorded) == [3, 4, 5, 6]
    assert report.n_test == len(experiments) == len(report.experiment_ids)
    assert sorted(report.experiment_ids) == sorted(experiments["experiment_id"])
    assert report.fold_items == [len(c[2]) for c in recorded]
    # The oracle misses exactly the rows whose item the fold's training catalogue lacks.
    absent = sum(int((c[2].targets(c[3]) == ABSENT).sum()) for c in recorded)
    oracle = report.methods["oracle"]
    assert oracle.per_experiment["hit@1"].sum() == len(experiments) - absent
    assert oracle.mean("pairwise_win_acc") == pytest.approx(1.0)
    assert oracle.mean("mrr") > report.methods["recorder"].mean("mrr")
    summary = report.summary()
    assert set(summary["oracle"]) == set(P.REPORTED_METRICS)
    assert summary["oracle"]["hit@1"]["std"] >= 0.0


def test_paired_test_separates_a_real_difference_from_none(experiments):
    report = P.evaluate(experiments, {"transformer": Oracle, "recorder": Recorder}, n_folds=3, seed=0)
    strong = P.paired_test(report, "transformer", "recorder", "ndcg@10")
    assert strong.p_value < 0.001 and strong.mean_a > strong.mean_b
    assert strong.n == len(experiments)
    same = P.paired_test(report, "recorder", "recorder", "hit@5")
    assert same.p_value == 1.0 and same.n_nonzero == 0
    wins = P.paired_test(report, "transformer", "recorder", P.PAIRWISE)
    assert wins.n == report.n_pairs > 0
    assert report.best_baseline("ndcg@10") == "recorder"
    out = report.to_json()
    assert out["n_test"] == len(experiments) and out["n_items"] == len(Catalogue.build(experiments))
    assert set(out["methods"]) == {"transformer", "recorder"}
    assert set(out["methods"]["transformer"]) >= {"hit@1", "hit@3", "hit@5", "hit@10", "ndcg@10", "mrr"}
    assert out["significance"]["ndcg@10"]["b"] == "recorder"
    assert "significance_vs_classical" not in out  # no ablation in this report


def test_ablation_counts_as_a_baseline_but_classical_is_reported_too(experiments):
    methods = {"transformer": Recorder, "transformer_no_missing": Oracle, "recorder": Recorder}
    out = P.evaluate(experiments, methods, n_folds=3, seed=0).to_json()
    assert out["significance"]["hit@5"]["b"] == "transformer_no_missing"
    assert out["significance_vs_classical"]["hit@5"]["b"] == "recorder"
    assert out["significance_vs_classical"]["hit@5"]["p_value"] == 1.0  # the same scores


def test_evaluate_on_test_scores_a_separate_file(experiments):
    train = experiments[experiments["paper_id"] <= 35]
    test = experiments[experiments["paper_id"] > 35]
    report = P.evaluate_on_test(train, test, {"oracle": Oracle}, feature_set="I")
    assert report.n_test == len(test) and report.n_folds == 1
    assert report.n_items == len(Catalogue.build(train))
    expected = (Catalogue.build(train).targets(test) != ABSENT).mean()
    assert report.methods["oracle"].mean("hit@1") == pytest.approx(expected)


def test_bad_inputs_are_refused(experiments):
    with pytest.raises(ValueError, match="feature set"):
        P.evaluate(experiments, {"oracle": Oracle}, feature_set="V")
    with pytest.raises(ValueError, match="no experiments"):
        P.evaluate(experiments.head(0), {"oracle": Oracle})

    class WrongShape(Oracle):
        def score(self, test):
            return np.zeros((len(test), 1))

    with pytest.raises(ValueError, match="shape"):
        P.evaluate(experiments, {"wrong": WrongShape}, n_folds=2)
