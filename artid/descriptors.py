"""Descriptor files: a float matrix in ``<name>.npy`` beside a manifest ``<name>.json``.

The manifest describes the rows (entries in order: path, label, kind), the model and
settings that produced them, and the images that failed. It is the contract between
extraction (writer) and evaluation, training and the service (readers). No pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artid import __version__
from artid.data.entries import Entry
from artid.data.jsonfile import read_json
from artid.errors import ArtidError
from artid.files import save_npy, write_json

FORMAT = "artid-descriptors/1"


@dataclass
class DescriptorSet:
    """Descriptors of a list of entries.

    Attributes:
        matrix: (N, D) float32, one L2-normalised row per entry.
        entries: the N entries, in row order.
        model: description of the model that produced them (name, weights, ...).
        settings: extraction settings (scales, max_size, dtype, ...).
        failures: images that could not be read: ``{"path": ..., "error": ...}``.
    """

    matrix: np.ndarray
    entries: list[Entry]
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 class labels (-1 for distractors)."""
        return np.fromiter((e.label for e in self.entries), dtype=np.int64, count=len(self.entries))

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries]


def _paths(path: str | Path) -> tuple[Path, Path]:
    """``foo``, ``foo.npy`` or ``foo.json`` -> (``foo.npy``, ``foo.json``)."""
    p = Path(path)
    if p.suffix in (".npy", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npy"), p.with_name(p.name + ".json")


def validate_matrix(matrix: np.ndarray, source: str) -> None:
    """Refuse descriptors that would silently corrupt a search: wrong shape, NaN/inf, zero rows."""
    if matrix.ndim != 2:
        raise ArtidError(f"{source}: expected a 2-D descriptor matrix, found shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ArtidError(f"{source}: holds no descriptors")
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ArtidError(
            f"{source}: {bad.size} descriptor row(s) contain NaN or infinity (first: row {bad[0]})"
        )
    norms = np.linalg.norm(matrix, axis=1)
    zero = norms < 1e-12
    if zero.any():
        bad = np.flatnonzero(zero)
        raise ArtidError(
            f"{source}: {bad.size} descriptor row(s) have zero norm (first: row {bad[0]})"
        )


def save_descriptors(path: str | Path, dset: DescriptorSet) -> Path:
    """Write ``<path>.npy`` and ``<path>.json`` atomically (temporary files, then rename).

    Returns:
        The ``.npy`` path.
    """
    npy, manifest = _paths(path)
    if len(dset.entries) != dset.matrix.shape[0]:
        raise ArtidError(f"{npy}: {dset.matrix.shape[0]} rows but {len(dset.entries)} entries")
    npy.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "artid_version": __version__,
        "count": int(dset.matrix.shape[0]),
        "dim": int(dset.matrix.shape[1]),
        "dtype": "float32",
        "model": dset.model,
        "settings": dset.settings,
        "failures": dset.failures,
        "entries": [e.to_json() for e in dset.entries],
    }
    save_npy(npy, np.ascontiguousarray(dset.matrix, dtype=np.float32))
    write_json(manifest, meta, indent=None)
    return npy


def load_descriptors(path: str | Path, mmap: bool = False, validate: bool = True) -> DescriptorSet:
    """Read a descriptor file pair written by :func:`save_descriptors`.

    Args:
        path: ``<name>``, ``<name>.npy`` or ``<name>.json``.
        mmap: memory-map the matrix instead of reading it (large databases).
        validate: check rows against the manifest and for NaN / zero-norm rows.

    Raises:
        ArtidError: missing files, a manifest that does not match the matrix, bad rows.
    """
    npy, manifest = _paths(path)
    for p in (npy, manifest):
        if not p.is_file():
            raise ArtidError(
                f"descriptor file {p} not found (a descriptor set is a .npy matrix with a .json "
                "manifest)"
            )
    meta = read_json(manifest)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "entries" not in meta:
        raise ArtidError(
            f"{manifest}: not an artid descriptor manifest (expected format {FORMAT!r})"
        )
    try:
        matrix = np.load(npy, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ArtidError(f"{npy}: cannot be read as a NumPy array ({exc})") from None
    try:
        entries = [Entry.from_json(e) for e in meta["entries"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtidError(f"{manifest}: malformed entry ({exc!r})") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(entries):
        raise ArtidError(
            f"{npy} has {matrix.shape[0] if matrix.ndim else 0} rows but its manifest "
            f"{manifest.name} "
            f"lists {len(entries)} entries: the files do not belong together"
        )
    if validate:
        validate_matrix(np.asarray(matrix), str(npy))
    return DescriptorSet(
        matrix=matrix if mmap else np.asarray(matrix, dtype=np.float32),
        entries=entries,
        model=meta.get("model", {}),
        settings=meta.get("settings", {}),
        failures=meta.get("failures", []),
    )
