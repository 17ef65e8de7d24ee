"""Benchmark: the compressed index (``--index ivfpq``) and float16 storage, at scale and in GAP.

Two parts, in one run:

1. **GAP on the synthetic benchmark** (``--descriptors``: an ``artid extract`` folder with
   ``database`` / ``val`` / ``test``): the pipeline fitted at default settings (whitening ``auto``,
   (k, tau) tuned on val) four ways: exact float32 (the protocol), exact float16, IVF-PQ float32,
   IVF-PQ float16; test GAP / GAP- / ACC with bootstrap SEs and each one's paired difference from
   exact float32.
2. **Scale** (``--n``, e.g. 1,000,000 and 10,000,000): the benchmark's database, projected as the
   exact pipeline projects it, mixed into ``n`` clustered synthetic unit vectors (``n / 100``
   random centres, cosine about 0.6 between members of a cluster), written as a float16 memory
   map under ``--work`` (reused when already written). Queries: the benchmark's test queries and
   as many noisy copies of random rows. It measures the exact search (ground truth, blocked over
   the float16 map), the out-of-core build (train on a sample, encode in chunks), the index's size
   on disk, peak memory, and for nprobe x rescore settings recall@1 / @10 against exact and the
   batch query time; single-query latency p50 / p95 at the defaults; the index read back
   memory-mapped answering the same. ``--opq``: artid's IVF-PQ against IVF-PQ and OPQ + IVF-PQ
   (faiss' learned rotation) at a quarter of its code size, same training sample and re-scoring.

    OMP_NUM_THREADS=2 python benchmarks/index_scale.py --descriptors DESC --n 1000000 \\
        --work /tmp/index_scale --json runs/index_scale_1m.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "exact f32": {},
    "exact f16": {"storage": "float16"},
    "ivfpq f32": {"index": "ivfpq"},
    "ivfpq f16": {"index": "ivfpq", "storage": "float16"},
}


def machine() -> dict[str, str]:
    """The CPU model, its SIMD / matrix flags and the load now (timings are noisy on a shared
    machine)."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("Model name")), "?")
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_bf16", "amx_int8") if f in info]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "flags": " ".join(flags), "uptime": load}


def peak_rss_gb() -> float:
    """The process's peak resident set (anonymous memory and mapped file pages it touched)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def gap_part(desc: dict, resamples: int, variants: dict) -> tuple[dict, object]:
    """Test GAP of the four variants, paired differences from exact float32; the exact pipeline."""
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    val_keys = np.array([e.path for e in desc["val"].entries])
    labels, keys = desc["test"].labels, np.array([e.path for e in desc["test"].entries])
    out: dict = {}
    answers, base = {}, None
    for name, opts in variants.items():
        t0 = time.perf_counter()
        pipe = KNNPipeline(PipelineConfig(use_gpu=False, **opts)).fit(
            desc["database"].matrix, desc["database"].labels, desc["val"].matrix,
            desc["val"].labels, val_keys, progress=False)
        ans = pipe.predict(desc["test"].matrix, progress=False)
        answers[name] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels, keys, resamples)
        out[name] = {"k": pipe.k, "tau": pipe.tau, "seconds": time.perf_counter() - t0,
                     "projection": pipe.projection.summary() if pipe.projection else None,
                     "test": {m: e.to_json() for m, e in est.items()}}
        line = "  ".join(f"{m} {100 * e.value:.2f} ± {100 * e.se:.2f}" for m, e in est.items())
        print(f"{name:10s} k {pipe.k} tau {pipe.tau:g} | test {line}", flush=True)
        if base is None:
            base = pipe
            continue
        diff = ilr_paired(answers[name], answers["exact f32"], labels, keys, resamples)
        out[name]["minus_exact_f32"] = {m: e.to_json() for m, e in diff.items()}
        print(f"{'':10s} - exact f32 (paired): " + "  ".join(
            f"{m} {100 * e.value:+.2f} ± {100 * e.se:.2f}" for m, e in diff.items()), flush=True)
    return out, base


def recall(idx: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = [len(np.intersect1d(a[:k], b[:k])) for a, b in zip(idx, truth)]
    return float(np.mean(hits) / k)


def scale_part(args: argparse.Namespace, pipe: object, desc: dict) -> dict:
    from scale_stages import encoded_index, ground_truth, synthetic_rows, trained_index

    from artid.retrieval.compressed import PQSearcher, default_nlist

    rng = np.random.default_rng(1)
    real = pipe.transform(desc["database"].matrix)  # type: ignore[attr-defined]
    test = pipe.transform(desc["test"].matrix)  # type: ignore[attr-defined]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    db_path = work / f"db_{args.n}_{real.shape[1]}.npy"
    db = synthetic_rows(db_path, args.n, real, 0)
    gen_s = time.perf_counter() - t0
    half = args.queries // 2
    rows = rng.integers(len(real), args.n, half)
    noisy = np.asarray(db[np.sort(rows)], dtype=np.float32)
    noisy += rng.normal(scale=0.3 / np.sqrt(db.shape[1]), size=noisy.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    queries = np.concatenate([test[rng.permutation(len(test))[: args.queries - half]], noisy])
    res: dict = {"n": args.n, "d": int(db.shape[1]), "real_rows": len(real),
                 "queries": len(queries), "generate_seconds": gen_s}
    print(f"scale: {args.n:,} rows x {db.shape[1]} (float16 map {db.nbytes / 2**30:.2f} GiB, "
          f"{len(real)} real), {len(queries)} queries", flush=True)
    _, truth, res["exact_ms_per_query"] = ground_truth(
        work / f"truth_{args.n}_{len(queries)}.npz", db_path, queries, args.n, db.shape[1], 10)
    print(f"rows ready in {gen_s:.0f} s; ground truth {res['exact_ms_per_query']:.2f} ms/query; "
          f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
    nlist = args.nlist or default_nlist(args.n)
    trained, res["train_seconds"] = trained_index(work / f"trained_{args.n}_{nlist}.faiss", db,
                                                  nlist, None)
    index, res["encode_seconds"] = encoded_index(work, trained, db_path, args.n, db.shape[1])
    res["build_seconds"] = res["train_seconds"] + res["encode_seconds"]
    index.nprobe = 32
    pq = PQSearcher(index, db, np.arange(args.n, dtype=np.int64), rescore=4)
    file = work / f"index_{args.n}.faiss"
    pq.save(file)
    res["index_bytes"] = file.stat().st_size
    res["index_bytes_per_row"] = file.stat().st_size / args.n
    res["db_bytes"] = db_path.stat().st_size
    res["nlist"], res["m"] = int(pq.index.nlist), int(pq.index.M)
    res["peak_rss_gb_after_build"] = peak_rss_gb()
    print(f"exact {res['exact_ms_per_query']:.2f} ms/query (batch); build "
          f"{res['build_seconds']:.0f} s (train {res['train_seconds']:.0f} s + encode "
          f"{res['encode_seconds']:.0f} s), {pq.index.nlist} cells, {pq.index.M} x 4-bit; "
          f"index {file.stat().st_size / 2**20:.0f}"
          f" MiB ({res['index_bytes_per_row']:.1f} B/row); peak RSS {peak_rss_gb():.2f} GB",
          flush=True)
    grid = []
    matched = truth[: len(queries) - half, 0] < len(real)
    for nprobe in args.nprobes:
        for rescore in args.rescores:
            pq.index.nprobe, pq.rescore = nprobe, rescore
            t0 = time.perf_counter()
            _, idx = pq.search(queries, 10, progress=False)
            ms = 1e3 * (time.perf_counter() - t0) / len(queries)
            r = len(queries) - half  # the benchmark's test queries come first
            row = {"nprobe": nprobe, "rescore": rescore, "recall@1": recall(idx, truth, 1),
                   "recall@10": recall(idx, truth, 10), "ms_per_query": ms,
                   "speedup_vs_exact": res["exact_ms_per_query"] / ms,
                   "real_recall@1": recall(idx[:r], truth[:r], 1),
                   "real_recall@10": recall(idx[:r], truth[:r], 10),
                   "synthetic_recall@1": recall(idx[r:], truth[r:], 1),
                   # real queries whose exact nearest row is a real database image (a match, not
                   # one of a million near-equal synthetic rows): is that image found first?
                   "matched_real_queries": int(matched.sum()),
                   "matched_recall@1": recall(idx[:r][matched], truth[:r][matched], 1)}
            grid.append(row)
            print(f"nprobe {nprobe:3d} rescore {rescore:2d}: recall@1 {row['recall@1']:.3f} "
                  f"@10 {row['recall@10']:.3f} (real queries {row['real_recall@1']:.3f} / "
                  f"{row['real_recall@10']:.3f}, matched @1 {row['matched_recall@1']:.3f} of "
                  f"{row['matched_real_queries']}, synthetic @1 {row['synthetic_recall@1']:.3f})  "
                  f"{ms:.3f} ms/query (x{row['speedup_vs_exact']:.0f} vs exact)", flush=True)
    res["grid"] = grid
    pq.index.nprobe, pq.rescore = 32, 4
    single = []
    for q in queries[: args.single]:
        t0 = time.perf_counter()
        pq.search(q[None], 10, progress=False)
        single.append(1e3 * (time.perf_counter() - t0))
    res["single_ms_p50"], res["single_ms_p95"] = map(float, np.percentile(single, [50, 95]))
    mapped = PQSearcher.load(file, db, mmap=True)
    mapped.index.nprobe = 32
    same = np.array_equal(mapped.search(queries[:200], 10, progress=False)[1],
                          pq.search(queries[:200], 10, progress=False)[1])
    res["mmap_answers_the_same"] = bool(same)
    if args.opq:
        res["opq"] = opq_part(db, queries, truth, nlist, args.nprobes, r=len(queries) - half)
    res["peak_rss_gb"] = peak_rss_gb()
    print(f"single query (nprobe 32, rescore 4): p50 {res['single_ms_p50']:.2f} ms, p95 "
          f"{res['single_ms_p95']:.2f} ms; memory-mapped index answers the same: {same}",
          flush=True)
    return res


#: (label, OPQ rotation, 4-bit sub-quantizers; None: artid's default d / 2). No OPQ at d / 2: its
#: rotation is trained with an 8-bit PQ of d / 2 sub-quantizers (faiss' OPQMatrix), which had not
#: finished after 20 min on 2 cores (1M run of 2026-12-04), where IVF-PQ trains in 5 s.
OPQ_VARIANTS = [("IVF-PQ m=d/2 (artid)", False, None), ("IVF-PQ m=d/8", False, 8),
                ("OPQ + IVF-PQ m=d/8", True, 8)]
#: OPQ's alternations (faiss' default 50): 10 keeps its training within minutes on 2 cores
OPQ_NITER = 10


def opq_part(db: np.ndarray, queries: np.ndarray, truth: np.ndarray, nlist: int,
             nprobes: list[int], r: int) -> list[dict]:
    """IVF-PQ fast-scan at artid's code size, and with and without an OPQ rotation (faiss
    ``OPQm,IVFn,PQmx4fs``) at a quarter of it, trained on the same sample and re-scored exactly (rescore 4)
    as artid's index is: recall@1 / @10 against exact, of all and of the real queries, and the
    batch ms per query, for each nprobe."""
    import faiss

    from artid.retrieval.compressed import ADD_CHUNK, PQSearcher, default_m

    n, d = db.shape
    rows = np.sort(np.random.default_rng(0).choice(n, min(n, max(4096, 40 * nlist)), replace=False))
    sample = np.ascontiguousarray(db[rows], dtype=np.float32)
    out = []
    for label, opq, divisor in OPQ_VARIANTS:
        m = default_m(d) if divisor is None else d // divisor
        spec = f"{f'OPQ{m},' if opq else ''}IVF{nlist},PQ{m}x4fs"
        t0 = time.perf_counter()
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(index).cp.niter = 10
        if opq:
            faiss.downcast_VectorTransform(index.chain.at(0)).niter = OPQ_NITER
        index.train(sample)
        train_s = time.perf_counter() - t0
        for s in range(0, n, ADD_CHUNK):
            chunk = np.ascontiguousarray(db[s : s + ADD_CHUNK], dtype=np.float32)
            index.add_with_ids(chunk, np.arange(s, s + len(chunk), dtype=np.int64))
        build_s = time.perf_counter() - t0
        pq = PQSearcher(index, db, np.arange(n, dtype=np.int64), rescore=4)
        for nprobe in nprobes:
            faiss.extract_index_ivf(index).nprobe = nprobe
            t1 = time.perf_counter()
            _, idx = pq.search(queries, 10, progress=False)
            ms = 1e3 * (time.perf_counter() - t1) / len(queries)
            row = {"variant": label, "factory": spec, "bytes_per_code": m // 2, "nprobe": nprobe,
                   "recall@1": recall(idx, truth, 1), "recall@10": recall(idx, truth, 10),
                   "real_recall@1": recall(idx[:r], truth[:r], 1), "ms_per_query": ms,
                   "train_seconds": train_s, "build_seconds": build_s}
            out.append(row)
            print(f"{label:22s} ({spec}, {m // 2} B codes) nprobe {nprobe:3d}: recall@1 "
                  f"{row['recall@1']:.3f} @10 {row['recall@10']:.3f} (real @1 "
                  f"{row['real_recall@1']:.3f})  {ms:.2f} ms/query; train {train_s:.0f} s, build "
                  f"{build_s:.0f} s", flush=True)
    return out


def main() -> None:
    from artid.descriptors import load_descriptors

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="database / val / test descriptor folder")
    ap.add_argument("--n", type=int, default=1_000_000, help="rows of the scale part (0: skip)")
    ap.add_argument("--work", default="/tmp/index_scale", help="where the synthetic rows go")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--nlist", type=int, help="IVF cells (default 4 sqrt(N))")
    ap.add_argument("--nprobes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--rescores", type=int, nargs="+", default=[1, 4, 10])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--skip-gap", action="store_true", help="fit only the exact pipeline")
    ap.add_argument("--opq", action="store_true",
                    help="also compare IVF-PQ with OPQ + IVF-PQ at two code sizes (scale part)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    info = machine()
    print(f"{info['cpu']} [{info['flags']}]; {info['uptime']}", flush=True)
    desc = {s: load_descriptors(Path(args.descriptors) / s) for s in ("database", "val", "test")}
    results: dict = {"machine": info}
    variants = {"exact f32": {}} if args.skip_gap else VARIANTS
    results["gap"], exact = gap_part(desc, args.resamples, variants)
    if args.n:
        results["scale"] = scale_part(args, exact, desc)
    results["machine_after"] = machine()["uptime"]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
