"""`medicalrec recommend --objective performance` and `recommend evaluate --objective performance`
through the CLI, on a small synthetic KB whose papers compare models."""

from __future__ import annotations

import json

import pytest
import torch
from recommend_data import synthetic_experiments
from recommend_kb import synthetic_kb, write_curated_csv

from medicalrec.recommend import performance, ranker

SKIN = ["--domain", "Skin Cancer Classification", "--modality", "dermoscopy", "--classes", "7"]


@pytest.fixture(scope="module", autouse=True)
def small_models():
    patch = pytest.MonkeyPatch()
    patch.setattr(ranker, "DEFAULT_CONFIG", ranker.RankerConfig(n_models=1, max_epochs=20, patience=5))
    patch.setattr(performance, "DEFAULT_PERFORMANCE_CONFIG",
                  performance.PerformanceConfig(d_model=16, max_epochs=15, min_epochs=5, patience=4))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def kb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "synthetic.db"
    synthetic_kb(path)
    return path


@pytest.fixture
def run(cli, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "perf-cache"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda *args: cli(*args)
    torch.set_num_threads(previous)


def _error_line(result) -> str:
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("KB:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_performance_is_the_default_when_the_kb_holds_comparisons(run, kb_file):
    result = run("recommend", *SKIN, "--kb", kb_file, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["objective"] == "performance"
    picks = report["recommendations"]
    assert picks and [p["rank"] for p in picks] == list(range(1, len(picks) + 1))
    # picks are trainable architectures: no family label ("Custom CNN") and no ensemble
    assert all(not p["is_family_label"] and p["family"] not in ("Ensemble", "Other") for p in picks)
    assert "Custom CNN" not in [p["model"] for p in picks]
    for p in picks:
        assert p["evidence"]["sentence"]
        assert p["evidence"]["n_best"] <= p["evidence"]["n_top3"] <= p["evidence"]["n_tasks"]
    assert {p["model"] for p in report["pareto"]} == {p["model"] for p in picks if p["pareto"]}
    assert report["left_out"]["family_labels_and_ensembles"] >= 1


def test_include_families_lists_family_labels_and_usage_still_answers(run, kb_file):
    every = json.loads(run("recommend", *SKIN, "--kb", kb_file, "--json", "--include-families", "--top", "30").stdout)
    assert any(p["is_family_label"] for p in every["recommendations"])
    usage = json.loads(run("recommend", *SKIN, "--kb", kb_file, "--json", "--objective", "usage").stdout)
    assert "objective" not in usage and "coverage" in usage  # the usage report's shape, unchanged


def test_the_table_shows_sizes_expected_ranks_and_evidence(run, kb_file):
    result = run("recommend", *SKIN, "--kb", kb_file, "--top", "3")
    assert result.exit_code == 0, result.stderr
    assert "exp. rank" in result.stdout and "Pareto" in result.stdout
    assert "similar tasks" in result.stdout


def test_bad_objective_and_max_params_are_one_line(run, kb_file):
    line = _error_line(run("recommend", *SKIN, "--kb", kb_file, "--objective", "speed"))
    assert "--objective" in line and "performance" in line
    line = _error_line(run("recommend", *SKIN, "--kb", kb_file, "--max-params", "-3"))
    assert "--max-params" in line


def test_evaluate_performance_on_a_test_file_keeps_the_contract(run, kb_file, tmp_path):
    test_csv = write_curated_csv(tmp_path / "more.csv", synthetic_experiments(n_papers=16, seed=9))
    result = run("recommend", "evaluate", "--objective", "performance", "--kb", kb_file, "--test", test_csv,
                 "--methods", "transformer,popularity,best_mean_rank,family_nearest_task", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_groups"] >= 1 and report["n_items"] >= 2
    assert set(report["methods"]) == {"transformer", "popularity", "best_mean_rank", "family_nearest_task"}
    for values in report["methods"].values():
        assert set(values) == {"best@1", "best@3", "ndcg@5", "kendall_tau", "pairwise_win_acc"}
        assert 0.0 <= values["pairwise_win_acc"] <= 1.0
    assert "skipped" in report and "significance" in report


def test_evaluate_objective_is_checked(run, kb_file):
    line = _error_line(run("recommend", "evaluate", "--objective", "speed", "--kb", kb_file))
    assert "--objective" in line
