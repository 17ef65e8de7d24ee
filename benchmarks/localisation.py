"""Where is the artwork in a visitor photo? CAM boxes against a centre crop, on the synthetic benchmark.

For every Met query (visitor photo) of the val and test splits of a benchmark written by
``artid synth``, the ground truth is the bounding box of the quadrilateral where the generator
placed the exhibit (``ground_truth/placements.json``), clipped to the photo. Two localisers:

- CAM: activation map of the descriptor model (``share`` or ``energy``, at the decoded size or
  resized for the map), threshold (a share of the map's range, or Otsu), largest connected
  component, box, expanded by a margin (:mod:`artid.localisation`);
- centre: the centred box whose sides are a fixed share of the photo's.

Each localiser's settings are chosen on val by mean IoU; the test photos give mean IoU and the
share of photos with IoU >= 0.5, each with its bootstrap SE over photos, and the paired
difference CAM - centre.

    python benchmarks/localisation.py --root /tmp/loc/b300 --json runs/localisation.json

With ``--compare PLAIN CROPPED...`` (descriptor folders of ``artid extract`` without and with
``--crop``, the database uncropped in both) it instead fits the kNN pipeline (whitening auto,
k and tau tuned on val) on each and prints test GAP / GAP- / ACC with bootstrap SE and the paired
difference of each cropped folder to the first:

    python benchmarks/localisation.py --compare runs/desc_none runs/desc_cam
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS: tuple[float | str, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, "otsu")
MARGINS = (0.0, 0.1, 0.2)
CAM_SIZES = (0,)  # 0: as decoded; 384 was worse on a 45-photo trial (a finer map splits the work)
CENTRE_SHARES = tuple(round(s, 2) for s in np.arange(0.5, 1.0001, 0.05))


def compare(folders: list[str], resamples: int, out: str | None = None) -> dict[str, Any]:
    """Recognition with and without the crop: test GAP / GAP- / ACC (± SE) and paired differences.

    A cropped folder without its own ``database`` files uses the first folder's (the studio photos
    are never cropped, so ``artid extract --splits val,test --crop cam`` is enough). Writes the
    results to ``out`` (JSON) when given.
    """
    from artid.descriptors import load_descriptors
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    answers = {}
    labels = keys = None
    results: dict[str, Any] = {"reference": folders[0], "folders": {}}
    for folder in folders:
        own = Path(folder) / "database.json"
        db_folder = folder if own.exists() or folder == folders[0] else folders[0]
        d = {"database": load_descriptors(Path(db_folder) / "database")}
        d |= {split: load_descriptors(Path(folder) / split) for split in ("val", "test")}
        for split in ("val", "test"):
            if d[split].failures:
                raise SystemExit(f"{folder}/{split}: unreadable images; this comparison needs every query")
        pipe = KNNPipeline(PipelineConfig(use_gpu=False)).fit(
            d["database"].matrix, d["database"].labels, d["val"].matrix, d["val"].labels,
            np.array([e.path for e in d["val"].entries]))
        ans = pipe.predict(d["test"].matrix, progress=False)
        t_labels, t_keys = d["test"].labels, np.array([e.path for e in d["test"].entries])
        if labels is not None and (not np.array_equal(labels, t_labels) or not np.array_equal(keys, t_keys)):
            raise SystemExit(f"{folder}: its test queries differ from {folders[0]}'s")
        labels, keys = t_labels, t_keys
        answers[folder] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels, keys, resamples)
        crop = d["test"].settings.get("crop", "none")
        results["folders"][folder] = {"crop": crop, "database": db_folder, "k": pipe.k, "tau": pipe.tau,
                                      "projection": pipe.summary()["projection"],
                                      "test": {m: e.to_json() for m, e in est.items()}}
        print(f"{folder}: crop {crop}; database {db_folder}; k {pipe.k} tau {pipe.tau}")
        print("   " + "  ".join(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()))
    assert labels is not None
    base = answers[folders[0]]
    for folder in folders[1:]:
        diff = ilr_paired(answers[folder], base, labels, keys, resamples)
        results["folders"][folder]["minus_reference"] = {m: e.to_json() for m, e in diff.items()}
        print(f"{folder} - {folders[0]} (paired): "
              + "  ".join(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}" for m, e in diff.items()))
    if out:
        Path(out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def main() -> None:
    import torch

    from artid.data.images import load_image, to_array
    from artid.data.met import load_split
    from artid.localisation import (
        CAM_METHODS,
        activation_maps,
        centre_box,
        expand,
        iou,
        load_placements,
        map_box,
        quad_box,
        upsample,
    )
    from artid.metrics.bootstrap import bootstrap, paired_difference
    from artid.models import build_embedder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", help="benchmark root written by `artid synth`")
    ap.add_argument("--compare", nargs="+", metavar="DESCRIPTORS",
                    help="descriptor folders (the first without crop): compare recognition instead")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.compare:
        compare(args.compare, args.resamples, args.json)
        return
    if not args.root:
        ap.error("--root is needed (or --compare)")

    emb = build_embedder(args.model)
    placements = load_placements(args.root)
    t0 = time.perf_counter()
    data: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        s = load_split(args.root, split)
        assert s.image_root is not None
        paths = [e.path for e in s.entries if e.path in placements]
        truth, ious_by_cfg, centre_ious = [], {}, {}
        for path in paths:
            pixels = to_array(load_image(s.image_root / path, max_size=None))
            h, w = pixels.shape[:2]
            gt = quad_box(placements[path], w, h)
            truth.append(gt)
            x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float().div_(255.0)
            for method, size in itertools.product(CAM_METHODS, CAM_SIZES):
                heat = upsample(activation_maps(emb, x, method, size or None)[0], h, w)
                for thr in THRESHOLDS:
                    box = map_box(heat, thr)
                    for margin in MARGINS:
                        cfg = (method, size, thr, margin)
                        ious_by_cfg.setdefault(cfg, []).append(iou(expand(box, margin, w, h), gt))
            for share in CENTRE_SHARES:
                centre_ious.setdefault(share, []).append(iou(centre_box(w, h, share), gt))
        data[split] = {"n": len(paths), "cam": {k: np.array(v) for k, v in ious_by_cfg.items()},
                       "centre": {k: np.array(v) for k, v in centre_ious.items()}}
        print(f"{split}: {len(paths)} visitor photos with a placement")
    seconds = time.perf_counter() - t0

    val, test = data["val"], data["test"]
    best_cam = max(val["cam"], key=lambda c: val["cam"][c].mean())
    best_share = max(val["centre"], key=lambda c: val["centre"][c].mean())
    whole = 1.0
    print(f"\nval: best CAM {best_cam} mean IoU {val['cam'][best_cam].mean():.3f}; "
          f"best centre share {best_share} mean IoU {val['centre'][best_share].mean():.3f}")
    print("val mean IoU by CAM map / size / threshold (margin 0.1):")
    for method, size in itertools.product(CAM_METHODS, CAM_SIZES):
        cells = " ".join(f"{thr}:{val['cam'][(method, size, thr, 0.1)].mean():.3f}" for thr in THRESHOLDS)
        print(f"  {method:6s} size {size or 'as is':5}  {cells}")

    def mean_stat(v: np.ndarray) -> Any:
        return lambda ix: float(v[ix].mean())

    def hit_stat(v: np.ndarray) -> Any:
        return lambda ix: float((v[ix] >= 0.5).mean())

    n = test["n"]
    rows = {f"CAM {best_cam[0]}, size {best_cam[1] or 'as decoded'}, threshold {best_cam[2]}, margin {best_cam[3]}":
            test["cam"][best_cam],
            f"centre crop, side share {best_share}": test["centre"][best_share],
            "whole photo": test["centre"][whole]}
    results: dict[str, Any] = {"root": args.root, "model": args.model, "test_photos": n, "val_photos": val["n"],
                               "seconds": round(seconds, 1), "chosen_cam": list(best_cam),
                               "chosen_centre_share": best_share, "test": {}}
    print(f"\ntest ({n} visitor photos), settings chosen on val ({val['n']}); ± bootstrap SE over photos")
    print(f"{'localiser':62s} {'mean IoU':>16s} {'IoU >= 0.5':>16s}")
    for name, v in rows.items():
        m, hit = bootstrap(mean_stat(v), n, args.resamples), bootstrap(hit_stat(v), n, args.resamples)
        results["test"][name] = {"mean_iou": m.to_json(), "iou_at_least_0.5": hit.to_json()}
        print(f"{name:62s} {m.value:7.3f} ± {m.se:.3f} {hit.value:8.1%} ± {hit.se:.1%}")
    cam_v, centre_v = test["cam"][best_cam], test["centre"][best_share]
    dm = paired_difference(mean_stat(cam_v), mean_stat(centre_v), n, args.resamples)
    dh = paired_difference(hit_stat(cam_v), hit_stat(centre_v), n, args.resamples)
    results["test"]["cam_minus_centre"] = {"mean_iou": dm.to_json(), "iou_at_least_0.5": dh.to_json()}
    print(f"{'CAM - centre (paired)':62s} {dm.value:+7.3f} ± {dm.se:.3f} {dh.value:+8.1%} ± {dh.se:.1%}")
    results["val_grid"] = {" ".join(map(str, k)): float(v.mean()) for k, v in val["cam"].items()}
    results["val_centre"] = {str(k): float(v.mean()) for k, v in val["centre"].items()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
