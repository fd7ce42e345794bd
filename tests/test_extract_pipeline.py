"""The extraction pipeline end to end: its spaCy components, prose preparation, documents to KB
records with each measurement's confidence and review status, and (with ../shared) real reviews
and segmentation papers that must yield nothing.

Synthetic documents are written as real PDFs (tests/test_extract_layout.write_text_pdf), because
tables are read from pdfium's positioned words."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED
from medicalrec.extract.nlp import build_pipeline
from medicalrec.extract.pdf import Page, PdfDocument, read_pdf
from medicalrec.extract.pipeline import DocumentResult, extract_document, extract_from_text, prepare_prose
from medicalrec.kb import FEATURES, PaperRecord
from test_extract_layout import write_text_pdf

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


def test_a_short_form_names_the_model_its_long_form_ends_with():
    # The long form is wider than the model entity found in it: its head ("... Neural Network")
    # makes the short form a model; a short form whose long form ends with no model stays none.
    doc = build_pipeline()(
        "We use a Cartesian Genetic Programming evolved Artificial Neural Network (CGPANN) to classify "
        "mammograms. The CGPANN reached an accuracy of 90.9%. Images were cropped to a region of interest "
        "(ROI). The ROI was 64 pixels wide.")
    found = {(ent.text, ent.label_) for ent in doc.ents}
    assert ("CGPANN", "MODEL") in found
    assert not any(text == "ROI" and label == "MODEL" for text, label in found)


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


# ---------------------------------------------------------------------------- helpers
def accepted(result) -> list[tuple[str, str, float]]:
    """(model, metric, value) of the measurements the scorer accepted."""
    return [(e.model, m.metric, m.value) for e in result.experiments for m in e.measurements
            if m.review_status == "accepted"]


def measurements(result):
    return [m for e in result.experiments for m in e.measurements]


def text_pdf(tmp_path, *pages: str, name: str = "synthetic.pdf"):
    return read_pdf(write_text_pdf(tmp_path / name, list(pages)))


# ---------------------------------------------------------------------------- the fixture papers
def test_synthetic_paper_with_a_proposed_model_row(kb):
    document = read_pdf(FIXTURES / "paper_pneumonia_cxr.pdf")
    result = extract_document(document)
    assert isinstance(result, DocumentResult)
    assert result.doi == "10.5555/jsmi.2023.0412"
    assert result.title.startswith("Transfer Learning with Convolutional Networks")
    assert result.tables == 1 and result.warnings == []
    by_model = {e.model: e for e in result.experiments}
    assert set(by_model) == {"VGG-16", "ResNet-50", "DenseNet-121", "PneuNet"}
    pneunet = by_model["PneuNet"]
    assert {m.metric: m.value for m in pneunet.measurements} == pytest.approx(
        {"accuracy": 0.9522, "precision": 0.948, "recall": 0.9718, "f1": 0.9597, "auc": 0.9843})
    # Each result once: the table's 95.22 and the abstract's "95.22% accuracy" are one fact.
    for m in measurements(result):
        assert (m.split, m.average, m.review_status) == ("test", "", "accepted")
        assert 0.0 <= m.confidence <= 1.0 and m.provenance.confidence == m.confidence
        assert (m.provenance.method, m.provenance.page) in (("table", 2), ("sentence", 1))
        assert f"{m.value * 100:.2f}" in m.provenance.snippet
    assert sum(m.provenance.method == "table" for m in pneunet.measurements) >= 4
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
    assert {m.metric: m.value for m in effnet.measurements} == pytest.approx(
        {"accuracy": 0.8842, "precision": 0.869, "recall": 0.8511, "f1": 0.8587, "auc": 0.9635})
    assert {m.provenance.method for m in measurements(transposed)} == {"table"}
    assert (effnet.features["n_samples"].value, effnet.features["n_classes"].value) == (10015, 7)
    assert (effnet.features["n_train"].value, effnet.features["n_test"].value) == (8012, 2003)
    breast = extract_document(read_pdf(FIXTURES / "paper_breast_us_permissions.pdf"))
    assert breast.experiments
    for experiment in breast.experiments:
        assert {m.split for m in experiment.measurements} == {"cv"}
        assert experiment.features["augmentation"].value == "no"
        assert experiment.features["pretrained"].value == "no"
        assert experiment.features["channels"].value == 1
        assert experiment.features["k_fold"].value == 5


class FixedScorer:
    """Every candidate gets the same probability."""

    def __init__(self, probability: float, threshold: float = 0.5):
        self.p, self.threshold = probability, threshold

    def probability(self, features):
        return self.p


def test_min_confidence_decides_what_is_accepted_and_what_waits_for_review():
    document = read_pdf(FIXTURES / "paper_pneumonia_cxr.pdf")
    strict = extract_document(document, min_confidence=0.99)
    assert len(measurements(strict)) == 20
    assert {m.review_status for m in measurements(strict)} == {"needs_review"}
    assert all(0.0 <= m.confidence < 0.99 for m in measurements(strict))
    assert strict.warnings == ["no result passed the scorer's threshold; 20 wait for review (medicalrec kb review)"]
    # The paper-level features still come from the statements (no experiment was accepted).
    assert strict.features["n_samples"].value == 5856
    lenient = extract_document(document, min_confidence=0.0)
    assert {m.review_status for m in measurements(lenient)} == {"accepted"}
    # A scorer of its own: its threshold applies unless --min-confidence overrides it.
    assert {m.confidence for m in measurements(extract_document(document, scorer=FixedScorer(0.3)))} == {0.3}
    assert {m.review_status for m in measurements(extract_document(document, scorer=FixedScorer(0.3)))} == {
        "needs_review"}
    assert {m.review_status for m in measurements(extract_document(document, scorer=FixedScorer(0.3),
                                                                   min_confidence=0.25))} == {"accepted"}
    assert measurements(extract_document(document, scorer=FixedScorer(0.01))) == []  # below the review floor


# ---------------------------------------------------------------------------- papers that yield nothing
def test_a_document_without_results_says_so():
    page = Page(1, "A Study of Imaging\nWe review how hospitals store images. Nothing was measured.\n")
    result = extract_document(PdfDocument(Path("x.pdf"), "0" * 64, [page], {"title": None, "doi": None, "year": None}))
    assert result.experiments == [] and result.warnings


def test_a_paper_that_measures_nothing_says_so(tmp_path):
    result = extract_document(text_pdf(tmp_path, "A Study of Hospital Imaging Archives\n"
                                                 "We describe how hospitals store images. Nothing was measured.\n"))
    assert result.experiments == [] and result.warnings == ["no classification results found in the text"]
    assert set(result.features) == set(FEATURES)


def test_a_document_built_from_text_pages_needs_no_file():
    page = Page(1, "Pneumonia Detection with VGG16\nVGG16 reached an accuracy of 91.2%, a precision of 90.5%, a "
                   "recall of 92.0% and an F1-score of 91.2% on the test set.\n")
    result = extract_document(PdfDocument(Path("not-on-disk.pdf"), "7" * 64, [page],
                                          {"title": None, "doi": None, "year": None}))
    assert ("VGG16", "accuracy", pytest.approx(0.912)) in accepted(result)


@pytest.mark.parametrize("title, first_page, expected", [
    ("Advancements in Medical Imaging", "Abstract- The use of GANs is the primary focus of this review.", True),
    ("Deep Learning in Medical Imaging: General Overview", "", True),
    ("Pneumonia Detection", "In this paper we propose PneuNet. A review [3] of prior work found gaps.", False),
])
def test_reviews_are_known_by_title_or_by_how_they_refer_to_themselves(title, first_page, expected):
    from medicalrec.extract.pipeline import is_review

    assert is_review(title, first_page) is expected


SEGMENTATION = ("Brain Tumor Segmentation Using Convolutional Neural Networks in MRI Images\n"
                "Our CNN reached a sensitivity of 0.86 and a positive predictive value of 0.88 on BRATS 2013.\n")


def test_a_segmentation_paper_yields_no_classification_results(tmp_path):
    result = extract_document(text_pdf(tmp_path, SEGMENTATION, name="seg.pdf"))
    assert result.experiments == [] and result.candidates == []
    assert result.warnings == ["a segmentation paper: its scores rate pixels, not images, so no classification "
                               "results are extracted"]
    assert set(result.features) == set(FEATURES)
    classification = extract_document(text_pdf(tmp_path, SEGMENTATION.replace("Segmentation", "Classification"),
                                                name="cls.pdf"))
    assert {(metric, value) for _, metric, value in accepted(classification)} == {("recall", 0.86),
                                                                                  ("precision", 0.88)}


# ---------------------------------------------------------------------------- what is a result
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


@pytest.mark.xfail(reason="the scorer's call between a classification report's macro and weighted rows: with "
                          "averages kept apart both are candidates, and the shipped scorer accepts the weighted "
                          "row's precision and recall but not the macro row's", strict=False)
def test_a_notebook_export_gives_its_printed_results(tmp_path):
    result = extract_document(text_pdf(tmp_path, NOTEBOOK_PAGE, name="nb.pdf"))
    found = {(m.metric, m.average, round(m.value, 4)) for e in result.experiments for m in e.measurements
             if m.review_status == "accepted"}
    assert {("accuracy", "", 0.9512), ("precision", "macro", 0.94), ("recall", "macro", 0.90),
            ("f1", "macro", 0.92)} <= found
    assert result.features["n_test"].value == 606  # the report's support


@pytest.mark.xfail(strict=False, reason=(
    "the shipped scorer accepts numbers of a Keras training log ('loss: 0.8133 - accuracy: 0.6712 - val_loss: "
    "0.7011') as test accuracies of the model, and the per-class rows of a classification report (glioma, "
    "meningioma) as models"))
def test_a_notebook_export_gives_no_training_log_or_class_rows(tmp_path):
    result = extract_document(text_pdf(tmp_path, NOTEBOOK_PAGE, name="nb.pdf"))
    values = {round(v, 4) for _, _, v in accepted(result)}
    assert not values & {0.8133, 0.6712, 0.7011, 0.7241, 0.9341}
    assert not {m for m, _, _ in accepted(result)} & {"glioma", "meningioma"}


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


def test_a_thesis_keeps_its_own_result(tmp_path):
    result = extract_document(text_pdf(tmp_path, *THESIS_PAGES, name="thesis.pdf"))
    assert ("CNN", "accuracy", pytest.approx(0.971)) in accepted(result)


@pytest.mark.xfail(strict=False, reason=(
    "the shipped scorer accepts the rows of a literature-survey table and of a 'results of earlier studies' "
    "table (VGG16 94.5%, ResNet50 96.2%, as 'VGG16 Figshare', 'Kumar VGG16', ...) and re-reads those rows "
    "from the prose as further CNN runs"))
def test_a_thesis_keeps_only_its_own_result(tmp_path):
    result = extract_document(text_pdf(tmp_path, *THESIS_PAGES, name="thesis.pdf"))
    assert accepted(result) == [("CNN", "accuracy", pytest.approx(0.971))]


def test_how_a_cited_work_was_trained_is_not_the_papers_setting(tmp_path):
    result = "VGG16 reached an accuracy of 91% on the test set."
    cited = extract_document(text_pdf(tmp_path, "1 Introduction\nKrizhevsky et al. [7] trained a large network on "
                                                "the ImageNet dataset with 1 million training images. " + result,
                                      name="cited.pdf"))
    assert cited.features["pretrained"].status == "not_reported"
    own = extract_document(text_pdf(tmp_path, "1 Introduction\nWe fine-tuned a VGG16 network pretrained on "
                                              "ImageNet [7]. " + result, name="own.pdf"))
    assert own.features["pretrained"].value == "yes"
    assert own.features["pretrained"].provenance.page == 1


IEEE_PAGE = """\
Deep Transfer Learning for Pneumonia Classification in Chest X-ray Images
Abstract- We propose a fine-tuned DenseNet-121 for pneumonia detection on the Kermany chest X-ray dataset of 5,856 images.
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


def test_a_results_table_and_a_results_sentence(tmp_path):
    result = extract_document(text_pdf(tmp_path, IEEE_PAGE, name="ieee.pdf"))
    found = {(model, metric, round(value, 4)) for model, metric, value in accepted(result)}
    assert {("VGG16", "accuracy", 0.912), ("ResNet50", "accuracy", 0.934), ("DenseNet-121", "accuracy", 0.961),
            ("VGG16", "f1", 0.912), ("DenseNet-121", "f1", 0.962), ("DenseNet-121", "auc", 0.985)} <= found
    assert result.experiments[0].dataset == "Kermany chest X-ray"


@pytest.mark.xfail(strict=False, reason=(
    "layout.is_numeric_cell takes a citation cell '[12]' for a number, so a comparison table's cited rows lose "
    "their label and their values go to the paper's own model (DenseNet-121 setting '#2', '#3'); the 'Ours "
    "DenseNet-121' row becomes a model of its own, and DenseNet-121 itself gets is_proposed 'no'"))
def test_a_comparison_tables_ours_row_is_the_papers_result_once_and_cited_rows_are_dropped(tmp_path):
    result = extract_document(text_pdf(tmp_path, IEEE_PAGE, name="ieee.pdf"))
    found = {(model, metric, round(value, 4)) for model, metric, value in accepted(result)}
    assert len(found) == len(accepted(result)) == 13
    assert {(m, v) for m, metric, v in found if metric == "accuracy"} == {
        ("VGG16", 0.912), ("ResNet50", 0.934), ("DenseNet-121", 0.961)}
    assert {e.model for e in result.experiments if e.features["is_proposed"].value == "yes"} == {"DenseNet-121"}


# ---------------------------------------------------------------------------- abstracts (OpenAlex)
ABSTRACT = "Using transfer learning, a DenseNet-121 reached an AUC of 0.94 on ChestX-ray14."


def test_abstract_only_text_gives_its_result_without_a_page():
    result = extract_from_text(ABSTRACT, source_url="https://openalex.org/W2")
    (experiment,) = result.experiments
    assert (experiment.model, experiment.dataset) == ("DenseNet-121", "ChestX-ray14")
    (measurement,) = experiment.measurements
    assert (measurement.metric, measurement.value) == ("auc", pytest.approx(0.94))
    assert measurement.provenance.page is None and measurement.provenance.source_url == "https://openalex.org/W2"
    assert measurement.review_status == "accepted" and 0.0 <= measurement.confidence <= 1.0
    assert set(experiment.features) == set(FEATURES)
    assert {f.provenance.method for f in experiment.features.values()} <= {"openalex", "derived"}


def test_abstract_only_text_uses_openalex_provenance():
    (experiment,) = extract_from_text(ABSTRACT, source_url="https://openalex.org/W2").experiments
    (measurement,) = experiment.measurements
    assert measurement.provenance.method == "openalex"


# ---------------------------------------------------------------------------- real papers (../shared)
def _shared_pdf(stem: str) -> Path:
    """A PDF of ../shared/fixtures/pdfs or pdfs_more; a skip when those folders are absent."""
    folders = [SHARED / "fixtures" / name for name in ("pdfs", "pdfs_more")]
    for folder in folders:
        if (folder / f"{stem}.pdf").is_file():
            return folder / f"{stem}.pdf"
    if not all(folder.is_dir() for folder in folders):
        pytest.skip(f"{stem}.pdf: ../shared/fixtures/pdfs and pdfs_more are not both present (third-party data is "
                    "only beside CI's clone)")
    pytest.fail(f"{stem}.pdf is in neither ../shared/fixtures/pdfs nor pdfs_more")


@pytest.mark.shared
@pytest.mark.parametrize("stem", [
    "example-based-xai-medical-imaging-systematic-review",
    "fundus-deep-learning-diabetic-retinopathy-review-eye-2019",
    "lee-2017-deep-learning-medical-imaging-overview-kjr",
    "pereira-2016-brain-tumor-segmentation-cnn-mri-tmi",
    "ronneberger-2015-unet-biomedical-segmentation",
    "breast-cancer-synthetic-mammogram-segmentation-gan",
    pytest.param("poostchi-2018-image-analysis-ml-malaria-review", marks=pytest.mark.xfail(strict=False, reason=(
        "not known as a review: neither its title ('Image analysis and machine learning for detecting malaria') "
        "nor its first page holds a cue is_review knows; the scorer then accepts an AUC the review quotes"))),
    pytest.param("unet-breast-ultrasound-segmentation-adversarial-NEGATIVE", marks=pytest.mark.xfail(
        strict=False, reason=(
            "not known as a segmentation paper: _title keeps only the first line of a two-line title ('Evaluating "
            "the Resilience of U-Net Deep Learning'), so is_segmentation_paper has no 'segment' to see; the scorer "
            "accepts its pixel accuracies of U-Net under attacks"))),
])
def test_reviews_and_segmentation_papers_yield_no_results(stem):
    # Their gold files hold no tuple: a review's numbers are other papers', a segmentation paper's rate pixels.
    gold = REPO / "fixtures" / "gold" / f"{stem}.json"
    assert gold.is_file() and '"tuples": []' in " ".join(gold.read_text(encoding="utf-8").split())
    result = extract_document(read_pdf(_shared_pdf(stem)))
    assert accepted(result) == []
    assert set(result.features) == set(FEATURES)
