"""The bundle folder on disk: names, the writer lock, atomic files, the manifest, shared stores.

Layout::

    bundle/
      bundle.json              the manifest; replacing it is the commit point of every change
      .lock                    the writer lock (``flock``), held for a whole change
      gen-000003/              the current generation (named by bundle.json)
        database.npy/.json     searched descriptors (after whitening), (N, d) float32, and their entries
        whitening.npz          PCA-whitening applied to queries (absent when none)
        artworks.json          one record per artwork: key, label, title, artist, ..., thumbnail
        local_*.npy            SIFT keypoints of every row when the bundle re-ranks (``--rerank K``;
                               :mod:`artid.extraction.local`)
      thumbnails/<sha>.jpg     thumbnails, named by content (shared by generations)
      models/<sha>.pt          a copied artid checkpoint when the model is one (shared by generations)
      attributes/<sha>/        a copied attributes run (``run.json`` + its model files) when the bundle
                               tags photos (``artid index build --attributes RUN``; shared by generations)

The service searches ``database.npy`` exactly (faiss brute force, see
:class:`artid.retrieval.knn.KNNClassifier`), so a bundle stores no separate faiss index;
an ``index.faiss`` left by older versions is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artid.errors import ArtidError

FORMAT = "artid-bundle/1"
MANIFEST = "bundle.json"
THUMBNAILS = "thumbnails"
MODELS = "models"
ATTRIBUTES = "attributes"
LOCK = ".lock"
GEN_RE = re.compile(r"^gen-(\d{6})$")
#: Names a thumbnail may have: the SHA-256 prefix of its bytes. Nothing else is ever served.
THUMBNAIL_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` so that a reader sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def bundle_lock(path: Path) -> Iterator[None]:
    """Exclusive writer lock on ``path/.lock`` (fails at once if another change is running).

    The lock belongs to this open file, so a second ``bundle_lock`` on the same bundle fails
    even from another thread of the same process.
    """
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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


def store_attributes(bundle: Path, run: Path) -> str:
    """Copy what the service needs of an attributes run into ``bundle/attributes/<sha>/`` (named by the
    content of those files); returns its path relative to the bundle.

    Raises:
        ArtidError: the run cannot tag photos (see :func:`artid.attributes.tagger.servable_run`).
    """
    from artid.attributes.tagger import SERVABLE_FILES, copy_servable, servable_run
    from artid.models.checkpoint import file_sha256

    meta = servable_run(run)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in SERVABLE_FILES[meta["model"]]:
        h.update(f"{name}\0{file_sha256(run / name)}\n".encode())
    name = h.hexdigest()[:32]
    folder = bundle / ATTRIBUTES
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not (target / "run.json").is_file():
        tmp = folder / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        copy_servable(run, tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return f"{ATTRIBUTES}/{name}"


def generation_numbers(path: Path) -> list[int]:
    """Numbers of the generation folders in ``path``, committed or half-written (``.gen-*.tmp``)."""
    out = []
    for p in path.iterdir() if path.is_dir() else []:
        m = GEN_RE.match(p.name.lstrip(".").removesuffix(".tmp"))
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


def collect_garbage(path: Path, keep: str, thumbnails: set[str], model_ref: str,
                    attributes_ref: str | None = None) -> None:
    """Remove old generations, stray temporary folders and files no generation uses (lock held)."""
    for p in path.iterdir():
        name = p.name
        if p.is_dir() and name != keep and GEN_RE.match(name.lstrip(".").removesuffix(".tmp")):
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
    folder = path / ATTRIBUTES
    if folder.is_dir():
        for p in folder.iterdir():
            if f"{ATTRIBUTES}/{p.name}" == attributes_ref:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
