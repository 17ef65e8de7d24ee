"""The rows of the Table 5.3 runner (each a method's settings) and its command-line options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from artid.training.methods import ContrastiveSettings, DNetSettings, SimSiamSettings
from artid.training.sections import finite_number

CONTRASTIVE = ("Con-Syn", "Con-Syn+Real", "Con-Syn+Real-closest")
#: Row name -> the method and its settings (None: no training).
ROWS: dict[str, ContrastiveSettings | SimSiamSettings | DNetSettings | None] = {
    "untrained": None,
    "Con-Syn": ContrastiveSettings(positives="con-syn"),
    "Con-Syn+Real": ContrastiveSettings(positives="con-syn+real"),
    "Con-Syn+Real-closest": ContrastiveSettings(positives="con-syn+real-closest"),
    "SimSiam": SimSiamSettings(),
    "DNet CE": DNetSettings(loss="ce"),
    "DNet ArcFace": DNetSettings(loss="arcface"),
    "DNet CE balanced": DNetSettings(loss="ce", sampling="balanced"),
}
QUICK_ROWS = ("untrained", "Con-Syn+Real", "DNet CE")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for the synthetic benchmark, the runs and the table (table53.md, "
        "table53.json); "
        "running the same command again resumes, skipping finished rows",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="an existing Met-format root (default: generate a synthetic one in OUT/synth)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="minutes, not hours: 100 classes, 240 visitor photos, 2 epochs, one seed, rows "
        + ", ".join(QUICK_ROWS),
    )
    p.add_argument(
        "--classes", type=int, default=None, help="synthetic classes (default 300; --quick 100)"
    )
    p.add_argument(
        "--met-queries",
        type=int,
        default=None,
        help="synthetic visitor photos, val + test (default 600: about 180 val, 420 test; "
        "--quick 240)",
    )
    p.add_argument(
        "--distractor-ratio",
        type=finite_number,
        default=2.0,
        help="synthetic distractors per visitor photo",
    )
    p.add_argument("--synth-size", type=int, default=128, help="synthetic image size (longer side)")
    p.add_argument("--size", type=int, default=96, help="load size and training crop size")
    p.add_argument(
        "--preset",
        default="artid",
        choices=["artid", "paper"],
        help="training defaults of every row (see `artid train contrastive --help`)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every method (default: the preset's; --quick 2)",
    )
    p.add_argument(
        "--lr",
        type=finite_number,
        default=None,
        help="backbone learning rate of every method (default: the preset's)",
    )
    p.add_argument(
        "--augment",
        default=None,
        choices=["paper", "insitu"],
        help="synthetic positives of every row (default: the preset's; README, training section)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds of the contrastive rows (default 2; --quick 1); other rows use one seed",
    )
    p.add_argument(
        "--whiten",
        default="auto",
        choices=["auto", "pcaw", "none"],
        help="whitening of the kNN evaluation (auto: chosen on val for every row)",
    )
    p.add_argument("--model", default="efficientnet_lite0", help="backbone every row starts from")
    p.add_argument(
        "--rows", default=None, help=f"comma-separated subset of the rows ({', '.join(ROWS)})"
    )
    p.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples of the standard errors"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument(
        "--amp",
        default="off",
        choices=["off", "bf16", "fp16"],
        help="mixed precision of training (CUDA)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the synthetic benchmark and the first seed of every run",
    )


def table_sizes(args: argparse.Namespace) -> dict[str, Any]:
    """Classes, visitor photos, epochs, seeds and rows of the table, ``--quick`` applied."""
    quick = args.quick
    return {
        "classes": args.classes or (100 if quick else 300),
        "met_queries": args.met_queries or (240 if quick else 600),
        "epochs": args.epochs if args.epochs is not None else (2 if quick else None),
        "seeds": args.seeds or (1 if quick else 2),
        "rows": [r.strip() for r in args.rows.split(",") if r.strip()]
        if args.rows
        else list(QUICK_ROWS if quick else ROWS),
    }
