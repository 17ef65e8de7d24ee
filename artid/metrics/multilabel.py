"""Multi-label metrics of the iMet Collection tasks: plain functions on (N, L) arrays.

Every function takes arrays with one row per image and one column per label:

- ``y_true``: (N, L) 0/1 (or bool) ground truth;
- ``y_pred``: (N, L) 0/1 (or bool) decisions (scores already thresholded);
- ``scores``: (N, L) float scores, higher meaning "more likely present" (probabilities, logits
  or SVM decision values: the AUCs only use their order).

The F-scores delegate to scikit-learn where it has the exact metric, and :func:`fbeta_per_image`
writes the per-image F-beta in closed form (``(1 + b^2) tp / (b^2 n_true + n_pred)``) because the
threshold search (:mod:`artid.metrics.thresholds`) needs it per image, vectorised over thresholds.

Images with no true and no predicted label. F-beta is 0/0 there. iMet never has such an image
(every image carries at least one attribute), so the Kaggle metric never decides the case; an image
with labels but an empty prediction (allowed in a submission) scores 0 under every convention.
scikit-learn's ``fbeta_score(average="samples")`` gives such an image its ``zero_division`` value:
0.0 by default ("warn"), 1.0, or NaN, which leaves the image out of the mean. ``zero_division``
here means the same and defaults to 0.0, so every result equals scikit-learn's default. It matters
on data with empty label rows, e.g. one label group of the synthetic benchmark evaluated alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, fbeta_score, roc_auc_score

from artid.errors import ArtidError

#: Beta of the iMet Collection metric (recall weighs four times as much as precision).
IMET_BETA = 2.0


def check_labels(y: np.ndarray, name: str = "y_true") -> np.ndarray:
    """``y`` as an (N, L) bool array; :class:`ArtidError` unless it is 2-D and only 0/1."""
    arr = np.asarray(y)
    if arr.ndim != 2:
        raise ArtidError(f"{name} must be an (images, labels) matrix; got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ArtidError(f"{name} must hold only 0 and 1 (or True / False)")
        arr = arr.astype(bool)
    return arr


def check_scores(scores: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``scores`` as a finite float64 (N, L) array, of ``shape`` when given."""
    arr = np.asarray(scores)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ArtidError(f"scores must be a numeric (images, labels) matrix; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if shape is not None and arr.shape != shape:
        raise ArtidError(f"scores have shape {arr.shape} but the labels have shape {shape}")
    if not np.isfinite(arr).all():
        raise ArtidError("scores contain NaN or infinite values")
    return arr


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = check_labels(y_true, "y_true")
    p = check_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ArtidError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    return t, p


def _check_zero_division(zero_division: float) -> float:
    z = float(zero_division)
    if not (z in (0.0, 1.0) or math.isnan(z)):
        raise ArtidError(f"zero_division must be 0.0, 1.0 or NaN; got {zero_division!r}")
    return z


def fbeta_from_counts(
    tp: np.ndarray,
    n_true: np.ndarray,
    n_pred: np.ndarray,
    beta: float = IMET_BETA,
    zero_division: float = 0.0,
) -> np.ndarray:
    """Per-image F-beta from counts (broadcastable shapes): ``(1+b^2) tp / (b^2 n_true + n_pred)``.

    The denominator equals ``(1+b^2) tp + b^2 fn + fp``; where it is 0 (nothing true, nothing
    predicted) the value is ``zero_division``.
    """
    b2 = beta * beta
    num = (1.0 + b2) * np.asarray(tp, dtype=np.float64)
    den = b2 * np.asarray(n_true, dtype=np.float64) + np.asarray(n_pred, dtype=np.float64)
    num, den = np.broadcast_arrays(num, den)
    out = np.full(num.shape, zero_division, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def fbeta_per_image(
    y_true: np.ndarray, y_pred: np.ndarray, beta: float = IMET_BETA, zero_division: float = 0.0
) -> np.ndarray:
    """(N,) F-beta of each image (row); ``zero_division`` where nothing is true or predicted."""
    t, p = _check_pair(y_true, y_pred)
    z = _check_zero_division(zero_division)
    return fbeta_from_counts((t & p).sum(1), t.sum(1), p.sum(1), beta, z)


def mean_fbeta(
    y_true: np.ndarray, y_pred: np.ndarray, beta: float = IMET_BETA, zero_division: float = 0.0
) -> float:
    """Mean per-image F-beta, the iMet Collection metric at ``beta=2`` (the default).

    Equals scikit-learn's ``fbeta_score(y_true, y_pred, beta=beta, average="samples",
    zero_division=zero_division)``: NaN leaves images with nothing true or predicted out of the
    mean.
    """
    t, p = _check_pair(y_true, y_pred)
    z = _check_zero_division(zero_division)
    if t.shape[0] == 0:
        raise ArtidError("mean_fbeta needs at least one image")
    return float(fbeta_score(t, p, beta=beta, average="samples", zero_division=z))


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Micro-averaged F1 over all (image, label) decisions (an iMet 2020 alternative metric).

    scikit-learn's ``f1_score(average="micro")``; 0.0 when nothing is true and nothing predicted.
    """
    t, p = _check_pair(y_true, y_pred)
    return float(f1_score(t, p, average="micro", zero_division=0.0))


def fbeta_per_label(
    y_true: np.ndarray, y_pred: np.ndarray, beta: float = IMET_BETA, zero_division: float = 0.0
) -> np.ndarray:
    """(L,) F-beta of each label (column), e.g. to plot against label frequency."""
    t, p = _check_pair(y_true, y_pred)
    z = _check_zero_division(zero_division)
    return np.asarray(fbeta_score(t, p, beta=beta, average=None, zero_division=z), dtype=np.float64)


@dataclass(frozen=True)
class RankingMetrics:
    """Threshold-free metrics of (N, L) scores; fractions in [0, 1], NaN where undefined.

    Attributes:
        auc_roc_macro: mean ROC AUC over the labels with at least one positive and one negative.
        auc_roc_micro: ROC AUC of all (image, label) pairs pooled.
        auc_pr_macro: mean average precision (scikit-learn's step-wise area under the PR curve)
            over the labels with at least one positive.
        auc_pr_micro: average precision of all pairs pooled.
        skipped_roc: labels left out of ``auc_roc_macro`` (no positive, or no negative).
        skipped_pr: labels left out of ``auc_pr_macro`` (no positive).
    """

    auc_roc_macro: float
    auc_roc_micro: float
    auc_pr_macro: float
    auc_pr_micro: float
    skipped_roc: int
    skipped_pr: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return dict(self.__dict__)


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> RankingMetrics:
    """AUC-ROC and AUC-PR, macro and micro, of ``scores`` against ``y_true`` (scikit-learn).

    Labels where a macro AUC is undefined are skipped and counted rather than failing the whole
    evaluation (rare iMet labels are often absent from a validation split). A micro AUC is NaN when
    the pooled pairs lack positives (both) or negatives (ROC).
    """
    t = check_labels(y_true, "y_true")
    s = check_scores(scores, t.shape)
    pos = t.sum(0)
    roc_ok = (pos > 0) & (pos < t.shape[0])
    pr_ok = pos > 0
    nan = float("nan")
    roc_macro = (
        float(roc_auc_score(t[:, roc_ok], s[:, roc_ok], average="macro")) if roc_ok.any() else nan
    )
    pr_macro = (
        float(average_precision_score(t[:, pr_ok], s[:, pr_ok], average="macro"))
        if pr_ok.any()
        else nan
    )
    flat_t, flat_s = t.ravel(), s.ravel()
    n_pos = int(flat_t.sum())
    roc_micro = float(roc_auc_score(flat_t, flat_s)) if 0 < n_pos < flat_t.size else nan
    pr_micro = float(average_precision_score(flat_t, flat_s)) if n_pos > 0 else nan
    return RankingMetrics(
        auc_roc_macro=roc_macro,
        auc_roc_micro=roc_micro,
        auc_pr_macro=pr_macro,
        auc_pr_micro=pr_micro,
        skipped_roc=int((~roc_ok).sum()),
        skipped_pr=int((~pr_ok).sum()),
    )
