"""The re-ranking store: every database image's SIFT keypoints in three memory-mapped arrays, built
resumably in chunks.

One compressed file per image (:class:`artid.extraction.local.FeatureCache`) is 400,000 files at
the Met's size; the store is a folder of three ``.npy`` arrays that
:class:`artid.extraction.local.LocalFeatureSet` maps (``local_offsets.npy``, ``local_xy.npy``,
``local_desc.npy``: 8 bytes of positions and 128 of descriptor per keypoint) and a manifest
``local_store.json``. It is built in chunks of ``chunk`` images, each written whole
(``chunks/chunk_000012.npz``) with its key: the SHA-1 of its images' bytes and their paths, and the
SIFT settings. An interrupted build resumes at the first chunk without a valid file; a chunk of
other images or settings, or a damaged one, is computed again. When every chunk is there they are
streamed into the three arrays (never all in memory) and the chunk files removed; a later build of
the same images and settings only hashes the images and maps the arrays.

``max_keypoints`` is the store's keypoint budget per image (the strongest, as
:func:`artid.extraction.local.local_features` orders them): bytes on disk and verification time
both scale with it. An image that cannot be read has no keypoints and is named in
:attr:`StoreBuild.unreadable` (with its chunk kept: the same bytes stay unreadable, and a file
that appears or changes changes the chunk's key).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from artid.errors import ArtidError
from artid.extraction import local
from artid.extraction.local import PACKED_FILES, SIFT_DIM, LocalFeatures, LocalFeatureSet
from artid.extraction.local_cache import file_digest, open_folder
from artid.files import atomic_path, write_json

#: The store's manifest inside its folder.
MANIFEST = "local_store.json"
#: Images per chunk.
DEFAULT_CHUNK = 256
FORMAT = 1


@dataclass
class StoreBuild:
    """What :func:`build_store` made.

    Attributes:
        features: the store, memory-mapped (row i: the i-th image given).
        unreadable: path -> why, of the images that could not be read (no keypoints).
        computed: chunks computed in this run (0: every chunk or the whole store was there).
    """

    features: LocalFeatureSet
    unreadable: dict[str, str] = field(default_factory=dict)
    computed: int = 0


def _chunk_key(rels: Sequence[str], digests: Sequence[str], settings: tuple[int, int]) -> str:
    h = hashlib.sha1(f"{FORMAT}|{settings[0]}|{settings[1]}".encode())
    for rel, digest in zip(rels, digests):
        h.update(f"\n{rel}|{digest}".encode())
    return h.hexdigest()


def _read_chunk(path: Path, key: str, n: int) -> tuple[LocalFeatureSet, dict[str, str]] | None:
    """A chunk file's features and unreadable images, or None where it is absent, damaged or
    not of this key."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            feats = LocalFeatureSet(z["offsets"], z["xy"], z["desc"])
            why = json.loads(str(z["unreadable"]))
    except Exception:  # noqa: BLE001 - whatever breaks a chunk file, it is computed again
        return None
    if len(feats) != n or feats.xy.dtype != np.float32 or not isinstance(why, dict):
        return None
    return feats, why


def _compute_chunk(
    rels: Sequence[str], root: Path, settings: tuple[int, int]
) -> tuple[LocalFeatureSet, dict[str, str]]:
    feats, why = [], {}
    for rel in rels:
        try:
            feats.append(local.local_features(root / rel, *settings))
        except ArtidError as exc:
            feats.append(LocalFeatures.empty())
            why[rel] = str(exc)
    return LocalFeatureSet.pack(feats), why


def _write_chunk(path: Path, key: str, feats: LocalFeatureSet, why: dict[str, str]) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                key=np.array(key),
                offsets=feats.offsets,
                xy=feats.xy,
                desc=feats.desc,
                unreadable=np.array(json.dumps(why)),
            )
    except OSError as exc:
        raise ArtidError(
            f"re-ranking store {path.parent}: cannot write {path.name} ({exc.strerror or exc})"
        ) from None


def _digests(rels: Sequence[str], root: Path) -> list[str]:
    out = []
    for rel in rels:
        try:
            out.append(file_digest(root / rel))
        except OSError as exc:
            out.append(f"unreadable: {exc.strerror or exc}")
    return out


def _merge(folder: Path, parts: list[Path], total: int, n_images: int) -> None:
    """Stream the chunk files into the store's three arrays (each written whole, then renamed)."""
    shapes = {
        "offsets": ((n_images + 1,), np.int64),
        "xy": ((total, 2), np.float32),
        "desc": ((total, SIFT_DIM), np.uint8),
    }
    with contextlib.ExitStack() as stack:
        out = {}
        for name, (shape, dtype) in shapes.items():
            tmp = stack.enter_context(atomic_path(folder / PACKED_FILES[name]))
            out[name] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        row, kp = 0, 0
        out["offsets"][0] = 0
        for part in parts:
            with np.load(part, allow_pickle=False) as z:
                offsets, n = z["offsets"], int(z["offsets"][-1])
                out["xy"][kp : kp + n] = z["xy"]
                out["desc"][kp : kp + n] = z["desc"]
            out["offsets"][row + 1 : row + len(offsets)] = offsets[1:] + kp
            row, kp = row + len(offsets) - 1, kp + n
        for arr in out.values():
            arr.flush()
        out.clear()  # closes the maps before they are renamed into place


def build_store(
    rels: Sequence[str],
    root: str | Path,
    folder: str | Path,
    max_keypoints: int,
    max_size: int,
    chunk: int | None = None,
    desc: str = "local features",
) -> StoreBuild:
    """The store of the images ``root / rel`` (in this order) under ``folder``, built or resumed
    (``chunk`` images per chunk, default :data:`DEFAULT_CHUNK`).

    Raises:
        ArtidError: the folder cannot be created or written, or ``chunk`` < 1.
    """
    chunk = DEFAULT_CHUNK if chunk is None else int(chunk)
    if chunk < 1:
        raise ArtidError(f"re-ranking store: chunks of at least 1 image, got {chunk}")
    folder, root = open_folder(Path(folder)), Path(root)
    settings = (int(max_keypoints), int(max_size))
    spans = [(a, min(a + chunk, len(rels))) for a in range(0, len(rels), chunk)]
    keys = [_chunk_key(rels[a:b], _digests(rels[a:b], root), settings) for a, b in spans]
    whole = hashlib.sha1("|".join(keys).encode()).hexdigest()
    manifest = folder / MANIFEST
    done = _read_manifest(manifest)
    old = _old_store(folder, done)
    if old is not None and done is not None and done.get("key") == whole and len(old) == len(rels):
        return StoreBuild(old, dict(done.get("unreadable", {})), 0)
    # the chunks an earlier store already holds (same images, same place) are copied from it
    reusable = {}
    if old is not None and done is not None and done.get("chunk") == chunk:
        old_keys = list(done.get("chunks", []))
        reusable = {i: k for i, k in enumerate(old_keys) if i < len(keys) and keys[i] == k}
    chunks = folder / "chunks"
    chunks.mkdir(exist_ok=True)
    parts, unreadable, computed, total = [], {}, 0, 0
    bar = tqdm(total=len(rels), desc=desc, unit="image", leave=False)
    for i, ((a, b), key) in enumerate(zip(spans, keys)):
        path = chunks / f"chunk_{i:06d}.npz"
        got = _read_chunk(path, key, b - a)
        if got is None and i in reusable and old is not None and done is not None:
            why = {r: w for r, w in dict(done.get("unreadable", {})).items() if r in rels[a:b]}
            got = (old.rows(range(a, b)), why)
            _write_chunk(path, key, *got)
        if got is None:
            got = _compute_chunk(rels[a:b], root, settings)
            _write_chunk(path, key, *got)
            computed += 1
        parts.append(path)
        unreadable.update(got[1])
        total += got[0].keypoints
        bar.update(b - a)
    bar.close()
    _merge(folder, parts, total, len(rels))
    write_json(
        manifest,
        {
            "format": FORMAT,
            "key": whole,
            "images": len(rels),
            "keypoints": total,
            "max_keypoints": settings[0],
            "max_size": settings[1],
            "unreadable": unreadable,
            "chunk": chunk,
            "chunks": keys,
        },
    )
    shutil.rmtree(chunks, ignore_errors=True)
    return StoreBuild(LocalFeatureSet.load(folder, mmap=True), unreadable, computed)


def _old_store(folder: Path, done: dict | None) -> LocalFeatureSet | None:
    """The store a finished earlier build left, or None (none, or damaged: built again)."""
    if done is None:
        return None
    try:
        return LocalFeatureSet.load(folder, mmap=True)
    except ArtidError:
        return None


def _read_manifest(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def store_bytes(folder: str | Path) -> int:
    """Bytes of a store's three arrays on disk."""
    return sum(os.path.getsize(Path(folder) / name) for name in PACKED_FILES.values())
