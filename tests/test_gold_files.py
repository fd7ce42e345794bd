"""Shape and provenance checks for the extraction-quality gold files in fixtures/gold/.

The gold is hand-annotated. These tests catch the mistakes a hand-written file can carry: a
misspelt key or metric, a percentage not converted to a fraction, a page number off by one, or
an evidence quote that is not on the page it claims. The rules are in fixtures/gold/README.md.

46 files: 20 for ../shared/fixtures/pdfs and 26 (the blind third batch, all "holdout") for
../shared/fixtures/pdfs_more; a PDF is looked up in both folders.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import SHARED, shared_path
from medicalrec.kb import FEATURES, METRICS
from medicalrec.kb.schema import AVERAGES, SPLITS

REPO = Path(__file__).resolve().parents[1]
GOLD_DIR = REPO / "fixtures" / "gold"
GOLD_FILES = sorted(GOLD_DIR.glob("*.json"))
SHARED_FIXTURES = SHARED / "fixtures"

EXPECTED_SPLITS = {
    "amls-2025-26-breastmnist-coursework-report": "tuning",
    "pneumonia-detection-chest-xray-ml-report": "tuning",
    "alzheimers-mri-classification-cnn-transfer-learning-report": "tuning",
    "brain-tumor-classification-cad-explainable-ai": "tuning",
    "diabetic-retinopathy-detection-mobilenetv2-report": "tuning",
    "pneumonia-prediction-vgg19-chest-xray-paper": "tuning",
    "esteva-2017-dermatologist-level-skin-cancer-classification-nature": "tuning",
    # The first holdout: scored blind once (stop 6), then used for tuning.
    "brain-tumour-detection-mri-short-report-aub": "tuning",
    "explainable-ai-classification-medical-image-data": "tuning",
    "medical-imaging-denoising-augmentation-classification-advancements": "tuning",
    "skin-cancer-classification-delaunay-gcn-ijacsa-2023": "tuning",
    "brain-tumor-detection-classification-nmims-paper": "tuning",
    # The second holdout: annotated by people who never saw the extractor.
    "brain-tumor-detection-classification-btech-project-report": "holdout",
    "brain-tumor-mri-classification-notebook-export": "holdout",
    "breast-cancer-synthetic-mammogram-segmentation-gan": "holdout",
    "example-based-xai-medical-imaging-systematic-review": "holdout",
    "fundus-deep-learning-diabetic-retinopathy-review-eye-2019": "holdout",
    "lee-2017-deep-learning-medical-imaging-overview-kjr": "holdout",
    "pereira-2016-brain-tumor-segmentation-cnn-mri-tmi": "holdout",
    "ronneberger-2015-unet-biomedical-segmentation": "holdout",
}
# The third batch (../shared/fixtures/pdfs_more): written blind, all holdout.
MORE_PDFS = (
    "ahmad-2014-mammogram-classification-cgp-evolved-ann",
    "alzheimer-detection-mri-cnn-android-report-italian",
    "alzheimer-lightweight-cnn-mri-report",
    "barstugan-2020-covid19-ct-classification-svm-features-arxiv",
    "becker-2017-deep-learning-mammography-diagnostic-accuracy",
    "blood-cells-8class-an2dl-homework-report-ynwa",
    "bloodmnist-lightweight-cnn-tradeoffs-report",
    "brain-tumor-mri-efficientnetb0-project-report",
    "capsule-endoscopy-gated-attention-wavelet-multiclass",
    "covid19-cxr-explainable-ml-team-project-report",
    "isic2019-cropping-multimodal-fusion-ablation-report",
    "lumini-nanni-brahnam-multilayer-descriptors-medical-image-classification",
    "malaria-detection-deep-learning-rnd-report-iitb",
    "mammogram-breast-cancer-cnn-transfer-learning-aarhus",
    "medmnist-self-supervised-beit-transfer-learning-unipd",
    "mednet-ecg-anomaly-detection-temporal-convolution-NEGATIVE",
    "odir-fundus-multilabel-transfer-learning-report",
    "pan-2018-malaria-infected-cell-classification-dcnn-intechopen",
    "pneumonia-detection-cnn-feature-extraction-svm-njit",
    "pneumonia-tuberculosis-cxr-xai-aaib-report-polimi",
    "poostchi-2018-image-analysis-ml-malaria-review",
    "rajpurkar-2017-chexnet-pneumonia-chest-xray-arxiv",
    "ramos-pollan-2011-mammography-ml-classifiers-bcdr-jmedsyst",
    "relabeling-chest-xrays-nih-chexpert-ml2-report",
    "skin-mole-classification-cnn-assignment-report",
    "unet-breast-ultrasound-segmentation-adversarial-NEGATIVE",
)
FIRST_PDFS = tuple(EXPECTED_SPLITS)
EXPECTED_SPLITS.update({stem: "holdout" for stem in MORE_PDFS})
# The folders of ../shared/fixtures that hold the PDFs the gold describes.
PDF_FOLDERS = ("pdfs", "pdfs_more")

DOC_REQUIRED = {"source_file", "split", "annotator_notes", "tuples", "features"}
DOC_OPTIONAL = {"image_only_tuples"}
TUPLE_REQUIRED = {"model", "dataset", "metric", "value", "split", "page", "evidence"}
TUPLE_OPTIONAL = {"alt_values", "alt_pages", "note", "average"}
EVIDENCE_MAX = 120
MODALITIES = {
    "X-ray", "MRI", "CT", "ultrasound", "microscopy", "histopathology", "fundus", "dermoscopy",
    "clinical photo", "OCT", "mammography", "other",
}
YES_NO = {"yes", "no"}
COUNT_SPLITS = ("n_train", "n_val", "n_test")


def _catalogue_labels() -> tuple[set[str], set[str]]:
    with (REPO / "kb" / "data" / "datasets.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["domain"] for r in rows} | {"Other"}, {r["modality"] for r in rows} | MODALITIES


DOMAINS, ALLOWED_MODALITIES = _catalogue_labels()


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _all_tuples(doc: dict) -> list[dict]:
    return list(doc["tuples"]) + list(doc.get("image_only_tuples", []))


gold_param = pytest.mark.parametrize("path", GOLD_FILES, ids=[p.stem for p in GOLD_FILES])


def test_every_assigned_pdf_has_gold_with_its_split():
    assert (len(FIRST_PDFS), len(MORE_PDFS), len(EXPECTED_SPLITS)) == (20, 26, 46)
    found = {p.stem: _load(p)["split"] for p in GOLD_FILES}
    missing = set(EXPECTED_SPLITS) - set(found)
    assert not missing, f"gold missing for {sorted(missing)}"
    unexpected = set(found) - set(EXPECTED_SPLITS)
    assert not unexpected, f"gold for no assigned PDF: {sorted(unexpected)}"
    wrong = {stem: found[stem] for stem, split in EXPECTED_SPLITS.items() if found[stem] != split}
    assert not wrong, f"wrong tuning/holdout split: {wrong}"


@gold_param
def test_document_keys_and_source_file(path):
    doc = _load(path)
    keys = set(doc)
    assert DOC_REQUIRED <= keys, f"missing keys {DOC_REQUIRED - keys}"
    assert keys <= DOC_REQUIRED | DOC_OPTIONAL, f"unknown keys {keys - DOC_REQUIRED - DOC_OPTIONAL}"
    assert doc["source_file"] == f"{path.stem}.pdf"
    assert doc["split"] in {"tuning", "holdout"}
    assert isinstance(doc["annotator_notes"], str) and doc["annotator_notes"].strip()
    assert isinstance(doc["tuples"], list)


@gold_param
def test_tuples_are_well_formed(path):
    doc = _load(path)
    for t in _all_tuples(doc):
        keys = set(t)
        assert TUPLE_REQUIRED <= keys, f"{t}: missing {TUPLE_REQUIRED - keys}"
        assert keys <= TUPLE_REQUIRED | TUPLE_OPTIONAL, f"{t}: unknown {keys - TUPLE_REQUIRED - TUPLE_OPTIONAL}"
        assert isinstance(t["model"], str) and t["model"].strip()
        assert isinstance(t["dataset"], str) and t["dataset"].strip()
        assert t["metric"] in METRICS, t
        # "average" says how a multi-class figure was averaged; left out when the paper does not say.
        if "average" in t:
            assert t["average"] in AVERAGES and t["average"], t
        # Gold is classification-only: segmentation overlap scores are excluded by the README rules.
        assert t["metric"] not in ("dice", "iou"), t
        assert t["split"] in SPLITS, t
        for value in [t["value"], *t.get("alt_values", [])]:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), t
            assert 0.0 <= value <= 1.0, f"{t}: not a fraction"
        for page in [t["page"], *t.get("alt_pages", [])]:
            assert isinstance(page, int) and not isinstance(page, bool) and page >= 1, t
        assert isinstance(t["evidence"], str) and 0 < len(t["evidence"]) <= EVIDENCE_MAX, t


def _identity(t: dict) -> tuple:
    """A gold tuple's identity: differently averaged figures of one metric are separate tuples."""
    return t["model"], t["dataset"], t["metric"], t.get("average", ""), t["split"]


@gold_param
def test_one_value_per_experiment_metric_average_and_split(path):
    # The KB stores one measurement per (experiment, metric, average, split); gold must not ask for two.
    doc = _load(path)
    keys = [_identity(t) for t in doc["tuples"]]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate gold keys: {duplicates}"


def test_the_identity_keeps_averages_apart():
    macro = {"model": "CNN", "dataset": "BloodMNIST", "metric": "f1", "split": "test", "average": "macro"}
    assert _identity(macro) != _identity({**macro, "average": "weighted"}) != _identity(
        {k: v for k, v in macro.items() if k != "average"})
    assert _identity(macro) == _identity(dict(macro))


def test_the_third_batch_uses_averages_and_the_wider_vocabulary():
    # Sanity of the schema this file checks against: the batch's metrics are all in kb.schema.METRICS,
    # and some of its tuples name an average (else the "average" key would go unchecked).
    docs = [_load(GOLD_DIR / f"{stem}.json") for stem in MORE_PDFS]
    tuples = [t for doc in docs for t in _all_tuples(doc)]
    assert {t.get("average") for t in tuples} >= {"macro", "weighted", "micro"}
    assert {"mcc", "balanced_accuracy"} <= {t["metric"] for t in tuples} <= set(METRICS)


@gold_param
def test_features_match_the_kb_schema(path):
    features = _load(path)["features"]
    assert list(features) == list(FEATURES)
    for name, kind in FEATURES.items():
        value = features[name]
        if value is None:
            continue
        if kind == "int":
            assert isinstance(value, int) and not isinstance(value, bool) and value > 0, (name, value)
        elif kind == "bool":
            assert value in YES_NO, (name, value)
        elif name == "domain":
            assert value in DOMAINS, (name, value)
        elif name == "modality":
            assert value in ALLOWED_MODALITIES, (name, value)
        else:
            pytest.fail(f"feature {name} of kind {kind} has no check")
    if features["n_samples"] is not None:
        split_total = sum(features[k] or 0 for k in COUNT_SPLITS)
        assert split_total <= features["n_samples"], "split counts exceed n_samples"


# -- checks against the PDFs themselves (need ../shared) ------------------------------------------


def _source_pdf(doc: dict) -> Path:
    """The gold file's PDF in ../shared/fixtures/pdfs or pdfs_more; a skip when neither folder is there."""
    folders = [SHARED_FIXTURES / name for name in PDF_FOLDERS if (SHARED_FIXTURES / name).is_dir()]
    if not folders:
        shared_path("fixtures", PDF_FOLDERS[0])  # skips with the reason
    for folder in folders:
        if (folder / doc["source_file"]).is_file():
            return folder / doc["source_file"]
    searched = " or ".join(f"../shared/fixtures/{f.name}" for f in folders)
    absent = [name for name in PDF_FOLDERS if not (SHARED_FIXTURES / name).is_dir()]
    if absent:
        pytest.skip(f"{doc['source_file']} is not in {searched}, and ../shared/fixtures/{absent[0]} is not present: "
                    "third-party data is only beside CI's clone")
    pytest.fail(f"{doc['source_file']} is in neither {searched}")


def _normalised(text: str) -> set[str]:
    """Two normal forms: line-break hyphens joined ("over-\\nall" -> "overall") and kept."""
    text = unicodedata.normalize("NFKC", text).lower()
    joined = re.sub(r"-\s*\n\s*", "", text)
    return {" ".join(joined.split()), " ".join(text.split())}


@lru_cache(maxsize=None)
def _plain_pages(pdf: Path) -> tuple[str, ...]:
    from pypdf import PdfReader

    return tuple(page.extract_text() or "" for page in PdfReader(pdf).pages)


@lru_cache(maxsize=None)
def _layout_page(pdf: Path, index: int) -> str:
    from pypdf import PdfReader

    return PdfReader(pdf).pages[index].extract_text(extraction_mode="layout") or ""


def _quote_on_page(pdf: Path, page: int, quote: str) -> bool:
    needle = " ".join(unicodedata.normalize("NFKC", quote).lower().split())
    for text in (_plain_pages(pdf)[page - 1], _layout_page(pdf, page - 1)):
        if any(needle in form for form in _normalised(text)):
            return True
    return False


@pytest.mark.shared
@gold_param
def test_source_pdf_exists_and_pages_are_in_range(path):
    doc = _load(path)
    pdf = _source_pdf(doc)
    n_pages = len(_plain_pages(pdf))
    for t in _all_tuples(doc):
        for page in [t["page"], *t.get("alt_pages", [])]:
            assert page <= n_pages, f"{t['model']}/{t['metric']}: page {page} > {n_pages}"


@pytest.mark.shared
@gold_param
def test_evidence_is_quoted_from_its_page(path):
    # Only the text-layer tuples: image_only_tuples describe screenshots pypdf cannot read.
    doc = _load(path)
    pdf = _source_pdf(doc)
    misplaced = [
        (t["model"], t["metric"], t["page"], t["evidence"])
        for t in doc["tuples"]
        if not _quote_on_page(pdf, t["page"], t["evidence"])
    ]
    assert not misplaced, f"evidence not found on its page: {misplaced}"
