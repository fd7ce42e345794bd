"""Results from tables and sentences: which numbers become (model, metric, value, split) tuples."""

from __future__ import annotations

import pytest

from medicalrec.extract.pipeline import extract_from_text
from medicalrec.extract.relations import (REPORT_AVERAGE, SENTENCE, SUMMARY_SENTENCE, TABLE, DocumentContext,
                                          Result, merge_results)
from medicalrec.extract.table_results import results_from_table
from medicalrec.extract.tables import Table


def tuples(text: str) -> set[tuple[str, str, float, str]]:
    result = extract_from_text(text)
    return {(e.model, m.metric, round(m.value, 4), m.split) for e in result.experiments for m in e.measurements}


def table(header, rows, caption=None):
    return Table(page=3, caption=caption, header=header, rows=rows)


# ---------------------------------------------------------------------------- tables
def test_model_rows_by_metric_columns_percent_to_fraction():
    t = table(["Model", "Accuracy (%)", "AUC"], [["VGG-16", "91.35", "0.956"], ["ResNet-50", "92.84", "0.967"]],
              caption="Table 1. Classification performance on the test set.")
    found = {(r.model, r.metric, r.value, r.split, r.method, r.page) for r in results_from_table(t, DocumentContext())}
    assert found == {("VGG-16", "accuracy", 0.9135, "test", "table", 3), ("VGG-16", "auc", 0.956, "test", "table", 3),
                     ("ResNet-50", "accuracy", 0.9284, "test", "table", 3),
                     ("ResNet-50", "auc", 0.967, "test", "table", 3)}


def test_transposed_table_metric_rows_by_model_columns():
    t = table(["Metric", "EfficientNet-B0", "MobileNetV2"],
              [["Accuracy", "88.42", "84.93"], ["F1-score", "85.87", "81.91"]])
    found = {(r.model, r.metric, r.value) for r in results_from_table(t, DocumentContext())}
    assert found == {("EfficientNet-B0", "accuracy", 0.8842), ("EfficientNet-B0", "f1", 0.8587),
                     ("MobileNetV2", "accuracy", 0.8493), ("MobileNetV2", "f1", 0.8191)}


def test_unknown_names_in_a_model_column_are_models_and_ours_is_proposed():
    t = table(["Model", "Accuracy"], [["ResNet-18", "84.10"], ["PneuNet (proposed)", "95.22"]])
    results = {r.model: r for r in results_from_table(t, DocumentContext())}
    assert set(results) == {"ResNet-18", "PneuNet"}
    assert results["PneuNet"].proposed and not results["ResNet-18"].proposed


def test_previous_work_tables_keep_only_the_papers_own_row():
    t = table(["Model", "Accuracy (%)"], [["VGG19 (Ours)", "95.35"], ["ResNet-50", "88.1"], ["DenseNet", "87.8"]],
              caption="Table 1: Comparison with Previous Work")
    assert [(r.model, r.value) for r in results_from_table(t, DocumentContext())] == [("VGG19", 0.9535)]


def test_classification_report_gives_macro_average_and_accuracy_never_class_rows():
    t = table(["", "Precision", "Recall", "F1-score", "support"],
              [["0", "0.96", "0.92", "0.94", "234"], ["1", "0.95", "0.97", "0.96", "390"],
               ["accuracy", "", "", "0.95", "624"], ["macro avg", "0.94", "0.93", "0.95", "624"],
               ["weighted avg", "0.99", "0.99", "0.99", "624"]], caption="Table 2: Classification Report")
    results = results_from_table(t, DocumentContext(main_model="VGG19"))
    assert {(r.model, r.metric, r.value) for r in results} == {
        ("VGG19", "precision", 0.94), ("VGG19", "recall", 0.93), ("VGG19", "f1", 0.95), ("VGG19", "accuracy", 0.95)}
    assert all(r.priority == REPORT_AVERAGE for r in results)


def test_per_class_tables_and_ranges_are_skipped():
    per_class = table(["Class", "Precision", "Recall"], [["Glioma", "0.91", "0.88"], ["Meningioma", "0.85", "0.9"]])
    assert results_from_table(per_class, DocumentContext(main_model="VGG-16", single_model=True)) == []
    ranged = table(["Model", "Val Accuracy"], [["CNN", "0.10–0.19"], ["CNN", "0.4550"]])
    assert [(r.value, r.split) for r in results_from_table(ranged, DocumentContext())] == [(0.455, "val")]


def test_segmentation_tables_keep_only_dice_and_iou():
    t = table(["Method", "Dice", "Sensitivity"], [["U-Net", "0.88", "0.91"]],
              caption="Table 3. Segmentation results on BraTS")
    assert [(r.metric, r.value, r.dataset) for r in results_from_table(t, DocumentContext())] == [
        ("dice", 0.88, "BraTS")]


def test_setting_rows_belong_to_the_model_their_caption_labels():
    context = DocumentContext(label_models={"model a": "SVM", "model b": "ResNet"})
    t = table(["Setting", "Acc", "AUC"], [["W/o aug", "0.81", "0.80"], ["W/ aug", "0.83", "0.91"]],
              caption="Table 4: Model B: Test set performance with and without augmentation")
    results = results_from_table(t, context)
    assert {(r.model, r.setting, r.metric, r.value) for r in results} == {
        ("ResNet", "W/o aug", "accuracy", 0.81), ("ResNet", "W/o aug", "auc", 0.8),
        ("ResNet", "W/ aug", "accuracy", 0.83), ("ResNet", "W/ aug", "auc", 0.91)}
    flags = {r.setting: r.flags.get("augmentation") for r in results}
    assert flags == {"W/o aug": "no", "W/ aug": "yes"}
    # Columns of a transposed table labelled "A (PCA)" resolve through the same labels.
    transposed = table(["Metric", "A (PCA)", "B (aug)", "Improv."],
                       [["Accuracy", "0.78", "0.83", "+4.5%"]], caption="Table 5: Model A vs Model B")
    assert {(r.model, r.setting, r.value) for r in results_from_table(transposed, context)} == {
        ("SVM", "A (PCA)", 0.78), ("ResNet", "B (aug)", 0.83)}


def test_rows_per_dataset_belong_to_the_papers_model():
    t = table(["Dataset", "Accuracy", "F1"], [["HAM10000", "0.91", "0.88"], ["ISIC 2019", "0.87", "0.84"]])
    results = results_from_table(t, DocumentContext(main_model="EfficientNet-B3"))
    assert {(r.model, r.dataset, r.metric, r.value) for r in results} == {
        ("EfficientNet-B3", "HAM10000", "accuracy", 0.91), ("EfficientNet-B3", "HAM10000", "f1", 0.88),
        ("EfficientNet-B3", "ISIC 2019", "accuracy", 0.87), ("EfficientNet-B3", "ISIC 2019", "f1", 0.84)}


def test_yes_no_cells_read_as_settings_of_their_column():
    t = table(["Model", "Preprocessing", "Augmentation", "Accuracy"],
              [["CNN", "normalization", "no", "0.4550"], ["CNN", "normalization", "yes", "0.4459"]])
    results = results_from_table(t, DocumentContext())
    assert [(r.setting, r.flags) for r in results] == [
        ("normalization, no augmentation", {"augmentation": "no"}),
        ("normalization, augmentation", {"augmentation": "yes"})]


# ---------------------------------------------------------------------------- sentences
@pytest.mark.parametrize("text, expected", [
    ("ResNet-50 achieved an accuracy of 96.5% on the test set.", {("ResNet-50", "accuracy", 0.965, "test")}),
    ("We obtained an accuracy of 0.93 and AUC of 0.95 with VGG16.",
     {("VGG16", "accuracy", 0.93, "test"), ("VGG16", "auc", 0.95, "test")}),
    ("VGG16 reached 95.35% accuracy on unseen images.", {("VGG16", "accuracy", 0.9535, "test")}),
    ("DenseNet-121 obtained accuracy, precision and recall of 91.0%, 89.5% and 90.2%, respectively.",
     {("DenseNet-121", "accuracy", 0.91, "test"), ("DenseNet-121", "precision", 0.895, "test"),
      ("DenseNet-121", "recall", 0.902, "test")}),
    ("The MobileNetV2 model reached a validation accuracy of 48.2%.", {("MobileNetV2", "accuracy", 0.482, "val")}),
    ("The accuracy, precision and F1-score of DenseNet-121 are 0.95, 0.94 and 0.92 on the test set.",
     {("DenseNet-121", "accuracy", 0.95, "test"), ("DenseNet-121", "precision", 0.94, "test"),
      ("DenseNet-121", "f1", 0.92, "test")}),
    ("Our proposed model achieved a sensitivity of 92.1% and a specificity of 88.4%.",
     {("proposed", "recall", 0.921, "test"), ("proposed", "specificity", 0.884, "test")}),
])
def test_results_sentences(text, expected):
    assert tuples(text) == expected


@pytest.mark.parametrize("text", [
    "Previous work [12] reported an accuracy of 91.2% with AlexNet.",
    "The dataset contains 10,015 images collected in 2018 for ResNet-50 training.",
    "Training stops when the validation accuracy of VGG16 exceeds 99.5%.",
    "Two dermatologists attain 65.56% and 66.0% accuracy on the same images.",
    "The AUC of the CNN for each case is over 91%.",
    "The accuracy of ResNet-50 varied between 86-88% across runs.",
    "Augmentation increased the AUC of ResNet-18 by 14.4% relative to the baseline.",
    "ResNet-50 was trained for 50 epochs with a batch size of 32 and an accuracy metric.",
])
def test_numbers_that_are_not_results(text):
    assert tuples(text) == set()


@pytest.mark.parametrize("text, expected", [
    ("The proposed EfficientNet-B0 model achieved 98.2% accuracy and 97.7% F1-score on the test set.",
     {("EfficientNet-B0", "accuracy", 0.982, "test"), ("EfficientNet-B0", "f1", 0.977, "test")}),
    ("The classification accuracy of the proposed DenseNet-121 is 99.1% for binary classification.",
     {("DenseNet-121", "accuracy", 0.991, "test")}),
    ("Compared to [12], which reported 89% accuracy, our Xception model achieves 95.7% accuracy.",
     {("Xception", "accuracy", 0.957, "test")}),
])
def test_a_model_named_inside_a_proposal_between_metric_and_value_or_after_a_citation(text, expected):
    assert tuples(text) == expected


def test_a_split_named_as_a_process_between_metric_and_value():
    text = ("The CNN model was compared with the graph model. The accuracy of the training process was 96.55% "
            "and the accuracy of the validation process was 60.14%.")
    assert tuples(text) == {("CNN model", "accuracy", 0.9655, "train"), ("CNN model", "accuracy", 0.6014, "val")}


def test_a_generic_cnn_stands_for_a_convolutional_main_model_only():
    from medicalrec.extract.relations import resolve_mention

    gcn = DocumentContext(main_model="Delaunay GCN")
    assert resolve_mention((0, 3, "CNN"), gcn) == "CNN"
    vgg = DocumentContext(main_model="VGG19")
    assert resolve_mention((0, 3, "CNN"), vgg) == "VGG19"


def test_a_clause_about_people_does_not_take_the_models_numbers():
    text = ("The Inception-v3 network achieves 72.1 ± 0.9% (mean ± s.d.) overall accuracy and two "
            "dermatologists attain 65.56% and 66.0% accuracy on a subset of the validation set.")
    assert tuples(text) == {("Inception-v3", "accuracy", 0.721, "test")}


def test_the_model_of_the_last_sentences_carries_over():
    text = ("The VGG19 model was fine-tuned on chest X-rays. During testing it demonstrated an accuracy of "
            "95.35% and an F1-score of 96%.")
    assert tuples(text) == {("VGG19", "accuracy", 0.9535, "test"), ("VGG19", "f1", 0.96, "test")}


# ---------------------------------------------------------------------------- merging
def result(model, metric, value, priority, decimals=2, setting="", snippet=""):
    return Result(model, metric, value, "test", 1, snippet or f"{model} {metric} {value}",
                  "table" if priority == TABLE else "sentence", setting, None, decimals, priority)


def test_a_precise_sentence_refines_its_rounded_table_value():
    merged = merge_results([result("SVM", "accuracy", 0.79, TABLE, setting="RAW"),
                            result("SVM", "accuracy", 0.79, TABLE, setting="HOG"),
                            result("SVM", "accuracy", 0.7949, SENTENCE, 4, snippet="best accuracy of 79.49% for HOG")])
    assert {(r.setting, r.value) for r in merged} == {("RAW", 0.79), ("HOG", 0.7949)}


def test_a_run_repeated_in_a_second_table_is_one_experiment():
    first = [result("SVM", m, v, TABLE, setting="PCA") for m, v in (("accuracy", .78), ("f1", .86), ("auc", .84))]
    again = [result("SVM", m, v, TABLE, setting="W/o aug") for m, v in (("accuracy", .78), ("f1", .86), ("auc", .84))]
    merged = merge_results(first + again)
    assert {r.setting for r in merged} == {"PCA"} and len(merged) == 3


def test_conflicting_statements_keep_the_higher_priority_one():
    merged = merge_results([result("VGG19", "recall", 0.9877, SUMMARY_SENTENCE, 4),
                            result("VGG19", "recall", 0.95, REPORT_AVERAGE),
                            result("VGG19", "recall", 0.97, SENTENCE)])
    assert [r.value for r in merged] == [0.97]


def test_two_results_sentences_with_different_values_are_two_runs():
    merged = merge_results([result("CNN", "accuracy", 0.721, SENTENCE, 3),
                            result("CNN", "accuracy", 0.554, SENTENCE, 3)])
    assert sorted((r.setting, r.value) for r in merged) == [("", 0.721), ("result 2", 0.554)]


# ---------------------------------------------------------------------------- splits, averages, value columns
def test_rows_named_by_a_split_are_the_split_of_the_tables_model():
    t = table(["", "Accuracy", "F1-score"],
              [["Training Set", "0.99213", "0.99160"], ["Validation Set", "0.95412", "0.95310"],
               ["Test Set", "0.94876", "0.94720"]], caption="Table 3: Performance of the proposed model")
    results = results_from_table(t, DocumentContext(main_model="Twin-branch CNN"))
    assert {(r.model, r.setting, r.metric, r.value, r.split) for r in results} == {
        ("Twin-branch CNN", "", "accuracy", 0.99213, "train"), ("Twin-branch CNN", "", "f1", 0.9916, "train"),
        ("Twin-branch CNN", "", "accuracy", 0.95412, "val"), ("Twin-branch CNN", "", "f1", 0.9531, "val"),
        ("Twin-branch CNN", "", "accuracy", 0.94876, "test"), ("Twin-branch CNN", "", "f1", 0.9472, "test")}
    # A split cell beside a model name is that model's split, not a setting.
    t = table(["Model", "Split", "Accuracy"], [["VGG16", "Train", "0.99"], ["VGG16", "Test", "0.91"]])
    assert {(r.model, r.setting, r.split) for r in results_from_table(t, DocumentContext())} == {
        ("VGG16", "", "train"), ("VGG16", "", "test")}


def test_columns_named_by_a_split_and_no_dice_from_a_row_label():
    t = table(["Metric", "Training", "Validation", "Testing"],
              [["Accuracy", "0.99", "0.95", "0.94"], ["Dice", "0.91", "0.90", "0.90"]])
    results = results_from_table(t, DocumentContext(main_model="LesionNet"))
    assert {(r.model, r.metric, r.value, r.split) for r in results} == {
        ("LesionNet", "accuracy", 0.99, "train"), ("LesionNet", "accuracy", 0.95, "val"),
        ("LesionNet", "accuracy", 0.94, "test")}


@pytest.mark.parametrize("header", [["Metric", "Value"], ["Performance Metric", "Score (%)"], ["Parameter", "Result"]])
def test_a_metric_value_table_is_the_papers_model(header):
    t = table(header, [["Accuracy", "98.5"], ["Sensitivity", "97.1"], ["Learning rate", "0.001"]])
    results = results_from_table(t, DocumentContext(main_model="LesionNet"))
    assert {(r.model, r.metric, r.value) for r in results} == {("LesionNet", "accuracy", 0.985),
                                                                ("LesionNet", "recall", 0.971)}


def test_the_average_row_of_a_per_class_table_is_the_models_result():
    context = DocumentContext(main_model="LesionNet", class_words={"melanoma", "nevus", "benign"})
    t = table(["", "Precision", "Recall"], [["Melanoma", "0.95", "0.94"], ["Nevus", "0.90", "0.91"],
                                           ["Average", "0.93", "0.92"]], caption="Table 4: Results of the proposed model")
    results = results_from_table(t, context)
    assert {(r.model, r.setting, r.metric, r.value) for r in results} == {
        ("LesionNet", "", "precision", 0.93), ("LesionNet", "", "recall", 0.92)}
    assert {r.priority for r in results} == {REPORT_AVERAGE}


def test_acronyms_and_coined_names_listed_beside_catalogue_models_are_models():
    t = table(["", "Accuracy"], [["VGG16", "0.91"], ["GCN", "0.95"], ["LNet-X", "0.97"]])
    assert {(r.model, r.value) for r in results_from_table(t, DocumentContext())} == {
        ("VGG16", 0.91), ("GCN", 0.95), ("LNet-X", 0.97)}
    # Class acronyms the paper names as classes are not.
    classes = table(["", "Accuracy"], [["VGG16", "0.91"], ["MEL", "0.95"], ["BCC", "0.97"]])
    assert {r.model for r in results_from_table(classes, DocumentContext(class_words={"mel", "bcc"}))} == {"VGG16"}
