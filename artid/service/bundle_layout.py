"""The bundle folder on disk: names, the writer lock, the manifest, shared stores.

Layout::

    bundle/
      bundle.json              the manifest; replacing it is the commit point of every change
      .lock                    the writer lock (``flock``), held for a whole change
      gen-000003/              the current generation (named by bundle.json)
        pipeline/              the fitted recognition pipeline, whole (``KNNPipeline.save``: its
                               settings and choices, projection, searched database rows and labels,
                               IVF index, re-ranking stage and the rows' local features)
        artworks.json          one record per artwork: key, label, title, artist, ..., thumbnail
        images.json            the database rows' images (row order) and the unreadable ones
      thumbnails/<sha>.jpg     thumbnails, named by content (shared by generations)
      models/<sha>.pt          a copied artid checkpoint when the model is one (shared)
      attributes/<sha>/        a copied attributes run (``run.json`` + its model files) when
                               the bundle tags photos (``index build --attributes RUN``; shared)
      validation/<sha>/        the validation photos' descriptors (and local features) the
                               thresholds are calibrated on, again after every edit
                               (:mod:`artid.service.recalibration`; shared)
      .readers/<host>-<pid>.json  a running server's lease on the generations it may still read
                               (:mod:`artid.service.readers`): never collected while it is live

Bundles of format ``artid-bundle/1`` (the pipeline's parts: whitened ``database.npy``,
``whitening.npz``, k and tau in the manifest) are refused with a message saying to rebuild them.
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
from artid.files import atomic_path, copy_file, write_bytes, write_json
from artid.service.readers import leased_generations

FORMAT = "artid-bundle/2"
#: Formats of older bundles, which this version refuses (they are rebuilt with `artid index build`).
OLD_FORMATS = ("artid-bundle/1",)
MANIFEST = "bundle.json"
THUMBNAILS = "thumbnails"
MODELS = "models"
ATTRIBUTES = "attributes"
VALIDATION = "validation"
LOCK = ".lock"
GEN_RE = re.compile(r"^gen-(\d{6})$")
#: A generation's folder, committed or half-written (``.gen-000004.<pid>.tmp``, see
#: :func:`artid.files.atomic_path`).
GENERATION_FOLDER_RE = re.compile(r"^\.?gen-(\d{6})(\.\d+)?(\.tmp)?$")
#: Names a thumbnail may have: the SHA-256 prefix of its bytes. Nothing else is ever served.
THUMBNAIL_RE = re.compile(r"^[0-9a-f]{32}\.jpg$")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path``: a reader sees the old file or the new one, whole."""
    write_json(path, obj, durable=True)


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
            raise ArtidError(
                f"bundle {path} is being changed by another process; try again when it is done"
            ) from None
        yield
    finally:
        os.close(fd)


def store_thumbnail(bundle: Path, jpeg: bytes) -> str:
    """Write thumbnail bytes into ``bundle/thumbnails`` under their content name; its name."""
    name = hashlib.sha256(jpeg).hexdigest()[:32] + ".jpg"
    folder = bundle / THUMBNAILS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.is_file():
        write_bytes(target, jpeg)
    return name


def store_model_file(bundle: Path, checkpoint: Path) -> str:
    """Copy a checkpoint into ``bundle/models`` by content; its path relative to the bundle."""
    from artid.models.checkpoint import file_sha256

    folder = bundle / MODELS
    folder.mkdir(parents=True, exist_ok=True)
    name = file_sha256(checkpoint)[:32] + checkpoint.suffix
    target = folder / name
    if not target.is_file():
        copy_file(checkpoint, target)
    return f"{MODELS}/{name}"


def store_attributes(bundle: Path, run: Path) -> str:
    """Copy what the service needs of an attributes run into ``bundle/attributes/<sha>/`` (named
    by the content of those files); returns its path relative to the bundle.

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
        shutil.rmtree(target, ignore_errors=True)
        with atomic_path(target) as tmp:
            copy_servable(run, tmp)
    return f"{ATTRIBUTES}/{name}"


def generation_numbers(path: Path) -> list[int]:
    """Numbers of the generation folders in ``path``, committed or half-written (``.gen-*.tmp``)."""
    out = []
    for p in path.iterdir() if path.is_dir() else []:
        m = GENERATION_FOLDER_RE.match(p.name)
        if m:
            out.append(int(m.group(1)))
    return out


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The bundle's ``bundle.json``.

    Raises:
        ArtidError: naming the folder when it is not a bundle, or a bundle of an older format.
    """
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise ArtidError(
            f"{path} is not an index bundle (no {MANIFEST}); build one with `artid index build`"
        )
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtidError(f"{manifest}: not valid JSON ({exc})") from None
    if isinstance(meta, dict) and meta.get("format") in OLD_FORMATS:
        raise ArtidError(
            f"{manifest}: a bundle of an older artid (format {meta['format']!r}, which "
            "stored the pipeline's parts instead of the fitted pipeline); rebuild it "
            "with `artid index build`"
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtidError(f"{manifest}: not an artid bundle manifest (expected format {FORMAT!r})")
    return meta


def _listed_thumbnails(generation: Path) -> set[str]:
    """The thumbnails a generation's ``artworks.json`` names (none when it cannot be read)."""
    try:
        records = json.loads((generation / "artworks.json").read_text(encoding="utf-8"))
        return {str(r["thumbnail"]) for r in records if r.get("thumbnail")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def collect_garbage(
    path: Path,
    keep: str,
    thumbnails: set[str],
    model_refs: set[str],
    attributes_ref: str | None = None,
    validation_ref: str | None = None,
) -> None:
    """Remove old generations, stray temporary folders and files no generation uses (lock held).

    Generations a running server may still read (:mod:`artid.service.readers`) are kept, with
    the thumbnails they list.
    """
    kept = {keep} | leased_generations(path)
    thumbnails = set(thumbnails)
    for p in path.iterdir():
        if not (p.is_dir() and GENERATION_FOLDER_RE.match(p.name)):
            continue
        if p.name in kept and GEN_RE.match(p.name):
            thumbnails |= _listed_thumbnails(p)
        else:
            shutil.rmtree(p, ignore_errors=True)
    folder = path / THUMBNAILS
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name not in thumbnails:
                p.unlink(missing_ok=True)
    folder = path / MODELS
    if folder.is_dir():
        for p in folder.iterdir():
            if f"{MODELS}/{p.name}" not in model_refs:
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
    folder = path / VALIDATION
    if folder.is_dir():
        for p in folder.iterdir():
            if f"{VALIDATION}/{p.name}" == validation_ref:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
