"""``artid evaluate``: descriptors -> the Met benchmark's numbers, a run folder and a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from artid.commands.argtypes import fraction
from artid.commands.common import add_faiss_gpu_argument
from artid.commands.pipeline_options import add_pipeline_arguments, pipeline_config
from artid.descriptors import DescriptorSet, load_descriptors
from artid.errors import ArtidError
from artid.evaluation.reranking import RerankSetup

HELP = (
    "Evaluate descriptors on the Met protocol: PCA-whitening, kNN classifier, (k, tau) autotune "
    "on val, GAP / GAP- / ACC on test, and a run folder with results.json, the grid and an HTML "
    "report."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("descriptors (one of three ways)")
    src.add_argument(
        "--descriptors",
        metavar="DIR",
        type=Path,
        action="append",
        help="folder written by `artid extract` (DIR/database, DIR/val, DIR/test); give it twice "
        "or more to concatenate the descriptors of several models (thesis appendix B.1: each "
        "part normalised and whitened on its own, then concatenated and re-normalised)",
    )
    src.add_argument(
        "--database-name",
        default="database",
        choices=["database", "mini"],
        help="which database file of --descriptors to use (mini: the mini Met database)",
    )
    src.add_argument(
        "--database", metavar="FILE", type=Path, help="database descriptor file (.npy + .json)"
    )
    src.add_argument("--val", metavar="FILE", type=Path, help="validation descriptor file")
    src.add_argument("--test", metavar="FILE", type=Path, help="test descriptor file")
    src.add_argument(
        "--official-pickle",
        metavar="PKL",
        type=Path,
        help="the dataset's official descriptors.pkl (loaded safely: arrays only)",
    )
    src.add_argument(
        "--ground-truth",
        metavar="ROOT",
        type=Path,
        help="dataset root (or its ground_truth folder's parent) for --official-pickle",
    )
    add_pipeline_arguments(p)
    c = p.add_argument_group("search")
    c.add_argument(
        "--autotune",
        action="store_true",
        help="tune k and tau on the validation queries by GAP (the default without --k/--tau)",
    )
    add_faiss_gpu_argument(c)
    r = p.add_argument_group("images of the re-ranking stage")
    r.add_argument(
        "--images",
        metavar="ROOT",
        type=Path,
        help="with --rerank: the dataset root the descriptor files' image paths are relative to "
        "(the --root given to `artid extract`)",
    )
    r.add_argument(
        "--local-features",
        metavar="DIR",
        type=Path,
        help="with --rerank: cache of the images' local features, one file per image, reused by "
        "later runs and resumed after an interruption (default: <first --descriptors>/"
        "local_features, else <out>/local_features)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        metavar="RUN_DIR",
        type=Path,
        help="run folder (default runs/evaluate-<date>-<time>)",
    )
    o.add_argument("--name", default="", help="row name in the table and report")
    o.add_argument(
        "--distractor-ratio",
        type=fraction,
        action="append",
        metavar="R",
        help="also report test GAP with only this share of distractors (repeatable; default 0.1 "
        "and 0.5)",
    )
    o.add_argument(
        "--val-distractor-ratio",
        type=fraction,
        default=1.0,
        metavar="R",
        help="tune on val with only this share of its distractors (thesis table B.1)",
    )
    o.add_argument("--no-report", action="store_true", help="skip the plots and HTML page")


def load_inputs(
    args: argparse.Namespace,
) -> tuple[DescriptorSet, DescriptorSet | None, DescriptorSet | None]:
    """The (database, val, test) descriptor sets named by the arguments."""
    explicit = any(x is not None for x in (args.database, args.val, args.test))
    ways = sum([args.descriptors is not None, explicit, args.official_pickle is not None])
    if ways != 1:
        raise ArtidError(
            "give exactly one of: --descriptors DIR; --database/--val/--test files; "
            "--official-pickle PKL --ground-truth ROOT"
        )
    if args.official_pickle is not None:
        if args.ground_truth is None:
            raise ArtidError(
                "--official-pickle needs --ground-truth ROOT (the folder with the Met JSON files)"
            )
        from artid.data.official import load_official_descriptors

        sets = load_official_descriptors(args.official_pickle, args.ground_truth)
        return sets["database"], sets["val"], sets["test"]
    if args.descriptors is not None:
        folders = [_folder_sets(d, args.database_name) for d in args.descriptors]
        present = [tuple(x is not None for x in f) for f in folders]
        if len(set(present)) > 1:
            raise ArtidError(
                "the --descriptors folders hold different splits: each needs the same val/test "
                "files"
            )
        parts = tuple(None if f[0] is None else list(f) for f in zip(*folders))
        return parts  # type: ignore[return-value]
    if args.database is None:
        raise ArtidError("--database FILE is needed with --val/--test")
    database = load_descriptors(args.database)
    val = load_descriptors(args.val) if args.val is not None else None
    test = load_descriptors(args.test) if args.test is not None else None
    return database, val, test


def _folder_sets(
    d: Path, database_name: str
) -> tuple[DescriptorSet, DescriptorSet | None, DescriptorSet | None]:
    if not d.is_dir():
        raise ArtidError(f"descriptor folder {d} not found")
    val_path = d / "val" if (d / "val.npy").exists() else None
    test_path = d / "test" if (d / "test.npy").exists() else None
    if val_path is None and test_path is None:
        raise ArtidError(f"{d} holds neither val.npy nor test.npy: extract the query splits first")
    return (
        load_descriptors(d / database_name),
        load_descriptors(val_path) if val_path is not None else None,
        load_descriptors(test_path) if test_path is not None else None,
    )


#: ``--faiss-gpu`` -> :attr:`PipelineConfig.use_gpu`.
FAISS_GPU = {"auto": None, "on": True, "off": False}


def _rerank_setup(args: argparse.Namespace, config: Any, out: Path) -> RerankSetup | None:
    """The images and feature cache of the re-ranking stage ``config`` asks for, or None."""
    if config.rerank is None:
        if args.images is not None or args.local_features is not None:
            raise ArtidError("--images and --local-features are for re-ranking: add --rerank K")
        return None
    if args.images is None:
        raise ArtidError(
            "--rerank reads the images: give --images ROOT (the --root given to `artid extract`)"
        )
    first = args.descriptors[0] if args.descriptors else out
    cache = args.local_features or first / "local_features"
    setup = RerankSetup(config.rerank, args.images, cache)
    setup.check()
    return setup


def run(args: argparse.Namespace) -> int:
    from artid.evaluation.report import format_table
    from artid.evaluation.run import DEFAULT_RATIOS, evaluate

    config = pipeline_config(args, use_gpu=FAISS_GPU[args.faiss_gpu])
    if args.autotune and args.k is not None:
        raise ArtidError("--autotune and --k/--tau exclude each other")
    if not 0.0 <= args.val_distractor_ratio <= 1.0:
        raise ArtidError(
            f"--val-distractor-ratio must be within [0, 1], got {args.val_distractor_ratio}"
        )
    for r in args.distractor_ratio or ():
        if not 0.0 <= r <= 1.0:
            raise ArtidError(f"--distractor-ratio must be within [0, 1], got {r}")
    database, val, test = load_inputs(args)
    out = args.out or Path("runs") / time.strftime("evaluate-%Y%m%d-%H%M%S")
    rerank = _rerank_setup(args, config, out)
    results = evaluate(
        database,
        val,
        test,
        out,
        config=config,
        distractor_ratios=tuple(args.distractor_ratio) if args.distractor_ratio else DEFAULT_RATIOS,
        name=args.name or f"whiten {args.whiten}",
        report=not args.no_report,
        val_distractor_ratio=args.val_distractor_ratio,
        rerank=rerank,
    )
    for split in ("val", "test"):
        if split in results:
            print(format_table([results], split))
            print()
    if rerank is not None and "test" in results["rerank"]["paired"]:
        diff = results["rerank"]["paired"]["test"]
        print(
            f"re-ranking (K={results['rerank']['top']}) minus kNN only, test, paired: "
            + "  ".join(
                f"{m} {100 * d['value']:+.1f} ± {100 * d['se']:.1f}" for m, d in diff.items()
            )
        )
    print(
        f"run folder: {results['run_dir']}"
        + (f" (report: {Path(results['run_dir']) / 'index.html'})" if "report" in results else "")
    )
    return 0
