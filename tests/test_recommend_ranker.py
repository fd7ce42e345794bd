"""The transformer ranker: learning, determinism, the who-won signal, the missing token, checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from recommend_data import synthetic_experiments

from medicalrec.recommend.catalogue import Catalogue
from medicalrec.recommend.features import FeatureEncoder, context_frame
from medicalrec.recommend.methods import METHODS, make
from medicalrec.recommend.ranker import (
    RankerConfig,
    TransformerRanker,
    TransformerRankerNoMissing,
    win_triples,
)

SMALL = dict(d_model=16, max_epochs=40, patience=8, threads=1, batch_size=32, n_models=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split():
    frame = synthetic_experiments(n_papers=80, seed=11)
    papers = frame["paper_key"].unique()
    test_papers = set(papers[::5])  # every domain keeps training papers
    test = frame[frame["paper_key"].isin(test_papers)].reset_index(drop=True)
    train = frame[~frame["paper_key"].isin(test_papers)].reset_index(drop=True)
    return train, test


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    torch.set_num_threads(1)
    catalogue = Catalogue.build(train)
    return TransformerRanker(RankerConfig(**SMALL)).fit(train, catalogue, "IV", seed=0)


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    own = scores[np.arange(len(targets)), targets]
    return 1 + (scores > own[:, None]).sum(axis=1)


def test_both_variants_are_registered_methods():
    assert isinstance(make("transformer"), TransformerRanker)
    assert isinstance(make("transformer_no_missing"), TransformerRankerNoMissing)
    assert "transformer" in METHODS and "transformer_no_missing" in METHODS


def test_scores_have_one_finite_column_per_item(fitted, split):
    _, test = split
    scores = fitted.score(test)
    assert scores.shape == (len(test), len(fitted.catalogue.items))
    assert np.isfinite(scores).all()


def test_learns_the_domain_signal_better_than_global_popularity(fitted, split):
    train, test = split
    catalogue = fitted.catalogue
    targets = catalogue.targets(test)
    known = targets >= 0
    ranks = _ranks(fitted.score(test)[known], targets[known])
    popularity = np.bincount(catalogue.targets(train), minlength=len(catalogue.items)).astype(float)
    popular_ranks = _ranks(np.tile(popularity, (known.sum(), 1)), targets[known])
    assert np.mean(1 / ranks) > np.mean(1 / popular_ranks) + 0.05


def test_same_seed_same_scores_other_seed_other_scores(split, fitted):
    train, test = split
    again = TransformerRanker(RankerConfig(**SMALL)).fit(train, fitted.catalogue, "IV", seed=0)
    np.testing.assert_allclose(again.score(test), fitted.score(test), rtol=1e-5, atol=1e-6)
    other = TransformerRanker(RankerConfig(**SMALL)).fit(train, fitted.catalogue, "IV", seed=1)
    assert not np.allclose(other.score(test), fitted.score(test))


def test_state_round_trip_scores_identically(fitted, split):
    _, test = split
    restored = TransformerRanker.from_state(fitted.state_dict())
    np.testing.assert_allclose(restored.score(test), fitted.score(test), rtol=1e-6)
    assert restored.catalogue.items == fitted.catalogue.items and restored.feature_set == "IV"


def test_win_triples_follow_reported_accuracy_within_one_paper_and_dataset():
    frame = pd.DataFrame({
        "paper_key": ["p1", "p1", "p1", "p2", "p2", "p3", "p4", "p4"],
        "dataset": ["D", "D", "E", "D", "D", "D", "D", "D"],
        "n_classes": [2, 2, 2, 3, 3, 2, 2, 2],
        "model": ["A", "B", "C", "A", "B", "B", "C", "A"],
        "model_family": ["CNN"] * 8,
        "model_curated": [True] * 8,
        "accuracy": [0.90, 0.80, 0.99, np.nan, np.nan, 0.5, 0.7, 0.6],
        "auc": [np.nan, np.nan, np.nan, 0.7, 0.9, np.nan, np.nan, np.nan],
        "f1": [np.nan] * 8,
    })
    catalogue = Catalogue.build(frame)
    a, b, c = (catalogue.index(m) for m in "ABC")
    triples = {tuple(t) for t in win_triples(frame, catalogue)}
    # p1/D: A (0.90) beat B; p2/D is decided by AUC (B); p4/D: C beat A; p1/E and p3 stand alone
    assert triples == {(0, a, b), (4, b, a), (6, c, a)}


def test_who_won_term_moves_the_winner_above_a_more_popular_loser():
    rows = []
    for p in range(30):  # every comparison: "Winner" beats "Loser" on the same task
        for model, acc in (("Winner", 0.95), ("Loser", 0.85)):
            rows.append({"paper_key": f"c{p}", "dataset": "D", "n_classes": 2, "model": model, "model_family": "CNN",
                         "model_curated": True, "domain": "Skin", "modality": "dermoscopy", "accuracy": acc})
    for p in range(20):  # "Loser" is also used alone, so it is the more popular choice
        rows.append({"paper_key": f"s{p}", "dataset": "D", "n_classes": 2, "model": "Loser", "model_family": "CNN",
                     "model_curated": True, "domain": "Skin", "modality": "dermoscopy", "accuracy": 0.8})
    frame = pd.DataFrame(rows)
    catalogue = Catalogue.build(frame)
    winner, loser = catalogue.index("Winner"), catalogue.index("Loser")
    margins = {}
    for weight in (0.0, 2.0):
        config = RankerConfig(**{**SMALL, "win_weight": weight, "family_score_weight": 0.0})
        scores = TransformerRanker(config).fit(frame, catalogue, "I", seed=0).score(frame.iloc[:1])
        margins[weight] = scores[0, winner] - scores[0, loser]
    assert margins[0.0] < 0 < margins[2.0]


def test_missing_token_is_a_value_and_the_ablation_has_none(split):
    train, test = split
    catalogue = Catalogue.build(train)
    ablation = TransformerRankerNoMissing(RankerConfig(**SMALL)).fit(train, catalogue, "IV", seed=0)
    ctx = context_frame(test)
    assert (ablation.encoder.tokens(ctx) != 0).all()
    encoder = FeatureEncoder(ablation.encoder.features).fit(context_frame(train))
    assert (encoder.tokens(ctx) == 0).any()  # the same test rows do have missing values


def test_missing_and_present_values_score_differently(fitted, split):
    _, test = split
    row = test.iloc[[0]].copy()
    blank = row.copy()
    blank[["n_samples", "width", "height", "channels"]] = np.nan
    assert not np.allclose(fitted.score(row), fitted.score(blank))


def test_training_respects_the_thread_cap(split):
    train, _ = split
    torch.set_num_threads(1)
    TransformerRanker(RankerConfig(**{**SMALL, "max_epochs": 2, "threads": 2})).fit(
        train, Catalogue.build(train), "I", seed=0)
    assert torch.get_num_threads() == 1  # restored after training


def test_the_default_ensemble_averages_its_members(split):
    train, test = split
    catalogue = Catalogue.build(train)
    config = RankerConfig()
    assert config.n_models > 1  # the tuned default is an ensemble of seeds
    ensemble = TransformerRanker(RankerConfig(**{**config.to_dict(), "max_epochs": 15})).fit(train, catalogue, "IV", 0)
    assert len(ensemble.nets) == config.n_models
    state = ensemble.state_dict()
    assert len(state["weights"]) == config.n_models
    members = []
    for weights in state["weights"]:
        single = TransformerRanker.from_state({**state, "weights": [weights]})
        members.append(single.score(test))
    np.testing.assert_allclose(ensemble.score(test), np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(members[0], members[1])  # members differ (own seeds and inner splits)
