"""`medicalrec validate` end to end on real BreastMNIST: --json shape, the published comparison,
KB write-back with provenance, re-runs, the recommender hand-off and the one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import types

import pytest
from medmnist.info import INFO

from conftest import REPO, shared_path
from medicalrec.kb import ExperimentRecord, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance

pytestmark = pytest.mark.shared

RESULT_KEYS = {"model": str, "test_acc": float, "test_auc": float, "epochs": int, "seconds": float, "device": str}


@pytest.fixture
def data_root():
    return shared_path("data", "medmnist")


@pytest.fixture
def kb_file(tmp_path):
    return tmp_path / "kb.db"


@pytest.fixture
def published_kb(kb_file):
    """A KB holding the MedMNIST v2 ResNet figures the way the seed KB does (ref_id Yang2023MedMNISTv2,
    setting size=N, test accuracy/auc), read from ../shared's published table."""
    with shared_path("data", "medmnist", "published_results.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["benchmark"] == "MedMNIST v2" and r["resolution"]]
    experiments = []
    for r in rows:
        prov = Provenance(method="import", source_url=r["source_url"])
        experiments.append(ExperimentRecord(
            model=r["method"], dataset=r["dataset"], setting=f"size={r['resolution']}",
            measurements=[MeasurementRecord("accuracy", float(r["test_acc"]), prov),
                          MeasurementRecord("auc", float(r["test_auc"]), prov)]))
    store = KnowledgeBase.open(kb_file, write=True)
    store.save_paper(PaperRecord(ref_id="Yang2023MedMNISTv2", title="MedMNIST v2"), experiments)
    breast_r18 = next(r for r in rows if r["dataset"] == "BreastMNIST" and r["method"] == "ResNet-18"
                      and r["resolution"] == "28")
    return kb_file, float(breast_r18["test_auc"]), float(breast_r18["test_acc"])


def run(cli, data_root, kb_file, tmp_path, *extra):
    return cli("validate", "--dataset", "breastmnist", "--data-root", data_root, "--device", "cpu", "--kb", kb_file,
               "--threads", "1", "--out", tmp_path / "runs", *extra)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def validated_rows(kb_file):
    store = KnowledgeBase.open(kb_file)
    return store.query(
        "SELECT e.id, m.name, d.name, e.setting, e.origin FROM experiments e JOIN papers p ON p.id = e.paper_id"
        " JOIN models m ON m.id = e.model_id JOIN datasets d ON d.id = e.dataset_id"
        " WHERE p.ref_id = 'medicalrec-validation' ORDER BY e.id")[1]


@pytest.mark.slow
def test_json_shape_and_write_back_with_provenance(cli, data_root, kb_file, tmp_path):
    result = run(cli, data_root, kb_file, tmp_path, "--models", "simplecnn,svm,swin", "--epochs", "2", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["dataset"] == "BreastMNIST"
    assert [r["model"] for r in payload["results"]] == ["Custom CNN", "SVM"]
    for item in payload["results"]:
        for key, kind in RESULT_KEYS.items():
            assert isinstance(item[key], kind), (key, item[key])
        assert 0 <= item["test_acc"] <= 1 and 0 <= item["test_auc"] <= 1 and item["device"] == "cpu"
    assert payload["results"][0]["epochs"] == 2
    assert payload["skipped"] == [{"model": "Swin Transformer",
                                   "reason": "no 28-px implementation of Swin Transformer in medicalrec validate"}]

    rows = validated_rows(kb_file)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("Custom CNN", "BreastMNIST", "size=28;epochs=2;seed=0;device=cpu", "validated"),
        ("SVM", "BreastMNIST", "size=28;epochs=0;seed=0;device=cpu", "validated")]
    store = KnowledgeBase.open(kb_file)
    cnn_id = rows[0][0]
    _, features = store.query("SELECT feature, status, method, value_num, value_text FROM feature_values"
                              f" WHERE experiment_id = {cnn_id}")
    assert len(features) == 14 and {f[2] for f in features} == {"validated"}
    by_name = {f[0]: f for f in features}
    assert by_name["n_train"][3] == INFO["breastmnist"]["n_samples"]["train"]
    assert by_name["modality"][4] == "ultrasound" and by_name["k_fold"][1] == "not_applicable"
    _, measurements = store.query("SELECT metric, split, method, value, snippet FROM measurements"
                                  f" WHERE experiment_id = {cnn_id} ORDER BY metric")
    assert [(m[0], m[1], m[2]) for m in measurements] == [("accuracy", "test", "validated"),
                                                          ("auc", "test", "validated")]
    assert measurements[0][3] == pytest.approx(payload["results"][0]["test_acc"])
    assert measurements[1][3] == pytest.approx(payload["results"][0]["test_auc"])
    assert "Custom CNN on BreastMNIST 28px" in measurements[0][4]
    _, runs = store.query(f"SELECT seed, epochs, device, seconds FROM validation_runs WHERE experiment_id = {cnn_id}")
    assert runs == [(0, 2, "cpu", pytest.approx(payload["results"][0]["seconds"], abs=0.01))]
    frame = store.experiments_frame()
    assert frame.loc[frame["experiment_id"] == cnn_id, "auc"].item() == pytest.approx(
        payload["results"][0]["test_auc"])


def test_rerunning_a_setting_replaces_it(cli, data_root, kb_file, tmp_path):
    for _ in range(2):
        assert run(cli, data_root, kb_file, tmp_path, "--models", "svm", "--json").exit_code == 0
    assert len(validated_rows(kb_file)) == 1
    store = KnowledgeBase.open(kb_file)
    assert store.counts()["validation_runs"] == 1
    assert run(cli, data_root, kb_file, tmp_path, "--models", "svm", "--seeds", "2", "--json").exit_code == 0
    assert [r[3] for r in validated_rows(kb_file)] == ["size=28;epochs=0;seed=0;device=cpu",
                                                       "size=28;epochs=0;seed=1;device=cpu"]
    assert KnowledgeBase.open(kb_file).counts()["validation_runs"] == 2


@pytest.mark.slow
def test_resnet18_short_run_is_compared_with_the_published_figure(cli, data_root, published_kb, tmp_path):
    kb_file, published_auc, published_acc = published_kb
    result = run(cli, data_root, kb_file, tmp_path, "--models", "resnet18", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.output
    item = json.loads(result.stdout)["results"][0]
    assert item["model"] == "ResNet-18" and item["epochs"] == 1
    assert (item["published_auc"], item["published_acc"]) == (published_auc, published_acc)
    assert item["delta_auc"] == pytest.approx(item["test_auc"] - published_auc)
    assert item["images_per_s"] > 0 and item["best_epoch"] == 1


def test_table_output_names_models_published_figures_and_skips(cli, data_root, published_kb, tmp_path):
    kb_file, published_auc, _ = published_kb
    result = run(cli, data_root, kb_file, tmp_path, "--models", "logistic regression,ResNet-101")
    assert result.exit_code == 0, result.output
    assert "BreastMNIST" in result.stdout and "Logistic Regression" in result.stdout
    assert "skipped ResNet-101: no 28-px implementation of ResNet-101" in result.stdout
    assert "published figures: MedMNIST v2" in result.stderr


def test_missing_file_is_one_line_with_md5_and_flags(cli, kb_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(cli("validate", "--dataset", "pneumoniamnist", "--models", "svm", "--data-root", empty,
                          "--kb", kb_file))
    assert "pneumoniamnist.npz" in line and str(empty) in line and INFO["pneumoniamnist"]["MD5"] in line
    assert "pass --data-root DIR or --download" in line
    assert not kb_file.exists()  # nothing was written before the data was found


def test_unknown_dataset_is_one_line_listing_flags(cli, kb_file):
    line = error_line(cli("validate", "--dataset", "mnist", "--models", "svm", "--kb", kb_file))
    assert "breastmnist" in line and "organsmnist" in line and "--dataset" in line


@pytest.mark.parametrize("args, fragment", [
    (("--models", "svm", "--top", "2"), "pass one of them"),
    (("--models", "swin,foo"), "none of the models can be trained"),
    (("--models", "svm", "--epochs", "0"), "--epochs 1 or more"),
    (("--models", "svm", "--size", "32"), "--size one of 28, 64, 128, 224"),
])
def test_bad_arguments_are_one_line(cli, data_root, kb_file, tmp_path, args, fragment):
    assert fragment in error_line(run(cli, data_root, kb_file, tmp_path, *args))


def test_cuda_without_gpu_is_one_line(cli, data_root, kb_file, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    line = error_line(cli("validate", "--dataset", "breastmnist", "--models", "svm", "--device", "cuda",
                          "--data-root", data_root, "--kb", kb_file))
    assert "--device cpu" in line


def test_top_without_recommender_asks_for_models(cli, data_root, kb_file, tmp_path, monkeypatch):
    import medicalrec.recommend

    monkeypatch.setitem(sys.modules, "medicalrec.recommend.service", None)
    # An earlier import leaves the submodule as a package attribute; hide that too.
    monkeypatch.delattr(medicalrec.recommend, "service", raising=False)
    line = error_line(run(cli, data_root, kb_file, tmp_path, "--top", "2"))
    assert line == "Error: the recommender is not available: pass --models"


def test_top_asks_the_recommender_with_the_dataset_features(cli, data_root, kb_file, tmp_path, monkeypatch):
    calls = []

    def recommend_for_task(store, task, top, objective="usage"):
        calls.append((task, top, objective))
        return [types.SimpleNamespace(model="Logistic Regression", score=0.9),
                types.SimpleNamespace(model="Swin Transformer", score=0.8)]

    fake = types.ModuleType("medicalrec.recommend.service")
    fake.recommend_for_task = recommend_for_task
    monkeypatch.setitem(sys.modules, "medicalrec.recommend.service", fake)
    import medicalrec.recommend

    monkeypatch.setattr(medicalrec.recommend, "service", fake, raising=False)
    result = run(cli, data_root, kb_file, tmp_path, "--top", "2", "--json")
    assert result.exit_code == 0, result.output
    n = INFO["breastmnist"]["n_samples"]
    assert calls == [({"n_samples": sum(n.values()), "n_classes": 2, "channels": 1, "width": 28, "height": 28,
                       "domain": "Breast Cancer Classification", "modality": "ultrasound"}, 2, None)]
    payload = json.loads(result.stdout)
    assert [r["model"] for r in payload["results"]] == ["Logistic Regression"]
    assert payload["results"][0]["recommended_score"] == 0.9
    assert payload["skipped"][0]["model"] == "Swin Transformer"


def test_top_takes_the_objective_recommend_takes_by_default(tmp_path, monkeypatch):
    """--top asks for the performance ranker's picks when the KB holds comparisons (papers measuring
    >= 2 models), for the usage ranker's otherwise — as `medicalrec recommend` does by default."""
    import torch
    from recommend_data import synthetic_experiments
    from recommend_kb import store_frame

    from medicalrec.recommend import performance, ranker, service
    from medicalrec.recommend.picks import Pick
    from medicalrec.validate import runner
    from medicalrec.validate.datasets import get_dataset, task_features

    monkeypatch.setattr(ranker, "DEFAULT_CONFIG", ranker.RankerConfig(n_models=1, max_epochs=20, patience=5))
    monkeypatch.setattr(performance, "DEFAULT_PERFORMANCE_CONFIG",
                        performance.PerformanceConfig(d_model=16, max_epochs=15, min_epochs=5, patience=4))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    objectives = []
    real_load_or_train = service.load_or_train

    def spy(store, **options):
        objectives.append(options["objective"])
        return real_load_or_train(store, **options)

    monkeypatch.setattr(service, "load_or_train", spy)
    frame = synthetic_experiments(n_papers=30, seed=3)
    compared = KnowledgeBase.open(tmp_path / "compared.db", write=True)
    store_frame(compared, frame)
    single = KnowledgeBase.open(tmp_path / "single.db", write=True)
    store_frame(single, frame.drop_duplicates("paper_key"))  # one model per paper: nothing is compared
    dataset = get_dataset("dermamnist")  # a domain and modality the synthetic KB holds
    request = runner.ValidationRequest(dataset="dermamnist", top=2)
    try:
        models, recommended = runner._choose_models(request, compared, dataset, 28)
        assert objectives == ["performance"]
        picks = service.recommend_for_task(compared, task_features(dataset, 28), 2, objective="performance")
        assert picks and all(isinstance(p, Pick) for p in picks)
        assert models == [p.model for p in picks]
        assert [r["score"] for r in recommended] == [float(p.score) for p in picks]

        models, _ = runner._choose_models(request, single, dataset, 28)
        assert objectives[-1] == "usage"
        usage = service.recommend_for_task(single, task_features(dataset, 28), 2, objective="usage")
        assert models == [r.model for r in usage] and not any(isinstance(r, Pick) for r in usage)
    finally:
        torch.set_num_threads(previous_threads)


def test_cli_import_stays_light():
    code = "import sys, medicalrec.validate.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_resume_picks_up_the_checkpoint_of_a_finished_run(cli, data_root, kb_file, tmp_path):
    args = ("--models", "simplecnn", "--epochs", "1", "--json")
    first = json.loads(run(cli, data_root, kb_file, tmp_path, *args).stdout)["results"][0]
    again = json.loads(run(cli, data_root, kb_file, tmp_path, *args, "--resume").stdout)["results"][0]
    assert first["resumed_from_epoch"] == 0 and again["resumed_from_epoch"] == 1
    assert (again["test_acc"], again["test_auc"]) == (first["test_acc"], first["test_auc"])
    assert len(validated_rows(kb_file)) == 1  # the same setting, recorded once


def test_without_kb_the_run_goes_to_the_user_kb_not_the_seed(cli, data_root, tmp_path):
    from medicalrec.kb.db import seed_path, user_kb_path

    if not seed_path().exists():
        pytest.skip("no bundled seed KB in this checkout")
    before = KnowledgeBase.open(seed_path()).fingerprint()
    result = cli("validate", "--dataset", "breastmnist", "--models", "svm", "--data-root", data_root, "--json")
    assert result.exit_code == 0, result.output
    assert user_kb_path().is_relative_to(tmp_path) and user_kb_path().exists()
    assert [r[1] for r in validated_rows(user_kb_path())] == ["SVM"]
    assert KnowledgeBase.open(seed_path()).fingerprint() == before
    assert json.loads(result.stdout)["results"][0]["published_acc"] is None  # the seed has no SVM figure


def test_kb_query_shows_validated_runs_with_provenance(cli, data_root, kb_file, tmp_path):
    payload = json.loads(run(cli, data_root, kb_file, tmp_path, "--models", "random forest", "--json").stdout)
    sql = ("SELECT m.name AS model, d.name AS dataset, e.setting, ms.metric, ms.value, ms.split, ms.method,"
           " ms.snippet, v.seconds FROM experiments e JOIN papers p ON p.id = e.paper_id"
           " JOIN models m ON m.id = e.model_id JOIN datasets d ON d.id = e.dataset_id"
           " JOIN measurements ms ON ms.experiment_id = e.id JOIN validation_runs v ON v.experiment_id = e.id"
           " WHERE p.ref_id = 'medicalrec-validation' ORDER BY ms.metric")
    result = cli("kb", "query", "--kb", kb_file, sql, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["model"], r["dataset"], r["metric"], r["split"], r["method"]) for r in rows] == [
        ("Random Forest", "BreastMNIST", "accuracy", "test", "validated"),
        ("Random Forest", "BreastMNIST", "auc", "test", "validated")]
    assert rows[1]["value"] == pytest.approx(payload["results"][0]["test_auc"])
    assert rows[0]["snippet"].startswith("medicalrec validate: Random Forest on BreastMNIST 28px, seed 0")
    features = json.loads(cli("kb", "query", "--kb", kb_file, "--json",
                              "SELECT feature, status, method, source_url FROM feature_values").stdout)
    assert len(features) == 14 and {f["method"] for f in features} == {"validated"}
    assert {f["source_url"] for f in features if f["feature"] == "n_samples"} == {INFO["breastmnist"]["url"]}
