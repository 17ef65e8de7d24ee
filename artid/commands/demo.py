"""``artid demo``: the whole pipeline on a synthetic Met-like benchmark, with the offline model."""

from __future__ import annotations

import argparse
from pathlib import Path

from artid.commands.argtypes import non_negative_float, positive_int
from artid.commands.common import add_device_argument, add_seed_argument

HELP = (
    "Generate a small synthetic Met-format benchmark, extract single- and multi-scale descriptors "
    "with the offline model, whiten, autotune the kNN classifier on val and print the Table 5.1 "
    "ablation on test, plus the best row re-ranked by spatial verification. Re-running resumes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from artid.demo import DemoConfig

    d = DemoConfig()
    parser.add_argument(
        "--out", type=Path, default=d.out, help="folder for the benchmark, descriptors and runs"
    )
    parser.add_argument(
        "--classes", type=positive_int, default=d.classes, help="exhibits in the synthetic database"
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=d.image_size,
        help="longer side of the synthetic images",
    )
    parser.add_argument(
        "--met-queries", type=positive_int, default=d.met_queries, help="visitor photos, val + test"
    )
    parser.add_argument(
        "--distractor-ratio",
        type=non_negative_float,
        default=d.distractor_ratio,
        help="distractor queries per Met query (the Met test set has about 18)",
    )
    parser.add_argument("--model", default=d.model, help="backbone name or artid checkpoint")
    parser.add_argument(
        "--dim", type=positive_int, default=d.dim, help="PCA-whitening output dimension"
    )
    add_seed_argument(parser, d.seed, " (of the synthetic benchmark)")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=d.workers,
        help="processes for the benchmark's images (and decoding them on a GPU)",
    )
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from artid.demo import DemoConfig, run_demo
    from artid.devices import resolve_device

    summary = run_demo(
        DemoConfig(
            out=args.out,
            classes=args.classes,
            image_size=args.image_size,
            met_queries=args.met_queries,
            distractor_ratio=args.distractor_ratio,
            model=args.model,
            dim=args.dim,
            seed=args.seed,
            workers=args.workers,
            device=str(resolve_device(args.device)),
        )
    )
    b = summary["benchmark"]
    print(
        f"\nSynthetic benchmark: {b['classes']} exhibits, {b['database_images']} studio photos "
        f"({100 * b['single_image_share']:.0f}% of classes with one), "
        f"test queries: {b['test_met']} Met + "
        f"{b['test_other']} other-art + {b['test_noart']} non-art; val: {b['val_met']} Met + "
        f"{b['val_other'] + b['val_noart']} distractors."
    )
    print(
        "kNN classifier on EfficientNet-Lite0 (ImageNet) descriptors, as in Table 5.1 of the "
        "thesis (GAP, GAP-, ACC in %; k, tau tuned on val by GAP); row 7 re-ranks row 4's top 10 "
        "by SIFT + MAGSAC spatial verification:\n"
    )
    print(summary["table"])
    s = summary["seconds"]
    print(
        f"\nTime: {s['total']:.0f} s (benchmark {s['benchmark']:.0f} s, "
        f"extraction {s['extract_ss']:.0f} + "
        f"{s['extract_ms']:.0f} s, evaluation {s['evaluate']:.0f} s)"
    )
    print(
        f"Reports (plots + HTML): {args.out / 'runs'}/<row>/index.html; "
        f"summary: {args.out / 'demo.json'}"
    )
    print(f"Examples (test photos beside the exhibit named, row 4): {summary['examples']}")
    return 0
