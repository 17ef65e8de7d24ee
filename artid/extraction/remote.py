"""Image lists and images at fsspec URLs (``s3://``, ``gs://``, ``https://``, ``file://``, ...).

A Ray cluster's workers read their images themselves, so the images of ``artid extract --ray``
may live anywhere fsspec reaches: a list file or a folder given as a URL, or URLs inside a local
list file. Every image, local or remote, is decoded by :func:`artid.data.images.load_image`, so a
local file gives the same pixels (and the same failure message) as single-process extraction.
The protocol's own package must be installed where the images are read (``s3fs`` for ``s3://``,
``gcsfs`` for ``gs://``, ...).
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.entries import DISTRACTOR, Entry
from artid.data.images import ImageLoadError, load_image, to_array
from artid.errors import ArtidError
from artid.extraction.decode import Decoded
from artid.extraction.sources import (
    IMAGE_EXTENSIONS,
    ImageList,
    folder_source,
    list_source,
    parse_list_lines,
)


def is_url(text: str) -> bool:
    """True for ``protocol://...`` (fsspec URLs); local paths, relative or absolute, are not."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum()


@dataclass(frozen=True)
class UrlImageList(ImageList):
    """An image list whose relative entry paths are relative to a URL (``root_url``)."""

    root_url: str = ""

    def path_of(self, entry: Entry) -> Path:
        raise ArtidError(
            f"{self.root_url}: images at a URL are read by the workers of a Ray cluster "
            "only (add --ray)"
        )


def location_of(images: ImageList, entry: Entry) -> str:
    """Where the image of ``entry`` is read: a URL, or a local path."""
    if is_url(entry.path):
        return entry.path
    if isinstance(images, UrlImageList):
        return posixpath.join(images.root_url, entry.path)
    return str(images.path_of(entry))


def _filesystem(url: str, what: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it."""
    import fsspec  # type: ignore[import-untyped]

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ArtidError(f"{what} {url}: cannot be opened ({exc})") from None


def url_list_source(url: str, name: str | None = None) -> UrlImageList:
    """:func:`artid.extraction.sources.list_source` for a list file at a URL; relative paths
    in it are relative to the URL's folder.

    Raises:
        ArtidError: the list cannot be read, has a malformed line or names no images.
    """
    fs, path = _filesystem(url, "list file")
    try:
        text = fs.cat_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtidError(f"list file {url} cannot be read ({exc})") from None
    entries = parse_list_lines(text.splitlines(), url)
    stem = posixpath.splitext(posixpath.basename(url.rstrip("/")))[0]
    root = url.rstrip("/").rsplit("/", 1)[0]
    return UrlImageList(name or stem or "images", entries, Path("."), root)


def url_folder_source(url: str, name: str | None = None) -> UrlImageList:
    """:func:`artid.extraction.sources.folder_source` for a folder at a URL (every image file
    under it, recursively, sorted by path, unlabelled).

    Raises:
        ArtidError: the folder cannot be listed or holds no image file.
    """
    fs, root = _filesystem(url, "image folder")
    root = root.rstrip("/")
    try:
        found = fs.find(root)
    except OSError as exc:
        raise ArtidError(f"image folder {url} cannot be listed ({exc})") from None
    rels = sorted(
        (
            posixpath.relpath(p, root)
            for p in found
            if posixpath.splitext(p)[1].lower() in IMAGE_EXTENSIONS
        ),
        key=lambda rel: rel.split("/"),  # the order of folder_source (paths by their parts)
    )
    if not rels:
        raise ArtidError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under {url}")
    entries = [Entry(path=r, label=DISTRACTOR, kind="other") for r in rels]
    base = url.rstrip("/")
    return UrlImageList(name or posixpath.basename(base) or "images", entries, Path("."), base)


def any_list_source(location: str, name: str | None, on_ray: bool) -> ImageList:
    """The image list of ``--list``: a local file, or (on a Ray cluster) a URL."""
    if not is_url(location):
        return list_source(location, name)
    _need_ray(location, "--list", on_ray)
    return url_list_source(location, name)


def any_folder_source(location: str, name: str | None, on_ray: bool) -> ImageList:
    """The image list of ``--folder``: a local folder, or (on a Ray cluster) a URL."""
    if not is_url(location):
        return folder_source(location, name)
    _need_ray(location, "--folder", on_ray)
    return url_folder_source(location, name)


def _need_ray(location: str, option: str, on_ray: bool) -> None:
    if not on_ray:
        raise ArtidError(
            f"{option} {location}: images at a URL are read by the workers of a Ray cluster "
            "only (add --ray)"
        )


def read_image(index: int, location: str, max_size: int | None) -> Decoded:
    """Decode the image at a URL or local path; a failure is a value naming the location."""
    try:
        if is_url(location):
            buffer = io.BytesIO(_fetch(location))
            buffer.name = location
            img = load_image(buffer, max_size=max_size)
        else:
            img = load_image(location, max_size=max_size)
    except ImageLoadError as exc:
        return Decoded(index, None, str(exc))
    return Decoded(index, np.ascontiguousarray(to_array(img)), None)


def _fetch(url: str) -> bytes:
    import fsspec

    try:
        with fsspec.open(url, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageLoadError(f"{url}: file not found") from None
    except (OSError, ValueError, ImportError) as exc:
        raise ImageLoadError(f"{url}: cannot be read ({exc})") from None
