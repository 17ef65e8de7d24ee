"""Benchmark: what spatial-verification re-ranking and query expansion add to the global kNN answer.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``; entry paths relative
to ``--root``), fits the kNN pipeline as ``artid evaluate`` does (whitening ``auto``, (k, tau) on val)
and answers the test queries with

    global            the kNN pipeline alone
    global, whiten W  the same with each fixed whitening of ``--whitenings`` (default: raw descriptors)
    rerank K          + the re-ranking stage (:mod:`artid.retrieval.rerank`) at each K of ``--ks``,
                      the fusion rule tuned on val
    qe/dba            + alpha query expansion and database-side augmentation, both tuned on val
    qe/dba + rerank K both
    qe Q / dba D      the same with fixed counts, for each ``--expansions Q,D`` (alone and + rerank K)

An expansion + re-ranking row is also paired against re-ranking alone at the same K.

For each row: test GAP / GAP- / ACC with bootstrap SE, the paired difference against global (same
queries), and the time per query of the search and of the verification (database local features
precomputed; their time is printed once). Local features are cached per image under ``--cache``
(resumable). A smaller K reuses the inlier counts of the largest one (its neighbours are a prefix)
and is timed on the first ``--timing-queries`` test queries.

    OMP_NUM_THREADS=1 python benchmarks/rerank.py --descriptors runs/demo/descriptors/ms \\
        --root runs/demo/benchmark --ks 10 50 100 --json runs/rerank.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def expansion_pair(text: str) -> tuple[int, int]:
    """``"QE,DBA"`` -> (qe_n, dba_n), two counts of 0 or more."""
    try:
        qe, dba = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected QE,DBA (two integers), got {text!r}") from None
    if qe < 0 or dba < 0:
        raise argparse.ArgumentTypeError(f"QE and DBA counts must be 0 or more, got {text!r}")
    return qe, dba


def main() -> None:
    import cv2

    from artid.descriptors import load_descriptors
    from artid.extraction.local import FeatureCache
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.knn import Classified
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
    from artid.retrieval.rerank import RerankConfig, Reranker

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test descriptor files")
    ap.add_argument("--root", required=True, help="dataset root the entry paths are relative to")
    ap.add_argument("--cache", default=None, help="local-feature cache (default: <descriptors>/local_features)")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 50, 100], help="verified neighbours K")
    ap.add_argument("--expansion-k", type=int, default=50, help="K of the qe/dba + rerank row (0: no such row)")
    ap.add_argument("--timing-queries", type=int, default=300,
                    help="test queries the smaller K's verification is timed on")
    ap.add_argument("--expansions", nargs="*", default=[], type=expansion_pair, metavar="QE,DBA",
                    help="fixed (qe_n, dba_n) answered beside the tuned expansion, alone and re-ranked")
    ap.add_argument("--whitenings", nargs="*", default=["none"], choices=["none", "pcaw"],
                    help="fixed whitenings answered globally beside the default (auto), paired against it")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    d = {split: load_descriptors(Path(args.descriptors) / split) for split in ("database", "val", "test")}
    paths = {split: [e.path for e in d[split].entries] for split in d}
    labels = {s: d[s].labels for s in ("val", "test")}
    keys = {s: np.array(paths[s]) for s in ("val", "test")}
    cache = FeatureCache(Path(args.cache or Path(args.descriptors) / "local_features"), args.root)
    t0 = time.perf_counter()
    db_feats = cache.fill(paths["database"], "database local features")
    print(f"{len(paths['database'])} database images, {len(paths['val'])} val, {len(paths['test'])} test "
          f"queries; database local features {time.perf_counter() - t0:.0f} s (cached after the first run)")
    feats = {s: (lambda q, s=s: cache.get(paths[s][q])) for s in ("val", "test")}

    def fit(qe: int | None, dba: int | None, whiten: str = "auto") -> tuple[KNNPipeline, float]:
        """The pipeline fitted as evaluate does (None: tuned on val) and its search ms per test query."""
        cfg = PipelineConfig(use_gpu=False, qe_n=qe, dba_n=dba, whiten=whiten)
        pipe = KNNPipeline(cfg).fit(d["database"].matrix, d["database"].labels, d["val"].matrix, labels["val"],
                                    keys["val"])
        t = time.perf_counter()
        pipe.predict(d["test"].matrix, progress=False)
        return pipe, 1000 * (time.perf_counter() - t) / len(paths["test"])

    results: dict = {}
    rows: dict[str, Classified] = {}

    def report(name: str, ans: Classified, extra: dict) -> None:
        rows[name] = ans
        est = ilr_estimates(ans.pred, ans.score, labels["test"], keys["test"], args.resamples)
        entry = {"test": {m: e.to_json() for m, e in est.items()}, **extra}
        line = f"{name:<18s}| " + "  ".join(f"{m} {100 * e.value:5.1f} ± {100 * e.se:.1f}" for m, e in est.items())
        if name != "global":
            diff = ilr_paired((ans.pred, ans.score), (rows["global"].pred, rows["global"].score), labels["test"],
                              keys["test"], args.resamples)
            entry["minus_global"] = {m: e.to_json() for m, e in diff.items()}
            line += " | - global " + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}" for m, e in diff.items())
        plain = name.split(" + ")[-1]  # an expansion + re-ranking row against re-ranking alone
        if " + " in name and plain in rows:
            diff = ilr_paired((ans.pred, ans.score), (rows[plain].pred, rows[plain].score), labels["test"],
                              keys["test"], args.resamples)
            entry["minus_" + plain] = {m: e.to_json() for m, e in diff.items()}
            line += f" | - {plain} " + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}"
                                                for m, e in diff.items())
        results[name] = entry
        print(line + "  | " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in extra.items()), flush=True)

    def reranked(pipe: KNNPipeline, tops: list[int], search_ms: float, prefix: str) -> None:
        """Rows for each K: the largest verified in full, the smaller ones from its counts (a prefix)."""
        clf, k, tau = pipe.classifier, pipe.k, pipe.tau
        assert clf is not None and k is not None and tau is not None
        depth = min(max(k, *tops), clf.size)
        near = {s: pipe.neighbours(d[s].matrix, depth, progress=False) for s in ("val", "test")}
        counts: dict[str, np.ndarray] = {}
        for top in sorted(tops, reverse=True):
            rr = Reranker(RerankConfig(top=top), db_feats.__getitem__, tau)
            if not counts:
                counts = {s: rr.verify(near[s][1], feats[s], progress=True) for s in ("val", "test")}
                verify_ms = rr.ms_per_query or 0.0
            else:  # time K on the first queries, answer every query from the larger K's counts
                rr.verify(near["test"][1][:args.timing_queries], feats["test"])
                verify_ms = rr.ms_per_query or 0.0
            val_counts = counts["val"][:, :top]
            rr.fit(*near["val"], val_counts, clf, k, tau, pipe.config.taus, labels["val"], keys["val"])
            ans = rr.decide(*near["test"], counts["test"][:, :top], clf, k)
            report(f"{prefix}rerank K={top}", ans.classified,
                   {"w": rr.w, "min_inliers": rr.min_inliers, "tau": rr.tau, "search_ms": search_ms,
                    "verify_ms": verify_ms, "median_inliers_top1": float(np.median(ans.counts[:, 0]))})

    pipe, search_ms = fit(0, 0)
    assert pipe.classifier is not None and pipe.k is not None and pipe.tau is not None
    report("global", pipe.predict(d["test"].matrix, progress=False).decision,
           {"k": pipe.k, "tau": pipe.tau, "search_ms": search_ms,
            "projection": pipe.summary()["projection"]})
    for whiten in args.whitenings:
        fixed, fixed_ms = fit(0, 0, whiten)
        report(f"global, whiten {whiten}", fixed.predict(d["test"].matrix, progress=False).decision,
               {"k": fixed.k, "tau": fixed.tau, "search_ms": fixed_ms,
                "projection": fixed.summary()["projection"]})
    reranked(pipe, args.ks, search_ms, "")
    qe_pipe, qe_ms = fit(None, None)
    report("qe/dba", qe_pipe.predict(d["test"].matrix, progress=False).decision,
           {**qe_pipe.expansion.to_json(), "search_ms": qe_ms})
    if args.expansion_k:
        reranked(qe_pipe, [args.expansion_k], qe_ms, "qe/dba + ")
    for qe, dba in args.expansions:
        name = f"qe {qe} / dba {dba}"
        fixed_pipe, fixed_ms = fit(qe, dba)
        report(name, fixed_pipe.predict(d["test"].matrix, progress=False).decision,
               {**fixed_pipe.expansion.to_json(), "k": fixed_pipe.k, "tau": fixed_pipe.tau, "search_ms": fixed_ms})
        if args.expansion_k:
            reranked(fixed_pipe, [args.expansion_k], fixed_ms, f"{name} + ")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
