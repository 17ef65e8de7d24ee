"""The kNN classifier of the Met benchmark (METHOD section 5, thesis section 4.2, eq. 4.3).

For a query ``q`` and its k nearest database images (inner product of L2-normalised
descriptors), every class ``c`` present among them scores ``s_c`` = the largest similarity of
its images among those k; absent classes score 0. The prediction is the class of the nearest
neighbour (the argmax of ``s``) and the confidence is the softmax of ``tau * s`` over ALL N
database classes:

    conf = exp(tau s_max) / (sum_{c present} exp(tau s_c) + (N - n_present) exp(0))

Everything after the search is vectorised over queries. Neighbours come sorted by similarity,
so a class's score is the similarity at its first occurrence in the row, and the neighbours for
a smaller k are a prefix of those for a larger k: one search at the largest k serves every k
(see :mod:`artid.retrieval.autotune`).

Ranking queries by that confidence is fragile: at a large tau, ``conf = 1 / (1 + excess)``
with ``excess = sum_{c != top} exp(tau (s_c - s_max))`` rounds to exactly 1.0 for many queries,
and their order is then arbitrary. Queries are therefore ranked by the top class's log-odds,
``score = log(conf / (1 - conf)) = -log(excess)``, computed in float64 with log-sum-exp over
all N classes (classes with no neighbour included): it is monotone in the confidence and never
saturates. The 0..1 confidence (``sigmoid(score)``) stays for display.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

import faiss
import numpy as np

from artid.errors import ArtidError
from artid.retrieval.search import QUERY_CHUNK, exact_search, gpu_count

log = logging.getLogger(__name__)

__all__ = [
    "QUERY_CHUNK",
    "Classified",
    "KNNClassifier",
    "Searcher",
    "confidence",
    "exact_search",
    "first_occurrences",
    "gpu_count",
    "log_odds",
]


def first_occurrences(nn_labels: np.ndarray) -> np.ndarray:
    """Mark, in each row, the first position at which each label appears.

    Args:
        nn_labels: (Q, K) int labels of the neighbours, nearest first.

    Returns:
        (Q, K) bool; with neighbours sorted by similarity these are exactly the positions whose
        similarity is the class score ``s_c`` (the maximum over the class's images).
    """
    order = np.argsort(nn_labels, axis=1, kind="stable")
    sorted_labels = np.take_along_axis(nn_labels, order, axis=1)
    starts = np.ones(nn_labels.shape, dtype=bool)
    starts[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    first = np.empty(nn_labels.shape, dtype=bool)
    np.put_along_axis(first, order, starts, axis=1)
    return first


def log_odds(sims: np.ndarray, first: np.ndarray, n_classes: int, tau: float) -> np.ndarray:
    """The top class's log-odds for every number of neighbours k = 1..K at once.

    ``score_k = -log(excess_k)`` with ``excess_k = sum_{c present, c != top} exp(tau (s_c - s_max))
    + (N - n_present) exp(-tau s_max)``, the classes present being those among the first k
    neighbours. The sum over present classes is scaled by its largest term (the second class,
    which comes first in the row), so every partial sum is >= 1 and its log is exact; the
    absent classes join through ``logaddexp``. Nothing rounds to a constant at any tau.

    Args:
        sims: (Q, K) float64 similarities, sorted descending.
        first: (Q, K) bool from :func:`first_occurrences`.
        n_classes: N of the softmax.
        tau: temperature.

    Returns:
        (Q, K) float64; column k-1 is the score with k neighbours (+inf when the database has a
        single class, so that no other class can take any probability).
    """
    s0 = sims[:, 0]
    other = first.copy()
    other[:, 0] = False
    has_second = other.any(axis=1)
    rows = np.arange(len(sims))
    s2 = np.where(has_second, sims[rows, np.argmax(other, axis=1)], s0)
    # exp only where a class is counted (elsewhere -inf -> 0): the top class's own column would
    # overflow at a large tau
    terms = np.exp(np.where(other, tau * (sims - s2[:, None]), -np.inf))
    absent = n_classes - np.cumsum(first, axis=1)
    with np.errstate(divide="ignore"):
        log_other = np.log(np.cumsum(terms, axis=1)) + (tau * (s2 - s0))[:, None]
        log_absent = np.log(absent.astype(np.float64)) - (tau * s0)[:, None]
    return -np.logaddexp(log_other, log_absent)


def confidence(score: np.ndarray) -> np.ndarray:
    """The softmax confidence of the top class, ``sigmoid(score)``, from its log-odds
    (for display)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(score, dtype=np.float64)))


class Classified(NamedTuple):
    """The classifier's answer for Q queries.

    Attributes:
        pred: (Q,) int64 class of the nearest neighbour.
        score: (Q,) float64 log-odds of that class: what queries are ranked by.
        conf: (Q,) float64 softmax confidence in [0, 1] (``sigmoid(score)``), for display.
    """

    pred: np.ndarray
    score: np.ndarray
    conf: np.ndarray


class Searcher(Protocol):
    """What :class:`KNNClassifier` accepts instead of exact search (e.g. ``IVFSearcher``)."""

    def search(
        self, queries: np.ndarray, k: int, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...


class KNNClassifier:
    """kNN classifier over a database of labelled descriptors.

    Args:
        db: (N, D) float32 L2-normalised database descriptors, or float16 (stored at half the
            memory; searched exactly on those values), kept by reference when contiguous.
        labels: (N,) int class of each database row.
        n_classes: N of the softmax (all database classes). Defaults to the number of distinct
            labels; may be larger (classes with no descriptor), never smaller.
        use_gpu: search on the GPU; None = when faiss has one.
        threads: faiss CPU threads (None = faiss's default, which follows OMP_NUM_THREADS).
        searcher: an object with ``search(queries, k, progress) -> (sims, idx)`` used instead of
            exact search (e.g. :class:`artid.retrieval.index.IVFSearcher`); None = exact.
    """

    def __init__(
        self,
        db: np.ndarray,
        labels: np.ndarray,
        n_classes: int | None = None,
        use_gpu: bool | None = None,
        threads: int | None = None,
        searcher: Searcher | None = None,
    ) -> None:
        keep = np.float16 if np.asarray(db).dtype == np.float16 else np.float32
        db = np.ascontiguousarray(db, dtype=keep)
        labels = np.asarray(labels, dtype=np.int64)
        if db.ndim != 2 or db.shape[0] == 0:
            raise ArtidError(
                f"kNN database must be a non-empty (N, D) matrix, got shape {db.shape}"
            )
        if labels.shape != (db.shape[0],):
            raise ArtidError(f"kNN database has {db.shape[0]} rows but {labels.shape} labels")
        distinct = int(np.unique(labels).size)
        if n_classes is None:
            n_classes = distinct
        elif n_classes < distinct:
            raise ArtidError(
                f"n_classes={n_classes} is smaller than the {distinct} distinct database labels"
            )
        self.db = db
        self.labels = labels
        self.n_classes = int(n_classes)
        if use_gpu and gpu_count() == 0:
            raise ArtidError(
                "GPU search asked for, but this faiss sees no GPU (faiss-cpu, or no CUDA device): "
                "search on the CPU or install a GPU build of faiss"
            )
        self.use_gpu = gpu_count() > 0 if use_gpu is None else bool(use_gpu)
        self.searcher = searcher
        if threads is not None:
            faiss.omp_set_num_threads(int(threads))

    @property
    def size(self) -> int:
        """Number of database descriptors."""
        return self.db.shape[0]

    def clamp_k(self, k: int) -> int:
        """``k`` limited to the database size (with a warning when that changes it)."""
        if k < 1:
            raise ArtidError(f"k must be at least 1, got {k}")
        if k > self.size:
            log.warning(
                "k=%d is larger than the database (%d images): using k=%d", k, self.size, self.size
            )
            return self.size
        return k

    def search(
        self, queries: np.ndarray, k: int, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest database images of each query.

        Args:
            queries: (Q, D) float32 L2-normalised.
            k: neighbours (clamped to the database size).

        Returns:
            sims (Q, k) float32 sorted descending, idx (Q, k) int64 database rows.
        """
        queries = np.asarray(queries)
        if queries.ndim != 2 or queries.shape[1] != self.db.shape[1]:
            raise ArtidError(
                f"queries must be (Q, {self.db.shape[1]}) descriptors, got shape {queries.shape}"
            )
        if self.searcher is not None:
            return self.searcher.search(queries, self.clamp_k(k), progress=progress)
        return exact_search(
            queries, self.db, self.clamp_k(k), use_gpu=self.use_gpu, progress=progress
        )

    def _prepare(
        self, sims: np.ndarray, idx: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if sims.shape != idx.shape or sims.ndim != 2:
            raise ArtidError(
                f"sims {sims.shape} and idx {idx.shape} must be (Q, K) arrays of one shape"
            )
        if k > sims.shape[1] == self.size:
            k = self.size  # the whole database was searched: fewer images than k
        if not 1 <= k <= sims.shape[1]:
            raise ArtidError(
                f"k={k} needs at least k neighbours per query; the search returned {sims.shape[1]}"
            )
        nn_labels = self.labels[idx[:, :k]]
        return sims[:, :k].astype(np.float64), nn_labels, first_occurrences(nn_labels)

    def classify(self, sims: np.ndarray, idx: np.ndarray, k: int, tau: float) -> Classified:
        """Predictions and confidences from neighbours already searched (their first k columns).

        Args:
            sims: (Q, K) float32 similarities sorted descending, K >= k (or K = the database size).
            idx: (Q, K) int64 database rows.
            k: neighbours used (a k above the database size means the whole database).
            tau: softmax temperature.

        Returns:
            The nearest neighbour's class, its log-odds and its softmax confidence over all
            ``n_classes`` classes (absent classes count with score 0).
        """
        s, nn_labels, first = self._prepare(sims, idx, k)
        score = log_odds(s, first, self.n_classes, tau)[:, -1]
        return Classified(nn_labels[:, 0].copy(), score, confidence(score))

    def predict(self, queries: np.ndarray, k: int, tau: float) -> Classified:
        """Search then :meth:`classify`."""
        sims, idx = self.search(queries, k)
        return self.classify(sims, idx, min(k, sims.shape[1]), tau)

    def top_classes(
        self, sims: np.ndarray, idx: np.ndarray, k: int, tau: float, n: int = 5
    ) -> list[list[tuple[int, float, float]]]:
        """The n best classes of each query with their score ``s_c`` and softmax confidence.

        Returns:
            Per query, up to n tuples ``(class, s_c, confidence)``, best first (fewer when fewer
            classes appear among the k neighbours).
        """
        s, nn_labels, first = self._prepare(sims, idx, k)
        s0 = s[:, :1]
        terms = np.where(first, np.exp(tau * (s - s0)), 0.0)
        denom = terms.sum(axis=1) + (self.n_classes - first.sum(axis=1)) * np.exp(-tau * s0[:, 0])
        probs = terms / denom[:, None]
        # positions of class scores, in rank order (first occurrences are already sorted by score)
        pos = np.argsort(~first, axis=1, kind="stable")[:, :n]
        counts = np.minimum(first.sum(axis=1), n)
        cls = np.take_along_axis(nn_labels, pos, axis=1)
        sc = np.take_along_axis(s, pos, axis=1)
        pc = np.take_along_axis(probs, pos, axis=1)
        return [
            [(int(c), float(v), float(p)) for c, v, p in zip(cls[q, :m], sc[q, :m], pc[q, :m])]
            for q, m in enumerate(counts)
        ]
