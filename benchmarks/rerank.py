"""Benchmark: spatial verification re-ranking (SIFT + MAGSAC homography) of the global kNN answers.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``; entry paths relative
to ``--root``), fits the kNN pipeline as ``artid evaluate`` does (whitening ``auto``, (k, tau) on
validation), verifies each query's top K database images (:mod:`artid.retrieval.verification`), tunes
the fusion rule (w, min_inliers, tau) on validation GAP, and reports test GAP / GAP- / ACC with bootstrap
SEs for global only and for each K, the paired difference, and the verification time per query.

Local features are cached per image under ``--cache`` (resumable), and so are the inlier counts per
split and K; a K reuses the counts of a larger K already computed.

    OMP_NUM_THREADS=1 python benchmarks/rerank.py --descriptors /tmp/demo_run/descriptors/ss \\
        --root /tmp/demo_run/benchmark --ks 10 50
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import cv2

    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
    from artid.retrieval.verification import FeatureCache, fuse, tune_fusion, verify

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test descriptor files")
    ap.add_argument("--root", required=True, help="dataset root the entry paths are relative to")
    ap.add_argument("--cache", default=None, help="local-feature cache (default: <descriptors>/local_features)")
    ap.add_argument("--ks", type=int, nargs="+", default=[10], help="verified neighbours K")
    ap.add_argument("--whiten", default="auto", choices=("none", "pcaw", "auto"))
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    d = {split: load_descriptors(Path(args.descriptors) / split) for split in ("database", "val", "test")}
    paths = {split: [e.path for e in d[split].entries] for split in d}
    cache_dir = Path(args.cache or Path(args.descriptors) / "local_features")
    cache = FeatureCache(cache_dir, args.root)
    pipe = KNNPipeline(PipelineConfig(whiten=args.whiten, use_gpu=False)).fit(
        d["database"].matrix, d["database"].labels, d["val"].matrix, d["val"].labels, np.array(paths["val"]))
    assert pipe.classifier is not None and pipe.k is not None and pipe.tau is not None
    clf, k = pipe.classifier, pipe.k
    db_labels = clf.labels
    print(f"{len(paths['database'])} database images, {len(paths['val'])} val, {len(paths['test'])} test; "
          f"global k={k} tau={pipe.tau:g}")

    t0 = time.perf_counter()
    db_feats = [cache.get(p) for p in paths["database"]]
    db_seconds = time.perf_counter() - t0
    print(f"database local features: {db_seconds:.0f} s (cached after the first run)")

    kmax = max(args.ks)
    neigh = {s: pipe.neighbours(d[s].matrix, max(k, kmax), progress=False) for s in ("val", "test")}
    keys = {s: np.array(paths[s]) for s in ("val", "test")}
    labels = {s: d[s].labels for s in ("val", "test")}

    def inliers_for(split: str, top: int) -> tuple[np.ndarray, float | None]:
        for have in sorted({top, *args.ks}, reverse=True):
            f = cache_dir / f"inliers_{split}_K{have}.npy"
            if have >= top and f.exists():
                return np.load(f)[:, :top], None
        t = time.perf_counter()
        counts = verify(lambda q: cache.get(paths[split][q]), lambda r: db_feats[r], neigh[split][1], top)
        ms = 1000 * (time.perf_counter() - t) / len(paths[split])
        np.save(cache_dir / f"inliers_{split}_K{top}.npy", counts)
        return counts, ms

    glob = clf.classify(*neigh["test"], k, pipe.tau)
    est = ilr_estimates(glob.pred, glob.score, labels["test"], keys["test"], args.resamples)
    fmt = "  ".join
    print("global     | test " + fmt(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()))
    results: dict = {"k": k, "tau": pipe.tau, "database_feature_seconds": db_seconds,
                     "global": {m: e.to_json() for m, e in est.items()}}
    for top in sorted(args.ks, reverse=True):
        val_in, val_ms = inliers_for("val", top)
        test_in, test_ms = inliers_for("test", top)
        choice = tune_fusion(*neigh["val"], db_labels, val_in, labels["val"], k, clf.n_classes,
                             pipe.config.taus, keys["val"])
        ans = fuse(*neigh["test"], db_labels, test_in, k, choice.tau, clf.n_classes, choice.w, choice.min_inliers)
        est = ilr_estimates(ans.pred, ans.score, labels["test"], keys["test"], args.resamples)
        diff = ilr_paired((ans.pred, ans.score), (glob.pred, glob.score), labels["test"], keys["test"],
                          args.resamples)
        med = np.median(test_in, axis=0)
        results[f"K{top}"] = {"choice": vars(choice), "ms_per_query_test": test_ms, "ms_per_query_val": val_ms,
                              "test": {m: e.to_json() for m, e in est.items()},
                              "minus_global": {m: e.to_json() for m, e in diff.items()}}
        ms = "cached" if test_ms is None else f"{test_ms:.0f} ms/query"
        print(f"K={top:<3d} w={choice.w:g} min_inliers={choice.min_inliers} tau={choice.tau:g} val GAP "
              f"{100 * choice.val_gap:.1f} ({ms}; median inliers top-1 {med[0]:.0f}) | test "
              + fmt(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()))
        print(f"K={top:<3d} - global (paired): " + fmt(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}"
                                                      for m, e in diff.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
