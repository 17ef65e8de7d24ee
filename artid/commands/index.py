"""``artid index``: build an index bundle from a collection, add or remove artworks, describe a bundle."""

from __future__ import annotations

import argparse
import json
from typing import Any

from artid.commands.argtypes import fraction, non_negative_int, positive_float, positive_int
from artid.commands.crop_options import add_crop_arguments, crop_settings

HELP = "build, extend or inspect an index bundle (what `artid recognize` and `artid serve` load)"


def _parse_scales(text: str) -> tuple[float, ...]:
    if text == "ss":
        return (1.0,)
    if text == "ms":
        return (1.0, 2 ** -0.5, 0.5)
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be 'ss', 'ms' or numbers like 1,0.707: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="build a bundle from a collection folder or a Met-format root",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("source", help="collection folder (one sub-folder of images per artwork, optional "
                                  "metadata.csv/.json) or a Met-format root (artid synth output, the real Met)")
    b.add_argument("--out", required=True, help="bundle folder to write (an existing bundle is replaced atomically)")
    b.add_argument("--val", help="validation photos of a collection folder: <key>/*.jpg of its artworks and "
                                 "_distractors/*.jpg of other things (a Met root uses its valset.json)")
    b.add_argument("--metadata", help="metadata file (default: metadata.csv or metadata.json in the collection)")
    b.add_argument("--split", choices=("database", "mini"), default="database",
                   help="which exhibits of a Met-format root to index")
    b.add_argument("--model", default="efficientnet_lite0", help="backbone name or artid checkpoint file "
                                                                 "(a checkpoint is copied into the bundle)")
    b.add_argument("--weights", help="local weights file for a --model backbone name (e.g. a ViT's .safetensors); "
                                     "the network is kept in the bundle as a checkpoint")
    b.add_argument("--max-size", type=positive_int, default=500, help="longer image side in pixels")
    b.add_argument("--scales", type=_parse_scales, default=(1.0,), help="'ss', 'ms' or a comma list")
    b.add_argument("--whitening-dim", type=non_negative_int, default=None,
                   help="PCA-whitening dimension, 0 for none (default: 512 when the database has at least as "
                        "many images as descriptor dimensions, else none)")
    b.add_argument("--k", type=positive_int, help="kNN classifier k (default: tuned by GAP on the validation photos)")
    b.add_argument("--tau", type=positive_float, help="softmax temperature, > 0 (default: tuned with k)")
    b.add_argument("--false-accept", type=fraction, default=0.05,
                   help="fraction of validation distractors the threshold may accept")
    b.add_argument("--threshold", type=float, help="fixed acceptance threshold instead of calibrating one")
    b.add_argument("--device", default="cpu", help="torch device for the model (cpu, cuda, cuda:1, ...)")
    b.add_argument("--workers", type=non_negative_int, default=1,
                   help="image-decoding processes (0: in the main process)")
    b.add_argument("--attributes", metavar="RUN",
                   help="an `artid attributes train --model head` or `--model knn` run on the same backbone as "
                        "--model: copied into the bundle, it tags every photo the service answers")
    b.add_argument("--rerank", type=non_negative_int, default=0, metavar="K",
                   help="re-rank: verify each photo's K nearest database images with SIFT keypoints and a "
                        "homography and fuse the verified points into the answer (50 is the usual choice; "
                        "stores every database image's keypoints in the bundle, tuned on --val photos when "
                        "there are some); 0: off")
    add_crop_arguments(b, "crop (validation and query photos; the collection's images stay whole)",
                       "describe the validation photos, and every photo the bundle recognises, from the box "
                       "of their artwork: cam (class activation map of the model) or centre (a centred box); "
                       "none: whole photos. Recorded in the bundle")

    a = sub.add_parser("add", help="add the artworks of a collection folder to a bundle (nothing else is rebuilt)")
    a.add_argument("bundle", help="bundle folder")
    a.add_argument("source", help="collection folder with one sub-folder per new artwork")
    a.add_argument("--only", nargs="+", metavar="KEY", help="add only these sub-folders")
    a.add_argument("--metadata", help="metadata file (default: the folder's metadata.csv/.json)")
    a.add_argument("--device", default="cpu", help="torch device for the model")
    a.add_argument("--workers", type=non_negative_int, default=1,
                   help="image-decoding processes (0: in the main process)")

    r = sub.add_parser("remove", help="remove artworks (by key) from a bundle")
    r.add_argument("bundle", help="bundle folder")
    r.add_argument("keys", nargs="+", metavar="KEY", help="artwork keys (folder names or Met ids)")

    i = sub.add_parser("info", help="what a bundle holds: model, counts, k, tau, threshold and its figures")
    i.add_argument("bundle", help="bundle folder")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def run(args: argparse.Namespace) -> int:
    from artid.service import builder
    from artid.service.bundle import read_manifest

    if args.action == "build":
        options = builder.BuildOptions(model=args.model, weights=args.weights, max_size=args.max_size,
                                       scales=args.scales,
                                       whitening_dim=args.whitening_dim, k=args.k, tau=args.tau,
                                       target_false_accept=args.false_accept, threshold=args.threshold,
                                       device=args.device, workers=args.workers, attributes=args.attributes,
                                       crop=crop_settings(args), rerank=args.rerank)
        out = builder.build_bundle(args.source, args.out, options, val=args.val, metadata=args.metadata,
                                   split=args.split)
        _print_info(read_manifest(out), str(out))
    elif args.action == "add":
        added = builder.add_to_bundle(args.bundle, args.source, keys=args.only, metadata=args.metadata,
                                      device=args.device, workers=args.workers)
        print(f"added {len(added.artworks)} artwork(s): {', '.join(a.key for a in added.artworks)}")
        _print_failures(added.failures)
    elif args.action == "remove":
        builder.remove_from_bundle(args.bundle, args.keys)
        print(f"removed {len(args.keys)} artwork(s): {', '.join(args.keys)}")
    else:
        meta = read_manifest(args.bundle)
        if args.json:
            print(json.dumps(meta, indent=1))
        else:
            _print_info(meta, args.bundle)
    return 0


def _print_info(meta: dict, where: str) -> None:
    from artid.service.cropping import describe_crop

    cal = meta.get("calibration", {})
    cls = meta.get("classifier", {})
    spec = meta.get("model", {}).get("spec", {})
    name = spec.get("backbone", {}).get("name") or meta.get("model", {}).get("ref")
    print(f"bundle       {where} ({meta.get('generation')}, updated {meta.get('updated')})")
    print(f"artworks     {meta.get('artworks')} ({meta.get('images')} images)")
    print(f"model        {name}, {meta.get('dim')}-d descriptors{', whitened' if meta.get('whitened') else ''}, "
          f"max size {meta.get('extraction', {}).get('max_size')}, scales {meta.get('extraction', {}).get('scales')}")
    print(f"crop         {describe_crop(meta.get('extraction', {}).get('crop'))}")
    print(f"classifier   k={cls.get('k')} tau={cls.get('tau')} N={cls.get('n_classes')}")
    if cal.get("source") == "validation":
        print(f"threshold    {cal.get('threshold'):.6g} (calibrated on {cal.get('n_queries')} photos + "
              f"{cal.get('n_distractors')} distractors for {_pct(cal.get('target_false_accept'))} "
              f"distractors accepted)")
        print(f"on validation: distractors accepted {_pct(cal.get('false_accept'))}, precision "
              f"{_pct(cal.get('precision'))}, recall {_pct(cal.get('recall'))}, accuracy {_pct(cal.get('accuracy'))}")
    else:
        print(f"threshold    {cal.get('threshold')} (given, not calibrated)")
    _print_attributes(meta)
    _print_rerank(meta)
    n_cal = None
    for h in meta.get("history", []):
        if str(h.get("operation", "")).startswith("build"):
            n_cal = h.get("artworks")
    for h in meta.get("history", []):
        if h.get("failures"):
            print(f"unreadable   {len(h['failures'])} image(s) left out by '{h.get('operation')}' ({h.get('time')}):")
            _print_failures(h["failures"], header=False)
    if n_cal is not None and n_cal != meta.get("artworks"):
        print(f"note         the threshold was calibrated with {n_cal} artworks; after adding or removing "
              f"artworks, rebuild to recalibrate it")


def _print_attributes(meta: dict) -> None:
    attr = meta.get("attributes")
    if not attr:
        print("attributes   none (build with --attributes RUN to tag photos)")
        return
    f2 = attr.get("val_f2")
    feats = attr.get("features", {})
    ext = meta.get("extraction", {})
    same = feats.get("max_size") == ext.get("max_size") and \
        [float(s) for s in feats.get("scales", [])] == [float(s) for s in ext.get("scales", [])]
    groups = ", ".join(g or "(none)" for g in attr.get("groups", []))
    print(f"attributes   {attr.get('model')} run from {attr.get('source')}: {attr.get('labels')} labels "
          f"({groups}), {attr.get('thresholds')} thresholds"
          + (f" (validation F2 {100 * f2:.1f}%)" if isinstance(f2, (int, float)) else ""))
    print(f"             descriptors at max size {feats.get('max_size')}, scales {feats.get('scales')}: "
          + ("the recognition pass's" if same else "a second pass of the network per photo"))


def _print_rerank(meta: dict) -> None:
    rerank = meta.get("rerank")
    if not rerank:
        print("re-ranking   none (build with --rerank 50 to verify photos with SIFT keypoints)")
        return
    stage, cal = rerank.get("stage", {}), rerank.get("calibration", {})
    tuned = f", validation GAP {_pct(stage['val_gap'])} vs {_pct(stage.get('global_val_gap'))} global" \
        if stage.get("val_gap") is not None else " (defaults, not tuned)"
    print(f"re-ranking   K={stage.get('top')}: w={stage.get('w')}, min_inliers={stage.get('min_inliers')}, "
          f"tau={stage.get('tau')}{tuned}; {rerank.get('keypoints')} keypoints stored")
    if cal.get("source") == "validation":
        print(f"             its threshold {cal.get('threshold'):.6g}: distractors accepted "
              f"{_pct(cal.get('false_accept'))}, recall {_pct(cal.get('recall'))} on validation")


def _print_failures(failures: list[dict[str, Any]], header: bool = True, limit: int = 20) -> None:
    """List images that could not be read (the first ``limit``; the bundle's history keeps them all)."""
    if not failures:
        return
    if header:
        print(f"{len(failures)} image(s) could not be read and were left out (`artid index info` lists them):")
    for f in failures[:limit]:
        print(f"  {f.get('path')}: {f.get('error')}")
    if len(failures) > limit:
        print(f"  ... and {len(failures) - limit} more (`artid index info --json` lists all)")
