"""An approximate alternative to exact search: a faiss inverted-file index (IVF-Flat, inner
product).

Exact search (:func:`artid.retrieval.knn.exact_search`) is the default and what the paper's
numbers need. :class:`IVFSearcher` trades exactness for speed when many queries go against a large
database: it clusters the database into ``nlist`` cells (k-means on a sample) and compares a query
only with the images of its ``nprobe`` nearest cells. Its predictions can differ from exact
search; ``benchmarks/knn_autotune.py --ivf`` reports how many do and the speed-up.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from artid.errors import ArtidError
from artid.files import atomic_path
from artid.retrieval.knn import exact_search

log = logging.getLogger(__name__)


class IVFSearcher:
    """IVF-Flat inner-product index over a database.

    Args:
        db: (N, D) float32 L2-normalised database descriptors (the index keeps its own copy).
        nlist: number of cells; default ``4 * sqrt(N)`` (faiss's usual rule), at most N / 39.
        nprobe: cells visited per query (more: slower and closer to exact).
        train_size: database rows sampled to train the k-means (default 40 per cell; faiss wants
            39+).
        niter: k-means iterations (10 is plenty for coarse cells).
        seed: sampling seed.
    """

    def __init__(
        self,
        db: np.ndarray,
        nlist: int | None = None,
        nprobe: int = 32,
        train_size: int | None = None,
        niter: int = 10,
        seed: int = 0,
    ) -> None:
        db = np.ascontiguousarray(db, dtype=np.float32)
        n, d = db.shape
        if nlist is None:
            nlist = int(4 * math.sqrt(n))
        nlist = max(1, min(nlist, n // 39 or 1))
        if nprobe < 1:
            raise ArtidError(f"nprobe must be at least 1, got {nprobe}")
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(d)
        self.index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.niter = niter
        train_size = min(n, train_size or 40 * nlist)
        sample = np.random.default_rng(seed).choice(n, train_size, replace=False)
        self.index.train(db[np.sort(sample)])
        self.index.add(db)
        self.index.nprobe = min(nprobe, nlist)
        self.db = db
        self.build_seconds = time.perf_counter() - t
        log.info(
            "IVF index: %d cells, nprobe %d, built in %.1fs",
            nlist,
            self.index.nprobe,
            self.build_seconds,
        )

    @classmethod
    def from_index(cls, index: Any, db: np.ndarray) -> IVFSearcher:
        """A searcher over a trained and filled faiss IVF index (e.g. read back by :meth:`load`)."""
        if index.ntotal != db.shape[0] or index.d != db.shape[1]:
            raise ArtidError(
                f"the IVF index holds {index.ntotal} vectors of dimension {index.d}, the "
                f"database {db.shape[0]} of dimension {db.shape[1]}"
            )
        self = cls.__new__(cls)
        self.index, self.db, self.build_seconds = (
            index,
            np.ascontiguousarray(db, dtype=np.float32),
            0.0,
        )
        return self

    def save(self, path: Path) -> None:
        """Write the index (cells and lists) with faiss' own format."""
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: Path, db: np.ndarray, mmap: bool = False) -> IVFSearcher:
        """Read an index :meth:`save` wrote (memory-mapped lists with ``mmap``) over
        its database."""
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
        except RuntimeError as exc:
            raise ArtidError(f"{path}: not a faiss index ({str(exc).splitlines()[0]})") from None
        return cls.from_index(index, db)

    def with_rows(self, db: np.ndarray) -> IVFSearcher:
        """The same cells (no new k-means) filled with another database: rows added or removed."""
        index = faiss.clone_index(self.index)
        index.reset()
        db = np.ascontiguousarray(db, dtype=np.float32)
        index.add(db)
        return IVFSearcher.from_index(index, db)

    def search(
        self, queries: np.ndarray, k: int, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest neighbours: sims (Q, k) float32 descending, idx (Q, k) int64.

        Queries whose probed cells hold fewer than k images are searched exactly instead.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        sims, idx = self.index.search(queries, k)
        short = np.flatnonzero((idx < 0).any(axis=1))
        if short.size:
            log.info(
                "IVF: %d queries found fewer than %d neighbours in their cells; searched exactly",
                short.size,
                k,
            )
            sims[short], idx[short] = exact_search(
                queries[short], self.db, k, use_gpu=False, progress=False
            )
        return sims, idx.astype(np.int64, copy=False)
