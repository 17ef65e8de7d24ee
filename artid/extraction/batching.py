"""Batching images of different sizes without changing their descriptors: group by exact size.

Padding would change a CNN's output near the padded border (after the first layer the padded
area is no longer zero), and TensorFlow-style "same" padding depends on the input size, so
only images of identical height and width share a batch. Eval-mode networks treat the images
of a batch independently, so a batch gives each image the descriptor it would get alone.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

#: An image: (H, W, 3) uint8 array, or (3, H, W) float tensor in [0, 1].
Pixels = np.ndarray | torch.Tensor


def image_size(pixels: Pixels) -> tuple[int, int]:
    """(height, width) of an (H, W, 3) array or a (3, H, W) tensor."""
    h, w = (
        (pixels.shape[0], pixels.shape[1]) if isinstance(pixels, np.ndarray) else pixels.shape[-2:]
    )
    return int(h), int(w)


class SizeBuckets:
    """Collects (index, pixels) pairs into per-size groups and releases full batches.

    Deterministic: the batches released depend only on the order of :meth:`add` calls.

    Args:
        batch_size: images per batch.
        max_pending: when more images than this wait in partly filled groups, the largest
            group is released early (bounds memory when sizes are all different).
    """

    def __init__(self, batch_size: int, max_pending: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.max_pending = max(
            batch_size, max_pending if max_pending is not None else 4 * batch_size
        )
        self._groups: OrderedDict[tuple[int, int], list[tuple[int, Pixels]]] = OrderedDict()
        self._pending = 0

    def __len__(self) -> int:
        return self._pending

    def add(self, index: int, pixels: Pixels) -> list[list[tuple[int, Pixels]]]:
        """Add an image (:data:`Pixels`); returns the batches (lists of (index, pixels)) now
        ready."""
        key = image_size(pixels)
        self._groups.setdefault(key, []).append((index, pixels))
        self._pending += 1
        ready = []
        if len(self._groups[key]) >= self.batch_size:
            ready.append(self._pop(key))
        if self._pending > self.max_pending:
            largest = max(self._groups, key=lambda k: len(self._groups[k]))  # first of the largest
            ready.append(self._pop(largest))
        return ready

    def flush(self) -> list[list[tuple[int, Pixels]]]:
        """Release every waiting group (in order of first arrival)."""
        return [self._pop(key) for key in list(self._groups)]

    def _pop(self, key: tuple[int, int]) -> list[tuple[int, Pixels]]:
        group = self._groups.pop(key)
        self._pending -= len(group)
        return group
