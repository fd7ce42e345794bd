"""Task context features for the recommender, and their encodings.

The context of an experiment is what a user knows *before* choosing a model: the task (domain,
modality, dataset, classes), the data (sample counts, splits, image size) and the training
setting (augmentation, pretraining), plus the publication year. `is_proposed` is deliberately
left out: it describes the model, not the task, and would leak the answer.

Feature sets MedicalRec I-IV are OUR RECONSTRUCTION of the paper's nested 5/9/11/18-feature
sets (the paper does not list them): I is the task as a user states it, II adds the image
geometry and year, III the training setting, IV the split protocol and derived ratios.

Missing values are information, not noise: every feature gets a `<f>__missing` flag, the
transformer gets a learned MISSING token per feature, and the classical baselines get
missing-indicator columns. No value is ever imputed with a mean.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

FEATURE_SETS: dict[str, tuple[str, ...]] = {}
FEATURE_SETS["I"] = ("domain", "modality", "dataset", "n_classes", "n_samples")
FEATURE_SETS["II"] = FEATURE_SETS["I"] + ("width", "height", "channels", "year")
FEATURE_SETS["III"] = FEATURE_SETS["II"] + ("augmentation", "pretrained")
FEATURE_SETS["IV"] = FEATURE_SETS["III"] + (
    "n_train", "n_test", "n_val", "k_fold", "samples_per_class", "image_pixels", "test_fraction",
)

CATEGORICAL: set[str] = {"domain", "modality", "dataset", "augmentation", "pretrained"}
NUMERIC: set[str] = set(FEATURE_SETS["IV"]) - CATEGORICAL
DERIVED: tuple[str, ...] = ("samples_per_class", "image_pixels", "test_fraction")
ALL_FEATURES: tuple[str, ...] = FEATURE_SETS["IV"]

# Spellings a caller (the CLI) may use for a task's keys.
TASK_ALIASES: dict[str, str] = {
    "classes": "n_classes", "samples": "n_samples", "train": "n_train", "test": "n_test",
    "val": "n_val", "folds": "k_fold",
}
_CASEFOLDED = {"modality", "augmentation", "pretrained"}

MISSING_TOKEN = 0
UNKNOWN_TOKEN = 1
FIRST_VALUE_TOKEN = 2


def missing_column(feature: str) -> str:
    return f"{feature}__missing"


def feature_set(name: str) -> tuple[str, ...]:
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise ValueError(f"unknown feature set {name!r}; expected one of {', '.join(FEATURE_SETS)}") from None


def _clean_text(value: Any, *, casefold: bool) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    text = " ".join(str(value).split())
    if not text:
        return None
    return text.lower() if casefold else text


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    # A count of zero or less is not a real value for any context feature here.
    return values.where(values > 0)


def context_frame(experiments: pd.DataFrame) -> pd.DataFrame:
    """All 18 context features (NaN/None where missing) and a `<f>__missing` flag for each.

    Accepts `KnowledgeBase.experiments_frame()` rows; the index is kept so rows line up.
    """
    ctx = pd.DataFrame(index=experiments.index)
    for name in sorted(CATEGORICAL):
        column = experiments[name] if name in experiments else pd.Series(None, index=experiments.index)
        ctx[name] = column.map(lambda v, n=name: _clean_text(v, casefold=n in _CASEFOLDED)).astype(object)
    for name in sorted(NUMERIC - set(DERIVED)):
        ctx[name] = _numeric(experiments, name)
    n_val_known = ctx["n_val"].fillna(0.0)
    split_total = ctx["n_train"] + ctx["n_test"] + n_val_known
    ctx["samples_per_class"] = ctx["n_samples"] / ctx["n_classes"]
    ctx["image_pixels"] = ctx["width"] * ctx["height"]
    ctx["test_fraction"] = (ctx["n_test"] / ctx["n_samples"].fillna(split_total)).where(lambda s: s <= 1.0)
    ctx = ctx[list(ALL_FEATURES)]
    for name in ALL_FEATURES:
        ctx[missing_column(name)] = ctx[name].isna()
    return ctx


def task_to_frame(task: Mapping[str, Any]) -> pd.DataFrame:
    """One user task (CLI options) in `context_frame`'s shape; absent or None keys are missing."""
    row: dict[str, Any] = {}
    for key, value in task.items():
        name = TASK_ALIASES.get(key, key)
        if name not in ALL_FEATURES or name in DERIVED:
            accepted = sorted(set(ALL_FEATURES) - set(DERIVED) | set(TASK_ALIASES))
            raise ValueError(f"unknown task key {key!r}; expected one of {', '.join(accepted)}")
        row[name] = value
    return context_frame(pd.DataFrame([row], index=[0]))


def _category_key(value: Any) -> str:
    return str(value).strip().casefold()


class FeatureEncoder:
    """Turns a context frame into tokens (transformer) or a dense matrix (classical baselines).

    Tokens per feature: 0 = MISSING, 1 = unknown (a value seen fewer than `min_count` times in
    training, or never), 2.. = values. Numerics are log1p-scaled and bucketed at quantiles of the
    training values. With use_missing_token=False (the ablation) a missing value becomes the
    feature's most frequent training token instead, so the model cannot tell "missing" apart.
    """

    def __init__(self, features: Sequence[str], n_buckets: int = 8, use_missing_token: bool = True,
                 min_count: int = 2) -> None:
        unknown = [f for f in features if f not in ALL_FEATURES]
        if unknown:
            raise ValueError(f"unknown context features {unknown}; expected names from {ALL_FEATURES}")
        self.features = tuple(features)
        self.n_buckets = int(n_buckets)
        self.use_missing_token = bool(use_missing_token)
        self.min_count = int(min_count)
        self.vocab: dict[str, list[str]] = {}       # categorical: value keys, in token order
        self.edges: dict[str, list[float]] = {}     # numeric: inner bucket edges on log1p scale
        self.scale: dict[str, float] = {}           # numeric: divisor that maps log1p values to ~[0, 1]
        self.fill_token: dict[str, int] = {}        # ablation: the most frequent token
        self._fitted = False

    # ---------------------------------------------------------------- fitting
    def fit(self, ctx: pd.DataFrame) -> "FeatureEncoder":
        for name in self.features:
            observed = ctx[name].dropna()
            if name in CATEGORICAL:
                counts = observed.map(_category_key).value_counts()
                kept = counts[counts >= self.min_count]
                self.vocab[name] = sorted(kept.index, key=lambda k: (-kept[k], k))
            else:
                logs = np.log1p(observed.to_numpy(dtype=float))
                if logs.size:
                    quantiles = np.quantile(logs, np.linspace(0, 1, self.n_buckets + 1)[1:-1])
                    self.edges[name] = [float(q) for q in np.unique(quantiles)]
                    self.scale[name] = float(max(logs.max(), 1e-6))
                else:
                    self.edges[name], self.scale[name] = [], 1.0
        self._fitted = True
        raw = self._raw_tokens(ctx)
        for j, name in enumerate(self.features):
            present = raw[:, j][raw[:, j] != MISSING_TOKEN]
            self.fill_token[name] = int(np.bincount(present).argmax()) if present.size else UNKNOWN_TOKEN
        return self

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("FeatureEncoder used before fit()")

    # ---------------------------------------------------------------- tokens
    def _feature_tokens(self, name: str, column: pd.Series) -> np.ndarray:
        tokens = np.full(len(column), MISSING_TOKEN, dtype=np.int64)
        present = column.notna().to_numpy()
        if name in CATEGORICAL:
            index = {key: FIRST_VALUE_TOKEN + i for i, key in enumerate(self.vocab[name])}
            values = column[present].map(_category_key)
            tokens[present] = [index.get(v, UNKNOWN_TOKEN) for v in values]
        else:
            logs = np.log1p(column[present].to_numpy(dtype=float))
            tokens[present] = FIRST_VALUE_TOKEN + np.searchsorted(self.edges[name], logs, side="right")
        return tokens

    def _raw_tokens(self, ctx: pd.DataFrame) -> np.ndarray:
        self._require_fitted()
        columns = [self._feature_tokens(name, ctx[name]) for name in self.features]
        return np.stack(columns, axis=1) if columns else np.zeros((len(ctx), 0), dtype=np.int64)

    def tokens(self, ctx: pd.DataFrame) -> np.ndarray:
        """int64 (n, n_features)."""
        out = self._raw_tokens(ctx)
        if not self.use_missing_token:
            for j, name in enumerate(self.features):
                out[out[:, j] == MISSING_TOKEN, j] = self.fill_token[name]
        return out

    def vocab_sizes(self) -> list[int]:
        self._require_fitted()
        return [
            FIRST_VALUE_TOKEN + (len(self.vocab[n]) if n in CATEGORICAL else self.n_buckets)
            for n in self.features
        ]

    # ---------------------------------------------------------------- dense
    def dense_names(self) -> list[str]:
        self._require_fitted()
        names: list[str] = []
        for name in self.features:
            if name in CATEGORICAL:
                names += [f"{name}={v}" for v in self.vocab[name]] + [f"{name}=<unknown>"]
            else:
                names.append(f"log1p({name})")
            names.append(missing_column(name))
        return names

    def dense(self, ctx: pd.DataFrame) -> np.ndarray:
        """float32: one-hot categoricals (+ an unknown column), log1p numerics divided by the training
        maximum, and a missing-indicator column per feature; a missing numeric is 0 beside its flag."""
        self._require_fitted()
        blocks: list[np.ndarray] = []
        for name in self.features:
            column = ctx[name]
            missing = column.isna().to_numpy()
            if name in CATEGORICAL:
                tokens = self._feature_tokens(name, column)
                onehot = np.zeros((len(column), len(self.vocab[name]) + 1), dtype=np.float32)
                rows = np.flatnonzero(tokens >= FIRST_VALUE_TOKEN)
                onehot[rows, tokens[rows] - FIRST_VALUE_TOKEN] = 1.0
                onehot[tokens == UNKNOWN_TOKEN, -1] = 1.0
                blocks.append(onehot)
            else:
                values = np.log1p(column.to_numpy(dtype=float)) / self.scale[name]
                blocks.append(np.where(missing, 0.0, values).astype(np.float32)[:, None])
            blocks.append(missing.astype(np.float32)[:, None])
        if not blocks:
            return np.zeros((len(ctx), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        self._require_fitted()
        return {
            "features": list(self.features), "n_buckets": self.n_buckets,
            "use_missing_token": self.use_missing_token, "min_count": self.min_count,
            "vocab": self.vocab, "edges": self.edges, "scale": self.scale, "fill_token": self.fill_token,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureEncoder":
        encoder = cls(d["features"], n_buckets=d["n_buckets"], use_missing_token=d["use_missing_token"],
                      min_count=d.get("min_count", 2))
        encoder.vocab = {k: list(v) for k, v in d["vocab"].items()}
        encoder.edges = {k: [float(x) for x in v] for k, v in d["edges"].items()}
        encoder.scale = {k: float(v) for k, v in d["scale"].items()}
        encoder.fill_token = {k: int(v) for k, v in d["fill_token"].items()}
        encoder._fitted = True
        return encoder
