"""features.py, catalogue.py and methods.py: the contract the ranker and the baselines build on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from recommend_data import synthetic_experiments

from medicalrec.recommend import features as F
from medicalrec.recommend.catalogue import ABSENT, Catalogue
from medicalrec.recommend.methods import METHODS, Method, make, method_names, register


@pytest.fixture(scope="module")
def experiments() -> pd.DataFrame:
    return synthetic_experiments(n_papers=40, seed=3)


def test_feature_sets_are_nested_with_documented_sizes():
    sizes = [len(F.FEATURE_SETS[name]) for name in ("I", "II", "III", "IV")]
    assert sizes == [5, 9, 11, 18]
    for small, big in (("I", "II"), ("II", "III"), ("III", "IV")):
        assert set(F.FEATURE_SETS[small]) < set(F.FEATURE_SETS[big])
    assert F.CATEGORICAL | F.NUMERIC == set(F.FEATURE_SETS["IV"])
    assert not F.CATEGORICAL & F.NUMERIC
    assert "is_proposed" not in F.FEATURE_SETS["IV"]  # describes the model: it would leak the answer


def test_context_frame_flags_missing_and_derives(experiments):
    ctx = F.context_frame(experiments)
    assert list(ctx.index) == list(experiments.index)
    for name in F.ALL_FEATURES:
        assert (ctx[F.missing_column(name)] == ctx[name].isna()).all()
    row = experiments.index[experiments["width"].notna()][0]
    assert ctx.loc[row, "image_pixels"] == experiments.loc[row, "width"] * experiments.loc[row, "height"]
    expected = experiments["n_samples"] / experiments["n_classes"]
    np.testing.assert_allclose(ctx["samples_per_class"], expected)
    # a derived feature is missing whenever one of its inputs is
    assert ctx.loc[experiments["width"].isna(), "image_pixels__missing"].all()
    assert ctx["augmentation"].isna().sum() == experiments["augmentation"].isna().sum()


def test_task_to_frame_accepts_cli_names_and_rejects_unknown_keys():
    ctx = F.task_to_frame({"domain": "Skin Cancer Classification", "modality": "Dermoscopy", "classes": 7,
                           "samples": 10015, "width": 224, "height": 224, "channels": 3, "dataset": None})
    assert ctx.loc[0, "n_classes"] == 7 and ctx.loc[0, "modality"] == "dermoscopy"
    assert ctx.loc[0, "dataset__missing"] and ctx.loc[0, "k_fold__missing"]
    assert ctx.loc[0, "samples_per_class"] == pytest.approx(10015 / 7)
    with pytest.raises(ValueError, match="n_classes"):
        F.task_to_frame({"colour": "red"})


def test_encoder_tokens_reserve_missing_and_unknown(experiments):
    ctx = F.context_frame(experiments)
    encoder = F.FeatureEncoder(F.FEATURE_SETS["IV"], n_buckets=4).fit(ctx)
    tokens = encoder.tokens(ctx)
    assert tokens.dtype == np.int64 and tokens.shape == (len(ctx), 18)
    sizes = np.array(encoder.vocab_sizes())
    assert (tokens < sizes).all() and (tokens >= 0).all()
    missing = ctx[[F.missing_column(f) for f in encoder.features]].to_numpy()
    assert ((tokens == F.MISSING_TOKEN) == missing).all()
    new = F.task_to_frame({"domain": "Never Seen Before", "n_samples": 10**9})
    new_tokens = encoder.tokens(new)[0]
    assert new_tokens[encoder.features.index("domain")] == F.UNKNOWN_TOKEN
    assert new_tokens[encoder.features.index("n_samples")] == F.FIRST_VALUE_TOKEN + 3  # the top bucket


def test_ablation_encoder_has_no_missing_token(experiments):
    ctx = F.context_frame(experiments)
    encoder = F.FeatureEncoder(F.FEATURE_SETS["III"], use_missing_token=False).fit(ctx)
    tokens = encoder.tokens(ctx)
    assert (tokens != F.MISSING_TOKEN).all()
    j = encoder.features.index("augmentation")
    rows = ctx["augmentation"].isna().to_numpy()
    assert (tokens[rows, j] == encoder.fill_token["augmentation"]).all()


def test_dense_uses_indicators_not_means(experiments):
    ctx = F.context_frame(experiments)
    encoder = F.FeatureEncoder(F.FEATURE_SETS["II"]).fit(ctx)
    dense = encoder.dense(ctx)
    names = encoder.dense_names()
    assert dense.dtype == np.float32 and dense.shape == (len(ctx), len(names))
    width = names.index("log1p(width)")
    flag = names.index("width__missing")
    absent = ctx["width"].isna().to_numpy()
    assert (dense[absent, width] == 0).all() and (dense[absent, flag] == 1).all()
    assert (dense[~absent, width] > 0).all() and (dense[~absent, flag] == 0).all()


def test_encoder_round_trips_through_json(experiments):
    ctx = F.context_frame(experiments)
    encoder = F.FeatureEncoder(F.FEATURE_SETS["IV"]).fit(ctx)
    again = F.FeatureEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    np.testing.assert_array_equal(again.tokens(ctx), encoder.tokens(ctx))
    np.testing.assert_array_equal(again.dense(ctx), encoder.dense(ctx))
    assert again.vocab_sizes() == encoder.vocab_sizes()


def test_catalogue_folds_rare_and_bespoke_models(experiments):
    catalogue = Catalogue.build(experiments, min_count=2)
    assert "LesionNet" not in catalogue.items  # bespoke (uncurated) -> family label
    assert catalogue.item_of("LesionNet", "CNN") == "Custom CNN"
    assert catalogue.item_of("MetaVote", "Ensemble") == "Ensemble"
    assert "Custom CNN" in catalogue.items and catalogue.family_of["Custom CNN"] == "CNN"
    assert "EfficientNet-B0" in catalogue.items
    targets = catalogue.targets(experiments)
    assert targets.shape == (len(experiments),) and (targets >= 0).all()
    assert catalogue.items[targets[0]] == catalogue.item_of(experiments["model"][0], experiments["model_family"][0])


def test_catalogue_counts_papers_and_marks_absent_items():
    frame = synthetic_experiments(n_papers=8, seed=1)
    one_paper = frame.assign(model="ResNet-152", model_family="ResNet", model_curated=True, paper_key="p1")
    catalogue = Catalogue.build(one_paper, min_count=2)
    assert catalogue.items == ["ResNet"]  # seen in one paper only: folded despite many rows
    unseen = frame.assign(model="Capsule Network", model_family="Capsule Network")
    assert (catalogue.targets(unseen) == ABSENT).all()
    again = Catalogue.from_dict(json.loads(json.dumps(catalogue.to_dict())))
    assert again.items == catalogue.items and again.item_of("ResNet-152", "ResNet") == "ResNet"


def test_registry_lists_methods_and_accepts_new_ones():
    names = method_names()
    assert "random" in names and "popularity" in names
    assert names.index("random") < names.index("popularity")

    class Constant:
        name = "constant_for_test"

        def fit(self, train, catalogue, feature_set, seed):
            self.n = len(catalogue.items)
            return self

        def score(self, test):
            return np.zeros((len(test), self.n))

    register("constant_for_test")(Constant)
    try:
        method = make("constant_for_test")
        assert isinstance(method, Method)
        assert "constant_for_test" in METHODS
    finally:
        dict.pop(METHODS, "constant_for_test")
    with pytest.raises(KeyError, match="registered"):
        METHODS["no_such_method"]
