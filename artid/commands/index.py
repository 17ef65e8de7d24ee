"""``artid index``: build an index bundle from a collection, add or remove artworks, describe one.

``index build`` takes the pipeline options of ``artid evaluate`` and the image options of
``artid extract`` with the same names, defaults and meanings
(:mod:`artid.commands.pipeline_options`): a bundle built with the options of an evaluation serves
what that evaluation measured.
"""

from __future__ import annotations

import argparse
import json

from artid.commands.argtypes import finite_float, fraction
from artid.commands.common import (
    add_batch_size_argument,
    add_device_argument,
    add_workers_argument,
)
from artid.commands.crop_options import add_crop_arguments, crop_settings
from artid.commands.index_info import print_failures, print_info
from artid.commands.pipeline_options import (
    add_extraction_arguments,
    add_pipeline_arguments,
    add_removed_option,
    parse_scales,
    pipeline_config,
)
from artid.commands.runtime_options import add_runtime_arguments

HELP = "build, extend or inspect an index bundle (what `artid recognize` and `artid serve` load)"
DEFAULT_MODEL = "efficientnet_lite0"


def _add_build(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "build",
        help="build a bundle from a collection folder or a Met-format root",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b.add_argument(
        "source",
        help="collection folder (one sub-folder of images per artwork, "
        "optional metadata.csv/.json) or a Met-format root (artid synth "
        "output, the real Met)",
    )
    b.add_argument(
        "--out",
        required=True,
        help="bundle folder to write (an existing bundle is replaced atomically)",
    )
    b.add_argument(
        "--val",
        help="validation photos of a collection folder: <key>/*.jpg of its "
        "artworks and _distractors/*.jpg of other things (a Met root "
        "uses its valset.json)",
    )
    b.add_argument(
        "--metadata",
        help="metadata file (default: metadata.csv or metadata.json in the collection)",
    )
    b.add_argument(
        "--split",
        choices=("database", "mini"),
        default="database",
        help="which exhibits of a Met-format root to index",
    )
    b.add_argument(
        "--model",
        action="append",
        metavar="MODEL",
        help=f"backbone name or artid checkpoint file (a checkpoint is copied into the "
        f"bundle; default {DEFAULT_MODEL}); give it twice or more to concatenate "
        "the descriptors of several models, as `artid evaluate` does with several "
        "--descriptors folders",
    )
    b.add_argument(
        "--weights",
        help="local weights file for a --model backbone name (e.g. a "
        "ViT's .safetensors); the network is kept in the bundle",
    )
    add_extraction_arguments(b)
    add_pipeline_arguments(b)
    add_removed_option(b, "--whitening-dim", "--whiten none|pcaw|auto and --dim N")
    t = b.add_argument_group("acceptance threshold")
    t.add_argument(
        "--false-accept",
        type=fraction,
        default=0.05,
        help="fraction of validation distractors the threshold may accept",
    )
    t.add_argument(
        "--threshold",
        type=finite_float(0.0, 1.0, below=True),
        help="fixed acceptance threshold (a confidence) instead of calibrating one",
    )
    add_device_argument(b)
    add_runtime_arguments(b)
    add_workers_argument(b, 1)
    add_batch_size_argument(b, None, "; default 32 on GPU, 1 on CPU (as `artid extract`)")
    b.add_argument(
        "--attributes",
        metavar="RUN",
        help="an `artid attributes train --model head` or `--model knn` run on the same "
        "backbone as --model: copied into the bundle, it tags every photo the "
        "service answers",
    )
    add_crop_arguments(
        b,
        "crop (validation and query photos; the collection's images stay whole)",
        "describe the validation photos, and every photo the bundle recognises, "
        "from the box of their artwork: cam (class activation map of the model) or "
        "centre (a centred box); none: whole photos. Recorded in the bundle",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_build(sub)

    a = sub.add_parser(
        "add",
        help="add the artworks of a collection folder to a bundle (nothing else is rebuilt; "
        "described with the bundle's runtime and precision)",
    )
    a.add_argument("bundle", help="bundle folder")
    a.add_argument("source", help="collection folder with one sub-folder per new artwork")
    a.add_argument("--only", nargs="+", metavar="KEY", help="add only these sub-folders")
    a.add_argument("--metadata", help="metadata file (default: the folder's metadata.csv/.json)")
    add_device_argument(a)
    add_workers_argument(a, 1)

    r = sub.add_parser("remove", help="remove artworks (by key) from a bundle")
    r.add_argument("bundle", help="bundle folder")
    r.add_argument("keys", nargs="+", metavar="KEY", help="artwork keys (folder names or Met ids)")

    i = sub.add_parser("info", help="what a bundle holds: models, counts, the pipeline, thresholds")
    i.add_argument("bundle", help="bundle folder")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")


def _device(asked: str, graph_runtime: bool) -> str:
    """The torch device to describe with: ``auto`` is the CPU where a graph runtime describes
    (ONNX Runtime / OpenVINO run on the CPU only), else as ``--device`` resolves."""
    from artid.devices import resolve_device

    return "cpu" if asked == "auto" and graph_runtime else str(resolve_device(asked))


def run(args: argparse.Namespace) -> int:
    from artid.service import builder
    from artid.service.bundle import read_manifest
    from artid.service.bundle_runtime import recorded

    if args.action == "build":
        options = builder.BuildOptions(
            models=tuple(args.model or [DEFAULT_MODEL]),
            weights=args.weights,
            max_size=args.max_size or None,
            scales=parse_scales(args.scales),
            pipeline=pipeline_config(args),
            target_false_accept=args.false_accept,
            threshold=args.threshold,
            device=_device(args.device, args.runtime in ("onnx", "openvino")),
            workers=args.workers,
            batch_size=args.batch_size,
            attributes=args.attributes,
            crop=crop_settings(args),
            runtime=args.runtime,
            precision=args.precision,
        )
        out = builder.build_bundle(
            args.source, args.out, options, val=args.val, metadata=args.metadata, split=args.split
        )
        print_info(read_manifest(out), str(out))
    elif args.action == "add":
        added = builder.add_to_bundle(
            args.bundle,
            args.source,
            keys=args.only,
            metadata=args.metadata,
            device=_device(args.device,
                           recorded(read_manifest(args.bundle).get("extraction", {})).runtime
                           != "torch"),
            workers=args.workers,
        )
        print(f"added {len(added.artworks)} artwork(s): {', '.join(a.key for a in added.artworks)}")
        print_failures(added.failures)
    elif args.action == "remove":
        builder.remove_from_bundle(args.bundle, args.keys)
        print(f"removed {len(args.keys)} artwork(s): {', '.join(args.keys)}")
    else:
        meta = read_manifest(args.bundle)
        if args.json:
            print(json.dumps(meta, indent=1))
        else:
            print_info(meta, args.bundle)
    return 0
