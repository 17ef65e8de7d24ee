"""Latency of the service's re-ranking: ``Recognizer.recognize`` per photo with and without verifying the top K.

One bundle built with ``artid index build ROOT --rerank K`` is loaded once; the same network and
index answer every photo twice in the same run, once globally (``--rerank 0``) and once re-ranked
(K, the bundle's by default), alternating which goes first. The photos are a seeded sample of the
Met-format root's test queries (half photos of exhibits, half distractors), read into memory first
so that only recognition is timed (describe + [SIFT of the photo + verification of K images] +
search). Prints p50 / p95 ms of each and their ratio, the mean time of each stage, and how many
exhibit photos each answered right.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/rerank_latency.py --bundle BUNDLE \\
        --root /tmp/demo_run/benchmark [--photos 100] [--top 50] [--out result.json]

OpenCV runs single-threaded too (``--cv-threads 1``), so the figures are those of one core per
recognition: what ``artid serve --workers 2`` gives each of two concurrent visitors on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np


def _sample(root: Path, n: int, seed: int) -> list:
    """``n`` test queries of a Met-format root: half exhibit photos, half distractors (seeded)."""
    from artid.data.entries import DISTRACTOR
    from artid.service.collection import read_met_queries

    queries = read_met_queries(root, "test")
    rng = random.Random(seed)
    met = [e for e in queries.entries if e.label != DISTRACTOR]
    other = [e for e in queries.entries if e.label == DISTRACTOR]
    picked = rng.sample(met, min(len(met), n // 2)) + rng.sample(other, min(len(other), n - n // 2))
    rng.shuffle(picked)
    return [(queries.image_root / e.path, int(e.label)) for e in picked]


def _pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "mean_ms": round(float(a.mean()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="a bundle built with `artid index build ... --rerank K`")
    parser.add_argument("--root", required=True, help="the Met-format root whose test queries are the photos")
    parser.add_argument("--photos", type=int, default=100, help="photos timed (half exhibits, half distractors)")
    parser.add_argument("--top", type=int, default=None, help="K at run time (default: the bundle's)")
    parser.add_argument("--warmup", type=int, default=3, help="photos answered first, untimed")
    parser.add_argument("--cv-threads", type=int, default=1, help="OpenCV threads (cv2.setNumThreads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    import cv2
    import torch

    from artid.data.images import load_image
    from artid.service.recognizer import Recognizer

    cv2.setNumThreads(args.cv_threads)
    plain = Recognizer.from_bundle(args.bundle, rerank=0)
    reranked = Recognizer(plain.data, plain.embedder, device=plain.device, rerank=args.top)
    assert reranked.reranker is not None, "the bundle has no re-ranking stage: build it with --rerank K"
    # whole photos: the recognizer shrinks them for each use, as extract reads files
    photos = [(load_image(p, max_size=None), label)
              for p, label in _sample(Path(args.root), args.photos, args.seed)]
    for img, _ in photos[:args.warmup]:
        plain.recognize([img])
        reranked.recognize([img])

    times: dict[str, list[float]] = {"global": [], "reranked": []}
    stages: dict[str, list[dict[str, float]]] = {"global": [], "reranked": []}
    right = {"global": 0, "reranked": 0}
    verified = []
    for i, (img, label) in enumerate(photos):
        order = [("global", plain), ("reranked", reranked)]
        for name, rec in (order if i % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            r = rec.recognize([img])[0]
            times[name].append(1000 * (time.perf_counter() - t))
            stages[name].append(r.timing)
            right[name] += int(label >= 0 and r.prediction.artwork.label == label)
            if name == "reranked":
                verified.append(int(r.verified_inliers or 0))
    exhibits = sum(label >= 0 for _, label in photos)
    result = {
        "bundle": str(args.bundle), "photos": len(photos), "exhibit_photos": exhibits,
        "top": reranked.reranker.top, "database_images": plain.data.n_images,
        "torch_threads": torch.get_num_threads(), "cv_threads": cv2.getNumThreads(),
        **{name: {**_pct(ms), "right_exhibits": right[name],
                  "stages_mean_ms": {k: round(float(np.mean([s.get(k, 0.0) for s in stages[name]])), 1)
                                     for k in stages[name][0]}}
           for name, ms in times.items()},
        "verified_photos": int(sum(v > 0 for v in verified)),
    }
    g, r = result["global"], result["reranked"]
    result["ratio"] = {"p50": round(r["p50_ms"] / g["p50_ms"], 2), "p95": round(r["p95_ms"] / g["p95_ms"], 2)}
    print(f"{len(photos)} photos ({exhibits} of exhibits), {result['database_images']} database images, "
          f"torch threads {result['torch_threads']}, OpenCV threads {result['cv_threads']}")
    for name in ("global", "reranked"):
        x = result[name]
        label = "global (--rerank 0)" if name == "global" else f"re-ranked K={result['top']}"
        print(f"  {label:22s} p50 {x['p50_ms']:7.1f} ms  p95 {x['p95_ms']:7.1f} ms  mean {x['mean_ms']:7.1f} ms  "
              f"right {x['right_exhibits']}/{exhibits}  stages {x['stages_mean_ms']}")
    print(f"  ratio re-ranked / global: p50 x{result['ratio']['p50']}, p95 x{result['ratio']['p95']}; "
          f"{result['verified_photos']} photos verified")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
