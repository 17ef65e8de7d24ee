"""Decoding images in parallel worker processes (a torch DataLoader), failures as values.

The workers leave with their parent: when it dies (even by ``kill -9``) they exit too, instead of
staying behind reparented, each holding its prefetched images (torch's own check ends their loop,
but a worker whose queue is full then waits forever to flush it).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

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
    """Map-style dataset: item i -> :class:`Decoded` of ``files[i]`` (never raises for a bad
    image)."""

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


#: Linux prctl option: the signal this process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int, worker_id: int = 0, poll_s: float = 0.5) -> None:
    """Make this (worker) process exit when ``parent_pid`` is no longer its parent.

    A DataLoader ``worker_init_fn``: on Linux the kernel sends SIGKILL on the parent's death
    (``PR_SET_PDEATHSIG``); everywhere, a daemon thread also checks ``os.getppid()`` every
    ``poll_s`` seconds and ends the process (this covers a parent that died before the call).

    Args:
        parent_pid: the process that started the workers.
        worker_id: passed by the DataLoader (unused).
        poll_s: seconds between two checks of the parent.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no usable libc: the thread below still does the job

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def decode_stream(
    indices: list[int], files: list[Path], max_size: int | None, workers: int, prefetch: int = 4
) -> Generator[Decoded, None, None]:
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
    loader = DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_identity,  # type: ignore[arg-type]  # batch_size=None: one item, no list
        prefetch_factor=prefetch,
        persistent_workers=False,
        worker_init_fn=functools.partial(exit_with_parent, os.getpid()),
    )
    yield from loader
