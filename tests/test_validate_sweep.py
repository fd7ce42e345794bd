"""`validate --datasets`: every (dataset, model, seed) run, the ledger that makes an interrupted sweep
resume without redoing finished runs, the --json list shape, and the published comparison."""

from __future__ import annotations

import json
import statistics

import pytest

from conftest import shared_path
from medicalrec.errors import UserError
from medicalrec.kb import ExperimentRecord, FeatureField, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance
from medicalrec.validate import compare, sweep
from medicalrec.validate.sweep import SweepRequest, run_sweep

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def request(tmp_path, **overrides) -> SweepRequest:
    values = dict(dataset="", datasets=["breastmnist", "retinamnist"], models=["logistic regression"], seeds=2,
                  device="cpu", threads=1, data_root=shared_path("data", "medmnist"), kb=tmp_path / "kb.db",
                  out=tmp_path / "runs")
    values.update(overrides)
    return SweepRequest(**values)


def validated_settings(kb_file):
    return KnowledgeBase.open(kb_file).query(
        "SELECT d.name, m.name, e.setting FROM experiments e JOIN papers p ON p.id = e.paper_id"
        " JOIN models m ON m.id = e.model_id JOIN datasets d ON d.id = e.dataset_id"
        " WHERE p.ref_id = 'medicalrec-validation' ORDER BY d.name, e.setting")[1]


@pytest.mark.shared
def test_interrupted_sweep_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    calls = []
    real = sweep.train_job

    def counting(spec):
        calls.append((spec.dataset, spec.seed))
        return real(spec)

    monkeypatch.setattr(sweep, "train_job", counting)

    def interrupt_after_first(done, total, message):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(UserError) as info:
        run_sweep(request(tmp_path), bar=interrupt_after_first)
    assert "interrupted after 1 of 4 runs" in str(info.value) and "sweep-ledger.jsonl" in str(info.value)
    assert calls == [("breastmnist", 0)]
    assert len((tmp_path / "runs" / "sweep-ledger.jsonl").read_text().splitlines()) == 1

    report = run_sweep(request(tmp_path))
    assert calls == [("breastmnist", 0), ("breastmnist", 1), ("retinamnist", 0), ("retinamnist", 1)]
    assert (report.trained, report.reused) == (3, 1)
    assert [len(r.runs) for r in report.reports] == [2, 2]
    assert [(d, m, s) for d, m, s in validated_settings(tmp_path / "kb.db")] == [
        ("BreastMNIST", "Logistic Regression", "size=28;epochs=0;seed=0;device=cpu"),
        ("BreastMNIST", "Logistic Regression", "size=28;epochs=0;seed=1;device=cpu"),
        ("RetinaMNIST", "Logistic Regression", "size=28;epochs=0;seed=0;device=cpu"),
        ("RetinaMNIST", "Logistic Regression", "size=28;epochs=0;seed=1;device=cpu")]

    again = run_sweep(request(tmp_path))  # everything finished: nothing trains, the KB is unchanged
    assert len(calls) == 4 and (again.trained, again.reused) == (0, 4)
    assert len(validated_settings(tmp_path / "kb.db")) == 4
    fresh = run_sweep(request(tmp_path, datasets=["breastmnist"], fresh=True))
    assert len(calls) == 6 and fresh.trained == 2


@pytest.mark.shared
def test_sigterm_stops_a_sweep_like_ctrl_c(tmp_path):
    import os
    import signal

    def terminate_after_first(done, total, message):
        if done == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(UserError, match="interrupted after 1 of 2 runs"):
        run_sweep(request(tmp_path, datasets=["breastmnist"]), bar=terminate_after_first)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    assert run_sweep(request(tmp_path, datasets=["breastmnist"])).reused == 1


@pytest.mark.shared
def test_sweep_json_is_a_list_of_todays_objects_with_mean_and_std(cli, tmp_path):
    result = cli("validate", "--datasets", "breastmnist,retinamnist", "--models", "logistic regression,swin",
                 "--seeds", "2", "--device", "cpu", "--threads", "1", "--data-root", shared_path("data", "medmnist"),
                 "--kb", tmp_path / "kb.db", "--out", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert isinstance(payload, list) and [p["dataset"] for p in payload] == ["BreastMNIST", "RetinaMNIST"]
    for item in payload:
        assert {"dataset", "flag", "size", "results", "skipped", "summary", "failed"} <= set(item)
        assert [(r["model"], r["seed"]) for r in item["results"]] == [("Logistic Regression", 0),
                                                                       ("Logistic Regression", 1)]
        assert item["skipped"][0]["model"] == "Swin Transformer"
        row = item["summary"][0]
        aucs = [r["test_auc"] for r in item["results"]]
        assert row["auc"] == pytest.approx(statistics.fmean(aucs))
        assert row["auc_std"] == pytest.approx(statistics.stdev(aucs))
        assert set(row["comparisons"]) == {"accuracy", "auc"}


@pytest.mark.shared
def test_one_dataset_json_keeps_todays_shape(cli, tmp_path):
    result = cli("validate", "--dataset", "breastmnist", "--models", "logistic regression", "--device", "cpu",
                 "--data-root", shared_path("data", "medmnist"), "--kb", tmp_path / "kb.db", "--json")
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict) and payload["dataset"] == "BreastMNIST" and len(payload["results"]) == 1


def test_dataset_and_datasets_together_is_one_line(cli, tmp_path):
    result = cli("validate", "--dataset", "breastmnist", "--datasets", "breastmnist", "--models", "svm",
                 "--kb", tmp_path / "kb.db")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: pass --dataset FLAG for one dataset or --datasets A,B,C for a sweep (not both), "
        "or use `medicalrec validate multitask`"]


# ------------------------------------------------------------------ the published comparison
def save_published(store: KnowledgeBase) -> None:
    prov = Provenance(method="import", source_url="https://example.org")

    def experiment(model, setting, auc, acc, width=None):
        features = {"width": FeatureField.reported(width, prov)} if width else {}
        return ExperimentRecord(model=model, dataset="BreastMNIST", setting=setting, features=features,
                                measurements=[MeasurementRecord("auc", auc, prov, split="test"),
                                              MeasurementRecord("accuracy", acc, prov, split="test")])

    store.save_paper(PaperRecord(ref_id="Yang2023MedMNISTv2", title="MedMNIST v2"), [
        experiment("ResNet-18", "size=28", 0.901, 0.863), experiment("ResNet-18", "size=224", 0.891, 0.833)])
    store.save_paper(PaperRecord(ref_id="Other2024", title="another benchmark"), [
        experiment("ResNet-18", "", 0.93, 0.88, width=28), experiment("ResNet-18", "lr=0.1", 0.5, 0.5)])


def test_every_published_figure_at_the_size_is_found():
    store = KnowledgeBase.in_memory()
    save_published(store)
    figures = compare.published_figures(store, "BreastMNIST", 28)["ResNet-18"]
    assert sorted((f.source, f.metric, f.value) for f in figures) == [
        ("Other2024", "accuracy", 0.88), ("Other2024", "auc", 0.93),
        ("Yang2023MedMNISTv2", "accuracy", 0.863), ("Yang2023MedMNISTv2", "auc", 0.901)]
    assert [f.value for f in compare.published_figures(store, "BreastMNIST", 224)["ResNet-18"]
            if f.metric == "auc"] == [0.891]


def test_benchmark_runs_count_at_their_resolution_by_their_best_on_validation_run():
    from pathlib import Path

    from medicalrec.kb import benchmarks

    root = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
    store = KnowledgeBase.in_memory()
    benchmarks.import_file(store, root / "medmnist-transferability" / "finetuned_AUCs" / "fined_breast_small.csv",
                           root=root)
    figures = compare.published_figures(store, "BreastMNIST", 224)["ResNet-18"]
    # The ImageNet sweep (lr 0.01 and 0.001) counts by its lowest-val_loss run only; RadImageNet's lone run counts.
    assert sorted((f.metric, f.value) for f in figures) == [
        ("accuracy", 0.78), ("accuracy", 0.82), ("auc", 0.81), ("auc", 0.88)]
    assert all("@224px" in f.setting for f in figures)
    assert compare.published_figures(store, "BreastMNIST", 28) == {}


def test_difference_and_spread_by_hand():
    figures = [compare.PublishedFigure("A", "", "auc", 0.90), compare.PublishedFigure("B", "", "auc", 0.92)]
    within = compare.compare(figures, acc=[0.8, 0.8, 0.8], auc=[0.89, 0.91, 0.93])["auc"]
    assert within.ours == pytest.approx(0.91) and within.ours_std == pytest.approx(0.02)
    assert within.delta == pytest.approx(0.0) and (within.low, within.high) == (0.90, 0.92) and within.within
    below = compare.compare(figures, acc=[0.8], auc=[0.85])["auc"]
    assert below.delta == pytest.approx(-0.06) and below.within is False  # 0.85 ± 0 misses [0.90, 0.92]
    touching = compare.compare(figures, acc=[0.8, 0.8], auc=[0.86, 0.88])["auc"]  # 0.87 ± 0.014 misses 0.90
    assert touching.within is False
    assert compare.compare([], acc=[0.8], auc=[0.9])["auc"].within is None
    assert [p["delta"] for p in within.as_dict()["published"]] == pytest.approx([0.01, -0.01])


def test_ledger_skips_a_line_cut_by_a_kill(tmp_path):
    from dataclasses import asdict

    ledger = sweep.Ledger(tmp_path / "sweep-ledger.jsonl")
    spec = sweep.RunSpec("breastmnist", 28, "SVM", 0, 0, 128, "abc")
    ledger.append({"spec": asdict(spec), "result": {"test_auc": 0.9}})
    with ledger.path.open("a", encoding="utf-8") as fh:
        fh.write('{"spec": {"dataset": "breastm')  # what a kill mid-write leaves
    done = ledger.read()
    assert list(done) == [spec.key()] and done[spec.key()]["result"]["test_auc"] == 0.9
    other = sweep.RunSpec("breastmnist", 28, "SVM", 0, 0, 128, "a different file")
    assert other.key() not in done  # another md5 is another run
