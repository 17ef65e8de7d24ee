"""Latency of the service's re-ranking: ``Recognizer.recognize`` per photo without re-ranking, with the
previous verify loop and with the current one, in one run.

One bundle built with ``artid index build ROOT --rerank K`` is loaded once; the same network and
index answer every photo in each variant of the same run, rotating which goes first:

    global             ``--rerank 0``
    re-ranked, before  the verify loop as it was: OpenCV's brute-force matcher and MAGSAC on every one
                       of the K pairs (``count_inliers``)
    re-ranked          the current loop (one matrix product per neighbour, no MAGSAC for a neighbour
                       with fewer ratio-test matches than the rule's min_inliers)
    re-ranked, q<=N    the current loop with the photo's keypoints cut to the strongest N
                       (``--query-keypoints N``)

The photos are a seeded sample of the Met-format root's test queries (half photos of exhibits, half
distractors), read into memory first so that only recognition is timed (describe + [SIFT of the photo +
verification of K images] + search). Prints p50 / p95 ms of each and the ratio to global, where a
re-ranked photo's time goes (photo SIFT, matching, MAGSAC, the rest), the keypoints of the slowest 5%
of photos, how many exhibit photos each answered right and whether the re-ranked answers equal the
previous loop's (they must: same matches, same inliers from min_inliers up).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/rerank_latency.py --bundle BUNDLE \\
        --root /tmp/demo_run/benchmark [--photos 100] [--top 50] [--query-keypoints 250] [--out r.json]

OpenCV runs single-threaded too (``--cv-threads 1``), so the figures are those of one core per
recognition: what ``artid serve --workers 2`` gives each of two concurrent visitors on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def sample_queries(root: Path, n: int, seed: int) -> list:
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


def _previous_verify(idx, queries, database, top, progress=False, min_inliers=4, timing=None):
    """The verify loop before the batched matcher: ``count_inliers`` (BFMatcher + MAGSAC) per pair."""
    from artid.retrieval.verification import count_inliers

    top = min(top, idx.shape[1])
    out = np.zeros((idx.shape[0], top), dtype=np.int64)
    t = time.perf_counter()
    for q in range(idx.shape[0]):
        fq = queries(q)
        for j in range(top):
            out[q, j] = count_inliers(fq, database(int(idx[q, j])))
    if timing is not None:
        timing.matching += 1000 * (time.perf_counter() - t)  # matching and MAGSAC together
    return out, 1000 * (time.perf_counter() - t) / max(idx.shape[0], 1)


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU"
    model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    return f"{model} ({' '.join(isa)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="a bundle built with `artid index build ... --rerank K`")
    parser.add_argument("--root", required=True, help="the Met-format root whose test queries are the photos")
    parser.add_argument("--photos", type=int, default=100, help="photos timed (half exhibits, half distractors)")
    parser.add_argument("--top", type=int, default=None, help="K at run time (default: the bundle's)")
    parser.add_argument("--query-keypoints", type=int, default=None,
                        help="also time the current loop with the photo's keypoints cut to this many")
    parser.add_argument("--warmup", type=int, default=3, help="photos answered first, untimed")
    parser.add_argument("--cv-threads", type=int, default=1, help="OpenCV threads (cv2.setNumThreads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    import cv2
    import torch

    from artid.data.images import load_image
    from artid.retrieval import rerank as rerank_module
    from artid.retrieval.verification import VerifyTiming
    from artid.service.recognizer import Recognizer

    cv2.setNumThreads(args.cv_threads)
    plain = Recognizer.from_bundle(args.bundle, rerank=0)
    variants: dict[str, Recognizer] = {"global": plain}
    def own_stage() -> Recognizer:
        """A re-ranking recognizer with its own copy of the stage (the variants patch theirs)."""
        rec = Recognizer(plain.data, plain.embedder, device=plain.device, rerank=args.top)
        assert rec.reranker is not None, "the bundle has no re-ranking stage: build it with --rerank K"
        rec.pipeline = copy.copy(rec.pipeline)
        rec.pipeline.reranker = rec.reranker = copy.copy(rec.reranker)
        return rec

    variants["before"], variants["now"] = own_stage(), own_stage()
    if args.query_keypoints:
        rec = own_stage()
        assert rec.reranker is not None
        rec.reranker.config = replace(rec.reranker.config, max_keypoints=args.query_keypoints)
        variants[f"q<={args.query_keypoints}"] = rec
    timings = {name: VerifyTiming() for name in variants}
    real_verify = rerank_module.verify

    def answer(name: str, img):
        rec = variants[name]
        if rec.reranker is not None:
            rr, vt = rec.reranker, timings[name]
            loop = _previous_verify if name == "before" else real_verify
            rr.verify = (lambda idx, f, progress=False, rr=rr, vt=vt, loop=loop:  # type: ignore[method-assign]
                         _timed(rr, loop, idx, f, vt))
        return rec.recognize([img])[0]

    # whole photos: the recognizer shrinks them for each use, as extract reads files
    photos = [(load_image(p, max_size=None), label)
              for p, label in sample_queries(Path(args.root), args.photos, args.seed)]
    for img, _ in photos[:args.warmup]:
        for name in variants:
            answer(name, img)
    for vt in timings.values():
        vt.__init__()  # type: ignore[misc]

    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    split: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    stages: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    right = dict.fromkeys(names, 0)
    answers: dict[str, list] = {n: [] for n in names}
    keypoints = []
    for i, (img, label) in enumerate(photos):
        for name in names[i % len(names):] + names[:i % len(names)]:
            vt = timings[name]
            before = (vt.matching, vt.magsac)
            t = time.perf_counter()
            r = answer(name, img)
            times[name].append(1000 * (time.perf_counter() - t))
            split[name].append((vt.matching - before[0], vt.magsac - before[1]))
            stages[name].append(r.timing)
            right[name] += int(label >= 0 and r.prediction.artwork.label == label)
            answers[name].append((r.prediction.artwork.label, round(float(r.score), 6), r.verified_inliers))
        feats = variants["now"].local_features([img])
        keypoints.append(len(feats[0]) if feats else 0)
    exhibits = sum(label >= 0 for _, label in photos)
    result: dict = {
        "bundle": str(args.bundle), "photos": len(photos), "exhibit_photos": exhibits,
        "top": variants["now"].reranker.top, "database_images": plain.data.n_images,  # type: ignore[union-attr]
        "torch_threads": torch.get_num_threads(), "cv_threads": cv2.getNumThreads(), "cpu": _cpu(),
        "load_1min": os.getloadavg()[0],
    }
    slow = np.argsort(times["now"])[-max(1, len(photos) // 20):]
    for name in names:
        st = stages[name]
        entry = {**_pct(times[name]), "right_exhibits": right[name],
                 "stages_mean_ms": {k: round(float(np.mean([s.get(k, 0.0) for s in st])), 1) for k in st[0]}}
        if name != "global":
            m = np.array(split[name])
            entry["verify_split_mean_ms"] = {"matching": round(float(m[:, 0].mean()), 1),
                                             "magsac": round(float(m[:, 1].mean()), 1)}
            entry["same_answers_as_before"] = answers[name] == answers["before"]
        result[name] = entry
    result["slowest_5pct_keypoints"] = [keypoints[i] for i in slow]
    result["median_keypoints"] = float(np.median(keypoints))
    g = result["global"]
    print(f"{len(photos)} photos ({exhibits} of exhibits), {result['database_images']} database images, "
          f"K={result['top']}, torch threads {result['torch_threads']}, OpenCV threads {result['cv_threads']}; "
          f"{result['cpu']}; load {result['load_1min']:.1f}")
    for name in names:
        x = result[name]
        label = {"global": "global (--rerank 0)", "before": "re-ranked, before", "now": "re-ranked"}.get(
            name, f"re-ranked, {name}")
        extra = ""
        if name != "global":
            extra = (f"  matching {x['verify_split_mean_ms']['matching']:5.1f}  MAGSAC "
                     f"{x['verify_split_mean_ms']['magsac']:5.1f} ms  same answers {x['same_answers_as_before']}")
        print(f"  {label:22s} p50 {x['p50_ms']:6.1f}  p95 {x['p95_ms']:6.1f}  mean {x['mean_ms']:6.1f} ms "
              f"(p95 x{x['p95_ms'] / g['p95_ms']:.2f} global)  right {x['right_exhibits']}/{exhibits}  "
              f"stages {x['stages_mean_ms']}{extra}")
    print(f"  photo keypoints: median {result['median_keypoints']:.0f}, slowest 5% of photos "
          f"{sorted(result['slowest_5pct_keypoints'])}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


def _timed(rr, loop, idx, features, vt):
    """What ``Reranker.verify`` does, through ``loop``, adding its parts' time to ``vt``."""
    counts, rr.ms_per_query = loop(idx, features, rr.database, rr.top, False, rr.floor, vt)
    return counts


if __name__ == "__main__":
    main()
