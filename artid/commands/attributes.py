"""``artid attributes``: multi-label attribute tagging on iMet-layout data (train, predict,
evaluate)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from artid.commands.argtypes import (
    finite_float,
    int_at_least,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from artid.commands.common import (
    add_batch_size_argument,
    add_device_argument,
    add_max_size_argument,
    add_seed_argument,
    add_threads_argument,
)

HELP = (
    "Attribute tagging on iMet Collection data (iMet 2019 / 2020 Kaggle layouts or a synthetic "
    "benchmark's imet/ folder): train a model, write a Kaggle submission, evaluate with F2 at "
    "validation-chosen thresholds."
)

EXAMPLES = """examples:
  artid synth --out runs/bench --classes 200 --image-size 128
  artid attributes train --root runs/bench/imet --model head --out runs/attr-head
  artid attributes train --root runs/bench/imet --model knn --out runs/attr-knn \\
      --descriptors runs/attr-desc
  artid attributes train --root runs/bench/imet --model finetune --loss focal --epochs 10 \\
      --out runs/attr-ft
  artid attributes train --root runs/bench/imet --model bow-svm --vocabulary 500 \\
      --out runs/attr-bow
  artid attributes train --root runs/bench/imet --model multiclass --group department \\
      --class-weighting --out runs/attr-mc
  artid attributes predict --run runs/attr-head --root runs/bench/imet --split test \\
      --out submission.csv
  artid attributes evaluate --run runs/attr-head --root runs/bench/imet
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, examples kept as written."""


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from artid.attributes.runs import MODELS

    p.add_argument(
        "--root",
        type=Path,
        required=True,
        help="iMet-layout folder holding labels.csv, train.csv, val.csv",
    )
    p.add_argument("--model", choices=MODELS, default="head", help="which model to train")
    p.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder to write")
    p.add_argument(
        "--thresholds",
        choices=("global", "group", "label"),
        default="group",
        help="which validation-chosen thresholds predict and evaluate use (all three are searched)",
    )
    f = p.add_argument_group(
        "backbone (head, knn, multiclass: frozen descriptors; finetune: the trained network)"
    )
    f.add_argument(
        "--backbone", default="efficientnet_lite0", help="backbone name or artid checkpoint"
    )
    f.add_argument("--weights", default=None, help="local weights file for --backbone")
    add_max_size_argument(f, 320)
    f.add_argument("--scales", default="ss", help="descriptor scales: ss, ms or factors like 1,0.5")
    f.add_argument(
        "--descriptors",
        type=Path,
        default=None,
        help="folder of <split>.npy descriptors to reuse or fill (default RUN/descriptors)",
    )
    h = p.add_argument_group("head and multiclass (on descriptors)")
    h.add_argument(
        "--hidden", type=non_negative_int, default=0, help="MLP hidden width (0: linear head)"
    )
    h.add_argument(
        "--head-epochs", type=positive_int, default=200, help="epochs of Adam on the descriptors"
    )
    h.add_argument("--head-lr", type=positive_float, default=1e-2, help="Adam learning rate")
    h.add_argument(
        "--group", default="department", help="multiclass: the label group that is the class"
    )
    h.add_argument(
        "--class-weighting", action="store_true", help="multiclass: inverse-frequency class weights"
    )
    t = p.add_argument_group("finetune")
    t.add_argument("--epochs", type=positive_int, default=20, help="epochs")
    add_batch_size_argument(t, 32)
    t.add_argument("--lr", type=positive_float, default=0.01, help="SGD learning rate (seed 004)")
    t.add_argument(
        "--step-size", type=positive_int, default=15, help="StepLR: x0.1 every this many epochs"
    )
    t.add_argument("--size", type=positive_int, default=224, help="square input size")
    t.add_argument(
        "--loss", choices=("bce", "focal"), default="bce", help="loss on the sigmoid outputs"
    )
    t.add_argument("--gamma", type=non_negative_float, default=2.0, help="focal loss gamma")
    t.add_argument("--alpha", type=finite_float(), default=0.25,
                   help="focal loss alpha (negative: off)")
    add_device_argument(t)
    t.add_argument(
        "--resume-changed",
        action="store_true",
        help="resume a run made with other settings under these (recorded in its state)",
    )
    p.add_argument(
        "--pos-weight",
        choices=("none", "balanced"),
        default="none",
        help="head / finetune BCE: weigh each label's positives by negatives/positives "
        "(capped at 10)",
    )
    k = p.add_argument_group("knn and bow-svm")
    k.add_argument(
        "--k", type=positive_int, default=10, help="knn: neighbours that vote (tau is tuned on val)"
    )
    k.add_argument("--vocabulary", type=positive_int, default=500, help="bow-svm: visual words")
    k.add_argument(
        "--cv", type=int_at_least(2), default=3, help="bow-svm: folds of the C / gamma grid search"
    )
    _common(p)


def _common(p: argparse.ArgumentParser) -> None:
    add_threads_argument(p)
    add_seed_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLES
    p.formatter_class = _Formatter
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    tr = sub.add_parser(
        "train",
        help="train a model into a run folder and choose thresholds on val",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    _train_arguments(tr)
    pr = sub.add_parser(
        "predict",
        help="write a Kaggle submission.csv (id,attribute_ids) of a split",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    ev = sub.add_parser(
        "evaluate",
        help="F2 at val-chosen thresholds +- bootstrap SE, F2 at 0.5, AUC-PR; a report",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    for q in (pr, ev):
        q.add_argument(
            "--run", type=Path, required=True, help="run folder written by `artid attributes train`"
        )
        q.add_argument(
            "--root", type=Path, required=True, help="iMet-layout folder (labels.csv, <split>.csv)"
        )
        q.add_argument(
            "--thresholds",
            choices=("global", "group", "label"),
            default=None,
            help="threshold kind (default: the run's)",
        )
    pr.add_argument(
        "--split", choices=("train", "val", "test"), default="test", help="split to predict"
    )
    pr.add_argument("--out", type=Path, required=True, help="submission CSV to write")
    ev.add_argument(
        "--split", choices=("val", "test"), default="test", help="labelled split to evaluate"
    )
    ev.add_argument(
        "--out", type=Path, default=None, help="report folder (default RUN/report_<split>)"
    )
    ev.add_argument(
        "--resamples", type=positive_int, default=1000, help="bootstrap resamples of the F2's SE"
    )
    for q in (pr, ev):
        _common(q)


def _train(args: argparse.Namespace) -> int:
    from artid.attributes.features import FeatureSpec
    from artid.attributes.finetune import FinetuneSettings
    from artid.attributes.head import HeadSettings
    from artid.attributes.runs import TrainOptions, train_run
    from artid.commands.pipeline_options import parse_scales

    if args.weights is not None:
        from artid.models.state_dicts import check_weights_file

        check_weights_file(args.weights)  # before any image is read
    features = FeatureSpec(args.backbone, args.weights, parse_scales(args.scales), args.max_size)
    head = HeadSettings(
        hidden=args.hidden,
        epochs=args.head_epochs,
        lr=args.head_lr,
        pos_weight=args.pos_weight,
        seed=args.seed,
    )
    ft = FinetuneSettings(
        model=args.backbone,
        weights=args.weights,
        size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        step_size=args.step_size,
        loss=args.loss,
        gamma=args.gamma,
        alpha=args.alpha,
        pos_weight=args.pos_weight,
        seed=args.seed,
        device=args.device,
    )
    options = TrainOptions(
        model=args.model,
        features=features,
        descriptors=args.descriptors,
        head=head,
        finetune=ft,
        k=args.k,
        vocabulary=args.vocabulary,
        cv=args.cv,
        group=args.group,
        class_weighting=args.class_weighting,
        thresholds=args.thresholds,
        progress=not args.no_progress,
        resume_changed=args.resume_changed,
    )
    meta = train_run(args.root, args.out, options)
    val = {m: round(f["fbeta"], 4) for m, f in meta.get("thresholds", {}).items()}
    print(
        f"trained {args.model} in {meta['train_seconds']:.1f} s into {args.out}"
        + (f"; validation F2 by threshold kind: {val}" if val else "")
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.action == "train":
        return _train(args)
    from artid.attributes.evaluation import evaluate_run, predict_run

    if args.action == "predict":
        n = predict_run(
            args.run, args.root, args.split, args.out, args.thresholds, not args.no_progress
        )
        print(f"wrote {args.out} ({n} images)")
        return 0
    metrics = evaluate_run(
        args.run,
        args.root,
        args.split,
        args.out,
        args.thresholds,
        args.resamples,
        not args.no_progress,
    )
    print(json.dumps(metrics, indent=1))
    return 0
