"""Changing an existing bundle without rebuilding it: ``artid index add`` and
``artid index remove``.

New images are described with the bundle's own models, size and scales and added to its pipeline
(:meth:`artid.retrieval.pipeline.KNNPipeline.add`: projected with its whitening, put in its index);
removed ones leave it (:meth:`~artid.retrieval.pipeline.KNNPipeline.keep`). The pipeline's k, tau,
expansion and re-ranking rule are kept; the thresholds are calibrated again, with the build's
target rate of accepted distractors, on the validation photos the bundle keeps
(:mod:`artid.service.recalibration`: the scores move with the number of artworks). A bundle
that re-ranks keeps its local features in step: new images get theirs (with the stage's SIFT
settings), removed ones lose them.
Each change holds the bundle's writer lock from reading the bundle to committing the new
generation, so a concurrent change is refused instead of being silently undone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from artid.errors import ArtidError
from artid.service import bundle as bundles
from artid.service import describing
from artid.service.collection import Artwork, read_collection
from artid.service.recalibration import recalibrated
from artid.service.reranking import store_of


class AddResult(NamedTuple):
    """What :func:`add_to_bundle` did: the artworks added, and ``{"path", "error"}`` of each image
    that could not be read (paths as given: the source folder joined with the image's path)."""

    artworks: list[Artwork]
    failures: list[dict[str, str]]


def add_to_bundle(
    bundle_dir: str | Path,
    source: str | Path,
    keys: list[str] | None = None,
    metadata: str | Path | None = None,
    device: str = "cpu",
    workers: int = 1,
) -> AddResult:
    """Add the artworks of a plain collection folder to an existing bundle.

    Args:
        bundle_dir: the bundle.
        source: a collection folder (one sub-folder of images per artwork).
        keys: only these sub-folders (default: all).
        metadata: metadata file (default: the folder's ``metadata.csv`` / ``.json``).
        device: torch device for the model.
        workers: image-decoding processes.

    Returns:
        The artworks added and the images that could not be read (also kept in the bundle's
        history).

    Raises:
        ArtidError: another change of the bundle is running (the lock is held from reading the
            bundle to committing the new generation, so no change is lost), unreadable inputs.
    """
    from artid.models import build_embedder
    from artid.service.bundle_runtime import recorded, serving

    bundle_dir = Path(bundle_dir)
    work = bundle_dir / describing.WORK
    with bundles.changing(bundle_dir) as change:  # no other change may commit meanwhile
        data = change.load()
        collection = read_collection(
            source, metadata=metadata, first_label=bundles.next_label(data), keys=keys
        )
        existing = {a.key for a in data.artworks}
        clash = [a.key for a in collection.artworks if a.key in existing]
        if clash:
            raise ArtidError(
                f"artwork {', '.join(map(repr, clash))} is already in the bundle "
                "(remove it first to replace its images)"
            )
        runtime = recorded(data.extraction)
        if runtime.runtime != "torch" and device != "cpu":
            raise ArtidError(f"the bundle's images were described with {runtime.describe()}, "
                             "which runs on the CPU: add with --device cpu")
        raws = []
        for i, model in enumerate(data.models):
            ref = str(model.get("ref", ""))
            embedder = build_embedder(
                str(bundle_dir / ref) if (bundle_dir / ref).is_file() else ref
            )
            raws.append(
                describing.describe(
                    collection.entries,
                    collection.image_root,
                    embedder,
                    data.extraction,
                    work,
                    f"added-{i}",
                    device,
                    workers,
                    calibration=serving(bundle_dir, runtime),
                )
            )
        raw = raws[0]
        artworks = describing.keep_described(collection.artworks, raw)
        failures = describing.named_failures(raw, collection.image_root)
        local = None
        reranker = data.pipeline.reranker
        if reranker is not None:  # a re-ranking bundle keeps the new images' features in step
            added = store_of(raw.entries, collection.image_root, work, reranker.config, "added")
            local = [added[i] for i in range(len(added))]
        thumbs = describing.store_thumbnails(bundle_dir, artworks, raw, collection.image_root)
        new = bundles.with_artworks(
            data,
            artworks,
            [r.matrix for r in raws],
            raw.entries,
            thumbs,
            failures=failures,
            local=local,
        )
        new, note = recalibrated(bundle_dir, new)
        operation = f"add {len(artworks)} artwork(s) from {source}; {note}"
        change.commit(new, operation, failures=failures)
    shutil.rmtree(bundle_dir / describing.WORK, ignore_errors=True)
    return AddResult(artworks, failures)


def remove_from_bundle(bundle_dir: str | Path, keys: list[str]) -> None:
    """Remove artworks (by key) and all their images from a bundle.

    Raises:
        ArtidError: a key not in the bundle, removing every artwork, or another change running.
    """
    with bundles.changing(bundle_dir) as change:
        data = bundles.without_artworks(change.load(), keys)
        data, note = recalibrated(Path(bundle_dir), data)
        change.commit(data, f"remove {', '.join(keys)}; {note}")
