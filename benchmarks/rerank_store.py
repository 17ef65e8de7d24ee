"""Benchmark: what a smaller re-ranking store costs in GAP, and the batched matcher against OpenCV's.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``; entry paths relative
to ``--root``), fits the kNN pipeline as ``artid evaluate`` does, builds the database's re-ranking store
(:mod:`artid.extraction.local_store`, ``--store``) and answers the test queries re-ranked at K
(``--top``) with each keypoint budget of ``--budgets`` (the strongest n of each database image; the
query photos keep theirs, or ``--query-budget``), the fusion rule tuned on val each time. For each
budget: test GAP / GAP- / ACC with bootstrap SE, the paired difference to the full store (same
queries), bytes per image of the store at that budget and verification ms per query. Then, on the first
``--timing-queries`` test queries, the verify loop against the previous one (OpenCV's brute-force matcher
and MAGSAC for every pair: ``count_inliers``) in the same run: the counts that matter equal, time of each.

    OMP_NUM_THREADS=1 python benchmarks/rerank_store.py --descriptors runs/demo/descriptors/ms \\
        --root runs/demo/benchmark --budgets 500 300 200 100 --json runs/rerank_store.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import cv2

    from artid.descriptors import load_descriptors
    from artid.extraction.local import FeatureCache
    from artid.extraction.local_store import build_store, store_bytes
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
    from artid.retrieval.rerank import RerankConfig, Reranker
    from artid.retrieval.verification import count_inliers

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test descriptor files")
    ap.add_argument("--root", required=True, help="dataset root the entry paths are relative to")
    ap.add_argument("--store", default=None, help="the database's store (default: <descriptors>/local_store)")
    ap.add_argument("--cache", default=None, help="query photos' cache (default: <descriptors>/local_features)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[500, 300, 200, 100],
                    help="keypoints kept per database image (the first is the reference)")
    ap.add_argument("--query-budget", type=int, default=None, help="keypoints kept per query photo")
    ap.add_argument("--query-budgets", type=int, nargs="*", default=[],
                    help="also the full store with the photos' keypoints cut to each of these (paired)")
    ap.add_argument("--top", type=int, default=50, help="K, the neighbours verified")
    ap.add_argument("--timing-queries", type=int, default=200, help="queries the old loop is timed on")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"CPU {platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f} (1 min)")

    d = {s: load_descriptors(Path(args.descriptors) / s) for s in ("database", "val", "test")}
    paths = {s: [e.path for e in d[s].entries] for s in d}
    labels = {s: d[s].labels for s in ("val", "test")}
    keys = {s: np.array(paths[s]) for s in ("val", "test")}
    t = time.perf_counter()
    built = build_store(paths["database"], args.root, Path(args.store or Path(args.descriptors) / "local_store"),
                        max(args.budgets), 400, desc="database store")
    store = built.features
    print(f"store of {len(store)} images, {store.keypoints} keypoints, {time.perf_counter() - t:.0f} s "
          f"({built.computed} chunks computed)")
    cache = FeatureCache(Path(args.cache or Path(args.descriptors) / "local_features"), args.root)
    qb = args.query_budget or 10**9
    for s in ("val", "test"):
        cache.ensure(paths[s], f"{s} local features")
    qfeats = {s: (lambda q, s=s: cache.get(paths[s][q]).strongest(qb)) for s in ("val", "test")}

    pipe = KNNPipeline(PipelineConfig(use_gpu=False, qe_n=0, dba_n=0)).fit(
        d["database"].matrix, d["database"].labels, d["val"].matrix, labels["val"], keys["val"])
    clf, k, tau = pipe.classifier, pipe.k, pipe.tau
    assert clf is not None and k is not None and tau is not None
    depth = min(max(k, args.top), clf.size)
    near = {s: pipe.neighbours(d[s].matrix, depth, progress=False) for s in ("val", "test")}
    sizes = np.diff(np.asarray(store.offsets))
    results: dict = {"top": args.top, "budgets": {}}
    answers = {}
    configs = [(b, None) for b in args.budgets] + [(args.budgets[0], n) for n in args.query_budgets]
    for b, qn in configs:
        rr = Reranker(RerankConfig(top=args.top), lambda r, b=b: store[r].strongest(b), tau)
        qf = qfeats if qn is None else {s: (lambda q, s=s, qn=qn: qfeats[s](q).strongest(qn)) for s in qfeats}
        counts = {s: rr.verify(near[s][1], qf[s], progress=True) for s in ("val", "test")}
        ms = rr.ms_per_query or 0.0
        rr.fit(*near["val"], counts["val"], clf, k, tau, pipe.config.taus, labels["val"], keys["val"])
        ans = rr.decide(*near["test"], counts["test"], clf, k).classified
        name = f"{b}" if qn is None else f"{b}, photos {qn}"
        answers[name] = ans
        b = name  # type: ignore[assignment]
        est = ilr_estimates(ans.pred, ans.score, labels["test"], keys["test"], args.resamples)
        ref = answers[str(args.budgets[0])]
        diff = ilr_paired((ans.pred, ans.score), (ref.pred, ref.score), labels["test"], keys["test"],
                          args.resamples)
        per_image = 136 * float(np.minimum(sizes, int(str(b).split(",")[0])).mean())
        results["budgets"][b] = {"test": {m: e.to_json() for m, e in est.items()},
                                 "minus_reference": {m: e.to_json() for m, e in diff.items()},
                                 "bytes_per_image": per_image, "verify_ms_per_query": ms,
                                 "w": rr.w, "min_inliers": rr.min_inliers, "tau": rr.tau}
        print(f"budget {b:>12s}: {per_image / 1024:5.1f} KiB/image, verify {ms:5.1f} ms/query | "
              + "  ".join(f"{m} {100 * e.value:5.1f} ± {100 * e.se:.1f}" for m, e in est.items())
              + f" | - budget {args.budgets[0]} "
              + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}" for m, e in diff.items()), flush=True)
    results["store_bytes"] = store_bytes(Path(args.store or Path(args.descriptors) / "local_store"))

    # the verify loop against the previous one (BFMatcher + MAGSAC on every pair), same queries
    n = min(args.timing_queries, len(paths["test"]))
    idx = near["test"][1][:n, : args.top]
    floor = int(results["budgets"][str(args.budgets[0])]["min_inliers"])
    rr = Reranker(RerankConfig(top=args.top, min_inliers=floor), store.__getitem__, tau)
    t = time.perf_counter()
    new = rr.verify(idx, qfeats["test"])
    new_ms = 1000 * (time.perf_counter() - t) / n
    t = time.perf_counter()
    old = np.array([[count_inliers(qfeats["test"](q), store[int(r)]) for r in idx[q]] for q in range(n)])
    old_ms = 1000 * (time.perf_counter() - t) / n
    same = bool(np.array_equal(np.where(old >= floor, old, 0), np.where(new >= floor, new, 0)))
    results["loop"] = {"queries": n, "old_ms": old_ms, "new_ms": new_ms, "ratio": old_ms / new_ms,
                       "counts_from_min_inliers_equal": same, "min_inliers": floor}
    print(f"verify loop, {n} queries, K={args.top}: previous (BFMatcher + MAGSAC every pair) {old_ms:.1f} ms, "
          f"now {new_ms:.1f} ms per query (x{old_ms / new_ms:.2f}); counts >= {floor} equal: {same}; "
          f"load {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
