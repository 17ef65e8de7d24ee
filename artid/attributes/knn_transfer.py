"""kNN label transfer: the nearest database images vote their labels, weighted by similarity. No training.

For a query descriptor ``q`` and the ``k`` most cosine-similar database descriptors ``d_1..d_k`` with
labels ``y_i`` (multi-hot), the score of label ``l`` is ``sum_i w_i y_il`` with
``w = softmax(cos(q, d_i) / tau)``: a score in [0, 1], the similarity-weighted share of the
neighbours that carry the label. ``tau`` is tuned on validation (:func:`tune_temperature`): small
``tau`` trusts the nearest neighbour alone, large ``tau`` averages the ``k`` evenly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artid.errors import ArtidError
from artid.metrics.thresholds import search_global

#: Temperatures tried on validation.
DEFAULT_TAUS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def transfer_scores(queries: np.ndarray, database: np.ndarray, labels: np.ndarray, k: int = 10,
                    tau: float = 0.05, chunk: int = 1024) -> np.ndarray:
    """(Q, L) label scores of the queries from the database's labels (module docstring).

    Args:
        queries: (Q, D) L2-normalised descriptors.
        database: (N, D) L2-normalised descriptors.
        labels: (N, L) 0/1 labels of the database.
        k: neighbours that vote (capped at N).
        tau: softmax temperature (> 0).
        chunk: queries per matrix product (bounds memory).
    """
    q = np.asarray(queries, dtype=np.float32)
    db = np.asarray(database, dtype=np.float32)
    y = np.asarray(labels, dtype=np.float32)
    if db.ndim != 2 or q.ndim != 2 or q.shape[1] != db.shape[1] or len(db) != len(y) or len(db) == 0:
        raise ArtidError(f"kNN transfer: queries {q.shape}, database {db.shape}, labels {y.shape} do not fit")
    if k < 1 or tau <= 0:
        raise ArtidError(f"kNN transfer needs k >= 1 and tau > 0; got k={k}, tau={tau}")
    k = min(k, len(db))
    out = np.empty((len(q), y.shape[1]), np.float32)
    for start in range(0, len(q), chunk):
        sims = q[start:start + chunk] @ db.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sims, top, axis=1) / tau
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        out[start:start + chunk] = np.einsum("qk,qkl->ql", w, y[top])
    return out


def tune_temperature(val_queries: np.ndarray, val_labels: np.ndarray, database: np.ndarray,
                     labels: np.ndarray, k: int = 10, taus: Sequence[float] = DEFAULT_TAUS) -> tuple[float, list]:
    """The temperature whose validation scores reach the best mean F2 at their best global threshold.

    Returns:
        (best tau, [{"tau", "f2"} for every candidate]); ties go to the smaller tau.
    """
    grid = []
    for tau in taus:
        scores = transfer_scores(val_queries, database, labels, k, tau)
        fit = search_global(val_labels, scores, at_least_one=True)
        grid.append({"tau": float(tau), "f2": float(fit.fbeta)})
    best = max(grid, key=lambda g: (g["f2"], -g["tau"]))
    return best["tau"], grid
