"""Deterministic random streams: every image draws from its own generator.

A generator is keyed by the benchmark seed and a path of names and numbers
(e.g. ``("studio", class_id, view)``), so an image's pixels depend only on those
keys, never on the order in which a pool of workers happens to render it.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if part < 0:
        raise ValueError(f"seed keys must be non-negative, got {part}")
    return int(part)


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys``.

    Args:
        seed: the benchmark seed (non-negative).
        keys: names (hashed with CRC-32) and non-negative integers.

    Returns:
        A fresh ``numpy.random.Generator`` (PCG64).
    """
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(k) for k in keys)]))


def sub_seed(rng: np.random.Generator) -> int:
    """A 63-bit integer drawn from ``rng``, to key a child stream."""
    return int(rng.integers(0, 2**63 - 1))
