"""Local features: one image -> SIFT keypoints, a per-image cache, and a packed store of many
images.

The one home of local features in artid. Re-ranking by spatial verification
(:mod:`artid.retrieval.verification`) reads them for database images and query photos alike, and the
bag-of-words baseline (:mod:`artid.attributes.bow`) uses their descriptors:

- :func:`local_features` the strongest ``max_keypoints`` SIFT keypoints of a file, Pillow image or
  uint8 array read at ``max_size`` on the longer side (files through
  :func:`artid.data.images.load_image`);
- :class:`FeatureCache` one compressed ``.npz`` per image file, keyed by the file's content and
  checked on read, so that long runs resume and a stale or broken entry is never used;
- :class:`LocalFeatureSet` the features of N rows packed into three memory-mappable arrays (what a
  saved pipeline keeps of its database).

No torch here: retrieval imports this module.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from artid.data.images import load_image
from artid.errors import ArtidError
from artid.extraction.local_cache import file_digest, open_folder, read_entry, write_entry
from artid.files import save_npy

log = logging.getLogger(__name__)

#: What an image may be given as: a file, a Pillow image, or (H, W[, 3 or 4]) uint8 pixels.
ImageLike = str | Path | Image.Image | np.ndarray

#: SIFT descriptor length.
SIFT_DIM = 128
#: Longer side images are read at, and keypoints kept per image (the strongest).
DEFAULT_SIZE = 400
DEFAULT_KEYPOINTS = 500


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoint positions (n, 2) float32 and SIFT descriptors (n, 128) uint8 of one image."""

    xy: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    @classmethod
    def empty(cls) -> LocalFeatures:
        """No keypoint (a blank or unreadable image)."""
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, SIFT_DIM), np.uint8))

    def strongest(self, n: int) -> LocalFeatures:
        """The first ``n`` keypoints: the strongest, as :func:`local_features` orders them."""
        return self if len(self) <= n else LocalFeatures(self.xy[:n], self.desc[:n])


def to_gray(image: ImageLike, max_size: int | None = DEFAULT_SIZE) -> np.ndarray:
    """(H, W) uint8 grey pixels of an image file, Pillow image or uint8 array (grey, RGB or RGBA).

    Raises:
        ArtidError: an unreadable file (:class:`artid.data.images.ImageLoadError`) or an array that
            is not (H, W), (H, W, 3) or (H, W, 4) uint8.
    """
    if isinstance(image, (str, Path)):
        image = load_image(image, max_size=max_size)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    arr = np.asarray(image)
    if (
        arr.dtype != np.uint8
        or arr.ndim not in (2, 3)
        or (arr.ndim == 3 and arr.shape[2] not in (3, 4))
    ):
        raise ArtidError(
            f"an image array must be (H, W) or (H, W, 3) uint8; got {arr.shape} {arr.dtype}"
        )
    if arr.ndim == 2:
        return arr
    code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
    return cv2.cvtColor(np.ascontiguousarray(arr), code)


def local_features(
    image: ImageLike, max_keypoints: int = DEFAULT_KEYPOINTS, max_size: int | None = DEFAULT_SIZE
) -> LocalFeatures:
    """SIFT keypoints and descriptors of one image (the strongest ``max_keypoints``; 0: no limit),
    strongest first (so that the first n are the strongest n: a keypoint budget).

    OpenCV's SIFT descriptors are whole numbers in [0, 255] stored as float32, so the uint8 copy
    kept here is exact.
    """
    gray = to_gray(image, max_size)
    sift = cv2.SIFT.create(nfeatures=max(0, int(max_keypoints)))
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return LocalFeatures.empty()
    order = np.argsort([-kp.response for kp in kps], kind="stable")
    if max_keypoints > 0:  # SIFT keeps a few more where responses tie or a point has 2 angles
        order = order[: int(max_keypoints)]
    xy = np.array([kp.pt for kp in kps], dtype=np.float32)[order]
    return LocalFeatures(xy, np.clip(np.rint(desc[order]), 0, 255).astype(np.uint8))


class FeatureCache:
    """Local features of image files, one compressed ``.npz`` per image under ``folder``
    (resumable).

    Each entry is keyed by the image file's content (SHA-1) and the SIFT settings and checked on
    every read (:mod:`artid.extraction.local_cache`): an entry that is unreadable, malformed,
    of other settings or of another image under the same path is computed again and rewritten
    atomically, never trusted. An image that cannot be read is not cached: :meth:`get` gives it
    no keypoints and records it in :attr:`unreadable`, so that a later run tries it again.

    Args:
        folder: cache folder (created).
        root: the dataset root the relative image paths are resolved against.
        max_keypoints, max_size: the SIFT settings (part of each entry's key).

    Attributes:
        unreadable: relative path -> why, of the images that could not be read.
        recomputed: entries found stale or corrupt and written again.

    Raises:
        ArtidError: ``folder`` is a file or cannot be created.
    """

    def __init__(
        self,
        folder: str | Path,
        root: str | Path,
        max_keypoints: int = DEFAULT_KEYPOINTS,
        max_size: int = DEFAULT_SIZE,
    ) -> None:
        self.folder, self.root = open_folder(Path(folder)), Path(root)
        self.max_keypoints, self.max_size = max_keypoints, max_size
        self.unreadable: dict[str, str] = {}
        self.recomputed = 0

    def _file(self, rel: str) -> Path:
        tag = f"{rel}|{self.max_keypoints}|{self.max_size}"
        return self.folder / (hashlib.sha1(tag.encode()).hexdigest()[:20] + ".npz")

    def get(self, rel: str) -> LocalFeatures:
        """The features of ``root / rel``: read from a valid entry of this very file, or
        computed and written (atomically); no keypoints for an image that cannot be read."""
        path, image = self._file(rel), self.root / rel
        settings = (int(self.max_keypoints), int(self.max_size))
        try:
            source = file_digest(image)
        except OSError as exc:
            return self._unreadable(rel, f"{image}: {exc.strerror or exc}")
        entry = read_entry(path, source, settings, SIFT_DIM)
        if entry is not None:
            self.unreadable.pop(rel, None)
            return LocalFeatures(*entry)
        try:
            feats = local_features(image, self.max_keypoints, self.max_size)
        except ArtidError as exc:
            return self._unreadable(rel, str(exc))
        self.recomputed += path.exists()
        write_entry(path, feats.xy, feats.desc, source, settings)
        self.unreadable.pop(rel, None)
        return feats

    def _unreadable(self, rel: str, why: str) -> LocalFeatures:
        if rel not in self.unreadable:
            log.debug("local features: %s", why)
        self.unreadable[rel] = why
        return LocalFeatures.empty()

    def fill(self, rels: Sequence[str], desc: str = "local features") -> list[LocalFeatures]:
        """The features of every image, computing the missing ones with a progress bar
        (resumable)."""
        return [self.get(rel) for rel in tqdm(rels, desc=desc, unit="image", leave=False)]

    def ensure(self, rels: Sequence[str], desc: str = "local features") -> list[str]:
        """Compute and cache every image's features without keeping them in memory.

        Returns:
            The paths among ``rels`` that could not be read (they have no features).
        """
        for rel in tqdm(rels, desc=desc, unit="image", leave=False):
            self.get(rel)
        return [rel for rel in rels if rel in self.unreadable]


#: File names of a packed set inside a folder.
PACKED_FILES = {"offsets": "local_offsets.npy", "xy": "local_xy.npy", "desc": "local_desc.npy"}


class LocalFeatureSet:
    """Local features of N rows packed into three arrays; ``fs[r]`` is row r's
    :class:`LocalFeatures`.

    About 136 bytes per keypoint (68 kB for an image with 500 keypoints); :meth:`load` maps the
    files, so only the rows a query is verified against are read.

    Args:
        offsets: (N + 1,) int64, starting at 0, non-decreasing, ending at T.
        xy: (T, 2) float32 keypoint positions.
        desc: (T, 128) uint8 descriptors.
    """

    def __init__(self, offsets: np.ndarray, xy: np.ndarray, desc: np.ndarray) -> None:
        self.offsets, self.xy, self.desc = offsets, xy, desc
        self.check()

    def check(self) -> None:
        """Refuse arrays that do not belong together."""
        o = self.offsets
        total = int(self.xy.shape[0]) if self.xy.ndim == 2 else -1
        if (
            o.ndim != 1
            or len(o) < 1
            or int(o[0]) != 0
            or int(o[-1]) != total
            or np.any(np.diff(o) < 0)
        ):
            raise ArtidError(f"local features: offsets do not index the {total} keypoints")
        if (
            self.xy.shape[1:] != (2,)
            or self.desc.shape != (total, SIFT_DIM)
            or self.desc.dtype != np.uint8
        ):
            raise ArtidError(
                f"local features: keypoints {self.xy.shape} and descriptors "
                f"{self.desc.shape} {self.desc.dtype} do not match "
                "((T, 2) and (T, 128) uint8)"
            )

    def __len__(self) -> int:
        return int(len(self.offsets) - 1)

    @property
    def keypoints(self) -> int:
        """T, the keypoints of all rows."""
        return int(self.offsets[-1])

    def __getitem__(self, row: int) -> LocalFeatures:
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        return LocalFeatures(np.asarray(self.xy[a:b], dtype=np.float32), np.asarray(self.desc[a:b]))

    @classmethod
    def pack(cls, features: Sequence[LocalFeatures]) -> LocalFeatureSet:
        """One packed set of the features of each row, in order."""
        sizes = np.array([len(f) for f in features], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if not len(features):
            return cls(offsets, np.zeros((0, 2), np.float32), np.zeros((0, SIFT_DIM), np.uint8))
        xy = np.concatenate([f.xy.astype(np.float32) for f in features])
        desc = np.concatenate([f.desc.astype(np.uint8) for f in features])
        return cls(offsets, xy.reshape(-1, 2), desc.reshape(-1, SIFT_DIM))

    def rows(self, rows: Sequence[int] | np.ndarray) -> LocalFeatureSet:
        """The set of these rows only, in this order (what removing artworks keeps)."""
        return LocalFeatureSet.pack([self[int(r)] for r in rows])

    def extended(self, features: Sequence[LocalFeatures]) -> LocalFeatureSet:
        """This set with rows appended (what adding artworks makes)."""
        more = LocalFeatureSet.pack(features)
        return LocalFeatureSet(
            np.concatenate([self.offsets, more.offsets[1:] + self.keypoints]),
            np.concatenate([np.asarray(self.xy, np.float32), more.xy]),
            np.concatenate([np.asarray(self.desc), more.desc]),
        )

    def save(self, folder: Path) -> None:
        """Write the three arrays into ``folder``."""
        arrays: dict[str, np.ndarray] = {
            "offsets": np.asarray(self.offsets, dtype=np.int64),
            "xy": np.asarray(self.xy, dtype=np.float32),
            "desc": np.asarray(self.desc, dtype=np.uint8),
        }
        for key, name in PACKED_FILES.items():
            save_npy(Path(folder) / name, arrays[key])

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> LocalFeatureSet:
        """Read the arrays of a folder (memory-mapped by default).

        Raises:
            ArtidError: a file missing or unreadable, or arrays that do not belong together.
        """
        arrays = {}
        for k, name in PACKED_FILES.items():
            path = Path(folder) / name
            try:
                arrays[k] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ArtidError(
                    f"{path}: the local features of the re-ranking stage cannot be read ({why})"
                ) from None
        try:
            return cls(arrays["offsets"], arrays["xy"], arrays["desc"])
        except ArtidError as exc:
            raise ArtidError(f"{folder}: {exc}") from None
