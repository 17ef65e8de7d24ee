"""The local features of a bundle's database images, packed into three memory-mappable arrays.

A bundle built with ``artid index build --rerank K`` keeps the SIFT keypoints of every database
row (:func:`artid.retrieval.verification.local_features`) in its generation folder::

    local_offsets.npy   (N + 1,) int64: row r's keypoints are [offsets[r], offsets[r + 1])
    local_xy.npy        (T, 2) float32 keypoint positions (pixels of the image read at max_size)
    local_desc.npy      (T, 128) uint8 SIFT descriptors

About 136 bytes per keypoint (68 kB for an image with 500 keypoints), read lazily (``mmap``) by
the recognizer: only the K database images a photo is verified against are touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artid.errors import ArtidError
from artid.retrieval.verification import LocalFeatures

#: File names inside a generation folder.
FILES = {"offsets": "local_offsets.npy", "xy": "local_xy.npy", "desc": "local_desc.npy"}


class LocalFeatureSet:
    """Local features of N database rows, packed; ``fs[r]`` is row r's :class:`LocalFeatures`.

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
        if o.ndim != 1 or len(o) < 1 or int(o[0]) != 0 or int(o[-1]) != total or np.any(np.diff(o) < 0):
            raise ArtidError(f"local features: offsets do not index the {total} keypoints")
        if self.xy.shape[1:] != (2,) or self.desc.shape != (total, 128) or self.desc.dtype != np.uint8:
            raise ArtidError(f"local features: keypoints {self.xy.shape} and descriptors {self.desc.shape} "
                             f"{self.desc.dtype} do not match ((T, 2) and (T, 128) uint8)")

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
        xy = np.concatenate([f.xy.astype(np.float32) for f in features]) if len(features) else \
            np.zeros((0, 2), np.float32)
        desc = np.concatenate([f.desc.astype(np.uint8) for f in features]) if len(features) else \
            np.zeros((0, 128), np.uint8)
        return cls(offsets, xy.reshape(-1, 2), desc.reshape(-1, 128))

    def rows(self, rows: Sequence[int] | np.ndarray) -> LocalFeatureSet:
        """The set of these rows only, in this order (what removing artworks keeps)."""
        return LocalFeatureSet.pack([self[int(r)] for r in rows])

    def extended(self, features: Sequence[LocalFeatures]) -> LocalFeatureSet:
        """This set with rows appended (what adding artworks makes)."""
        more = LocalFeatureSet.pack(features)
        return LocalFeatureSet(np.concatenate([self.offsets, more.offsets[1:] + self.keypoints]),
                               np.concatenate([np.asarray(self.xy, np.float32), more.xy]),
                               np.concatenate([np.asarray(self.desc), more.desc]))

    def save(self, folder: Path) -> None:
        """Write the three arrays into ``folder`` (a generation being written)."""
        np.save(folder / FILES["offsets"], np.asarray(self.offsets, dtype=np.int64))
        np.save(folder / FILES["xy"], np.asarray(self.xy, dtype=np.float32))
        np.save(folder / FILES["desc"], np.asarray(self.desc, dtype=np.uint8))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> LocalFeatureSet:
        """Read the arrays of a generation folder (memory-mapped by default).

        Raises:
            ArtidError: a file missing or unreadable, or arrays that do not belong together.
        """
        try:
            arrays = {k: np.load(folder / name, mmap_mode="r" if mmap else None, allow_pickle=False)
                      for k, name in FILES.items()}
        except (OSError, ValueError) as exc:
            raise ArtidError(f"{folder}: the re-ranking stage's local features cannot be read ({exc})") from None
        return cls(arrays["offsets"], arrays["xy"], arrays["desc"])
