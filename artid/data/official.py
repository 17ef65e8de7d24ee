"""Import the Met dataset's official pre-extracted descriptors (``descriptors.pkl``).

The file is a Python pickle holding a dict with ``train_descriptors``, ``val_descriptors`` and
``test_descriptors`` (float arrays, one row per entry in the ground-truth JSON order). A pickle
from the internet can run code when loaded, so it is read with a restricted unpickler that admits
only NumPy arrays (and their dtypes) and plain builtin containers, and refuses anything else with
a message naming the offending global.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import numpy as np

from artid.data.met import load_split
from artid.descriptors import DescriptorSet, validate_matrix
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: Pickle key -> ground-truth split.
OFFICIAL_KEYS = {"train_descriptors": "database", "val_descriptors": "val", "test_descriptors": "test"}

#: The only globals a pickle of NumPy arrays in builtin containers needs (NumPy 1.x and 2.x names,
#: protocols 2 to 5).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise ArtidError(
            f"{self.source}: refused to load: the pickle references {module}.{name}, but only NumPy arrays "
            "and plain containers are accepted (a pickle can run code; this one is not a plain descriptor file)"
        )

    def persistent_load(self, pid):  # noqa: ANN001, ANN201
        raise ArtidError(f"{self.source}: refused to load: the pickle uses persistent ids "
                         "(not a plain descriptor file)")


def safe_load_pickle(path: str | Path) -> object:
    """Unpickle ``path`` admitting only NumPy arrays and builtin containers.

    Raises:
        ArtidError: missing or unreadable file, or any other object in the pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtidError(f"descriptor pickle {path} not found")
    try:
        with open(path, "rb") as f:
            return _ArrayOnlyUnpickler(f, str(path)).load()
    except ArtidError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as exc:
        raise ArtidError(f"{path}: not a readable pickle of NumPy arrays ({type(exc).__name__}: {exc})") from None


def load_official_descriptors(pickle_path: str | Path, gt_root: str | Path) -> dict[str, DescriptorSet]:
    """Read ``descriptors.pkl`` and attach each matrix to its ground-truth entries.

    Args:
        pickle_path: the official ``descriptors.pkl``.
        gt_root: dataset root holding the ground-truth JSON files (or ``ground_truth/``).

    Returns:
        ``{"database": ..., "val": ..., "test": ...}`` DescriptorSets with (N, D) float32 rows,
        L2-normalised (rows that were not are normalised, with a log message).

    Raises:
        ArtidError: an unsafe pickle, a missing key, a non-2-D or non-float array, a row count that
            differs from its ground-truth file, NaN or zero-norm rows.
    """
    data = safe_load_pickle(pickle_path)
    if not isinstance(data, dict):
        raise ArtidError(f"{pickle_path}: expected a dict with keys {', '.join(OFFICIAL_KEYS)}, "
                         f"found {type(data).__name__}")
    out: dict[str, DescriptorSet] = {}
    for key, split in OFFICIAL_KEYS.items():
        if key not in data:
            raise ArtidError(f"{pickle_path}: no {key!r} (keys: {', '.join(map(str, data)) or 'none'})")
        arr = data[key]
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind != "f":
            raise ArtidError(f"{pickle_path}: {key!r} must be a 2-D float array, found "
                             f"{type(arr).__name__} {getattr(arr, 'shape', '')} {getattr(arr, 'dtype', '')}")
        source = f"{pickle_path}[{key!r}]"
        validate_matrix(arr, source)
        gt = load_split(gt_root, split)
        if arr.shape[0] != len(gt.entries):
            raise ArtidError(f"{source} has {arr.shape[0]} rows but {gt.gt_file} lists {len(gt.entries)} entries: "
                             "the descriptors do not belong to this ground truth")
        matrix = np.asarray(arr, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1)
        if np.abs(norms - 1).max() > 1e-3:
            log.info("%s: rows are not L2-normalised; normalising them", source)
            matrix = (matrix / norms[:, None]).astype(np.float32)
        out[split] = DescriptorSet(matrix=matrix, entries=gt.entries,
                                   model={"name": "official descriptors.pkl", "source": str(pickle_path)},
                                   settings={"imported_from": str(pickle_path), "key": key})
    return out
