"""Check at scale: an index encoded in shards and joined by ``compressed.merge_shards`` answers as one
index encoded over all rows, and what encoding and merging take.

Uses what ``benchmarks/index_scale.py --n N --nlist NLIST --work WORK`` left in ``WORK`` (the float16
rows, the trained index and the index encoded over all rows), encodes ``--shards`` consecutive ranges
into copies of the trained index, merges them and compares the top 10 of ``--queries`` database rows
(nprobe 32, rescore 4) with the single index's.

    OMP_NUM_THREADS=1 python benchmarks/shard_merge.py --work runs/scale --n 1000000 --nlist 1024 --shards 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np
from scale_stages import data_offset, read_rows

from artid.retrieval.compressed import PQSearcher, encode_shard, merge_shards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/scale"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    db_path = args.work / f"db_{args.n}_{args.d}.npy"
    trained = faiss.read_index(str(args.work / f"trained_{args.n}_{args.nlist}.faiss"))
    whole = faiss.read_index(str(args.work / f"encoded_{args.n}_{args.nlist}.faiss"))
    offset, db = data_offset(db_path), np.load(db_path, mmap_mode="r")
    size = -(-args.n // args.shards)
    t = time.perf_counter()
    shards = [encode_shard(trained, read_rows(db_path, s, min(args.n, s + size), args.d, offset), s,
                           progress=False) for s in range(0, args.n, size)]
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    merged = merge_shards(shards, db, rescore=4)
    merge_s = time.perf_counter() - t
    one = PQSearcher(whole, db, np.arange(args.n, dtype=np.int64), rescore=4)
    merged.index.nprobe = one.index.nprobe = 32
    rows = np.random.default_rng(0).integers(0, args.n, args.queries)
    queries = np.asarray(db[np.sort(rows)], dtype=np.float32)
    a, b = merged.search(queries, 10, progress=False)[1], one.search(queries, 10, progress=False)[1]
    print(json.dumps({"rows": args.n, "shards": len(shards), "encode_seconds": round(encode_s, 1),
                      "merge_seconds": round(merge_s, 2), "queries": args.queries,
                      "same_top10_as_one_index": bool(np.array_equal(a, b))}))


if __name__ == "__main__":
    main()
