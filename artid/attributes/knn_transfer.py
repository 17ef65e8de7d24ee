"""kNN label transfer: the nearest database images vote their labels, weighted by similarity.

No training. For a query descriptor ``q`` and the ``k`` most cosine-similar database descriptors
``d_1..d_k`` with labels ``y_i`` (multi-hot), the score of label ``l`` is ``sum_i w_i y_il`` with
``w = softmax(cos(q, d_i) / tau)``: a score in [0, 1], the similarity-weighted share of the
neighbours that carry the label. The neighbours come from the project's one exact search
(:func:`artid.retrieval.knn.exact_search`, faiss inner product). ``tau`` is tuned on validation
(:func:`tune_transfer_temperature`): small ``tau`` trusts the nearest neighbour alone, large
``tau`` averages the ``k`` evenly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artid.errors import ArtidError
from artid.metrics.thresholds import search_global
from artid.retrieval.knn import exact_search
from artid.tuning import grid_search

#: Temperatures tried on validation.
DEFAULT_TAUS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _neighbours(
    queries: np.ndarray, database: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(similarities (Q, k), database rows (Q, k), labels (N, L) float32), shapes checked."""
    q = np.asarray(queries, dtype=np.float32)
    db = np.asarray(database, dtype=np.float32)
    y = np.asarray(labels, dtype=np.float32)
    if (
        db.ndim != 2
        or q.ndim != 2
        or q.shape[1] != db.shape[1]
        or len(db) != len(y)
        or len(db) == 0
    ):
        raise ArtidError(
            f"kNN transfer: queries {q.shape}, database {db.shape}, labels {y.shape} do not fit"
        )
    if k < 1:
        raise ArtidError(f"kNN transfer needs k >= 1; got k={k}")
    sims, idx = exact_search(q, db, min(k, len(db)), progress=False)
    return sims, idx, y


def _vote(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, tau: float) -> np.ndarray:
    """(Q, L) scores: the softmax(sims / tau)-weighted labels of the neighbours."""
    if not tau > 0:
        raise ArtidError(f"kNN transfer needs tau > 0; got tau={tau}")
    s = sims.astype(np.float64) / tau
    w = np.exp(s - s.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return np.einsum("qk,qkl->ql", w, labels[idx]).astype(np.float32)


def transfer_scores(
    queries: np.ndarray, database: np.ndarray, labels: np.ndarray, k: int = 10, tau: float = 0.05
) -> np.ndarray:
    """(Q, L) label scores of the queries from the database's labels (module docstring).

    Args:
        queries: (Q, D) L2-normalised descriptors.
        database: (N, D) L2-normalised descriptors.
        labels: (N, L) 0/1 labels of the database.
        k: neighbours that vote (capped at N).
        tau: softmax temperature (> 0).
    """
    if not tau > 0:
        raise ArtidError(f"kNN transfer needs tau > 0; got tau={tau}")
    return _vote(*_neighbours(queries, database, labels, k), tau)


def tune_transfer_temperature(
    val_queries: np.ndarray,
    val_labels: np.ndarray,
    database: np.ndarray,
    labels: np.ndarray,
    k: int = 10,
    taus: Sequence[float] = DEFAULT_TAUS,
) -> tuple[float, list[dict[str, float]]]:
    """The temperature whose validation scores reach the best mean F2 at their best global
    threshold (one search; every ``tau`` re-weights the same neighbours).

    Returns:
        (best tau, [{"tau", "f2"} for every candidate, smallest tau first]); ties go to the
        smaller tau.
    """
    sims, idx, y = _neighbours(val_queries, database, labels, k)

    def f2(tau: float) -> float:
        scores = _vote(sims, idx, y, tau)
        return search_global(val_labels, scores, at_least_one=True).fbeta

    result = grid_search(sorted(float(t) for t in taus), f2)
    return result.best, [{"tau": tau, "f2": score} for tau, score in result.tried]
