"""Pair mining on descriptors already computed (thesis 4.4.2): a function a test can call.

Descriptors are (N, D) float32 with L2-normalised rows; similarity is the inner
product; searches are the project's one exact search (:func:`artid.retrieval.knn.exact_search`).
"""

from __future__ import annotations

import logging

import numpy as np

from artid.errors import ArtidError
from artid.retrieval.knn import exact_search

log = logging.getLogger(__name__)


def _as_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def hard_negatives(desc: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   k: int = 10) -> np.ndarray:
    """One hard negative per image: a random one of its ``k`` most similar images of another class.

    Args:
        desc: (N, D) float32, L2-normalised rows (current model's database descriptors).
        labels: (N,) int class labels.
        rng: random generator (seeded by the caller, e.g. per epoch).
        k: size of the pool the negative is drawn from (10 in the paper). When fewer than
            ``k`` images of other classes exist, the pool is all of them.

    Returns:
        (N,) int64 index of the negative of each image.
    """
    desc = _as_f32(desc)
    labels = np.asarray(labels)
    n = desc.shape[0]
    if labels.shape != (n,):
        raise ArtidError(f"hard_negatives: {n} descriptors but {labels.shape} labels")
    _, counts = np.unique(labels, return_counts=True)
    if counts.size < 2:
        raise ArtidError("hard-negative mining needs at least two classes in the database")
    # at most (largest class) neighbours share the anchor's class, so this many suffice
    search_k = min(n, k + int(counts.max()))
    _, nn_idx = exact_search(desc, desc, search_k, progress=False)
    other = labels[nn_idx] != labels[:, None]            # (N, search_k)
    n_other = other.sum(axis=1)
    pool = np.minimum(n_other, k)                         # pool size per anchor
    pick = (rng.random(n) * pool).astype(np.int64)        # 0 .. pool-1, uniform
    # position of the (pick+1)-th "other" neighbour in each row
    rank = np.cumsum(other, axis=1) - 1
    hit = other & (rank == pick[:, None])
    col = hit.argmax(axis=1)
    return nn_idx[np.arange(n), col].astype(np.int64)


def class_members(labels: np.ndarray) -> list[np.ndarray]:
    """For each image, the indices of all images of its class (itself included), ascending.

    Args:
        labels: (N,) int class labels.

    Returns:
        N arrays of int64 (images of one class share the same array object).
    """
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    uniq, starts = np.unique(labels[order], return_index=True)
    groups = np.split(order.astype(np.int64), starts[1:])
    out: list[np.ndarray] = [np.empty(0, np.int64)] * labels.shape[0]
    for g in groups:
        for i in g:
            out[i] = g
    return out


def closest_positives(desc: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each image, the most similar OTHER image of its class (-1 for single-image classes).

    Args:
        desc: (N, D) float32, L2-normalised rows.
        labels: (N,) int class labels.

    Returns:
        (N,) int64; ties go to the lower index.
    """
    desc = _as_f32(desc)
    labels = np.asarray(labels)
    out = np.full(desc.shape[0], -1, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    for s, c in zip(starts, counts):
        if c < 2:
            continue
        g = np.sort(order[s:s + c])
        sim = desc[g] @ desc[g].T
        np.fill_diagonal(sim, -np.inf)
        out[g] = g[sim.argmax(axis=1)]
    return out
