"""Which global descriptor of a ViT: the class token, GeM over the patch tokens, or both?

For one ViT backbone (a timm ViT or ``openclip:<model>``) and its local weights, extracts the
database, val and test descriptors of a Met-format benchmark once per pooling (``@cls``, ``@gem``,
``@cls+gem``) exactly as ``artid extract`` does (same function, resumable), then fits the kNN
pipeline as ``artid evaluate`` does (whitening auto, k and tau tuned on val by GAP) and prints each
pooling's test GAP / GAP- / ACC with its bootstrap SE over test queries, and the paired
difference of every pair (same queries; artid calls a difference a gain only beyond 3 paired SE):

    python benchmarks/vit_pooling.py --root runs/demo/benchmark --out runs/vit-pooling \\
        --model vit_small_patch14_dinov2.lvd142m --weights ~/weights/dinov2_small.safetensors

``--model random:<name>`` runs it without weights (a smoke test of the script; its numbers say
nothing about the poolings). The summary goes to ``<out>/vit_pooling.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

POOLINGS = ("cls", "gem", "cls+gem")


def main(argv: list[str] | None = None) -> None:
    from artid.descriptors import load_descriptors
    from artid.extraction import ExtractionSettings, extract_lists, met_sources
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.models import MULTI_SCALE, SINGLE_SCALE, build_embedder
    from artid.models.vit import split_pooling
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="Met-format benchmark root (artid synth, runs/demo/benchmark)")
    ap.add_argument("--out", required=True, help="folder for the descriptors (<out>/<pooling>/) and the summary")
    ap.add_argument("--model", required=True, help="ViT backbone name without pooling suffix")
    ap.add_argument("--weights", help="local weights file of --model")
    ap.add_argument("--poolings", default=",".join(POOLINGS), help="comma list of cls, gem, cls+gem")
    ap.add_argument("--scales", choices=("ss", "ms"), default="ss", help="single- or multi-scale descriptors")
    ap.add_argument("--max-size", type=int, default=500, help="longer image side (artid extract's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = ap.parse_args(argv)

    base, suffix = split_pooling(args.model)
    if suffix is not None:
        ap.error("--model takes the backbone without its @pooling suffix; --poolings chooses them")
    poolings = [p.strip() for p in args.poolings.split(",") if p.strip()]
    settings = ExtractionSettings(scales=SINGLE_SCALE if args.scales == "ss" else MULTI_SCALE,
                                  max_size=args.max_size or None, batch_size=args.batch_size, workers=0)
    out = Path(args.out)
    seed_state = None
    answers, summary = {}, {"model": base, "weights": args.weights, "scales": args.scales,
                            "max_size": args.max_size, "poolings": {}}
    labels = keys = None
    for pooling in poolings:
        import torch

        if base.startswith("random:"):  # the same random weights for every pooling
            if seed_state is None:
                seed_state = torch.random.get_rng_state()
            torch.random.set_rng_state(seed_state)
        emb = build_embedder(f"{base}@{pooling}", weights=args.weights)
        t0 = time.perf_counter()
        extract_lists(met_sources(args.root, ["database", "val", "test"]), emb, out / pooling, settings, args.device)
        d = {s: load_descriptors(out / pooling / s) for s in ("database", "val", "test")}
        pipe = KNNPipeline(PipelineConfig(use_gpu=False)).fit(
            d["database"].matrix, d["database"].labels, d["val"].matrix, d["val"].labels,
            np.array([e.path for e in d["val"].entries]))
        ans = pipe.predict(d["test"].matrix, progress=False)
        t_labels, t_keys = d["test"].labels, np.array([e.path for e in d["test"].entries])
        if labels is not None and (not np.array_equal(labels, t_labels) or not np.array_equal(keys, t_keys)):
            raise SystemExit(f"{pooling}: its test queries differ from {poolings[0]}'s (unreadable images?)")
        labels, keys = t_labels, t_keys
        answers[pooling] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels, keys, args.resamples)
        summary["poolings"][pooling] = {"dim": emb.dim, "k": pipe.k, "tau": pipe.tau,
                                        "seconds": round(time.perf_counter() - t0, 1),
                                        **{m: e.to_json() for m, e in est.items()}}
        print(f"@{pooling:8s} D={emb.dim:5d} k={pipe.k} tau={pipe.tau}  "
              + "  ".join(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()), flush=True)
    assert labels is not None
    summary["paired"] = {}
    for a, b in itertools.combinations(poolings, 2):
        diff = ilr_paired(answers[a], answers[b], labels, keys, args.resamples)
        summary["paired"][f"{a} - {b}"] = {m: e.to_json() for m, e in diff.items()}
        print(f"@{a} - @{b} (paired): " + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}"
                                                   for m, e in diff.items()))
    (out / "vit_pooling.json").write_text(json.dumps(summary, indent=1))
    print(f"summary: {out / 'vit_pooling.json'}")


if __name__ == "__main__":
    main()
