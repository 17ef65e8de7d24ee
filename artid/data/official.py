"""Import the Met dataset's official pre-extracted descriptors (``descriptors.pkl``).

The file is a Python pickle holding a dict with ``train_descriptors``, ``val_descriptors`` and
``test_descriptors`` (float arrays, one row per entry in the ground-truth JSON order). A pickle
from the internet can run code when loaded, so it is read with a restricted unpickler that admits
only NumPy arrays (and their dtypes) and plain builtin containers, and refuses anything else with
a message naming the offending global.
"""

from __future__ import annotations

import codecs
import functools
import io
import logging
import math
import os
import pickle
from pathlib import Path

import numpy as np

from artid.data.met import Split, find_ground_truth, load_split
from artid.descriptors import DescriptorSet, validate_matrix
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: Pickle key -> ground-truth split.
OFFICIAL_KEYS = {
    "train_descriptors": "database",
    "val_descriptors": "val",
    "test_descriptors": "test",
}

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


#: Globals whose arguments could make a few bytes of pickle allocate (or build) gigabytes.
_RECONSTRUCT = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}
_BYTEARRAY = ("builtins", "bytearray")
_ENCODE = ("_codecs", "encode")
#: The encodings NumPy's pickles use with ``_codecs.encode`` (str -> the array's raw bytes).
_ENCODINGS = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1"}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits :data:`_ALLOWED_GLOBALS` only, and no allocation larger than the file itself.

    Every byte of a real array is stored in the pickle, so an array (or bytearray) that declares
    more bytes than the file holds is refused before it is allocated.
    """

    def __init__(self, file: io.BufferedIOBase, source: str, max_bytes: int) -> None:
        super().__init__(file)
        self.source = source
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) not in _ALLOWED_GLOBALS:
            raise ArtidError(
                f"{self.source}: refused to load: the pickle references {module}.{name}, "
                "but only NumPy arrays and plain containers are accepted (a pickle can run "
                "code; this one is not a plain descriptor file)"
            )
        real = super().find_class(module, name)
        if (module, name) in _RECONSTRUCT:
            return functools.partial(self._reconstruct, real)
        if (module, name) == _BYTEARRAY:
            return self._bytearray
        if (module, name) == _ENCODE:
            return self._encode
        return real

    def persistent_load(self, pid):  # noqa: ANN001, ANN201
        raise ArtidError(
            f"{self.source}: refused to load: the pickle uses persistent ids "
            "(not a plain descriptor file)"
        )

    def _refuse_size(self, what: str, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            raise ArtidError(
                f"{self.source}: refused to load: {what} declares {nbytes:.3g} bytes, more "
                f"than the whole file ({self.max_bytes} bytes); the file is damaged or not a "
                "descriptor file"
            )

    def _reconstruct(self, real, subtype, shape, dtype):  # noqa: ANN001, ANN202 (numpy's signature)
        dims = (shape,) if isinstance(shape, int) else shape
        if not isinstance(dims, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims
        ):
            raise ArtidError(
                f"{self.source}: refused to load: an array declares the shape {shape!r:.80}"
            )
        try:
            itemsize = np.dtype(dtype).itemsize
        except (TypeError, ValueError) as exc:
            raise ArtidError(
                f"{self.source}: refused to load: an array declares the dtype {dtype!r:.80} ({exc})"
            ) from None
        self._refuse_size(f"an array of shape {tuple(dims)}", math.prod(dims) * max(itemsize, 1))
        return real(subtype, shape, dtype)

    def _bytearray(self, *args):  # noqa: ANN002, ANN202
        if args and isinstance(args[0], int):
            self._refuse_size("a bytearray", args[0])
        return bytearray(*args)

    def _encode(self, obj, encoding: str = "utf-8", errors: str = "strict"):  # noqa: ANN001, ANN202
        if not isinstance(obj, str) or str(encoding).lower() not in _ENCODINGS:
            raise ArtidError(
                f"{self.source}: refused to load: _codecs.encode with encoding {encoding!r} "
                "(NumPy pickles use it only to turn latin1 text into bytes)"
            )
        return codecs.encode(obj, encoding, errors)


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
            return _ArrayOnlyUnpickler(f, str(path), max_bytes=os.fstat(f.fileno()).st_size).load()
    except ArtidError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as exc:
        raise ArtidError(
            f"{path}: not a readable pickle of NumPy arrays ({type(exc).__name__}: {exc})"
        ) from None


def _has_ground_truth(gt_root: str | Path, split: str) -> bool:
    try:
        find_ground_truth(gt_root, split)
    except ArtidError:
        return False
    return True


def _matching_split(rows: int, source: str, gt_root: str | Path, splits: tuple[str, ...]) -> Split:
    """The first of ``splits`` whose ground truth lists ``rows`` entries.

    Raises:
        ArtidError: no ground-truth file of ``splits`` exists, or none has that many entries
            (every count is named).
    """
    present = [name for name in splits if _has_ground_truth(gt_root, name)] or [splits[0]]
    found = [
        load_split(gt_root, name) for name in present
    ]  # with none present, names the missing file
    for split in found:
        if len(split.entries) == rows:
            return split
    counts = " and ".join(f"{split.gt_file} lists {len(split.entries)} entries" for split in found)
    raise ArtidError(
        f"{source} has {rows} rows but {counts}: the descriptors do not belong to this ground truth"
    )


def load_official_descriptors(
    pickle_path: str | Path, gt_root: str | Path
) -> dict[str, DescriptorSet]:
    """Read ``descriptors.pkl`` and attach each matrix to its ground-truth entries.

    The database rows (``train_descriptors``) belong to ``MET_database.json`` or, in the pickle of
    the mini database, to ``mini_MET_database.json``; the row count decides which (the two differ:
    397,121 and 38,307 entries), and ``settings["ground_truth"]`` records the file used.

    Args:
        pickle_path: the official ``descriptors.pkl`` (full or mini database).
        gt_root: dataset root holding the ground-truth JSON files (or ``ground_truth/``).

    Returns:
        ``{"database": ..., "val": ..., "test": ...}`` DescriptorSets with (N, D) float32 rows,
        L2-normalised (rows that were not are normalised, with a log message).

    Raises:
        ArtidError: an unsafe pickle, a missing key, a non-2-D or non-float array, a row count that
            differs from its ground-truth file(s), NaN or zero-norm rows.
    """
    data = safe_load_pickle(pickle_path)
    if not isinstance(data, dict):
        raise ArtidError(
            f"{pickle_path}: expected a dict with keys {', '.join(OFFICIAL_KEYS)}, "
            f"found {type(data).__name__}"
        )
    out: dict[str, DescriptorSet] = {}
    for key, split in OFFICIAL_KEYS.items():
        if key not in data:
            raise ArtidError(
                f"{pickle_path}: no {key!r} (keys: {', '.join(map(str, data)) or 'none'})"
            )
        arr = data[key]
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind != "f":
            raise ArtidError(
                f"{pickle_path}: {key!r} must be a 2-D float array, found "
                f"{type(arr).__name__} {getattr(arr, 'shape', '')} {getattr(arr, 'dtype', '')}"
            )
        source = f"{pickle_path}[{key!r}]"
        validate_matrix(arr, source)
        gt = _matching_split(
            arr.shape[0], source, gt_root, ("database", "mini") if split == "database" else (split,)
        )
        if gt.name == "mini":
            log.info(
                "%s: %d rows, as in %s: importing the mini database",
                source,
                arr.shape[0],
                gt.gt_file,
            )
        matrix = np.asarray(arr, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1)
        if np.abs(norms - 1).max() > 1e-3:
            log.info("%s: rows are not L2-normalised; normalising them", source)
            matrix = (matrix / norms[:, None]).astype(np.float32)
        out[split] = DescriptorSet(
            matrix=matrix,
            entries=gt.entries,
            model={"name": "official descriptors.pkl", "source": str(pickle_path)},
            settings={
                "imported_from": str(pickle_path),
                "key": key,
                "ground_truth": gt.gt_file.name,
            },
        )
    return out
