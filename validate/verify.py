"""Is a MedMNIST file what it claims to be? Its md5 against medmnist's INFO, then the arrays' shapes
and label ranges against the dataset's declared task.

A tampered or mislabelled file (random images of the right shape, a 64-px split inside the 28-px
file, labels out of range) must not train quietly and land in the KB as a `validated` result, so
the md5 is checked before anything else reads the file. `--no-verify` skips the md5 check only;
the structural checks always run, because a wrong shape or an out-of-range label makes every
metric meaningless whatever the user wants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from .datasets import MedMNISTDataset

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileCheck:
    """What is known of the file a run trained on; it travels into the run's provenance."""

    path: str
    md5: str  # of the file as read
    expected_md5: str  # medmnist's INFO
    verified: bool  # md5 matched; False only under --no-verify

    def provenance(self) -> str:
        if self.verified:
            return f"file md5 {self.md5} verified"
        return f"UNVERIFIED file (--no-verify): md5 {self.md5}, medmnist expects {self.expected_md5}"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(dataset: MedMNISTDataset, size: int, path: Path, verify: bool = True) -> FileCheck:
    """The md5 check; a one-line UserError when the file is empty, or differs and `verify` is on."""
    expected = dataset.md5(size)
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); expected md5 {expected} from {dataset.url(size)}: "
                        f"replace it, or pass --download")
    actual = file_md5(path)
    if actual != expected and verify:
        raise UserError(f"{path} has md5 {actual}, medmnist expects {expected} for {dataset.file_name(size)}: "
                        f"replace it (or pass --download), or pass --no-verify to train on it unverified")
    return FileCheck(str(path), actual, expected, actual == expected)


def check_arrays(dataset: MedMNISTDataset, size: int, path: Path, split: str, images: np.ndarray,
                 labels: np.ndarray, verify: bool = True) -> None:
    """Shapes, dtype and label range of one split; a one-line UserError naming what is wrong."""
    channels = dataset.n_channels
    expected = (size, size) if channels == 1 else (size, size, channels)
    fix = f"expected md5 {dataset.md5(size)}: replace it, or pass --download"
    if images.dtype != np.uint8:
        raise UserError(f"{path}: {split} images are {images.dtype}, MedMNIST stores uint8; {fix}")
    if images.ndim < 1 or tuple(images.shape[1:]) != expected:
        raise UserError(f"{path}: {split} images have shape {tuple(images.shape[1:])} per image, "
                        f"{dataset.flag} at {size} px has {expected}; {fix}")
    width = dataset.n_classes if dataset.multi_label else 1
    if labels.ndim != 2 or labels.shape[1] != width or labels.shape[0] != images.shape[0]:
        raise UserError(f"{path}: {split} labels have shape {tuple(labels.shape)}, expected "
                        f"({images.shape[0]}, {width}); {fix}")
    highest = 1 if dataset.multi_label else dataset.n_classes - 1
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > highest):
        raise UserError(f"{path}: {split} labels range {int(labels.min())}..{int(labels.max())}, "
                        f"{dataset.flag} allows 0..{highest}; {fix}")
    count = dataset.n_samples[split]
    if verify and images.shape[0] != count:
        raise UserError(f"{path} has {images.shape[0]} {split} images, medmnist expects {count}; {fix}")


def describe(check: Optional[FileCheck]) -> str:
    return "" if check is None else check.provenance()
