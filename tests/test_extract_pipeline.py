"""The extraction pipeline end to end: its spaCy components, documents to KB records, and (with
../shared) real tuning papers against their gold annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_path
from medicalrec.extract.nlp import build_pipeline
from medicalrec.extract.pdf import Page, PdfDocument, read_pdf
from medicalrec.extract.pipeline import DocumentResult, extract_document, extract_from_text, prepare_prose
from medicalrec.kb import FEATURES, PaperRecord

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "pdfs"


def test_pipeline_is_named_registered_components_and_is_cached():
    nlp = build_pipeline()
    assert nlp is build_pipeline()
    for name in ("gazetteer_ruler", "abbreviation_detector", "architecture_entities", "keyword_entities",
                 "abbreviation_entities", "entity_canonicalizer"):
        assert name in nlp.pipe_names
    assert nlp.pipe_names.index("abbreviation_detector") < nlp.pipe_names.index("abbreviation_entities")


def test_entities_and_their_canonical_names():
    doc = build_pipeline()(
        "We trained a Support Vector Machine (SVM) and EfficientNet-B3 on the ISIC 2019 dermoscopy images "
        "of skin lesions. The SVM reached an F1-score of 0.81 and ROC-AUC of 0.90. The learning rate (LR) was "
        "0.001. Our proposed model outperformed ViT-B/16 on chest X-ray images.")
    found = {(ent.text, ent.label_, ent._.canonical) for ent in doc.ents}
    assert {("Support Vector Machine", "MODEL", "SVM"), ("SVM", "MODEL", "SVM"),
            ("EfficientNet-B3", "MODEL", "EfficientNet-B3"), ("ISIC 2019", "DATASET", "ISIC 2019"),
            ("dermoscopy", "MODALITY", "dermoscopy"), ("skin lesions", "DOMAIN", "Skin Cancer Classification"),
            ("F1-score", "METRIC", "f1"), ("ROC-AUC", "METRIC", "auc"),
            ("chest X-ray", "DOMAIN", "Chest X-ray Classification")} <= found
    assert any(label == "PROPOSED" for _, label, _ in found)
    assert any(text.startswith("ViT") and label == "MODEL" for text, label, _ in found)
    # "LR" is defined here as a learning rate, so it is not Logistic Regression.
    assert not any(text == "LR" for text, _, _ in found)


def test_prose_sets_apart_headings_tables_and_references():
    prose = prepare_prose([
        (1, "Abstract\nWe classify chest X-rays with a pre-\ntrained network.\n2 Related Work\nOthers used CNNs [3].\n"),
        (2, "3 Results\nModel Acc AUC\nVGG16 0.91 0.95\nResNet50 0.93 0.96\nThe model is good.\nReferences\n"
            "[1] A. Author. A paper. 2020.\n"),
    ])
    assert "pretrained network" in prose.text
    assert "0.91" not in prose.text  # table rows are read from the layout, not as prose
    assert prose.section_at(prose.text.index("We classify")) == "abstract"
    assert prose.section_at(prose.text.index("Others used")) == "related"
    assert prose.section_at(prose.text.index("The model is good")) == "body"
    assert prose.section_at(prose.text.index("A. Author")) == "references"
    assert prose.page_at(prose.text.index("The model is good")) == 2


def test_a_subsection_stays_in_its_chapter_and_a_chapter_opens_a_new_part():
    prose = prepare_prose([
        (1, "CHAPTER 2\nLITERATURE SURVEY\n2.1 Research Papers\nThe authors reached 98.87% with an SVM.\n"
            "CHAPTER 3\nPROBLEM DEFINITION & PROPOSED SOLUTION\n3.1 Problem Statement\nWe build a CNN.\n"),
    ])
    assert prose.section_at(prose.text.index("The authors reached")) == "related"
    assert prose.section_at(prose.text.index("We build a CNN")) == "body"


def test_synthetic_paper_with_a_proposed_model_row(kb):
    document = read_pdf(FIXTURES / "paper_pneumonia_cxr.pdf")
    result = extract_document(document)
    assert isinstance(result, DocumentResult)
    assert result.doi == "10.5555/jsmi.2023.0412"
    assert result.title.startswith("Transfer Learning with Convolutional Networks")
    by_model = {e.model: e for e in result.experiments}
    assert set(by_model) == {"VGG-16", "ResNet-50", "DenseNet-121", "PneuNet"}
    pneunet = by_model["PneuNet"]
    assert {m.metric: m.value for m in pneunet.measurements} == pytest.approx(
        {"accuracy": 0.9522, "precision": 0.948, "recall": 0.9718, "f1": 0.9597, "auc": 0.9843})
    assert all(m.provenance.method == "table" and m.provenance.page == 2 and m.split == "test"
               for m in pneunet.measurements)
    assert pneunet.dataset == "Kermany chest X-ray"
    features = {name: (f.value if f.has_value else f.status) for name, f in pneunet.features.items()}
    assert features == {
        "n_samples": 5856, "n_train": 4685, "n_test": 1171, "n_val": "not_reported",
        "k_fold": "not_reported",  # the 5-fold CV only chose hyper-parameters
        "width": 224, "height": 224, "channels": 3, "n_classes": 2,
        "domain": "Chest X-ray Classification", "modality": "X-ray", "augmentation": "yes", "pretrained": "yes",
        "is_proposed": "yes"}
    assert by_model["VGG-16"].features["is_proposed"].value == "no"
    paper = PaperRecord(sha256=document.sha256, title=result.title, doi=result.doi, origin="extract")
    saved = kb.save_paper(paper, result.experiments, replace=True)
    assert saved.experiments_added == 4 and saved.measurements_added == 20
    frame = kb.experiments_frame()
    assert set(frame["model"]) == {"VGG-16", "ResNet-50", "DenseNet-121", "PneuNet"}
    assert frame.loc[frame["model"] == "PneuNet", "accuracy"].item() == pytest.approx(0.9522)
    assert (frame["n_samples_status"] == "reported").all() and (frame["n_val_status"] == "not_reported").all()


def test_synthetic_transposed_table_and_features_ruled_out():
    transposed = extract_document(read_pdf(FIXTURES / "paper_skin_lesion_transposed.pdf"))
    assert {e.model for e in transposed.experiments} == {"EfficientNet-B0", "Inception-V3", "MobileNetV2"}
    effnet = next(e for e in transposed.experiments if e.model == "EfficientNet-B0")
    assert {m.metric: m.value for m in effnet.measurements}["auc"] == pytest.approx(0.9635)
    assert (effnet.features["n_samples"].value, effnet.features["n_classes"].value) == (10015, 7)
    assert (effnet.features["n_train"].value, effnet.features["n_test"].value) == (8012, 2003)
    breast = extract_document(read_pdf(FIXTURES / "paper_breast_us_permissions.pdf"))
    for experiment in breast.experiments:
        assert {m.split for m in experiment.measurements} == {"cv"}
        assert experiment.features["augmentation"].value == "no"
        assert experiment.features["pretrained"].value == "no"
        assert experiment.features["channels"].value == 1
        assert experiment.features["k_fold"].value == 5


def test_a_document_without_results_says_so():
    page = Page(1, "A Study of Imaging\nWe review how hospitals store images. Nothing was measured.\n")
    result = extract_document(PdfDocument(Path("x.pdf"), "0" * 64, [page], {"title": None, "doi": None, "year": None}))
    assert result.experiments == [] and result.warnings


@pytest.mark.parametrize("title, first_page, expected", [
    ("Advancements in Medical Imaging", "Abstract- The use of GANs is the primary focus of this review.", True),
    ("Deep Learning in Medical Imaging: General Overview", "", True),
    ("Pneumonia Detection", "In this paper we propose PneuNet. A review [3] of prior work found gaps.", False),
])
def test_reviews_are_known_by_title_or_by_how_they_refer_to_themselves(title, first_page, expected):
    from medicalrec.extract.pipeline import is_review

    assert is_review(title, first_page) is expected


def test_a_segmentation_paper_yields_no_classification_results():
    text = ("Brain Tumor Segmentation Using Convolutional Neural Networks in MRI Images\n"
            "Our CNN reached a sensitivity of 0.86 and a positive predictive value of 0.88 on BRATS 2013.\n")
    page = Page(1, text)
    result = extract_document(PdfDocument(Path("seg.pdf"), "1" * 64, [page],
                                          {"title": None, "doi": None, "year": None}))
    assert result.experiments == []
    assert result.warnings == ["a segmentation paper: its scores rate pixels, not images, so no classification "
                               "results are extracted"]
    classification = PdfDocument(Path("cls.pdf"), "2" * 64, [Page(1, text.replace("Segmentation", "Classification"))],
                                 {"title": None, "doi": None, "year": None})
    assert extract_document(classification).experiments


NOTEBOOK_PAGE = """\
Brain Tumor MRI Classification
We build a simple CNN model with Keras to classify the MRI scans.
In [16]: history = model.fit(train_gen, epochs=10, validation_data=val_gen)
Epoch 1/10
179/179 [==============================] - 95s 527ms/step - loss: 0.8133 - accuracy: 0.6712 - val_loss: 0.7011 - val_accuracy: 0.7241
In [18]: print(f"Test accuracy: {acc*100:.2f}%")
Test accuracy: 95.12%
In [19]: print(classification_report(y_true, y_pred, target_names=classes))
              precision    recall  f1-score   support
      glioma       0.97      0.91      0.94       300
  meningioma       0.90      0.89      0.90       306
    accuracy                           0.95       606
   macro avg       0.94      0.90      0.92       606
weighted avg       0.95      0.95      0.95       606
Epoch 6: val_accuracy improved from 0.93410 to 0.95120, saving model to best.h5
"""


def test_a_notebook_export_gives_its_printed_results_not_its_training_log():
    page = Page(1, NOTEBOOK_PAGE, _layout=NOTEBOOK_PAGE)
    result = extract_document(PdfDocument(Path("nb.pdf"), "3" * 64, [page], {"title": None, "doi": None, "year": None}))
    assert {(m.metric, round(m.value, 4)) for e in result.experiments for m in e.measurements} == {
        ("accuracy", 0.9512), ("precision", 0.94), ("recall", 0.90), ("f1", 0.92)}
    assert result.features["n_test"].value == 606


THESIS_PAGES = [
    """Brain Tumor Detection and Classification
TABLE OF CONTENTS
1    Introduction ..................................................  1
4.3  Accuracy and Loss .............................................  28
4.4  Precision, Recall and F1 Score ................................  29
""",
    """CHAPTER 2
LITERATURE SURVEY
Kumar et al. used VGG16 and obtained an accuracy of 94.5% on the Figshare dataset.
Table 2.1: Comparison of methods
Method        Dataset      Accuracy
VGG16         Figshare     94.5%
ResNet50      Figshare     96.2%
CHAPTER 3
METHODOLOGY
We propose a CNN with four convolution layers.
""",
    """CHAPTER 4
RESULTS
Table 4.1: Results of earlier studies and ours
Author        Model        Accuracy
Kumar         VGG16        94.5%
Singh         ResNet50     96.2%
Our CNN reached a test accuracy of 97.1%.
""",
]


def test_a_thesis_keeps_its_own_result_not_its_contents_or_literature_tables():
    pages = [Page(i, text, _layout=text) for i, text in enumerate(THESIS_PAGES, 1)]
    result = extract_document(PdfDocument(Path("thesis.pdf"), "4" * 64, pages,
                                          {"title": None, "doi": None, "year": None}))
    assert _predicted(result) == [("CNN", "accuracy", pytest.approx(0.971))]


def _body_document(text: str) -> DocumentResult:
    page = Page(1, "1 Introduction\n" + text, _layout="")
    return extract_document(PdfDocument(Path("body.pdf"), "5" * 64, [page], {"title": None, "doi": None, "year": None}))


def test_how_a_cited_work_was_trained_is_not_the_papers_setting():
    result = "VGG16 reached an accuracy of 91% on the test set."
    cited = _body_document("Krizhevsky et al. [7] trained a large network on the ImageNet dataset with 1 million "
                           "training images. " + result)
    assert cited.features["pretrained"].status == "not_reported"
    own = _body_document("We fine-tuned a VGG16 network pretrained on ImageNet [7]. " + result)
    assert own.features["pretrained"].value == "yes"


IEEE_PAGE = """\
Deep Transfer Learning for Pneumonia Classification in Chest X-ray Images
Abstract— We propose a fine-tuned DenseNet-121 for pneumonia detection on the Kermany chest X-ray dataset of 5,856 images.
IV. RESULTS
TABLE II. PERFORMANCE OF DIFFERENT MODELS ON THE TEST SET
Model            Accuracy (%)    Precision (%)    Recall (%)    F1-score (%)
VGG16            91.2            90.5             92.0          91.2
ResNet50         93.4            92.8             94.1          93.4
DenseNet-121     96.1            95.7             96.8          96.2
TABLE III. COMPARISON WITH STATE-OF-THE-ART METHODS
Ref.     Method              Accuracy (%)
[12]     CNN                 92.8
[15]     Inception-V3        94.1
Ours     DenseNet-121        96.1
The DenseNet-121 achieved an AUC of 0.985 on the test set.
"""


def test_a_comparison_tables_ours_row_is_the_papers_result_once_and_cited_rows_are_dropped():
    page = Page(1, IEEE_PAGE, _layout=IEEE_PAGE)
    result = extract_document(PdfDocument(Path("ieee.pdf"), "6" * 64, [page], {"title": None, "doi": None, "year": None}))
    predicted = {(model, metric, round(value, 4)) for model, metric, value in _predicted(result)}
    assert len(predicted) == len(_predicted(result)) == 13
    assert {(m, v) for m, metric, v in predicted if metric == "accuracy"} == {
        ("VGG16", 0.912), ("ResNet50", 0.934), ("DenseNet-121", 0.961)}
    assert ("DenseNet-121", "auc", 0.985) in predicted
    assert {e.model for e in result.experiments if e.features["is_proposed"].value == "yes"} == {"DenseNet-121"}


def test_abstract_only_text_uses_openalex_provenance():
    result = extract_from_text("Using transfer learning, a DenseNet-121 reached an AUC of 0.94 on ChestX-ray14.",
                               source_url="https://openalex.org/W2")
    (experiment,) = result.experiments
    assert (experiment.model, experiment.dataset) == ("DenseNet-121", "ChestX-ray14")
    (measurement,) = experiment.measurements
    assert (measurement.metric, measurement.value) == ("auc", pytest.approx(0.94))
    assert measurement.provenance.method == "openalex" and measurement.provenance.page is None
    assert set(experiment.features) == set(FEATURES)


# ---------------------------------------------------------------------------- real tuning papers
def _gold(stem: str) -> dict:
    return json.loads((REPO / "fixtures" / "gold" / f"{stem}.json").read_text(encoding="utf-8"))


def _predicted(result) -> list[tuple[str, str, float]]:
    return [(e.model, m.metric, m.value) for e in result.experiments for m in e.measurements]


@pytest.mark.shared
@pytest.mark.slow
def test_tuning_paper_tables_and_sentences_against_gold():
    stem = "amls-2025-26-breastmnist-coursework-report"
    pdf = shared_path("fixtures", "pdfs", f"{stem}.pdf")
    gold = _gold(stem)
    result = extract_document(read_pdf(pdf))
    predicted = _predicted(result)
    # Every gold result is found once: (canonical model, metric, value or alt value).
    from medicalrec.extract.relations import model_key

    remaining = list(predicted)
    for row in gold["tuples"]:
        key = model_key(row["model"].split(" (")[0].replace("ResNet-style CNN", "ResNet"))
        values = [row["value"], *row.get("alt_values", [])]
        match = next((p for p in remaining if model_key(p[0]) == key and p[1] == row["metric"]
                      and any(abs(p[2] - v) <= 0.005 for v in values)), None)
        assert match is not None, row
        remaining.remove(match)
    assert remaining == []
    features = result.experiments[0].features
    for name in ("n_samples", "n_train", "n_test", "n_val", "width", "height", "channels", "n_classes", "domain",
                 "modality"):
        assert features[name].value == gold["features"][name], name
    assert features["n_samples"].status == "derived"  # the sum of the split table's sizes
    assert features["k_fold"].status == "not_reported"


@pytest.mark.shared
@pytest.mark.slow
def test_tuning_paper_sentences_report_and_previous_work_against_gold():
    stem = "pneumonia-prediction-vgg19-chest-xray-paper"
    pdf = shared_path("fixtures", "pdfs", f"{stem}.pdf")
    gold = _gold(stem)
    result = extract_document(read_pdf(pdf))
    predicted = {(model, metric): value for model, metric, value in _predicted(result)}
    expected = {("VGG19", row["metric"]): [row["value"], *row.get("alt_values", [])] for row in gold["tuples"]}
    assert set(predicted) == set(expected)  # no ResNet-50 etc. from "Comparison with Previous Work"
    for key, values in expected.items():
        assert any(abs(predicted[key] - v) <= 0.005 for v in values), key
    (experiment,) = result.experiments
    for name, gold_value in gold["features"].items():
        field = experiment.features[name]
        assert (field.value if field.has_value else None) == gold_value, name
    accuracy = next(m for m in experiment.measurements if m.metric == "accuracy")
    assert accuracy.provenance.page in (1, 6, 9) and "95.35" in accuracy.provenance.snippet
