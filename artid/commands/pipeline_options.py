"""The pipeline's options, one vocabulary for ``artid evaluate`` and ``artid index build``.

Both commands add the pipeline options with :func:`add_pipeline_arguments` and build their
:class:`artid.retrieval.pipeline.PipelineConfig` with :func:`pipeline_config`, so ``--whiten``,
``--dim``, ``--k``, ``--tau``, ``--qe``, ``--dba``, ``--index``, ``--nprobe`` and ``--rerank`` have
the same names, defaults and meanings in both: what ``artid evaluate`` measures is what a bundle
built with the same options serves. :func:`add_extraction_arguments` gives ``index build`` the
image options of ``artid extract`` (``--scales``, multi-scale by default, and ``--max-size``).
"""

from __future__ import annotations

import argparse
from typing import Any

from artid.commands.argtypes import fraction, non_negative_int, positive_float, positive_int
from artid.commands.common import add_max_size_argument
from artid.data.images import DEFAULT_MAX_SIZE
from artid.errors import ArtidError

#: ``--whiten`` choices (those of :class:`artid.retrieval.pipeline.PipelineConfig`).
WHITEN_CHOICES = ("none", "pcaw", "auto")
#: The image pyramids ``--scales`` names (those of :mod:`artid.models.embedder`).
NAMED_SCALES = {"ms": (1.0, 2.0**-0.5, 0.5), "ss": (1.0,)}
#: ``--scales`` when not given: multi-scale, as ``artid extract`` describes images.
DEFAULT_SCALES = "ms"


def expansion_count(text: str) -> int | None:
    """``--qe`` / ``--dba``: ``auto`` -> None (tuned on val), else a neighbour count >= 0."""
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a neighbour count or 'auto', got {text!r}"
        ) from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"the neighbour count must be 0 or more, got {n}")
    return n


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The pipeline's options: whitening, classifier, expansion, index and re-ranking."""
    w = parser.add_argument_group("whitening")
    w.add_argument(
        "--whiten",
        choices=WHITEN_CHOICES,
        default="auto",
        help="none: raw descriptors; pcaw: PCA-whitening learned on the database (the paper's "
        "protocol with --dim 512); auto: whichever of raw, PCAw at --dim and at half of it gives "
        "the best validation GAP",
    )
    w.add_argument(
        "--dim",
        type=positive_int,
        default=512,
        help="whitening output dimension (capped, with a warning, at half the number of "
        "database images)",
    )
    w.add_argument(
        "--shrinkage", type=fraction, default=1.0, help="whitening shrinkage (1 full, 0 plain PCA)"
    )
    c = parser.add_argument_group("classifier")
    c.add_argument(
        "--k", type=positive_int, help="fixed number of neighbours (with --tau; default: tuned)"
    )
    c.add_argument("--tau", type=positive_float, help="fixed softmax temperature, > 0 (with --k)")
    c.add_argument(
        "--qe",
        type=expansion_count,
        default=0,
        metavar="N|auto",
        help="alpha query expansion with the N nearest database images (0 off; auto: N tuned "
        "on val)",
    )
    c.add_argument(
        "--dba",
        type=expansion_count,
        default=0,
        metavar="N|auto",
        help="database-side augmentation with N neighbours (0 off; auto: tuned on val)",
    )
    c.add_argument(
        "--index",
        choices=("exact", "ivf", "ivfpq"),
        default="exact",
        help="exact search (the benchmark protocol), an approximate faiss IVF-Flat index, or "
        "ivfpq: IVF-PQ fast-scan codes (a large collection), the short list re-scored exactly",
    )
    c.add_argument(
        "--nprobe",
        type=positive_int,
        default=32,
        help="IVF cells visited per query (with --index ivf / ivfpq)",
    )
    c.add_argument(
        "--rescore",
        type=positive_int,
        default=4,
        help="--index ivfpq: short list of rescore x k codes re-ranked by exact similarity",
    )
    c.add_argument(
        "--storage",
        choices=("float32", "float16"),
        default="float32",
        help="dtype the database descriptors are kept and saved in (float16: half the memory)",
    )
    r = parser.add_argument_group("re-ranking by spatial verification")
    r.add_argument(
        "--rerank",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="verify the top K database images of each query with SIFT keypoints and a "
        "homography and fuse the verified points into the kNN answer, the rule tuned on val "
        "(0: off; 50 is the usual choice)",
    )


def pipeline_config(args: argparse.Namespace, **overrides: Any) -> Any:
    """The :class:`PipelineConfig` the pipeline options ask for (``overrides``: e.g. ``use_gpu``).

    Raises:
        ArtidError: settings that cannot work together, naming the options.
    """
    from artid.retrieval.pipeline import PipelineConfig
    from artid.retrieval.rerank import RerankConfig

    if (args.k is None) != (args.tau is None):
        raise ArtidError("give both --k and --tau, or neither (then they are tuned on val)")
    settings: dict[str, Any] = dict(
        whiten=args.whiten,
        dim=args.dim,
        shrinkage=args.shrinkage,
        k=args.k,
        tau=args.tau,
        index=args.index,
        nprobe=args.nprobe,
        rescore=args.rescore,
        storage=args.storage,
        qe_n=args.qe,
        dba_n=args.dba,
        rerank=RerankConfig(top=args.rerank) if args.rerank else None,
    )
    settings.update(overrides)
    config = PipelineConfig(**settings)
    try:
        config.check()
    except ArtidError as exc:
        raise ArtidError(
            f"{exc} (--whiten/--dim/--shrinkage/--k/--tau/--qe/--dba/--index/--nprobe/--rescore/"
            "--storage/--rerank)"
        ) from None
    return config


def parse_scales(text: str) -> tuple[float, ...]:
    """``ms`` / ``ss`` / comma-separated factors in (0, 4] -> scales (as ``artid extract``).

    Raises:
        ArtidError: naming ``--scales``.
    """
    text = text.strip().lower()
    if text in NAMED_SCALES:
        return NAMED_SCALES[text]
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ArtidError(
            f"--scales: expected ms, ss or numbers like 1,0.7071,0.5, got {text!r}"
        ) from None
    if not scales or any(not 0 < s <= 4 for s in scales):
        raise ArtidError(f"--scales: factors must be in (0, 4], got {text!r}")
    return scales


def add_extraction_arguments(parser: argparse._ActionsContainer) -> None:
    """``--scales`` (default multi-scale) and ``--max-size`` (0: original size), as ``extract``."""
    parser.add_argument(
        "--scales",
        default=DEFAULT_SCALES,
        help="ms (1, 2^-0.5, 1/2), ss (1), or factors like 1,0.5",
    )
    add_max_size_argument(parser, DEFAULT_MAX_SIZE, keep_original=True)


class _Removed(argparse.Action):
    """An option that is gone: using it is an error saying what replaces it."""

    def __init__(self, option_strings: list[str], dest: str, instead: str, **kwargs: Any) -> None:
        kwargs.update(nargs="?", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.instead = instead

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} is gone: use {self.instead}")


def add_removed_option(parser: argparse._ActionsContainer, name: str, instead: str) -> None:
    """``name`` refused with a message naming what replaces it (hidden from ``--help``)."""
    parser.add_argument(name, action=_Removed, instead=instead)
