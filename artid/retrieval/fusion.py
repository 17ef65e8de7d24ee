"""The fusion rule of re-ranking: verified inliers raise class scores, queries ranked by fused
log-odds.

With ``s_c`` the kNN class score (best similarity of class ``c`` among the pipeline's k neighbours)
and ``n_c`` the most inliers of any verified image of class ``c`` (among the first K neighbours):

    s_c' = s_c + w * min(n_c, cap) / cap      when n_c >= min_inliers, else s_c' = s_c

A class reached only through a verified image beyond the first k neighbours (K > k) joins with its
similarity plus the bonus. The prediction is the best fused class, and the ranking score is the
log-odds of :func:`artid.retrieval.knn.log_odds` computed on the fused class scores, with its own
tau. ``w = 0`` reproduces the global answer exactly. On validation, :func:`choose_fusion` keeps a
default ``(w, min_inliers)`` (the service's fixed rule) unless another point of the grid beats its
val GAP by the paired margin of :func:`artid.retrieval.choosing.margin_choice`, each point at its
best tau; :func:`tune_fusion` is the plain grid search (the best val GAP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np

from artid.errors import ArtidError
from artid.metrics.ilr import gap
from artid.retrieval.choosing import MARGIN_SE, margin_choice
from artid.retrieval.knn import Classified, confidence, first_occurrences, log_odds
from artid.tuning import grid_search

#: Inlier count at which the bonus saturates.
DEFAULT_CAP = 50
#: Validation grids of the rule.
W_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
MIN_INLIERS_GRID = (6, 8, 10, 15, 20, 30)


def verified_inliers(
    idx: np.ndarray, labels: np.ndarray, inliers: np.ndarray, pred: np.ndarray, min_inliers: int
) -> np.ndarray:
    """(Q,) the most inliers of a verified image (>= ``min_inliers``) of each query's predicted
    class, else 0."""
    lab = labels[idx[:, : inliers.shape[1]]]
    ok = (lab == pred[:, None]) & (inliers >= min_inliers)
    return np.where(ok, inliers, 0).max(axis=1, initial=0).astype(np.int64)


def fuse(
    sims: np.ndarray,
    idx: np.ndarray,
    labels: np.ndarray,
    inliers: np.ndarray,
    k: int,
    tau: float,
    n_classes: int,
    w: float,
    min_inliers: int = 10,
    cap: int = DEFAULT_CAP,
) -> Classified:
    """The kNN answer with class scores raised by verified inliers (the module's rule).

    Args:
        sims, idx: (Q, M) global neighbours, sorted descending, M >= max(k, K).
        labels: (N,) classes of the database rows.
        inliers: (Q, K) inlier counts of the first K neighbours.
        k, tau, n_classes: the kNN classifier's neighbours, temperature and softmax size.
        w, min_inliers, cap: the bonus ``w * min(n, cap) / cap`` for ``n >= min_inliers``.
    """
    top = inliers.shape[1]
    m = max(k, top)
    if sims.shape[1] < m:
        raise ArtidError(
            f"fusion needs {m} neighbours per query, the search returned {sims.shape[1]}"
        )
    s = sims[:, :m].astype(np.float64)
    lab = labels[idx[:, :m]]
    ok = np.zeros(lab.shape, dtype=bool)
    ok[:, :top] = inliers >= min_inliers
    gain = np.zeros(lab.shape)
    gain[:, :top] = np.where(ok[:, :top], w * np.minimum(inliers, cap) / cap, 0.0)
    # per query, the class bonus is the largest gain over the class's verified images
    bonus = np.zeros(lab.shape)
    for j in range(top):
        same = lab == lab[:, j : j + 1]
        bonus = np.where(same, np.maximum(bonus, gain[:, j : j + 1]), bonus)
    used = np.zeros(lab.shape, dtype=bool)
    used[:, :k] = True
    used |= ok & (w > 0)
    fused = np.where(used, s + bonus, -np.inf)
    order = np.argsort(-fused, axis=1, kind="stable")
    fused = np.take_along_axis(fused, order, axis=1)
    lab = np.take_along_axis(lab, order, axis=1)
    used = np.take_along_axis(used, order, axis=1)
    first = first_occurrences(lab) & used
    with np.errstate(invalid="ignore"):
        score = log_odds(fused, first, n_classes, tau)[:, -1]
    return Classified(lab[:, 0].astype(np.int64), score, confidence(score))


@dataclass
class FusionChoice:
    """A fusion rule tried on validation: its val GAP and, from :func:`choose_fusion`, its val GAP
    minus the default's in paired-bootstrap SEs (``z``; 0 for the default)."""

    w: float
    min_inliers: int
    tau: float
    val_gap: float
    z: float | None = None


def tune_fusion(
    sims: np.ndarray,
    idx: np.ndarray,
    labels: np.ndarray,
    inliers: np.ndarray,
    val_labels: np.ndarray,
    k: int,
    n_classes: int,
    taus: Sequence[float],
    keys: np.ndarray | None = None,
    ws: Sequence[float] = W_GRID,
    mins: Sequence[int] = MIN_INLIERS_GRID,
    cap: int = DEFAULT_CAP,
) -> FusionChoice:
    """Grid search of (w, min_inliers, tau) by validation GAP (ties: the first, i.e. the smaller w).

    With ``w = 0`` the rule ignores ``min_inliers``, so only the first of ``mins`` is tried there.
    """
    points = [(w, mi, tau) for w in ws for mi, tau in product(mins if w > 0 else mins[:1], taus)]

    def score(p: tuple[float, int, float]) -> float:
        ans = fuse(sims, idx, labels, inliers, k, p[2], n_classes, p[0], p[1], cap)
        return gap(ans.pred, ans.score, val_labels, keys)

    best = grid_search(points, score)
    w, mi, tau = best.best
    return FusionChoice(float(w), int(mi), float(tau), best.score)


def fusion_settings(
    default: tuple[float, int], ws: Sequence[float], mins: Sequence[int]
) -> list[tuple[float, int]]:
    """The (w, min_inliers) points :func:`choose_fusion` compares: the default first, then the
    grid without repeats (one point for ``w = 0``, which ignores ``min_inliers``)."""
    out = [(float(default[0]), int(default[1]))]
    for w in ws:
        for mi in mins:
            if not any(w == v and (w == 0 or mi == m) for v, m in out):
                out.append((float(w), int(mi)))
    return out


def choose_fusion(
    sims: np.ndarray,
    idx: np.ndarray,
    labels: np.ndarray,
    inliers: np.ndarray,
    val_labels: np.ndarray,
    k: int,
    n_classes: int,
    taus: Sequence[float],
    default: tuple[float, int],
    keys: np.ndarray | None = None,
    ws: Sequence[float] = W_GRID,
    mins: Sequence[int] = MIN_INLIERS_GRID,
    cap: int = DEFAULT_CAP,
    margin_se: float = MARGIN_SE,
) -> tuple[FusionChoice, list[FusionChoice]]:
    """The fusion rule chosen on validation, and every (w, min_inliers) tried (default first).

    Each (w, min_inliers) of :func:`fusion_settings` takes its best tau by val GAP (ties: the
    first); the default ``(w, min_inliers)`` is kept unless another beats its val GAP by more
    than ``margin_se`` paired SEs (``margin_se = 0``: the best val GAP, as :func:`tune_fusion`).
    Arguments as :func:`tune_fusion`.
    """
    tried: list[FusionChoice] = []
    answers: list[tuple[np.ndarray, np.ndarray]] = []
    for w, mi in fusion_settings(default, ws, mins):
        scored = [fuse(sims, idx, labels, inliers, k, t, n_classes, w, mi, cap) for t in taus]
        gaps = [gap(a.pred, a.score, val_labels, keys) for a in scored]
        best = int(np.argmax(gaps))
        tried.append(FusionChoice(w, mi, float(taus[best]), float(gaps[best])))
        answers.append((scored[best].pred, scored[best].score))
    chosen, z = margin_choice(answers, val_labels, keys, margin_se)
    for c, zc in zip(tried, z, strict=True):
        c.z = float(zc)
    return tried[chosen], tried
