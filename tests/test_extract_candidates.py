"""extract.candidates: every plausible (model, metric, value, split, average) reading of a table
cell or a sentence number, with its origin and features. Which of them are results is the
scorer's call, so these tests check the readings, not the verdicts."""

from __future__ import annotations

import pytest

from medicalrec.extract.candidates import (Candidate, add_document_features, average_of, metric_mentions,
                                           sentence_candidates, table_candidates, table_values)
from medicalrec.extract import gazetteers
from medicalrec.extract.relations import SentenceView
from test_extract_layout import grids_of


def from_table(text: str, *, main_model=None, main_dataset=None, label_models=None, class_words=frozenset(),
               section="body") -> list[Candidate]:
    return table_candidates(grids_of(text, page=4), section_of=lambda page, caption: section,
                            main_model=main_model, main_dataset=main_dataset, label_models=label_models,
                            class_words=class_words)


def readings(candidates) -> set[tuple]:
    return {(c.model, c.metric, c.average, round(c.value, 4), c.split) for c in candidates}


def sentence(text: str, models: tuple[str, ...] = (), index: int = 0, page: int = 2) -> SentenceView:
    entities = [(text.index(m), text.index(m) + len(m), "MODEL", m) for m in models]
    return SentenceView(text, entities, page, index)


# ---------------------------------------------------------------------------- tables
def test_a_metric_column_gives_a_candidate_per_model_row():
    found = from_table("""Table 1. Results on the test set
Model           Accuracy (%)   AUC
VGG-16          91.35          0.956
ResNet-50       92.84          0.967
""")
    assert readings(found) == {("VGG-16", "accuracy", "", 0.9135, "test"), ("VGG-16", "auc", "", 0.956, "test"),
                               ("ResNet-50", "accuracy", "", 0.9284, "test"),
                               ("ResNet-50", "auc", "", 0.967, "test")}
    assert {c.source for c in found} == {"table"} and {c.page for c in found} == {4}
    assert all(c.features["orient_column"] == 1 and c.features["source_table"] == 1 for c in found)
    assert len({c.origin for c in found}) == 4  # one origin per cell
    best = {c.model: c.features["best_in_column"] for c in found if c.metric == "accuracy"}
    assert best == {"VGG-16": 0.0, "ResNet-50": 1.0}


def test_a_metric_row_gives_the_transposed_reading():
    found = from_table("""Table 2. Comparison
Metric        EfficientNet-B0    MobileNetV2
Accuracy      88.42              84.93
F1-score      85.87              81.91
""")
    assert readings(found) == {("EfficientNet-B0", "accuracy", "", 0.8842, "test"),
                               ("MobileNetV2", "accuracy", "", 0.8493, "test"),
                               ("EfficientNet-B0", "f1", "", 0.8587, "test"),
                               ("MobileNetV2", "f1", "", 0.8191, "test")}
    assert all(c.features["orient_row"] == 1 and c.features["orient_column"] == 0 for c in found)


def test_percentages_and_fractions_are_read_per_column():
    found = from_table("""Table 3. Classifiers
Model       Acc     Sensitivity    Specificity (%)
SVM         0.95    87             0.9
KNN         0.97    91.5           0.8
""")
    values = {(c.model, c.metric): c.value for c in found}
    assert values == pytest.approx({("SVM", "accuracy"): 0.95, ("KNN", "accuracy"): 0.97,
                                    ("SVM", "recall"): 0.87, ("KNN", "recall"): 0.915,
                                    ("SVM", "specificity"): 0.9, ("KNN", "specificity"): 0.8})
    assert all(0.0 <= c.value <= 1.0 for c in found)


def test_a_split_row_names_the_split_of_the_papers_model_not_a_model():
    found = from_table("""Table 4. Performance of the proposed model
                  Accuracy     F1-score
Training Set      0.99213      0.99160
Validation Set    0.95412      0.95310
Test Set          0.94876      0.94720
""", main_model="Twin-branch CNN")
    assert readings(found) == {
        ("Twin-branch CNN", "accuracy", "", 0.9921, "train"), ("Twin-branch CNN", "f1", "", 0.9916, "train"),
        ("Twin-branch CNN", "accuracy", "", 0.9541, "val"), ("Twin-branch CNN", "f1", "", 0.9531, "val"),
        ("Twin-branch CNN", "accuracy", "", 0.9488, "test"), ("Twin-branch CNN", "f1", "", 0.9472, "test")}
    assert all(c.features["label_names_split"] == 1 and c.features["model_composed"] == 1 for c in found)


def test_a_split_in_a_column_header_sets_the_split():
    found = from_table("""Table 6
Model        Val Accuracy   Test Accuracy
VGG16        0.95           0.93
""")
    assert readings(found) == {("VGG16", "accuracy", "", 0.95, "val"), ("VGG16", "accuracy", "", 0.93, "test")}


REPORT = """Table 5: Classification report
                precision    recall    f1-score    support
glioma          0.97         0.91      0.94        300
meningioma      0.90         0.89      0.90        306
accuracy                               0.95        606
macro avg       0.94         0.90      0.92        606
weighted avg    0.96         0.95      0.93        606
micro avg       0.98         0.97      0.96        606
"""


def test_average_rows_of_a_classification_report_set_the_average_and_keep_them_apart():
    found = from_table(REPORT, main_model="VGG19", class_words=frozenset({"glioma", "meningioma"}))
    averaged = {(c.metric, c.average): c.value for c in found if c.model == "VGG19" and c.average}
    assert averaged == pytest.approx({
        ("precision", "macro"): 0.94, ("recall", "macro"): 0.90, ("f1", "macro"): 0.92,
        ("precision", "weighted"): 0.96, ("recall", "weighted"): 0.95, ("f1", "weighted"): 0.93,
        ("precision", "micro"): 0.98, ("recall", "micro"): 0.97, ("f1", "micro"): 0.96})
    # A row named only by a class is that class's score, no model's: it makes no candidate; the
    # support column is no metric.
    assert not [c for c in found if c.model in ("glioma", "meningioma")]
    assert all(c.features["label_class_word"] == 0 and c.features["label_average_row"] == 1
               for c in found if c.average)
    assert not any(c.value > 1 for c in found)
    # Three averages of one metric are three facts: their keys differ only by average, so the
    # pipeline's identity (model, metric, average, split) must carry it.
    assert len({(c.model, c.metric, c.average, c.split) for c in found if c.average}) == 9


def test_the_accuracy_row_of_a_classification_report_is_the_models_accuracy():
    found = from_table(REPORT, main_model="VGG19", class_words=frozenset({"glioma", "meningioma"}))
    row = [c for c in found if "accuracy" in c.snippet.split()[0]]
    assert [(c.model, c.metric, c.value) for c in row] == [("VGG19", "accuracy", 0.95)]


def test_a_variant_row_is_a_setting_of_the_papers_model():
    found = from_table("""Table 5. Results
Model       Acc (%)   AUC
SVM         81.2      0.85
W/ aug      83.0      0.91
""", main_model="ResNet-50")
    assert readings(found) == {("SVM", "accuracy", "", 0.812, "test"), ("SVM", "auc", "", 0.85, "test"),
                               ("ResNet-50 (W/ aug)", "accuracy", "", 0.83, "test"),
                               ("ResNet-50 (W/ aug)", "auc", "", 0.91, "test")}


def test_a_label_row_that_names_a_dataset_sets_the_dataset_of_the_rows_below():
    found = from_table("""Table 7. Accuracy per dataset
Model        Accuracy    F1
ResNet-18    0.833       0.80
PneumoniaMNIST
ResNet-18    0.864       0.85
""", main_dataset="BreastMNIST")
    datasets = {c.value: c.dataset for c in found}
    assert datasets[0.864] == datasets[0.85] == "PneumoniaMNIST"


@pytest.mark.xfail(strict=False, reason=(
    "candidates.table_candidates calls gazetteers.dataset_of(caption), an exact-name lookup: a caption that "
    "names its dataset in a sentence ('Results on HAM10000') never sets the dataset"))
def test_a_dataset_named_in_the_caption_is_the_dataset_of_its_cells():
    found = from_table("""Table 5. Results on HAM10000
Model       Acc (%)   AUC
SVM         81.2      0.85
""", main_dataset="ISIC 2019")
    assert {c.dataset for c in found} == {"HAM10000"}


def test_a_row_label_of_several_cells_takes_its_model_from_the_model_column():
    found = from_table("""Table 3. Results
Dataset       Classifier      Runs      AUC
BCDR-F01      libsvm.csvc     600x5     0.778
BCDR-F02      encog.ffsa      30x5      0.771
""")
    assert {(c.model, c.setting, c.value) for c in found} == {
        ("libsvm.csvc", "BCDR-F01, 600x5", 0.778), ("encog.ffsa", "BCDR-F02, 30x5", 0.771)}
    # Without a header that names models, the one cell that is a model name is the model.
    found = from_table("""Table 4. Results
Dataset       Name          AUC
Set A         ResNet-50     0.91
Set B         VGG-16        0.89
""")
    assert {(c.model, c.setting) for c in found} == {("ResNet-50", "Set A"), ("VGG-16", "Set B")}


def test_variant_rows_belong_to_the_papers_model_when_the_caption_acronym_is_a_metric():
    # "WACC" (weighted accuracy) is a metric's abbreviation, not the method the table is about.
    found = from_table("""Table 3. WACC, F1 and AUC of the cropping strategies
Strategy    WACC      F1        AUC
SS          0.6050    0.6414    0.9067
RR          0.5959    0.6428    0.9081
""", main_model="EfficientNet-B0")
    assert {c.model for c in found} == {"EfficientNet-B0 (SS)", "EfficientNet-B0 (RR)"}


def test_a_model_set_beside_its_per_class_rows_names_them():
    found = from_table("""Table 2. Per-disease results
Model            Disease     Acc       Avg F1
                 DR          0.60
EfficientNet     Glaucoma    0.79      0.63
                 AMD         0.72
                 DR          0.78
ResNet-18        Glaucoma    0.85      0.77
                 AMD         0.90
""")
    average = {(c.model, c.value) for c in found if c.metric == "f1"}
    assert average == {("EfficientNet", 0.63), ("ResNet-18", 0.77)}
    # Each row takes the nearest model beside it; per-class cells stay what they are (rows of known
    # class names are dropped, "DR" is no known class name here).
    assert {(c.model, c.setting, c.value) for c in found if c.metric == "accuracy"} == {
        ("EfficientNet", "DR", 0.6), ("ResNet-18", "DR", 0.78)}


def test_the_spread_column_of_a_score_is_no_score():
    found = from_table("""Table 1. AUC over five runs
Model        AUC      STDDEV
VGG-16       0.778    0.053
ResNet-50    0.770    0.055
""")
    assert {(c.model, c.value) for c in found} == {("VGG-16", 0.778), ("ResNet-50", 0.77)}


def test_a_tables_text_run_into_the_prose_is_left_to_the_table():
    grids = grids_of("""Labels        AUC       PPV
Pneumonia     0.5597    0.7483
Edema         0.7843    0.7891
""", page=12)
    copy = sentence("DenseNet AUC and PPV: Labels AUC PPV Pneumonia 0.5597 0.7483 Edema 0.7843 0.7891", ("DenseNet",),
                    page=12)
    claim = sentence("DenseNet reached an AUC of 0.7843 on the test set.", ("DenseNet",), page=12)
    found = sentence_candidates([copy, claim], ["body", "body"], main_model=None, main_dataset=None,
                                tables=table_values(grids))
    assert {c.snippet for c in found} == {claim.text}
    # Without the tables, both are read.
    assert len(sentence_candidates([copy, claim], ["body", "body"], main_model=None, main_dataset=None)) > 1


def test_a_table_without_a_metric_gives_no_candidates():
    assert from_table("""Table 1. Dataset splits
Split       Images    Benign    Malignant
Train       546       147       399
Test        156       42        114
""", main_model="ResNet-18") == []


# ---------------------------------------------------------------------------- vocabulary
@pytest.mark.parametrize("text, metric", [
    ("balanced accuracy", "balanced_accuracy"), ("BACC", "balanced_accuracy"),
    ("Matthews correlation coefficient", "mcc"), ("MCC", "mcc"),
    ("negative predictive value", "npv"), ("NPV", "npv"),
    ("positive predictive value", "precision"), ("PPV", "precision"),
    ("AUPRC", "auprc"), ("PR-AUC", "auprc"), ("average precision", "auprc"),
    ("top-5 accuracy", "top5_accuracy"), ("top-3 accuracy", "top3_accuracy"), ("top-1 accuracy", "accuracy"),
    ("sensitivity", "recall"), ("true negative rate", "specificity"), ("AUROC", "auc"), ("F1-score", "f1"),
    ("quadratic weighted kappa", "kappa"), ("F-score", "f1"), ("F score", "f1"),
])
def test_metric_vocabulary(text, metric):
    assert [m for _, _, m in metric_mentions(f"The model's {text} was the highest.")] == [metric]


@pytest.mark.parametrize("header, metric", [
    ("F-score", "f1"), ("Evaluation Metrics (mean (%) ± std) / F-score", None), ("Acc (%)", "accuracy"),
    ("val_acc", "accuracy"), ("TestAUC", "auc"), ("TESTAZ", "auc"), ("Az", "auc"),
    ("test", None), ("Score", None), ("Number of features", None), ("trainloss", None),
])
def test_header_metric_names(header, metric):
    # metric_of reads one header cell: a split glued to a metric name is that metric, and the word
    # "score" of "F-score" is part of the name (only a header of several levels is left to the caller).
    assert gazetteers.metric_of(header) == metric


def test_a_mean_std_header_is_a_score_header():
    found = from_table("""Table 2. Results
Features      Evaluation Metrics (mean (%) ± std)
              ACC           F-score
GLCM          98.19±0.2     98.02±0.2
""")
    assert {(c.metric, c.value) for c in found} == {("accuracy", 0.9819), ("f1", 0.9802)}
    assert all(c.features["header_not_score"] == 0.0 for c in found)


def test_averages_are_named_and_kept_apart():
    assert [average_of(t) for t in ("macro avg", "Weighted F1", "micro-averaged AUC", "mean accuracy")] == [
        "macro", "weighted", "micro", ""]


def test_a_table_column_per_average_keeps_them_apart():
    found = from_table("""Table 8
Model        Macro F1    Weighted F1    Micro F1
ResNet-50    0.81        0.86           0.88
""")
    assert readings(found) == {("ResNet-50", "f1", "macro", 0.81, "test"), ("ResNet-50", "f1", "weighted", 0.86, "test"),
                               ("ResNet-50", "f1", "micro", 0.88, "test")}


# ---------------------------------------------------------------------------- sentences
def test_a_sentence_gives_two_rival_readings_of_one_number():
    text = "ResNet-18 reached an accuracy of 0.91 on the test set."
    found = sentence_candidates([sentence(text, ("ResNet-18",))], ["body"], main_model="PneuNet",
                                main_dataset="Kermany chest X-ray")
    wanted = [c for c in found if c.value == pytest.approx(0.91)]
    assert {c.model for c in wanted} == {"ResNet-18", "PneuNet"}
    assert len({c.origin for c in wanted}) == 1
    assert {c.model: c.features["model_from_context"] for c in wanted} == {"ResNet-18": 0.0, "PneuNet": 1.0}
    assert all((c.metric, c.split, c.page, c.dataset, c.source) == ("accuracy", "test", 2, "Kermany chest X-ray",
                                                                    "sentence") for c in wanted)


def test_sentence_metrics_of_the_wider_vocabulary():
    text = ("It reached a balanced accuracy of 0.87, an MCC of 0.71, an NPV of 0.93, an AUPRC of 0.88 and a "
            "specificity of 90.1%.")
    found = sentence_candidates([sentence(text)], ["body"], main_model="PneuNet", main_dataset=None)
    assert {(c.metric, round(c.value, 4)) for c in found} == {
        ("balanced_accuracy", 0.87), ("mcc", 0.71), ("npv", 0.93), ("auprc", 0.88), ("specificity", 0.901)}


def test_sentence_features_flag_citations_and_sections():
    found = sentence_candidates([sentence("Prior work [12] reported an AUC of 0.91 with AlexNet.", ("AlexNet",))],
                                ["related"], main_model=None, main_dataset=None)
    (reading,) = [c for c in found if c.value == pytest.approx(0.91)]
    assert (reading.features["hedged"], reading.features["sentence_citation"], reading.features["section_related"],
            reading.features["sentence_comparison"]) == (0.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("text", [
    "Prior work [12] reported an AUC over 0.91 with AlexNet.",       # a bound
    "Augmentation increased the AUC of AlexNet by 14.4%.",          # a change
    "AlexNet was trained for 50 epochs and scored by accuracy.",    # a count
])
def test_bounds_changes_and_counts_make_no_candidate(text):
    assert sentence_candidates([sentence(text, ("AlexNet",))], ["body"], main_model=None, main_dataset=None) == []


def test_digits_of_names_and_citations_are_not_values():
    text = "The accuracy of ResNet-50 was 0.91 [12] and its top-5 accuracy 97.3%."
    found = sentence_candidates([sentence(text, ("ResNet-50",))], ["body"], main_model=None, main_dataset=None)
    assert {(c.metric, round(c.value, 4)) for c in found} == {("accuracy", 0.91), ("top5_accuracy", 0.973)}


def test_each_number_takes_the_average_named_just_before_it():
    text = "It reached a macro F1 of 0.81, a weighted F1 of 0.86 and a micro F1 of 0.88."
    found = sentence_candidates([sentence(text)], ["body"], main_model="PneuNet", main_dataset=None)
    assert {(c.average, c.value) for c in found} == {("macro", 0.81), ("weighted", 0.86), ("micro", 0.88)}


def test_document_features_count_restatements():
    table = from_table("""Table 1
Model      Accuracy
VGG-16     0.9135
PneuNet    0.9522
""")
    said = sentence_candidates([sentence("PneuNet reached an accuracy of 95.22%.", ("PneuNet",))], ["abstract"],
                               main_model="PneuNet", main_dataset=None)
    candidates = table + said
    add_document_features(candidates)
    restated = [c for c in candidates if c.value == pytest.approx(0.9522)]
    assert {c.source for c in restated} == {"table", "sentence"}
    assert all(c.features["value_in_both_sources"] == 1 and c.features["value_repeats"] >= 1 for c in restated)
    lone = [c for c in candidates if c.value == pytest.approx(0.9135)]
    assert lone and all(c.features["value_in_both_sources"] == 0 and c.features["value_repeats"] == 0 for c in lone)


def test_people_and_classes_are_no_classifier_but_models_are():
    from medicalrec.extract.candidates import names_no_classifier

    assert names_no_classifier("Radiologist 1") and names_no_classifier("Pneumonia")
    assert not names_no_classifier("DenseNet-121") and not names_no_classifier("ResNet-50 (Pneumonia)")


def test_a_variant_named_by_its_description_is_a_reading():
    from medicalrec.extract.candidates import _described_model

    text = "Over all metrics, the enhanced model reached an accuracy of 69%."
    assert _described_model(text, text.index("69"), []) == "enhanced model"
    pointing = "The final model achieved a test accuracy of 0.82."
    assert _described_model(pointing, pointing.index("0.82"), []) is None
