"""The one interface every recommender method implements, and the registry of all of them.

RecBole's discipline: methods only *score*; `protocol.evaluate` splits, ranks and measures the
same way for every method. Providers register on import: `baselines.py` (the eleven classical
baselines) and `ranker.py` (the transformer and its no-missing-token ablation). The registry
imports them on first use, so importing this module stays cheap (no torch).
"""

from __future__ import annotations

import importlib
from typing import Callable, Iterator, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .catalogue import Catalogue


@runtime_checkable
class Method(Protocol):
    name: str

    def fit(self, train: pd.DataFrame, catalogue: Catalogue, feature_set: str, seed: int) -> "Method":
        """Learn from experiments_frame rows (all columns: metrics too, for the "who won" signal);
        `features.context_frame(train)` gives the context columns."""
        ...

    def score(self, test: pd.DataFrame) -> np.ndarray:
        """(len(test), len(catalogue.items)) float scores, higher = better."""
        ...


MethodFactory = Callable[[], Method]

# Modules that register methods when imported. A provider that is not there yet is skipped.
PROVIDERS: tuple[str, ...] = ("medicalrec.recommend.baselines", "medicalrec.recommend.ranker")

# Report order: the ranker and its ablation first, then baselines from simplest to richest.
REPORT_ORDER: tuple[str, ...] = (
    "transformer", "transformer_no_missing", "random", "popularity", "popularity_domain",
    "popularity_modality", "popularity_domain_classes", "knn", "logistic_regression",
    "random_forest", "gradient_boosting", "mlp", "factorization_machine",
)


class _LazyRegistry(dict):
    """A dict of name -> factory that imports the providers the first time it is read."""

    _loaded = False
    _loading = False

    def _load(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in PROVIDERS:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name != module:
                        raise
        finally:
            self._loading = False
        self._loaded = True

    def __getitem__(self, name: str) -> MethodFactory:
        self._load()
        try:
            return super().__getitem__(name)
        except KeyError:
            raise KeyError(f"unknown method {name!r}; registered: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def keys(self):  # type: ignore[override]
        self._load()
        return self.names()

    def items(self):  # type: ignore[override]
        self._load()
        return [(n, super(_LazyRegistry, self).__getitem__(n)) for n in self.names()]

    def values(self):  # type: ignore[override]
        return [f for _, f in self.items()]

    def get(self, name, default=None):  # type: ignore[override]
        self._load()
        return super().get(name, default)

    def names(self) -> list[str]:
        """Registered names in report order (unknown extras last, alphabetically)."""
        self._load()
        present = set(dict.keys(self))
        ordered = [n for n in REPORT_ORDER if n in present]
        return ordered + sorted(present - set(ordered))


METHODS: dict[str, MethodFactory] = _LazyRegistry()


def register(name: str) -> Callable[[MethodFactory], MethodFactory]:
    """Decorator for a provider: `@register("knn")` on a class or zero-argument factory."""

    def decorate(factory: MethodFactory) -> MethodFactory:
        dict.__setitem__(METHODS, name, factory)
        return factory

    return decorate


def make(name: str) -> Method:
    """A fresh, unfitted instance of the named method."""
    method = METHODS[name]()
    if not getattr(method, "name", None):
        method.name = name
    return method


def method_names() -> list[str]:
    return METHODS.names()  # type: ignore[attr-defined]
