"""Exact maximum-inner-product search with faiss: the project's one kNN search.

The kNN classifier (:mod:`artid.retrieval.knn`), query expansion and DBA, hard-negative mining
(:mod:`artid.training.mining`) and kNN label transfer (:mod:`artid.attributes.knn_transfer`) all
search through :func:`exact_search` (or the classifier's searcher, which falls back to it).

A float16 database (the pipeline's ``storage="float16"``: half the memory and disk) is searched in
blocks of :data:`DB_BLOCK` rows widened to float32, the blocks' results merged by faiss'
``ResultHeap``: the same exact search on the stored values, never a full float32 copy.
"""

from __future__ import annotations

import faiss
import numpy as np
from tqdm import tqdm

#: Queries per faiss call (one progress-bar step).
QUERY_CHUNK = 4096
#: Database rows widened to float32 at a time when the database is stored as float16.
DB_BLOCK = 65536


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
        db: (N, D) float32, or float16 (searched in blocks, see the module).
        k: neighbours per query, 1 <= k <= N.
        use_gpu: search on the GPU; None = when faiss has one.
        progress: show a progress bar when the queries span several chunks.

    Returns:
        sims (Q, k) float32 sorted descending, idx (Q, k) int64 database rows.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if db.dtype == np.float16:
        return _blocked_search(queries, db, k, progress)
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


def _blocked_search(
    queries: np.ndarray, db: np.ndarray, k: int, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exact search of a float16 database, :data:`DB_BLOCK` rows widened at a time."""
    heap = faiss.ResultHeap(queries.shape[0], k, keep_max=True)
    starts = range(0, db.shape[0], DB_BLOCK)
    for start in tqdm(
        starts, desc="kNN search", unit="block", disable=not progress or len(starts) < 2,
        leave=False,
    ):
        block = np.ascontiguousarray(db[start : start + DB_BLOCK], dtype=np.float32)
        d, i = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        if d.shape[1] < k:  # a last block shorter than k
            pad = ((0, 0), (0, k - d.shape[1]))
            d, i = np.pad(d, pad, constant_values=-np.inf), np.pad(i, pad, constant_values=-1)
        heap.add_result(np.ascontiguousarray(d), np.where(i >= 0, i + start, -1))
    heap.finalize()
    return heap.D.astype(np.float32), heap.I.astype(np.int64)
