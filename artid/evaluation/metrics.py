"""The Met benchmark's metrics (METHOD section 2, thesis section 3.5.2): plain functions on arrays.

Every function takes the classifier's output and the ground truth as arrays of the same length Q:

- ``pred``: (Q,) int predicted class per query (the classifier never predicts "distractor");
- ``conf``: (Q,) float confidence of that prediction;
- ``labels``: (Q,) int true class, or -1 (:data:`artid.data.entries.DISTRACTOR`) for a distractor.

Values are fractions in [0, 1]; multiply by 100 for the paper's tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.errors import ArtidError

#: Buckets of "number of database images of the query's true class" for :func:`accuracy_by_bucket`
#: (the breakdown of the thesis' figure 5.4). The figure's bin edges are not given in the text, so
#: these are ours: the Met has 1-10 images per class, 60.8% of classes with one.
DEFAULT_BUCKETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 4), (5, 10))


def _check(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    conf = np.asarray(conf, dtype=np.float64)
    labels = np.asarray(labels)
    if not (pred.ndim == conf.ndim == labels.ndim == 1) or not (len(pred) == len(conf) == len(labels)):
        raise ArtidError(
            "metrics need three 1-D arrays of one length; "
            f"got pred {pred.shape}, conf {conf.shape}, labels {labels.shape}"
        )
    if np.isnan(conf).any():
        raise ArtidError("metrics: a confidence is NaN")
    return pred, conf, labels


def micro_ap(correct_sorted: np.ndarray, n_positive: int) -> float:
    """sum_i p(i) r(i) / n_positive for a 0/1 relevance vector already sorted by rank."""
    if n_positive == 0:
        return 0.0
    hits = np.cumsum(correct_sorted)
    ranks = np.arange(1, len(correct_sorted) + 1)
    return float(np.sum((hits / ranks)[correct_sorted]) / n_positive)


def rank_order(conf: np.ndarray) -> np.ndarray:
    """Indices sorting queries by confidence, descending; ties keep the input order (stable sort)."""
    return np.argsort(-np.asarray(conf, dtype=np.float64), kind="stable")


def gap(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> float:
    """Global Average Precision (micro-AP) over ALL queries, distractors included.

    Queries are sorted by confidence, descending. ``r(i) = 1`` when the query at rank ``i``
    is not a distractor and its prediction is right; ``p(i)`` is the precision of ranks
    ``1..i``; GAP = ``sum_i p(i) r(i) / M`` with M the number of non-distractor queries.
    Ties in confidence are broken by the input order (a stable sort), so the value is
    deterministic. Returns 0.0 when there is no non-distractor query.

    Args:
        pred: (Q,) int predicted classes.
        conf: (Q,) float confidences.
        labels: (Q,) int true classes, -1 for distractors.

    Returns:
        GAP as a fraction in [0, 1].
    """
    pred, conf, labels = _check(pred, conf, labels)
    correct = (labels != DISTRACTOR) & (pred == labels)
    order = rank_order(conf)
    return micro_ap(correct[order], int(np.sum(labels != DISTRACTOR)))


def gap_minus(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> float:
    """GAP computed over the non-distractor queries only (the paper's GAP-).

    Same ranking rule as :func:`gap` (descending confidence, ties in input order).
    """
    pred, conf, labels = _check(pred, conf, labels)
    keep = labels != DISTRACTOR
    return gap(pred[keep], conf[keep], labels[keep])


def accuracy(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> float:
    """ACC: fraction of non-distractor queries whose predicted class is right (0.0 if there are none).

    ``conf`` is accepted (and ignored) so that every metric has the same signature.
    """
    pred, conf, labels = _check(pred, conf, labels)
    keep = labels != DISTRACTOR
    if not keep.any():
        return 0.0
    return float(np.mean(pred[keep] == labels[keep]))


def precision_recall(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The precision-recall curve behind :func:`gap`: one point per rank.

    Returns:
        precision (Q,), recall (Q,) float64, where rank i's recall is the fraction of the M
        non-distractor queries correctly predicted within ranks 1..i. GAP is the mean of the
        precision values at the ranks of correct predictions, summed over M.
    """
    pred, conf, labels = _check(pred, conf, labels)
    correct = ((labels != DISTRACTOR) & (pred == labels))[rank_order(conf)]
    hits = np.cumsum(correct)
    m = max(int(np.sum(labels != DISTRACTOR)), 1)
    return hits / np.arange(1, len(correct) + 1), hits / m


def accuracy_by_bucket(
    pred: np.ndarray,
    labels: np.ndarray,
    class_sizes: dict[int, int],
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
) -> list[dict]:
    """Accuracy of non-distractor queries grouped by how many database images their true class has.

    Args:
        pred: (Q,) predicted classes.
        labels: (Q,) true classes, -1 for distractors (ignored here).
        class_sizes: class -> number of database images of that class.
        buckets: inclusive (low, high) ranges of class sizes.

    Returns:
        One dict per bucket: ``{"bucket": "3-4", "low", "high", "queries": n, "correct": c,
        "accuracy": c / n or None when the bucket holds no query}``.
    """
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    keep = labels != DISTRACTOR
    sizes = np.array([class_sizes.get(int(c), 0) for c in labels[keep]], dtype=np.int64)
    right = pred[keep] == labels[keep]
    rows = []
    for low, high in buckets:
        inside = (sizes >= low) & (sizes <= high)
        n = int(inside.sum())
        c = int(right[inside].sum())
        rows.append({"bucket": str(low) if low == high else f"{low}-{high}", "low": low, "high": high,
                     "queries": n, "correct": c, "accuracy": c / n if n else None})
    return rows


def subsample_distractors(labels: np.ndarray, ratio: float, seed: int = 0) -> np.ndarray:
    """Indices of the queries kept when only ``ratio`` of the distractors are kept (appendix B.5).

    The thesis (table B.1) lowers the share of out-of-distribution queries "by removing the
    appropriate amount of distractor queries": every non-distractor query stays, and
    ``round(ratio * n_distractors)`` distractors chosen uniformly at random (seeded) stay.

    Returns:
        (Q',) int64 indices into the query arrays, in increasing order (the input order).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ArtidError(f"distractor ratio must be within [0, 1], got {ratio}")
    labels = np.asarray(labels)
    distractors = np.flatnonzero(labels == DISTRACTOR)
    n_keep = int(round(ratio * len(distractors)))
    chosen = np.random.default_rng(seed).choice(distractors, size=n_keep, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels != DISTRACTOR), chosen]))


def gap_at_distractor_ratio(
    pred: np.ndarray, conf: np.ndarray, labels: np.ndarray, ratio: float, seed: int = 0
) -> float:
    """GAP after keeping only ``ratio`` of the distractor queries (see :func:`subsample_distractors`).

    ``ratio=1`` gives :func:`gap`, ``ratio=0`` gives :func:`gap_minus`.
    """
    pred, conf, labels = _check(pred, conf, labels)
    keep = subsample_distractors(labels, ratio, seed)
    return gap(pred[keep], conf[keep], labels[keep])
