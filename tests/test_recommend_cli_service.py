"""The service behind `medicalrec recommend`: checkpoints, the fingerprint cache, task checks,
evidence and coverage, and `recommend_for_task` (what the validate stage calls)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from recommend_data import synthetic_experiments
from recommend_kb import store_frame

from medicalrec.errors import UserError
from medicalrec.kb import KnowledgeBase
from medicalrec.recommend import ranker, service
from medicalrec.recommend.catalogue import Catalogue
from medicalrec.recommend.evidence import LOW_COVERAGE, EvidenceIndex
from medicalrec.recommend.task import normalise_task


@pytest.fixture(scope="module", autouse=True)
def small_ranker():
    """One small model instead of the default ensemble (the plumbing is under test here)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(ranker, "DEFAULT_CONFIG", ranker.RankerConfig(n_models=1, max_epochs=40, patience=8))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "service-cache"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    kb = KnowledgeBase.open(tmp_path_factory.mktemp("svc") / "kb.db", write=True)
    store_frame(kb, synthetic_experiments(n_papers=40, seed=2))
    return kb


@pytest.fixture(scope="module")
def checkpoint(store):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return service.train_checkpoint(store, folds=0)
    finally:
        torch.set_num_threads(previous)


TASK = {"domain": "Brain Tumour Classification", "modality": "mri", "n_classes": 3, "n_samples": 3000}


def test_recommend_for_task_returns_ranked_recommendations(store):
    recs = service.recommend_for_task(store, TASK, top=3)
    assert len(recs) == 3
    assert all(isinstance(r, service.Recommendation) for r in recs)
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-9
    catalogue = Catalogue.build(store.experiments_frame())
    for r in recs:
        assert r.family == catalogue.family_of[r.model]
        assert r.evidence.n_experiments >= 0
    assert recs[0].model == "VGG-16"  # the synthetic brain-tumour papers' favourite


def test_checkpoint_round_trip_keeps_everything_needed(checkpoint, store, tmp_path):
    path = checkpoint.save(tmp_path / "ranker.pt")
    loaded = service.Checkpoint.load(path)
    assert loaded.kb_fingerprint == store.fingerprint() == checkpoint.kb_fingerprint
    assert loaded.feature_set == "IV" and loaded.catalogue.items == checkpoint.catalogue.items
    assert loaded.ranker.encoder.to_dict() == checkpoint.ranker.encoder.to_dict()
    assert loaded.evaluation["inner_validation"] == checkpoint.evaluation["inner_validation"]
    frame = store.experiments_frame()
    np.testing.assert_allclose(loaded.ranker.score(frame), checkpoint.ranker.score(frame), rtol=1e-6)
    # plain torch can read it without unpickling code
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    assert header["ranker"]["feature_set"] == "IV" and header["kb_fingerprint"] == store.fingerprint()


def test_cache_is_keyed_by_the_kb_fingerprint(tmp_path):
    kb = KnowledgeBase.open(tmp_path / "kb.db", write=True)
    store_frame(kb, synthetic_experiments(n_papers=24, seed=4))
    _, first = service.load_or_train(kb)
    _, second = service.load_or_train(kb)
    assert (first, second) == ("trained", "cache")
    store_frame(kb, synthetic_experiments(n_papers=26, seed=4).iloc[-3:])  # new papers: new fingerprint
    checkpoint, third = service.load_or_train(kb)
    assert third == "trained" and checkpoint.kb_fingerprint == kb.fingerprint()


def test_a_model_from_another_kb_state_is_used_with_a_note(checkpoint, tmp_path):
    path = checkpoint.save(tmp_path / "old.pt")
    other = KnowledgeBase.open(tmp_path / "other.db", write=True)
    store_frame(other, synthetic_experiments(n_papers=12, seed=9))
    notes = []
    loaded, source = service.load_or_train(other, model_path=str(path), progress=notes.append)
    assert source == "file" and loaded.kb_fingerprint == checkpoint.kb_fingerprint
    assert any("another KB state" in n for n in notes)


def test_task_checks_name_the_flag():
    frame = pd.DataFrame({"domain": ["Skin Cancer Classification", "Brain Tumour Classification"],
                          "modality": ["dermoscopy", "MRI"], "dataset": ["HAM10000", "BraTS"]})
    with pytest.raises(UserError, match="--domain.*Brain Tumour Classification, Skin Cancer Classification"):
        normalise_task({"domain": "Lung"}, frame)
    with pytest.raises(UserError, match="--channels"):
        normalise_task({"domain": "Skin Cancer Classification", "channels": 2.5}, frame)
    with pytest.raises(UserError, match="unknown task field 'colour'"):
        normalise_task({"colour": "red"}, frame)
    # a dataset alias resolves, and fills the domain and modality the KB has for it
    clean = normalise_task({"dataset": "HAM 10000", "classes": "7"}, frame, {"ham10000": "HAM10000"})
    assert clean["dataset"] == "HAM10000" and clean["domain"] == "Skin Cancer Classification"
    assert clean["modality"] == "dermoscopy" and clean["n_classes"] == 7 and "year" in clean


def test_an_unknown_dataset_is_kept_as_an_unseen_value():
    frame = pd.DataFrame({"domain": ["Skin Cancer Classification"], "modality": ["dermoscopy"], "dataset": ["HAM10000"]})
    clean = normalise_task({"dataset": "My private set", "domain": "skin cancer classification"}, frame)
    assert clean["dataset"] == "My private set" and clean["domain"] == "Skin Cancer Classification"


def _evidence_frame() -> pd.DataFrame:
    rows = [("Skin", "dermoscopy", "ResNet-50", "ResNet", 0.91, "10.1/a", 25.6),
            ("Skin", "dermoscopy", "ResNet-50", "ResNet", 0.95, "10.1/b", 25.6),
            ("Skin", "dermoscopy", "ResNet-50", "ResNet", np.nan, None, 25.6),
            ("Skin", "dermoscopy", "ResNet-50", "ResNet", 0.85, "10.1/a", 25.6),
            ("Skin", "dermoscopy", "LesionNet", "CNN", 0.97, "10.1/c", np.nan),
            ("Skin", "dermoscopy", "AlexNet", "CNN", 0.80, "10.1/f", 61.1),
            ("Eye", "fundus", "ResNet-50", "ResNet", 0.60, "10.1/d", 25.6),
            ("Eye", "fundus", "LesionNet", "CNN", 0.70, "10.1/e", np.nan)]
    frame = pd.DataFrame(rows, columns=["domain", "modality", "model", "model_family", "accuracy", "doi",
                                        "params_millions"])
    frame["source_url"] = [f"https://example.org/{i}" for i in range(len(frame))]
    frame["paper_key"] = frame["doi"].fillna("p-nodoi")
    frame["model_curated"] = frame["model"] != "LesionNet"
    frame.loc[len(frame)] = {**frame.iloc[-1].to_dict(), "model": "Custom CNN", "doi": "10.1/g", "accuracy": 0.75,
                             "model_curated": True, "params_millions": np.nan, "paper_key": "10.1/g"}
    return frame


def test_evidence_counts_similar_tasks_and_cites_the_best_results_first():
    frame = _evidence_frame()
    # "Custom CNN" is both a curated name and the fold label of rare CNNs (here LesionNet, AlexNet)
    catalogue = Catalogue(items=["ResNet-50", "Custom CNN"], family_of={"ResNet-50": "ResNet", "Custom CNN": "CNN"},
                          named_models={"ResNet-50", "Custom CNN"})
    index = EvidenceIndex(frame, catalogue)
    similar, coverage = index.similar({"domain": "Skin"})
    assert coverage.scope == "domain" and coverage.n_similar == 6
    resnet = index.evidence(similar, "ResNet-50")
    assert resnet.n_experiments == 4
    assert resnet.median_accuracy == pytest.approx(0.91)  # median of the reported 0.85, 0.91, 0.95
    assert resnet.references == ["https://doi.org/10.1/b", "https://doi.org/10.1/a", "https://example.org/2"]
    assert resnet.params_millions == pytest.approx(25.6)
    custom = index.evidence(similar, "Custom CNN")  # bespoke and rare models fold into the family label
    assert custom.n_experiments == 2  # LesionNet and AlexNet; the "Custom CNN" row is an Eye task
    assert custom.params_millions is None  # AlexNet's 61.1 M is not a custom CNN's size
    assert coverage.warning and "low coverage" in coverage.warning and LOW_COVERAGE > 5


def test_coverage_falls_back_to_modality_then_the_whole_kb():
    index = EvidenceIndex(_evidence_frame(), Catalogue(items=["ResNet-50"], family_of={"ResNet-50": "ResNet"}))
    _, by_modality = index.similar({"modality": "fundus"})
    assert by_modality.scope == "modality" and by_modality.n_similar == 3
    mask, nothing = index.similar({"dataset": "Unseen"})
    assert nothing.scope == "KB" and mask.all() and "no experiments for Unseen" in nothing.warning
