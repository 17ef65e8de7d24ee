"""The index bundle: everything the recognition service needs, in one folder.

A change (build, add, remove) writes a complete new generation beside the current
one, then atomically replaces ``bundle.json``; a reader sees either the old or the
new bundle, never a half-written one. An interrupted change leaves at most a stray
folder that the next change removes.

A change is a read-modify-write: :func:`changing` holds the writer lock on
``bundle/.lock`` from the read to the commit, so two changes never interleave (the
second is refused at once, naming the bundle). Contents read without the lock
(:func:`load_bundle`) remember their generation, and committing them after another
change has committed is refused instead of silently undoing that change.

The folder layout is in :mod:`artid.service.bundle_layout`, the in-memory contents and
their edits in :mod:`artid.service.bundle_contents`; both are importable from here.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from artid import __version__
from artid.descriptors import load_descriptors, save_descriptors
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatureSet
from artid.retrieval.whitening import PCAWhitening
from artid.service.bundle_contents import BundleData, next_label, with_artworks, without_artworks
from artid.service.bundle_layout import (
    ATTRIBUTES,
    FORMAT,
    GEN_RE,
    MANIFEST,
    MODELS,
    THUMBNAIL_RE,
    THUMBNAILS,
    bundle_lock,
    collect_garbage,
    fsync_dir,
    fsync_file,
    generation_numbers,
    read_manifest,
    store_attributes,
    store_model_file,
    store_thumbnail,
    write_json_atomic,
)
from artid.service.calibrate import Calibration
from artid.service.collection import Artwork

__all__ = ["ATTRIBUTES", "FORMAT", "MANIFEST", "MODELS", "THUMBNAILS", "THUMBNAIL_RE", "BundleChange", "BundleData",
           "bundle_lock", "changing", "load_bundle", "next_label", "read_manifest", "store_attributes",
           "store_model_file", "store_thumbnail", "with_artworks", "without_artworks", "write_bundle"]

log = logging.getLogger(__name__)


class BundleChange:
    """One change of a bundle, made while :func:`changing` holds its writer lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> BundleData:
        """The current contents (nothing else can commit until this change ends)."""
        return load_bundle(self.path)

    def commit(self, data: BundleData, operation: str, failures: list[dict[str, str]] | None = None) -> Path:
        """Write ``data`` as the new generation (see :func:`write_bundle`)."""
        return _commit(self.path, data, operation, failures)


@contextlib.contextmanager
def changing(path: str | Path) -> Iterator[BundleChange]:
    """Hold the bundle's writer lock for a whole read-modify-write (the folder is created if missing).

    Raises:
        ArtidError: another change of the bundle is running.
    """
    path = Path(path)
    with bundle_lock(path):
        yield BundleChange(path)


def write_bundle(path: str | Path, data: BundleData, operation: str,
                 failures: list[dict[str, str]] | None = None) -> Path:
    """Write ``data`` as the bundle's new generation and commit it atomically.

    Thumbnails and model files named by ``data`` must already be in the bundle
    (:func:`store_thumbnail`, :func:`store_model_file`).

    Args:
        path: the bundle folder (created when missing).
        data: the complete new contents.
        operation: one line for the bundle's history (e.g. ``"build from /data/coll"``).
        failures: ``{"path", "error"}`` of the images this change could not read, kept in
            the history (``artid index info`` lists them).

    Returns:
        The new generation's folder.

    Raises:
        ArtidError: another change is running, or ``data`` was read from a generation that
            another change has replaced since.
    """
    with changing(path) as change:
        return change.commit(data, operation, failures)


def _commit(path: Path, data: BundleData, operation: str, failures: list[dict[str, str]] | None) -> Path:
    """The body of :func:`write_bundle`; the caller holds the writer lock."""
    data.check()
    previous = read_manifest(path) if (path / MANIFEST).is_file() else None
    current = previous.get("generation") if previous else None
    if data.generation is not None and data.generation != current:
        raise ArtidError(f"bundle {path} changed since its contents were read (then {data.generation}, now "
                         f"{current}); run the change again")
    for label, name in data.thumbnails.items():
        if not THUMBNAIL_RE.match(name) or not (path / THUMBNAILS / name).is_file():
            raise ArtidError(f"bundle {path}: thumbnail {name!r} of class {label} is missing")
    attributes_ref = str(data.attributes["ref"]) if data.attributes else None
    if attributes_ref is not None and not (path / attributes_ref / "run.json").is_file():
        raise ArtidError(f"bundle {path}: its attributes run {attributes_ref!r} is missing")
    gen = f"gen-{max(generation_numbers(path), default=0) + 1:06d}"
    tmp = path / f".{gen}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    matrix = np.ascontiguousarray(data.descriptors.matrix, dtype=np.float32)
    save_descriptors(tmp / "database", data.descriptors)
    if data.whitening is not None:
        data.whitening.save(tmp / "whitening.npz")
    if data.local is not None:
        data.local.save(tmp)
    records = [{**a.to_json(), "thumbnail": data.thumbnails.get(a.label)} for a in data.artworks]
    (tmp / "artworks.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    for p in tmp.iterdir():
        fsync_file(p)
    fsync_dir(tmp)
    os.replace(tmp, path / gen)
    fsync_dir(path)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    history = list(previous.get("history", [])) if previous else []
    history.append({"time": now, "operation": operation, "generation": gen,
                    "artworks": data.n_classes, "images": int(matrix.shape[0]), "failures": list(failures or [])})
    manifest = {
        "format": FORMAT,
        "artid_version": __version__,
        "generation": gen,
        "created": previous.get("created", now) if previous else now,
        "updated": now,
        "model": data.model,
        "extraction": data.extraction,
        "classifier": {"k": int(data.k), "tau": float(data.tau), "n_classes": data.n_classes},
        "whitened": data.whitening is not None,
        "dim": int(matrix.shape[1]),
        "artworks": data.n_classes,
        "images": int(matrix.shape[0]),
        "calibration": data.calibration.to_json(),
        "info": data.info,
        "history": history,
    }
    if data.attributes:
        manifest["attributes"] = data.attributes
    if data.rerank:
        manifest["rerank"] = data.rerank
    write_json_atomic(path / MANIFEST, manifest)
    collect_garbage(path, keep=gen, thumbnails=set(data.thumbnails.values()),
                    model_ref=str(data.model.get("ref", "")), attributes_ref=attributes_ref)
    log.info("bundle %s: committed %s (%d artworks, %d images)", path, gen, data.n_classes, matrix.shape[0])
    return path / gen


def load_bundle(path: str | Path) -> BundleData:
    """Read the bundle's current generation.

    Raises:
        ArtidError: not a bundle, or files that do not belong together.
    """
    path = Path(path)
    meta = read_manifest(path)
    gen = path / str(meta.get("generation", ""))
    if not GEN_RE.match(gen.name) or not gen.is_dir():
        raise ArtidError(f"{path / MANIFEST} names generation {gen.name!r}, which is not in the bundle")
    descriptors = load_descriptors(gen / "database")
    whitening = None
    if meta.get("whitened"):
        whitening = PCAWhitening.load(gen / "whitening.npz")
        if whitening.out_dim != descriptors.matrix.shape[1]:
            raise ArtidError(f"{gen / 'whitening.npz'} gives {whitening.out_dim}-d descriptors but the "
                             f"database holds {descriptors.matrix.shape[1]}-d ones")
    try:
        records: list[dict[str, Any]] = json.loads((gen / "artworks.json").read_text(encoding="utf-8"))
        artworks = [Artwork.from_json(r) for r in records]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtidError(f"{gen / 'artworks.json'}: cannot be read ({exc!r})") from None
    thumbnails = {int(r["label"]): r["thumbnail"] for r in records if r.get("thumbnail")}
    cls = meta.get("classifier", {})
    data = BundleData(
        model=meta.get("model", {}), extraction=meta.get("extraction", {}), descriptors=descriptors,
        whitening=whitening, artworks=artworks, thumbnails=thumbnails, k=int(cls.get("k", 1)),
        tau=float(cls.get("tau", 1.0)), calibration=Calibration.from_json(meta.get("calibration", {})),
        info=meta.get("info", {}), generation=gen.name, attributes=meta.get("attributes") or None,
        local=LocalFeatureSet.load(gen) if meta.get("rerank") else None, rerank=meta.get("rerank") or None,
    )
    data.check()
    return data
