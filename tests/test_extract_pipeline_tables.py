"""Table regions from layout text: captions, headers, rows, two-column pages."""

from __future__ import annotations

from medicalrec.extract.tables import find_tables, page_may_have_table

SINGLE = """\
3. Results

Table 2: Model A: Feature representation comparison on test set

          Feature     Acc     Prec     Rec      F1      AUC
          RAW        0.79     0.79     0.98     0.88     0.83
          PCA         0.78     0.80     0.94     0.86     0.84
          HOG        0.79     0.82     0.91     0.86     0.74

The  results  in  the  above  table  align  with  the  literature  on  classical  machine  learning.
"""

CAPTION_BELOW = """\
                      Model      Preprocessing      Augmentation        Val Accuracy
                      CNN           baseline               no             0.10–0.19
                      CNN        normalization             no               0.4550
                    Transfer     normalization             no               0.4820

                            Table 1:  Comparison of model performance

11    Discussion
"""

# A table in the right column of a two-column page, beside justified prose in the left one.
LEFT = [
    "of  the  SVM  classifier  already  offer  enough  robustness  to",
    "the learned representations and the regularization property of",
    "classical  machine  learning,  where  the  benefits  of  augmen-",
    "tation may be limited for hand-designed features [3].  In this",
    "section  we  compare  the  models  on  the  held-out  test  set,",
    "which  is  never  used  during  training  or  validation  and",
    "therefore  gives  an  unbiased  estimate  of  the  performance",
    "of  each  model  on  new  images  from  the  same  distribution.",
    "The  network  is  trained  with  the  Adam  optimizer  for  fifty",
    "epochs  and  early  stopping  on  the  validation  accuracy  is",
    "applied  to  prevent  the  model  from  overfitting  the  data.",
]
RIGHT = [
    "Table 4: Model B: Test set performance",
    "",
    "Setting        Acc     Prec     Rec      F1      AUC",
    "W/o aug     0.81     0.84     0.92     0.88     0.80",
    "W/ aug      0.83     0.83     0.96     0.89     0.91",
    "",
    "Best-case  performance:  Accuracy  =  82.69%,  F1-Score",
    "= 0.8907, ROC-AUC = 0.9142.  Augmentation provided",
    "substantial regularization benefit, with AUC improving",
    "from  0.8005  to  0.9142—a  14.4%  relative  improvement.",
    "This demonstrates augmentation's role as a regularizer.",
]
TWO_COLUMNS = "\n".join(f"{left:<66}        {right}" for left, right in zip(LEFT, RIGHT))


def test_a_captioned_table_in_one_column():
    (table,) = find_tables(SINGLE, page=6)
    assert table.page == 6
    assert table.caption == "Table 2: Model A: Feature representation comparison on test set"
    assert table.header == ["Feature", "Acc", "Prec", "Rec", "F1", "AUC"]
    assert table.rows[1] == ["PCA", "0.78", "0.80", "0.94", "0.86", "0.84"]
    assert len(table.rows) == 3


def test_caption_below_the_table_and_text_cells():
    (table,) = find_tables(CAPTION_BELOW, page=4)
    assert table.caption == "Table 1: Comparison of model performance"
    assert table.header == ["Model", "Preprocessing", "Augmentation", "Val Accuracy"]
    assert table.rows[0] == ["CNN", "baseline", "no", "0.10–0.19"]
    assert table.rows[2][0] == "Transfer"


def test_two_column_page_keeps_the_table_apart_from_the_other_column():
    tables = find_tables(TWO_COLUMNS, page=6)
    assert len(tables) == 1
    (table,) = tables
    assert table.caption == "Table 4: Model B: Test set performance"
    assert table.header == ["Setting", "Acc", "Prec", "Rec", "F1", "AUC"]
    assert table.rows == [["W/o aug", "0.81", "0.84", "0.92", "0.88", "0.80"],
                          ["W/ aug", "0.83", "0.83", "0.96", "0.89", "0.91"]]


def test_cells_missing_from_a_row_stay_under_their_columns():
    text = """\
                     Precision             Recall                F1-score             support
    0                    0.96                  0.92                  0.94                 234
    accuracy                                                         0.95                 624
    macro avg            0.95                  0.95                  0.95                 624
"""
    (table,) = find_tables(text, page=6)
    assert table.header == ["", "Precision", "Recall", "F1-score", "support"]
    assert table.rows[1] == ["accuracy", "", "", "0.95", "624"]
    assert table.rows[2] == ["macro avg", "0.95", "0.95", "0.95", "624"]


def test_justified_prose_and_references_are_not_tables():
    prose = "\n".join(LEFT)
    assert find_tables(prose, page=1) == []
    references = """\
[3]  M. A. Khan, I. Ashraf, and S. A. C. Bukhari, "Multimodal brain tumor classifica-
     tion using deep learning," Diagnostics, vol. 10, no. 8, p. 565, 2020.
[4]  A. Rehman, S. Naz, M. I. Razzak, F. Akram, and M. Imran, "A deep learning-based
     framework for automatic brain tumors classification," vol. 39, pp. 757–775, 2020.
"""
    assert find_tables(references, page=9) == []


def test_page_may_have_table_is_cheap_and_wants_rows_of_numbers():
    plain_table = "Table 1: Results\nModel Accuracy AUC\nVGG16 0.91 0.95\nResNet50 0.93 0.96\n"
    assert page_may_have_table(plain_table)
    # A caption of a table printed as an image: nothing to lay out.
    assert not page_may_have_table("TABLE IV\nSTUDY OF KEY COMPONENTS OF THE PROPOSED METHOD.\nSome prose here.")
    assert not page_may_have_table("\n".join(LEFT))
    assert page_may_have_table("0.1 0.2 0.3\n0.4 0.5 0.6\n0.7 0.8 0.9\n1 2 3\n")


def test_a_header_wrapped_over_two_lines_is_one_header():
    text = """\
        Model        Accuracy     Sensitivity     AUC
                       (%)           (%)
        VGG16          91.2          90.1         0.95
        ResNet50       93.4          92.0         0.97
"""
    (table,) = find_tables(text, page=2)
    assert table.header == ["Model", "Accuracy (%)", "Sensitivity (%)", "AUC"]
    assert table.rows[1] == ["ResNet50", "93.4", "92.0", "0.97"]


NARROW = """\
Table 3: Performance of the models
Model Accuracy Precision F1 Score
Resnet50 0.98765 0.97654 0.98123
VGG16 0.95432 0.94321 0.94987
Xception 0.96543 0.96012 0.96234
"""


def test_a_narrow_table_with_single_spaces_is_still_a_table():
    (table,) = find_tables(NARROW, page=4)
    assert table.caption == "Table 3: Performance of the models"
    assert table.header == ["Model", "Accuracy", "Precision", "F1 Score"]
    assert table.rows[0] == ["Resnet50", "0.98765", "0.97654", "0.98123"]
    # Prose that ends in numbers, or a listing, is not split into cells.
    assert find_tables("the accuracy was 0.95 and 0.96\nthe recall was 0.91 and 0.93\n", page=1) == []
    assert find_tables("Precision: 0.9965\nRecall: 0.9759\nF1-Score: 0.9861\n", page=1) == []


def test_a_small_results_table_without_caption_is_laid_out():
    rows = "Resnet50 0.98765 0.97654 0.98765\nVGG16 0.95432 0.94321 0.95432\n"
    assert page_may_have_table("Some prose before the table.\n" + rows)
    # Cells the plain text glued together still count as scores.
    assert page_may_have_table("Resnet500.987650.976540.98765\nVGG160.954320.943210.95432\n")
    assert not page_may_have_table("The accuracy of 0.95 was high for a model of this size and kind.\n"
                                   "It was 0.93 in the earlier study by the same group of authors.\n")


# A header on two lines: the row-label column named only above ("Model"), a group label over the
# metric columns ("Classification metrics"), the metric names below.
GROUPED_HEADER = """\
TABLE I.  CLASSIFICATION METRICS FOR FINE-TUNED MODELS

    Model                        Classification metrics
                  Accuracy              Precision              Recall
    Resnet18      0.98042               0.97147                0.98042
    Resnet50      0.98287               0.98000                0.98287
"""


def test_a_group_label_over_the_metric_columns_names_none_of_them():
    (table,) = find_tables(GROUPED_HEADER, page=3)
    assert table.header == ["Model", "Accuracy", "Precision", "Recall"]
    assert table.rows == [["Resnet18", "0.98042", "0.97147", "0.98042"],
                          ["Resnet50", "0.98287", "0.98000", "0.98287"]]
