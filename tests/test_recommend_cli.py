"""`medicalrec recommend` / `recommend train` / `recommend evaluate` on a small synthetic KB file."""

from __future__ import annotations

import json

import pytest
import torch
from recommend_data import synthetic_experiments
from recommend_kb import synthetic_kb, write_curated_csv

from medicalrec.kb import KnowledgeBase
from medicalrec.recommend import ranker
from medicalrec.recommend.catalogue import Catalogue
from medicalrec.recommend.evidence import item_labels_of

# --objective usage: these tests check the usage ranker's output (the KB holds comparisons, so the
# default objective would be performance: tests/test_recommend_performance_cli.py covers that one)
SKIN = ["--domain", "Skin Cancer Classification", "--modality", "dermoscopy", "--classes", "7", "--samples", "10015",
        "--width", "224", "--height", "224", "--channels", "3", "--objective", "usage"]


@pytest.fixture(scope="module", autouse=True)
def small_ranker():
    """One small model instead of the default ensemble: these tests check the plumbing, and the
    machine is shared (test_recommend_ranker.py trains the default configuration)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(ranker, "DEFAULT_CONFIG", ranker.RankerConfig(n_models=1, max_epochs=40, patience=8))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def kb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "synthetic.db"
    synthetic_kb(path)
    return path


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def run(cli, kb_file, cache_home, monkeypatch):
    """The CLI with a per-module cache dir, on one torch thread (the machine is shared)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda *args: cli(*args)
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained(kb_file, cache_home, tmp_path_factory):
    """`recommend train --out` once per module (2-fold evaluation keeps it quick)."""
    from typer.testing import CliRunner

    from medicalrec.cli import app

    out = tmp_path_factory.mktemp("model") / "ranker.pt"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(cache_home))
    try:
        result = CliRunner().invoke(app, ["recommend", "train", "--kb", str(kb_file), "--out", str(out), "--folds", "2",
                                          "--json"], catch_exceptions=False)
    finally:
        mp.undo()
        torch.set_num_threads(previous)
    assert result.exit_code == 0, result.stderr
    return out, json.loads(result.stdout)


def _error_line(result) -> str:
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_recommend_ranks_catalogue_items_with_evidence_from_the_kb(run, kb_file):
    result = run("recommend", *SKIN, "--kb", kb_file, "--top", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    frame = KnowledgeBase.open(kb_file).experiments_frame()
    catalogue = Catalogue.build(frame)
    assert report["catalogue_size"] == len(catalogue.items)
    recs = report["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2, 3, 4]
    assert all(r["model"] in catalogue.items for r in recs)
    assert recs == sorted(recs, key=lambda r: -r["score"])
    # evidence is counted on the KB's same-domain experiments, item by item
    skin = frame[frame["domain"] == "Skin Cancer Classification"]
    labels = item_labels_of(skin, catalogue)
    for r in recs:
        used = skin[labels == r["model"]]
        assert r["evidence"]["n_experiments"] == len(used)
        if len(used):
            assert r["evidence"]["median_accuracy"] == pytest.approx(used["accuracy"].median())
            assert set(r["evidence"]["references"]) <= {f"https://doi.org/{d}" for d in used["doi"]}
            assert 1 <= len(r["evidence"]["references"]) <= 3
    assert report["coverage"]["scope"] == "domain" and report["coverage"]["n_similar"] == len(skin)


def test_the_domain_favourite_is_near_the_top(run, kb_file):
    result = run("recommend", *SKIN, "--kb", kb_file, "--json")
    ranked = [r["model"] for r in json.loads(result.stdout)["recommendations"]]
    # in the synthetic KB every skin paper uses (and wins with) EfficientNet-B0; brain papers favour VGG-16
    assert "EfficientNet-B0" in ranked[:2]
    assert ranked.index("EfficientNet-B0") < ranked.index("VGG-16")


def test_second_run_loads_the_cached_model_for_this_kb(run, kb_file, cache_home):
    first = json.loads(run("recommend", *SKIN, "--kb", kb_file, "--json").stdout)
    second = json.loads(run("recommend", *SKIN, "--kb", kb_file, "--json").stdout)
    assert second["model_source"] == "cache"
    assert first["recommendations"] == second["recommendations"]
    fingerprint = KnowledgeBase.open(kb_file).fingerprint()
    assert any(fingerprint in p.name for p in (cache_home / "medicalrec" / "recommend").glob("*.pt"))


def test_table_output_names_models_and_the_catalogue_size(run, kb_file):
    result = run("recommend", *SKIN, "--kb", kb_file, "--top", "3")
    assert result.exit_code == 0
    assert "EfficientNet-B0" in result.stdout and "catalogue of" in result.stdout


def test_unknown_domain_lists_the_kbs_domains(run, kb_file):
    line = _error_line(run("recommend", "--domain", "Foot Classification", "--kb", kb_file))
    assert "--domain" in line and "Foot Classification" in line
    for domain in ("Skin Cancer Classification", "Brain Tumour Classification", "Chest X-ray Classification"):
        assert domain in line


def test_unknown_modality_lists_the_kbs_modalities(run, kb_file):
    line = _error_line(run("recommend", "--modality", "sonar", "--kb", kb_file))
    assert "--modality" in line and "dermoscopy" in line and "histopathology" in line


@pytest.mark.parametrize("flag,value", [("--classes", "0"), ("--samples", "-5"), ("--width", "-1"), ("--top", "0")])
def test_non_positive_counts_name_the_flag(run, kb_file, flag, value):
    args = ["--domain", "Skin Cancer Classification", "--kb", str(kb_file), flag, value]
    line = _error_line(run("recommend", *args))
    # --classes/--samples are range-checked ("a whole number from 1 to ..."), the others must be positive
    assert flag in line and ("positive" in line or "whole number from 1" in line)


def test_a_task_needs_a_domain_modality_or_dataset(run, kb_file):
    line = _error_line(run("recommend", "--classes", "3", "--kb", kb_file))
    assert "--domain" in line and "--dataset" in line


def test_matching_is_case_insensitive_and_yes_no_is_checked(run, kb_file):
    ok = run("recommend", "--domain", "skin cancer classification", "--kb", kb_file, "--json", "--top", "2")
    assert json.loads(ok.stdout)["task"]["domain"] == "Skin Cancer Classification"
    line = _error_line(run("recommend", "--domain", "Skin Cancer Classification", "--pretrained", "maybe", "--kb", kb_file))
    assert "--pretrained" in line


def test_sparse_coverage_warns(run, tmp_path):
    path = tmp_path / "tiny.db"
    synthetic_kb(path, n_papers=8, seed=1)
    result = run("recommend", "--domain", "Skin Cancer Classification", "--kb", path, "--json", "--objective", "usage")
    assert result.exit_code == 0
    assert "low coverage" in result.stderr
    assert json.loads(result.stdout)["warning"].startswith("low coverage")


def test_train_writes_a_checkpoint_with_fingerprint_and_figures(trained, kb_file):
    out, summary = trained
    assert out.is_file() and summary["checkpoint"] == str(out)
    assert summary["kb_fingerprint"] == KnowledgeBase.open(kb_file).fingerprint()
    assert summary["n_items"] == len(Catalogue.build(KnowledgeBase.open(kb_file).experiments_frame()).items)
    assert 0.0 <= summary["evaluation"]["inner_validation"]["hit@5"] <= 1.0
    methods = summary["evaluation"]["cross_validation"]["methods"]
    assert set(methods) == {"transformer", "popularity"}
    assert 0.0 <= methods["transformer"]["hit@5"] <= 1.0


def test_recommend_with_model_uses_that_checkpoint(run, trained, kb_file):
    out, _ = trained
    result = run("recommend", *SKIN, "--kb", kb_file, "--model", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model_source"] == "file"


def test_a_bad_model_file_is_one_line(run, kb_file, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    line = _error_line(run("recommend", *SKIN, "--kb", kb_file, "--model", junk))
    assert str(junk) in line and "--model" in line
    line = _error_line(run("recommend", *SKIN, "--kb", kb_file, "--model", tmp_path / "absent.pt"))
    assert "absent.pt" in line and "recommend train" in line


def test_bad_feature_set_is_one_line(run, kb_file):
    line = _error_line(run("recommend", *SKIN, "--kb", kb_file, "--features", "V"))
    assert "--features" in line and "IV" in line


def test_evaluate_json_has_the_documented_shape(run, kb_file):
    result = run("recommend", "evaluate", "--kb", kb_file, "--folds", "2", "--methods", "transformer,popularity",
                 "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_test"] == len(KnowledgeBase.open(kb_file).experiments_frame())
    assert isinstance(report["n_items"], int) and report["n_items"] > 0
    assert set(report["methods"]) == {"transformer", "popularity"}
    for values in report["methods"].values():
        assert {"hit@1", "hit@3", "hit@5", "hit@10", "ndcg@10", "mrr"} <= set(values)
        assert values["hit@1"] <= values["hit@5"] <= values["hit@10"]


def test_evaluate_on_a_test_file_scores_its_rows(run, kb_file, tmp_path):
    held_out = synthetic_experiments(n_papers=10, seed=99)
    csv = write_curated_csv(tmp_path / "held_out.csv", held_out)
    result = run("recommend", "evaluate", "--kb", kb_file, "--test", csv, "--methods", "popularity_domain", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_test"] == len(held_out)


def test_evaluate_rejects_unknown_methods_and_folds(run, kb_file):
    assert "--methods" in _error_line(run("recommend", "evaluate", "--kb", kb_file, "--methods", "oracle"))
    assert "--folds" in _error_line(run("recommend", "evaluate", "--kb", kb_file, "--folds", "1"))


def test_demo_section_prints_a_recommendation_with_evidence(kb_file, cache_home, monkeypatch):
    from rich.console import Console

    from medicalrec.recommend.cli import show_recommendation_section

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    out = Console(record=True, width=200)
    task = {"domain": "Skin Cancer Classification", "modality": "dermoscopy", "n_classes": 7}
    show_recommendation_section(KnowledgeBase.open(kb_file), out, task=task, top=3)
    text = out.export_text()
    assert "--domain 'Skin Cancer Classification' --modality dermoscopy --classes 7 --top 3" in text
    # The objective `recommend` takes by default: this KB holds papers comparing several models.
    assert "Picks by expected performance" in text and "add --objective usage" in text
    assert "EfficientNet-B0" in text
    assert "https://doi.org/10.1000/paper" in text  # references from the KB's own papers
