"""Resumable output: work is written in shards as it is done, then merged atomically.

While ``<out>/<name>`` is being extracted its work folder ``<out>/<name>.parts/`` holds

- ``run.json``: the model spec, the settings, a hash of the entry list and the shard size;
  a later run resumes only when all of them are the same (it refuses otherwise);
- ``shard_NNNNNN.npy`` (descriptors of the shard's readable images, in order) and
  ``shard_NNNNNN.json`` (which positions succeeded, which failed and why). The JSON is
  written last, by rename, so a shard is either complete or absent.

When every shard exists, :meth:`ShardStore.merge` writes ``<name>.npy``/``<name>.json`` through
:func:`artid.descriptors.save_descriptors` (atomic) and removes the work folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.entries import Entry
from artid.data.jsonfile import read_json
from artid.descriptors import DescriptorSet, save_descriptors
from artid.errors import ArtidError
from artid.files import save_npy, write_json

log = logging.getLogger(__name__)

RUN_FORMAT = "artid-extract-run/1"


def entries_digest(entries: list[Entry]) -> str:
    """SHA-256 of the entry list (paths, labels, kinds, order)."""
    h = hashlib.sha256()
    for e in entries:
        h.update(json.dumps([e.path, e.label, e.kind]).encode())
        h.update(b"\n")
    return h.hexdigest()


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} then, {b!r} now")
    return out


class ShardStore:
    """The work folder of one descriptor file.

    Args:
        out: output path without suffix (``<out>/<name>``).
        entries: all entries, in row order.
        model: the embedder's spec.
        settings: descriptor-defining settings (scales, max size, dtype).
        shard_size: entries per shard (a resumed run keeps the size it started with).
    """

    def __init__(
        self,
        out: Path,
        entries: list[Entry],
        model: dict[str, Any],
        settings: dict[str, Any],
        shard_size: int,
    ) -> None:
        if shard_size < 1:
            raise ArtidError("shard size must be at least 1")
        self.out = Path(out)
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.entries = entries
        self.model = model
        self.settings = settings
        self.run_info = {
            "format": RUN_FORMAT,
            "model": model,
            "settings": settings,
            "entries_sha256": entries_digest(entries),
            "count": len(entries),
            "shard_size": shard_size,
        }
        self.shard_size = shard_size

    # -- setup -----------------------------------------------------------------------------
    def open(self) -> None:
        """Create the work folder, or check that the existing one belongs to this same run.

        Raises:
            ArtidError: the work folder was started with another model, settings or entry list.
        """
        run_file = self.parts / "run.json"
        if run_file.is_file():
            try:
                old = read_json(run_file)
            except ArtidError as exc:
                raise ArtidError(f"{exc}; delete {self.parts} to start over") from None
            if not isinstance(old, dict):
                raise ArtidError(
                    f"{run_file}: not an extraction record; delete {self.parts} to start over"
                )
            self.shard_size = int(old.get("shard_size", self.shard_size))
            new = dict(self.run_info, shard_size=self.shard_size)
            diffs = _differences(old, new)
            if diffs:
                raise ArtidError(
                    f"{self.parts} holds an unfinished extraction made with different settings "
                    f"({'; '.join(diffs)[:600]}). Run the same command as then to finish it, or "
                    "delete "
                    f"{self.parts} (or choose another --out) to start over"
                )
            self.run_info = new
            log.info(
                "resuming %s: %d of %d shards already done",
                self.out.name,
                len(self.done_shards()),
                self.n_shards,
            )
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            write_json(run_file, self.run_info, indent=None)

    @property
    def n_shards(self) -> int:
        return (len(self.entries) + self.shard_size - 1) // self.shard_size

    def shard_range(self, shard: int) -> range:
        """Entry positions of a shard."""
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, len(self.entries)))

    def _shard_files(self, shard: int) -> tuple[Path, Path]:
        stem = self.parts / f"shard_{shard:06d}"
        return stem.with_suffix(".npy"), stem.with_suffix(".json")

    def done_shards(self) -> set[int]:
        """Shards whose files are complete."""
        return {s for s in range(self.n_shards) if self._shard_files(s)[1].is_file()}

    # -- writing ---------------------------------------------------------------------------
    def write_shard(
        self, shard: int, vectors: dict[int, np.ndarray], failures: dict[int, str]
    ) -> None:
        """Store a finished shard.

        Args:
            shard: shard number.
            vectors: entry position -> (D,) float32 descriptor, for the readable images.
            failures: entry position -> error message, for the others.
        """
        positions = list(self.shard_range(shard))
        missing = [i for i in positions if i not in vectors and i not in failures]
        if missing:
            raise RuntimeError(
                f"shard {shard} is incomplete: positions {missing[:5]} have no result"
            )
        ok = [i for i in positions if i in vectors]
        npy, manifest = self._shard_files(shard)
        matrix = (
            np.stack([vectors[i] for i in ok]).astype(np.float32, copy=False)
            if ok
            else np.zeros((0, 0), dtype=np.float32)
        )
        save_npy(npy, matrix)
        done = [[i, failures[i]] for i in positions if i in failures]
        write_json(manifest, {"ok": ok, "failures": done}, indent=None)

    def merge(self) -> DescriptorSet:
        """Concatenate the shards into the final descriptor file; remove the work folder.

        Raises:
            ArtidError: a shard is missing, or no image at all could be read.
        """
        matrices: list[np.ndarray] = []
        entries: list[Entry] = []
        failures: list[dict] = []
        for shard in range(self.n_shards):
            npy, manifest = self._shard_files(shard)
            if not manifest.is_file():
                raise ArtidError(
                    f"shard {shard} of {self.out.name} is missing in {self.parts}; run again"
                )
            info = json.loads(manifest.read_text(encoding="utf-8"))
            if info["ok"]:
                matrices.append(np.load(npy, allow_pickle=False))
                entries.extend(self.entries[i] for i in info["ok"])
            failures.extend(
                {**self.entries[i].to_json(), "error": msg} for i, msg in info["failures"]
            )
        if not entries:
            raise ArtidError(
                f"no image of {self.out.name} could be read ({len(failures)} failures; first: "
                f"{failures[0]['error'] if failures else 'none'})"
            )
        dset = DescriptorSet(
            matrix=np.concatenate(matrices),
            entries=entries,
            model=self.model,
            settings=self.settings,
            failures=failures,
        )
        save_descriptors(self.out, dset)
        shutil.rmtree(self.parts)
        return dset
