"""``artid evaluate``: descriptors -> the Met benchmark's numbers, a run folder and a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from artid.descriptors import DescriptorSet, load_descriptors
from artid.errors import ArtidError
from artid.evaluation.reranking import RerankSetup
from artid.retrieval.pipeline import WHITEN_MODES, PipelineConfig
from artid.retrieval.rerank import RerankConfig

HELP = ("Evaluate descriptors on the Met protocol: PCA-whitening, kNN classifier, (k, tau) autotune on val, "
        "GAP / GAP- / ACC on test, and a run folder with results.json, the grid and an HTML report.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("descriptors (one of three ways)")
    src.add_argument("--descriptors", metavar="DIR", type=Path, action="append",
                     help="folder written by `artid extract` (DIR/database, DIR/val, DIR/test); give it twice "
                          "or more to concatenate the descriptors of several models (thesis appendix B.1: each "
                          "part normalised and whitened on its own, then concatenated and re-normalised)")
    src.add_argument("--database-name", default="database", choices=["database", "mini"],
                     help="which database file of --descriptors to use (mini: the mini Met database)")
    src.add_argument("--database", metavar="FILE", type=Path, help="database descriptor file (.npy + .json)")
    src.add_argument("--val", metavar="FILE", type=Path, help="validation descriptor file")
    src.add_argument("--test", metavar="FILE", type=Path, help="test descriptor file")
    src.add_argument("--official-pickle", metavar="PKL", type=Path,
                     help="the dataset's official descriptors.pkl (loaded safely: arrays only)")
    src.add_argument("--ground-truth", metavar="ROOT", type=Path,
                     help="dataset root (or its ground_truth folder's parent) for --official-pickle")
    w = p.add_argument_group("whitening")
    w.add_argument("--whiten", choices=WHITEN_MODES, default="auto",
                   help="none: raw descriptors; pcaw: PCA-whitening learned on the database (the paper's "
                        "protocol with --dim 512); auto: whichever of raw, PCAw at --dim and at half of it "
                        "gives the best validation GAP")
    w.add_argument("--dim", type=int, default=512,
                   help="whitening output dimension (capped, with a warning, at half the number of database images)")
    w.add_argument("--shrinkage", type=float, default=1.0, help="whitening shrinkage (1 full, 0 plain PCA)")
    c = p.add_argument_group("classifier")
    c.add_argument("--k", type=int, help="fixed number of neighbours (with --tau)")
    c.add_argument("--tau", type=float, help="fixed softmax temperature (with --k)")
    c.add_argument("--autotune", action="store_true",
                   help="tune k and tau on the validation queries by GAP (the default without --k/--tau)")
    c.add_argument("--qe", type=_expansion, default=0, metavar="N|auto",
                   help="alpha query expansion with the N nearest database images (0 off; auto: N tuned on val)")
    c.add_argument("--dba", type=_expansion, default=0, metavar="N|auto",
                   help="database-side augmentation with N neighbours (0 off; auto: tuned on val)")
    c.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="where faiss searches (auto: the GPU when faiss has one)")
    c.add_argument("--index", choices=["exact", "ivf"], default="exact",
                   help="exact search (the benchmark protocol) or an approximate faiss IVF-Flat index")
    c.add_argument("--nprobe", type=int, default=32, help="IVF cells visited per query (with --index ivf)")
    r = p.add_argument_group("re-ranking by spatial verification (SIFT matches + a MAGSAC homography)")
    r.add_argument("--rerank", type=int, default=0, metavar="K",
                   help="verify the top K database images of each query and fuse the inlier counts into the "
                        "kNN answer, the rule tuned on val (0: off; 50 is the service's default)")
    r.add_argument("--images", metavar="ROOT", type=Path,
                   help="with --rerank: the dataset root the descriptor files' image paths are relative to "
                        "(the --root given to `artid extract`)")
    r.add_argument("--local-features", metavar="DIR", type=Path,
                   help="with --rerank: cache of the images' local features, one file per image, reused by "
                        "later runs and resumed after an interruption (default: <first --descriptors>/"
                        "local_features, else <out>/local_features)")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="RUN_DIR", type=Path,
                   help="run folder (default runs/evaluate-<date>-<time>)")
    o.add_argument("--name", default="", help="row name in the table and report")
    o.add_argument("--distractor-ratio", type=float, action="append", metavar="R",
                   help="also report test GAP with only this share of distractors (repeatable; default 0.1 and 0.5)")
    o.add_argument("--val-distractor-ratio", type=float, default=1.0, metavar="R",
                   help="tune on val with only this share of its distractors (thesis table B.1)")
    o.add_argument("--no-report", action="store_true", help="skip the plots and HTML page")


def _expansion(text: str) -> int | None:
    """``auto`` -> None (tuned on val), else a non-negative neighbour count."""
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a neighbour count or 'auto', got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"the neighbour count must be 0 or more, got {n}")
    return n


def load_inputs(args: argparse.Namespace) -> tuple[DescriptorSet, DescriptorSet | None, DescriptorSet | None]:
    """The (database, val, test) descriptor sets named by the arguments."""
    explicit = any(x is not None for x in (args.database, args.val, args.test))
    ways = sum([args.descriptors is not None, explicit, args.official_pickle is not None])
    if ways != 1:
        raise ArtidError("give exactly one of: --descriptors DIR; --database/--val/--test files; "
                         "--official-pickle PKL --ground-truth ROOT")
    if args.official_pickle is not None:
        if args.ground_truth is None:
            raise ArtidError("--official-pickle needs --ground-truth ROOT (the folder with the Met JSON files)")
        from artid.data.official import load_official_descriptors

        sets = load_official_descriptors(args.official_pickle, args.ground_truth)
        return sets["database"], sets["val"], sets["test"]
    if args.descriptors is not None:
        folders = [_folder_sets(d, args.database_name) for d in args.descriptors]
        present = [tuple(x is not None for x in f) for f in folders]
        if len(set(present)) > 1:
            raise ArtidError("the --descriptors folders hold different splits: each needs the same val/test files")
        return tuple(None if f[0] is None else [x for x in f] for f in zip(*folders))  # type: ignore[return-value]
    if args.database is None:
        raise ArtidError("--database FILE is needed with --val/--test")
    database = load_descriptors(args.database)
    val = load_descriptors(args.val) if args.val is not None else None
    test = load_descriptors(args.test) if args.test is not None else None
    return database, val, test


def _folder_sets(d: Path, database_name: str) -> tuple[DescriptorSet, DescriptorSet | None, DescriptorSet | None]:
    if not d.is_dir():
        raise ArtidError(f"descriptor folder {d} not found")
    val_path = d / "val" if (d / "val.npy").exists() else None
    test_path = d / "test" if (d / "test.npy").exists() else None
    if val_path is None and test_path is None:
        raise ArtidError(f"{d} holds neither val.npy nor test.npy: extract the query splits first")
    return (load_descriptors(d / database_name),
            load_descriptors(val_path) if val_path is not None else None,
            load_descriptors(test_path) if test_path is not None else None)


def _rerank_setup(args: argparse.Namespace, out: Path) -> RerankSetup | None:
    """The re-ranking the arguments ask for, or None."""
    if args.rerank < 0:
        raise ArtidError(f"--rerank K needs K >= 0, got {args.rerank}")
    if args.rerank == 0:
        if args.images is not None or args.local_features is not None:
            raise ArtidError("--images and --local-features are for re-ranking: add --rerank K")
        return None
    if args.images is None:
        raise ArtidError("--rerank reads the images: give --images ROOT (the --root given to `artid extract`)")
    cache = args.local_features or (args.descriptors[0] if args.descriptors else out) / "local_features"
    setup = RerankSetup(RerankConfig(top=args.rerank), args.images, cache)
    setup.check()
    return setup


def run(args: argparse.Namespace) -> int:
    from artid.evaluation.report import format_table
    from artid.evaluation.run import DEFAULT_RATIOS, evaluate

    if (args.k is None) != (args.tau is None):
        raise ArtidError("give both --k and --tau, or neither (then they are tuned on val)")
    if args.autotune and args.k is not None:
        raise ArtidError("--autotune and --k/--tau exclude each other")
    if not 0.0 <= args.val_distractor_ratio <= 1.0:
        raise ArtidError(f"--val-distractor-ratio must be within [0, 1], got {args.val_distractor_ratio}")
    for r in args.distractor_ratio or ():
        if not 0.0 <= r <= 1.0:
            raise ArtidError(f"--distractor-ratio must be within [0, 1], got {r}")
    config = PipelineConfig(whiten=args.whiten, dim=args.dim, shrinkage=args.shrinkage, k=args.k, tau=args.tau,
                            index=args.index, nprobe=args.nprobe, qe_n=args.qe, dba_n=args.dba,
                            use_gpu={"auto": None, "cpu": False, "gpu": True}[args.device])
    try:
        config.check()
    except ArtidError as exc:
        raise ArtidError(f"{exc} (--whiten/--dim/--shrinkage/--k/--tau)") from None
    database, val, test = load_inputs(args)
    out = args.out or Path("runs") / time.strftime("evaluate-%Y%m%d-%H%M%S")
    rerank = _rerank_setup(args, out)
    results = evaluate(
        database, val, test, out, config=config,
        distractor_ratios=tuple(args.distractor_ratio) if args.distractor_ratio else DEFAULT_RATIOS,
        name=args.name or f"whiten {args.whiten}", report=not args.no_report,
        val_distractor_ratio=args.val_distractor_ratio, rerank=rerank,
    )
    for split in ("val", "test"):
        if split in results:
            print(format_table([results], split))
            print()
    if rerank is not None and "test" in results["rerank"]["paired"]:
        diff = results["rerank"]["paired"]["test"]
        print(f"re-ranking (K={results['rerank']['top']}) minus kNN only, test, paired: "
              + "  ".join(f"{m} {100 * d['value']:+.1f} ± {100 * d['se']:.1f}" for m, d in diff.items()))
    print(f"run folder: {results['run_dir']}" + (f" (report: {Path(results['run_dir']) / 'index.html'})"
                                                  if "report" in results else ""))
    return 0
