"""Which KB models `validate` can train: the KB's canonical model names mapped to trainable builders.

Names are resolved through the KB's alias layer (`medicalrec.kb.normalize`), so "resnet18",
"ResNet18" and "R18" all reach "ResNet-18". A name the registry cannot train comes back as a
`Skipped` with its reason, never an exception: a recommendation may well name a model with no
small-image implementation here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

from ..kb import normalize
from . import classical
from .datasets import SIZES


@dataclass(frozen=True)
class Architecture:
    name: str  # the KB's canonical model name
    kind: str  # "torch": trained by train.py's loop; "sklearn": fitted once on flattened pixels
    builder: Callable
    description: str
    max_train_samples: Optional[int] = None  # kernel methods scale quadratically

    @property
    def is_torch(self) -> bool:
        return self.kind == "torch"

    def build(self, in_channels: int, num_classes: int, size: int, seed: int = 0):
        if self.is_torch:
            return self.builder(in_channels, num_classes, size)
        return self.builder(seed)

    def cannot_train(self, n_train: int) -> Optional[str]:
        if self.max_train_samples is not None and n_train > self.max_train_samples:
            return (f"{self.name} on {n_train:,} training images exceeds its {self.max_train_samples:,}-image "
                    f"limit (kernel matrix)")
        return None


@dataclass(frozen=True)
class Skipped:
    model: str
    reason: str


def _torch(name: str, builder_name: str, description: str) -> Architecture:
    def build(in_channels: int, num_classes: int, size: int):
        from . import nets  # torch only when a network is built

        return getattr(nets, builder_name)(in_channels, num_classes, size)

    return Architecture(name, "torch", build, description)


REGISTRY: dict[str, Architecture] = {
    a.name: a
    for a in (
        _torch("ResNet-18", "resnet18", "MedMNIST's ResNet-18 (3x3 stride-1 stem at 28 px)"),
        _torch("ResNet-50", "resnet50", "MedMNIST's ResNet-50 (bottleneck; 3x3 stride-1 stem at 28 px)"),
        _torch("VGG-16", "vgg16", "VGG-16 with batch norm, global-average-pooled head"),
        _torch("DenseNet-121", "densenet121", "DenseNet-121 (growth 32; 3x3 stride-1 stem at 28 px)"),
        _torch("MobileNetV2", "mobilenet_v2", "MobileNetV2 (width 1.0; total stride 8 at 28 px)"),
        _torch("EfficientNet-B0", "efficientnet_b0", "EfficientNet-B0 (MBConv + SE; total stride 8 at 28 px)"),
        _torch("Vision Transformer", "vit_small", "small ViT: 6 layers, width 192, 3 heads, 4-px patches at 28 px"),
        _torch("Custom CNN", "simple_cnn", "SimpleCNN: 2 x (conv-conv-pool), dense 128, dropout"),
        Architecture("SVM", "sklearn", classical.svm, "RBF SVM on standardised pixels", max_train_samples=20_000),
        Architecture("Random Forest", "sklearn", classical.random_forest, "random forest, 200 trees, on pixels"),
        Architecture("Logistic Regression", "sklearn", classical.logistic_regression,
                     "L2 logistic regression on standardised pixels"),
    )
}


def catalog_index() -> dict[str, str]:
    return normalize.catalog_alias_index(normalize.model_catalog())


def resolve(name: str, size: int = 28, alias_index: Optional[dict[str, str]] = None
            ) -> Union[Architecture, Skipped]:
    """The trainable architecture for a model name (any KB alias), or why there is none."""
    index = alias_index if alias_index is not None else catalog_index()
    canonical = normalize.lookup(name, index) or normalize.lookup(name, {normalize.name_key(n): n for n in REGISTRY})
    if canonical is None:
        return Skipped(name.strip(), f"no {size}-px implementation of {name.strip()!r} in medicalrec validate "
                                     f"(not a curated KB model name)")
    arch = REGISTRY.get(canonical)
    if arch is None:
        return Skipped(canonical, f"no {size}-px implementation of {canonical} in medicalrec validate")
    if size not in SIZES:
        return Skipped(canonical, f"no {size}-px MedMNIST data for {canonical}")
    return arch


def parse_model_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
