"""Alpha query expansion (alpha-QE) and database-side augmentation (DBA), Radenović et al. (2018).

Both act in the searched space (after whitening, L2-normalised) and use the same rule: a vector
``x`` with its top-n neighbours ``d_1..d_n`` (similarities ``s_1..s_n``, nearest first) becomes

    x' = normalise(x + sum_j max(s_j, 0)^alpha d_j)

(the vector itself has weight ``1 = 1^alpha``; negative similarities weigh nothing). alpha-QE
applies it to each query against the database before the kNN classification; DBA applies it
once, at fit, to every database vector against the other database vectors (itself excluded).
A query expanded against a DBA database uses the augmented vectors. ``n = 0`` is the identity.

:class:`Expansion` holds the four settings; the pipeline chooses ``qe_n`` / ``dba_n`` left open
(None in its configuration) on validation GAP, over :data:`N_GRID` at the configured alphas, for the
whitening it already chose.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from artid.errors import ArtidError
from artid.retrieval.knn import KNNClassifier, exact_search

log = logging.getLogger(__name__)

#: Neighbour counts tried for a qe_n / dba_n left open (0 = off); the whole product QE x DBA.
N_GRID: tuple[int, ...] = (0, 1, 2, 3, 5)


def weighted_sum(x: np.ndarray, sims: np.ndarray, nbrs: np.ndarray, alpha: float) -> np.ndarray:
    """``normalise(x + sum_j max(s_j, 0)^alpha d_j)`` per row.

    Args:
        x: (M, D) vectors.
        sims: (M, n) similarities of their neighbours, nearest first.
        nbrs: (M, n, D) the neighbour vectors.
        alpha: the weight exponent.

    Returns:
        (M, D) float32, rows L2-normalised (a row that sums to zero is left as x).
    """
    w = np.maximum(np.asarray(sims, dtype=np.float64), 0.0) ** alpha
    out = np.asarray(x, dtype=np.float64) + np.einsum(
        "mn,mnd->md", w, np.asarray(nbrs, dtype=np.float64)
    )
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.where(norms > 1e-12, out / np.maximum(norms, 1e-12), x)
    return out.astype(np.float32)


def query_expansion(
    queries: np.ndarray, db: np.ndarray, sims: np.ndarray, idx: np.ndarray, n: int, alpha: float
) -> np.ndarray:
    """alpha-QE of queries given their database neighbours (sims, idx sorted, at least n
    columns)."""
    if n <= 0:
        return queries
    if sims.shape[1] < n:
        raise ArtidError(
            f"query expansion with n={n} needs at least {n} neighbours, got {sims.shape[1]}"
        )
    return weighted_sum(queries, sims[:, :n], np.asarray(db)[idx[:, :n]], alpha)


def database_augmentation(
    db: np.ndarray, n: int, alpha: float, use_gpu: bool | None = None, chunk: int = 8192
) -> np.ndarray:
    """DBA: every database row replaced by the weighted sum of itself and its n nearest
    other rows."""
    if n <= 0:
        return db
    size = db.shape[0]
    n = min(n, size - 1)
    if n <= 0:
        return db
    out = np.empty(db.shape, dtype=np.float32)
    for start in range(0, size, chunk):
        rows = np.asarray(db[start : start + chunk])
        sims, idx = exact_search(rows, db, n + 1, use_gpu=use_gpu, progress=False)
        own = np.arange(start, start + len(rows))[:, None]
        keep = idx != own
        # the n first neighbours other than the row itself (its own hit sorted out, stably)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :n]
        s, i = np.take_along_axis(sims, order, axis=1), np.take_along_axis(idx, order, axis=1)
        out[start : start + len(rows)] = weighted_sum(rows, s, np.asarray(db)[i], alpha)
    return out


@dataclass
class Expansion:
    """The QE and DBA settings in use (n = 0: off)."""

    qe_n: int = 0
    qe_alpha: float = 3.0
    dba_n: int = 0
    dba_alpha: float = 3.0

    @property
    def active(self) -> bool:
        return self.qe_n > 0 or self.dba_n > 0

    def augment(self, db: np.ndarray, use_gpu: bool | None = None) -> np.ndarray:
        """The database as searched (DBA applied; unchanged when off)."""
        return database_augmentation(db, self.dba_n, self.dba_alpha, use_gpu)

    def expand(self, queries: np.ndarray, clf: KNNClassifier) -> np.ndarray:
        """The queries as searched (alpha-QE against the classifier's database;
        unchanged when off)."""
        if self.qe_n <= 0:
            return queries
        n = min(self.qe_n, clf.size)
        sims, idx = clf.search(queries, n, progress=False)
        return query_expansion(queries, clf.db, sims, idx, n, self.qe_alpha)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict | None) -> Expansion:
        d = d or {}
        return cls(
            int(d.get("qe_n", 0)),
            float(d.get("qe_alpha", 3.0)),
            int(d.get("dba_n", 0)),
            float(d.get("dba_alpha", 3.0)),
        )


def check_settings(qe_n: int | None, qe_alpha: float, dba_n: int | None, dba_alpha: float) -> None:
    """Refuse negative neighbour counts and exponents."""
    for name, n in (("qe_n", qe_n), ("dba_n", dba_n)):
        if n is not None and n < 0:
            raise ArtidError(
                f"{name} must be 0 (off), a positive neighbour count or None (tuned), got {n}"
            )
    for name, a in (("qe_alpha", qe_alpha), ("dba_alpha", dba_alpha)):
        if not a >= 0:
            raise ArtidError(f"{name} must be a non-negative exponent, got {a}")
