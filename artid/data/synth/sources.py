"""Real images as exhibits: find them, read them, merge near-duplicates, cut crops.

:func:`scan_sources` reads every image under the given folders (any format Pillow reads), with a
short error naming the file that cannot be read or the folder that holds no image. Each image
gets a small perceptual hash (a 64-bit difference hash of its grey levels, 9x8 pixels) and
images whose hashes differ in at most :data:`DUPLICATE_BITS` bits are merged into one source
(the same wallpaper at several resolutions, a re-saved copy), keeping the largest; so are images
whose central squares' hashes differ in at most :data:`CROP_DUPLICATE_BITS` bits (one picture
cut to other proportions).
:func:`cut_exhibits` splits the sources into exhibits and held-out images (the other-art
distractors) and optionally cuts several exhibits from one large image (tiles of one picture:
exhibits that look alike, as works of one artist or series do).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from artid.data.images import DEFAULT_MAX_PIXELS
from artid.data.synth.seeding import rng_for
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: File name endings read as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: Two images whose difference hashes differ in at most this many of 64 bits are one source
#: (measured on the Debian wallpapers: one picture at several resolutions differs in 0-3 bits,
#: distinct pictures in 12 or more; see docs/real_images.md).
DUPLICATE_BITS = 6
#: The same for the hashes of the images' central squares (stricter: flat gradients agree more).
CROP_DUPLICATE_BITS = 3
#: Images with a shorter side below this are left out (icons, thumbnails).
MIN_SIDE = 64
#: Share of transparent pixels above which an image is an object on a transparent background
#: (photographed on a plinth or in a vitrine rather than hung in a frame).
TRANSPARENT_SHARE = 0.05


@dataclass(frozen=True)
class Source:
    """One real image (after merging near-duplicates).

    Attributes:
        path: the file read.
        size: (width, height) of the upright image in pixels.
        transparent: an object on a transparent background.
        digest: SHA-256 of the file's bytes.
        phash: 64-bit difference hash.
        centre: the difference hash of the central square.
        duplicates: other files merged into this one.
    """

    path: Path
    size: tuple[int, int]
    transparent: bool
    digest: str
    phash: int
    centre: int
    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exhibit:
    """An exhibit (or held-out image) cut from a source: ``box`` (left, top, right, bottom) in
    the source's upright pixels; ``tile`` numbers the crops of one source."""

    source: Source
    box: tuple[int, int, int, int]
    tile: int


def open_upright(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An image file as RGBA (transparency kept) or RGB, upright; ArtidError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ArtidError(f"{path}: {w}x{h} pixels exceeds the limit of {max_pixels}")
                img.load()
                upright = ImageOps.exif_transpose(img)
                alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
                return upright.convert("RGBA" if alpha else "RGB")
    except ArtidError:
        raise
    except UnidentifiedImageError:
        raise ArtidError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ArtidError(f"{path}: unreadable image ({exc})") from None


def difference_hash(img: Image.Image) -> int:
    """64-bit difference hash: signs of horizontal grey-level steps on a 9x8 thumbnail."""
    grey = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BOX), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def find_images(dirs: Sequence[str | Path]) -> list[Path]:
    """Every image file under ``dirs`` (recursively), sorted; ArtidError for a missing folder
    or one without images."""
    found: list[Path] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise ArtidError(f"--source-images {d}: not a folder")
        files = sorted(
            p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise ArtidError(
                f"--source-images {d}: holds no image file ({', '.join(IMAGE_SUFFIXES)})"
            )
        found += files
    return found


def _read(path: Path) -> Source | None:
    img = open_upright(path)
    if min(img.size) < MIN_SIDE:
        return None
    transparent = False
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"))
        transparent = float((alpha < 128).mean()) > TRANSPARENT_SHARE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rgb = img.convert("RGB")
    w, h = rgb.size
    m = min(w, h)
    square = rgb.crop(((w - m) // 2, (h - m) // 2, (w + m) // 2, (h + m) // 2))
    return Source(
        path, img.size, transparent, digest, difference_hash(rgb), difference_hash(square)
    )


def _bits(hashes: np.ndarray, i: int) -> np.ndarray:
    x = np.bitwise_xor(hashes[i + 1 :], hashes[i])
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def merge_duplicates(sources: list[Source]) -> list[Source]:
    """One source per group of near-duplicates (see the module's docstring; groups are
    connected components), the one with most pixels kept; order of each group's first member."""
    n = len(sources)
    hashes = np.asarray([s.phash for s in sources], np.uint64)
    centres = np.asarray([s.centre for s in sources], np.uint64)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        near = (_bits(hashes, i) <= DUPLICATE_BITS) | (_bits(centres, i) <= CROP_DUPLICATE_BITS)
        for j in np.flatnonzero(near) + i + 1:
            parent[find(int(j))] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in sorted(groups.values(), key=lambda m: m[0]):
        best = max(members, key=lambda i: (sources[i].size[0] * sources[i].size[1], -i))
        others = tuple(str(sources[i].path) for i in members if i != best)
        s = sources[best]
        out.append(Source(s.path, s.size, s.transparent, s.digest, s.phash, s.centre, others))
    return out


def scan_sources(dirs: Sequence[str | Path], progress: bool = True) -> list[Source]:
    """Read every image under ``dirs`` and merge near-duplicates (see the module's docstring)."""
    files = find_images(dirs)
    read = [_read(p) for p in tqdm(files, desc="source images", unit="img", disable=not progress)]
    kept = [s for s in read if s is not None]
    if len(kept) < len(read):
        log.warning("left out %d images smaller than %d px", len(read) - len(kept), MIN_SIDE)
    if not kept:
        raise ArtidError(
            f"--source-images: no image of at least {MIN_SIDE} px in {', '.join(map(str, dirs))}"
        )
    # ordered by content, so that names and folders do not change the benchmark
    return sorted(merge_duplicates(kept), key=lambda s: s.digest)


def tiles(size: tuple[int, int], crops: int, min_side: int) -> list[tuple[int, int, int, int]]:
    """Up to ``crops`` non-overlapping boxes of an image of ``size`` (a grid of equal tiles,
    columns along the longer side), each at least ``min_side`` on its shorter side; the whole
    image when it is too small to cut or ``crops`` is 1."""
    w, h = size
    best = [(0, 0, w, h)]
    for cols in range(1, crops + 1):
        for rows in range(1, crops // cols + 1):
            tw, th = w // cols, h // rows
            if cols * rows <= len(best) or min(tw, th) < min_side or max(tw, th) > 2 * min(tw, th):
                continue
            best = [
                (c * tw, r * th, (c + 1) * tw, (r + 1) * th)
                for r in range(rows)
                for c in range(cols)
            ]
    return best


def cut_exhibits(
    sources: list[Source], seed: int, holdout_share: float, crops: int, min_side: int
) -> tuple[list[Exhibit], list[Exhibit]]:
    """(exhibits, held-out images): sources shuffled by ``seed``, ``holdout_share`` of them held
    out whole (other-art distractors: never a crop of an exhibit's picture), the rest cut into
    up to ``crops`` exhibits each (:func:`tiles`)."""
    order = rng_for(seed, "sources").permutation(len(sources))
    shuffled = [sources[i] for i in order]
    n_out = int(round(holdout_share * len(shuffled)))
    if len(shuffled) - n_out < 2:
        raise ArtidError(
            f"--source-images: {len(sources)} distinct images leave fewer than 2 exhibits after "
            f"holding out {n_out} as distractors; add images or lower --holdout-share"
        )
    held = [Exhibit(s, (0, 0, *s.size), 0) for s in shuffled[:n_out]]
    exhibits = [
        Exhibit(s, box, t)
        for s in shuffled[n_out:]
        for t, box in enumerate(tiles(s.size, 1 if s.transparent else crops, min_side))
    ]
    return exhibits, held


def fingerprint(sources: list[Source]) -> str:
    """SHA-256 over the sources' file digests and sizes (what the benchmark is made of)."""
    h = hashlib.sha256()
    for s in sources:
        h.update(f"{s.digest}:{s.size[0]}x{s.size[1]}:{s.transparent};".encode())
    return h.hexdigest()
