"""Building index bundles: describe images, fit the pipeline as evaluation does, calibrate, write.

``build_bundle`` turns a collection (plain folder or Met-format root) into a bundle, holding
the bundle's writer lock for the whole build. The collection's images are described as
``artid extract`` describes a database, the validation photos as it describes queries, and
:class:`artid.retrieval.pipeline.KNNPipeline` is fitted on them with the same code and settings as
``artid evaluate`` (:func:`artid.service.fitting.fit_pipeline`); the bundle stores that pipeline
whole, and keeps the validation photos' descriptors its thresholds were calibrated on
(:mod:`artid.service.recalibration`), so that an edit can calibrate them again.
``add_to_bundle`` and ``remove_from_bundle`` (:mod:`artid.service.editing`, importable from here)
change an existing bundle without touching the rest.

Describing images is the long part; :mod:`artid.service.describing` does it in resumable
shards kept under ``<bundle>/.work/`` so that an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.errors import ArtidError
from artid.localisation import CropSettings
from artid.models import MULTI_SCALE
from artid.retrieval.pipeline import PipelineConfig
from artid.service import bundle as bundles
from artid.service.bundle_models import bundle_model, check_attributes_run, store_attributes
from artid.service.bundle_runtime import calibrated, resolved
from artid.service.collection import (
    Collection,
    Queries,
    is_met_root,
    read_collection,
    read_met_collection,
    read_met_queries,
    read_queries,
)
from artid.service.cropping import CROP_KEY
from artid.service.describing import (
    WORK,
    describe,
    keep_described,
    make_thumbnail,
    named_failures,
    store_thumbnails,
)
from artid.service.editing import AddResult, add_to_bundle, remove_from_bundle
from artid.service.fitting import Validation, calibrate, fit_pipeline, untuned
from artid.service.recalibration import store_validation

__all__ = [
    "AddResult",
    "BuildOptions",
    "add_to_bundle",
    "build_bundle",
    "describe",
    "make_thumbnail",
    "remove_from_bundle",
]

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """Settings of ``artid index build``.

    Attributes:
        models: backbone names or checkpoint paths (see :func:`artid.models.build_embedder`), one
            per descriptor part: several are concatenated (thesis appendix B.1), as ``artid
            evaluate`` concatenates the ``--descriptors`` folders of several models.
        weights: a local weights file for a single backbone name (kept in the bundle as a
            checkpoint).
        max_size: longer side of images, in pixels (None: original size), as ``artid extract``.
        scales: image scales whose descriptors are summed (multi-scale by default, as
            ``artid extract``; ``(1.0,)`` = single scale).
        pipeline: the pipeline's settings, those of ``artid evaluate`` (whitening, k and tau,
            QE / DBA, index, re-ranking); open ones are chosen on the validation photos.
        target_false_accept: fraction of validation distractors that may be accepted.
        threshold: a fixed acceptance threshold (a confidence) instead of calibrating one.
        device: torch device for the models.
        workers: image-decoding processes (0: decode in the main process).
        batch_size: images per forward pass (None: 32 on a GPU, 1 on the CPU, as extract).
        attributes: an attributes run folder (``artid attributes train --model head`` or
            ``knn``) on the same backbone as the (first) model; copied into the bundle, it tags
            every photo.
        crop: crop the validation photos, and later every query photo, to their artwork before
            describing them (recorded in the bundle); None: whole photos. The collection's
            (studio) images are never cropped.
        runtime, precision: what describes the images (``--runtime`` / ``--precision`` of
            ``artid extract``), recorded in the bundle: ``index add``, ``recognize`` and
            ``serve`` describe with the same (:mod:`artid.service.bundle_runtime`). int8 is
            calibrated on the first database images.
    """

    models: tuple[str, ...] = ("efficientnet_lite0",)
    weights: str | None = None
    max_size: int | None = 500
    scales: tuple[float, ...] = MULTI_SCALE
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    target_false_accept: float = 0.05
    threshold: float | None = None
    device: str = "cpu"
    workers: int = 1
    batch_size: int | None = None
    attributes: str | Path | None = None
    crop: CropSettings | None = None
    runtime: str = "torch"
    precision: str = "fp32"


def _load_sources(
    source: Path, val: Path | None, metadata: Path | None, split: str = "database"
) -> tuple[Collection, Queries | None]:
    if is_met_root(source):
        collection = read_met_collection(source, split=split, metadata=metadata)
        if val is not None:
            raise ArtidError(
                "--val is for plain collection folders; a Met-format root brings its "
                "own valset.json"
            )
        try:
            queries = read_met_queries(source, "val")
        except ArtidError as exc:
            log.warning("no validation queries: %s", exc)
            queries = None
        return collection, queries
    collection = read_collection(source, metadata=metadata)
    known = {a.key: a.label for a in collection.artworks}
    queries = read_queries(val, known) if val is not None else None
    return collection, queries


def build_bundle(
    source: str | Path,
    out: str | Path,
    options: BuildOptions,
    val: str | Path | None = None,
    metadata: str | Path | None = None,
    split: str = "database",
) -> Path:
    """Build an index bundle from a collection.

    Args:
        source: a plain collection folder or a Met-format root.
        out: the bundle folder to write (an existing bundle there is replaced atomically).
        options: models, image and pipeline settings.
        val: validation queries for a plain collection (``<key>/*`` and ``_distractors/*``).
        metadata: metadata file (default: the collection's ``metadata.csv`` / ``.json``).
        split: for a Met-format root, ``database`` or ``mini`` (the mini database).

    Returns:
        The bundle folder.

    Raises:
        ArtidError: unreadable inputs, neither validation distractors nor a fixed threshold, or
            another change of the bundle running (the writer lock is held for the whole build).
    """
    source, out = Path(source), Path(out)
    if not options.models:
        raise ArtidError("a bundle needs a model (--model)")
    if options.weights is not None and len(options.models) > 1:
        raise ArtidError("--weights is for a single --model")
    if options.weights is not None:
        from artid.models.state_dicts import check_weights_file

        check_weights_file(options.weights)  # before anything is written or described
    if options.attributes is not None:
        check_attributes_run(Path(options.attributes), options.models[0])  # before the long part
    collection, queries = _load_sources(
        source, Path(val) if val else None, Path(metadata) if metadata else None, split
    )
    if queries is None and options.threshold is None:
        raise ArtidError(
            "no validation queries to calibrate the acceptance threshold on: give "
            "--val (photos of the artworks in <key>/ and of other things in "
            "_distractors/) or --threshold"
        )
    if queries is None:
        untuned(
            options.pipeline
        )  # refuse what only validation photos could choose, before the work
    with bundles.changing(out) as change:
        _build(source, out, options, collection, queries, change)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return out


def _build(
    source: Path,
    out: Path,
    options: BuildOptions,
    collection: Collection,
    queries: Queries | None,
    change: bundles.BundleChange,
) -> None:
    """The body of :func:`build_bundle`, run while ``change`` holds the bundle's writer lock."""
    out.mkdir(parents=True, exist_ok=True)
    models = [bundle_model(out, i, name, options.weights) for i, name in enumerate(options.models)]
    settings: dict[str, Any] = {
        "max_size": options.max_size, "scales": [float(s) for s in options.scales]
    }
    work = out / WORK
    device, workers, batch = options.device, options.workers, options.batch_size
    chosen, int8_calibration = calibrated(
        resolved(options.runtime, options.precision, device),
        [collection.image_root / e.path for e in collection.entries],
        options.max_size, options.scales,
    )
    settings.update(chosen.record())
    raws = [
        describe(
            collection.entries,
            collection.image_root,
            embedder,
            settings,
            work,
            f"database-{i}",
            device,
            workers,
            batch_size=batch,
            calibration=int8_calibration,
        )
        for i, (embedder, _) in enumerate(models)
    ]
    raw = raws[0]
    if any([e.path for e in r.entries] != [e.path for e in raw.entries] for r in raws[1:]):
        raise ArtidError("the models read different images of the collection")
    artworks = keep_described(collection.artworks, raw)
    info: dict[str, Any] = {
        "source": str(source.resolve()),
        "kind": "met" if is_met_root(source) else "folder",
        "database_failures": len(raw.failures),
    }
    val = None
    if queries is not None:
        qraws = [
            describe(
                queries.entries,
                queries.image_root,
                embedder,
                settings,
                work,
                f"validation-{i}",
                device,
                workers,
                options.crop,
                batch,
                int8_calibration,
            )
            for i, (embedder, _) in enumerate(models)
        ]
        known = [a.label for a in artworks]
        labels = qraws[0].labels
        val = Validation(
            [q.matrix for q in qraws],
            np.where(np.isin(labels, known), labels, DISTRACTOR),
            np.array([e.path for e in qraws[0].entries], dtype=str),
            queries.image_root,
        )
        info["validation_queries"] = int(len(labels))
    pipe = fit_pipeline(
        options.pipeline,
        [r.matrix for r in raws],
        raw.entries,
        len(artworks),
        collection.image_root,
        work,
        val,
    )
    calibration, global_calibration = calibrate(
        pipe, val, options.threshold, options.target_false_accept
    )
    info["pipeline"] = {
        "candidates": [
            {"whiten": c.whiten, "dims": c.projection.get("dims"), "val_gap": c.val_gap}
            for c in pipe.candidates
        ],
        "expansion_grid": pipe.expansion_grid,
    }
    thumbs = store_thumbnails(out, artworks, raw, collection.image_root)
    extraction: dict[str, Any] = dict(settings)
    if options.crop is not None:
        extraction[CROP_KEY] = options.crop.spec()
    attributes = None
    if options.attributes:
        attributes = store_attributes(out, Path(options.attributes), models[0][0])
    kept = store_validation(out, val, artworks) if val is not None else None
    data = bundles.BundleData(
        models=[{"ref": ref, "spec": embedder.spec} for embedder, ref in models],
        extraction=extraction,
        pipeline=pipe,
        entries=list(raw.entries),
        artworks=artworks,
        thumbnails=thumbs,
        calibration=calibration,
        global_calibration=global_calibration,
        failures=list(raw.failures),
        info=info,
        attributes=attributes,
        validation=kept,
    )
    change.commit(data, f"build from {source}", failures=named_failures(raw, collection.image_root))
