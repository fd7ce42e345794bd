"""The eleven classical baselines, scored by `protocol.evaluate` exactly like the transformer.

Each learns "which item did experiments with this context use" from the training rows only.
Every score matrix carries a tiny global-popularity term so ties (unseen contexts, items a
classifier never predicts) fall back to the most used item rather than to catalogue order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from .catalogue import Catalogue
from .features import CATEGORICAL, FeatureEncoder, context_frame, feature_set as features_of
from .methods import register

TIE_BREAK = 1e-6


class _Baseline:
    name = "baseline"

    def fit(self, train: pd.DataFrame, catalogue: Catalogue, feature_set: str, seed: int) -> "_Baseline":
        self.catalogue = catalogue
        self.features = features_of(feature_set)
        self.seed = seed
        targets = catalogue.targets(train)
        keep = targets >= 0
        self.train_ctx = context_frame(train)[keep]
        self.y = targets[keep]
        counts = np.bincount(self.y, minlength=len(catalogue)).astype(float)
        self.popularity = counts / max(counts.sum(), 1.0)
        # BLAS/OpenMP thread pools oversubscribe a shared 2-core machine (20x slower, measured)
        with threadpool_limits(1):
            self._fit()
        return self

    def _fit(self) -> None:
        pass

    def score(self, test: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(1):
            return self._score(context_frame(test)) + TIE_BREAK * self.popularity[None, :]

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------------- popularity family
@register("random")
class RandomBaseline(_Baseline):
    name = "random"

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        return np.random.default_rng(self.seed).random((len(ctx), len(self.catalogue)))


@register("popularity")
class PopularityBaseline(_Baseline):
    name = "popularity"

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        return np.repeat(self.popularity[None, :], len(ctx), axis=0)


def class_bucket(n_classes: float) -> str:
    if not np.isfinite(n_classes):
        return "missing"  # a paper that does not say is a context of its own
    return "2" if n_classes <= 2 else "3-4" if n_classes <= 4 else "5-9" if n_classes <= 9 else "10+"


class _GroupPopularity(_Baseline):
    """Item frequencies within a context group, shrunk towards the global frequencies by
    `prior_weight` pseudo-experiments (a group of three papers should not outvote the KB), and
    the global frequencies alone when the group is missing or unseen in training."""

    prior_weight = 5.0

    def _keys(self, ctx: pd.DataFrame) -> list:
        raise NotImplementedError

    def _fit(self) -> None:
        self.tables: dict = {}
        for key, item in zip(self._keys(self.train_ctx), self.y):
            if key is None:
                continue
            self.tables.setdefault(key, np.zeros(len(self.catalogue)))[item] += 1.0
        for key, counts in self.tables.items():
            self.tables[key] = (counts + self.prior_weight * self.popularity) / (counts.sum() + self.prior_weight)

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        rows = [self.tables.get(key, self.popularity) if key is not None else self.popularity
                for key in self._keys(ctx)]
        return np.stack(rows) if rows else np.zeros((0, len(self.catalogue)))


def _values(ctx: pd.DataFrame, name: str) -> list:
    return [None if pd.isna(v) else str(v).casefold() for v in ctx[name]]


@register("popularity_domain")
class DomainPopularity(_GroupPopularity):
    name = "popularity_domain"

    def _keys(self, ctx: pd.DataFrame) -> list:
        return _values(ctx, "domain")


@register("popularity_modality")
class ModalityPopularity(_GroupPopularity):
    name = "popularity_modality"

    def _keys(self, ctx: pd.DataFrame) -> list:
        return _values(ctx, "modality")


@register("popularity_domain_classes")
class DomainClassPopularity(_GroupPopularity):
    """Within domain x class-count bucket, backing off to the domain, then to global."""

    name = "popularity_domain_classes"

    def _keys(self, ctx: pd.DataFrame) -> list:
        domains = _values(ctx, "domain")
        return [None if d is None else (d, class_bucket(c)) for d, c in zip(domains, ctx["n_classes"].astype(float))]

    def _fit(self) -> None:
        self.domain = DomainPopularity()
        self.domain.catalogue, self.domain.y, self.domain.popularity = self.catalogue, self.y, self.popularity
        self.domain.train_ctx = self.train_ctx
        self.domain._fit()
        # shrink each (domain, classes) cell towards its domain's distribution, not the global one
        self.tables = {}
        for key, item in zip(self._keys(self.train_ctx), self.y):
            if key is not None:
                self.tables.setdefault(key, np.zeros(len(self.catalogue)))[item] += 1.0
        for (domain, bucket), counts in self.tables.items():
            prior = self.domain.tables.get(domain, self.popularity)
            self.tables[(domain, bucket)] = (counts + self.prior_weight * prior) / (counts.sum() + self.prior_weight)

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        coarse = self.domain._score(ctx)
        rows = [self.tables.get(k, c) if k is not None else c for k, c in zip(self._keys(ctx), coarse)]
        return np.stack(rows) if rows else np.zeros((0, len(self.catalogue)))


# --------------------------------------------------------------------------- context kNN
@register("knn")
class ContextKNN(_Baseline):
    """k nearest training experiments under a Gower-style distance that handles missing values:
    per feature, categorical mismatch = 1, numeric = |log1p difference| / training range, and
    one side missing = 1 while both missing = 0 (a shared silence is a shared trait)."""

    name = "knn"
    k = 15

    def _fit(self) -> None:
        self.train_blocks = self._blocks(self.train_ctx, fit=True)

    def _blocks(self, ctx: pd.DataFrame, fit: bool = False) -> list[tuple[str, np.ndarray]]:
        blocks = []
        if fit:
            self.ranges = {}
        for name in self.features:
            if name in CATEGORICAL:
                blocks.append((name, np.array(_values(ctx, name), dtype=object)))
            else:
                logs = np.log1p(ctx[name].to_numpy(dtype=float))
                if fit:
                    seen = logs[np.isfinite(logs)]
                    self.ranges[name] = float(seen.max() - seen.min()) if seen.size > 1 else 1.0
                blocks.append((name, logs / max(self.ranges[name], 1e-6)))
        return blocks

    def distances(self, ctx: pd.DataFrame) -> np.ndarray:
        total = np.zeros((len(ctx), len(self.train_ctx)))
        for (name, test_v), (_, train_v) in zip(self._blocks(ctx), self.train_blocks):
            if name in CATEGORICAL:
                test_missing = np.array([v is None for v in test_v])
                train_missing = np.array([v is None for v in train_v])
                d = (test_v[:, None] != train_v[None, :]).astype(float)
            else:
                test_missing, train_missing = np.isnan(test_v), np.isnan(train_v)
                d = np.minimum(np.abs(np.nan_to_num(test_v)[:, None] - np.nan_to_num(train_v)[None, :]), 1.0)
            either = test_missing[:, None] | train_missing[None, :]
            both = test_missing[:, None] & train_missing[None, :]
            total += np.where(both, 0.0, np.where(either, 1.0, d))
        return total / max(len(self.features), 1)

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        dist = self.distances(ctx)
        k = min(self.k, dist.shape[1])
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        weights = 1.0 - np.take_along_axis(dist, nearest, axis=1) + 1e-3
        scores = np.zeros((len(ctx), len(self.catalogue)))
        np.add.at(scores, (np.repeat(np.arange(len(ctx)), k), self.y[nearest].ravel()), weights.ravel())
        return scores


# --------------------------------------------------------------------------- classifiers on dense features
class _DenseClassifier(_Baseline):
    """A scikit-learn classifier on `FeatureEncoder.dense` (one-hot + log numerics + missing flags)."""

    def _model(self):
        raise NotImplementedError

    def _fit(self) -> None:
        self.encoder = FeatureEncoder(self.features).fit(self.train_ctx)
        self.classes = np.unique(self.y)
        self.model = None
        if len(self.classes) > 1:
            with warnings.catch_warnings():
                # a fixed iteration budget is part of the baseline's definition, not a fault
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.model = self._model().fit(self.encoder.dense(self.train_ctx), self.y)

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        scores = np.zeros((len(ctx), len(self.catalogue)))
        if self.model is None:
            scores[:, self.classes] = 1.0
        elif len(ctx):
            scores[:, self.model.classes_] = self.model.predict_proba(self.encoder.dense(ctx))
        return scores


@register("logistic_regression")
class LogisticRegressionBaseline(_DenseClassifier):
    name = "logistic_regression"

    def _model(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000)


@register("random_forest")
class RandomForestBaseline(_DenseClassifier):
    name = "random_forest"

    def _model(self):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, min_samples_leaf=2, max_features="sqrt",
                                      random_state=self.seed, n_jobs=1)


@register("gradient_boosting")
class GradientBoostingBaseline(_DenseClassifier):
    name = "gradient_boosting"

    def _model(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=60, max_leaf_nodes=8,
                                              min_samples_leaf=5, l2_regularization=1.0,
                                              early_stopping=False, random_state=self.seed)


@register("mlp")
class MLPBaseline(_DenseClassifier):
    name = "mlp"

    def _model(self):
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=400, early_stopping=False,
                             random_state=self.seed)


# --------------------------------------------------------------------------- factorization machine
@register("factorization_machine")
class FactorizationMachine(_Baseline):
    """A factorization machine over the context fields plus the item field, trained with a
    softmax over items. Context-context interactions are equal for every item of a row, so they
    drop out of the ranking: score(x, i) = b_i + <sum_f x_f v_f, u_i>. Full-batch Adam, L2."""

    name = "factorization_machine"
    rank = 16
    epochs = 300
    learning_rate = 0.03
    l2 = 1e-3

    def _fit(self) -> None:
        self.encoder = FeatureEncoder(self.features).fit(self.train_ctx)
        x = self.encoder.dense(self.train_ctx).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        n_items = len(self.catalogue)
        params = {
            "v": rng.normal(0, 0.05, (x.shape[1], self.rank)),
            "u": rng.normal(0, 0.05, (n_items, self.rank)),
            "b": np.log(self.popularity + 1e-3),
        }
        moments = {k: (np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
        onehot = np.zeros((len(x), n_items))
        onehot[np.arange(len(x)), self.y] = 1.0
        for step in range(1, self.epochs + 1):
            context = x @ params["v"]
            logits = context @ params["u"].T + params["b"]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            g = (probs - onehot) / len(x)
            grads = {
                "u": g.T @ context + self.l2 * params["u"],
                "v": x.T @ (g @ params["u"]) + self.l2 * params["v"],
                "b": g.sum(axis=0),
            }
            for k, grad in grads.items():
                m, s = moments[k]
                m[:] = 0.9 * m + 0.1 * grad
                s[:] = 0.999 * s + 0.001 * grad ** 2
                params[k] -= self.learning_rate * (m / (1 - 0.9 ** step)) / (np.sqrt(s / (1 - 0.999 ** step)) + 1e-8)
        self.params = params

    def _score(self, ctx: pd.DataFrame) -> np.ndarray:
        x = self.encoder.dense(ctx).astype(np.float64)
        return (x @ self.params["v"]) @ self.params["u"].T + self.params["b"]


BASELINES: tuple[str, ...] = (
    "random", "popularity", "popularity_domain", "popularity_modality", "popularity_domain_classes", "knn",
    "logistic_regression", "random_forest", "gradient_boosting", "mlp", "factorization_machine",
)
