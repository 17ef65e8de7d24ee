"""The index bundle: everything the recognition service needs, in one folder.

Layout::

    bundle/
      bundle.json              the manifest; replacing it is the commit point of every change
      gen-000003/              the current generation (named by bundle.json)
        database.npy/.json     searched descriptors (after whitening), (N, d) float32, and their entries
        index.faiss            the faiss index over those rows (exact inner product)
        whitening.npz          PCA-whitening applied to queries (absent when none)
        artworks.json          one record per artwork: key, label, title, artist, ..., thumbnail
      thumbnails/<sha>.jpg     thumbnails, named by content (shared by generations, written at build time)
      models/<sha>.pt          a copied artid checkpoint when the model is one (shared by generations)

A change (build, add, remove) writes a complete new generation beside the current
one, then atomically replaces ``bundle.json``; a reader sees either the old or the
new bundle, never a half-written one. An interrupted change leaves at most a stray
folder that the next change removes. Writers take an exclusive lock on
``bundle/.lock``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np

from artid import __version__
from artid.data.entries import Entry
from artid.descriptors import DescriptorSet, load_descriptors, save_descriptors
from artid.errors import ArtidError
from artid.retrieval.whitening import PCAWhitening
from artid.service.calibrate import Calibration
from artid.service.collection import Artwork

log = logging.getLogger(__name__)

FORMAT = "artid-bundle/1"
MANIFEST = "bundle.json"
THUMBNAILS = "thumbnails"
MODELS = "models"
_GEN_RE = re.compile(r"^gen-(\d{6})$")
#: Names a thumbnail may have: the SHA-256 prefix of its bytes. Nothing else is ever served.
THUMBNAIL_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")


@dataclass
class BundleData:
    """The contents of a bundle, in memory.

    Attributes:
        model: ``{"ref": ..., "spec": ...}``: what :func:`artid.models.build_embedder` takes
            (a model name, or ``models/<sha>.pt`` relative to the bundle) and the model's spec.
        extraction: how query descriptors are computed (``max_size``, ``scales``).
        descriptors: the searched database descriptors, (N, d) float32 L2-normalised rows
            (whitened when ``whitening`` is set), entries in row order.
        whitening: the PCA-whitening applied to query descriptors, or None.
        artworks: one per class label present in ``descriptors``.
        thumbnails: label -> thumbnail file name in ``thumbnails/``.
        k, tau: the kNN classifier's hyper-parameters.
        calibration: the acceptance threshold and its validation figures.
        info: free-form provenance (source collection, tuning results, history).
    """

    model: dict[str, Any]
    extraction: dict[str, Any]
    descriptors: DescriptorSet
    whitening: PCAWhitening | None
    artworks: list[Artwork]
    thumbnails: dict[int, str]
    k: int
    tau: float
    calibration: Calibration
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 labels of the descriptor rows."""
        return self.descriptors.labels

    @property
    def n_classes(self) -> int:
        return len(self.artworks)

    def artwork_by_label(self) -> dict[int, Artwork]:
        return {a.label: a for a in self.artworks}

    def check(self) -> None:
        """Refuse inconsistent contents (rows of unknown artworks, artworks without rows, bad k)."""
        labels = set(int(x) for x in np.unique(self.labels))
        known = {a.label for a in self.artworks}
        if len(known) != len(self.artworks):
            raise ArtidError("bundle: two artworks share a class label")
        keys = [a.key for a in self.artworks]
        if len(set(keys)) != len(keys):
            raise ArtidError("bundle: two artworks share a key")
        if labels - known:
            raise ArtidError(f"bundle: descriptor rows of unknown class(es) {sorted(labels - known)[:5]}")
        if known - labels:
            raise ArtidError(f"bundle: artwork(s) without any image: {sorted(known - labels)[:5]}")
        if self.k < 1:
            raise ArtidError(f"bundle: k must be >= 1, got {self.k}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def bundle_lock(path: Path) -> Iterator[None]:
    """Exclusive writer lock on ``path/.lock`` (fails at once if another change is running)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArtidError(f"bundle {path} is being changed by another process; try again when it is done") from None
        yield
    finally:
        os.close(fd)


def store_thumbnail(bundle: Path, jpeg: bytes) -> str:
    """Write thumbnail bytes into ``bundle/thumbnails`` under their content name; returns the name."""
    name = hashlib.sha256(jpeg).hexdigest()[:32] + ".jpg"
    folder = bundle / THUMBNAILS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.is_file():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(jpeg)
        os.replace(tmp, target)
    return name


def store_model_file(bundle: Path, checkpoint: Path) -> str:
    """Copy a checkpoint into ``bundle/models`` by content; returns its path relative to the bundle."""
    from artid.models.checkpoint import file_sha256

    folder = bundle / MODELS
    folder.mkdir(parents=True, exist_ok=True)
    name = file_sha256(checkpoint)[:32] + checkpoint.suffix
    target = folder / name
    if not target.is_file():
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(checkpoint, tmp)
        os.replace(tmp, target)
    return f"{MODELS}/{name}"


def _generations(path: Path) -> list[int]:
    out = []
    for p in path.iterdir() if path.is_dir() else []:
        m = _GEN_RE.match(p.name.lstrip(".").removesuffix(".tmp"))
        if m:
            out.append(int(m.group(1)))
    return out


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The bundle's ``bundle.json`` (raises ArtidError naming the folder when it is not a bundle)."""
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise ArtidError(f"{path} is not an index bundle (no {MANIFEST}); build one with `artid index build`")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtidError(f"{manifest}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtidError(f"{manifest}: not an artid bundle manifest (expected format {FORMAT!r})")
    return meta


def write_bundle(path: str | Path, data: BundleData, operation: str) -> Path:
    """Write ``data`` as the bundle's new generation and commit it atomically.

    Thumbnails and model files named by ``data`` must already be in the bundle
    (:func:`store_thumbnail`, :func:`store_model_file`).

    Args:
        path: the bundle folder (created when missing).
        data: the complete new contents.
        operation: one line for the bundle's history (e.g. ``"build from /data/coll"``).

    Returns:
        The new generation's folder.
    """
    import faiss

    path = Path(path)
    data.check()
    for label, name in data.thumbnails.items():
        if not THUMBNAIL_RE.match(name) or not (path / THUMBNAILS / name).is_file():
            raise ArtidError(f"bundle {path}: thumbnail {name!r} of class {label} is missing")
    with bundle_lock(path):
        previous = read_manifest(path) if (path / MANIFEST).is_file() else None
        gen_no = max(_generations(path), default=0) + 1
        gen = f"gen-{gen_no:06d}"
        tmp = path / f".{gen}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        matrix = np.ascontiguousarray(data.descriptors.matrix, dtype=np.float32)
        save_descriptors(tmp / "database", data.descriptors)
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        faiss.write_index(index, str(tmp / "index.faiss"))
        if data.whitening is not None:
            data.whitening.save(tmp / "whitening.npz")
        records = [{**a.to_json(), "thumbnail": data.thumbnails.get(a.label)} for a in data.artworks]
        (tmp / "artworks.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
        for p in tmp.iterdir():
            _fsync_file(p)
        _fsync_dir(tmp)
        os.replace(tmp, path / gen)
        _fsync_dir(path)
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        history = list(previous.get("history", [])) if previous else []
        history.append({"time": now, "operation": operation, "generation": gen,
                        "artworks": data.n_classes, "images": int(matrix.shape[0])})
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
        _write_json_atomic(path / MANIFEST, manifest)
        _collect_garbage(path, keep=gen, thumbnails=set(data.thumbnails.values()),
                         model_ref=str(data.model.get("ref", "")))
    log.info("bundle %s: committed %s (%d artworks, %d images)", path, gen, data.n_classes, matrix.shape[0])
    return path / gen


def _collect_garbage(path: Path, keep: str, thumbnails: set[str], model_ref: str) -> None:
    """Remove old generations, stray temporary folders and files no generation uses."""
    for p in path.iterdir():
        name = p.name
        if p.is_dir() and name != keep and _GEN_RE.match(name.lstrip(".").removesuffix(".tmp")):
            shutil.rmtree(p, ignore_errors=True)
    folder = path / THUMBNAILS
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name not in thumbnails:
                p.unlink(missing_ok=True)
    folder = path / MODELS
    if folder.is_dir():
        for p in folder.iterdir():
            if f"{MODELS}/{p.name}" != model_ref:
                p.unlink(missing_ok=True)


def load_bundle(path: str | Path) -> BundleData:
    """Read the bundle's current generation.

    Raises:
        ArtidError: not a bundle, or files that do not belong together.
    """
    import faiss

    path = Path(path)
    meta = read_manifest(path)
    gen = path / str(meta.get("generation", ""))
    if not _GEN_RE.match(gen.name) or not gen.is_dir():
        raise ArtidError(f"{path / MANIFEST} names generation {gen.name!r}, which is not in the bundle")
    descriptors = load_descriptors(gen / "database")
    index_file = gen / "index.faiss"
    try:
        index = faiss.read_index(str(index_file))
    except RuntimeError as exc:
        raise ArtidError(f"{index_file}: cannot be read as a faiss index ({str(exc).splitlines()[0]})") from None
    if index.ntotal != descriptors.matrix.shape[0] or index.d != descriptors.matrix.shape[1]:
        raise ArtidError(f"{index_file} holds {index.ntotal}x{index.d} vectors but {gen / 'database.npy'} "
                         f"is {descriptors.matrix.shape[0]}x{descriptors.matrix.shape[1]}")
    whitening = None
    if meta.get("whitened"):
        whitening = PCAWhitening.load(gen / "whitening.npz")
        if whitening.out_dim != descriptors.matrix.shape[1]:
            raise ArtidError(f"{gen / 'whitening.npz'} gives {whitening.out_dim}-d descriptors but the "
                             f"database holds {descriptors.matrix.shape[1]}-d ones")
    try:
        records = json.loads((gen / "artworks.json").read_text(encoding="utf-8"))
        artworks = [Artwork.from_json(r) for r in records]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtidError(f"{gen / 'artworks.json'}: cannot be read ({exc!r})") from None
    thumbnails = {int(r["label"]): r["thumbnail"] for r in records if r.get("thumbnail")}
    cls = meta.get("classifier", {})
    data = BundleData(
        model=meta.get("model", {}), extraction=meta.get("extraction", {}), descriptors=descriptors,
        whitening=whitening, artworks=artworks, thumbnails=thumbnails, k=int(cls.get("k", 1)),
        tau=float(cls.get("tau", 1.0)), calibration=Calibration.from_json(meta.get("calibration", {})),
        info=meta.get("info", {}),
    )
    data.check()
    return data


def without_artworks(data: BundleData, keys: list[str]) -> BundleData:
    """The bundle's contents with the artworks ``keys`` (and all their images) removed.

    Raises:
        ArtidError: a key not in the bundle, or removing every artwork.
    """
    known = {a.key: a for a in data.artworks}
    missing = [k for k in keys if k not in known]
    if missing:
        raise ArtidError(f"no artwork {', '.join(map(repr, missing))} in the bundle")
    drop = {known[k].label for k in keys}
    if len(drop) == len(data.artworks):
        raise ArtidError("removing every artwork would leave an empty bundle")
    keep = ~np.isin(data.labels, np.fromiter(drop, dtype=np.int64))
    d = data.descriptors
    rows = np.flatnonzero(keep)
    descriptors = DescriptorSet(matrix=np.asarray(d.matrix)[rows], entries=[d.entries[i] for i in rows],
                                model=d.model, settings=d.settings, failures=d.failures)
    return replace(data, descriptors=descriptors,
                   artworks=[a for a in data.artworks if a.label not in drop],
                   thumbnails={lab: t for lab, t in data.thumbnails.items() if lab not in drop})


def with_artworks(data: BundleData, artworks: list[Artwork], matrix: np.ndarray, entries: list[Entry],
                  thumbnails: dict[int, str]) -> BundleData:
    """The bundle's contents with new artworks appended.

    Args:
        data: the current contents.
        artworks: the new artworks (keys and labels not yet in the bundle).
        matrix: (M, d) float32 searched descriptors of their images (already whitened).
        entries: the M entries, labels among the new artworks'.
        thumbnails: label -> thumbnail name for the new artworks.
    """
    keys = {a.key for a in data.artworks}
    clash = [a.key for a in artworks if a.key in keys]
    if clash:
        raise ArtidError(f"artwork {', '.join(map(repr, clash))} is already in the bundle "
                         "(remove it first to replace its images)")
    d = data.descriptors
    if matrix.shape[1] != d.matrix.shape[1]:
        raise ArtidError(f"new descriptors have dimension {matrix.shape[1]}, the bundle {d.matrix.shape[1]}")
    descriptors = DescriptorSet(matrix=np.concatenate([np.asarray(d.matrix), matrix.astype(np.float32)]),
                                entries=list(d.entries) + list(entries), model=d.model, settings=d.settings,
                                failures=d.failures)
    return replace(data, descriptors=descriptors, artworks=list(data.artworks) + list(artworks),
                   thumbnails={**data.thumbnails, **thumbnails})


def next_label(data: BundleData) -> int:
    """The first free class label above every label in the bundle."""
    return max((a.label for a in data.artworks), default=-1) + 1
