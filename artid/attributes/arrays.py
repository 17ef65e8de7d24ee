"""The arrays of an attributes run (``.npy``, ``.npz``), read with a short error naming the file.

A truncated, empty or overwritten array file is an :class:`~artid.errors.ArtidError` of one line
here, not numpy's ``ValueError`` / ``EOFError`` or zipfile's ``BadZipFile``. :func:`npy_header`
checks a ``.npy`` file without reading its data (the header, and that the file is long enough to
hold it), so that a command can check a large kNN database before its slow part.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from artid.errors import ArtidError

#: What numpy and zipfile raise on a bad array file (a damaged ``.npy`` header is parsed as a
#: Python literal: syntax and tokenizer errors too; tests/test_fuzz.py found these).
ARRAY_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # zipfile: a damaged flag asks for a feature it lacks
    RuntimeError,  # zipfile: a damaged flag says "encrypted"
)


def _bad(path: Path, kind: str, exc: BaseException) -> ArtidError:
    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return ArtidError(f"{path}: not a readable {kind} array file (truncated or corrupt? {why})")


def npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a ``.npy`` file whose data is all there, without reading the data.

    Raises:
        ArtidError: missing, not a ``.npy`` file, an object array, or shorter than its header says.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            start = f.tell()
    except ARRAY_ERRORS as exc:
        raise _bad(path, ".npy", exc) from None
    if dtype.hasobject:
        raise ArtidError(f"{path}: holds Python objects (pickle), which artid never reads")
    need = start + math.prod(int(n) for n in shape) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise ArtidError(
            f"{path}: truncated: {size} bytes where its {shape} {dtype} array needs {need}"
        )
    return tuple(int(n) for n in shape), dtype


def load_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` array (no pickle).

    Raises:
        ArtidError: missing, truncated or corrupt, naming the file.
    """
    path = Path(path)
    npy_header(path)
    try:
        return np.load(path, allow_pickle=False)
    except ARRAY_ERRORS as exc:
        raise _bad(path, ".npy", exc) from None


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file, read (no pickle; a damaged member is found here).

    Raises:
        ArtidError: missing, truncated or corrupt, naming the file.
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ArtidError(f"{path}: a single array, not an .npz archive of arrays")
        with z:
            return {k: z[k] for k in z.files}
    except ARRAY_ERRORS as exc:
        raise _bad(path, ".npz", exc) from None
