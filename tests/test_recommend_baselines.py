"""baselines.py: the eleven classical baselines, on synthetic data with a known signal and on real
literature rows stored through the KB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from recommend_data import load_literature, synthetic_experiments

from medicalrec.recommend import baselines as B
from medicalrec.recommend import protocol as P
from medicalrec.recommend.catalogue import Catalogue
from medicalrec.recommend.features import context_frame
from medicalrec.recommend.methods import METHODS, make


@pytest.fixture(scope="module")
def experiments() -> pd.DataFrame:
    return synthetic_experiments(n_papers=64, seed=11)


@pytest.fixture(scope="module")
def split(experiments):
    train = experiments[experiments["paper_id"] <= 48]
    test = experiments[experiments["paper_id"] > 48]
    return train, test, Catalogue.build(train)


def test_all_eleven_baselines_are_registered():
    assert len(B.BASELINES) == 11
    for name in B.BASELINES:
        assert name in METHODS
        assert make(name).name == name


@pytest.mark.parametrize("name", B.BASELINES)
def test_baseline_scores_are_finite_and_seeded(name, split):
    train, test, catalogue = split
    first = make(name).fit(train, catalogue, "IV", seed=5).score(test)
    again = make(name).fit(train, catalogue, "IV", seed=5).score(test)
    assert first.shape == (len(test), len(catalogue))
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first, again)


def test_popularity_ranks_the_most_used_item_first(split):
    train, test, catalogue = split
    scores = make("popularity").fit(train, catalogue, "I", 0).score(test)
    counts = np.bincount(catalogue.targets(train), minlength=len(catalogue))
    assert (scores.argmax(axis=1) == counts.argmax()).all()


def test_domain_popularity_follows_the_domain_and_backs_off(split):
    train, test, catalogue = split
    method = make("popularity_domain").fit(train, catalogue, "I", 0)
    skin = test[test["domain"] == "Skin Cancer Classification"]
    assert catalogue.items[method.score(skin)[0].argmax()] == "EfficientNet-B0"
    unknown = skin.assign(domain="Never Seen Classification")
    global_top = make("popularity").fit(train, catalogue, "I", 0).score(unknown).argmax(axis=1)
    assert (method.score(unknown).argmax(axis=1) == global_top).all()


def test_class_buckets_keep_missing_apart():
    assert [B.class_bucket(c) for c in (2, 3, 7, 14, float("nan"))] == ["2", "3-4", "5-9", "10+", "missing"]


def test_knn_distance_treats_shared_silence_as_similarity(split):
    train, _, catalogue = split
    knn = make("knn").fit(train, catalogue, "III", 0)
    probe = train.head(1).copy()
    same = knn.distances(context_frame(probe))[0, 0]
    assert same == pytest.approx(0.0)  # identical context, missing values included
    # a new value where there was another or none costs one feature of eleven either way
    changed = probe.assign(augmentation="maybe-not-seen")
    assert knn.distances(context_frame(changed))[0, 0] == pytest.approx(1 / 11)
    silent = probe.assign(modality=None)
    assert knn.distances(context_frame(silent))[0, 0] == pytest.approx(1 / 11)


@pytest.mark.parametrize("name", ["popularity_domain", "knn", "logistic_regression", "random_forest",
                                  "gradient_boosting", "mlp", "factorization_machine"])
def test_context_baselines_learn_the_synthetic_signal(name, experiments):
    # In the synthetic KB the domain decides the winning model, so context beats chance.
    report = P.evaluate(experiments, [name, "random"], n_folds=4, feature_set="I", seed=0)
    assert report.methods[name].mean("hit@3") > report.methods["random"].mean("hit@3") + 0.15


def test_baselines_run_on_real_literature_rows(kb):
    load_literature(kb, shared_path("data", "literature", "medrec_literature.csv"), limit=160)
    frame = kb.experiments_frame()
    assert frame["paper_key"].nunique() >= 40
    report = P.evaluate(frame, ["popularity", "knn", "random_forest", "factorization_machine"], n_folds=3,
                        feature_set="IV", seed=0)
    assert report.n_test == len(frame)
    for name, result in report.methods.items():
        assert 0.0 <= result.mean("mrr") <= 1.0
        assert result.mean("hit@10") >= result.mean("hit@5") >= result.mean("hit@1")
