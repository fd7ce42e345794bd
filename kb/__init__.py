"""medicalrec.kb: the SQLite knowledge base every stage reads from and writes to."""

from .db import KBError, KBLocation, resolve
from .records import ExperimentRecord, FeatureField, MeasurementRecord, PaperRecord, Provenance
from .schema import AVERAGES, FEATURES, METRICS, MISSING_STATUSES, REVIEW_STATUSES, SPLITS, STATUSES
from .store import KnowledgeBase, SaveResult

__all__ = [
    "AVERAGES", "FEATURES", "METRICS", "MISSING_STATUSES", "REVIEW_STATUSES", "SPLITS", "STATUSES",
    "ExperimentRecord", "FeatureField", "KBError", "KBLocation", "KnowledgeBase", "MeasurementRecord", "PaperRecord",
    "Provenance", "SaveResult", "resolve",
]
