"""Exact maximum-inner-product search with faiss: the project's one kNN search.

The kNN classifier (:mod:`artid.retrieval.knn`), query expansion and DBA, hard-negative mining
(:mod:`artid.training.mining`) and kNN label transfer (:mod:`artid.attributes.knn_transfer`) all
search through :func:`exact_search` (or the classifier's searcher, which falls back to it).
"""

from __future__ import annotations

import faiss
import numpy as np
from tqdm import tqdm

#: Queries per faiss call (one progress-bar step).
QUERY_CHUNK = 4096


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 with faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def exact_search(
    queries: np.ndarray, db: np.ndarray, k: int, use_gpu: bool | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum-inner-product search with faiss (brute force, no copy of the database).

    Args:
        queries: (Q, D) float32.
        db: (N, D) float32.
        k: neighbours per query, 1 <= k <= N.
        use_gpu: search on the GPU; None = when faiss has one.
        progress: show a progress bar when the queries span several chunks.

    Returns:
        sims (Q, k) float32 sorted descending, idx (Q, k) int64 database rows.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    db = np.ascontiguousarray(db, dtype=np.float32)
    if use_gpu is None:
        use_gpu = gpu_count() > 0
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    res = faiss.StandardGpuResources() if use_gpu else None
    starts = range(0, queries.shape[0], QUERY_CHUNK)
    for start in tqdm(
        starts,
        desc="kNN search",
        unit="chunk",
        disable=not progress or len(starts) < 2,
        leave=False,
    ):
        q = queries[start : start + QUERY_CHUNK]
        if res is not None:
            d, i = faiss.knn_gpu(res, q, db, k, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            d, i = faiss.knn(q, db, k, metric=faiss.METRIC_INNER_PRODUCT)
        sims[start : start + len(q)], idx[start : start + len(q)] = d, i
    return sims, idx
