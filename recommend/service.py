"""The recommender as a service: train on a KB, save/load checkpoints, cache by the KB's
fingerprint, and answer "which model should I train for this task?" with evidence.

A checkpoint is one torch file: the ranker's weights plus a JSON header holding the feature
encoder's vocabularies, the catalogue, the feature set, the KB's fingerprint and the evaluation
figures measured when it was trained. `torch.load(weights_only=True)` reads it (no pickled code).

`recommend` with no `--model` uses a checkpoint for the current KB from the user cache dir,
training it the first time (so the bundled seed trains once, then loads).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import UserError
from ..kb import KnowledgeBase
from .catalogue import Catalogue
from .evidence import Coverage, Evidence, EvidenceIndex
from .features import FEATURE_SETS, task_to_frame
from .task import normalise_task

CHECKPOINT_FORMAT = 1
DEFAULT_FEATURE_SET = "IV"
DEFAULT_EVAL_FOLDS = 5
# The baseline a checkpoint's evaluation reports beside the ranker (global popularity: cheap, and on the
# literature KB the hardest single baseline to beat; `recommend evaluate` runs all twelve).
REFERENCE_BASELINE = "popularity"
# Catalogue items that name no trainable model ("Other": bespoke models of no known family). They stay
# in the ranker (and in evaluation); the user-facing list skips them.
NOT_RECOMMENDABLE = frozenset({"Other"})
USAGE, PERFORMANCE = "usage", "performance"
OBJECTIVES = (PERFORMANCE, USAGE)

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


# ---------------------------------------------------------------------- checkpoint
@dataclass
class Checkpoint:
    ranker: Any  # ranker.TransformerRanker (torch is imported lazily)
    kb_fingerprint: str
    kb_location: str
    n_experiments: int
    evaluation: dict[str, Any] = field(default_factory=dict)
    trained_at: str = ""
    seed: int = 0

    @property
    def feature_set(self) -> str:
        return self.ranker.feature_set

    @property
    def catalogue(self) -> Catalogue:
        return self.ranker.catalogue

    def header(self) -> dict[str, Any]:
        state = self.ranker.state_dict()
        return {
            "format": CHECKPOINT_FORMAT, "kb_fingerprint": self.kb_fingerprint, "kb_location": self.kb_location,
            "n_experiments": self.n_experiments, "evaluation": self.evaluation, "trained_at": self.trained_at,
            "seed": self.seed, "ranker": {k: v for k, v in state.items() if k != "weights"},
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically (a temp file renamed into place), so a crash never leaves half a model."""
        import torch

        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"header": json.dumps(self.header(), default=_json_default),
                   "weights": self.ranker.state_dict()["weights"]}
        fd, tmp = tempfile.mkstemp(prefix=".ranker-", suffix=".pt", dir=path.parent)
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        import pickle

        import torch

        from .ranker import TransformerRanker

        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"no model file at {path}: train one with `medicalrec recommend train --out {path}`")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            header = json.loads(payload["header"])
        except (pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError, EOFError, OSError) as exc:
            raise UserError(f"{path} is not a medicalrec model file ({type(exc).__name__}): pass another --model") from None
        if header.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{path} has checkpoint format {header.get('format')}, this version reads "
                            f"{CHECKPOINT_FORMAT}: retrain with `medicalrec recommend train`")
        state = {**header["ranker"], "weights": payload["weights"]}
        if state.get("name") == "performance":
            from .performance import PerformanceRanker

            ranker = PerformanceRanker.from_state(state)
        else:
            ranker = TransformerRanker.from_state(state)
        return cls(ranker=ranker, kb_fingerprint=header["kb_fingerprint"], kb_location=header["kb_location"],
                   n_experiments=header["n_experiments"], evaluation=header.get("evaluation", {}),
                   trained_at=header.get("trained_at", ""), seed=header.get("seed", 0))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------- training
def training_frame(store: KnowledgeBase) -> pd.DataFrame:
    """The KB's experiments with each benchmark row's protocol (comparisons.load_experiments)."""
    from .comparisons import load_experiments

    experiments = load_experiments(store)
    if experiments.empty:
        raise UserError(f"{store.location.describe()} has no experiments: import some with `medicalrec kb import FILE --kb ...`")
    return experiments


def default_objective(experiments: pd.DataFrame) -> str:
    """performance when the KB holds comparisons (a paper or benchmark task measuring >= 2 models), else usage."""
    from .comparisons import has_comparisons

    return PERFORMANCE if has_comparisons(experiments) else USAGE


def check_objective(objective: Optional[str], experiments: pd.DataFrame) -> str:
    if objective is None:
        return default_objective(experiments)
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r} for --objective; expected one of {', '.join(OBJECTIVES)}")
    return objective


def train_checkpoint(store: KnowledgeBase, *, feature_set: str = DEFAULT_FEATURE_SET, seed: int = 0,
                     folds: int = DEFAULT_EVAL_FOLDS, progress: Progress = _quiet,
                     experiments: Optional[pd.DataFrame] = None, objective: str = "usage") -> Checkpoint:
    """Train the ranker on every experiment of `store`.

    The checkpoint's evaluation always holds the ranker's inner-validation figures (papers held out
    for early stopping); with folds ≥ 2 it also holds a grouped cross-validation of the ranker and
    the reference baseline by the one protocol (what `recommend train` does by default).
    """
    from .ranker import TransformerRanker

    if feature_set not in FEATURE_SETS:
        raise UserError(f"unknown feature set {feature_set!r} for --features; expected one of {', '.join(FEATURE_SETS)}")
    experiments = training_frame(store) if experiments is None else experiments
    if objective == PERFORMANCE:
        from .performance import PerformanceRanker

        progress(f"training the performance ranker on {len(experiments)} experiments (feature set {feature_set}) ...")
        ranker = PerformanceRanker().fit(experiments, None, feature_set, seed)
        return Checkpoint(ranker=ranker, kb_fingerprint=store.fingerprint(), kb_location=str(store.location.path),
                          n_experiments=int(len(experiments)), evaluation={"training": ranker.history},
                          trained_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), seed=seed)
    from .comparisons import usage_rows

    experiments = usage_rows(experiments)  # usage = what papers use; benchmark rows run every model by design
    evaluation: dict[str, Any] = {}
    if folds and folds >= 2:
        progress(f"evaluating by {folds}-fold grouped cross-validation on {len(experiments)} experiments ...")
        evaluation["cross_validation"] = evaluation_summary(
            experiments, ["transformer", REFERENCE_BASELINE], folds, feature_set, seed)
    progress(f"training the ranker on {len(experiments)} experiments (feature set {feature_set}) ...")
    catalogue = Catalogue.build(experiments)
    ranker = TransformerRanker().fit(experiments, catalogue, feature_set, seed)
    evaluation["inner_validation"] = ranker.history.get("inner_validation", {})
    return Checkpoint(ranker=ranker, kb_fingerprint=store.fingerprint(), kb_location=str(store.location.path),
                      n_experiments=int(len(experiments)), evaluation=evaluation,
                      trained_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), seed=seed)


def evaluation_summary(experiments: pd.DataFrame, methods: list[str], folds: int, feature_set: str,
                       seed: int) -> dict[str, Any]:
    """Mean and std per metric per method, from the one evaluation protocol."""
    from . import protocol

    report = protocol.evaluate(experiments, methods, n_folds=folds, feature_set=feature_set, seed=seed)
    return report_summary(report)



def report_summary(report: Any) -> dict[str, Any]:
    """A JSON-able digest of a protocol.EvaluationReport: {"n_test", "n_items", "methods": {name:
    {metric: mean}}, "std", "significance", ...}."""
    return json.loads(json.dumps(report.to_json(), default=_json_default))


# ---------------------------------------------------------------------- cache
def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("medicalrec", appauthor=False)) / "recommend"


def _code_version(objective: str = USAGE) -> str:
    """Part of the cache key: a change to the ranker's defaults or checkpoint format retrains."""
    if objective == PERFORMANCE:
        from . import performance

        config = performance.DEFAULT_PERFORMANCE_CONFIG.to_dict()
        config["comparisons"] = 2  # bump when the comparison-group rule changes
    else:
        from . import ranker

        config = ranker.DEFAULT_CONFIG.to_dict()
    blob = json.dumps({"format": CHECKPOINT_FORMAT, "config": config}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def cache_path(fingerprint: str, feature_set: str, seed: int = 0, objective: str = USAGE) -> Path:
    prefix = "perf-ranker" if objective == PERFORMANCE else "ranker"
    return cache_dir() / f"{prefix}-{fingerprint}-{feature_set}-s{seed}-{_code_version(objective)}.pt"


def load_or_train(store: KnowledgeBase, *, feature_set: str = DEFAULT_FEATURE_SET, model_path: Optional[str] = None,
                  seed: int = 0, progress: Progress = _quiet,
                  experiments: Optional[pd.DataFrame] = None, objective: str = USAGE) -> tuple[Checkpoint, str]:
    """The checkpoint to recommend with, and where it came from ("file", "cache" or "trained")."""
    if model_path:
        checkpoint = Checkpoint.load(model_path)
        fingerprint = store.fingerprint()
        if checkpoint.kb_fingerprint != fingerprint:
            progress(f"note: {model_path} was trained on another KB state ({checkpoint.kb_fingerprint}, this KB is "
                     f"{fingerprint}); evidence comes from this KB")
        return checkpoint, "file"
    fingerprint = store.fingerprint()
    path = cache_path(fingerprint, feature_set, seed, objective)
    if path.is_file():
        try:
            return Checkpoint.load(path), "cache"
        except UserError:
            progress(f"note: ignoring an unreadable cached model at {path}; retraining")
    progress(f"no cached model for this KB ({fingerprint}); training once, later runs load it from {path.parent}")
    # No cross-validation here: the first `recommend` stays quick; `recommend train` measures it.
    checkpoint = train_checkpoint(store, feature_set=feature_set, seed=seed, folds=0, progress=progress,
                                  experiments=experiments, objective=objective)
    try:
        checkpoint.save(path)
    except OSError as exc:
        progress(f"note: could not cache the model in {path.parent} ({exc.strerror}); it will retrain next time")
    return checkpoint, "trained"


# ---------------------------------------------------------------------- recommending
@dataclass
class Recommendation:
    rank: int
    model: str
    family: str
    score: float  # the ranker's probability for this item over the catalogue
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "model": self.model, "family": self.family, "score": self.score,
                "evidence": self.evidence.to_dict()}


@dataclass
class RecommendationReport:
    task: dict[str, Any]
    recommendations: list[Recommendation]
    coverage: Coverage
    catalogue_size: int
    feature_set: str
    kb_fingerprint: str
    model_source: str

    @property
    def warning(self) -> Optional[str]:
        return self.coverage.warning

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "catalogue_size": self.catalogue_size, "feature_set": self.feature_set,
                "kb_fingerprint": self.kb_fingerprint, "model_source": self.model_source,
                "coverage": self.coverage.to_dict(), "warning": self.warning,
                "recommendations": [r.to_dict() for r in self.recommendations]}


@dataclass
class PickReport:
    """`recommend --objective performance`: picks with expected rank, size, Pareto flag and evidence."""

    task: dict[str, Any]
    picks: list[Any]  # picks.Pick
    left_out: dict[str, Any]
    scope: str
    n_similar_groups: int
    catalogue_size: int
    feature_set: str
    kb_fingerprint: str
    model_source: str
    prior_weight: float
    max_params: Optional[float] = None
    objective: str = PERFORMANCE

    @property
    def recommendations(self) -> list[Any]:
        return self.picks

    @property
    def warning(self) -> Optional[str]:
        if self.scope == "KB":
            return ("low coverage: no comparison in the KB is on this dataset, domain or modality; the picks rest on "
                    "the model side (family, size, pretraining) and on usage")
        if not self.picks:
            return "no pick fits: relax --max-params or add --include-families"
        return None

    @property
    def pareto(self) -> list[dict[str, Any]]:
        front = [p for p in self.picks if p.pareto]
        return [{"model": p.model, "params_millions": p.params_millions, "expected_rank": p.expected_rank}
                for p in sorted(front, key=lambda p: p.params_millions)]

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "task": self.task, "catalogue_size": self.catalogue_size,
                "feature_set": self.feature_set, "kb_fingerprint": self.kb_fingerprint, "model_source": self.model_source,
                "evidence_scope": self.scope, "n_similar_comparisons": self.n_similar_groups,
                "prior_weight": self.prior_weight, "max_params": self.max_params, "left_out": self.left_out,
                "warning": self.warning, "recommendations": [p.to_dict() for p in self.picks], "pareto": self.pareto}


class Recommender:
    """A loaded checkpoint plus the KB's experiments it draws evidence from (load once, ask often)."""

    def __init__(self, checkpoint: Checkpoint, experiments: pd.DataFrame, *, kb_fingerprint: str,
                 dataset_aliases: Optional[Mapping[str, str]] = None, model_source: str = "file") -> None:
        self.checkpoint = checkpoint
        self.objective = PERFORMANCE if getattr(checkpoint.ranker, "attributes", None) is not None else USAGE
        if self.objective == USAGE:
            from .comparisons import usage_rows

            experiments = usage_rows(experiments)
        self.experiments = experiments
        self.kb_fingerprint = kb_fingerprint
        self.dataset_aliases = dict(dataset_aliases or {})
        self.model_source = model_source
        self.evidence = EvidenceIndex(experiments, checkpoint.catalogue)
        self._comparisons = None
        # what normalise_task reads, once per distinct value (a benchmark KB repeats them 30,000 times)
        # (performance only: the usage path keeps its rows, so a dataset's most frequent domain stays the same)
        columns = [c for c in ("dataset", "domain", "modality") if c in experiments]
        self._task_rows = experiments[columns].drop_duplicates() if columns and self.objective == PERFORMANCE \
            else experiments

    @classmethod
    def for_kb(cls, store: KnowledgeBase, *, model_path: Optional[str] = None, feature_set: str = DEFAULT_FEATURE_SET,
               seed: int = 0, progress: Progress = _quiet,
               experiments: Optional[pd.DataFrame] = None, objective: Optional[str] = USAGE) -> "Recommender":
        """`objective` None: performance when the KB holds comparisons, else usage."""
        experiments = training_frame(store) if experiments is None else experiments
        objective = check_objective(objective, experiments)
        checkpoint, source = load_or_train(store, feature_set=feature_set, model_path=model_path, seed=seed,
                                           progress=progress, experiments=experiments, objective=objective)
        return cls(checkpoint, experiments, kb_fingerprint=checkpoint.kb_fingerprint if source != "file"
                   else store.fingerprint(), dataset_aliases=store.dataset_alias_index(), model_source=source)

    @property
    def comparisons(self):
        if self._comparisons is None:
            from .picks import ComparisonIndex

            self._comparisons = ComparisonIndex(self.experiments, self.checkpoint.catalogue)
        return self._comparisons

    def recommend_performance(self, task: Mapping[str, Any], top: int = 10, *, include_families: bool = False,
                              max_params: Optional[float] = None) -> PickReport:
        from .picks import choose_picks

        if max_params is not None and not (isinstance(max_params, (int, float)) and max_params > 0):
            raise UserError(f"--max-params must be a positive number of millions, got {max_params!r}")
        clean = self.normalise(task)
        ranker, catalogue = self.checkpoint.ranker, self.checkpoint.catalogue
        scores = ranker.score_context(task_to_frame(clean))[0]
        picks, left_out = choose_picks(scores, catalogue, ranker.attributes.params_millions, self.comparisons, clean,
                                       int(top), include_families=include_families, max_params=max_params)
        scope, block = self.comparisons.similar(clean)
        return PickReport(task=clean, picks=picks, left_out=left_out, scope=scope,
                                 n_similar_groups=int(block["group"].nunique()) if len(block) else 0,
                                 catalogue_size=len(catalogue.items), feature_set=ranker.feature_set,
                                 kb_fingerprint=self.kb_fingerprint, model_source=self.model_source,
                                 prior_weight=float(ranker.prior_weight), max_params=max_params)

    def normalise(self, task: Mapping[str, Any]) -> dict[str, Any]:
        return normalise_task(task, self._task_rows, self.dataset_aliases)

    def recommend(self, task: Mapping[str, Any], top: int = 10, **options: Any) -> RecommendationReport:
        """Usage checkpoints give a RecommendationReport; performance ones a PickReport
        (options: include_families, max_params)."""
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top <= 0:
            raise UserError(f"--top must be a positive whole number, got {top!r}")
        if self.objective == PERFORMANCE:
            return self.recommend_performance(task, top, **options)
        clean = self.normalise(task)
        ranker, catalogue = self.checkpoint.ranker, self.checkpoint.catalogue
        scores = ranker.score_context(task_to_frame(clean))[0]
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        ranked = np.argsort(-scores, kind="stable")
        order = [c for c in ranked if catalogue.items[c] not in NOT_RECOMMENDABLE][: int(top)]
        similar, coverage = self.evidence.similar(clean)
        recommendations = []
        for rank, column in enumerate(order, start=1):
            item = catalogue.items[column]
            evidence = self.evidence.evidence(similar, item)
            recommendations.append(Recommendation(rank=rank, model=item, family=catalogue.family_of[item],
                                                  score=float(probabilities[column]), evidence=evidence))
        return RecommendationReport(task=clean, recommendations=recommendations, coverage=coverage,
                                    catalogue_size=len(catalogue.items), feature_set=ranker.feature_set,
                                    kb_fingerprint=self.kb_fingerprint, model_source=self.model_source)


_LOADED: dict[tuple[str, str, str, str], Recommender] = {}


def recommender_for(store: KnowledgeBase, *, feature_set: str = DEFAULT_FEATURE_SET,
                    progress: Progress = _quiet, objective: Optional[str] = USAGE) -> Recommender:
    """One Recommender per KB state and objective in this process (the validate stage asks many times)."""
    key = (str(store.location.path), store.fingerprint(), feature_set, str(objective))
    if key not in _LOADED or str(store.location.path) == ":memory:":
        _LOADED[key] = Recommender.for_kb(store, feature_set=feature_set, progress=progress, objective=objective)
    return _LOADED[key]


def recommend_for_task(store: KnowledgeBase, task: dict, top: int = 10, *,
                       feature_set: str = DEFAULT_FEATURE_SET, objective: Optional[str] = USAGE) -> list[Any]:
    """Ranked models for `task` (keys as `medicalrec recommend`'s options: domain, modality, dataset,
    n_classes, n_samples, width, height, channels, ...), each with .model .family .score .evidence.
    `objective` "performance" gives trainable architectures ranked by expected score (picks.Pick);
    None picks performance when the KB holds comparisons, else usage: `medicalrec recommend`'s default,
    which `validate --top N` asks for. The default here stays usage for callers written against it."""
    return recommender_for(store, feature_set=feature_set, objective=objective).recommend(task, top).recommendations
