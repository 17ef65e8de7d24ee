"""The Met benchmark's metrics (METHOD section 2, thesis section 3.5.2): plain functions on arrays.

Every function takes the classifier's output and the ground truth as arrays of the same length Q:

- ``pred``: (Q,) int predicted class per query (the classifier never predicts "distractor");
- ``score``: (Q,) float ranking score of that prediction: anything monotone in the
  confidence (artid ranks by the top class's log-odds, which never saturates; see
  :mod:`artid.retrieval.knn`); ``-inf`` for a query that got no prediction (unreadable image);
- ``labels``: (Q,) int true class, or -1 (:data:`artid.data.entries.DISTRACTOR`) for a distractor;
- ``keys``: optional (Q,) tie-break keys (the query paths). Queries are ranked by score,
  descending; queries with exactly equal scores are ordered by key, ascending, so the ranking
  (and GAP) does not depend on the order of the input files. Without keys, ties keep the input
  order.

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


def _check(
    pred: np.ndarray, conf: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    conf = np.asarray(conf, dtype=np.float64)
    labels = np.asarray(labels)
    if not (pred.ndim == conf.ndim == labels.ndim == 1) or not (
        len(pred) == len(conf) == len(labels)
    ):
        raise ArtidError(
            "metrics need three 1-D arrays of one length; "
            f"got pred {pred.shape}, score {conf.shape}, labels {labels.shape}"
        )
    if np.isnan(conf).any():
        raise ArtidError("metrics: a ranking score is NaN")
    return pred, conf, labels


def _keys(keys: Sequence[str] | np.ndarray | None, n: int) -> np.ndarray | None:
    if keys is None:
        return None
    keys = np.asarray(keys)
    if keys.shape != (n,):
        raise ArtidError(f"metrics: {n} queries but tie-break keys of shape {keys.shape}")
    return keys


def micro_ap(correct_sorted: np.ndarray, n_positive: int) -> float:
    """sum_i p(i) r(i) / n_positive for a 0/1 relevance vector already sorted by rank."""
    if n_positive == 0:
        return 0.0
    hits = np.cumsum(correct_sorted)
    ranks = np.arange(1, len(correct_sorted) + 1)
    return float(np.sum((hits / ranks)[correct_sorted]) / n_positive)


def rank_order(score: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
    """Indices sorting queries by score, descending; equal scores by key, ascending.

    Without keys, equal scores keep the input order (a stable sort).
    """
    neg = -np.asarray(score, dtype=np.float64)
    if keys is None:
        return np.argsort(neg, kind="stable")
    return np.lexsort((np.asarray(keys), neg))


def gap(
    pred: np.ndarray,
    conf: np.ndarray,
    labels: np.ndarray,
    keys: Sequence[str] | np.ndarray | None = None,
) -> float:
    """Global Average Precision (micro-AP) over ALL queries, distractors included.

    Queries are sorted by score, descending. ``r(i) = 1`` when the query at rank ``i``
    is not a distractor and its prediction is right; ``p(i)`` is the precision of ranks
    ``1..i``; GAP = ``sum_i p(i) r(i) / M`` with M the number of non-distractor queries.
    Equal scores are ordered by ``keys`` (or by input order without keys), so the value is
    deterministic. Returns 0.0 when there is no non-distractor query.

    Args:
        pred: (Q,) int predicted classes.
        conf: (Q,) float ranking scores (confidence or log-odds).
        labels: (Q,) int true classes, -1 for distractors.
        keys: (Q,) tie-break keys (query paths), or None.

    Returns:
        GAP as a fraction in [0, 1].
    """
    pred, conf, labels = _check(pred, conf, labels)
    correct = (labels != DISTRACTOR) & (pred == labels)
    order = rank_order(conf, _keys(keys, len(pred)))
    return micro_ap(correct[order], int(np.sum(labels != DISTRACTOR)))


def gap_minus(
    pred: np.ndarray,
    conf: np.ndarray,
    labels: np.ndarray,
    keys: Sequence[str] | np.ndarray | None = None,
) -> float:
    """GAP computed over the non-distractor queries only (the paper's GAP-).

    Same ranking rule as :func:`gap` (descending score, ties by key).
    """
    pred, conf, labels = _check(pred, conf, labels)
    keys = _keys(keys, len(pred))
    keep = labels != DISTRACTOR
    return gap(pred[keep], conf[keep], labels[keep], None if keys is None else keys[keep])


def accuracy(pred: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> float:
    """ACC: fraction of non-distractor queries whose predicted class is right (0.0 if none).

    ``conf`` is accepted (and ignored) so that every metric has the same signature.
    """
    pred, conf, labels = _check(pred, conf, labels)
    keep = labels != DISTRACTOR
    if not keep.any():
        return 0.0
    return float(np.mean(pred[keep] == labels[keep]))


def precision_recall(
    pred: np.ndarray,
    conf: np.ndarray,
    labels: np.ndarray,
    keys: Sequence[str] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The precision-recall curve behind :func:`gap`: one point per rank.

    Returns:
        precision (Q,), recall (Q,) float64, where rank i's recall is the fraction of the M
        non-distractor queries correctly predicted within ranks 1..i. GAP is the mean of the
        precision values at the ranks of correct predictions, summed over M.
    """
    pred, conf, labels = _check(pred, conf, labels)
    correct = ((labels != DISTRACTOR) & (pred == labels))[rank_order(conf, _keys(keys, len(pred)))]
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
        rows.append(
            {
                "bucket": str(low) if low == high else f"{low}-{high}",
                "low": low,
                "high": high,
                "queries": n,
                "correct": c,
                "accuracy": c / n if n else None,
            }
        )
    return rows


def subsample_distractors(
    labels: np.ndarray, ratio: float, seed: int = 0, keys: Sequence[str] | np.ndarray | None = None
) -> np.ndarray:
    """Indices of the queries kept when only ``ratio`` of the distractors are kept (appendix B.5).

    The thesis (table B.1) lowers the share of out-of-distribution queries "by removing the
    appropriate amount of distractor queries": every non-distractor query stays, and
    ``round(ratio * n_distractors)`` distractors chosen uniformly at random (seeded) stay.
    With ``keys`` the distractors are drawn from their key order, so the same distractors stay
    whatever the order of the input.

    Returns:
        (Q',) int64 indices into the query arrays, in increasing order (the input order).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ArtidError(f"distractor ratio must be within [0, 1], got {ratio}")
    labels = np.asarray(labels)
    distractors = np.flatnonzero(labels == DISTRACTOR)
    keys = _keys(keys, len(labels))
    if keys is not None:
        distractors = distractors[np.argsort(keys[distractors], kind="stable")]
    n_keep = int(round(ratio * len(distractors)))
    chosen = np.random.default_rng(seed).choice(distractors, size=n_keep, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels != DISTRACTOR), chosen]))


def gap_at_distractor_ratio(
    pred: np.ndarray,
    conf: np.ndarray,
    labels: np.ndarray,
    ratio: float,
    seed: int = 0,
    keys: Sequence[str] | np.ndarray | None = None,
) -> float:
    """GAP after keeping only ``ratio`` of the distractor queries (:func:`subsample_distractors`).

    ``ratio=1`` gives :func:`gap`, ``ratio=0`` gives :func:`gap_minus`.
    """
    pred, conf, labels = _check(pred, conf, labels)
    keys = _keys(keys, len(pred))
    keep = subsample_distractors(labels, ratio, seed, keys)
    return gap(pred[keep], conf[keep], labels[keep], None if keys is None else keys[keep])
