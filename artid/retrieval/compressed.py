"""A compressed index for a large collection: faiss IVF-PQ fast-scan with exact re-scoring.

:class:`PQSearcher` keeps every database row as a product-quantised code of ``m`` sub-vectors of 4
bits each (``m / 2`` bytes a row: 128 bytes for a 512-d row at the default ``m = d / 2``, against
2,048 as float32) in the ``nlist`` inverted lists of an ``IndexIVFPQFastScan`` (SIMD look-up tables:
the fast-scan kernel). A query visits its ``nprobe`` nearest cells, takes the ``rescore * k`` best
codes (the short list) and ranks them again by their exact inner product with the pipeline's own
database rows (float32 or float16, memory-mapped when serving), so the similarities the kNN
classifier sees are exact, and only the short list can miss a neighbour.

Built out of core: the quantizers train on a sample, then rows are encoded in chunks of
:data:`ADD_CHUNK` (a memory-mapped database is read once, in order). Sharded: the trained, empty
index (:meth:`PQSearcher.trained`) is copied to every process or machine, each encodes its own range
of rows (:func:`encode_shard`), and :func:`merge_shards` joins the shards' inverted lists (as faiss'
``merge_from`` would, without its heap overflow on fast-scan lists: :func:`merge_lists`): the
merged index answers exactly as one built over all rows. ``index add`` /
``remove`` encode the new rows with the trained quantizers and delete removed ids from their lists:
nothing is trained again. Faiss ids are kept beside the rows (``ids``: sorted), so a removal needs
no renumbering of the lists.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from artid.errors import ArtidError
from artid.files import atomic_path, save_npy
from artid.retrieval.search import exact_search

log = logging.getLogger(__name__)

#: Rows encoded per ``add`` call (one progress step).
ADD_CHUNK = 65536
#: Queries re-scored together (bounds the gathered (queries, short list, d) block).
RESCORE_CHUNK = 256
#: The file of faiss ids beside the index file.
IDS_SUFFIX = ".ids.npy"


def default_m(d: int) -> int:
    """Sub-quantizers: d / 2 (32 bytes a row per 128 dimensions), the largest even divisor of d
    at most that. On clustered 32-d data d / 4 found the exact nearest row for 92% of queries at
    rescore 4, d / 2 for all (``tests/retrieval/test_compressed_index.py``'s data)."""
    for m in range(max(2, d // 2), 1, -1):
        if d % m == 0 and m % 2 == 0:
            return m
    raise ArtidError(f"a product quantizer needs an even divisor of the dimension, got d={d}")


def default_nlist(n: int) -> int:
    """faiss's rule 4 * sqrt(N), at most N / 39 (its k-means wants 39 points a cell)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))


class PQSearcher:
    """IVF-PQ fast-scan index over a database, re-scored exactly on a short list.

    Build with :meth:`build`; :meth:`load` reads what :meth:`save` wrote.

    Attributes:
        index: the faiss ``IndexIVFPQFastScan`` (inner product).
        db: (N, d) float32 or float16 rows the short list is re-scored with (kept by reference).
        ids: (N,) sorted int64 faiss id of each row.
        rescore: short-list length as a multiple of k.
    """

    def __init__(self, index: Any, db: np.ndarray, ids: np.ndarray, rescore: int = 4) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if index.ntotal != db.shape[0] or index.d != db.shape[1] or ids.shape != (db.shape[0],):
            raise ArtidError(
                f"the compressed index holds {index.ntotal} vectors of dimension {index.d} and "
                f"{ids.shape[0]} ids, the database {db.shape[0]} of dimension {db.shape[1]}"
            )
        if rescore < 1:
            raise ArtidError(f"rescore must be at least 1, got {rescore}")
        self.index, self.db, self.ids, self.rescore = index, db, ids, int(rescore)
        self.contiguous = bool(ids.size == 0 or (ids[0] == 0 and ids[-1] == ids.size - 1))
        self.build_seconds = 0.0

    @classmethod
    def build(
        cls,
        db: np.ndarray,
        nlist: int | None = None,
        nprobe: int = 32,
        m: int | None = None,
        rescore: int = 4,
        train_size: int | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> PQSearcher:
        """Train on a sample of ``db`` (an array or a memory map), then encode it in chunks.

        Args:
            nlist: cells (default :func:`default_nlist`); nprobe: cells visited per query.
            m: 4-bit sub-quantizers (default :func:`default_m`).
            train_size: rows sampled to train (default 40 per cell, at least 4,096, at most N).
        """
        n, d = db.shape
        nlist = default_nlist(n) if nlist is None else max(1, min(nlist, n))
        if nprobe < 1:
            raise ArtidError(f"nprobe must be at least 1, got {nprobe}")
        t = time.perf_counter()
        index = train(db, nlist, m, train_size, seed)
        index.nprobe = min(nprobe, nlist)
        for start in tqdm(
            range(0, n, ADD_CHUNK), desc="encode", unit="chunk", disable=not progress, leave=False
        ):
            chunk = np.ascontiguousarray(db[start : start + ADD_CHUNK], dtype=np.float32)
            index.add_with_ids(chunk, np.arange(start, start + len(chunk), dtype=np.int64))
        self = cls(index, db, np.arange(n, dtype=np.int64), rescore)
        self.build_seconds = time.perf_counter() - t
        log.info(
            "IVF-PQ index: %d cells, %d x 4-bit codes, nprobe %d, built in %.1fs",
            nlist, index.M, index.nprobe, self.build_seconds,
        )
        return self

    def trained(self) -> Any:
        """A copy of the trained index with empty lists: what every shard starts from."""
        index = faiss.clone_index(self.index)
        index.reset()
        return index

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """The index in faiss' format at ``path``, its ids beside it (``<path>.ids.npy``)."""
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))
        save_npy(path.with_name(path.name + IDS_SUFFIX), self.ids)

    @classmethod
    def load(
        cls, path: Path, db: np.ndarray, mmap: bool = False, rescore: int = 4
    ) -> PQSearcher:
        """Read what :meth:`save` wrote (``mmap``: the inverted lists stay on disk, mapped)."""
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise ArtidError(f"{path}: not a faiss index ({str(exc).splitlines()[0]})") from None
        if not isinstance(index, faiss.IndexIVFPQFastScan):
            raise ArtidError(f"{path}: a {type(index).__name__}, not an IVF-PQ fast-scan index")
        ids_file = path.with_name(path.name + IDS_SUFFIX)
        try:
            ids = np.load(ids_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtidError(f"{ids_file}: the index's ids cannot be read ({exc})") from None
        return cls(index, db, ids, rescore)

    # --- edits -----------------------------------------------------------------------------------
    def _copy(self) -> Any:
        """An in-memory copy of the index (the loaded one may be mapped read-only, or served)."""
        return faiss.clone_index(self.index)

    def added(self, db: np.ndarray) -> PQSearcher:
        """The index over ``db``: these rows followed by new ones, encoded with the trained
        quantizers."""
        old = self.ids.size
        new = np.ascontiguousarray(db[old:], dtype=np.float32)
        start = int(self.ids[-1]) + 1 if old else 0
        new_ids = np.arange(start, start + len(new), dtype=np.int64)
        index = self._copy()
        index.add_with_ids(new, new_ids)
        return PQSearcher(index, db, np.concatenate([self.ids, new_ids]), self.rescore)

    def kept(self, rows: np.ndarray, db: np.ndarray) -> PQSearcher:
        """The index of ``db = old_db[rows]``: removed ids deleted from their lists when ``rows``
        keep their order, else the kept rows encoded again (no training either way)."""
        rows = np.asarray(rows, dtype=np.int64)
        index = self._copy()
        if rows.size and np.all(np.diff(rows) > 0):
            gone = np.setdiff1d(self.ids, self.ids[rows], assume_unique=True)
            index.remove_ids(faiss.IDSelectorBatch(gone))
            return PQSearcher(index, db, self.ids[rows], self.rescore)
        index.reset()
        ids = np.arange(len(rows), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(db, dtype=np.float32), ids)
        return PQSearcher(index, db, ids, self.rescore)

    # --- search ----------------------------------------------------------------------------------
    def _rows(self, found: np.ndarray) -> np.ndarray:
        """Faiss ids -> database rows (-1 stays -1)."""
        if self.contiguous:
            return found
        rows = np.searchsorted(self.ids, found)
        return np.where(found < 0, -1, rows)

    def search(
        self, queries: np.ndarray, k: int, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest rows with exact similarities: sims (Q, k) float32 descending,
        idx (Q, k) int64. Queries whose cells hold fewer than k rows are searched exactly."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = self.db.shape[0]
        depth = min(n, max(k * self.rescore, k))
        sims = np.empty((len(queries), k), dtype=np.float32)
        idx = np.empty((len(queries), k), dtype=np.int64)
        starts = range(0, len(queries), RESCORE_CHUNK)
        for s in tqdm(starts, desc="IVF-PQ search", unit="chunk",
                      disable=not progress or len(starts) < 2, leave=False):
            q = queries[s : s + RESCORE_CHUNK]
            _, found = self.index.search(q, depth)
            sims[s : s + len(q)], idx[s : s + len(q)] = self._rescored(q, self._rows(found), k)
        short = np.flatnonzero((idx < 0).any(axis=1))
        if short.size:
            log.info("IVF-PQ: %d queries found fewer than %d rows in their cells; searched "
                     "exactly", short.size, k)
            sims[short], idx[short] = exact_search(
                queries[short], self.db, k, use_gpu=False, progress=False
            )
        return sims, idx

    def _rescored(
        self, q: np.ndarray, rows: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The short list ranked by exact inner product with the database rows; its best k."""
        valid = rows >= 0
        gathered = np.asarray(self.db[np.where(valid, rows, 0).ravel()], dtype=np.float32)
        exact = np.einsum("qkd,qd->qk", gathered.reshape(*rows.shape, -1), q)
        exact = np.where(valid, exact, -np.inf)
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(exact, order, axis=1).astype(np.float32)
        return best, np.where(np.isfinite(best), np.take_along_axis(rows, order, axis=1), -1)


def train(
    db: np.ndarray, nlist: int, m: int | None = None, train_size: int | None = None, seed: int = 0
) -> Any:
    """An empty IVF-PQ fast-scan index (inner product, ``nlist`` cells, ``m`` 4-bit
    sub-quantizers, default :func:`default_m`) trained on a sample of ``db``'s rows (an array or
    a memory map; ``train_size`` rows, default 40 per cell, at least 4,096, at most N)."""
    n, d = db.shape
    m = default_m(d) if m is None else m
    if m < 1 or d % m:
        raise ArtidError(f"the PQ sub-quantizers ({m}) must divide the dimension {d}")
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFPQFastScan(quantizer, d, nlist, m, 4, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    size = min(n, train_size or max(4096, 40 * nlist))
    rows = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    index.train(np.ascontiguousarray(db[rows], dtype=np.float32))
    return index


def encode_shard(trained: Any, rows: np.ndarray, start: int, progress: bool = True) -> Any:
    """Rows ``start .. start + len(rows) - 1`` of the database encoded into a copy of a trained,
    empty index (:meth:`PQSearcher.trained`): one shard, built anywhere the rows are."""
    index = faiss.clone_index(trained)
    if index.ntotal:
        raise ArtidError(f"a shard starts from an empty trained index, got {index.ntotal} rows")
    for s in tqdm(range(0, len(rows), ADD_CHUNK), desc="encode shard", unit="chunk",
                  disable=not progress, leave=False):
        chunk = np.ascontiguousarray(rows[s : s + ADD_CHUNK], dtype=np.float32)
        index.add_with_ids(chunk, np.arange(start + s, start + s + len(chunk), dtype=np.int64))
    return index


def merge_shards(shards: list[Any], db: np.ndarray, rescore: int = 4) -> PQSearcher:
    """One searcher over ``db`` from shards :func:`encode_shard` built over its consecutive row
    ranges (in order): their inverted lists merged (:func:`merge_lists`), ids kept."""
    if not shards:
        raise ArtidError("merging shards needs at least one shard")
    index = faiss.clone_index(shards[0])
    for shard in shards[1:]:
        merge_lists(index, shard)
    if index.ntotal != len(db):
        raise ArtidError(f"the shards hold {index.ntotal} rows, the database {len(db)}")
    return PQSearcher(index, db, np.arange(len(db), dtype=np.int64), rescore)


def merge_lists(index: Any, other: Any) -> None:
    """Append the inverted lists of ``other`` (a shard of the same trained index) to ``index``'s;
    ``other`` is left unchanged.

    What faiss' ``IndexIVF.merge_from`` does, without its failure on fast-scan lists: faiss 1.15.1's
    ``BlockInvertedLists.add_entries`` copies whole blocks when the list's size is a multiple of
    the block's size *in bytes* (it means in entries), and then writes past the list's buffer (heap
    corruption, "free(): invalid pointer": ``merge_from`` of 1M-row shards crashed at the fifth;
    ``tests/retrieval/test_compressed_index.py`` reproduces it with 64 rows). Here a list of a size
    that is a multiple of the block's entries gets the other's packed blocks appended as they are
    (the lists are re-filled from their start, where faiss' copy is right); any other size goes
    through faiss' own entry-by-entry repacking, which is right.
    """
    lists: Any = faiss.downcast_InvertedLists
    mine = lists(faiss.extract_index_ivf(index).invlists)
    theirs = lists(faiss.extract_index_ivf(other).invlists)
    if mine.nlist != theirs.nlist or mine.block_size != theirs.block_size:
        raise ArtidError(f"a shard of {theirs.nlist} lists cannot join an index of {mine.nlist}: "
                         "shards are encoded into copies of one trained index")
    per_block, block = int(mine.n_per_block), int(mine.block_size)
    for i in range(mine.nlist):
        n = int(theirs.list_size(i))
        if n == 0:
            continue
        ids = faiss.rev_swig_ptr(theirs.get_ids(i), n).copy()
        codes = faiss.rev_swig_ptr(theirs.get_codes(i), -(-n // per_block) * block).copy()
        o = int(mine.list_size(i))
        if o and o % per_block == 0:  # whole blocks: append the other's blocks, from the start
            ids = np.concatenate([faiss.rev_swig_ptr(mine.get_ids(i), o), ids])
            codes = np.concatenate([faiss.rev_swig_ptr(mine.get_codes(i), o // per_block * block),
                                    codes])
            mine.resize(i, 0)
        mine.add_entries(i, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    index.ntotal += other.ntotal
