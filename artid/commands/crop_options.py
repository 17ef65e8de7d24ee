"""The ``--crop`` options that ``artid extract`` and ``artid index build`` share, and their
checks."""

from __future__ import annotations

import argparse
import math

from artid.commands.argtypes import fraction, non_negative_int
from artid.errors import ArtidError
from artid.localisation import CAM_METHODS, CROP_METHODS, CropSettings
from artid.localisation.crop import MAX_MARGIN


def _margin(text: str) -> float:
    """``--crop-margin``: a number in [0, MAX_MARGIN] (no inf or nan)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_MARGIN:
        raise argparse.ArgumentTypeError(
            f"must be a number between 0 and {MAX_MARGIN:g}, got {text!r}"
        )
    return value


def add_crop_arguments(parser: argparse.ArgumentParser, title: str, crop_help: str) -> None:
    """``--crop`` (with ``crop_help``) and its tuning options, in a group named ``title``."""
    d = CropSettings()
    crop = parser.add_argument_group(title)
    crop.add_argument("--crop", default="none", choices=CROP_METHODS, help=crop_help)
    crop.add_argument(
        "--crop-margin",
        type=_margin,
        default=d.margin,
        help="cam: grow each side of the box by this share of its width / height "
        f"(0..{MAX_MARGIN:g})",
    )
    crop.add_argument(
        "--crop-threshold",
        default=str(d.threshold),
        help="cam: share of the map's range that is kept (0..1), or otsu",
    )
    crop.add_argument("--cam", default=d.cam, choices=CAM_METHODS, help="cam: the activation map")
    crop.add_argument(
        "--cam-size",
        type=non_negative_int,
        default=d.cam_size,
        help="cam: longer side the photo is resized to for the map (0 or unset: as decoded)",
    )
    crop.add_argument(
        "--crop-share", type=fraction, default=d.centre_share, help="centre: side share of the box"
    )


def crop_settings(args: argparse.Namespace) -> CropSettings | None:
    """The ``--crop*`` options -> crop settings (None for ``--crop none``), refusals naming the
    option."""
    if args.crop == "none":
        return None
    if args.cam_size and args.cam_size < 32:
        raise ArtidError(
            f"--cam-size must be at least 32 pixels (or 0: as decoded), got {args.cam_size}"
        )
    if args.crop == "centre" and args.crop_share <= 0:
        raise ArtidError(f"--crop-share must be in (0, 1], got {args.crop_share}")
    text = str(args.crop_threshold).strip().lower()
    try:
        threshold: float | str = text if text == "otsu" else float(text)
    except ValueError:
        raise ArtidError(
            f"--crop-threshold: expected a share in (0, 1) or otsu, got {text!r}"
        ) from None
    return CropSettings(
        method=args.crop,
        cam=args.cam,
        threshold=threshold,
        margin=args.crop_margin,
        cam_size=args.cam_size or None,
        centre_share=args.crop_share,
    )
