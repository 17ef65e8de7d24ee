"""Building index bundles: describe images, whiten, tune, calibrate, write.

``build_bundle`` turns a collection (plain folder or Met-format root) into a bundle, holding
the bundle's writer lock for the whole build. ``add_to_bundle`` and ``remove_from_bundle``
(:mod:`artid.service.editing`, importable from here) change an existing bundle without
touching the rest.

Describing images is the long part; :mod:`artid.service.describing` does it in resumable
shards kept under ``<bundle>/.work/`` so that an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.localisation import CropSettings
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.service import bundle as bundles
from artid.service.calibrate import Calibration, calibrate_threshold
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
from artid.service.describing import WORK, describe, keep_described, make_thumbnail, named_failures, store_thumbnails
from artid.service.editing import AddResult, add_to_bundle, remove_from_bundle
from artid.service.reranking import rerank_bundle

__all__ = ["AddResult", "BuildOptions", "add_to_bundle", "build_bundle", "describe", "make_thumbnail",
           "remove_from_bundle"]

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """Settings of ``artid index build``.

    Attributes:
        model: backbone name or checkpoint path (see :func:`artid.models.build_embedder`).
        weights: a local weights file for a backbone name (kept in the bundle as a checkpoint).
        max_size: longer side of images, in pixels.
        scales: image scales whose descriptors are summed (``(1.0,)`` = single scale).
        whitening_dim: PCA-whitening output dimension; 0 = no whitening; None = whiten
            only when the database has at least as many images as descriptor dimensions.
        k, tau: classifier settings; None = tuned by GAP on the validation queries.
        target_false_accept: fraction of validation distractors that may be accepted.
        threshold: a fixed acceptance threshold instead of calibrating one.
        device: torch device for the model.
        workers: image-decoding processes (0: decode in the main process).
        attributes: an attributes run folder (``artid attributes train --model head`` or ``knn``) on
            the same backbone as ``model``; copied into the bundle, it tags every photo.
        crop: crop the validation photos, and later every query photo, to their artwork before
            describing them (recorded in the bundle, :mod:`artid.service.cropping`); None: whole photos.
            The collection's (studio) images are never cropped.
        rerank: K of the re-ranking stage (:mod:`artid.service.reranking`): every photo's first K
            neighbours are verified with SIFT; 0 = no re-ranking (and no local features in the bundle).
    """

    model: str = "efficientnet_lite0"
    weights: str | None = None
    max_size: int = 500
    scales: tuple[float, ...] = (1.0,)
    whitening_dim: int | None = None
    k: int | None = None
    tau: float | None = None
    target_false_accept: float = 0.05
    threshold: float | None = None
    device: str = "cpu"
    workers: int = 1
    attributes: str | Path | None = None
    crop: CropSettings | None = None
    rerank: int = 0


#: k and tau used when they are not tuned (no validation photo of the collection).
#: With k = 1 the confidence is a monotone function of the nearest similarity, so the
#: accept / reject order does not depend on tau.
UNTUNED_K, UNTUNED_TAU = 1, 30.0


def check_attributes_run(run: Path, model: str) -> None:
    """Refuse an attributes run that cannot tag the photos of a bundle built with ``model``.

    The service describes a photo once with the bundle's network and gives that descriptor to the
    run's model too, so the run must be on the same backbone (a name without other weights, or the
    same checkpoint file); other image sizes and scales only cost a second pass of that network.

    Raises:
        ArtidError: naming ``--attributes``: not a servable run, or another backbone.
    """
    from artid.attributes.features import FeatureSpec
    from artid.attributes.tagger import servable_run
    from artid.models.checkpoint import file_sha256

    spec = FeatureSpec.from_json(servable_run(run)["features"])
    if Path(model).is_file() and Path(spec.model).is_file():
        same = file_sha256(Path(model)) == file_sha256(Path(spec.model))
    else:
        same = spec.model == model and spec.weights is None
    if not same:
        theirs = spec.model + (f" with weights {spec.weights}" if spec.weights else "")
        raise ArtidError(f"--attributes {run}: the run was trained on descriptors of {theirs}, the bundle describes "
                         f"photos with {model}; one network must serve both: train the run with --backbone {model} "
                         f"or build the bundle with --model {spec.model}")


def _load_sources(source: Path, val: Path | None, metadata: Path | None,
                  split: str = "database") -> tuple[Collection, Queries | None]:
    if is_met_root(source):
        collection = read_met_collection(source, split=split, metadata=metadata)
        if val is not None:
            raise ArtidError("--val is for plain collection folders; a Met-format root brings its own valset.json")
        try:
            queries = read_met_queries(source, "val")
        except ArtidError as exc:
            log.warning("no validation queries: %s", exc)
            queries = None
        return collection, queries
    collection = read_collection(source, metadata=metadata)
    queries = read_queries(val, {a.key: a.label for a in collection.artworks}) if val is not None else None
    return collection, queries


def _choose_k_tau(clf: Any, tuned: Any, labels: np.ndarray, target: float) -> tuple[int, float]:
    """The (k, tau) to serve with: best validation GAP, ties broken by the service's own aim.

    Small collections often tie over much of the grid (GAP 100%). Among tied points the one
    with the highest recall at the target false-accept rate wins, then precision, then the
    widest margin between the least confident accepted right answer and the threshold (a tau
    so small that every confidence sits near 1/N, or so large that they saturate near 1.0,
    leaves no margin), then the smaller k.
    """
    gap = np.asarray(tuned.gap)
    distractor = labels == DISTRACTOR
    best: tuple[float, float, float, int] | None = None
    choice = (int(tuned.best_k), float(tuned.best_tau))
    for i, j in zip(*np.nonzero(gap >= gap.max() - 1e-12)):
        k, tau = int(tuned.ks[i]), float(tuned.taus[j])
        pred, conf, _ = clf.classify(tuned.sims, tuned.idx, k, tau)  # conf: the log-odds score
        correct = (pred == labels) & ~distractor
        if distractor.any():
            cal = calibrate_threshold(conf, correct, distractor, target)
            accepted = correct & (conf > cal.threshold)
            margin = float(conf[accepted].min() - cal.threshold) if accepted.any() else 0.0
            score = (cal.recall or 0.0, cal.precision or 0.0, margin, -k)
        else:
            score = (0.0, 0.0, 0.0, -k)
        if best is None or score > best:
            best, choice = score, (k, tau)
    return choice


def _pipeline_config(options: BuildOptions, raw: DescriptorSet, n_classes: int, tuned: bool) -> PipelineConfig:
    """Whitening: chosen on validation (``auto``) unless ``--whitening-dim`` says (0 = none);
    without validation photos, PCA-whitening only when there are at least as many images as
    descriptor dimensions."""
    dim = options.whitening_dim
    whiten = "auto" if dim is None else ("none" if dim == 0 else "pcaw")
    k, tau = options.k, options.tau
    if not tuned:  # nothing to tune on: the given values, or the untuned defaults
        k, tau = (UNTUNED_K if k is None else k), (UNTUNED_TAU if tau is None else tau)
        if whiten == "auto":
            whiten = "pcaw" if raw.matrix.shape[0] >= raw.matrix.shape[1] else "none"
    elif (k is None) != (tau is None):
        k = tau = None  # one of them given: tune both, then keep the given one (below)
    return PipelineConfig(whiten=whiten, dim=dim or 512, k=k, tau=tau, n_classes=n_classes, use_gpu=False)


def _fit_pipeline(options: BuildOptions, raw: DescriptorSet, n_classes: int,
                  val: tuple[np.ndarray, np.ndarray, np.ndarray] | None, info: dict[str, Any]) -> KNNPipeline:
    """The kNN pipeline fitted on the collection and tuned on the validation photos (when there are any
    of the collection's artworks among them)."""
    tuned = val is not None and bool((val[1] != DISTRACTOR).any())
    if val is not None and not tuned:
        log.warning("no validation photo of the collection's artworks: k=%d, tau=%g untuned", UNTUNED_K, UNTUNED_TAU)
    config = _pipeline_config(options, raw, n_classes, tuned)
    pipe = KNNPipeline(config).fit(raw.matrix, raw.labels, *(val if tuned and val is not None else (None, None, None)))
    if pipe.tuned is not None:
        assert val is not None and pipe.classifier is not None  # tuned on the validation photos
        best_k, best_tau = _choose_k_tau(pipe.classifier, pipe.tuned, val[1], options.target_false_accept)
        pipe.use(best_k if options.k is None else options.k, best_tau if options.tau is None else options.tau)
        info["autotune"] = {"k": best_k, "tau": best_tau, "val_gap": pipe.tuned.best_gap, "val_acc": pipe.tuned.acc}
    return pipe


def _calibrate(options: BuildOptions, pipe: KNNPipeline,
               val: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> Calibration:
    """The acceptance threshold (log-odds): given, or calibrated on the validation photos."""
    if options.threshold is not None:
        return Calibration.given(options.threshold)
    assert val is not None  # build_bundle refuses a build with neither
    ans = pipe.predict(val[0], progress=False)
    labels = val[1]
    return calibrate_threshold(ans.score, (ans.pred == labels) & (labels != DISTRACTOR), labels == DISTRACTOR,
                               options.target_false_accept)


def _store_attributes(out: Path, run: Path, embedder: Any) -> dict[str, Any]:
    """Copy the attributes run into the bundle; the manifest's record of it."""
    from artid.attributes.tagger import Tagger

    ref = bundles.store_attributes(out, run)
    tagger = Tagger(out / ref)
    if tagger.dim != int(embedder.dim):
        raise ArtidError(f"--attributes {run}: its model takes {tagger.dim}-d descriptors, the bundle's network "
                         f"gives {embedder.dim}-d ones")
    return {"ref": ref, "source": str(run.resolve()), **tagger.describe()}


def build_bundle(source: str | Path, out: str | Path, options: BuildOptions, val: str | Path | None = None,
                 metadata: str | Path | None = None, split: str = "database") -> Path:
    """Build an index bundle from a collection.

    Args:
        source: a plain collection folder or a Met-format root.
        out: the bundle folder to write (an existing bundle there is replaced atomically).
        options: model, image and classifier settings.
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
    if options.attributes is not None:
        check_attributes_run(Path(options.attributes), options.model)  # before the long part
    collection, queries = _load_sources(source, Path(val) if val else None, Path(metadata) if metadata else None,
                                        split)
    if queries is None and options.threshold is None:
        raise ArtidError("no validation queries to calibrate the acceptance threshold on: give --val "
                         "(photos of the artworks in <key>/ and of other things in _distractors/) or --threshold")
    with bundles.changing(out) as change:
        _build(source, out, options, collection, queries, change)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return out


def _build(source: Path, out: Path, options: BuildOptions, collection: Collection, queries: Queries | None,
           change: bundles.BundleChange) -> None:
    """The body of :func:`build_bundle`, run while ``change`` holds the bundle's writer lock."""
    from artid.models import build_embedder

    embedder = build_embedder(options.model, weights=options.weights)
    out.mkdir(parents=True, exist_ok=True)
    model_ref = options.model
    if Path(options.model).is_file():
        model_ref = bundles.store_model_file(out, Path(options.model))
    elif options.model.startswith("random:") or options.weights is not None:
        # weights drawn once here, or read from a local file: the bundle keeps the network it was built with
        from artid.models import save_checkpoint

        kept = save_checkpoint(out / WORK / "model.pt", embedder, meta={"model": options.model})
        model_ref = bundles.store_model_file(out, kept)
    settings = {"max_size": int(options.max_size), "scales": [float(s) for s in options.scales]}
    work = out / WORK
    raw = describe(collection.entries, collection.image_root, embedder, settings, work, "database", options.device,
                   options.workers)
    artworks = keep_described(collection.artworks, raw)

    info: dict[str, Any] = {"source": str(source.resolve()), "kind": "met" if is_met_root(source) else "folder",
                            "database_failures": len(raw.failures)}
    val = None
    if queries is not None:
        qraw = describe(queries.entries, queries.image_root, embedder, settings, work, "validation",
                        options.device, options.workers, crop=options.crop)
        known = [a.label for a in artworks]
        val = (qraw.matrix, np.where(np.isin(qraw.labels, known), qraw.labels, DISTRACTOR),
               np.array([e.path for e in qraw.entries], dtype=str))
    pipe = _fit_pipeline(options, raw, len(artworks), val, info)
    calibration = _calibrate(options, pipe, val)
    if val is not None:
        info["validation_queries"] = int(len(val[1]))
    assert pipe.projection is not None and pipe.classifier is not None  # fitted
    assert pipe.k is not None and pipe.tau is not None
    projection = pipe.projection.describe()
    whitening = pipe.projection.whitenings[0]
    db = DescriptorSet(matrix=pipe.classifier.db, entries=raw.entries, model=raw.model,
                       settings={**settings, "whitened": whitening is not None}, failures=raw.failures)
    info["pipeline"] = {"whitening": projection, "candidates": [
        {"whiten": c.whiten, "dims": c.projection.get("dims"), "val_gap": c.val_gap} for c in pipe.candidates]}
    k, tau = pipe.k, pipe.tau
    local, rerank = None, None
    if options.rerank:
        local, rerank = rerank_bundle(pipe, raw.entries, collection.image_root, work, options.rerank, val,
                                      None if queries is None else queries.image_root, options.target_false_accept,
                                      options.threshold)
    thumbs = store_thumbnails(out, artworks, raw, collection.image_root)
    extraction = settings if options.crop is None else {**settings, CROP_KEY: options.crop.spec()}
    data = bundles.BundleData(
        model={"ref": model_ref, "spec": embedder.spec}, extraction=extraction, descriptors=db,
        whitening=whitening, artworks=artworks, thumbnails=thumbs, k=int(k), tau=float(tau),
        calibration=calibration, info=info, local=local, rerank=rerank,
        attributes=_store_attributes(out, Path(options.attributes), embedder) if options.attributes else None)
    change.commit(data, f"build from {source}", failures=named_failures(raw, collection.image_root))


