"""Benchmark: alpha query expansion and database-side augmentation on extracted descriptors.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``), fits the kNN
pipeline four ways, each tuned on validation as ``artid evaluate`` does (whitening ``auto``,
(k, tau) grid), and reports test GAP / GAP- / ACC with bootstrap SEs over queries, and each
variant's paired difference from global-only:

1. global only (no expansion);
2. + alpha-QE (``qe_n`` tuned, or fixed with ``--n``, on validation over ``N_GRID``, alpha ``--alpha``);
3. + DBA (``dba_n`` tuned likewise);
4. + both (``qe_n`` and ``dba_n`` tuned jointly).

    python benchmarks/expansion.py --descriptors /tmp/demo_run/descriptors/ms
    python benchmarks/expansion.py --descriptors /tmp/demo_run/descriptors/ms --n 2   # fixed n, not tuned
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def variants(n: int | None) -> dict[str, dict]:
    """The four fits; n None = the neighbour counts tuned on validation, else fixed at n."""
    return {"global": {}, "+QE": {"qe_n": n}, "+DBA": {"dba_n": n}, "+QE+DBA": {"qe_n": n, "dba_n": n}}


def main() -> None:
    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test descriptor files")
    ap.add_argument("--alpha", type=float, default=3.0, help="the weight exponent of QE and DBA")
    ap.add_argument("--n", type=int, help="fixed qe_n / dba_n (default: tuned on validation)")
    ap.add_argument("--whiten", default="auto", choices=("none", "pcaw", "auto"))
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    d = {split: load_descriptors(Path(args.descriptors) / split) for split in ("database", "val", "test")}
    val_keys = np.array([e.path for e in d["val"].entries])
    labels, keys = d["test"].labels, np.array([e.path for e in d["test"].entries])
    print(f"{args.descriptors}: {len(d['database'].entries)} database images, {len(val_keys)} val, "
          f"{len(keys)} test queries; alpha {args.alpha}")
    answers, results = {}, {}
    variant = variants(args.n)
    for name, opts in variant.items():
        t0 = time.perf_counter()
        cfg = PipelineConfig(whiten=args.whiten, use_gpu=False, qe_alpha=args.alpha, dba_alpha=args.alpha, **opts)
        pipe = KNNPipeline(cfg).fit(d["database"].matrix, d["database"].labels, d["val"].matrix,
                                    d["val"].labels, val_keys)
        ans = pipe.predict(d["test"].matrix, progress=False)
        answers[name] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels, keys, args.resamples)
        exp = pipe.expansion
        val_gap = pipe.tuned.best_gap if pipe.tuned is not None else None
        results[name] = {"qe_n": exp.qe_n, "dba_n": exp.dba_n, "k": pipe.k, "tau": pipe.tau, "val_gap": val_gap,
                         "projection": pipe.projection.summary() if pipe.projection else None,
                         "test": {m: e.to_json() for m, e in est.items()},
                         "seconds": time.perf_counter() - t0}
        print(f"{name:8s} qe_n {exp.qe_n} dba_n {exp.dba_n} k {pipe.k} tau {pipe.tau:g} val GAP "
              f"{100 * (val_gap or 0):.1f} | test " + "  ".join(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}"
                                                                for m, e in est.items()))
    for name in list(variant)[1:]:
        diff = ilr_paired(answers[name], answers["global"], labels, keys, args.resamples)
        results[name]["minus_global"] = {m: e.to_json() for m, e in diff.items()}
        print(f"{name} - global (paired): " + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}"
                                                        for m, e in diff.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
