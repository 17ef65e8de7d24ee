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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artid import __version__
from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.files import atomic_path, fsync_dir, write_json
from artid.retrieval.pipeline import KNNPipeline
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
    generation_numbers,
    read_manifest,
    store_attributes,
    store_model_file,
    store_thumbnail,
    write_json_atomic,
)
from artid.service.calibrate import Calibration
from artid.service.collection import Artwork

__all__ = [
    "ATTRIBUTES",
    "FORMAT",
    "MANIFEST",
    "MODELS",
    "PIPELINE",
    "THUMBNAILS",
    "THUMBNAIL_RE",
    "BundleChange",
    "BundleData",
    "bundle_lock",
    "changing",
    "load_bundle",
    "next_label",
    "read_manifest",
    "store_attributes",
    "store_model_file",
    "store_thumbnail",
    "with_artworks",
    "without_artworks",
    "write_bundle",
]

#: The generation's folder of the fitted pipeline (:meth:`KNNPipeline.save`).
PIPELINE = "pipeline"

log = logging.getLogger(__name__)


class BundleChange:
    """One change of a bundle, made while :func:`changing` holds its writer lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> BundleData:
        """The current contents (nothing else can commit until this change ends)."""
        return load_bundle(self.path)

    def commit(
        self, data: BundleData, operation: str, failures: list[dict[str, str]] | None = None
    ) -> Path:
        """Write ``data`` as the new generation (see :func:`write_bundle`)."""
        return _commit(self.path, data, operation, failures)


@contextlib.contextmanager
def changing(path: str | Path) -> Iterator[BundleChange]:
    """Hold the bundle's writer lock for a whole read-modify-write (the folder is created).

    Raises:
        ArtidError: another change of the bundle is running.
    """
    path = Path(path)
    with bundle_lock(path):
        yield BundleChange(path)


def write_bundle(
    path: str | Path, data: BundleData, operation: str, failures: list[dict[str, str]] | None = None
) -> Path:
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


def _commit(
    path: Path, data: BundleData, operation: str, failures: list[dict[str, str]] | None
) -> Path:
    """The body of :func:`write_bundle`; the caller holds the writer lock."""
    data.check()
    previous = read_manifest(path) if (path / MANIFEST).is_file() else None
    current = previous.get("generation") if previous else None
    if data.generation is not None and data.generation != current:
        raise ArtidError(
            f"bundle {path} changed since its contents were read (then "
            f"{data.generation}, now {current}); run the change again"
        )
    for label, name in data.thumbnails.items():
        if not THUMBNAIL_RE.match(name) or not (path / THUMBNAILS / name).is_file():
            raise ArtidError(f"bundle {path}: thumbnail {name!r} of class {label} is missing")
    attributes_ref = str(data.attributes["ref"]) if data.attributes else None
    if attributes_ref is not None and not (path / attributes_ref / "run.json").is_file():
        raise ArtidError(f"bundle {path}: its attributes run {attributes_ref!r} is missing")
    validation_ref = str(data.validation["ref"]) if data.validation else None
    if validation_ref is not None and not (path / validation_ref / "queries.json").is_file():
        raise ArtidError(f"bundle {path}: its validation photos {validation_ref!r} are missing")
    gen = f"gen-{max(generation_numbers(path), default=0) + 1:06d}"
    with atomic_path(path / gen, durable=True) as tmp:
        tmp.mkdir()
        data.pipeline.save(tmp / PIPELINE)
        records = [
            {**a.to_json(), "thumbnail": data.thumbnails.get(a.label)} for a in data.artworks
        ]
        write_json(tmp / "artworks.json", records, durable=True)
        write_json(
            tmp / "images.json",
            {"entries": [e.to_json() for e in data.entries], "failures": list(data.failures)},
            durable=True,
        )
        fsync_dir(tmp / PIPELINE)
        fsync_dir(tmp)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    history = list(previous.get("history", [])) if previous else []
    history.append(
        {
            "time": now,
            "operation": operation,
            "generation": gen,
            "artworks": data.n_classes,
            "images": data.n_images,
            "failures": list(failures or []),
        }
    )
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "artid_version": __version__,
        "generation": gen,
        "created": previous.get("created", now) if previous else now,
        "updated": now,
        "models": data.models,
        "extraction": data.extraction,
        "pipeline": _pipeline_record(data.pipeline),
        "artworks": data.n_classes,
        "images": data.n_images,
        "calibration": data.calibration.to_json(),
        "info": data.info,
        "history": history,
    }
    if data.global_calibration is not None:
        manifest["global_calibration"] = data.global_calibration.to_json()
    if data.attributes:
        manifest["attributes"] = data.attributes
    if data.validation:
        manifest["validation"] = data.validation
    write_json_atomic(path / MANIFEST, manifest)
    collect_garbage(
        path,
        keep=gen,
        thumbnails=set(data.thumbnails.values()),
        model_refs={str(m.get("ref", "")) for m in data.models},
        attributes_ref=attributes_ref,
        validation_ref=validation_ref,
    )
    log.info(
        "bundle %s: committed %s (%d artworks, %d images)", path, gen, data.n_classes, data.n_images
    )
    return path / gen


def _pipeline_record(pipe: KNNPipeline) -> dict[str, Any]:
    """What ``bundle.json`` says of the pipeline (``artid index info``; the pipeline's own
    ``pipeline.json`` has everything)."""
    summary = pipe.summary()
    keep = ("k", "tau", "n_classes", "database_images", "projection", "expansion", "rerank")
    return {"index": summary["config"]["index"], **{k: summary.get(k) for k in keep}}


def load_bundle(path: str | Path) -> BundleData:
    """Read the bundle's current generation (the pipeline's arrays memory-mapped).

    Raises:
        ArtidError: not a bundle, a bundle of an older format, or files that do not belong
            together.
    """
    path = Path(path)
    meta = read_manifest(path)
    gen = path / str(meta.get("generation", ""))
    if not GEN_RE.match(gen.name) or not gen.is_dir():
        raise ArtidError(
            f"{path / MANIFEST} names generation {gen.name!r}, which is not in the bundle"
        )
    pipe = KNNPipeline.load(gen / PIPELINE, use_gpu=False, mmap=True)
    try:
        records: list[dict[str, Any]] = json.loads((gen / "artworks.json").read_text("utf-8"))
        artworks = [Artwork.from_json(r) for r in records]
        images = json.loads((gen / "images.json").read_text(encoding="utf-8"))
        entries = [Entry.from_json(e) for e in images["entries"]]
        failures = list(images.get("failures", []))
    except (
        OSError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise ArtidError(f"{gen}: artworks.json / images.json cannot be read ({exc!r})") from None
    thumbnails = {int(r["label"]): r["thumbnail"] for r in records if r.get("thumbnail")}
    glob = meta.get("global_calibration")
    data = BundleData(
        models=list(meta.get("models", [])),
        extraction=meta.get("extraction", {}),
        pipeline=pipe,
        entries=entries,
        artworks=artworks,
        thumbnails=thumbnails,
        calibration=Calibration.from_json(meta.get("calibration", {})),
        global_calibration=Calibration.from_json(glob) if glob else None,
        failures=failures,
        info=meta.get("info", {}),
        generation=gen.name,
        attributes=meta.get("attributes") or None,
        validation=meta.get("validation") or None,
    )
    data.check()
    return data
