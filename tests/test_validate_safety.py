"""Issue 12's `validate` items: checkpoints are loaded weights-only (a planted pickle payload does not
run), data files are checked against medmnist's md5 before training (`--no-verify` overrides and
is recorded), shapes and label ranges are checked, nothing from an unverified file reaches the KB
unless asked, and a 0-byte or truncated .npz is a one-line error."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from medmnist.info import INFO

from medicalrec.errors import UserError
from medicalrec.kb import KnowledgeBase
from medicalrec.validate.data import MedMNISTArrays, SplitArrays, load_arrays
from medicalrec.validate.datasets import get_dataset

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def write_npz(root: Path, flag: str = "breastmnist", size: int = 28, *, image_size: int | None = None,
              label_high: int | None = None, seed: int = 0) -> Path:
    """A file in medmnist's layout with the right split sizes and random pixels: a stand-in for a
    tampered or mislabelled download (its md5 is not medmnist's)."""
    info, rng = INFO[flag], np.random.default_rng(seed)
    side = image_size or size
    shape = (side, side) if info["n_channels"] == 1 else (side, side, info["n_channels"])
    high = label_high if label_high is not None else len(info["label"]) - 1
    arrays = {}
    for split, n in info["n_samples"].items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, high + 1, (n, 1)).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    path = root / get_dataset(flag).file_name(size)
    np.savez_compressed(path, **arrays)
    return path


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Aborted" not in lines[0]
    return lines[0]


# ------------------------------------------------------------------ checkpoints: weights only
class Payload:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def tiny_arrays(n: int = 24) -> MedMNISTArrays:
    rng = np.random.default_rng(0)

    def split() -> SplitArrays:
        labels = np.array([[i % 2] for i in range(n)], dtype=np.int64)
        return SplitArrays(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), labels)

    return MedMNISTArrays(get_dataset("breastmnist"), 28, Path("memory"), {s: split() for s in ("train", "val", "test")})


def simple_cnn():
    from medicalrec.validate.architectures import REGISTRY

    return REGISTRY["Custom CNN"].build(1, 2, 28)


def test_planted_pickle_payload_in_last_pt_does_not_run(tmp_path):
    from medicalrec.validate.train import TrainConfig, train_network

    proof = tmp_path / "proof-the-payload-works"
    pickle.loads(pickle.dumps(Payload(proof)))  # the payload is live: plain unpickling runs it
    assert proof.is_dir()

    marker = tmp_path / "payload-ran"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"format": 1, "epoch": 1, "model": Payload(marker)}, run_dir / "last.pt")
    config = TrainConfig(epochs=1, device="cpu", threads=1, checkpoint_dir=run_dir, resume=True)
    with pytest.raises(UserError) as info:
        train_network(simple_cnn, tiny_arrays(), config)
    assert not marker.exists()
    message = str(info.value)
    assert "\n" not in message and "holds more than weights (it calls posix.mkdir)" in message
    assert str(run_dir / "last.pt") in message


def test_resume_from_a_weights_only_checkpoint_continues(tmp_path):
    from medicalrec.validate.train import TrainConfig, train_network

    class Stop(Exception):
        pass

    def stop(log):
        if log.epoch == 1:
            raise Stop

    config = dict(epochs=2, device="cpu", threads=1, checkpoint_dir=tmp_path, checkpoint_seconds=0.0)
    with pytest.raises(Stop):
        train_network(simple_cnn, tiny_arrays(), TrainConfig(**config), on_epoch=stop)
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # what --resume reads, and nothing else
    assert state["epoch"] == 1
    resumed = train_network(simple_cnn, tiny_arrays(), TrainConfig(**config, resume=True))
    assert resumed.resumed_from_epoch == 1 and [h["epoch"] for h in resumed.history] == [1, 2]


def test_garbage_checkpoint_is_a_one_line_error(tmp_path):
    from medicalrec.validate.train import load_checkpoint

    (tmp_path / "last.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "last.pt", "cpu")


# ------------------------------------------------------------------ data files: md5, shapes, labels
def test_wrong_md5_is_refused_before_training(tmp_path):
    path = write_npz(tmp_path)
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("breastmnist"), 28, tmp_path)
    message = str(info.value)
    assert "\n" not in message and INFO["breastmnist"]["MD5"] in message and "--no-verify" in message
    assert str(path) in message


def test_no_verify_loads_and_says_unverified(tmp_path):
    write_npz(tmp_path)
    arrays = load_arrays(get_dataset("breastmnist"), 28, tmp_path, verify=False)
    assert not arrays.verified and arrays.check.md5 != arrays.check.expected_md5
    assert "UNVERIFIED" in arrays.check.provenance() and arrays.check.md5 in arrays.check.provenance()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"image_size": 64}, "shape (64, 64) per image"),  # a 64-px split inside the 28-px file
    ({"label_high": 3}, "allows 0..1"),  # labels out of range
])
def test_structural_checks_hold_even_unverified(tmp_path, kwargs, fragment):
    write_npz(tmp_path, **kwargs)
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("breastmnist"), 28, tmp_path, verify=False)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_zero_byte_npz_is_one_line_not_aborted(cli, tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"")
    line = error_line(cli("validate", "--dataset", "breastmnist", "--models", "svm", "--data-root", tmp_path,
                          "--kb", tmp_path / "kb.db"))
    assert "is empty (0 bytes)" in line and INFO["breastmnist"]["MD5"] in line


def test_truncated_npz_is_one_line_with_and_without_verification(cli, tmp_path):
    path = write_npz(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    args = ("validate", "--dataset", "breastmnist", "--models", "svm", "--data-root", tmp_path, "--kb", tmp_path / "kb.db")
    assert "medmnist expects " + INFO["breastmnist"]["MD5"] in error_line(cli(*args))
    assert "is not a readable MedMNIST file" in error_line(cli(*args, "--no-verify"))


def validated(kb_file: Path):
    return KnowledgeBase.open(kb_file).query(
        "SELECT e.setting, ms.snippet, e.notes FROM experiments e JOIN papers p ON p.id = e.paper_id"
        " JOIN measurements ms ON ms.experiment_id = e.id"
        " WHERE p.ref_id = 'medicalrec-validation' AND ms.metric = 'auc'")[1]


def test_unverified_file_writes_nothing_to_the_kb_unless_asked(cli, tmp_path):
    write_npz(tmp_path / "data")
    kb_file = tmp_path / "kb.db"
    args = ("validate", "--dataset", "breastmnist", "--models", "logistic regression", "--data-root",
            tmp_path / "data", "--kb", kb_file, "--no-verify", "--json")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "nothing is written to the KB" in result.stderr
    assert not kb_file.exists()

    result = cli(*args, "--record-unverified")
    assert result.exit_code == 0, result.output
    rows = validated(kb_file)
    assert len(rows) == 1
    setting, snippet, notes = rows[0]
    assert setting.endswith(";unverified") and "UNVERIFIED" in snippet and "UNVERIFIED file (--no-verify)" in notes


def test_sweep_refuses_a_wrong_md5_and_names_a_missing_dataset(cli, tmp_path):
    write_npz(tmp_path)
    base = ("validate", "--models", "svm", "--data-root", tmp_path, "--kb", tmp_path / "kb.db")
    line = error_line(cli(*base, "--datasets", "breastmnist"))
    assert INFO["breastmnist"]["MD5"] in line and "--no-verify" in line
    line = error_line(cli(*base, "--datasets", "breastmnist,dermamnist", "--no-verify"))
    assert f"dermamnist.npz not found in {tmp_path}" in line and INFO["dermamnist"]["MD5"] in line
    assert not (tmp_path / "kb.db").exists()


def test_sweep_epochs_zero_is_one_line(cli, tmp_path):
    write_npz(tmp_path)
    line = error_line(cli("validate", "--datasets", "breastmnist", "--models", "simplecnn", "--epochs", "0",
                          "--data-root", tmp_path, "--kb", tmp_path / "kb.db"))
    assert line == "Error: --epochs 0 is too small: pass --epochs 1 or more"
