"""The MedMNIST 2D datasets in the KB's vocabulary: one declarative table (MedMNIST style).

medmnist's own INFO table supplies the facts (task, channels, labels, split sizes, file URL and
md5); this table adds what the KB needs to match a validation run with the literature: the
curated dataset name and its domain / modality labels (those of kb/data/datasets.csv).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from medmnist.info import INFO

from ..errors import UserError
from ..kb.normalize import name_key
from ..kb.records import FeatureField, Provenance

SIZES = (28, 64, 128, 224)


@dataclass(frozen=True)
class MedMNISTDataset:
    flag: str  # medmnist's key: "breastmnist"
    canonical: str  # the KB's curated name: "BreastMNIST"
    domain: str
    modality: str

    @cached_property
    def info(self) -> dict:
        return INFO[self.flag]

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def multi_label(self) -> bool:
        return self.task == "multi-label, binary-class"

    @property
    def n_channels(self) -> int:
        return int(self.info["n_channels"])

    @property
    def n_classes(self) -> int:
        return len(self.info["label"])

    @property
    def n_samples(self) -> dict[str, int]:
        return dict(self.info["n_samples"])

    def file_name(self, size: int) -> str:
        return f"{self.flag}{size_flag(size)}.npz"

    def url(self, size: int) -> str:
        return self.info[f"url{size_flag(size)}"]

    def md5(self, size: int) -> str:
        return self.info[f"MD5{size_flag(size)}"]


def size_flag(size: int) -> str:
    """medmnist's file-name suffix: '' for the 28-px files, '_64' for 64 px..."""
    return "" if size == 28 else f"_{size}"


MEDMNIST_2D: dict[str, MedMNISTDataset] = {
    d.flag: d
    for d in (
        MedMNISTDataset("pathmnist", "PathMNIST", "Colorectal Histopathology Classification", "histopathology"),
        MedMNISTDataset("chestmnist", "ChestMNIST", "Chest X-ray Classification", "X-ray"),
        MedMNISTDataset("dermamnist", "DermaMNIST", "Skin Cancer Classification", "dermoscopy"),
        MedMNISTDataset("octmnist", "OCTMNIST", "Retinal OCT Classification", "OCT"),
        MedMNISTDataset("pneumoniamnist", "PneumoniaMNIST", "Chest X-ray Classification", "X-ray"),
        MedMNISTDataset("retinamnist", "RetinaMNIST", "Diabetic Retinopathy Classification", "fundus"),
        MedMNISTDataset("breastmnist", "BreastMNIST", "Breast Cancer Classification", "ultrasound"),
        MedMNISTDataset("bloodmnist", "BloodMNIST", "Blood Cell Classification", "microscopy"),
        MedMNISTDataset("tissuemnist", "TissueMNIST", "Kidney/Organ CT Classification", "microscopy"),
        MedMNISTDataset("organamnist", "OrganAMNIST", "Kidney/Organ CT Classification", "CT"),
        MedMNISTDataset("organcmnist", "OrganCMNIST", "Kidney/Organ CT Classification", "CT"),
        MedMNISTDataset("organsmnist", "OrganSMNIST", "Kidney/Organ CT Classification", "CT"),
    )
}


def get_dataset(name: str) -> MedMNISTDataset:
    """The dataset for a medmnist flag or its KB name ('breastmnist', 'BreastMNIST', 'Breast MNIST')."""
    key = name_key(name)
    for dataset in MEDMNIST_2D.values():
        if key in (dataset.flag, name_key(dataset.canonical)):
            return dataset
    raise UserError(f"unknown dataset {name!r}: pass --dataset one of {', '.join(MEDMNIST_2D)}")


def check_size(size: int) -> int:
    if size not in SIZES:
        raise UserError(f"--size {size} is not a MedMNIST size: pass --size one of {', '.join(map(str, SIZES))}")
    return size


def task_features(dataset: MedMNISTDataset, size: int) -> dict:
    """The dataset's own features, as the recommender's task description."""
    return {
        "n_samples": sum(dataset.n_samples.values()),
        "n_classes": dataset.n_classes,
        "channels": dataset.n_channels,
        "width": size,
        "height": size,
        "domain": dataset.domain,
        "modality": dataset.modality,
    }


def kb_features(dataset: MedMNISTDataset, size: int) -> dict[str, FeatureField]:
    """All 14 KB features of a validation run, each with `validated` provenance pointing at the
    medmnist file the numbers come from."""
    splits = dataset.n_samples
    snippet = (f"medmnist {INFO[dataset.flag]['python_class']} {size}px: task {dataset.task}, "
               f"{dataset.n_channels} channel(s), {dataset.n_classes} labels, splits {splits}")
    prov = Provenance(method="validated", snippet=snippet, source_url=dataset.url(size))
    ours = Provenance(method="validated", snippet="medicalrec validate: MedMNIST recipe, trained from scratch")
    reported = FeatureField.reported
    return {
        "n_samples": reported(sum(splits.values()), prov),
        "n_train": reported(splits["train"], prov),
        "n_test": reported(splits["test"], prov),
        "n_val": reported(splits["val"], prov),
        "k_fold": FeatureField.missing("not_applicable", prov, "official fixed train/val/test split"),
        "width": reported(size, prov),
        "height": reported(size, prov),
        "channels": reported(dataset.n_channels, prov),
        "n_classes": reported(dataset.n_classes, prov),
        "domain": reported(dataset.domain, prov),
        "modality": reported(dataset.modality, prov),
        "augmentation": reported("no", ours),
        "pretrained": reported("no", ours),
        "is_proposed": reported("no", ours),
    }
