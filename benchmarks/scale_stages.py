"""The cached stages of ``index_scale.py``'s scale part: synthetic rows, ground truth, the trained
and the encoded index. Each stage is written beside the rows under ``--work`` and reused when a
run is started again (a stopped run resumes: the rows and the encoded shards chunk by chunk).

Rows are read and written with plain file I/O, not through the memory map, so the pages they
pass through stay in the page cache and out of the process's resident set: the peak RSS printed
is what the benchmark itself holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

#: Rows generated, read for the ground truth or encoded at a time.
CHUNK = 1 << 17
#: Rows of one cached encoded shard.
SHARD = 1 << 20


def data_offset(path: Path) -> int:
    """Byte offset of the array data in a ``.npy`` file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()


def read_rows(path: Path, start: int, stop: int, d: int, offset: int) -> np.ndarray:
    """Rows ``start:stop`` of a float16 ``.npy`` file as float32 (read, not mapped)."""
    with open(path, "rb") as f:
        f.seek(offset + start * d * 2)
        x = np.fromfile(f, dtype=np.float16, count=(stop - start) * d)
    return x.reshape(stop - start, d).astype(np.float32)


def synthetic_rows(path: Path, n: int, real: np.ndarray, seed: int) -> np.ndarray:
    """``n`` float16 rows: the real ones first, then clustered unit vectors (``n / 100`` random
    centres plus noise, cosine about 0.6 within a cluster). Chunk ``i`` comes from its own
    generator (``seed``, ``i``), so a stopped run continues where it stopped with the same rows."""
    d = real.shape[1]
    done = path.with_suffix(".done")
    meta = {"n": n, "d": d, "seed": seed, "chunk": CHUNK, "generator": 2}
    progress = json.loads(done.read_text()) if done.is_file() else {}
    if progress.get("meta") != meta or not path.is_file():
        np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, d))
        progress = {"meta": meta, "chunks": 0}
        done.write_text(json.dumps(progress))
    offset = data_offset(path)
    centres = np.random.default_rng(seed).standard_normal((max(1, n // 100), d), np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    starts = list(range(len(real), n, CHUNK))
    with open(path, "r+b") as f:
        if progress["chunks"] == 0:
            f.seek(offset)
            f.write(np.asarray(real, dtype=np.float16).tobytes())
        for i in tqdm(range(progress["chunks"], len(starts)), desc="synthetic rows",
                      unit="chunk", initial=progress["chunks"], total=len(starts)):
            start = starts[i]
            m = min(CHUNK, n - start)
            rng = np.random.default_rng([seed, i])
            x = centres[rng.integers(0, len(centres), m)]
            x += rng.standard_normal((m, d), np.float32) * np.float32(0.8 / np.sqrt(d))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            f.seek(offset + start * d * 2)
            f.write(x.astype(np.float16).tobytes())
            if i % 16 == 15 or i == len(starts) - 1:
                f.flush()
                progress["chunks"] = i + 1
                done.write_text(json.dumps(progress))
    progress["chunks"] = len(starts)
    done.write_text(json.dumps(progress))
    return np.load(path, mmap_mode="r")


def ground_truth(path: Path, db_path: Path, queries: np.ndarray, n: int, d: int,
                 k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact top-k inner products of every query over all rows (faiss' flat search on float32
    chunks of the float16 file, merged); cached in ``path`` with its ms per query."""
    if path.is_file():
        z = np.load(path)
        if np.array_equal(z["queries"], queries):
            return z["sims"], z["idx"], float(z["ms_per_query"])
    offset = data_offset(db_path)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    idx = np.full((len(queries), k), -1, dtype=np.int64)
    t0 = time.perf_counter()
    for start in tqdm(range(0, n, CHUNK), desc="ground truth", unit="chunk"):
        x = read_rows(db_path, start, min(n, start + CHUNK), d, offset)
        s, i = faiss.knn(queries, x, k, metric=faiss.METRIC_INNER_PRODUCT)
        both_s, both_i = np.hstack([sims, s]), np.hstack([idx, i + start])
        order = np.argsort(-both_s, axis=1, kind="stable")[:, :k]
        sims = np.take_along_axis(both_s, order, axis=1)
        idx = np.take_along_axis(both_i, order, axis=1)
    ms = 1e3 * (time.perf_counter() - t0) / len(queries)
    np.savez(path, queries=queries, sims=sims, idx=idx, ms_per_query=ms)
    return sims, idx, ms


def trained_index(path: Path, db: np.ndarray, nlist: int, m: int | None) -> tuple[object, float]:
    """The trained, empty IVF-PQ index (cached in ``path``) and the seconds training took."""
    from artid.retrieval.compressed import train

    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        return faiss.read_index(str(path)), json.loads(meta.read_text())["seconds"]
    t0 = time.perf_counter()
    index = train(db, nlist, m)
    seconds = time.perf_counter() - t0
    faiss.write_index(index, str(path))
    meta.write_text(json.dumps({"seconds": seconds}))
    return index, seconds


def encoded_index(
    work: Path, trained: object, db_path: Path, n: int, d: int
) -> tuple[object, float]:
    """All rows encoded into one copy of the trained index, checkpointed (the whole index and
    the rows done) every :data:`SHARD` rows so a stopped run continues there; the seconds
    encoding took, summed over the runs. (One index rather than shards merged: faiss 1.15.1's
    ``merge_from`` corrupted the heap at 1M-row shards, which ``compressed.merge_lists`` now
    avoids; a checkpointed single index needs no merge at all.)"""
    nlist = trained.nlist  # type: ignore[attr-defined]
    file, meta = work / f"encoded_{n}_{nlist}.faiss", work / f"encoded_{n}_{nlist}.json"
    state = json.loads(meta.read_text()) if meta.is_file() and file.is_file() else None
    index = faiss.read_index(str(file)) if state else faiss.clone_index(trained)  # type: ignore
    state = state or {"rows": 0, "seconds": 0.0}
    offset = data_offset(db_path)
    for start in tqdm(range(state["rows"], n, SHARD), desc="encode", unit="1M rows"):
        t0 = time.perf_counter()
        for s in range(start, min(n, start + SHARD), CHUNK):
            rows = read_rows(db_path, s, min(n, start + SHARD, s + CHUNK), d, offset)
            index.add_with_ids(rows, np.arange(s, s + len(rows), dtype=np.int64))
        state["seconds"] += time.perf_counter() - t0
        state["rows"] = min(n, start + SHARD)
        tmp = file.with_suffix(".tmp")
        faiss.write_index(index, str(tmp))
        tmp.replace(file)
        meta.write_text(json.dumps(state))
    return index, state["seconds"]
