"""Collections to index: a plain folder (one sub-folder per artwork) or a Met-format root.

A plain collection folder looks like this::

    collection/
      mona-lisa/             one sub-folder per artwork; its name is the artwork's key
        front.jpg            one or more photos of it (jpg, jpeg, png, webp, bmp, tif, tiff)
        detail.jpg
      starry-night/
        0.jpg
      metadata.csv           optional: one row per artwork (or metadata.json)

``metadata.csv`` has a header row with a ``key`` column (the folder name; ``id`` is
accepted too) and any of ``title``, ``artist``, ``date``, ``department``, ``url``;
other columns are kept as extra fields. ``metadata.json`` is either a list of objects
with a ``key`` (or ``id``) field, or an object mapping keys to objects.

Validation queries for calibrating the acceptance threshold use the same layout:
``val/<key>/*.jpg`` are photos of artworks of the collection and
``val/_distractors/*.jpg`` photos of things outside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artid.data.entries import DISTRACTOR, Entry
from artid.errors import ArtidError
from artid.service.metadata import find_metadata, read_metadata

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
METADATA_FIELDS = ("title", "artist", "date", "department", "url")
DISTRACTOR_FOLDER = "_distractors"


@dataclass(frozen=True)
class Artwork:
    """One artwork (one class of the classifier) with what a visitor is told about it.

    Attributes:
        key: the user's name for it: the folder name, or the Met object id as text.
        label: integer class id used by the descriptors and the classifier.
        title, artist, date, department, url: metadata ("" when unknown; title
            defaults to the key).
        extra: further metadata fields, as text.
    """

    key: str
    label: int
    title: str
    artist: str = ""
    date: str = ""
    department: str = ""
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "title": self.title,
            "artist": self.artist,
            "date": self.date,
            "department": self.department,
            "url": self.url,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Artwork:
        return cls(
            key=str(obj["key"]),
            label=int(obj["label"]),
            title=str(obj.get("title") or obj["key"]),
            artist=str(obj.get("artist", "")),
            date=str(obj.get("date", "")),
            department=str(obj.get("department", "")),
            url=str(obj.get("url", "")),
            extra={str(k): str(v) for k, v in (obj.get("extra") or {}).items()},
        )


@dataclass
class Collection:
    """Artworks and their images, ready to be described and indexed.

    Attributes:
        artworks: one per class, ordered by label.
        entries: database images (kind ``exhibit``), ``path`` relative to ``image_root``.
        image_root: folder the entries' paths are relative to.
    """

    artworks: list[Artwork]
    entries: list[Entry]
    image_root: Path


@dataclass
class Queries:
    """Validation queries: photos of the collection's artworks and distractors (label -1)."""

    entries: list[Entry]
    image_root: Path


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _artwork_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def make_artwork(key: str, label: int, fields: dict[str, str] | None) -> Artwork:
    """An artwork from its key, label and metadata fields (unknown fields go to ``extra``)."""
    fields = dict(fields or {})
    known = {name: fields.pop(name, "") for name in METADATA_FIELDS}
    return Artwork(
        key=key,
        label=label,
        title=known["title"] or key,
        artist=known["artist"],
        date=known["date"],
        department=known["department"],
        url=known["url"],
        extra={k: v for k, v in fields.items() if v != ""},
    )


def read_collection(
    root: str | Path,
    metadata: str | Path | None = None,
    first_label: int = 0,
    keys: list[str] | None = None,
) -> Collection:
    """Read a plain collection folder (one sub-folder of images per artwork).

    Args:
        root: the collection folder.
        metadata: a metadata file; default ``root/metadata.csv`` or ``root/metadata.json``
            if present.
        first_label: class id of the first artwork (artworks get consecutive ids in key order).
        keys: only these artworks (sub-folder names); default all sub-folders.

    Raises:
        ArtidError: missing folder, an artwork folder without images, bad metadata.
    """
    root = Path(root)
    if not root.is_dir():
        raise ArtidError(f"collection folder {root} does not exist or is not a folder")
    folders = _artwork_folders(root)
    if keys is not None:
        by_name = {p.name: p for p in folders}
        missing = [k for k in keys if k not in by_name]
        if missing:
            raise ArtidError(f"{root}: no artwork folder named {', '.join(map(repr, missing))}")
        folders = [by_name[k] for k in sorted(set(keys))]
    if not folders:
        raise ArtidError(
            f"{root}: no artwork sub-folders found (expected one folder of images per artwork)"
        )
    meta_path = Path(metadata) if metadata is not None else find_metadata(root)
    meta = read_metadata(meta_path) if meta_path is not None else {}
    names = {p.name for p in folders}
    unused = sorted(set(meta) - names)
    if unused and keys is None:
        log.warning(
            "%s describes %d artwork(s) without a folder in %s (first: %r)",
            meta_path,
            len(unused),
            root,
            unused[0],
        )
    artworks: list[Artwork] = []
    entries: list[Entry] = []
    for label, folder in enumerate(folders, start=first_label):
        images = list_images(folder)
        if not images:
            raise ArtidError(
                f"artwork folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        artworks.append(make_artwork(folder.name, label, meta.get(folder.name)))
        entries.extend(
            Entry(path=f"{folder.name}/{p.name}", label=label, kind="exhibit") for p in images
        )
    return Collection(artworks=artworks, entries=entries, image_root=root)


def read_queries(root: str | Path, label_of: dict[str, int]) -> Queries:
    """Read validation queries: ``root/<key>/*`` photos of artworks, ``root/_distractors/*`` others.

    Args:
        root: the validation folder.
        label_of: artwork key -> class id of the collection the queries are for.

    Raises:
        ArtidError: a folder naming no artwork of the collection, or no query at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise ArtidError(f"validation folder {root} does not exist or is not a folder")
    entries: list[Entry] = []
    for folder in _artwork_folders(root):
        if folder.name not in label_of:
            raise ArtidError(
                f"validation folder {folder} names no artwork of the collection "
                f"(distractors go in {root / DISTRACTOR_FOLDER})"
            )
        entries.extend(
            Entry(path=f"{folder.name}/{p.name}", label=label_of[folder.name], kind="met")
            for p in list_images(folder)
        )
    distractors = root / DISTRACTOR_FOLDER
    if distractors.is_dir():
        entries.extend(
            Entry(path=f"{DISTRACTOR_FOLDER}/{p.name}", label=DISTRACTOR, kind="other")
            for p in list_images(distractors)
        )
    if not entries:
        raise ArtidError(f"validation folder {root} holds no query images")
    return Queries(entries=entries, image_root=root)


def read_met_collection(
    root: str | Path, split: str = "database", metadata: str | Path | None = None
) -> Collection:
    """Read the exhibits of a Met-format root (the real Met or ``artid synth`` output).

    Args:
        root: dataset root (see MET_FORMAT.md).
        split: ``database`` or ``mini``.
        metadata: optional metadata file keyed by Met object id.
    """
    from artid.data.met import load_split

    db = load_split(root, split)
    if db.image_root is None:
        raise ArtidError(
            f"images of {db.gt_file.name} not found under {root} or {Path(root) / 'images'}"
        )
    meta = read_metadata(metadata) if metadata is not None else {}
    labels = sorted(set(db.labels))
    artworks = [
        make_artwork(str(label), label, meta.get(str(label)) or {"title": f"Met object {label}"})
        for label in labels
    ]
    return Collection(artworks=artworks, entries=list(db.entries), image_root=db.image_root)


def read_met_queries(root: str | Path, split: str = "val") -> Queries:
    """Validation queries of a Met-format root (Met photos and distractors)."""
    from artid.data.met import load_split

    q = load_split(root, split)
    if q.image_root is None:
        raise ArtidError(
            f"images of {q.gt_file.name} not found under {root} or {Path(root) / 'images'}"
        )
    return Queries(entries=list(q.entries), image_root=q.image_root)


def is_met_root(root: str | Path) -> bool:
    """True when ``root`` holds Met-format ground truth (``MET_database.json``)."""
    root = Path(root)
    return (root / "MET_database.json").is_file() or (
        root / "ground_truth" / "MET_database.json"
    ).is_file()
