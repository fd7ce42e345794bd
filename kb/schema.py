"""The KB's tables. `kb` owns the schema: every other stage writes through `medicalrec.kb.store`.

Missing values are explicit: an experiment has one `FeatureValue` row per feature in `FEATURES`,
holding either a value (status `reported` or `derived`) or a status that says why there is none.
See SCHEMA.md for the reasoning.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import CheckConstraint, Column, Computed, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 5  # the last of db.MIGRATIONS; a read-only open refuses an older KB

# The MedicalRec-Bench experiment features, in the paper's column order, plus modality and the
# two training-setting flags. kind: "int" counts, "cat" categorical labels, "bool" yes/no.
FEATURES: dict[str, str] = {
    "n_samples": "int",
    "n_train": "int",
    "n_test": "int",
    "n_val": "int",
    "k_fold": "int",
    "width": "int",
    "height": "int",
    "channels": "int",
    "n_classes": "int",
    "domain": "cat",
    "modality": "cat",
    "augmentation": "bool",
    "pretrained": "bool",
    "is_proposed": "bool",
}

VALUE_STATUSES = ("reported", "derived")
MISSING_STATUSES = ("not_reported", "not_applicable", "ambiguous", "extraction_failed")
STATUSES = VALUE_STATUSES + MISSING_STATUSES

METHODS = ("table", "sentence", "openalex", "import", "validated", "derived")

# Every metric is stored as a fraction in [0, 1]; percentages are divided by 100 on the way in.
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "specificity", "npv", "f1", "auc", "auprc",
           "kappa", "mcc", "top3_accuracy", "top5_accuracy", "dice", "iou")
SPLITS = ("test", "val", "train", "cv", "external", "unspecified")
# How a multi-class metric was averaged over classes; '' when the source does not say. Kept apart
# because a macro and a weighted F1 of one model differ and must not be compared as equals.
AVERAGES = ("", "macro", "weighted", "micro")

# A measurement is a fact (read by analysts, exporters and the recommender) only once accepted;
# extracted numbers may wait in `needs_review` for a curator (`medicalrec kb review`).
REVIEW_STATUSES = ("accepted", "needs_review", "rejected")
REVIEW_ACTIONS = ("accept", "reject", "edit")

# Where an experiment's evidence comes from. `experiments.source_kind` is a generated column
# (migration 3) computed from `origin`, so no writer can set one without the other.
SOURCE_KINDS = ("literature", "benchmark", "validated")
BENCHMARK_ORIGIN = "benchmark"  # experiments.origin / papers.origin of `kb import` of a benchmark table
SOURCE_KIND_SQL = ("CASE origin WHEN 'validated' THEN 'validated' WHEN 'benchmark' THEN 'benchmark'"
                   " ELSE 'literature' END")
# How a benchmark trained or evaluated the model: full fine-tuning, a linear head on frozen
# features, a kNN on frozen features, an attention-MIL head on frozen features (slide tasks), or
# the published weights evaluated as they are.
TRAINING_SCHEMES = ("fine_tune", "linear_probe", "knn", "abmil_probe", "frozen_eval")
FACT_LINK_RULES = ("aggregate_of_run", "same_aggregate")
DATASET_METADATA_FEATURES = ("domain", "modality", "n_classes", "width", "height", "n_train", "channels",
                             "label_type")
DATASET_METADATA_STATUSES = ("reported", "not_reported", "not_applicable")

# too_large and timeout (migration 5): the file went over a per-file limit of `extract`.
FILE_STATUSES = ("ok", "no_text_layer", "encrypted", "corrupt", "empty", "not_pdf", "no_results", "error",
                 "too_large", "timeout")

SNIPPET_MAX = 200


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class SchemaMigration(SQLModel, table=True):
    __tablename__ = "schema_migrations"
    version: int = Field(primary_key=True)
    name: str
    applied_at: str = Field(default_factory=utcnow)


class Paper(SQLModel, table=True):
    __tablename__ = "papers"
    id: Optional[int] = Field(default=None, primary_key=True)
    # A paper is identified by the first of: PDF sha256, DOI, curated reference id.
    sha256: Optional[str] = Field(default=None, unique=True)
    doi: Optional[str] = Field(default=None, index=True)
    ref_id: Optional[str] = Field(default=None, unique=True)
    openalex_id: Optional[str] = None
    title: Optional[str] = None
    year: Optional[int] = None
    venue: Optional[str] = None
    authors: Optional[str] = None  # JSON list of names
    abstract: Optional[str] = None
    source_file: Optional[str] = None
    source_url: Optional[str] = None
    origin: str = "import"  # import | extract | validated | seed
    created_at: str = Field(default_factory=utcnow)


class Model(SQLModel, table=True):
    __tablename__ = "models"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    family: str
    params_millions: Optional[float] = None
    curated: bool = False  # True when the name comes from the curated catalogue


class ModelAlias(SQLModel, table=True):
    __tablename__ = "model_aliases"
    alias_key: str = Field(primary_key=True)  # normalize.name_key(alias)
    alias: str
    model_id: int = Field(sa_column=Column(Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False))


class Dataset(SQLModel, table=True):
    __tablename__ = "datasets"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    domain: Optional[str] = None
    modality: Optional[str] = None
    curated: bool = False


class DatasetAlias(SQLModel, table=True):
    __tablename__ = "dataset_aliases"
    alias_key: str = Field(primary_key=True)
    alias: str
    dataset_id: int = Field(sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False))


class Experiment(SQLModel, table=True):
    """One paper x dataset x model setting."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("paper_id", "dataset_id", "model_id", "setting"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    paper_id: int = Field(sa_column=Column(Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, index=True))
    model_id: int = Field(sa_column=Column(Integer, ForeignKey("models.id"), nullable=False, index=True))
    dataset_id: Optional[int] = Field(default=None, sa_column=Column(Integer, ForeignKey("datasets.id"), index=True))
    # The names exactly as the source wrote them; the ids above are the normalised entities.
    model_raw: str
    dataset_raw: Optional[str] = None
    # Tells apart settings of one model on one dataset (binary vs multi-class, external test...).
    setting: str = ""
    notes: Optional[str] = None
    curation_flags: Optional[str] = None
    origin: str = "import"  # import | extract | validated | seed | benchmark
    created_at: str = Field(default_factory=utcnow)
    # Generated from origin (SOURCE_KIND_SQL): never written, always consistent (migration 3).
    source_kind: Optional[str] = Field(
        default=None, sa_column=Column(String, Computed(SOURCE_KIND_SQL, persisted=False)))


class FeatureValue(SQLModel, table=True):
    __tablename__ = "feature_values"
    __table_args__ = (
        CheckConstraint(f"status IN ({_quoted(STATUSES)})", name="feature_status_known"),
        CheckConstraint(
            "(status IN ('reported','derived')) = (value_num IS NOT NULL OR value_text IS NOT NULL)",
            name="value_iff_status",
        ),
        CheckConstraint(f"method IN ({_quoted(METHODS)})", name="feature_method_known"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="feature_confidence_range"),
    )
    experiment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    )
    feature: str = Field(primary_key=True)
    value_num: Optional[float] = None
    value_text: Optional[str] = None
    status: str
    reason: Optional[str] = None  # why a value is missing, or how it was derived
    page: Optional[int] = None
    snippet: Optional[str] = None
    source_url: Optional[str] = None
    method: str
    confidence: float = 1.0


class Measurement(SQLModel, table=True):
    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint("experiment_id", "metric", "average", "split"),
        CheckConstraint("value >= 0 AND value <= 1", name="measurement_is_fraction"),
        CheckConstraint(f"split IN ({_quoted(SPLITS)})", name="measurement_split_known"),
        CheckConstraint(f"method IN ({_quoted(METHODS)})", name="measurement_method_known"),
        CheckConstraint(f"average IN ({_quoted(AVERAGES)})", name="measurement_average_known"),
        CheckConstraint(f"review_status IN ({_quoted(REVIEW_STATUSES)})", name="measurement_review_status_known"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="measurement_confidence_range"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    experiment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    metric: str
    # Server defaults too, so the rows migration 2 copies from a version-1 table get them.
    average: str = Field(default="", sa_column_kwargs={"server_default": ""})
    value: float
    split: str = "test"
    page: Optional[int] = None
    snippet: Optional[str] = None
    source_url: Optional[str] = None
    method: str
    confidence: float = 1.0
    review_status: str = Field(default="accepted", index=True, sa_column_kwargs={"server_default": "accepted"})
    reviewed_by: Optional[str] = None
    reviewed_at: Optional[str] = None  # UTC ISO; review_log holds every action, this the last


class ReviewLog(SQLModel, table=True):
    """One curator action on a measurement: who, when, and the row before and after."""

    __tablename__ = "review_log"
    __table_args__ = (CheckConstraint(f"action IN ({_quoted(REVIEW_ACTIONS)})", name="review_action_known"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    # SET NULL, not CASCADE: a re-extraction that replaces the measurement must not erase who
    # decided what (before_json names the experiment, metric and split).
    measurement_id: Optional[int] = Field(
        default=None, sa_column=Column(Integer, ForeignKey("measurements.id", ondelete="SET NULL"), index=True)
    )
    action: str
    who: str
    at: str = Field(default_factory=utcnow)
    before_json: str
    after_json: str
    note: Optional[str] = None


class ValidationRun(SQLModel, table=True):
    """This project's own measurement: the training run behind a `validated` experiment."""

    __tablename__ = "validation_runs"
    id: Optional[int] = Field(default=None, primary_key=True)
    experiment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    seed: int
    epochs: int
    device: str
    seconds: float
    gpu_hours: float = 0.0
    size: int = 28
    created_at: str = Field(default_factory=utcnow)


class FileStatus(SQLModel, table=True):
    """The outcome of the last `extract` of each input file (kept also for files that failed)."""

    __tablename__ = "file_status"
    __table_args__ = (CheckConstraint(f"status IN ({_quoted(FILE_STATUSES)})", name="file_status_known"),)
    source_file: str = Field(primary_key=True)
    sha256: Optional[str] = Field(default=None, index=True)
    status: str
    reason: Optional[str] = None
    n_pages: Optional[int] = None
    n_experiments: int = 0
    n_measurements: int = 0
    updated_at: str = Field(default_factory=utcnow)


class HttpCache(SQLModel, table=True):
    """Raw responses from outside services (OpenAlex), so a re-run asks nothing twice."""

    __tablename__ = "http_cache"
    url: str = Field(primary_key=True)
    status_code: int
    body: str
    fetched_at: str = Field(default_factory=utcnow)


Index("ix_measurements_metric", Measurement.__table__.c.metric)


class BenchmarkRun(SQLModel, table=True):
    """The protocol and provenance of one benchmark experiment (origin = 'benchmark').

    `task` names the comparison group: the experiments sharing it measured different models (or
    pretrainings, or hyper-parameters) on one dataset under one protocol, so their scores can be
    ranked against each other. Sweeps (`sweep` set) keep every run; `is_best_on_val` marks the run
    the source's own selection rule picks (1), the others are 0; NULL when the row is not part of
    a sweep (one figure per model, or repeated seeds).
    """

    __tablename__ = "benchmark_runs"
    __table_args__ = (
        CheckConstraint(f"training_scheme IN ({_quoted(TRAINING_SCHEMES)})", name="benchmark_scheme_known"),
        CheckConstraint("is_best_on_val IN (0, 1) OR is_best_on_val IS NULL", name="benchmark_best_flag"),
        UniqueConstraint("source_file", "row_key"),
    )
    experiment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    )
    source: str = Field(index=True)  # the source folder: pathbench, medmnist-transferability, ...
    layout: str  # the declarative mapping (kb/benchmark_sources.py) that read the row
    source_file: str  # relative to the benchmarks folder, as in its SOURCES.md
    source_commit: Optional[str] = None
    source_row: int  # physical line of the row in source_file (the header is line 1)
    row_key: str  # what identifies the row inside its file across re-imports (run id, path, model x column)
    task: str = Field(index=True)
    training_scheme: str
    resolution: Optional[int] = None  # input side in pixels; NULL when the source does not say
    shots: Optional[int] = None  # training images per class; NULL = the full training set
    pretraining: Optional[str] = None
    hyperparams: str = "{}"  # JSON object
    seed: Optional[int] = None
    run_id: Optional[str] = None
    sweep: Optional[str] = Field(default=None, index=True)
    is_best_on_val: Optional[int] = None
    is_aggregate: int = 0  # 1: the authors' summary figure, not one run of theirs
    label: Optional[str] = None  # the one label of a multi-label set a per-label figure is about


class FactLink(SQLModel, table=True):
    """`measurement_id` repeats the figure `same_as_id` already holds (the same published number
    in two files): count it once. The canonical side is the measurement that carries the most
    provenance (a run with its hyper-parameters over the authors' summary table)."""

    __tablename__ = "fact_links"
    __table_args__ = (CheckConstraint(f"rule IN ({_quoted(FACT_LINK_RULES)})", name="fact_link_rule_known"),)
    measurement_id: int = Field(
        sa_column=Column(Integer, ForeignKey("measurements.id", ondelete="CASCADE"), primary_key=True)
    )
    same_as_id: int = Field(
        sa_column=Column(Integer, ForeignKey("measurements.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    rule: str
    note: Optional[str] = None


class DatasetMetadata(SQLModel, table=True):
    """What a dataset (or benchmark task) is, from the catalogue kb/data/datasets.csv: one row per
    dataset x feature, a value or the status that says why there is none (as feature_values)."""

    __tablename__ = "dataset_metadata"
    __table_args__ = (
        CheckConstraint(f"status IN ({_quoted(DATASET_METADATA_STATUSES)})", name="dataset_metadata_status_known"),
        CheckConstraint("(status = 'reported') = (value_num IS NOT NULL OR value_text IS NOT NULL)",
                        name="dataset_metadata_value_iff_status"),
    )
    dataset_id: int = Field(
        sa_column=Column(Integer, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    )
    feature: str = Field(primary_key=True)
    value_num: Optional[float] = None
    value_text: Optional[str] = None
    status: str
    source: Optional[str] = None  # where the figure comes from
