"""Benchmark: the attribute models of issue 13 on a synthetic benchmark, one table.

Rows: BoW + SVM (seed 003), a linear head on frozen EfficientNet-Lite0 descriptors, the backbone
fine-tuned with BCE, fine-tuned with the focal loss, and kNN label transfer. Each is trained on the
synthetic benchmark's studio photos (``imet/train.csv``), chooses its thresholds on the validation
visitor photos and is scored on the test visitor photos:

- F2 (val-chosen): mean per-image F2 at the per-group thresholds chosen on val (at-least-one
  rule), ± bootstrap SE over test images;
- F2@0.5: the same at a fixed threshold of 0.5 (SVM decision values: 0.5 too, as seed 003 did);
- AUC-PR: macro average precision over the labels present in test;
- train: seconds of training (descriptor extraction of the frozen rows counted separately, once).

    python benchmarks/attributes.py                              # 200 exhibits, 128 px
    python benchmarks/attributes.py --classes 60 --epochs 2      # quick check

Everything goes under ``--out`` (default ``runs/bench-attributes``); a finished row is kept and a
rerun only does what is missing. Results also in ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from artid.attributes.evaluation import evaluate_run
from artid.attributes.features import FeatureSpec
from artid.attributes.finetune import FinetuneSettings
from artid.attributes.runs import TrainOptions, read_run, train_run
from artid.cli import main as artid_main
from artid.errors import ArtidError


def rows(args: argparse.Namespace, desc: Path) -> dict[str, TrainOptions]:
    features = FeatureSpec(max_size=args.image_size)
    ft = {"size": args.size, "epochs": args.epochs, "batch_size": 16, "step_size": max(1, (2 * args.epochs) // 3)}
    common = {"features": features, "descriptors": desc, "progress": not args.no_progress}
    return {
        "BoW + SVM": TrainOptions(model="bow-svm", vocabulary=args.vocabulary, **common),
        "frozen head": TrainOptions(model="head", **common),
        "fine-tuned BCE": TrainOptions(model="finetune", finetune=FinetuneSettings(loss="bce", **ft), **common),
        "fine-tuned focal": TrainOptions(model="finetune", finetune=FinetuneSettings(loss="focal", **ft), **common),
        "kNN transfer": TrainOptions(model="knn", **common),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/bench-attributes"))
    p.add_argument("--classes", type=int, default=200, help="exhibits of the synthetic benchmark")
    p.add_argument("--image-size", type=int, default=128, help="image size of the synthetic benchmark")
    p.add_argument("--met-queries", type=int, default=240, help="visitor photos (val + test)")
    p.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs")
    p.add_argument("--size", type=int, default=128, help="fine-tuning input size")
    p.add_argument("--vocabulary", type=int, default=500, help="BoW vocabulary size")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench = args.out / "benchmark"
    if not (bench / "imet" / "test.csv").is_file():
        artid_main(["synth", "--out", str(bench), "--classes", str(args.classes), "--image-size", str(args.image_size),
                    "--met-queries", str(args.met_queries), "--val-share", "0.4", "--distractor-ratio", "0",
                    "--workers", "1", "--no-progress"])
    results = {}
    for name, options in rows(args, args.out / "descriptors").items():
        run = args.out / name.lower().replace(" ", "-").replace("+", "plus")
        try:
            read_run(run)
        except ArtidError:
            t0 = time.perf_counter()
            train_run(bench / "imet", run, options)
            print(f"{name}: trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results[name] = evaluate_run(run, bench / "imet", "test", progress=False)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    n = results["frozen head"]["images"]
    print(f"\ntest split: {n} visitor photos; thresholds per group chosen on val; F2 in %, ± bootstrap SE")
    print(f"{'model':18s} {'F2 (val-chosen)':>16s} {'F2@0.5':>7s} {'AUC-PR':>7s} {'train s':>8s}")
    for name, m in results.items():
        f2 = m["f2"]
        print(f"{name:18s} {100 * f2['value']:9.1f} ± {100 * f2['se']:4.1f} {100 * m['f2_at_0.5']:7.1f} "
              f"{100 * m['ranking']['auc_pr_macro']:7.1f} {m['train_seconds']:8.1f}")
    extract = results["frozen head"].get("extract_seconds")
    if extract is not None:
        print(f"(frozen rows: descriptor extraction of train {extract:.0f} s, shared by head and kNN, not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
