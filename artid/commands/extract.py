"""``artid extract``: images -> descriptor files (``<out>/<name>.npy`` + ``.json``)."""

from __future__ import annotations

import argparse
import logging
import os

import torch

from artid.commands.argtypes import positive_int
from artid.commands.common import (
    add_batch_size_argument,
    add_device_argument,
    add_threads_argument,
    add_workers_argument,
)
from artid.commands.crop_options import add_crop_arguments, crop_settings
from artid.commands.pipeline_options import add_extraction_arguments, parse_scales
from artid.commands.runtime_options import add_runtime_arguments
from artid.data.met import GT_FILES
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.extraction import (
    ExtractionSettings,
    extract_lists,
    met_sources,
)
from artid.extraction.remote import any_folder_source, any_list_source
from artid.models import DEFAULT_BACKBONE, build_embedder
from artid.models.precision import resolve_precision

HELP = (
    "extract global descriptors (GeM, multi-scale) of a Met-format dataset, an image folder or "
    "a list"
)
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", help="Met-format dataset root (ground-truth JSONs + images)")
    src.add_argument("--folder", help="a folder of images (searched recursively; unlabelled)")
    src.add_argument("--list", dest="list_file", help="text file with one 'PATH [LABEL]' per line")
    parser.add_argument(
        "--out", required=True, help="output folder: <out>/<split or name>.npy/.json"
    )
    parser.add_argument(
        "--splits",
        default="database,val,test",
        help=f"splits of --root to extract, comma-separated ({', '.join(GT_FILES)})",
    )
    parser.add_argument(
        "--name", help="output name for --folder/--list (default: folder name / list file stem)"
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_BACKBONE,
        help="backbone name (efficientnet_lite0, r18in, r50swsl, timm names, tv:<name>) "
        "or an artid checkpoint file",
    )
    parser.add_argument("--weights", help="local weights file for a --model backbone name")
    add_extraction_arguments(parser)
    add_batch_size_argument(
        parser,
        None,
        "; default 32 on GPU, 1 on CPU (measured fastest there: "
        "benchmarks/extract_throughput.py --variants)",
    )
    add_workers_argument(
        parser,
        None,
        "; default 0 on a CPU device, where decoding in the main "
        "process leaves the cores to the network; 4 with a GPU",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16"],
        help="computation precision (float16 on GPU only); files are float32",
    )
    add_runtime_arguments(parser)
    parser.add_argument(
        "--shard-size", type=positive_int, default=256, help="images per resumable shard"
    )
    add_threads_argument(parser)
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="extract on a Ray cluster (auto, HOST:6379, ray://HOST:10001; none: a local one "
        "started for the run); --list / --folder may then be fsspec URLs (s3://, gs://, ...)",
    )
    parser.add_argument(
        "--ray-workers",
        type=positive_int,
        help="Ray workers (default: one per GPU with --device cuda, else one per --threads CPUs)",
    )
    add_crop_arguments(
        parser,
        "crop (query photos only; the database / mini studio photos stay whole)",
        "describe each photo from the box of its artwork: cam (class activation map of the "
        "model) or centre (a centred box); none: the whole photo",
    )


def run(args: argparse.Namespace) -> int:
    scales = parse_scales(args.scales)
    if args.ray is not None:
        from artid.extraction import ray_run  # lazily: Ray is an optional extra

        device = ray_run.ray_device(args.device)
    else:
        device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    workers = args.workers
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if gpu else 0
    settings = ExtractionSettings(
        scales=scales,
        max_size=args.max_size or None,
        dtype=args.dtype,
        batch_size=args.batch_size or (32 if gpu else 1),
        workers=workers,
        shard_size=args.shard_size,
        crop=crop_settings(args),
        runtime=args.runtime,
        precision=resolve_precision(args.precision, device),
    )
    if args.root:
        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
        unknown = [s for s in splits if s not in GT_FILES]
        if unknown or not splits:
            raise ArtidError(
                f"--splits: unknown split(s) {', '.join(unknown) or '(none)'}; "
                f"expected some of {', '.join(GT_FILES)}"
            )
        lists = met_sources(args.root, splits)
    elif args.folder:
        lists = [any_folder_source(args.folder, args.name, args.ray is not None)]
    else:
        lists = [any_list_source(args.list_file, args.name, args.ray is not None)]
    emb = build_embedder(args.model, weights=args.weights)
    log.info(
        "model %s (D=%d) on %s, scales %s, max size %s, batch %d, %d decoding workers",
        emb.spec["backbone"].get("name"),
        emb.dim,
        device,
        settings.scales,
        settings.max_size,
        settings.batch_size,
        settings.workers,
    )
    if args.ray is not None:
        results = ray_run.extract_lists_ray(
            lists, emb, args.out, settings, device, args.ray, args.ray_workers, args.threads or 1
        )
    else:
        results = extract_lists(lists, emb, args.out, settings, device)
    for name, dset in results.items():
        print(
            f"{name}: {dset.matrix.shape[0]} descriptors of dimension {dset.matrix.shape[1]} -> "
            f"{args.out}/{name}.npy"
        )
        for failure in dset.failures:
            print(f"  failed: {failure['path']}: {failure['error']}")
    return 0
