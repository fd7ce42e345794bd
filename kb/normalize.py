"""Name normalisation for models and datasets.

Two layers: a rule (`name_key`) that makes spelling variants equal ("VGG16" = "VGG-16" =
"vgg 16"), and a curated alias table (kb/data/*.csv, extended by curators with
`medicalrec kb alias`) that says which *different* names mean the same thing ("APTOS" =
"APTOS 2019"). A name neither layer knows is reported as unmatched, never guessed.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

_PARENTHETICAL = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]\s*")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def name_key(name: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive key: 'VGG-16' -> 'vgg16'."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub("", text.lower())


def candidate_keys(name: str) -> list[str]:
    """Keys to try in order: the whole name, then without parenthetical qualifiers
    ("VGG16 (fine-tuned)" -> "VGG16")."""
    keys = [name_key(name)]
    stripped = _PARENTHETICAL.sub(" ", name).strip()
    if stripped and name_key(stripped) not in keys:
        keys.append(name_key(stripped))
    return [k for k in keys if k]


@dataclass(frozen=True)
class CatalogModel:
    name: str
    family: str
    params_millions: float | None
    aliases: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CatalogDataset:
    name: str
    domain: str | None
    modality: str | None
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _read_catalog(filename: str) -> list[dict[str, str]]:
    with resources.files("medicalrec.kb").joinpath("data", filename).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _aliases(cell: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in (cell or "").split("|") if a.strip())


@lru_cache(maxsize=1)
def model_catalog() -> tuple[CatalogModel, ...]:
    return tuple(
        CatalogModel(
            name=row["name"],
            family=row["family"],
            params_millions=float(row["params_millions"]) if row["params_millions"] else None,
            aliases=_aliases(row["aliases"]),
        )
        for row in _read_catalog("models.csv")
    )


@lru_cache(maxsize=1)
def dataset_catalog() -> tuple[CatalogDataset, ...]:
    return tuple(
        CatalogDataset(
            name=row["name"],
            domain=row["domain"] or None,
            modality=row["modality"] or None,
            aliases=_aliases(row["aliases"]),
        )
        for row in _read_catalog("datasets.csv")
    )


MODEL_FAMILIES = (
    "CNN", "ResNet", "DenseNet", "VGG", "EfficientNet", "MobileNet", "Inception/Xception",
    "Vision Transformer", "Swin Transformer", "Hybrid CNN-Transformer", "Capsule Network", "SVM",
    "Random Forest", "XGBoost/GBM", "kNN", "Decision Tree", "Logistic Regression", "MLP",
    "LSTM/GRU", "Ensemble", "AutoML", "Other",
)


def lookup(name: str, alias_index: dict[str, str]) -> str | None:
    """The canonical name for `name` in an alias index (key -> canonical), or None."""
    for key in candidate_keys(name):
        if key in alias_index:
            return alias_index[key]
    return None


def catalog_alias_index(entries) -> dict[str, str]:
    index: dict[str, str] = {}
    for entry in entries:
        for alias in (entry.name, *entry.aliases):
            index.setdefault(name_key(alias), entry.name)
    return index


_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    (r"ensemble|voting|stacking|fusion of|bagging", "Ensemble"),
    (r"swin", "Swin Transformer"),
    (r"(cnn|conv|resnet|efficientnet|densenet|vgg|mobilenet).*(transformer|vit\b|attention)"
     r"|(transformer|vit\b).*(cnn|conv|resnet|efficientnet|densenet)", "Hybrid CNN-Transformer"),
    (r"\bvit\b|vision transformer|deit|transformer", "Vision Transformer"),
    (r"capsule|capsnet", "Capsule Network"),
    (r"resnet|resnext|residual", "ResNet"),
    (r"densenet", "DenseNet"),
    (r"efficientnet", "EfficientNet"),
    (r"mobilenet", "MobileNet"),
    (r"inception|xception|googlenet", "Inception/Xception"),
    (r"vgg", "VGG"),
    (r"\bsvm\b|support vector", "SVM"),
    (r"random forest", "Random Forest"),
    (r"xgboost|gradient boost|lightgbm|catboost|adaboost", "XGBoost/GBM"),
    (r"\bknn\b|k-nn|nearest neighbo", "kNN"),
    (r"decision tree", "Decision Tree"),
    (r"logistic regression", "Logistic Regression"),
    (r"lstm|gru\b|recurrent", "LSTM/GRU"),
    (r"\bmlp\b|perceptron|\bann\b", "MLP"),
    (r"cnn|convolution|alexnet|u-?net|squeezenet|shufflenet|nasnet|convnext", "CNN"),
)


def guess_family(name: str) -> str:
    """A family for a bespoke model name, by keyword rules; 'Other' when none applies."""
    lowered = name.lower()
    for pattern, family in _FAMILY_RULES:
        if re.search(pattern, lowered):
            return family
    return "Other"
