"""Benchmark: what the acceptance rule of a re-ranking bundle means after `index remove` / `add`.

Builds a small re-ranking bundle (``--artworks`` SIFT-rich scenes, one validation photo of each
and ``--distractors`` validation distractors), then removes ``--remove`` artworks and, on the
build, adds ``--add`` new ones. On held-out photos (one more photo of every artwork, in or out of
the bundle, and twice as many held-out distractors: scenes of no artwork) it counts, for each
state of the bundle,

    false accepts   held-out distractors and photos of artworks not in the bundle that are accepted
    recall          photos of the bundle's artworks accepted with the right artwork

under three acceptance rules: ``bundle`` (the threshold the bundle holds after the edit: what the
service serves), ``kept`` (the build's threshold kept, the old behaviour) and ``fixed-N`` (the
build's threshold with the softmax's N held at the build's number of artworks, a score that does
not move with N). With ``--seeds`` several data sets are drawn and the counts summed.

    OMP_NUM_THREADS=1 python benchmarks/bundle_edits.py --seeds 3 --json runs/bundle_edits.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def scene(seed: int, size: int = 200) -> np.ndarray:
    """A grey image of random rectangles and circles (plenty of corners for SIFT)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 128, np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(8, 40, 2)
        colour = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(img, (int(x), int(y)), int(w // 2), colour, -1)
    return img


def photo(img: np.ndarray, seed: int) -> Image.Image:
    """A visitor's photo: a random perspective, other light, noise and a little blur."""
    rng = np.random.default_rng(seed)
    s = img.shape[0]
    src = np.float32([[0, 0], [s, 0], [s, s], [0, s]])
    dst = src + rng.uniform(-0.12 * s, 0.12 * s, (4, 2)).astype(np.float32)
    out = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (s, s), borderValue=128)
    out = out * rng.uniform(0.8, 1.2) + rng.normal(0, 6, out.shape)
    out = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (3, 3), 0.7)
    return Image.fromarray(out).convert("RGB")


def make_data(base: Path, seed: int, artworks: int, add: int, distractors: int) -> dict:
    """Collection, added artworks, validation and held-out photos below ``base``."""
    first = 1000 * seed
    coll, more, val = base / "collection", base / "more", base / "val"
    for c in range(artworks + add):
        folder = (coll if c < artworks else more) / f"art-{c}"
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "0.png"), scene(first + c))
        if c < artworks:
            (val / f"art-{c}").mkdir(parents=True)
            photo(scene(first + c), first + 10_000 + c).save(val / f"art-{c}" / "v.png")
    (val / "_distractors").mkdir(parents=True)
    for i in range(distractors):
        photo(scene(first + 500 + i), first + 20_000 + i).save(val / "_distractors" / f"d{i}.png")
    held = {f"art-{c}": photo(scene(first + c), first + 30_000 + c) for c in range(artworks + add)}
    others = [photo(scene(first + 700 + i), first + 40_000 + i) for i in range(2 * distractors)]
    return {"collection": coll, "more": more, "val": val, "held": held, "others": others}


def measure(bundle: Path, photos: dict, n_build: int, build_threshold: float, rerank: bool) -> dict:
    """Counts of each rule on the held-out photos for the bundle as it is now (the re-ranked
    answer, or with ``rerank`` False the kNN-only one and its threshold)."""
    from artid.service.recognizer import Recognizer

    rec = Recognizer.from_bundle(bundle, optimize=False, rerank=None if rerank else 0)
    keys = list(photos["held"])
    images = [photos["held"][k] for k in keys] + photos["others"]
    desc = [rec.describe(images, part=i) for i in range(len(rec.embedders))]
    local = rec.local_features(images)
    known = {a.key: a.label for a in rec.data.artworks}
    truth = np.array([known.get(k, -1) for k in keys] + [-1] * len(photos["others"]))
    out = {"artworks": len(known)}
    pipe = rec.pipeline
    rules = {"bundle": (pipe, rec.threshold_score), "kept": (pipe, build_threshold)}
    rules["fixed-N"] = (_with_n(pipe, n_build), build_threshold)
    for name, (p, threshold) in rules.items():
        ans = p.predict(desc, features=local, rerank=rerank, progress=False)
        accepted = ans.score > threshold
        negative = truth < 0
        out[name] = {
            "false_accepts": int((accepted & negative).sum()),
            "negatives": int(negative.sum()),
            "recalled": int((accepted & (ans.pred == truth) & ~negative).sum()),
            "positives": int((~negative).sum()),
        }
    return out


def _with_n(pipe, n: int):
    """A copy of the pipeline whose softmax counts ``n`` classes whatever its database holds."""
    import copy

    held = copy.copy(pipe)
    held.classifier = copy.copy(pipe.classifier)
    held.classifier.n_classes = int(n)  # may be below the distinct labels: N held fixed
    return held


def run_seed(base: Path, seed: int, args: argparse.Namespace) -> dict:
    from artid.retrieval.pipeline import PipelineConfig
    from artid.retrieval.rerank import RerankConfig
    from artid.service import builder
    from artid.service.bundle import load_bundle

    photos = make_data(base / f"data-{seed}", seed, args.artworks, args.add, args.distractors)
    stage = RerankConfig(top=args.top, tau=args.rerank_tau)
    config = PipelineConfig(whiten="none", k=args.k, tau=args.tau, rerank=stage)
    options = builder.BuildOptions(max_size=128, scales=(1.0,), workers=0, pipeline=config)
    built = base / f"bundle-{seed}"
    builder.build_bundle(photos["collection"], built, options, val=photos["val"])
    data = load_bundle(built)
    assert data.global_calibration is not None
    thresholds = {True: data.calibration.threshold, False: data.global_calibration.threshold}
    removed, added = base / f"removed-{seed}", base / f"added-{seed}"
    shutil.copytree(built, removed)
    builder.remove_from_bundle(removed, [f"art-{c}" for c in range(args.remove)])
    shutil.copytree(built, added)
    builder.add_to_bundle(added, photos["more"], workers=0)
    states = {}
    for rr in (True, False):
        for state, folder in (("build", built), ("remove", removed), ("add", added)):
            name = f"{state} {'re-ranked' if rr else 'kNN only'}"
            states[name] = measure(folder, photos, args.artworks, thresholds[rr], rr)
    return states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artworks", type=int, default=30)
    ap.add_argument("--remove", type=int, default=3)
    ap.add_argument("--add", type=int, default=5)
    ap.add_argument("--distractors", type=int, default=24)
    ap.add_argument("--top", type=int, default=10, help="K of the re-ranking stage")
    ap.add_argument(
        "--rerank-tau", type=float, help="fixed tau of the fused score (default: tuned)"
    )
    ap.add_argument("--k", type=int, help="fixed k of the kNN answer (with --tau; default: tuned)")
    ap.add_argument("--tau", type=float, help="fixed tau of the kNN answer (with --k)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--json", help="write the counts here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    total: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for state, res in run_seed(Path(tmp), seed, args).items():
                for rule in ("bundle", "kept", "fixed-N"):
                    acc = total.setdefault(state, {}).setdefault(rule, {})
                    for key, v in res[rule].items():
                        acc[key] = acc.get(key, 0) + v
    print(f"{'state':20} {'rule':8} {'false accepts':>15} {'recall':>10}")
    for state, rules in total.items():
        for rule, c in rules.items():
            fa = f"{c['false_accepts']}/{c['negatives']}"
            print(f"{state:20} {rule:8} {fa:>15} {c['recalled']:>4}/{c['positives']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(total, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
