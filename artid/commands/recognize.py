"""``artid recognize``: which artwork of a bundle each photo shows (top 5, or "not recognised")."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from artid.commands.argtypes import positive_int
from artid.commands.common import add_bundle_query_arguments
from artid.commands.runtime_options import add_runtime_arguments

HELP = (
    "recognise photos with an index bundle: top-5 artworks with confidence, or 'not recognised' "
    "(and the photo's predicted attributes when the bundle has an attributes run)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="image files")
    add_bundle_query_arguments(parser)
    parser.add_argument(
        "--top", type=positive_int, default=5, help="matches listed per photo (>= 1)"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per photo, one per line"
    )
    add_runtime_arguments(parser, served=True)


def run(args: argparse.Namespace) -> int:
    from artid.data.images import ImageLoadError
    from artid.devices import resolve_device
    from artid.service.readers import drop_lease, write_lease
    from artid.service.recognizer import Recognizer

    device = str(resolve_device(args.device))
    recognizer = Recognizer.from_bundle(
        args.bundle, device=device, top=args.top, crop=not args.no_crop, rerank=args.rerank,
        runtime=args.runtime, precision=args.precision,
    )
    # a reader lease, as serve keeps: an `index add / remove` beside us keeps this generation
    generation = recognizer.data.generation
    if generation:
        write_lease(Path(args.bundle), [generation])
    try:
        return _answer(args, recognizer, ImageLoadError)
    finally:
        if generation:
            drop_lease(Path(args.bundle))


def _answer(args: argparse.Namespace, recognizer: Any, ImageLoadError: type[Exception]) -> int:
    failed = 0
    for path in args.photos:
        try:
            result = recognizer.recognize_paths([path])[0]
        except ImageLoadError as exc:
            failed += 1
            if args.json:
                print(json.dumps({"photo": path, "error": str(exc)}))
            else:
                print(f"{path}: error: {exc}")
            continue
        if args.json:
            print(json.dumps({"photo": path, **result.to_json()}))
            continue
        best = result.prediction.artwork
        if result.accepted:
            print(f"{path}: {best.title} ({best.key})  confidence {100 * result.confidence:.1f}%")
        else:
            print(
                f"{path}: not recognised  (closest: {best.title}, "
                f"confidence {100 * result.confidence:.1f}%, "
                f"threshold {100 * result.threshold:.1f}%; "
                f"log-odds {result.score:.2f} <= {result.threshold_score:.2f})"
            )
        if result.verified_inliers is not None:
            print(
                f"  verified by {result.verified_inliers} matching points"
                if result.verified_inliers
                else "  not verified by matching points"
            )
        if result.crop is not None:
            box = result.crop
            print(f"  described the artwork's box {box} (x0, y0, x1, y1 in the photo's pixels)")
        for rank, m in enumerate(result.matches, 1):
            who = ", ".join(x for x in (m.artwork.artist, m.artwork.date) if x)
            print(
                f"  {rank}. {m.artwork.title}{f' ({who})' if who else ''} [{m.artwork.key}]  "
                f"similarity {m.similarity:.3f}  share {100 * m.share:.1f}%"
            )
        if result.attributes is not None:
            tags = [
                f"{t.group + ': ' if t.group else ''}{t.name} {t.score:.2f}"
                for t in result.attributes
                if t.predicted
            ]
            print(f"  attributes: {'; '.join(tags)}")
    return 2 if failed else 0
