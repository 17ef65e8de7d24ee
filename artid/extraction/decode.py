"""Decoding images in parallel worker processes (a torch DataLoader), failures as values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from torch.utils.data import DataLoader, Dataset

from artid.data.images import ImageLoadError, load_image, to_array


@dataclass
class Decoded:
    """One decoded image, or the reason it could not be.

    Attributes:
        index: position of the image in its list.
        pixels: (H, W, 3) uint8, or None on failure.
        error: the failure message (names the file), or None.
    """

    index: int
    pixels: np.ndarray | None
    error: str | None


class DecodeDataset(Dataset):
    """Map-style dataset: item i -> :class:`Decoded` of ``files[i]`` (never raises for a bad image)."""

    def __init__(self, indices: list[int], files: list[Path], max_size: int | None) -> None:
        self.indices = indices
        self.files = files
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Decoded:
        index = self.indices[i]
        try:
            img = load_image(self.files[index], max_size=self.max_size)
        except ImageLoadError as exc:
            return Decoded(index, None, str(exc))
        return Decoded(index, np.ascontiguousarray(to_array(img)), None)


def _identity(item: Decoded) -> Decoded:
    return item


def decode_stream(indices: list[int], files: list[Path], max_size: int | None, workers: int,
                  prefetch: int = 4) -> Iterator[Decoded]:
    """Decoded images of ``files[indices]``, in the order of ``indices``.

    Args:
        indices: which files to decode, in this order.
        files: all files of the list.
        max_size: longer-side bound (see :func:`artid.data.images.load_image`).
        workers: decoding processes; 0 decodes in this process.
        prefetch: images each worker decodes ahead.
    """
    dataset = DecodeDataset(indices, files, max_size)
    if workers <= 0:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                        collate_fn=_identity, prefetch_factor=prefetch, persistent_workers=False)
    yield from loader
