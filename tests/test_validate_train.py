"""The training loop on real BreastMNIST: medmnist's metric semantics, the recipe's scheduler,
checkpoints and resuming after an interruption, and the classical baselines."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import shared_path  # noqa: E402
from medicalrec.errors import UserError  # noqa: E402
from medicalrec.validate import classical  # noqa: E402
from medicalrec.validate.architectures import REGISTRY  # noqa: E402
from medicalrec.validate.data import MedMNISTArrays, SplitArrays, load_arrays  # noqa: E402
from medicalrec.validate.datasets import get_dataset  # noqa: E402
from medicalrec.validate.train import (  # noqa: E402
    TrainConfig, evaluate_scores, fit_classical, resolve_device, train_network,
)

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def breast():
    return load_arrays(get_dataset("breastmnist"), 28, shared_path("data", "medmnist"))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def simple_cnn():
    return REGISTRY["Custom CNN"].build(1, 2, 28)


def config(**overrides) -> TrainConfig:
    values = dict(epochs=3, threads=1, device="cpu", checkpoint_seconds=0.0)
    values.update(overrides)
    return TrainConfig(**values)


class Interrupt(Exception):
    pass


def test_metrics_are_medmnist_evaluator_semantics(breast):
    from medmnist import Evaluator

    rng = np.random.default_rng(0)
    scores = rng.random((156, 2))
    scores /= scores.sum(1, keepdims=True)
    evaluator = Evaluator("breastmnist", "test", root=str(shared_path("data", "medmnist")))
    expected_auc, expected_acc = evaluator.evaluate(scores)
    assert evaluate_scores(breast["test"].labels, scores, "binary-class") == (expected_acc, expected_auc)


@pytest.mark.slow
def test_short_run_learns_and_keeps_the_best_validation_epoch(breast, tmp_path):
    result = train_network(simple_cnn, breast, config(checkpoint_dir=tmp_path), identity={"model": "Custom CNN"})
    assert result.epochs == 3 and len(result.history) == 3
    val_aucs = [h["val_auc"] for h in result.history]
    assert result.best_epoch == int(np.argmax(val_aucs)) + 1
    assert result.val_auc == pytest.approx(max(val_aucs), abs=1e-9)  # the test uses those weights
    assert 0.6 < result.test_auc <= 1.0 and 0.0 <= result.test_acc <= 1.0
    assert result.device == "cpu" and result.images_per_s > 0 and result.seconds > 0
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()


@pytest.mark.slow
def test_resume_after_interruption_matches_an_uninterrupted_run(breast, tmp_path):
    whole = train_network(simple_cnn, breast, config(checkpoint_dir=tmp_path / "whole"))

    def stop_after_first_epoch(log):
        if log.epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_network(simple_cnn, breast, config(checkpoint_dir=tmp_path / "cut"), on_epoch=stop_after_first_epoch)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 1

    resumed = train_network(simple_cnn, breast, config(checkpoint_dir=tmp_path / "cut", resume=True))
    assert resumed.resumed_from_epoch == 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in whole.history])
    assert (resumed.test_acc, resumed.test_auc) == pytest.approx((whole.test_acc, whole.test_auc))


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_from_another_setting(breast, tmp_path):
    train_network(simple_cnn, breast, config(epochs=1, checkpoint_dir=tmp_path))
    with pytest.raises(UserError, match="different run"):
        train_network(simple_cnn, breast, config(epochs=1, batch_size=64, checkpoint_dir=tmp_path, resume=True))


def test_learning_rate_follows_the_medmnist_milestones(breast):
    tiny = MedMNISTArrays(breast.dataset, 28, breast.path, {
        split: SplitArrays(breast[split].images[:40], breast[split].labels[:40].copy())
        for split in ("train", "val", "test")})
    tiny["val"].labels[:2] = [[0], [1]]  # both classes present, so the AUC is defined
    tiny["test"].labels[:2] = [[0], [1]]
    result = train_network(simple_cnn, tiny, config(epochs=4))
    # MultiStepLR(milestones=[0.5 * 4, 0.75 * 4], gamma=0.1), stepped after each epoch
    assert [h["lr"] for h in result.history] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])


def test_cuda_request_without_gpu_is_a_one_line_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserError, match="--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_classical_model_on_a_few_hundred_samples(breast):
    result = fit_classical(REGISTRY["Logistic Regression"].build(1, 2, 28, seed=0), breast)
    assert result.epochs == 0 and result.device == "cpu"
    assert 0.7 < result.test_auc <= 1.0  # pixels carry signal: well above chance
    assert 0.5 < result.test_acc <= 1.0


def test_svm_scores_agree_with_its_predictions(breast):
    estimator = classical.fit(REGISTRY["SVM"].build(1, 2, 28, seed=0), breast["train"], multi_label=False)
    scores = classical.scores(estimator, breast["test"], 2, multi_label=False)
    predicted = estimator.predict(classical.features(breast["test"]))
    assert np.array_equal((scores[:, 1] > 0.5).astype(int), predicted)
    acc, auc = evaluate_scores(breast["test"].labels, scores, "binary-class")
    assert acc == pytest.approx(float(np.mean(predicted == breast["test"].labels[:, 0])))


def test_classical_multi_label_scores_have_one_column_per_label():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (120, 28, 28), dtype=np.uint8)
    labels = np.stack([(images[:, :14].mean((1, 2)) > 127), (images[:, 14:].mean((1, 2)) > 127),
                       rng.integers(0, 2, 120).astype(bool)], axis=1).astype(np.int64)
    split = SplitArrays(images, labels)
    for name in ("Random Forest", "SVM"):
        estimator = classical.fit(REGISTRY[name].build(1, 3, 28, seed=0), split, multi_label=True)
        scores = classical.scores(estimator, split, 3, multi_label=True)
        assert scores.shape == (120, 3) and ((scores >= 0) & (scores <= 1)).all()
