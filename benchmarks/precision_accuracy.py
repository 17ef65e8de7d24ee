"""Accuracy cost of lower-precision descriptors: test GAP / GAP- / ACC against FP32, paired SE.

Each descriptor folder (``artid extract --root <demo benchmark> --splits database,test
--runtime R --precision P --out DIR``) is scored by the same pipeline: PCA-whitening to --dim fitted
on its own database, then the kNN classifier at a fixed k and tau (default: those the demo's row 4
tunes on validation, k=3, tau=500), so that only the descriptors differ. Differences are against
the first folder (FP32), with the paired bootstrap SE over the same test queries; artid calls one
a change only beyond 3 SE. The descriptors' cosine to FP32 is printed too.

    python benchmarks/precision_accuracy.py --reference runs/desc-fp32 \
        --others runs/desc-bf16 runs/desc-int8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="FP32 descriptor folder")
    ap.add_argument("--others", nargs="+", required=True, help="lower-precision folders")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--tau", type=float, default=500.0)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    folders = [args.reference, *args.others]
    answers, results = {}, {}
    ref = {s: load_descriptors(Path(args.reference) / s) for s in ("database", "test")}
    keys = np.array([e.path for e in ref["test"].entries])
    labels = ref["test"].labels
    for folder in folders:
        d = {s: load_descriptors(Path(folder) / s) for s in ("database", "test")}
        for s in d:
            if [e.path for e in d[s].entries] != [e.path for e in ref[s].entries]:
                raise SystemExit(f"{folder}/{s}: not the reference's images")
        cos = {s: (d[s].matrix * ref[s].matrix).sum(1) for s in d}
        cfg = PipelineConfig(whiten="pcaw", dim=args.dim, k=args.k, tau=args.tau, use_gpu=False)
        pipe = KNNPipeline(cfg).fit(d["database"].matrix, d["database"].labels, progress=False)
        ans = pipe.predict(d["test"].matrix, progress=False)
        answers[folder] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels, keys, args.resamples)
        results[folder] = {
            "test": {m: e.to_json() for m, e in est.items()},
            "cosine_to_reference": {s: {"min": float(c.min()), "mean": float(c.mean())}
                                    for s, c in cos.items()},
        }
        line = "  ".join(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items())
        print(f"{folder}: test {line}  | cosine to reference min "
              f"{min(float(c.min()) for c in cos.values()):.4f} mean "
              f"{float(np.concatenate(list(cos.values())).mean()):.4f}")
        if folder != args.reference:
            diff = ilr_paired(answers[folder], answers[args.reference], labels, keys,
                              args.resamples)
            results[folder]["minus_reference"] = {m: e.to_json() for m, e in diff.items()}
            print("    minus reference (paired): " + "  ".join(
                f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}" for m, e in diff.items()))
    print(f"{len(keys)} test queries, {len(ref['database'].entries)} database images, PCAw "
          f"{args.dim}, k={args.k}, tau={args.tau:g}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
