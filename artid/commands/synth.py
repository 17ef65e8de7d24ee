"""``artid synth``: write a synthetic benchmark in the Met's layout."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from artid.commands.argtypes import finite_float, fraction, non_negative_float, positive_int
from artid.commands.common import add_seed_argument
from artid.data.synth import SynthConfig, generate

HELP = (
    "Generate a synthetic Met-like benchmark (studio photos of procedural exhibits, visitor "
    "photos in galleries, other-art and non-art distractors) in the Met dataset's layout and "
    "JSON format, with the exhibits' attribute labels in the iMet Collection layout (ROOT/imet/) "
    "and where each visitor photo shows its exhibit (ROOT/ground_truth/placements.json)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SynthConfig()
    p.add_argument(
        "--out",
        metavar="ROOT",
        type=Path,
        required=True,
        help="dataset root to write (empty or absent; the same command resumes an interrupted run)",
    )
    p.add_argument("--classes", type=int, default=d.classes, help="exhibits in the database")
    add_seed_argument(p, d.seed, " (same seed and sizes: same files)")
    p.add_argument(
        "--image-size", type=int, default=d.image_size, help="longer side of every image in pixels"
    )
    p.add_argument(
        "--met-queries",
        type=int,
        default=None,
        help="visitor photos of exhibits, val + test (default: 30%% of --classes, at most 1132)",
    )
    p.add_argument(
        "--val-share",
        type=fraction,
        default=d.val_share,
        help="share of the query classes in val (default: 10%% as in the Met, raised up to "
        "40%% where that is needed for the Met's 129 val queries)",
    )
    p.add_argument(
        "--distractor-ratio",
        type=non_negative_float,
        default=d.distractor_ratio,
        help="distractor queries per Met query in each split",
    )
    p.add_argument(
        "--other-share",
        type=fraction,
        default=d.other_share,
        help="share of the distractors that are other artworks (the rest are non-art photos)",
    )
    p.add_argument(
        "--mini-share",
        type=fraction,
        default=d.mini_share,
        help="share of the classes in the mini database",
    )
    p.add_argument(
        "--single-share",
        type=fraction,
        default=d.single_share,
        help="share of classes with a single studio photo",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="rendering processes (the output does not depend on it)",
    )
    p.add_argument(
        "--source-images",
        metavar="DIR",
        nargs="+",
        default=None,
        help="exhibits are the real images in these folders (a collection's studio photos, or "
        "any photos and artworks; near-duplicates merged) instead of procedural works; "
        "--classes is then the number of images and crops found",
    )
    p.add_argument(
        "--crops",
        type=positive_int,
        default=1,
        help="with --source-images: cut up to this many exhibits from one large image",
    )
    p.add_argument(
        "--holdout-share",
        type=finite_float(0.0, 1.0, below=True),
        default=0.15,
        help="with --source-images: share of the images held out as other-art distractors",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    config = SynthConfig(
        classes=args.classes,
        seed=args.seed,
        image_size=args.image_size,
        met_queries=args.met_queries,
        val_share=args.val_share,
        distractor_ratio=args.distractor_ratio,
        other_share=args.other_share,
        mini_share=args.mini_share,
        single_share=args.single_share,
        workers=args.workers,
        progress=not args.no_progress,
    )
    if args.source_images:
        from artid.data.synth.real import SourceSettings, generate_from_sources

        settings = SourceSettings(tuple(args.source_images), args.crops, args.holdout_share)
        summary = generate_from_sources(args.out, config, settings)
    else:
        summary = generate(args.out, config)
    print(json.dumps(summary, indent=2))
    print(
        f"wrote {summary['images_written']} images in {summary['seconds']} s; "
        f"read it with --root {args.out}"
    )
    return 0
