"""Grid search of the kNN classifier's (k, tau) by GAP on validation queries (METHOD section 5).

ONE exact search at the largest k serves the whole grid: neighbours for a smaller k are a
prefix, class scores are the similarities at first occurrences of each label, and for one tau
the softmax denominators of every k are the running sums of the same terms. The whole
108-point grid costs one search plus a few milliseconds of NumPy per point, and every point's
predictions and ranking scores equal those of :meth:`KNNClassifier.classify` at that point bit for
bit (same arithmetic in the same order).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.errors import ArtidError
from artid.metrics.ilr import micro_ap, rank_order
from artid.retrieval.knn import KNNClassifier, first_occurrences, log_odds

log = logging.getLogger(__name__)

#: The thesis' grid (section 5.1): the full Cartesian product.
K_GRID: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 50)
TAU_GRID: tuple[float, ...] = (0.01, 0.1, 1, 5, 10, 15, 20, 25, 30, 50, 100, 500)


@dataclass
class AutotuneResult:
    """Every grid point's scores and the best one.

    Attributes:
        ks, taus: the grid actually searched (k values above the database size are dropped).
        gap, gap_minus: (len(ks), len(taus)) float64 scores on the validation queries.
        acc: accuracy (the same for every point: the prediction is always the nearest neighbour's
            class).
        best_k, best_tau, best_gap: the point with the highest GAP (first in k-then-tau order on
            ties).
        search_seconds, grid_seconds: time of the one search and of the grid evaluation.
    """

    ks: list[int]
    taus: list[float]
    gap: np.ndarray
    gap_minus: np.ndarray
    acc: float
    best_k: int
    best_tau: float
    best_gap: float
    search_seconds: float = 0.0
    grid_seconds: float = 0.0
    sims: np.ndarray | None = field(default=None, repr=False)
    idx: np.ndarray | None = field(default=None, repr=False)

    def rows(self) -> list[dict]:
        """The grid as a list of ``{"k", "tau", "gap", "gap_minus", "acc"}`` dicts (k-major)."""
        return [
            {
                "k": k,
                "tau": t,
                "gap": float(self.gap[i, j]),
                "gap_minus": float(self.gap_minus[i, j]),
                "acc": self.acc,
            }
            for i, k in enumerate(self.ks)
            for j, t in enumerate(self.taus)
        ]

    def to_json(self) -> dict:
        return {
            "ks": self.ks,
            "taus": self.taus,
            "best_k": self.best_k,
            "best_tau": self.best_tau,
            "best_gap": self.best_gap,
            "acc": self.acc,
            "search_seconds": self.search_seconds,
            "grid_seconds": self.grid_seconds,
            "grid": self.rows(),
        }


def grid_scores(
    clf: KNNClassifier,
    sims: np.ndarray,
    idx: np.ndarray,
    labels: np.ndarray,
    ks: Sequence[int],
    taus: Sequence[float],
    keys: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """GAP and GAP- at every (k, tau) from one set of neighbours.

    Args:
        clf: the classifier (database labels and N).
        sims: (Q, K) float32 similarities sorted descending, K >= max(ks).
        idx: (Q, K) int64 database rows.
        labels: (Q,) true classes, -1 for distractors.
        ks, taus: the grid.
        keys: (Q,) tie-break keys of the ranking (query paths), or None (input order).

    Returns:
        gap (len(ks), len(taus)), gap_minus (same), accuracy.
    """
    kmax = max(ks)
    s = sims[:, :kmax].astype(np.float64)
    nn_labels = clf.labels[idx[:, :kmax]]
    first = first_occurrences(nn_labels)
    labels = np.asarray(labels)
    known = labels != DISTRACTOR
    correct = known & (nn_labels[:, 0] == labels)
    m = int(known.sum())
    acc = float(correct[known].mean()) if m else 0.0
    gaps = np.zeros((len(ks), len(taus)))
    gaps_minus = np.zeros((len(ks), len(taus)))
    keys_known = None if keys is None else np.asarray(keys)[known]
    for j, tau in enumerate(taus):
        scores = log_odds(s, first, clf.n_classes, tau)
        for i, k in enumerate(ks):
            score = scores[:, k - 1]
            gaps[i, j] = micro_ap(correct[rank_order(score, keys)], m)
            gaps_minus[i, j] = micro_ap(correct[known][rank_order(score[known], keys_known)], m)
    return gaps, gaps_minus, acc


def autotune(
    clf: KNNClassifier,
    queries: np.ndarray,
    labels: np.ndarray,
    ks: Sequence[int] = K_GRID,
    taus: Sequence[float] = TAU_GRID,
    keep_neighbours: bool = False,
    keys: Sequence[str] | np.ndarray | None = None,
) -> AutotuneResult:
    """Tune (k, tau) by GAP on validation queries with one search at the largest k.

    Args:
        clf: classifier over the database.
        queries: (Q, D) float32 validation descriptors.
        labels: (Q,) true classes, -1 for distractors.
        ks, taus: the grid (default: the thesis' 9 x 12).
        keep_neighbours: keep the (Q, max k) search results in the result (for reports).
        keys: (Q,) tie-break keys of the ranking (query paths); None = input order.

    Returns:
        The whole grid of scores and the best point.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(queries),):
        raise ArtidError(f"autotune: {len(queries)} queries but labels of shape {labels.shape}")
    if not (labels != DISTRACTOR).any():
        raise ArtidError(
            "autotune: the validation queries hold no non-distractor query, so GAP is undefined"
        )
    ks_ok = sorted({int(k) for k in ks if 1 <= k <= clf.size})
    if len(ks_ok) < len(set(ks)):
        dropped = sorted({int(k) for k in ks} - set(ks_ok))
        log.warning(
            "autotune: k values %s exceed the database size (%d images) and are skipped",
            dropped,
            clf.size,
        )
    if not ks_ok:
        ks_ok = [clf.size]
    taus = [float(t) for t in taus]
    t0 = time.perf_counter()
    sims, idx = clf.search(queries, max(ks_ok))
    t1 = time.perf_counter()
    gaps, gaps_minus, acc = grid_scores(
        clf, sims, idx, labels, ks_ok, taus, None if keys is None else np.asarray(keys)
    )
    t2 = time.perf_counter()
    i, j = np.unravel_index(
        int(np.argmax(gaps)), gaps.shape
    )  # argmax: first maximum in k-then-tau order
    log.info(
        "autotune: best k=%d tau=%g val GAP %.1f (one search %.2fs, %d-point grid %.3fs)",
        ks_ok[i],
        taus[j],
        100 * gaps[i, j],
        t1 - t0,
        gaps.size,
        t2 - t1,
    )
    return AutotuneResult(
        ks=ks_ok,
        taus=taus,
        gap=gaps,
        gap_minus=gaps_minus,
        acc=acc,
        best_k=ks_ok[i],
        best_tau=taus[j],
        best_gap=float(gaps[i, j]),
        search_seconds=t1 - t0,
        grid_seconds=t2 - t1,
        sims=sims if keep_neighbours else None,
        idx=idx if keep_neighbours else None,
    )
