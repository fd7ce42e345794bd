"""Classical baselines on flattened pixels (scikit-learn), scored like the networks: class
probabilities from predict_proba, else decision_function squashed so that medmnist's 0.5 threshold
(binary / multi-label ACC) and argmax (multi-class ACC) agree with the estimator's own predict()."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax

from .data import SplitArrays


def svm(seed: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed))


def random_forest(seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed)


def logistic_regression(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500, random_state=seed))


def features(split: SplitArrays) -> np.ndarray:
    return split.images.reshape(len(split), -1).astype(np.float32) / 255.0


def fit(estimator, train: SplitArrays, multi_label: bool):
    if multi_label:
        from sklearn.multioutput import MultiOutputClassifier

        estimator = MultiOutputClassifier(estimator)
        return estimator.fit(features(train), train.labels)
    return estimator.fit(features(train), train.labels[:, 0])


def scores(estimator, split: SplitArrays, n_classes: int, multi_label: bool) -> np.ndarray:
    """(N, n_classes) scores in medmnist Evaluator's format ((N,) for a binary decision function)."""
    x = features(split)
    if multi_label:
        return np.stack([_positive_score(est, x) for est in estimator.estimators_], axis=1)
    classes = list(_classes(estimator))
    if hasattr(estimator, "predict_proba"):
        raw = estimator.predict_proba(x)
    else:
        decision = estimator.decision_function(x)
        if decision.ndim == 1:  # binary: one margin, > 0 means classes[1]
            raw = np.stack([1 - expit(decision), expit(decision)], axis=1)
        else:
            raw = softmax(decision, axis=1)
    full = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    for column, label in enumerate(classes):  # a class absent from training keeps a zero column
        full[:, int(label)] = raw[:, column]
    return full


def _positive_score(estimator, x: np.ndarray) -> np.ndarray:
    classes = list(_classes(estimator))
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(x)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(x.shape[0])
    if len(classes) < 2:
        return np.full(x.shape[0], float(classes[0] == 1))
    return expit(estimator.decision_function(x))


def _classes(estimator):
    return estimator.classes_ if hasattr(estimator, "classes_") else estimator[-1].classes_
