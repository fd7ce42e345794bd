"""The tabular layouts `kb import` reads and `kb export` writes, as one declarative table
(MedMNIST-style metadata): which column holds which paper field, feature and metric.

Import and export both read these declarations, so a layout round-trips by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .schema import FEATURES


@dataclass(frozen=True)
class Layout:
    name: str
    columns: tuple[str, ...]  # the header, in the order export writes it
    paper_key: str  # the column that groups rows into papers (becomes the paper's ref_id)
    model: str
    features: dict[str, str]  # feature -> column
    metrics: dict[str, str]  # metric -> column
    dataset: Optional[str] = None
    model_family: Optional[str] = None
    paper_fields: dict[str, str] = field(default_factory=dict)  # PaperRecord attribute -> column
    source_url: Optional[str] = None
    notes: Optional[str] = None
    curation_flags: Optional[str] = None
    # Columns in the order that tells apart rows of one paper x model x dataset (see
    # importers.assign_settings); the reference id first, as one DOI may cover several.
    distinguishing: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, str]:
        return (self.paper_key, self.model)

    def column_of(self, header_cell: str) -> Optional[str]:
        """The layout's spelling of a header cell (case and surrounding spaces do not matter)."""
        wanted = header_cell.strip().lower()
        for column in self.columns:
            if column.lower() == wanted:
                return column
        return None


_CURATED_FEATURES = {name: name for name in FEATURES}

CURATED = Layout(
    name="curated",
    columns=(
        "ref_id", "title", "year", "source_url", "doi", "domain", "modality", "dataset", "n_samples", "n_train",
        "n_test", "n_val", "k_fold", "width", "height", "channels", "n_classes", "augmentation", "pretrained",
        "model", "model_family", "accuracy", "precision", "recall", "f1", "auc", "is_proposed", "notes",
        "curation_flags",
    ),
    paper_key="ref_id",
    model="model",
    dataset="dataset",
    model_family="model_family",
    features=_CURATED_FEATURES,
    metrics={"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1", "auc": "auc"},
    paper_fields={"title": "title", "year": "year", "doi": "doi"},
    source_url="source_url",
    notes="notes",
    curation_flags="curation_flags",
    distinguishing=(
        "ref_id", "dataset", "model", "n_classes", "n_samples", "n_train", "n_test", "n_val", "k_fold", "width", "height",
        "channels", "augmentation", "pretrained", "is_proposed", "modality", "domain", "notes",
    ),
)

# MedicalRec-Bench's published column names (metrics there are 0-100 or 0-1).
BENCH = Layout(
    name="bench",
    columns=(
        "Ref", "#Sample", "#Train", "#Test", "#Validation", "K-fold", "Width", "Height", "#channel", "#Class",
        "Domain", "Accu", "Pre", "Rec", "F1", "AUC", "Model",
    ),
    paper_key="Ref",
    model="Model",
    features={
        "n_samples": "#Sample", "n_train": "#Train", "n_test": "#Test", "n_val": "#Validation", "k_fold": "K-fold",
        "width": "Width", "height": "Height", "channels": "#channel", "n_classes": "#Class", "domain": "Domain",
    },
    metrics={"accuracy": "Accu", "precision": "Pre", "recall": "Rec", "f1": "F1", "auc": "AUC"},
    distinguishing=(
        "Ref", "Model", "#Class", "#Sample", "#Train", "#Test", "#Validation", "K-fold", "Width", "Height", "#channel",
        "Domain",
    ),
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (CURATED, BENCH)}
