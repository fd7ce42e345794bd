"""Validation runs into the KB, and the published MedMNIST v2 figures out of it.

Each run is an experiment of the paper "medicalrec-validation" whose setting names what makes it
reproducible (size, epochs, seed, device); its 14 features and its test ACC/AUC carry `validated`
provenance, and a `validation_runs` row holds the cost. Re-running a setting replaces it.
"""

from __future__ import annotations

from typing import Callable, Optional

from sqlalchemy.exc import DBAPIError

from ..kb import ExperimentRecord, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance
from ..kb.db import KBError, seed_path
from .datasets import MedMNISTDataset, kb_features
from .train import TrainResult
from .verify import FileCheck

VALIDATION_REF_ID = "medicalrec-validation"
VALIDATION_TITLE = "medicalrec validation runs (this project's own measurements)"
PUBLISHED_REF_ID = "Yang2023MedMNISTv2"


def setting_for(size: int, epochs: int, seed: int, device: str, verified: bool = True) -> str:
    # an unverified file's run never replaces the verified run of the same setting
    return f"size={size};epochs={epochs};seed={seed};device={device}" + ("" if verified else ";unverified")


def record_run(store: KnowledgeBase, dataset: MedMNISTDataset, size: int, model: str, seed: int,
               result: TrainResult, file_check: Optional[FileCheck] = None) -> int:
    """Store one run (replacing an earlier run of the same setting); returns its experiment id.
    `file_check` (the md5 check of the data file) goes into the provenance: the snippet says
    whether the file was verified, the notes give its md5."""
    verified = file_check is None or file_check.verified
    setting = setting_for(size, result.epochs, seed, result.device, verified)
    snippet = (f"medicalrec validate: {model} on {dataset.canonical} {size}px, seed {seed}, {result.epochs} epochs "
               f"on {result.device_name}: test ACC {result.test_acc:.3f}, AUC {result.test_auc:.3f}"
               + ("" if verified else "; UNVERIFIED data file (--no-verify)"))
    provenance = Provenance(method="validated", snippet=snippet)
    record = ExperimentRecord(
        model=model, dataset=dataset.canonical, setting=setting, features=kb_features(dataset, size),
        measurements=[MeasurementRecord("accuracy", result.test_acc, provenance, split="test"),
                      MeasurementRecord("auc", result.test_auc, provenance, split="test")],
        notes=(f"best validation AUC {result.val_auc:.4f} at epoch {result.best_epoch}; "
               f"{result.images_per_s:.0f} training images/s on {result.device_name}"
               + (f"; {file_check.provenance()}" if file_check is not None else "")),
    )
    paper = PaperRecord(ref_id=VALIDATION_REF_ID, title=VALIDATION_TITLE, origin="validated")
    saved = store.save_paper(paper, [record], replace_existing=True)
    experiment_id = saved.experiment_ids[0]
    gpu_hours = result.seconds / 3600 if result.device == "cuda" else 0.0
    store.add_validation_run(experiment_id, seed=seed, epochs=result.epochs, device=result.device,
                             seconds=result.seconds, gpu_hours=gpu_hours, size=size)
    return experiment_id


_PUBLISHED_SQL = (
    "SELECT m.name AS model, ms.metric AS metric, ms.value AS value FROM experiments e"
    " JOIN papers p ON p.id = e.paper_id JOIN models m ON m.id = e.model_id"
    " JOIN datasets d ON d.id = e.dataset_id JOIN measurements ms ON ms.experiment_id = e.id"
    " WHERE p.ref_id = :ref AND d.name = :dataset AND e.setting = :setting AND ms.split = 'test'"
    " AND ms.metric IN ('accuracy', 'auc') AND ms.review_status = 'accepted' AND ms.average = ''")


def published_figures(store: KnowledgeBase, dataset: str, size: int) -> dict[str, dict[str, float]]:
    """{model: {"accuracy": .., "auc": ..}} as MedMNIST v2 published them for `dataset` at `size` px."""
    frame = store.frame(_PUBLISHED_SQL, {"ref": PUBLISHED_REF_ID, "dataset": dataset, "setting": f"size={size}"})
    figures: dict[str, dict[str, float]] = {}
    for row in frame.itertuples(index=False):
        figures.setdefault(row.model, {})[row.metric] = float(row.value)
    return figures


def from_kb_or_seed(store: KnowledgeBase, lookup: Callable[[KnowledgeBase], dict]) -> tuple[dict, Optional[str]]:
    """`lookup(store)`, else `lookup` of the bundled seed KB (a fresh --kb file holds no published
    figures); with the KB the answer came from."""
    found = lookup(store)
    if found:
        return found, store.location.describe()
    seed = seed_path()
    if seed.exists() and store.location.path != seed:
        try:
            seed_store = KnowledgeBase.open(seed)
            found = lookup(seed_store)
        except (DBAPIError, KBError):  # a seed from an older schema is no reason to stop a finished run
            return {}, None
        if found:
            return found, seed_store.location.describe()
    return {}, None


def published_with_fallback(store: KnowledgeBase, dataset: str, size: int) -> tuple[dict, Optional[str]]:
    """The published figures from `store`, else from the bundled seed KB; with the KB they came from."""
    return from_kb_or_seed(store, lambda kb: published_figures(kb, dataset, size))
