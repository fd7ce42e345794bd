"""Small hand-written tables in the two import layouts, shared by the tests/test_kb_*.py files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from medicalrec.kb.layouts import BENCH, CURATED


def curated_row(**cells: str) -> dict[str, str]:
    row = {column: "" for column in CURATED.columns}
    row.update(cells)
    return row


# Three papers; P2 reports one model on one dataset twice (binary and 3-class), told apart by n_classes.
CURATED_ROWS = [
    curated_row(ref_id="P1", title="Skin lesions with CNNs", year="2021", source_url="https://example.org/p1",
                doi="10.1000/P1", domain="Skin Cancer Classification", modality="dermoscopy", dataset="HAM10000",
                n_samples="10015", n_classes="7", augmentation="yes", pretrained="yes", model="VGG16",
                model_family="VGG", accuracy="0.91", f1="0.88", is_proposed="no", notes="baseline"),
    curated_row(ref_id="P1", title="Skin lesions with CNNs", year="2021", source_url="https://example.org/p1",
                doi="10.1000/P1", domain="Skin Cancer Classification", modality="dermoscopy", dataset="HAM 10000",
                n_samples="10015", n_classes="7", model="Our LesionNet", model_family="CNN", accuracy="0.95",
                auc="0.97", is_proposed="yes", curation_flags="approximate"),
    curated_row(ref_id="P2", source_url="https://example.org/p2", domain="COVID-19 Classification", modality="CT",
                dataset="SARS-CoV-2 CT", n_classes="2", model="ResNet-50", model_family="ResNet", accuracy="0.94",
                is_proposed="yes", notes="COVID vs non-COVID"),
    curated_row(ref_id="P2", source_url="https://example.org/p2", domain="COVID-19 Classification", modality="CT",
                dataset="SARS-CoV-2 CT", n_classes="3", model="ResNet-50", model_family="ResNet", accuracy="0.84",
                is_proposed="yes", notes="COVID vs CAP vs normal"),
    curated_row(ref_id="P3", title="Fundus grading", year="2019", source_url="https://example.org/p3",
                domain="Diabetic Retinopathy Classification", modality="fundus", dataset="APTOS", width="224",
                height="224", channels="3", k_fold="5", model="EfficientNet-B3", model_family="EfficientNet",
                accuracy="0.83", precision="0.8", recall="0.79", is_proposed="yes"),
]

BENCH_ROWS = [
    {"Ref": "12", "#Sample": "3662", "#Train": "2930", "#Test": "732", "#Validation": "", "K-fold": "", "Width": "224",
     "Height": "224", "#channel": "3", "#Class": "5", "Domain": "Diabetic Retinopathy Classification",
     "Accu": "83.5", "Pre": "0.81", "Rec": "", "F1": "", "AUC": "96", "Model": "ResNet-50"},
    {"Ref": "12", "#Sample": "3662", "#Train": "2930", "#Test": "732", "#Validation": "", "K-fold": "", "Width": "224",
     "Height": "224", "#channel": "3", "#Class": "2", "Domain": "Diabetic Retinopathy Classification",
     "Accu": "97.1", "Pre": "", "Rec": "", "F1": "", "AUC": "", "Model": "ResNet-50"},
    {"Ref": "40", "#Sample": "", "#Train": "", "#Test": "", "#Validation": "", "K-fold": "10", "Width": "", "Height": "",
     "#channel": "", "#Class": "4", "Domain": "Brain Tumour Classification", "Accu": "0.972", "Pre": "", "Rec": "",
     "F1": "", "AUC": "", "Model": "Custom CNN"},
]


def csv_text(rows: list[dict[str, str]], columns=None) -> str:
    columns = list(columns or rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, rows: list[dict[str, str]], columns=None) -> Path:
    path.write_text(csv_text(rows, columns), encoding="utf-8")
    return path


def curated_csv(path: Path) -> Path:
    return write_csv(path, CURATED_ROWS, CURATED.columns)


def bench_csv(path: Path) -> Path:
    return write_csv(path, BENCH_ROWS, BENCH.columns)
