"""Options that several commands share, each with one meaning and one help text.

Every command builds its options from these functions, so ``--device`` means the same in
``extract``, ``index``, ``recognize``, ``serve``, ``train``, ``demo`` and ``attributes``: ``auto``
(the default) is CUDA when torch sees a GPU, else the CPU, resolved by
:func:`artid.devices.resolve_device`. Where faiss searches is a separate option, ``--faiss-gpu``.

:class:`Parser` is the ``argparse.ArgumentParser`` of every command and sub-command: it turns off
argparse's prefix matching (``--whiten`` is not taken for ``--whitening-dim``, nor ``--max-s`` for
``--max-size``). Sub-parsers made with ``add_subparsers().add_parser`` inherit the class.
"""

from __future__ import annotations

import argparse
from typing import Any

from artid.commands.argtypes import non_negative_int, positive_int

DEVICE_HELP = (
    "torch device for the network: auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda "
    "or cuda:N"
)
FAISS_GPU_HELP = (
    "where faiss searches: auto (a GPU when the installed faiss has one), on (a GPU; an error "
    "without one), off (the CPU)"
)
WORKERS_HELP = "image-decoding processes (0: decode in the main process)"
MAX_SIZE_HELP = "longer image side in pixels (images are resized down to it)"
BATCH_SIZE_HELP = "images per forward pass"
SEED_HELP = "seed of every random choice"
THREADS_HELP = "CPU threads for torch (default: torch's)"
RERANK_HELP = (
    "verify each photo's K nearest database images with SIFT (none: the bundle's K; 0: off; "
    "needs a bundle built with `index build --rerank K`)"
)
NO_CROP_HELP = (
    "describe whole photos even when the bundle was built with --crop cam|centre (its threshold "
    "was calibrated on cropped photos)"
)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` without abbreviations (an unknown prefix is an error, not a guess)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def add_device_argument(parser: argparse._ActionsContainer, extra: str = "") -> None:
    """``--device``, default ``auto``; resolve it with :func:`artid.devices.resolve_device`."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP + extra)


def add_faiss_gpu_argument(parser: argparse._ActionsContainer) -> None:
    """``--faiss-gpu {auto,on,off}``, default ``auto``."""
    parser.add_argument(
        "--faiss-gpu", choices=("auto", "on", "off"), default="auto", help=FAISS_GPU_HELP
    )


def add_workers_argument(
    parser: argparse._ActionsContainer, default: int | None, extra: str = ""
) -> None:
    """``--workers N``: image-decoding processes (``default`` None: the command chooses)."""
    parser.add_argument(
        "--workers", type=non_negative_int, default=default, help=WORKERS_HELP + extra
    )


def add_max_size_argument(
    parser: argparse._ActionsContainer, default: int, keep_original: bool = False
) -> None:
    """``--max-size PIXELS``; with ``keep_original``, 0 keeps each image's size."""
    parser.add_argument(
        "--max-size",
        type=non_negative_int if keep_original else positive_int,
        default=default,
        help=MAX_SIZE_HELP + ("; 0 keeps the original size" if keep_original else ""),
    )


def add_batch_size_argument(
    parser: argparse._ActionsContainer, default: int | None, extra: str = ""
) -> None:
    """``--batch-size N`` (``default`` None: the command chooses)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=default, help=BATCH_SIZE_HELP + extra
    )


def add_seed_argument(
    parser: argparse._ActionsContainer, default: int = 0, extra: str = ""
) -> None:
    """``--seed N``."""
    parser.add_argument("--seed", type=int, default=default, help=SEED_HELP + extra)


def add_threads_argument(parser: argparse._ActionsContainer) -> None:
    """``--threads N``: torch's CPU threads (default: torch's own choice)."""
    parser.add_argument("--threads", type=positive_int, default=None, help=THREADS_HELP)


def add_bundle_query_arguments(parser: argparse._ActionsContainer) -> None:
    """What ``recognize`` and ``serve`` share: ``--bundle``, ``--device``, ``--no-crop``,
    ``--rerank``."""
    parser.add_argument("--bundle", required=True, help="index bundle folder (`artid index build`)")
    add_device_argument(parser)
    parser.add_argument("--no-crop", action="store_true", help=NO_CROP_HELP)
    parser.add_argument("--rerank", type=non_negative_int, metavar="K", help=RERANK_HELP)
