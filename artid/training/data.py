"""Datasets and samplers for training: images of the database, pairs, two views, class-balanced
sampling.

An :class:`ImageSource` turns an index into a PIL image (from disk through
:func:`artid.data.images.load_image`, or from memory in tests); the datasets below
combine a source with a transform and return tensors that a ``DataLoader`` batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.training.positives import SYNTHETIC

Transform = Callable[[Any], torch.Tensor]


class ImageSource(Protocol):
    """Indexable images: ``len(source)`` and ``source.load(i) -> PIL image or (3, H, W) tensor``."""

    def __len__(self) -> int: ...

    def load(self, i: int) -> Any: ...


class EntryImages:
    """Images of entries on disk, loaded safely with their longer side at most ``max_size``.

    Args:
        image_root: folder the entries' paths are relative to.
        entries: the images, in row order.
        max_size: longer side after loading (500 is the dataset's own size).
    """

    def __init__(
        self, image_root: str | Path, entries: Sequence[Entry], max_size: int = 500
    ) -> None:
        self.image_root = Path(image_root)
        self.entries = list(entries)
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, i: int) -> Image.Image:
        from artid.data.images import load_image  # the one safe image loader of the project

        p = Path(self.entries[i].path)
        return load_image(p if p.is_absolute() else self.image_root / p, max_size=self.max_size)


class MemoryImages:
    """Images already in memory (PIL images or (3, H, W) float tensors in [0, 1])."""

    def __init__(self, images: Sequence[Any]) -> None:
        self.images = list(images)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> Any:
        return self.images[i]


class LabelIndex:
    """Maps dataset class ids (e.g. Met ids) to contiguous indices 0..C-1 (sorted ids)."""

    def __init__(self, labels: Sequence[int]) -> None:
        self.ids = np.unique(np.asarray(labels, dtype=np.int64))
        self._pos = {int(c): i for i, c in enumerate(self.ids)}

    def __len__(self) -> int:
        return int(self.ids.size)

    def encode(self, labels: Sequence[int]) -> np.ndarray:
        """(N,) class ids -> (N,) int64 indices; -1 (distractor or unknown class) stays -1."""
        return np.fromiter(
            (self._pos.get(int(c), -1) for c in labels), dtype=np.int64, count=len(labels)
        )


class ImageDataset(Dataset):
    """(transform(image i), label i) for every image of a source.

    Args:
        source: the images.
        labels: (N,) int64 class indices (-1 allowed for evaluation sets).
        transform: image -> (3, H, W) float tensor.
    """

    def __init__(
        self, source: ImageSource, labels: Sequence[int] | np.ndarray, transform: Transform
    ) -> None:
        if len(labels) != len(source):
            raise ArtidError(f"{len(source)} images but {len(labels)} labels")
        self.source, self.labels, self.transform = (
            source,
            np.asarray(labels, dtype=np.int64),
            transform,
        )

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.source.load(i)), int(self.labels[i])


class TwoViewDataset(Dataset):
    """Two independent augmentations of image i (SimSiam): (transform(i), other_transform(i))."""

    def __init__(
        self, source: ImageSource, transform: Transform, other_transform: Transform | None = None
    ) -> None:
        self.source, self.transform = source, transform
        self.other_transform = other_transform or transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.source.load(i)
        return self.transform(img), self.other_transform(img)


class PairDataset(Dataset):
    """Pairs (augmented a, augmented b, same-class flag).

    Args:
        source: the database images.
        pairs: (M, 3) int64 rows ``(a, b, y)``: y = 1 for a positive, 0 for a negative;
            b = :data:`~artid.training.positives.SYNTHETIC` means a second augmentation of a.
        transform: the training augmentation of the anchor a.
        other_transform: that of b (default: ``transform``), e.g. in-situ synthetic positives.
    """

    def __init__(
        self,
        source: ImageSource,
        pairs: np.ndarray,
        transform: Transform,
        other_transform: Transform | None = None,
    ) -> None:
        self.source, self.pairs, self.transform = (
            source,
            np.asarray(pairs, dtype=np.int64),
            transform,
        )
        self.other_transform = other_transform or transform

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        a, b, y = (int(v) for v in self.pairs[i])
        img_a = self.source.load(a)
        img_b = img_a if b == SYNTHETIC else self.source.load(b)
        return self.transform(img_a), self.other_transform(img_b), y


class ClassBalancedSampler(Sampler[int]):
    """Class-balanced sampling (appendix B.3): pick a class uniformly, then one of its images
    uniformly.

    Args:
        labels: (N,) class indices of the images.
        num_samples: draws per epoch (default N).
        generator: torch generator for reproducible draws.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        order = np.argsort(labels, kind="stable")
        _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        self._order = torch.from_numpy(order)
        self._starts = torch.from_numpy(starts)
        self._counts = torch.from_numpy(counts)
        self.num_samples = int(num_samples if num_samples is not None else labels.size)
        self.generator = generator

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        n = self.num_samples
        cls = torch.randint(len(self._counts), (n,), generator=self.generator)
        within = (torch.rand(n, generator=self.generator) * self._counts[cls]).long()
        yield from self._order[self._starts[cls] + within].tolist()


def collate_list(batch: list[Any]) -> list[Any]:
    """Keep a batch as a list (images of different sizes; grouped by shape by the consumer)."""
    return batch
