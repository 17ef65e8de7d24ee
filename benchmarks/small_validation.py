"""Benchmark: the choices made on a small validation set, against the best fixed setting.

On a descriptor folder written by ``artid extract`` (``database``, ``val``, ``test``), draws
validation subsets of ``--sizes`` Met queries (with the val split's share of distractors),
``--seeds`` draws each. Each choice the pipeline makes on validation is a family of fixed settings
(``small_validation_settings``): the whitening (``--whiten auto``'s candidates, and the regularised
PCAw with shrinkage and with the Ledoit-Wolf covariance as fixed settings beside them), QE / DBA
(``--qe auto --dba auto``) and, with ``--images``, the re-ranking rule at K = ``--rerank``. Every
setting is fitted on each draw ((k, tau) tuned on it) and answers the test queries; each selection
rule then picks one of the family's candidates from their validation answers:

    best val     the old rule: the highest val GAP (ties to the earlier setting)
    margin z     artid.retrieval.choosing: keep the default (the first candidate) unless an
                 alternative wins on val by more than z paired-bootstrap SEs (artid uses 2)

and is scored by the test GAP of what it picked. Per size and family: each setting's mean test GAP
over the draws, each rule's mean difference from the best fixed setting (the candidate with the
highest mean test GAP at that size) with the mean paired SE (bootstrap over the test queries, the
same queries), how often it kept the default, and its paired difference from the best-val rule;
a size at least the val split's Met queries is one draw of the whole split. The fixed settings
outside the candidates are given against the default the same way. The JSON is written after each size, and a rerun with the same
settings resumes from it.

    OMP_NUM_THREADS=1 python benchmarks/small_validation.py --descriptors runs/real/lite0-ss \\
        --images runs/real/benchmark --sizes 10 20 50 150 --seeds 10 \\
        --json runs/real/small_validation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:  # noqa: PLR0915
    from small_validation_settings import (
        Draw,
        expansion_settings,
        family,
        fit_answers,
        whitening_spaces,
    )

    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import paired_difference
    from artid.metrics.ilr import gap
    from artid.retrieval.choosing import pick

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test files")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 150])
    ap.add_argument("--seeds", type=int, default=10, help="validation draws per size")
    ap.add_argument("--margins", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--dim", type=int, default=512, help="the whitening dimension asked for")
    ap.add_argument("--shrinkage", type=float, default=0.5, help="of the shrunk PCAw setting")
    ap.add_argument("--images", type=Path, help="the images root: measure the re-ranking rule too")
    ap.add_argument("--rerank", type=int, default=10, help="K of the re-ranking family")
    ap.add_argument(
        "--local-features", type=Path, help="feature cache (default <descriptors>/local_features)"
    )
    ap.add_argument("--no-expansion", action="store_true", help="skip the QE / DBA family")
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--json", type=Path, help="write the results here (and resume from them)")
    args = ap.parse_args()

    d = {s: load_descriptors(Path(args.descriptors) / s) for s in ("database", "val", "test")}
    db, val, test = d["database"], d["val"], d["test"]
    vkeys = np.array([e.path for e in val.entries])
    tkeys = np.array([e.path for e in test.entries])
    tlabels, vlabels, db_labels = (np.asarray(x.labels) for x in (test, val, db))
    met, dis = np.flatnonzero(vlabels != -1), np.flatnonzero(vlabels == -1)
    ratio = len(dis) / max(1, len(met))
    print(
        f"{len(db.entries)} database images, val {len(met)} Met + {len(dis)} distractors, "
        f"test {int((tlabels != -1).sum())} Met + {int((tlabels == -1).sum())} distractors"
    )
    t0 = time.perf_counter()
    spaces, auto_names, notes = whitening_spaces(
        db.matrix, val.matrix, test.matrix, args.dim, args.shrinkage
    )
    default_space = spaces[auto_names[0]]
    print(f"whitenings fitted in {time.perf_counter() - t0:.1f} s; {notes}")
    verified = None
    if args.images is not None:
        from small_validation_fusion import fusion_family, verified_splits

        cache = args.local_features or Path(args.descriptors) / "local_features"
        t0 = time.perf_counter()
        *verified, record = verified_splits(
            default_space, db, val, test, args.images, cache, args.rerank
        )
        notes["rerank"] = {"top": args.rerank, "seconds": time.perf_counter() - t0, **record}
        print(f"re-ranking K={args.rerank}: counts in {notes['rerank']['seconds']:.0f} s")
    rules = {"best val": 0.0} | {f"margin {z:g}": z for z in args.margins}
    settings = {k: str(v) for k, v in vars(args).items() if k not in ("sizes", "json")}
    results: dict = {"settings": settings, "notes": notes, "sizes": {}}
    if args.json is not None and args.json.exists():
        old = json.loads(args.json.read_text())
        if old.get("settings") == settings:
            results["sizes"] = old.get("sizes", {})
            print(f"resuming: sizes {', '.join(results['sizes'])} already in {args.json}")

    def tstat(a: tuple[np.ndarray, np.ndarray]):  # noqa: ANN202
        return lambda ix: gap(a[0][ix], a[1][ix], tlabels[ix], tkeys[ix])

    def tgap(a: tuple[np.ndarray, np.ndarray]) -> float:
        return float(gap(a[0], a[1], tlabels, tkeys))

    def paired(a, b) -> tuple[float, float]:  # noqa: ANN001
        if a is b:
            return 0.0, 0.0
        e = paired_difference(tstat(a), tstat(b), len(tlabels), args.resamples, 0)
        return e.value, e.se

    for n in args.sizes:
        if str(n) in results["sizes"]:
            continue
        t0 = time.perf_counter()
        draws: dict[str, list] = {"whitening": [], "expansion": [], "fusion": []}
        for seed in range(args.seeds if n < len(met) else 1):
            rng = np.random.default_rng([n, seed])
            pick_m = rng.choice(met, size=min(n, len(met)), replace=False)
            pick_d = rng.choice(dis, size=min(len(dis), int(round(ratio * n))), replace=False)
            rows = np.sort(np.concatenate([pick_m, pick_d]))
            draw = Draw(rows, vlabels[rows], vkeys[rows])
            fits = {k: fit_answers(s, db_labels, draw) for k, s in spaces.items()}
            ans = {k: f[:2] for k, f in fits.items()}
            draws["whitening"].append(family(ans, auto_names, draw, args.resamples))
            if not args.no_expansion:
                ex = {}
                for dba_n, qe_n in expansion_settings():
                    name = f"dba {dba_n}, qe {qe_n}"
                    ex[name] = ans[auto_names[0]] if dba_n == qe_n == 0 else fit_answers(
                        default_space, db_labels, draw, dba_n=dba_n, qe_n=qe_n
                    )[:2]
                draws["expansion"].append(family(ex, list(ex), draw, args.resamples))
            if verified is not None:
                pipe = fits[auto_names[0]][2]
                assert pipe.k is not None
                draws["fusion"].append(
                    fusion_family(*verified, db_labels, draw, pipe.k, pipe.n_classes)
                )
            print(f"  size {n} draw {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        row: dict = {}
        for fam, runs in draws.items():
            if not runs:
                continue
            names, cands = list(runs[0].test), runs[0].candidates
            mean = {k: float(np.mean([tgap(r.test[k]) for r in runs])) for k in names}
            best = max(cands, key=lambda k: mean[k])
            out: dict = {"draws": len(runs), "fixed": mean, "best_fixed": best, "rules": {}}
            old_rule = [o.candidates[pick(o.gaps, o.z, 0.0)] for o in runs]
            for r, z in rules.items():
                chosen = [o.candidates[pick(o.gaps, o.z, z)] for o in runs]
                diffs = [paired(o.test[c], o.test[best]) for o, c in zip(runs, chosen)]
                to_old = [paired(o.test[c], o.test[b]) for o, c, b in zip(runs, chosen, old_rule)]
                out["rules"][r] = {
                    "minus_best_val": float(np.mean([x[0] for x in to_old])),
                    "minus_best_val_se": float(np.mean([x[1] for x in to_old])),
                    "test_gap": float(np.mean([tgap(o.test[c]) for o, c in zip(runs, chosen)])),
                    "diff": float(np.mean([x[0] for x in diffs])),
                    "paired_se": float(np.mean([x[1] for x in diffs])),
                    "kept_default": float(np.mean([c == cands[0] for c in chosen])),
                    "chosen": {c: chosen.count(c) for c in sorted(set(chosen))},
                }
            out["others"] = {}
            for k in names:
                if k not in cands:
                    diffs = [paired(o.test[k], o.test[cands[0]]) for o in runs]
                    out["others"][k] = {
                        "diff_from_default": float(np.mean([x[0] for x in diffs])),
                        "paired_se": float(np.mean([x[1] for x in diffs])),
                    }
            row[fam] = out
            report(fam, n, out, cands[0])
        row["seconds"] = time.perf_counter() - t0
        results["sizes"][str(n)] = row
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1))


def report(fam: str, n: int, out: dict, default: str) -> None:
    """Print one family's table at one size."""
    print(f"\n{fam}: val {n} Met queries ({out['draws']} draws); test GAP %, mean over draws")
    shown = sorted(out["fixed"].items(), key=lambda kv: -kv[1])[:8]
    for k, v in shown:
        tag = "  (default)" if k == default else ""
        tag = "  <- best fixed" if k == out["best_fixed"] else tag
        print(f"  fixed {k:28s} {100 * v:5.1f}{tag}")
    for k, v in out["others"].items():
        print(f"  other {k:28s} vs default {100 * v['diff_from_default']:+5.1f} "
              f"(paired SE {100 * v['paired_se']:.1f})")
    for r, v in out["rules"].items():
        print(
            f"  rule  {r:28s} {100 * v['test_gap']:5.1f}  vs best fixed "
            f"{100 * v['diff']:+5.1f} (paired SE {100 * v['paired_se']:.1f})  "
            f"kept default {100 * v['kept_default']:.0f}%  vs best val "
            f"{100 * v['minus_best_val']:+5.1f} (paired SE {100 * v['minus_best_val_se']:.1f})"
        )


if __name__ == "__main__":
    main()
