"""The randomness of an epoch, and its batches as one process of a data-parallel run draws them.

:func:`seed_epoch` seeds the generators from ``(seed, epoch)`` at the start of every epoch (and
again once the epoch is prepared), so an epoch's draws depend on nothing that ran before it.

A method's ``batches`` is a ``DataLoader`` whose batch sampler draws the epoch's GLOBAL batches
from the epoch's generator (shuffled pairs, shuffled images, class-balanced draws).
:func:`epoch_loader` draws those batches once and gives process ``rank`` of ``world`` its
contiguous share of every one of them (rank 0 the first rows, and so on), so that the shares
gathered in rank order are the global batch. Every process draws the same global batches (the
generator is seeded from ``(seed, epoch)`` alike on every rank).

The augmentation of an item is seeded by its position in the epoch (:class:`SeededItems`), not
by what was loaded before it in the same process: item ``p`` of the epoch gets the same random
crop, jitter and gallery whichever process, loader worker or share loads it. One process
(``world = 1``) and N processes thus train on the same augmented images, and the number of
``--workers`` changes nothing either.

A global batch of fewer items than processes cannot be shared (a process would forward
nothing): with ``world > 1`` such a batch (only ever the last of an epoch) is left out, with a
warning.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from artid.errors import ArtidError

log = logging.getLogger(__name__)


def seed_epoch(seed: int, epoch: int, phase: int = 0
               ) -> tuple[np.random.Generator, torch.Generator]:
    """Seed Python's, NumPy's and torch's global generators from ``(seed, epoch, phase)``;
    return a NumPy and a torch generator of the epoch (for the method's draws and samplers)."""
    s = (seed * 1_000_003 + epoch * 7919 + phase) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return np.random.default_rng([seed, epoch, phase]), torch.Generator().manual_seed(s)


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that process ``rank`` of ``world`` takes (contiguous, sizes
    differing by at most one, rank 0 first)."""
    return n * rank // world, n * (rank + 1) // world


def item_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of the augmentation of item ``position`` of an epoch."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class SeededItems(Dataset):
    """``dataset[i]`` for keys ``(position, i)``, its random draws seeded by the position.

    The torch CPU generator, NumPy's and Python's global generators are seeded from
    :func:`item_seed` around the item and restored after it, so loading an item changes no
    random state of the process.
    """

    def __init__(self, dataset: Dataset, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __getitem__(self, key: tuple[int, int]) -> Any:
        position, i = key
        s = item_seed(self.seed, self.epoch, position)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):  # CPU generator only: CUDA's is left alone
            torch.default_generator.manual_seed(s)
            random.seed(s)
            np.random.seed(s)
            try:
                return self.dataset[i]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def epoch_loader(loader: Iterable[Any], seed: int, epoch: int, rank: int = 0,
                 world: int = 1) -> Iterable[Any]:
    """The batches of ``loader`` as process ``rank`` of ``world`` loads them (module docstring).

    Args:
        loader: a method's epoch loader (a dataset and a batch sampler of global batches).
        seed: the run's seed.
        epoch: the epoch (1-based).
        rank: this process.
        world: processes of the run (1: the whole of every batch).

    Returns:
        A loader with one batch per shared global batch (its ``len``), the same dataset,
        collate function and worker settings; batches that are no ``DataLoader`` are kept
        as they are in one process, refused in several.
    """
    if not isinstance(loader, DataLoader):
        if world == 1:
            return loader
        raise ArtidError("data-parallel training needs a method whose batches are a DataLoader")
    if loader.batch_sampler is None:
        raise ArtidError("a training method's loader must batch (give it a batch size)")
    batches = [list(b) for b in loader.batch_sampler]
    kept = [b for b in batches if len(b) >= world]
    if len(kept) < len(batches):
        log.warning("epoch %d: %d batch(es) of fewer images than the %d processes left out",
                    epoch, len(batches) - len(kept), world)
    keys, position = [], 0
    for b in batches:
        if len(b) >= world:
            lo, hi = share(len(b), rank, world)
            keys.append([(position + j, int(b[j])) for j in range(lo, hi)])
        position += len(b)
    return DataLoader(SeededItems(loader.dataset, seed, epoch), batch_sampler=keys,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn)
