"""Building and extending index bundles: describe images, whiten, tune, calibrate, write.

``build_bundle`` turns a collection (plain folder or Met-format root) into a bundle;
``add_to_bundle`` and ``remove_from_bundle`` change an existing bundle without
touching the rest: new images are described with the bundle's own model, size,
scales and whitening, and the classifier's k, tau and threshold are kept.

Describing images is the long part; :mod:`artid.extraction` does it in shards kept under
``<bundle>/.work/`` so that an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from artid.data.entries import DISTRACTOR, Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.service import bundle as bundles
from artid.service.calibrate import Calibration, calibrate_threshold
from artid.service.collection import (Artwork, Collection, Queries, is_met_root, read_collection,
                                      read_met_collection, read_met_queries, read_queries)

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
#: Images per resumable shard of descriptor extraction.
CHUNK = 256
WORK = ".work"


@dataclass
class BuildOptions:
    """Settings of ``artid index build``.

    Attributes:
        model: backbone name or checkpoint path (see :func:`artid.models.build_embedder`).
        max_size: longer side of images, in pixels.
        scales: image scales whose descriptors are summed (``(1.0,)`` = single scale).
        whitening_dim: PCA-whitening output dimension; 0 = no whitening; None = whiten
            only when the database has at least as many images as descriptor dimensions.
        k, tau: classifier settings; None = tuned by GAP on the validation queries.
        target_false_accept: fraction of validation distractors that may be accepted.
        threshold: a fixed acceptance threshold instead of calibrating one.
        device: torch device for the model.
        workers: image-decoding processes (0: decode in the main process).
    """

    model: str = "efficientnet_lite0"
    max_size: int = 500
    scales: tuple[float, ...] = (1.0,)
    whitening_dim: int | None = None
    k: int | None = None
    tau: float | None = None
    target_false_accept: float = 0.05
    threshold: float | None = None
    device: str = "cpu"
    workers: int = 1


#: k and tau used when they are not tuned (no validation photo of the collection).
#: With k = 1 the confidence is a monotone function of the nearest similarity, so the
#: accept / reject order does not depend on tau.
UNTUNED_K, UNTUNED_TAU = 1, 30.0


def _cache_key(spec: dict[str, Any], settings: dict[str, Any], entries: list[Entry], root: Path) -> str:
    h = hashlib.sha256(json.dumps([spec, settings, str(root.resolve())], sort_keys=True).encode())
    for e in entries:
        h.update(f"{e.path}\0{e.label}\n".encode())
    return h.hexdigest()[:16]


def describe(entries: list[Entry], image_root: Path, embedder: Any, settings: dict[str, Any], work: Path,
             name: str, device: Any = "cpu", workers: int = 1) -> DescriptorSet:
    """Descriptors of images with :mod:`artid.extraction` (batched, resumable shards under ``work``).

    Args:
        entries: images to describe (paths relative to ``image_root``).
        image_root: folder of the images.
        embedder: an :class:`artid.models.Embedder`.
        settings: ``max_size`` and ``scales``.
        work: folder of the resumable work (shards of an interrupted run are reused when the
            model, settings and images are the same).
        name: label of the progress bar and of the work files.
        device: torch device.
        workers: image-decoding processes (0: decode in this process).

    Returns:
        Descriptors, (M, D) float32 L2-normalised, of the images that could be read (M <= len(entries));
        the others are listed in ``failures``.
    """
    from artid.extraction import ExtractionSettings, ImageList, extract_list

    key = _cache_key(embedder.spec, settings, entries, image_root)
    extraction = ExtractionSettings(scales=tuple(float(s) for s in settings["scales"]),
                                    max_size=int(settings["max_size"]), workers=workers, shard_size=CHUNK)
    return extract_list(ImageList(name, entries, image_root), embedder, work / f"{name}-{key}", extraction,
                        device=device)


def make_thumbnail(path: Path, size: int = THUMBNAIL_SIZE) -> bytes:
    """JPEG bytes of an image shrunk to ``size`` px on its longer side."""
    from artid.data.images import load_image

    buf = io.BytesIO()
    load_image(path, max_size=size).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _thumbnails(bundle_dir: Path, artworks: list[Artwork], dset: DescriptorSet, image_root: Path) -> dict[int, str]:
    first: dict[int, str] = {}
    for e in dset.entries:
        first.setdefault(e.label, e.path)
    out = {}
    for a in tqdm(artworks, desc="thumbnails", unit="artwork", disable=len(artworks) < 50):
        if a.label in first:
            out[a.label] = bundles.store_thumbnail(bundle_dir, make_thumbnail(image_root / first[a.label]))
    return out


def _keep_described(artworks: list[Artwork], dset: DescriptorSet) -> list[Artwork]:
    present = set(int(x) for x in np.unique(dset.labels)) if len(dset.entries) else set()
    dropped = [a.key for a in artworks if a.label not in present]
    if dropped:
        log.warning("%d artwork(s) have no readable image and are left out (first: %r)", len(dropped), dropped[0])
    kept = [a for a in artworks if a.label in present]
    if not kept:
        raise ArtidError("no image of the collection could be read")
    return kept


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
    best: tuple[float, float, int, float] | None = None
    choice = (int(tuned.best_k), float(tuned.best_tau))
    for i, j in zip(*np.nonzero(gap >= gap.max() - 1e-12)):
        k, tau = int(tuned.ks[i]), float(tuned.taus[j])
        pred, conf = clf.classify(tuned.sims, tuned.idx, k, tau)
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
        ArtidError: unreadable inputs, or neither validation distractors nor a fixed threshold.
    """
    from artid.models import build_embedder
    from artid.retrieval.autotune import autotune
    from artid.retrieval.knn import KNNClassifier
    from artid.retrieval.whitening import PCAWhitening

    source, out = Path(source), Path(out)
    collection, queries = _load_sources(source, Path(val) if val else None, Path(metadata) if metadata else None,
                                        split)
    if queries is None and options.threshold is None:
        raise ArtidError("no validation queries to calibrate the acceptance threshold on: give --val "
                         "(photos of the artworks in <key>/ and of other things in _distractors/) or --threshold")
    embedder = build_embedder(options.model)
    out.mkdir(parents=True, exist_ok=True)
    model_ref = options.model
    if Path(options.model).is_file():
        model_ref = bundles.store_model_file(out, Path(options.model))
    settings = {"max_size": int(options.max_size), "scales": [float(s) for s in options.scales]}
    work = out / WORK
    raw = describe(collection.entries, collection.image_root, embedder, settings, work, "database", options.device,
                   options.workers)
    artworks = _keep_described(collection.artworks, raw)

    whitening = None
    dim = options.whitening_dim
    if dim is None:
        dim = 512 if raw.matrix.shape[0] >= raw.matrix.shape[1] else 0
        if dim == 0:
            log.info("no whitening: %d database images are fewer than the %d descriptor dimensions "
                     "(force it with --whitening-dim)", raw.matrix.shape[0], raw.matrix.shape[1])
    if dim > 0:
        whitening = PCAWhitening(dim=dim).fit(raw.matrix)
    searched = whitening.transform(raw.matrix) if whitening is not None else raw.matrix
    db = DescriptorSet(matrix=searched, entries=raw.entries, model=raw.model,
                       settings={**settings, "whitened": whitening is not None}, failures=raw.failures)
    clf = KNNClassifier(searched, db.labels, n_classes=len(artworks), use_gpu=False)

    k, tau = options.k, options.tau
    info: dict[str, Any] = {"source": str(source.resolve()), "kind": "met" if is_met_root(source) else "folder",
                            "database_failures": len(raw.failures)}
    calibration: Calibration
    if queries is not None:
        qraw = describe(queries.entries, queries.image_root, embedder, settings, work, "validation",
                        options.device, options.workers)
        q = whitening.transform(qraw.matrix) if whitening is not None else qraw.matrix
        labels = qraw.labels
        known = {a.label for a in artworks}
        labels = np.where(np.isin(labels, list(known)) | (labels == DISTRACTOR), labels, DISTRACTOR)
        if k is None or tau is None:
            if (labels != DISTRACTOR).any():
                tuned = autotune(clf, q, labels, keep_neighbours=True)
                best_k, best_tau = _choose_k_tau(clf, tuned, labels, options.target_false_accept)
                k = best_k if k is None else k
                tau = best_tau if tau is None else tau
                info["autotune"] = {"k": best_k, "tau": best_tau, "val_gap": tuned.best_gap,
                                    "val_acc": tuned.acc}
            else:
                log.warning("no validation photo of the collection's artworks: k=%d, tau=%g untuned",
                            UNTUNED_K, UNTUNED_TAU)
        k = UNTUNED_K if k is None else k
        tau = UNTUNED_TAU if tau is None else tau
        pred, conf = clf.predict(q, k, tau)
        if options.threshold is not None:
            calibration = Calibration.given(options.threshold)
        else:
            calibration = calibrate_threshold(conf, (pred == labels) & (labels != DISTRACTOR),
                                              labels == DISTRACTOR, options.target_false_accept)
        info["validation_queries"] = int(len(labels))
    else:
        k = UNTUNED_K if k is None else k
        tau = UNTUNED_TAU if tau is None else tau
        calibration = Calibration.given(float(options.threshold))  # checked above: not None
    thumbs = _thumbnails(out, artworks, raw, collection.image_root)
    data = bundles.BundleData(
        model={"ref": model_ref, "spec": embedder.spec}, extraction=settings, descriptors=db,
        whitening=whitening, artworks=artworks, thumbnails=thumbs, k=int(k), tau=float(tau),
        calibration=calibration, info=info)
    bundles.write_bundle(out, data, f"build from {source}")
    shutil.rmtree(work, ignore_errors=True)
    return out


def add_to_bundle(bundle_dir: str | Path, source: str | Path, keys: list[str] | None = None,
                  metadata: str | Path | None = None, device: str = "cpu", workers: int = 1) -> list[Artwork]:
    """Add the artworks of a plain collection folder to an existing bundle.

    Args:
        bundle_dir: the bundle.
        source: a collection folder (one sub-folder of images per artwork).
        keys: only these sub-folders (default: all).
        metadata: metadata file (default: the folder's ``metadata.csv`` / ``.json``).
        device: torch device for the model.
        workers: image-decoding processes.

    Returns:
        The artworks added.
    """
    from artid.models import build_embedder

    bundle_dir = Path(bundle_dir)
    data = bundles.load_bundle(bundle_dir)
    collection = read_collection(source, metadata=metadata, first_label=bundles.next_label(data), keys=keys)
    existing = {a.key for a in data.artworks}
    clash = [a.key for a in collection.artworks if a.key in existing]
    if clash:
        raise ArtidError(f"artwork {', '.join(map(repr, clash))} is already in the bundle "
                         "(remove it first to replace its images)")
    ref = str(data.model.get("ref", ""))
    embedder = build_embedder(str(bundle_dir / ref) if (bundle_dir / ref).is_file() else ref)
    raw = describe(collection.entries, collection.image_root, embedder, data.extraction, bundle_dir / WORK,
                   "added", device, workers)
    artworks = _keep_described(collection.artworks, raw)
    matrix = data.whitening.transform(raw.matrix) if data.whitening is not None else raw.matrix
    thumbs = _thumbnails(bundle_dir, artworks, raw, collection.image_root)
    new = bundles.with_artworks(data, artworks, matrix, raw.entries, thumbs)
    bundles.write_bundle(bundle_dir, new, f"add {len(artworks)} artwork(s) from {source}")
    shutil.rmtree(bundle_dir / WORK, ignore_errors=True)
    return artworks


def remove_from_bundle(bundle_dir: str | Path, keys: list[str]) -> None:
    """Remove artworks (by key) and all their images from a bundle."""
    bundle_dir = Path(bundle_dir)
    data = bundles.load_bundle(bundle_dir)
    bundles.write_bundle(bundle_dir, bundles.without_artworks(data, keys), f"remove {', '.join(keys)}")
