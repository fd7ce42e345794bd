"""Plain records that stages hand to `medicalrec.kb.store` (no database types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .schema import (
    AVERAGES,
    FEATURES,
    METHODS,
    METRICS,
    MISSING_STATUSES,
    REVIEW_STATUSES,
    SNIPPET_MAX,
    SPLITS,
    STATUSES,
)

Value = Union[int, float, str, None]


def clip_snippet(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_MAX else flat[: SNIPPET_MAX - 1] + "…"


@dataclass
class Provenance:
    method: str  # one of schema.METHODS
    page: Optional[int] = None
    snippet: Optional[str] = None
    source_url: Optional[str] = None
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown provenance method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside [0, 1]")
        self.snippet = clip_snippet(self.snippet)


@dataclass
class FeatureField:
    """A feature's value, or the status that says why it has none."""

    status: str
    provenance: Provenance
    value: Value = None
    reason: Optional[str] = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown feature status {self.status!r}; expected one of {', '.join(STATUSES)}")
        if (self.value is None) != (self.status in MISSING_STATUSES):
            raise ValueError(f"status {self.status!r} does not match value {self.value!r}")

    @classmethod
    def reported(cls, value: Value, provenance: Provenance, reason: Optional[str] = None) -> "FeatureField":
        return cls("reported", provenance, value, reason)

    @classmethod
    def derived(cls, value: Value, provenance: Provenance, reason: str) -> "FeatureField":
        return cls("derived", provenance, value, reason)

    @classmethod
    def missing(cls, status: str, provenance: Provenance, reason: str) -> "FeatureField":
        return cls(status, provenance, None, reason)

    @property
    def has_value(self) -> bool:
        return self.value is not None


@dataclass
class MeasurementRecord:
    metric: str
    value: float  # a fraction in [0, 1]
    provenance: Provenance
    split: str = "test"
    average: str = ""  # macro / weighted / micro; '' when the source does not say
    # None takes the provenance's confidence (how stages set it so far); a number overrides it
    # for this measurement alone (a Provenance is often shared by a row's features and metrics).
    confidence: Optional[float] = None
    review_status: str = "accepted"  # an extractor sends doubtful numbers as needs_review

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {', '.join(METRICS)}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")
        if self.average not in AVERAGES:
            raise ValueError(f"unknown average {self.average!r}; expected '' or one of {', '.join(AVERAGES[1:])}")
        if self.review_status not in REVIEW_STATUSES:
            raise ValueError(f"unknown review status {self.review_status!r}; expected one of {', '.join(REVIEW_STATUSES)}")
        if not 0.0 <= float(self.value) <= 1.0:
            raise ValueError(f"{self.metric} value {self.value} is not a fraction in [0, 1]")
        if self.confidence is None:
            self.confidence = self.provenance.confidence
        if not 0.0 <= float(self.confidence) <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside [0, 1]")


@dataclass
class ExperimentRecord:
    """One paper x dataset x model setting. Features left out of `features` are stored as
    `not_reported` with `default_missing`'s provenance, so nothing lands as a bare NULL."""

    model: str
    dataset: Optional[str]
    features: dict[str, FeatureField] = field(default_factory=dict)
    measurements: list[MeasurementRecord] = field(default_factory=list)
    setting: str = ""
    model_family: Optional[str] = None  # the source's family label, used when the name is unknown
    notes: Optional[str] = None
    curation_flags: Optional[str] = None
    # What tells this experiment apart from every other of its paper (experiment_identity); when
    # set, "already present" means an experiment of the paper with the same identity, whatever
    # its setting label, so a re-import of any subset of rows adds exactly the missing ones.
    identity: Optional[str] = None
    ref_id: Optional[str] = None  # the source row's reference id (one DOI may cover several)

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown feature(s) {sorted(unknown)}; expected {', '.join(FEATURES)}")


@dataclass
class PaperRecord:
    title: Optional[str] = None
    doi: Optional[str] = None
    ref_id: Optional[str] = None
    sha256: Optional[str] = None
    openalex_id: Optional[str] = None
    year: Optional[int] = None
    venue: Optional[str] = None
    authors: list[str] = field(default_factory=list)
    abstract: Optional[str] = None
    source_file: Optional[str] = None
    source_url: Optional[str] = None
    origin: str = "import"

    def identity(self) -> tuple[str, str]:
        """(column, value) that identifies this paper in the KB."""
        for column in ("sha256", "doi", "ref_id"):
            value = getattr(self, column)
            if value:
                return column, value
        raise ValueError("a paper needs a sha256, a DOI or a reference id")


def experiment_identity(ref_id: Optional[str], model_raw: str, dataset_raw: Optional[str], features: dict,
                        metrics: dict, notes: Optional[str], occurrence: int = 1) -> str:
    """A digest of everything that sets an imported experiment apart: the row's reference id, the
    model and dataset as written, every feature value, every metric value and the notes, plus the
    occurrence of identical rows (the second of two identical rows is its own experiment).

    Left out on purpose: what describes the paper (title, year, DOI: one paper, many rows) and
    annotations that do not change the result (source URL, curation flags, model family), so a
    corrected URL does not duplicate a result. Computed the same way from a parsed row and from
    stored rows (migration 4 back-fills it), so the two always agree.
    """
    import hashlib
    import json

    def canonical(name: str, value) -> Optional[str]:
        if value is None or value == "":
            return None
        if FEATURES.get(name) == "int":
            return str(int(float(value)))
        return str(value).strip()

    payload = {
        "ref_id": (ref_id or "").strip(), "model": model_raw.strip(), "dataset": (dataset_raw or "").strip(),
        "features": {name: canonical(name, features.get(name)) for name in FEATURES},
        "metrics": {name: repr(float(value)) for name, value in sorted(metrics.items()) if value is not None},
        "notes": (notes or "").strip(), "occurrence": occurrence,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def normalize_doi(doi: Optional[str]) -> Optional[str]:
    if not doi:
        return None
    cleaned = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:", "DOI:"):
        if cleaned.lower().startswith(prefix.lower()):
            cleaned = cleaned[len(prefix):]
    return cleaned.strip().lower() or None
