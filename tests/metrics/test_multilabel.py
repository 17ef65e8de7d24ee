"""Multi-label metrics against scikit-learn on random label matrices."""

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, fbeta_score, roc_auc_score

from artid.errors import ArtidError
from artid.metrics.multilabel import (
    fbeta_per_image,
    fbeta_per_label,
    mean_fbeta,
    micro_f1,
    ranking_metrics,
)


def _random_pair(
    seed: int, n: int = 40, n_labels: int = 7, p: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.random((n, n_labels)) < p
    y_pred = rng.random((n, n_labels)) < p
    # Images with nothing true and nothing predicted, nothing true only, nothing predicted only.
    y_true[:3] = False
    y_pred[:2] = False
    y_pred[5:7] = False
    return y_true.astype(int), y_pred.astype(int)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("zero_division", [0.0, 1.0, float("nan")])
def test_mean_fbeta_equals_sklearn_samples_average(seed: int, zero_division: float) -> None:
    y_true, y_pred = _random_pair(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=zero_division)
    assert mean_fbeta(y_true, y_pred, zero_division=zero_division) == pytest.approx(ref, abs=1e-12)
    per_image = fbeta_per_image(y_true, y_pred, zero_division=zero_division)
    assert np.nanmean(per_image) == pytest.approx(ref, abs=1e-12)


def test_default_is_sklearn_default_and_empty_rows_score_zero_division() -> None:
    y_true = np.array([[0, 0], [1, 0], [0, 0], [1, 1]])
    y_pred = np.array([[0, 0], [0, 0], [1, 0], [1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fbeta_score(y_true, y_pred, beta=2, average="samples")
    assert mean_fbeta(y_true, y_pred) == pytest.approx(ref)
    # Row 3: tp 1 of 2 true, 1 predicted -> 5 / (4 * 2 + 1).
    np.testing.assert_allclose(fbeta_per_image(y_true, y_pred), [0.0, 0.0, 0.0, 5 / 9])
    np.testing.assert_allclose(
        fbeta_per_image(y_true, y_pred, zero_division=1.0), [1.0, 0.0, 0.0, 5 / 9]
    )
    assert mean_fbeta(y_true, y_pred, zero_division=float("nan")) == pytest.approx((5 / 9) / 3)


@pytest.mark.parametrize("seed", range(3))
def test_micro_f1_and_per_label_equal_sklearn(seed: int) -> None:
    y_true, y_pred = _random_pair(seed)
    assert micro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="micro"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fbeta_score(y_true, y_pred, beta=2, average=None, zero_division=0.0)
    np.testing.assert_allclose(fbeta_per_label(y_true, y_pred), ref)


@pytest.mark.parametrize("seed", range(4))
def test_ranking_metrics_equal_sklearn_on_defined_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((30, 6)) < 0.3).astype(int)
    y_true[:, 0] = 0  # no positive: skipped by both macro AUCs
    y_true[:, 1] = 1  # no negative: skipped by ROC only
    y_true[0, 2], y_true[1, 2] = 1, 0
    scores = rng.normal(size=(30, 6)) + y_true
    m = ranking_metrics(y_true, scores)
    assert (m.skipped_roc, m.skipped_pr) == (2, 1)
    assert m.auc_roc_macro == pytest.approx(
        roc_auc_score(y_true[:, 2:], scores[:, 2:], average="macro")
    )
    assert m.auc_pr_macro == pytest.approx(
        average_precision_score(y_true[:, 1:], scores[:, 1:], average="macro")
    )
    assert m.auc_roc_micro == pytest.approx(roc_auc_score(y_true, scores, average="micro"))
    assert m.auc_pr_micro == pytest.approx(average_precision_score(y_true, scores, average="micro"))
    assert m.auc_roc_macro > 0.5  # the scores carry signal


def test_ranking_metrics_without_any_positive_are_nan_not_an_error() -> None:
    m = ranking_metrics(np.zeros((4, 3)), np.ones((4, 3)))
    assert math.isnan(m.auc_roc_macro) and math.isnan(m.auc_pr_micro)
    assert m.as_dict()["skipped_pr"] == 3


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        (np.zeros((3, 2)), np.zeros((3, 3))),  # shapes differ
        (np.zeros(3), np.zeros(3)),  # not a matrix
        (np.full((2, 2), 2), np.zeros((2, 2))),  # not 0/1
    ],
)
def test_bad_label_matrices_raise_artid_error(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    with pytest.raises(ArtidError):
        mean_fbeta(y_true, y_pred)


def test_bad_scores_and_zero_division_raise_artid_error() -> None:
    with pytest.raises(ArtidError, match="NaN"):
        ranking_metrics(np.eye(3), np.full((3, 3), np.nan))
    with pytest.raises(ArtidError, match="shape"):
        ranking_metrics(np.eye(3), np.zeros((3, 2)))
    with pytest.raises(ArtidError, match="zero_division"):
        mean_fbeta(np.eye(3), np.eye(3), zero_division=0.5)
