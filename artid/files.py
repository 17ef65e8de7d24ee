"""Files that a reader sees whole or not at all: write beside the target, then rename over it.

Every file the package writes (descriptor shards, checkpoints, manifests, CSV tables, caches) goes
through :func:`atomic_path`: the content is written to a temporary name in the target's folder and
``os.replace`` moves it into place, which POSIX makes atomic. An interrupted write leaves at most a
``.<name>.<pid>.tmp`` file that the next write of the same target overwrites.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (where the platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file's content to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; moved over ``path`` when the block ends.

    The temporary name keeps the target's suffix (``np.save`` and ``torch.save`` see ``.npy`` /
    ``.pt``). On an exception the temporary file (or folder) is removed and ``path`` is untouched.

    Args:
        path: the file (or folder) to replace.
        durable: fsync the new content and the folder (a commit point, e.g. a manifest).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        if durable and tmp.is_file():
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_text(path: str | Path, text: str, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, data: bytes, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: Any, durable: bool = False, indent: int | None = 1) -> Path:
    """Write ``obj`` as standard JSON to ``path`` atomically.

    A number that is not finite (a metric undefined on an empty set: NaN) is written as
    ``null``: Python's ``NaN`` / ``Infinity`` are not JSON, and strict parsers (browsers, jq,
    other languages) refuse the whole file.
    """
    text = json.dumps(finite_or_null(obj), indent=indent, allow_nan=False)
    return write_text(path, text, durable)


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every float that is not finite (NaN, +-inf) replaced by None."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write an array as ``.npy`` atomically (no pickle)."""
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return Path(path)


def copy_file(src: str | Path, path: str | Path) -> Path:
    """Copy ``src`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(src, tmp)
    return Path(path)
