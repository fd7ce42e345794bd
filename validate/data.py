"""Loading a MedMNIST file: through medmnist's classes (its root / download conventions), then the
.npz arrays straight into tensors - no PIL round trip per image, so a whole 28-px dataset sits in
memory (or on the GPU) as uint8 and is normalised batch by batch."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from .datasets import MedMNISTDataset
from .verify import FileCheck, check_arrays, check_file

SPLITS = ("train", "val", "test")


@dataclass
class SplitArrays:
    images: np.ndarray  # uint8, (N, H, W) or (N, H, W, 3)
    labels: np.ndarray  # int, (N, L): L = 1, or the label count for multi-label

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class MedMNISTArrays:
    dataset: MedMNISTDataset
    size: int
    path: Path
    splits: dict[str, SplitArrays]
    check: Optional[FileCheck] = None  # None: arrays built in memory (tests, benches), not read from a file

    @property
    def verified(self) -> bool:
        return self.check is None or self.check.verified

    def __getitem__(self, split: str) -> SplitArrays:
        return self.splits[split]


def default_root() -> Path:
    from medmnist.info import DEFAULT_ROOT

    return Path(DEFAULT_ROOT) if DEFAULT_ROOT else Path.home() / ".medmnist"


def load_arrays(dataset: MedMNISTDataset, size: int = 28, root: Optional[str | Path] = None,
                download: bool = False, verify: bool = True) -> MedMNISTArrays:
    """The train / val / test arrays of `dataset` at `size` px, read from `root` (medmnist's default
    root when None). A missing file is a one-line UserError naming the file, the directory searched,
    its md5 and the flags that fix it; so is a file whose md5 differs from medmnist's (unless
    `verify` is False), whose arrays have the wrong shape or whose labels are out of range."""
    root = Path(root).expanduser() if root else default_root()
    path = root / dataset.file_name(size)
    if download:
        _download(dataset, size, root)
    if not path.exists():
        where = f"{root}" if root.is_dir() else f"{root} (no such directory)"
        raise UserError(
            f"{dataset.file_name(size)} not found in {where}; expected md5 {dataset.md5(size)} "
            f"from {dataset.url(size)}: pass --data-root DIR or --download")
    check = check_file(dataset, size, path, verify)
    import medmnist

    data_class = getattr(medmnist, dataset.info["python_class"])
    splits: dict[str, SplitArrays] = {}
    try:
        for split in SPLITS:
            ds = data_class(split=split, root=str(root), size=size, download=False)
            images, labels = np.asarray(ds.imgs), np.asarray(ds.labels)
            check_arrays(dataset, size, path, split, images, labels, verify)
            splits[split] = SplitArrays(images, labels.astype(np.int64))
    # EOFError: a truncated member (click would print a bare "Aborted!" for it)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error) as exc:
        raise UserError(
            f"{path} is not a readable MedMNIST file ({type(exc).__name__}); expected md5 {dataset.md5(size)}: "
            f"replace it, or pass --download") from None
    return MedMNISTArrays(dataset, size, path, splits, check)


def _download(dataset: MedMNISTDataset, size: int, root: Path) -> None:
    # medmnist downloads through torchvision; when that is absent or broken its failure is a
    # multi-line RuntimeError, so the import is tried here first.
    manual = (f"fetch {dataset.url(size)} (md5 {dataset.md5(size)}) into {root} yourself "
              f"and pass --data-root {root}")
    try:
        from torchvision.datasets.utils import download_url  # noqa: F401
    except Exception as exc:  # ImportError, or RuntimeError from a torchvision built for another torch
        raise UserError(f"--download needs a working torchvision ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'import failed'}): {manual}") from None
    import medmnist

    root.mkdir(parents=True, exist_ok=True)
    data_class = getattr(medmnist, dataset.info["python_class"])
    try:
        data_class(split="test", root=str(root), size=size, download=True)
    except RuntimeError:
        raise UserError(f"downloading {dataset.url(size)} failed: {manual}") from None


def to_tensors(split: SplitArrays, device=None):
    """(images uint8 (N, C, H, W), labels int64 (N, L)) tensors, on `device`."""
    import torch

    images = torch.from_numpy(np.ascontiguousarray(split.images))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = torch.from_numpy(split.labels)
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    return images.contiguous(), labels


def normalise(images_uint8):
    """MedMNIST's ToTensor + Normalize(mean=0.5, std=0.5): uint8 -> float in [-1, 1]."""
    return images_uint8.float().div_(127.5).sub_(1.0)
