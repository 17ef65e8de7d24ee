"""``artid train``: train the embedder on the database images, or reproduce Table 5.3.

One sub-command per registered training method (:mod:`artid.training.registry`: contrastive,
SimSiam, DNet), each with the common options and those of its settings section.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

from artid.commands.argtypes import fraction, non_negative_float, positive_float
from artid.training.augment import AUGMENTS
from artid.training.schedule import SCHEDULES, parse_milestones
from artid.training.sections import AMP_MODES, OPTIMIZERS, SELECT_METRICS, setting_option

HELP = (
    "train the embedder on the collection (contrastive with mined pairs, SimSiam, "
    "DNet CE/ArcFace); checkpoints load with `artid extract --model`"
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing (not None, not a flag's False/True)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if (
            action.default is None
            or isinstance(action.default, bool)
            or action.default is argparse.SUPPRESS
        ):
            return action.help or ""
        return super()._get_help_string(action)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root", type=Path, required=True, help="Met-format dataset root (database + val)"
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run folder: epoch_NNN.pt checkpoints, best.pt, trainer_state.pt, log.jsonl, "
        "run.json; running the same command again resumes from it",
    )
    p.add_argument(
        "--preset",
        choices=("artid", "paper"),
        default="artid",
        help="defaults of --lr, --epochs, --augment, --select and the projector size: artid's, "
        "measured on a synthetic benchmark of a few hundred classes (lr 1e-4, in-situ "
        "positives, best epoch by val GAP, projector at most half the database images), or "
        "the thesis' exact values (lr 1e-7, the paper's augmentation, best epoch by val ACC, "
        "projector D -> D)",
    )
    p.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="backbone name or artid checkpoint to start from",
    )
    p.add_argument(
        "--split", choices=("database", "mini"), default="database", help="training images"
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="default: artid contrastive 3, simsiam 5, dnet 10; paper 10, 15, 25",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="pairs (contrastive, default 64) or images (simsiam 64 x 2 views, dnet 256)",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="backbone + projector learning rate (default: artid 1e-4, paper 1e-7)",
    )
    p.add_argument(
        "--head-lr",
        type=positive_float,
        default=1e-3,
        help="learning rate of the classifier / SimSiam MLPs",
    )
    p.add_argument("--weight-decay", type=non_negative_float, default=1e-6, help="weight decay")
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adam",
        help="Adam (the paper's) or SGD with --momentum",
    )
    p.add_argument("--momentum", type=fraction, default=0.9, help="SGD momentum")
    p.add_argument(
        "--lr-schedule",
        choices=SCHEDULES,
        default="step",
        help="step: x0.1 once halfway (or at --lr-milestones); cosine: annealed to 0; constant",
    )
    p.add_argument(
        "--lr-milestones",
        type=parse_milestones,
        default=None,
        help="epochs (fractions allowed) after which the step schedule multiplies the lr by "
        "--lr-gamma, e.g. 5,8",
    )
    p.add_argument(
        "--lr-gamma",
        type=positive_float,
        default=0.1,
        help="factor of each drop of the step schedule",
    )
    p.add_argument(
        "--warmup-steps", type=int, default=0, help="optimiser steps of linear lr warm-up"
    )
    p.add_argument(
        "--accum-steps",
        type=int,
        default=1,
        help="batches per optimiser step (gradient accumulation)",
    )
    p.add_argument(
        "--amp",
        choices=AMP_MODES,
        default="off",
        help="mixed precision: bfloat16 autocast (CPU or CUDA), float16 autocast + grad scaler "
        "(CUDA)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (pairs, augmentations)"
    )
    p.add_argument(
        "--augment",
        choices=AUGMENTS,
        default=None,
        help="paper: crop + colour jitter (thesis 5.1); insitu: the other image of each pair "
        "(second SimSiam view, half of DNet's images) is put in a synthetic gallery: frame, "
        "wall and floor, perspective, a visitor in front, lighting (default: artid insitu, "
        "paper paper)",
    )
    p.add_argument(
        "--select",
        choices=SELECT_METRICS,
        default=None,
        help="validation metric picking the best epoch, the untrained model included "
        "(default: artid gap, paper acc)",
    )
    p.add_argument("--image-size", type=int, default=500, help="side of the square training crops")
    p.add_argument("--max-size", type=int, default=500, help="longer side images are loaded at")
    p.add_argument(
        "--eval-batch",
        type=int,
        default=32,
        help="images per batch when embedding database and queries",
    )
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument(
        "--no-projector",
        dest="projector",
        action="store_false",
        help="no FC projector (by default one is added, initialised from PCA-whitening)",
    )
    p.add_argument(
        "--projector-dim",
        type=int,
        default=None,
        help="projector output size (default: D, capped by the preset at a share of the "
        "database images)",
    )
    p.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip the per-epoch kNN validation (the best epoch is then the lowest loss)",
    )
    p.add_argument(
        "--resume-changed",
        action="store_true",
        help="resume a run folder made with other settings under these ones (the "
        "change is recorded in run.json); without it such a resume is refused, "
        "naming each changed setting",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from artid.training import registry
    from artid.training.settings import RunSpec  # noqa: F401 - registers the methods

    sub = parser.add_subparsers(dest="train_method", metavar="METHOD", required=True)
    fmt = _HelpFormatter
    for name in registry.names():
        entry = registry.entry(name)
        p = sub.add_parser(name, formatter_class=fmt, help=entry.help)
        _common(p)
        for f in fields(entry.settings):
            flag, kw = setting_option(f)
            p.add_argument(flag, **kw)
    t = sub.add_parser(
        "table53",
        formatter_class=fmt,
        help="reproduce the shape of Table 5.3 on a synthetic benchmark (every method, briefly)",
    )
    from artid.training.table53 import add_arguments as table_arguments

    table_arguments(t)


def run(args: argparse.Namespace) -> int:
    if args.train_method == "table53":
        from artid.training.table53 import run as run_table

        return run_table(args)
    from artid.training.runs import train
    from artid.training.settings import RunSpec, spec_fields

    method = args.train_method
    spec = RunSpec.build(method, **{k: getattr(args, k) for k in spec_fields(method)})
    result = train(spec, resume_changed=args.resume_changed)
    if os.environ.get("RANK", "0") != "0":  # a torchrun process other than rank 0: it says nothing
        return 0
    last = result.history[-1] if result.history else {}
    print(f"trained {spec.method} for {last.get('epoch', 0)} epochs in {spec.out}")
    for change in result.changes:
        print(
            f"resumed after epoch {change['after_epoch']} with changed settings "
            "(recorded in run.json)"
        )
    best = next((r for r in result.history if r.get("epoch") == result.best_epoch), None)
    if best is not None and "acc" in best:
        print(
            f"best epoch {result.best_epoch}: val kNN ACC {100 * best['acc']:.1f}, "
            f"GAP {100 * best['gap']:.1f} (single scale, no whitening) -> {result.best_checkpoint}"
        )
        if result.best_epoch == 0:
            print(
                "no epoch beat the untrained model on validation: best.pt is the untrained model "
                "(try another --lr, more --epochs, or --augment)"
            )
    elif result.best_checkpoint:
        print(f"best epoch {result.best_epoch} -> {result.best_checkpoint}")
    return 0
