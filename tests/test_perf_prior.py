"""The performance ranker's mean-rank prior: computed from the training groups only, a fixed offset the
network learns residuals over, shrunk toward the family for items with little evidence, and kept by
checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recommend_perf_data import comparison_experiments

from medicalrec.recommend.comparisons import comparison_frame
from medicalrec.recommend.perf_eval import BestMeanRank
from medicalrec.recommend.performance import PerformanceConfig, PerformanceRanker, performance_catalogue

SMALL = dict(d_model=16, n_layers=1, n_models=2, max_epochs=12, min_epochs=4, patience=3, threads=1)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    frame = comparison_experiments(n_tasks=30, seed=4, benchmark_every=5)
    catalogue = performance_catalogue(frame)
    return frame, catalogue


@pytest.fixture(scope="module")
def fitted(data):
    torch.set_num_threads(1)
    frame, catalogue = data
    return PerformanceRanker(PerformanceConfig(**SMALL)).fit(frame, catalogue, "IV", seed=0)


def test_the_prior_orders_compared_items_as_best_mean_rank_does(data, fitted):
    frame, catalogue = data
    baseline = BestMeanRank().fit(frame, catalogue, "IV", 0).values
    compared = [catalogue.index(i) for i in comparison_frame(frame, catalogue)["item"].unique()]
    prior = fitted.rank_prior[compared]
    # shrinkage moves items toward their family, but the best and the worst stay where the baseline puts them
    assert np.argmax(prior) == np.argmax(baseline[compared])
    assert np.argmin(prior) == np.argmin(baseline[compared])
    assert np.corrcoef(prior, baseline[compared])[0, 1] > 0.8


def test_the_prior_is_a_fixed_offset_of_every_member(fitted):
    for net in fitted.nets:
        assert "rank_prior" not in dict(net.named_parameters())  # a buffer: the optimiser never moves it
        assert np.allclose(net.rank_prior.numpy(), fitted.rank_prior, atol=1e-6)
    assert len(fitted.nets) == 2 and len(fitted.history["best_epochs"]) == 2


def test_an_item_with_little_evidence_is_shrunk_toward_its_family(data):
    frame, catalogue = data
    ranker = PerformanceRanker(PerformanceConfig(**SMALL, prior_strength=0.0))
    ranker.catalogue, ranker.attributes = catalogue, None
    from medicalrec.recommend.performance import ItemAttributes, group_tensors
    from medicalrec.recommend.comparisons import task_keys

    ranker.attributes = ItemAttributes.build(frame, catalogue, 4)
    comps = comparison_frame(frame, catalogue)
    tokens = np.zeros((len(frame), 1), dtype=np.int64)
    groups = group_tensors(comps, tokens, catalogue, task_keys(frame))
    # keep one group only: its items have one comparison each, so shrinkage must pull them together
    one = np.zeros(len(groups), bool)
    one[int(np.argmax(groups.mask.sum(axis=1)))] = True
    raw = ranker._quality_prior(groups, one)
    ranker.config = PerformanceConfig(**SMALL, prior_strength=4.0)
    shrunk = ranker._quality_prior(groups, one)
    measured = groups.items[one][groups.mask[one]]
    assert np.ptp(shrunk[measured]) < np.ptp(raw[measured])
    assert np.ptp(raw[measured]) == pytest.approx(PerformanceConfig().quality_scale)  # best vs worst, unshrunk


def test_checkpoints_keep_the_prior_and_old_ones_still_load(data, fitted):
    frame, _ = data
    state = fitted.state_dict()
    again = PerformanceRanker.from_state(state)
    assert np.allclose(again.score(frame.iloc[:4]), fitted.score(frame.iloc[:4]))
    # a checkpoint from before the prior: no rank_prior buffer; it loads with a zero offset
    old = {k: v for k, v in state.items() if k != "rank_prior"}
    old["weights"] = [{k: v for k, v in w.items() if k != "rank_prior"} for w in state["weights"]]
    legacy = PerformanceRanker.from_state(old)
    assert all(float(net.rank_prior.abs().sum()) == 0.0 for net in legacy.nets)
    assert legacy.rank_prior is None
    assert legacy.score(frame.iloc[:2]).shape == (2, len(fitted.catalogue.items))
