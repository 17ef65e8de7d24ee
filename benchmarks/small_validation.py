"""Benchmark: what ``--whiten auto`` chooses on a small validation set, against fixed settings.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``), draws
validation subsets of ``--sizes`` Met queries (with the val split's share of distractors),
``--seeds`` draws each, and fits the kNN pipeline on each subset with every fixed whitening
that ``auto`` tries (PCAw at the supported dimension, at half of it, raw descriptors; plus PCAw
with ``--shrinkage``, not one of auto's), (k, tau) tuned on the same subset. Each selection rule
then picks one of auto's settings from their validation answers:

    best val     today's rule: the highest val GAP (ties to the earlier setting)
    margin z     artid.retrieval.choosing.margin_choice: keep the default (PCAw) unless an
                 alternative wins on val by more than z paired-bootstrap SEs

and is scored by the test GAP of the setting it picked. Per size: each setting's and rule's mean
test GAP over the draws, the rule's mean difference from the best fixed setting (the one with
the highest mean test GAP at that size) with the mean paired SE (bootstrap over test queries,
same queries), and how often it kept the default.

    OMP_NUM_THREADS=1 python benchmarks/small_validation.py --descriptors runs/real/lite0 \\
        --sizes 10 20 50 150 --seeds 10 --json runs/real/small_validation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import paired_difference
    from artid.metrics.ilr import gap
    from artid.retrieval.choosing import margin_choice
    from artid.retrieval.config import PipelineConfig, whitening_candidates
    from artid.retrieval.pipeline import KNNPipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test files")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 150])
    ap.add_argument("--seeds", type=int, default=10, help="validation draws per size")
    ap.add_argument("--margins", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--shrinkage", type=float, default=0.5, help="of the extra PCAw row")
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    d = {s: load_descriptors(Path(args.descriptors) / s) for s in ("database", "val", "test")}
    db, val, test = d["database"], d["val"], d["test"]
    vkeys = np.array([e.path for e in val.entries])
    tkeys = np.array([e.path for e in test.entries])
    tlabels = np.asarray(test.labels)
    vlabels = np.asarray(val.labels)
    met, dis = np.flatnonzero(vlabels != -1), np.flatnonzero(vlabels == -1)
    ratio = len(dis) / max(1, len(met))
    auto = whitening_candidates(PipelineConfig(), [db.matrix])
    settings = {
        (f"PCAw {c.dim}" if c.whiten else "raw"): PipelineConfig(
            whiten="pcaw" if c.whiten else "none", dim=max(c.dim, 1), use_gpu=False
        )
        for c in auto
    }
    auto_names = list(settings)
    settings[f"PCAw {auto[0].dim} shrink {args.shrinkage:g}"] = PipelineConfig(
        whiten="pcaw", dim=auto[0].dim, shrinkage=args.shrinkage, use_gpu=False
    )
    rules = {"best val": 0.0} | {f"margin {z:g}": z for z in args.margins}
    print(
        f"{len(db.entries)} database images, val {len(met)} Met + {len(dis)} distractors, "
        f"test {int((tlabels != -1).sum())} Met + {int((tlabels == -1).sum())} distractors"
    )

    def tstat(a: tuple[np.ndarray, np.ndarray]):  # noqa: ANN202
        return lambda ix: gap(a[0][ix], a[1][ix], tlabels[ix], tkeys[ix])

    results: dict = {}
    for n in args.sizes:
        runs = []
        for seed in range(args.seeds if n < len(met) else 1):
            rng = np.random.default_rng([n, seed])
            pick = rng.choice(met, size=min(n, len(met)), replace=False)
            pick_d = rng.choice(dis, size=min(len(dis), int(round(ratio * n))), replace=False)
            sub = np.sort(np.concatenate([pick, pick_d]))
            out: dict = {"val": {}, "test": {}}
            for name, cfg in settings.items():
                pipe = KNNPipeline(cfg).fit(
                    db.matrix, db.labels, val.matrix[sub], vlabels[sub], vkeys[sub], progress=False
                )
                va, ta = pipe.val_answer, pipe.predict(test.matrix, progress=False)
                assert va is not None
                out["val"][name] = (va.pred, va.score)
                out["test"][name] = (ta.pred, ta.score)
            out["gap"] = {k: tstat(a)(np.arange(len(tlabels))) for k, a in out["test"].items()}
            answers = [out["val"][k] for k in auto_names]
            out["choice"] = {
                r: auto_names[margin_choice(answers, vlabels[sub], vkeys[sub], z)[0]]
                for r, z in rules.items()
            }
            runs.append(out)
        mean = {k: float(np.mean([r["gap"][k] for r in runs])) for k in settings}
        best = max(auto_names, key=lambda k: mean[k])
        row: dict = {"draws": len(runs), "fixed": mean, "best_fixed": best, "rules": {}}
        for r in rules:
            diffs = [
                paired_difference(
                    tstat(o["test"][o["choice"][r]]), tstat(o["test"][best]), len(tlabels),
                    args.resamples, 0,
                )
                for o in runs
            ]
            row["rules"][r] = {
                "test_gap": float(np.mean([o["gap"][o["choice"][r]] for o in runs])),
                "diff": float(np.mean([x.value for x in diffs])),
                "paired_se": float(np.mean([x.se for x in diffs])),
                "kept_default": float(np.mean([o["choice"][r] == auto_names[0] for o in runs])),
            }
        results[n] = row
        print(f"\nval {n} Met queries ({len(runs)} draws); test GAP %, mean over draws")
        for k, v in mean.items():
            print(f"  fixed {k:24s} {100 * v:5.1f}{'  <- best fixed' if k == best else ''}")
        for r, v in row["rules"].items():
            print(
                f"  rule  {r:24s} {100 * v['test_gap']:5.1f}  vs best fixed "
                f"{100 * v['diff']:+5.1f} (paired SE {100 * v['paired_se']:.1f})  "
                f"kept PCAw {100 * v['kept_default']:.0f}%"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
