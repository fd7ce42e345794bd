"""The multi-task challenge: the scoring (macro-F1 and the harmonic mean) against hand-computed
values, the shared backbone with one head per dataset, early stopping, and the --json shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from medicalrec.validate.architectures import REGISTRY
from medicalrec.validate.data import MedMNISTArrays, SplitArrays
from medicalrec.validate.datasets import get_dataset
from medicalrec.validate.multitask import (CHALLENGE_2D, MultitaskSpec, build_network, harmonic_mean, macro_f1,
                                           train_multitask, zero_note)

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_challenge_is_the_eleven_2d_datasets_without_chestmnist():
    assert len(CHALLENGE_2D) == 11 and "chestmnist" not in CHALLENGE_2D and "retinamnist" in CHALLENGE_2D


def test_harmonic_mean_by_hand():
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / (2 + 1))  # 0.6667
    assert harmonic_mean([0.2, 0.4, 0.8]) == pytest.approx(3 / (5 + 2.5 + 1.25))  # 0.342857
    assert harmonic_mean([0.7]) == pytest.approx(0.7)
    assert harmonic_mean([0.9, 0.0, 0.8]) == 0.0  # 1/0 is infinite: one zero makes it 0
    with pytest.raises(ValueError):
        harmonic_mean([])


def test_macro_f1_by_hand():
    labels = np.array([[0], [0], [1], [1], [2]])
    predicted = [0, 1, 1, 1, 0]
    scores = np.eye(3)[predicted]
    # class 0: P 1/2 R 1/2 F 0.5; class 1: P 2/3 R 1 F 0.8; class 2: no hit, F 0
    assert macro_f1(labels, scores, "multi-class") == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # multi-label: label 0 F 1 (both right), label 1 F 2/3 (tp 1, fp 1, fn 0)
    ml_labels = np.array([[1, 1], [0, 0]])
    ml_scores = np.array([[0.9, 0.8], [0.1, 0.7]])
    assert macro_f1(ml_labels, ml_scores, "multi-label, binary-class") == pytest.approx((1 + 2 / 3) / 2)


def test_a_dataset_with_macro_f1_zero_is_named():
    result = {"per_dataset": {"breastmnist": {"macro_f1": 0.0}, "retinamnist": {"macro_f1": 0.4}}}
    assert zero_note(result, "multi-task") == ("multi-task: the harmonic mean is 0 because breastmnist scored "
                                               "macro-F1 0 (one zero makes the harmonic mean 0)")
    assert zero_note({"per_dataset": {"retinamnist": {"macro_f1": 0.4}}}, "x") is None


@pytest.mark.parametrize("model", [name for name, arch in REGISTRY.items() if arch.is_torch])
def test_every_network_becomes_a_shared_backbone_with_one_head_per_dataset(model):
    net = build_network(model, {"breastmnist": 2, "retinamnist": 5, "pathmnist": 9}, 28).eval()
    with torch.no_grad():
        features = net(torch.zeros(2, 3, 28, 28))
    assert features.ndim == 2
    assert {f: net.heads[f](features).shape[1] for f in net.heads} == {"breastmnist": 2, "retinamnist": 5,
                                                                      "pathmnist": 9}


def synthetic(flag: str, n: int, seed: int) -> MedMNISTArrays:
    """Images whose mean brightness sets the class, so a few epochs learn something."""
    dataset, rng = get_dataset(flag), np.random.default_rng(seed)
    channels = () if dataset.n_channels == 1 else (3,)

    def split() -> SplitArrays:
        labels = np.arange(n) % dataset.n_classes
        base = (labels * (200 // dataset.n_classes)).reshape(n, 1, 1, *([1] if channels else []))
        images = np.clip(base + rng.integers(0, 40, (n, 28, 28, *channels)), 0, 255).astype(np.uint8)
        return SplitArrays(images, labels.reshape(n, 1).astype(np.int64))

    return MedMNISTArrays(dataset, 28, Path("memory"), {s: split() for s in ("train", "val", "test")})


def test_training_mixes_datasets_and_stops_early():
    arrays = {"breastmnist": synthetic("breastmnist", 40, 0), "retinamnist": synthetic("retinamnist", 50, 1)}
    spec = MultitaskSpec(datasets=("breastmnist", "retinamnist"), model="Custom CNN", epochs=6, patience=1,
                         batch_size=16, device="cpu", threads=1)
    result = train_multitask(spec, arrays)
    assert result.datasets == ["breastmnist", "retinamnist"]
    assert set(result.per_dataset) == {"breastmnist", "retinamnist"}
    assert result.harmonic_mean_macro_f1 == pytest.approx(
        harmonic_mean([row["macro_f1"] for row in result.per_dataset.values()]))
    means = [h["mean_val_macro_f1"] for h in result.history]
    assert result.best_epoch == int(np.argmax(means)) + 1
    # patience 1: training ends at the first epoch that does not improve on the best (or at --epochs)
    assert result.epochs == len(means) and (result.epochs == 6 or means[-1] <= max(means[:-1]))
    assert all(set(h["val_macro_f1"]) == {"breastmnist", "retinamnist"} for h in result.history)


@pytest.mark.shared
@pytest.mark.slow
def test_cli_json_shape_and_missing_datasets(cli):
    result = cli(
        "validate", "multitask", "--datasets", "breastmnist,retinamnist,dermamnist", "--model", "simplecnn",
        "--epochs", "1", "--device", "cpu", "--threads", "1", "--data-root", shared_path("data", "medmnist"), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["datasets", "missing", "per_dataset", "harmonic_mean_macro_f1", "epochs", "seconds",
                             "device"]
    assert payload["datasets"] == ["breastmnist", "retinamnist"] and payload["missing"] == ["dermamnist"]
    assert set(payload["per_dataset"]["retinamnist"]) == {"macro_f1", "test_acc", "test_auc"}
    assert payload["harmonic_mean_macro_f1"] == pytest.approx(
        harmonic_mean([row["macro_f1"] for row in payload["per_dataset"].values()]))
    assert payload["epochs"] == 1 and payload["device"].startswith("cpu")


def test_cli_with_no_dataset_present_names_the_files(cli, tmp_path):
    result = cli("validate", "multitask", "--datasets", "breastmnist,dermamnist", "--data-root", tmp_path)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "breastmnist.npz" in line and "dermamnist.npz" in line and str(tmp_path) in line and "\n" not in line
