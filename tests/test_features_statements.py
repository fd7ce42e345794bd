"""Generic feature statements added for issue 9: each rule reads a value from one kind of sentence
and leaves a look-alike sentence alone."""

from __future__ import annotations

import pytest

from medicalrec.extract.features import paper_features, resolve, sentence_evidence


def features_of(*sentences: str) -> dict:
    evidence = [e for i, s in enumerate(sentences) for e in sentence_evidence(s, page=i + 1)]
    return paper_features(evidence, method="sentence")


def value(fields: dict, name: str):
    return fields[name].value if fields[name].has_value else fields[name].status


def stated(sentence: str, feature: str) -> list:
    return [(e.value, e.ratio) for e in sentence_evidence(sentence, page=1) if e.feature == feature]


@pytest.mark.parametrize("sentence, shares", [
    ("The data was split into training and test sets with proportions of 90% 10%.", (0.9, None, 0.1)),
    ("We use a 70:15:15 train/validation/test split.", (0.7, 0.15, 0.15)),
    ("The images are divided into Training set and Validation set, with the proportion of 80% and 20% "
     "respectively.", (0.8, 0.2, None)),
    ("The data were split into training, validation and test sets (70%, 15%, and 15%).", (0.7, 0.15, 0.15)),
])
def test_shares_listed_in_the_order_of_the_splits(sentence, shares):
    found = {f: stated(sentence, f) for f in ("n_train", "n_val", "n_test")}
    assert tuple(found[f][0][1] if found[f] else None for f in ("n_train", "n_val", "n_test")) == shares


def test_listed_shares_of_a_stated_total_give_counts():
    fields = features_of("The dataset consists of 780 ultrasound images.",
                         "The data was split into training and test sets with proportions of 90% 10%.")
    assert (value(fields, "n_train"), value(fields, "n_test")) == (702, 78)
    assert fields["n_train"].status == "derived"


@pytest.mark.parametrize("sentence", [
    "The proposed model achieved 92.76% and 91.19% as training and validation accuracies respectively.",
    "The accuracy is poor, with only 66% for the training process and 32% for the validation process.",
])
def test_shares_of_a_score_are_no_split(sentence):
    assert not any(stated(sentence, f) for f in ("n_train", "n_val", "n_test"))


def test_split_sizes_printed_by_a_notebook():
    fields = features_of("Training Number of Paths: 5712 Number of Labels: 5712 Testing Number of Paths: 39 "
                         "Validation Number of Paths: 1272")
    assert (value(fields, "n_train"), value(fields, "n_test"), value(fields, "n_val")) == (5712, 39, 1272)
    assert value(fields, "n_samples") == 7023


@pytest.mark.parametrize("sentence", [
    "Each set has nine parts for training and one for testing.",
    "We take a random crop of shape 512x512 for the training purpose.",
    "The model can train for 50 iterations and utilize 64 training examples in one iteration.",
])
def test_numbers_that_are_not_split_sizes(sentence):
    assert not any(e for f in ("n_train", "n_test") for e in stated(sentence, f))


def test_a_split_larger_than_the_data_used_describes_something_else():
    fields = features_of("The Training dataset consists of 2239 skin cancer images distributed in nine folders.",
                         "By using only five classes there are only 1380 images left to use.",
                         "The images are divided into training and validation sets with the proportion of 80% and "
                         "20% respectively.")
    assert (value(fields, "n_samples"), value(fields, "n_train"), value(fields, "n_val")) == (1380, 1104, 276)


def test_the_images_a_paper_selects_are_the_data_it_uses():
    fields = features_of("The database contains 2620 cases.",
                         "To train and test our system we selected 2000 mammogram images with equal numbers of cases.")
    assert value(fields, "n_samples") == 2000
    assert not stated("We selected 200 images for testing.", "n_samples")


@pytest.mark.parametrize("sentence, count", [
    ("We developed a system that classifies masses observed in a mammogram as either benign or malignant.", 2),
    ("Techniques classify the cell into infected or healthy cells.", 2),
    ("The dataset is categorized into normal, benign, and malignant images.", 3),
])
def test_classes_listed_after_a_labelling_verb(sentence, count):
    assert [v for v, _ in stated(sentence, "n_classes")] == [count]


@pytest.mark.parametrize("sentence", [
    "The models tend to classify images as the biggest class and not recognise images from the smallest classes.",
    "The 3 smallest classes have an F1 score of 0, and all but the 2 biggest classes are near 0.",
    "The features help differentiate between healthy skin and the lesion.",
    "The model is trained with binary cross-entropy loss.",
])
def test_sentences_that_state_no_number_of_classes(sentence):
    assert stated(sentence, "n_classes") == []


@pytest.mark.parametrize("sentence, channels", [
    ("The images were converted from grayscale to RGB format to be able to use ImageNet weights.", 3),
    ("All images were converted to grayscale before training.", 1),
    ("We mapped gray scale intensity values of the mammograms to a wider range.", None),
    ("Abbreviations: RDT = Rapid Diagnostic Test; RGB = Red Green Blue.", None),
])
def test_channel_statements(sentence, channels):
    assert value(features_of(sentence), "channels") == (channels if channels else "not_reported")


def test_image_size_averaged_over_the_dataset_is_not_the_input_size():
    fields = features_of("The dataset consists of 780 images with an average image size of 500*500 pixels.",
                         "We normalise pixel values and resize all images to 128x128.")
    assert (value(fields, "width"), value(fields, "height")) == (128, 128)


@pytest.mark.parametrize("sentences, expected", [
    (("5.3 Data augmentation", "Data augmentation is a way to improve performance.",
      "I did not implement data augmentation because balancing the dataset would have taken too long."), "no"),
    (("Data augmentation was tried but, eventually, not used since it did not improve the performance.",
      "Another attempt was made applying data augmentation to the images."), "no"),
    (("We applied data augmentation, which can reduce overfitting.",), "yes"),
])
def test_augmentation_statements(sentences, expected):
    evidence = [e for s in sentences for e in sentence_evidence(s, page=1)]
    assert resolve("augmentation", evidence, method="sentence").value == expected


@pytest.mark.parametrize("sentence", [
    "We laid the foundation for methods that augment the capabilities of clinicians.",
    "Augmentations such as colour jittering could distort the stain colours.",
])
def test_sentences_that_state_no_augmentation(sentence):
    assert [e for e in sentence_evidence(sentence, page=1) if e.feature == "augmentation"] == []


@pytest.mark.parametrize("sentence", [
    "Fine-tuning hyper-parameters is a more efficient way to set them than trial and error.",
    "The classifier model is written from scratch using convolutional layers.",
    "GCN can also leverage transfer learning to address the challenges of small datasets.",
    "Images were resized so that they can be readily used with many pre-trained models.",
])
def test_sentences_that_state_nothing_about_pretraining(sentence):
    assert [e for e in sentence_evidence(sentence, page=1) if e.feature == "pretrained"] == []


def test_pretraining_statements_still_read():
    assert [e.value for e in sentence_evidence("We fine-tuned an ImageNet-pretrained ResNet50.", page=1)
            if e.feature == "pretrained"] == ["yes"]
    assert [e.value for e in sentence_evidence("The CNN was trained from scratch.", page=1)
            if e.feature == "pretrained"] == ["no"]
