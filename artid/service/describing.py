"""Describing a collection's images for a bundle: descriptors (resumable), thumbnails, failures.

Describing images is the long part of building or extending a bundle; :mod:`artid.extraction`
does it in shards kept under ``<bundle>/.work/`` so that an interrupted change resumes where it
stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from artid.data.entries import Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.service import bundle as bundles
from artid.service.collection import Artwork

if TYPE_CHECKING:
    from artid.localisation import CropSettings

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
#: Images per resumable shard of descriptor extraction.
CHUNK = 256
#: The bundle's sub-folder of resumable work (removed once a change is committed).
WORK = ".work"


def _cache_key(
    spec: dict[str, Any], settings: dict[str, Any], entries: list[Entry], root: Path
) -> str:
    h = hashlib.sha256(json.dumps([spec, settings, str(root.resolve())], sort_keys=True).encode())
    for e in entries:
        h.update(f"{e.path}\0{e.label}\n".encode())
    return h.hexdigest()[:16]


def describe(
    entries: list[Entry],
    image_root: Path,
    embedder: Any,
    settings: dict[str, Any],
    work: Path,
    name: str,
    device: Any = "cpu",
    workers: int = 1,
    crop: CropSettings | None = None,
    batch_size: int | None = None,
    calibration: Any = None,
) -> DescriptorSet:
    """Descriptors of images with :mod:`artid.extraction` (batched, resumable shards under
    ``work``), as ``artid extract`` computes them.

    Args:
        entries: images to describe (paths relative to ``image_root``).
        image_root: folder of the images.
        embedder: an :class:`artid.models.Embedder`.
        settings: ``max_size`` and ``scales``.
        work: folder of the resumable work (shards of an interrupted run are reused when the
            model, settings and images are the same).
        name: label of the progress bar and of the work files.
        device: torch device (``auto``: CUDA when there is one).
        workers: image-decoding processes (0: decode in this process).
        crop: crop each image to its artwork first (query and validation photos; never the
            studio photos).
        batch_size: images per forward pass (None: 32 on a GPU, 1 on the CPU, as extract).
        calibration: for a runtime record of int8 in ``settings``
            (:mod:`artid.service.bundle_runtime`), the calibration of its quantised model (the
            bundle's database images, the same for every list of a bundle).

    Returns:
        Descriptors, (M, D) float32 L2-normalised, of the images that could be read
        (M <= len(entries));
        the others are listed in ``failures``.
    """
    from artid.devices import resolve_device
    from artid.extraction import ExtractionSettings, ImageList, extract_list
    from artid.extraction.inference import RUNTIME_CACHE
    from artid.extraction.run import BatchEmbedder
    from artid.service.bundle_runtime import recorded

    device = resolve_device(str(device))
    if batch_size is None:  # as `artid extract`: measured fastest there
        batch_size = 32 if device.type == "cuda" else 1
    crop_spec = crop.spec() if crop is not None else None
    key = _cache_key(embedder.spec, {**settings, "crop": crop_spec}, entries, image_root)
    runtime = recorded(settings)
    extraction = ExtractionSettings(
        scales=tuple(float(s) for s in settings["scales"]),
        max_size=settings.get("max_size") or None,
        workers=workers,
        batch_size=batch_size,
        shard_size=CHUNK,
        crop=crop,
        runtime=runtime.runtime,
        precision=runtime.precision,
    )
    runner = None
    if (runtime.runtime, runtime.precision) != ("torch", "fp32"):  # exported beside the bundle
        runner = BatchEmbedder(embedder, extraction, device, work.parent / RUNTIME_CACHE,
                               calibration)
    return extract_list(
        ImageList(name, entries, image_root),
        embedder,
        work / f"{name}-{key}",
        extraction,
        device=device,
        runner=runner,
    )


def make_thumbnail(path: Path, size: int = THUMBNAIL_SIZE) -> bytes:
    """JPEG bytes of an image shrunk to ``size`` px on its longer side."""
    from artid.data.images import load_image

    buf = io.BytesIO()
    load_image(path, max_size=size).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def store_thumbnails(
    bundle_dir: Path, artworks: list[Artwork], dset: DescriptorSet, image_root: Path
) -> dict[int, str]:
    """Thumbnails of the artworks' first described images, stored in the bundle; label -> name."""
    first: dict[int, str] = {}
    for e in dset.entries:
        first.setdefault(e.label, e.path)
    out = {}
    for a in tqdm(artworks, desc="thumbnails", unit="artwork", disable=len(artworks) < 50):
        if a.label in first:
            out[a.label] = bundles.store_thumbnail(
                bundle_dir, make_thumbnail(image_root / first[a.label])
            )
    return out


def keep_described(artworks: list[Artwork], dset: DescriptorSet) -> list[Artwork]:
    """The artworks with at least one described image (the others are left out with a warning)."""
    present = set(int(x) for x in np.unique(dset.labels)) if len(dset.entries) else set()
    dropped = [a.key for a in artworks if a.label not in present]
    if dropped:
        log.warning(
            "%d artwork(s) have no readable image and are left out (first: %r)",
            len(dropped),
            dropped[0],
        )
    kept = [a for a in artworks if a.label in present]
    if not kept:
        raise ArtidError("no image of the collection could be read")
    return kept


def named_failures(dset: DescriptorSet, image_root: Path) -> list[dict[str, str]]:
    """``{"path", "error"}`` of the images ``dset`` could not describe, paths joined to
    ``image_root``."""
    return [{"path": str(image_root / f["path"]), "error": str(f["error"])} for f in dset.failures]
