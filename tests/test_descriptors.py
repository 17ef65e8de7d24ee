"""Descriptor files: .npy matrix + JSON manifest (artid.descriptors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artid.data.entries import Entry
from artid.descriptors import DescriptorSet, load_descriptors, save_descriptors
from artid.errors import ArtidError


def _dset(n: int = 4, d: int = 8) -> DescriptorSet:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    entries = [Entry(f"MET/{i}/0.jpg", i, "exhibit") for i in range(n)]
    return DescriptorSet(
        x,
        entries,
        model={"name": "m"},
        settings={"scales": [1.0]},
        failures=[{"path": "MET/9/0.jpg", "error": "truncated"}],
    )


def test_round_trip(tmp_path: Path) -> None:
    d = _dset()
    npy = save_descriptors(tmp_path / "database", d)
    assert npy == tmp_path / "database.npy" and (tmp_path / "database.json").is_file()
    for name in ("database", "database.npy", "database.json"):
        back = load_descriptors(tmp_path / name)
        np.testing.assert_array_equal(back.matrix, d.matrix)
        assert back.entries == d.entries and back.model == d.model and back.failures == d.failures
    assert list(load_descriptors(tmp_path / "database").labels) == [0, 1, 2, 3]
    assert not list(tmp_path.glob("*.tmp*"))  # temporary files renamed away


def test_mmap(tmp_path: Path) -> None:
    save_descriptors(tmp_path / "db", _dset())
    back = load_descriptors(tmp_path / "db", mmap=True)
    assert isinstance(back.matrix, np.memmap)


def test_row_count_mismatch_is_refused(tmp_path: Path) -> None:
    save_descriptors(tmp_path / "db", _dset(4))
    np.save(tmp_path / "db.npy", _dset(3).matrix)
    with pytest.raises(
        ArtidError, match=r"db.npy has 3 rows but its manifest db.json lists 4 entries"
    ):
        load_descriptors(tmp_path / "db")


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN or infinity"), (0.0, "zero norm")])
def test_nan_and_zero_rows_are_refused(tmp_path: Path, bad: float, message: str) -> None:
    d = _dset()
    d.matrix[2] = bad
    save_descriptors(tmp_path / "db", d)
    with pytest.raises(ArtidError, match=rf"{message} \(first: row 2\)"):
        load_descriptors(tmp_path / "db")


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ArtidError, match="db.npy not found"):
        load_descriptors(tmp_path / "db")
    save_descriptors(tmp_path / "db", _dset())
    (tmp_path / "db.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ArtidError, match="not an artid descriptor manifest"):
        load_descriptors(tmp_path / "db")


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    save_descriptors(tmp_path / "db", _dset())
    np.save(tmp_path / "db.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ArtidError, match="cannot be read as a NumPy array"):
        load_descriptors(tmp_path / "db")


def test_non_utf8_manifest_names_file(tmp_path: Path) -> None:
    save_descriptors(tmp_path / "d", _dset())
    manifest = tmp_path / "d.json"
    manifest.write_bytes(
        manifest.read_text().replace("MET/1/0.jpg", "MET/1/\xe9.jpg").encode("latin-1")
    )
    with pytest.raises(ArtidError, match=r"d.json: not UTF-8 text"):
        load_descriptors(tmp_path / "d")
