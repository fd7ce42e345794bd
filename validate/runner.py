"""`validate` as a library call: choose the models (given, or the recommender's top N), train each
model x seed with the MedMNIST recipe, evaluate, compare with the published figure, write back."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..errors import UserError
from ..kb import KnowledgeBase, normalize
from . import architectures
from .architectures import Architecture, Skipped
from .datasets import MedMNISTDataset, check_size, get_dataset, task_features
from .writeback import published_with_fallback, record_run

DEFAULT_TOP = 3


@dataclass
class ValidationRequest:
    dataset: str
    models: Optional[list[str]] = None
    top: Optional[int] = None
    epochs: int = 100
    size: int = 28
    seeds: int = 1
    device: str = "auto"
    data_root: Optional[str | Path] = None
    download: bool = False
    batch_size: int = 128
    resume: bool = False
    out: Optional[str | Path] = None
    threads: Optional[int] = None
    kb: Optional[str | Path] = None
    checkpoint_seconds: float = 60.0
    verify: bool = True  # md5 of the data file against medmnist's INFO before training
    record_unverified: bool = False  # write runs on an unverified (--no-verify) file to the KB anyway
    compile: bool = False  # torch.compile on CUDA


@dataclass
class RunRecord:
    model: str
    seed: int
    result: object  # train.TrainResult
    experiment_id: Optional[int]  # None: not written (an unverified file)
    published: dict[str, float] = field(default_factory=dict)
    recommended_score: Optional[float] = None

    def as_dict(self) -> dict:
        r = self.result
        published_acc, published_auc = self.published.get("accuracy"), self.published.get("auc")
        return {
            "model": self.model, "test_acc": r.test_acc, "test_auc": r.test_auc, "epochs": r.epochs,
            "seconds": round(r.seconds, 2), "device": r.device, "device_name": r.device_name, "seed": self.seed,
            "val_acc": r.val_acc, "val_auc": r.val_auc, "best_epoch": r.best_epoch,
            "epoch_seconds": round(r.epoch_seconds, 3), "images_per_s": round(r.images_per_s, 1),
            "peak_memory_mb": round(r.peak_memory_mb, 1), "resumed_from_epoch": r.resumed_from_epoch,
            "published_acc": published_acc, "published_auc": published_auc,
            "delta_acc": None if published_acc is None else r.test_acc - published_acc,
            "delta_auc": None if published_auc is None else r.test_auc - published_auc,
            "recommended_score": self.recommended_score, "experiment_id": self.experiment_id,
        }


@dataclass
class ValidationReport:
    dataset: MedMNISTDataset
    size: int
    runs: list[RunRecord]
    skipped: list[Skipped]
    kb: str
    published_from: Optional[str] = None
    recommended: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "dataset": self.dataset.canonical, "flag": self.dataset.flag, "size": self.size,
            "results": [run.as_dict() for run in self.runs],
            "skipped": [{"model": s.model, "reason": s.reason} for s in self.skipped],
            "recommended": self.recommended, "kb": self.kb, "published_from": self.published_from,
        }

    def summary(self) -> list[dict]:
        """One row per model: mean and spread over seeds."""
        rows: list[dict] = []
        for model in dict.fromkeys(run.model for run in self.runs):
            runs = [run for run in self.runs if run.model == model]
            acc = [run.result.test_acc for run in runs]
            auc = [run.result.test_auc for run in runs]
            rows.append({
                "model": model, "seeds": len(runs), "acc": statistics.fmean(acc), "acc_std": _std(acc),
                "auc": statistics.fmean(auc), "auc_std": _std(auc),
                "published_acc": runs[0].published.get("accuracy"), "published_auc": runs[0].published.get("auc"),
                "seconds": sum(run.result.seconds for run in runs), "device": runs[0].result.device,
            })
        return rows


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def run_validation(request: ValidationRequest, progress: Callable[[str], None] = lambda _: None) -> ValidationReport:
    dataset = get_dataset(request.dataset)
    size = check_size(request.size)
    _check_numbers(request)
    from .data import load_arrays
    from .train import resolve_device

    resolve_device(request.device)  # a missing GPU or data file fails before the KB is touched
    arrays = load_arrays(dataset, size, request.data_root, request.download, verify=request.verify)
    write = may_record(arrays.check, request, progress)
    store = open_store(request.kb, write)
    choices, recommended = _choose_models(request, store, dataset, size)
    trainable, skipped = _resolve_models(choices, size, store)
    if not trainable:
        reasons = "; ".join(s.reason for s in skipped)
        raise UserError(f"none of the models can be trained here ({reasons}): pass --models with some of "
                        f"{', '.join(architectures.REGISTRY)}")
    published, published_from = published_with_fallback(store, dataset.canonical, size)
    scores = {item["model"]: item["score"] for item in recommended}
    runs: list[RunRecord] = []
    for arch in trainable:
        reason = arch.cannot_train(len(arrays["train"]))
        if reason:
            skipped.append(Skipped(arch.name, reason))
            continue
        for seed in range(request.seeds):
            result = _train_one(arch, arrays, request, seed, progress)
            experiment_id = record_run(store, dataset, size, arch.name, seed, result, arrays.check) if write else None
            progress(f"{arch.name} seed {seed}: test ACC {result.test_acc:.3f}, AUC {result.test_auc:.3f} "
                     f"(best val epoch {result.best_epoch}) in {result.seconds:.0f}s on {result.device_name}, "
                     f"{result.images_per_s:.0f} images/s, peak memory {result.peak_memory_mb:.0f} MB "
                     f"(KB experiment {experiment_id})")
            runs.append(RunRecord(arch.name, seed, result, experiment_id, published.get(arch.name, {}),
                                  scores.get(arch.name)))
    return ValidationReport(dataset, size, runs, skipped, store.location.describe(), published_from, recommended)


def open_store(kb, write: bool) -> KnowledgeBase:
    """The KB to record in; when nothing is to be written, the KB opened read-only (for the
    published figures and the recommender), or an empty in-memory one when there is none yet."""
    if write:
        return KnowledgeBase.open(kb, write=True)
    from ..kb.db import KBError

    try:
        return KnowledgeBase.open(kb)
    except KBError:
        return KnowledgeBase.in_memory()


def may_record(check, request, progress: Callable[[str], None]) -> bool:
    """Whether runs on the file `check` describes go to the KB: always for a verified file (or
    arrays built in memory: None); for an unverified one (--no-verify) only when the user also
    asked for it (--record-unverified)."""
    if check is None or check.verified:
        return True
    if request.record_unverified:
        progress(f"{check.path}: md5 {check.md5} is not medmnist's {check.expected_md5}; runs are recorded "
                 f"as unverified (--record-unverified)")
        return True
    progress(f"{check.path}: md5 {check.md5} is not medmnist's {check.expected_md5}; training anyway "
             f"(--no-verify), nothing is written to the KB (add --record-unverified to record it)")
    return False


def _check_numbers(request: ValidationRequest) -> None:
    for flag, value, least in (("--epochs", request.epochs, 1), ("--seeds", request.seeds, 1),
                               ("--batch-size", request.batch_size, 2), ("--top", request.top or 1, 1),
                               ("--threads", request.threads or 1, 1)):
        if value < least:
            raise UserError(f"{flag} {value} is too small: pass {flag} {least} or more")
    if request.models is not None and request.top is not None:
        raise UserError("--models and --top both given: pass one of them")
    if request.models is not None and not request.models:
        raise UserError("--models is empty: pass model names separated by commas, e.g. --models resnet18,svm")


def _choose_models(request: ValidationRequest, store: KnowledgeBase, dataset: MedMNISTDataset,
                   size: int) -> tuple[list[str], list[dict]]:
    if request.models is not None:
        return list(request.models), []
    try:
        from ..recommend import service
    except ModuleNotFoundError as exc:
        if exc.name not in ("medicalrec.recommend.service", "medicalrec.recommend"):
            raise
        service = None
    recommend_for_task = getattr(service, "recommend_for_task", None)
    if recommend_for_task is None:
        raise UserError("the recommender is not available: pass --models")
    top = request.top or DEFAULT_TOP
    # objective None: the one `medicalrec recommend` takes by default — performance (who wins on similar
    # tasks) when the KB holds comparisons, usage (what papers like this use) otherwise
    items = list(recommend_for_task(store, task_features(dataset, size), top, objective=None))[:top]
    recommended = [{"model": item.model, "score": float(item.score)} for item in items]
    if not recommended:
        raise UserError(f"the recommender has nothing for {dataset.canonical}: pass --models")
    return [item["model"] for item in recommended], recommended


def _resolve_models(names: list[str], size: int, store: KnowledgeBase) -> tuple[list[Architecture], list[Skipped]]:
    index = {**architectures.catalog_index(), **store.model_alias_index()}
    trainable: list[Architecture] = []
    skipped: list[Skipped] = []
    for name in names:
        found = architectures.resolve(name, size, index)
        if isinstance(found, Skipped):
            if found.model not in [s.model for s in skipped]:
                skipped.append(found)
        elif found not in trainable:
            trainable.append(found)
    return trainable, skipped


def run_directory(out: Optional[str | Path]) -> Path:
    if out:
        return Path(out).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("medicalrec", appauthor=False)) / "runs"


def _train_one(arch: Architecture, arrays, request: ValidationRequest, seed: int, progress,
               interrupt_as_error: bool = True):
    from .train import TrainConfig, fit_classical, seed_everything, train_network

    dataset = arrays.dataset
    if not arch.is_torch:
        seed_everything(seed)
        progress(f"{arch.name} seed {seed}: fitting on {len(arrays['train']):,} images ({arch.description})")
        return fit_classical(arch.build(dataset.n_channels, dataset.n_classes, request.size, seed), arrays)
    checkpoint_dir = (run_directory(request.out) / f"{dataset.flag}_{request.size}" / normalize.name_key(arch.name)
                      / f"seed{seed}_epochs{request.epochs}_batch{request.batch_size}")
    config = TrainConfig(epochs=request.epochs, batch_size=request.batch_size, seed=seed, device=request.device,
                         threads=request.threads, checkpoint_dir=checkpoint_dir, resume=request.resume,
                         checkpoint_seconds=request.checkpoint_seconds, compile=request.compile)

    def on_epoch(log) -> None:
        marker = " (best)" if log.best else ""
        progress(f"{arch.name} seed {seed}: epoch {log.epoch}/{log.epochs} loss {log.train_loss:.4f} "
                 f"val AUC {log.val_auc:.3f} ACC {log.val_acc:.3f}{marker} [{log.seconds:.1f}s]")

    progress(f"{arch.name} seed {seed}: training {request.epochs} epochs ({arch.description}); "
             f"checkpoints in {checkpoint_dir}")
    try:
        return train_network(lambda: arch.build(dataset.n_channels, dataset.n_classes, request.size),
                             arrays, config, identity={"model": arch.name}, on_epoch=on_epoch)
    except KeyboardInterrupt:
        if not interrupt_as_error:  # a sweep stops as a whole and says so itself
            raise
        raise UserError(f"interrupted while training {arch.name} seed {seed}: re-run with --resume to continue "
                        f"from the last checkpoint in {checkpoint_dir}") from None
