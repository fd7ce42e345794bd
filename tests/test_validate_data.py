"""The MedMNIST dataset table and file loading, including the one-line errors for users."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from medmnist.info import INFO

from medicalrec.errors import UserError
from medicalrec.kb import normalize
from medicalrec.validate.data import load_arrays, normalise, to_tensors
from medicalrec.validate.datasets import MEDMNIST_2D, get_dataset, kb_features, task_features
from conftest import shared_path

FLAGS_2D = sorted(flag for flag in INFO if not flag.endswith("3d"))


def medmnist_dir() -> Path:
    return shared_path("data", "medmnist")


def test_table_covers_every_2d_medmnist_dataset():
    assert sorted(MEDMNIST_2D) == FLAGS_2D
    for flag, dataset in MEDMNIST_2D.items():
        assert dataset.info["python_class"] == INFO[flag]["python_class"]
        assert dataset.n_classes == len(INFO[flag]["label"])


def test_table_agrees_with_the_kb_dataset_catalogue():
    catalog = {entry.name: entry for entry in normalize.dataset_catalog()}
    for dataset in MEDMNIST_2D.values():
        entry = catalog[dataset.canonical]
        assert (entry.domain, entry.modality) == (dataset.domain, dataset.modality), dataset.flag


@pytest.mark.parametrize("name", ["breastmnist", "BreastMNIST", "Breast MNIST", " breast-mnist "])
def test_dataset_names_resolve(name):
    assert get_dataset(name).flag == "breastmnist"


def test_unknown_dataset_lists_the_accepted_flags():
    with pytest.raises(UserError) as info:
        get_dataset("cifar10")
    message = str(info.value)
    assert "\n" not in message and "--dataset" in message
    for flag in FLAGS_2D:
        assert flag in message


def test_kb_features_cover_all_14_with_validated_provenance():
    from medicalrec.kb import FEATURES

    features = kb_features(get_dataset("chestmnist"), 28)
    assert set(features) == set(FEATURES)
    assert all(f.provenance.method == "validated" for f in features.values())
    counts = INFO["chestmnist"]["n_samples"]
    assert features["n_samples"].value == sum(counts.values())
    assert features["n_train"].value == counts["train"] and features["n_test"].value == counts["test"]
    assert features["n_classes"].value == 14 and features["channels"].value == 1
    assert features["k_fold"].status == "not_applicable"
    assert features["domain"].value == "Chest X-ray Classification"


def test_task_features_describe_the_dataset_for_the_recommender():
    task = task_features(get_dataset("pathmnist"), 64)
    assert task == {"n_samples": 107180, "n_classes": 9, "channels": 3, "width": 64, "height": 64,
                    "domain": "Colorectal Histopathology Classification", "modality": "histopathology"}


def test_real_breastmnist_loads_into_tensors():
    arrays = load_arrays(get_dataset("breastmnist"), 28, medmnist_dir())
    for split, n in INFO["breastmnist"]["n_samples"].items():
        assert arrays[split].images.shape == (n, 28, 28)
        assert arrays[split].labels.shape == (n, 1)
    images, labels = to_tensors(arrays["train"])
    assert tuple(images.shape) == (546, 1, 28, 28) and str(images.dtype) == "torch.uint8"
    x = normalise(images)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    # identical to torchvision's ToTensor() + Normalize(0.5, 0.5) on the same pixels
    expected = (arrays["train"].images[:4].astype(np.float32) / 255.0 - 0.5) / 0.5
    assert np.allclose(x[:4, 0].numpy(), expected, atol=1e-6)


def test_shared_file_matches_medmnist_md5():
    path = medmnist_dir() / "breastmnist.npz"
    assert hashlib.md5(path.read_bytes()).hexdigest() == get_dataset("breastmnist").md5(28)


def test_missing_file_error_names_file_directory_md5_and_flags(tmp_path):
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("pneumoniamnist"), 28, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "pneumoniamnist.npz" in message and str(tmp_path) in message
    assert INFO["pneumoniamnist"]["MD5"] in message
    assert "--data-root DIR" in message and "--download" in message


def test_missing_64px_file_names_the_64px_md5(tmp_path):
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("breastmnist"), 64, tmp_path)
    assert "breastmnist_64.npz" in str(info.value) and INFO["breastmnist"]["MD5_64"] in str(info.value)


def test_download_without_working_torchvision_is_one_line(tmp_path):
    try:
        import torchvision.datasets.utils  # noqa: F401
    except Exception:  # absent, or built for another torch (as in this project's venv)
        pass
    else:
        pytest.skip("torchvision imports here, so medmnist's download path would go online")
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("breastmnist"), 28, tmp_path / "new", download=True)
    message = str(info.value)
    assert "\n" not in message and "torchvision" in message and INFO["breastmnist"]["url"] in message
    assert INFO["breastmnist"]["MD5"] in message and "--data-root" in message


def test_corrupt_file_is_a_one_line_error(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError) as info:
        load_arrays(get_dataset("breastmnist"), 28, tmp_path)
    assert "\n" not in str(info.value) and INFO["breastmnist"]["MD5"] in str(info.value)
