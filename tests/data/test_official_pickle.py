"""Importing the official descriptors.pkl: arrays only, mapped onto the ground truth."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from artid.data.official import load_official_descriptors, safe_load_pickle
from artid.errors import ArtidError


def _arrays(n_db: int = 4, n_val: int = 3, n_test: int = 3, d: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        x = rng.normal(size=(n, d))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return {
        "train_descriptors": unit(n_db).astype(np.float32),
        "val_descriptors": unit(n_val),
        "test_descriptors": unit(n_test).astype(np.float32),
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_loads_arrays_onto_ground_truth(met_root, tmp_path, protocol):
    data = _arrays()
    pkl = tmp_path / "descriptors.pkl"
    pkl.write_bytes(pickle.dumps(data, protocol=protocol))
    sets = load_official_descriptors(pkl, met_root)
    assert set(sets) == {"database", "val", "test"}
    assert sets["database"].labels.tolist() == [7, 7, 9, 12]
    assert sets["val"].labels.tolist() == [7, -1, -1]
    assert sets["val"].kinds == ["met", "other", "noart"]
    assert sets["val"].matrix.dtype == np.float32
    np.testing.assert_allclose(sets["val"].matrix, data["val_descriptors"], rtol=1e-6)


def test_unnormalised_rows_are_normalised(met_root, tmp_path):
    data = _arrays()
    data["test_descriptors"] = data["test_descriptors"] * 3
    pkl = tmp_path / "d.pkl"
    pkl.write_bytes(pickle.dumps(OrderedDict(data)))
    sets = load_official_descriptors(pkl, met_root)
    np.testing.assert_allclose(np.linalg.norm(sets["test"].matrix, axis=1), 1, atol=1e-6)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


class _Custom:
    pass


def test_code_in_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"train_descriptors": _Evil()}))
    with pytest.raises(ArtidError, match=r"refused to load.*system.*only NumPy arrays"):
        safe_load_pickle(pkl)
    assert not (tmp_path / "pwned").exists()


def test_custom_objects_are_refused(tmp_path):
    pkl = tmp_path / "custom.pkl"
    pkl.write_bytes(pickle.dumps({"train_descriptors": _Custom()}))
    with pytest.raises(ArtidError, match=r"custom.pkl.*test_official_pickle._Custom"):
        safe_load_pickle(pkl)


def test_bad_files(tmp_path, met_root):
    with pytest.raises(ArtidError, match="not found"):
        safe_load_pickle(tmp_path / "none.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(ArtidError, match="junk.pkl"):
        safe_load_pickle(tmp_path / "junk.pkl")
    data = _arrays()
    del data["val_descriptors"]
    (tmp_path / "nokey.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ArtidError, match="'val_descriptors'"):
        load_official_descriptors(tmp_path / "nokey.pkl", met_root)
    data = _arrays()
    data["test_descriptors"] = [[1.0, 0.0]]
    (tmp_path / "list.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ArtidError, match="2-D float array"):
        load_official_descriptors(tmp_path / "list.pkl", met_root)


def test_row_count_must_match_ground_truth(met_root, tmp_path):
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(_arrays(n_db=5)))
    with pytest.raises(ArtidError, match=r"has 5 rows but .*MET_database.json lists 4 entries"):
        load_official_descriptors(tmp_path / "d.pkl", met_root)


def test_nan_and_zero_rows_are_refused(met_root, tmp_path):
    data = _arrays()
    data["val_descriptors"][1] = np.nan
    (tmp_path / "nan.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ArtidError, match=r"val_descriptors.*NaN.*row 1"):
        load_official_descriptors(tmp_path / "nan.pkl", met_root)
    data = _arrays()
    data["train_descriptors"][2] = 0
    (tmp_path / "zero.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ArtidError, match=r"zero norm.*row 2"):
        load_official_descriptors(tmp_path / "zero.pkl", met_root)


def test_ground_truth_problems_are_named(tmp_path, write_gt):
    gt = write_gt(tmp_path)
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(_arrays()))
    (gt / "valset.json").write_text(json.dumps([{"MET_id": 7}]))
    with pytest.raises(ArtidError, match=r"valset.json: entry 0 has no 'path'"):
        load_official_descriptors(tmp_path / "d.pkl", tmp_path)
    (gt / "testset.json").unlink()
    (gt / "valset.json").unlink()
    with pytest.raises(ArtidError, match="valset.json not found"):
        load_official_descriptors(tmp_path / "d.pkl", tmp_path)


def test_numpy1_pickles_load(met_root, tmp_path):
    """The official file predates NumPy 2, whose arrays pickle under ``numpy.core.multiarray``."""
    raw = pickle.dumps(_arrays(), protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw
    (tmp_path / "old.pkl").write_bytes(raw)
    assert load_official_descriptors(tmp_path / "old.pkl", met_root)["database"].matrix.shape == (
        4,
        6,
    )


def test_mini_database_pickle_is_accepted(met_root, tmp_path):
    """The mini-database pickle's train rows are the 2 entries of mini_MET_database.json."""
    data = _arrays(n_db=2)
    (tmp_path / "mini.pkl").write_bytes(pickle.dumps(data))
    sets = load_official_descriptors(tmp_path / "mini.pkl", met_root)
    assert sets["database"].labels.tolist() == [9, 12]
    assert [e.path for e in sets["database"].entries] == ["MET/9/0.jpg", "MET/12/0.jpg"]
    assert sets["database"].settings["ground_truth"] == "mini_MET_database.json"
    np.testing.assert_allclose(sets["database"].matrix, data["train_descriptors"], rtol=1e-6)


def test_mini_database_alone_is_enough(met_root, tmp_path):
    (met_root / "ground_truth" / "MET_database.json").unlink()
    (tmp_path / "mini.pkl").write_bytes(pickle.dumps(_arrays(n_db=2)))
    assert load_official_descriptors(tmp_path / "mini.pkl", met_root)[
        "database"
    ].labels.tolist() == [9, 12]


def test_train_rows_matching_neither_database_name_both(met_root, tmp_path):
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(_arrays(n_db=3)))
    with pytest.raises(
        ArtidError,
        match=r"has 3 rows but .*MET_database.json lists 4 entries and "
        r".*mini_MET_database.json lists 2 entries",
    ):
        load_official_descriptors(tmp_path / "d.pkl", met_root)


#: Pickle opcode for the integer 10**12 (LONG1, 6 little-endian bytes).
_TERA = b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00"


@pytest.mark.parametrize("variant", ["reconstruct", "bytearray"])
def test_huge_declared_array_is_refused_before_allocating(tmp_path, variant):
    """A few hundred bytes asking NumPy (or bytearray) for 10**12 bytes: refused, none allocated."""
    if (
        variant == "reconstruct"
    ):  # numpy's _reconstruct(ndarray, (10**12,), b'b'): allocated before any data
        raw = pickle.dumps({"train_descriptors": np.zeros((2, 3), np.float32)}, protocol=2)
        assert raw.count(b"K\x00\x85") == 1  # the (0,) shape numpy writes
        raw = raw.replace(b"K\x00\x85", _TERA + b"\x85")
    else:  # builtins.bytearray(10**12)
        raw = b"\x80\x02cbuiltins\nbytearray\n" + _TERA + b"\x85R."
    (tmp_path / "big.pkl").write_bytes(raw)
    with pytest.raises(
        ArtidError, match=r"big.pkl: refused to load: .*10\^12|big.pkl: refused to load: .*1e\+12"
    ):
        safe_load_pickle(tmp_path / "big.pkl")


def test_codec_amplification_is_refused(tmp_path):
    """_codecs.encode is admitted for NumPy's latin1 byte strings only (hex doubles a string)."""
    raw = b"\x80\x03c_codecs\nencode\nC\x03abcX\x03\x00\x00\x00hex\x86R."
    assert pickle.loads(raw) == b"616263"
    (tmp_path / "hex.pkl").write_bytes(raw)
    with pytest.raises(ArtidError, match=r"hex.pkl: refused to load: .*encoding 'hex'"):
        safe_load_pickle(tmp_path / "hex.pkl")
