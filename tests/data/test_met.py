"""Reading the Met ground truth (artid.data.met)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artid.data.met import load_split
from artid.errors import ArtidError


def test_reads_all_splits_with_labels_and_kinds(met_root: Path) -> None:
    db = load_split(met_root, "database")
    assert [e.label for e in db.entries] == [7, 7, 9, 12]
    assert {e.kind for e in db.entries} == {"exhibit"}
    val = load_split(met_root, "val")
    assert [(e.label, e.kind) for e in val.entries] == [(7, "met"), (-1, "other"), (-1, "noart")]
    test = load_split(met_root, "test")
    assert [e.path for e in test.entries] == [
        "test_met/d.jpg",
        "test_met/e.jpg",
        "test_noart/f.jpg",
    ]
    assert len(load_split(met_root, "mini").entries) == 2


def test_ground_truth_at_root_and_images_subfolder(tmp_path: Path, write_gt) -> None:
    write_gt(tmp_path, in_subfolder=False)
    img = tmp_path / "images" / "MET" / "7" / "0.jpg"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"x")
    split = load_split(tmp_path, "database")
    assert split.gt_file == tmp_path / "MET_database.json"
    assert split.image_root == tmp_path / "images"


def test_image_root_is_none_without_images(met_root: Path) -> None:
    assert load_split(met_root, "val").image_root is None


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ArtidError, match="testset.json not found"):
        load_split(tmp_path, "test")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ArtidError, match="does not exist"):
        load_split(tmp_path / "nope", "database")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"id": 1, "path": "MET/1/0.jpg"}, {"id": 2}], r"entry 1 has no 'path'"),
        ([{"path": "MET/1/0.jpg"}], r"entry 0 \(MET/1/0.jpg\) has no 'id'"),
        ([{"id": "abc", "path": "MET/1/0.jpg"}], r"entry 0 has a non-integer 'id'"),
        ([["MET/1/0.jpg"]], r"entry 0 is not an object"),
        ({"id": 1}, r"expected a JSON array"),
    ],
)
def test_malformed_database_entries(tmp_path: Path, entries: object, message: str) -> None:
    (tmp_path / "MET_database.json").write_text(json.dumps(entries))
    with pytest.raises(ArtidError, match=message) as info:
        load_split(tmp_path, "database")
    assert "MET_database.json" in str(info.value)


def test_distractor_outside_distractor_folders_is_refused(tmp_path: Path) -> None:
    (tmp_path / "valset.json").write_text(json.dumps([{"path": "test_met/x.jpg"}]))
    with pytest.raises(ArtidError, match="entry 0 .*no 'MET_id'"):
        load_split(tmp_path, "val")


def test_invalid_json_names_file(tmp_path: Path) -> None:
    (tmp_path / "valset.json").write_text("[{")
    with pytest.raises(ArtidError, match="valset.json: not valid JSON"):
        load_split(tmp_path, "val")


def test_non_utf8_ground_truth_names_file(tmp_path: Path) -> None:
    (tmp_path / "valset.json").write_bytes(b'[{"path": "test_met/\xff.jpg", "MET_id": 7}]')
    with pytest.raises(ArtidError, match=r"valset.json: not UTF-8 text \(byte 0xff at offset 20\)"):
        load_split(tmp_path, "val")


@pytest.mark.parametrize(
    "split, entries, message",
    [
        (
            "database",
            [{"id": 1, "path": "MET/1/0.jpg"}, {"id": 1, "path": "MET/1/0.jpg"}],
            r"entry 1 \(MET/1/0.jpg\) repeats entry 0",
        ),
        (
            "val",
            [
                {"path": "test_met/a.jpg", "MET_id": 3},
                {"path": "test_other/b.jpg"},
                {"path": "test_met/a.jpg", "MET_id": 4},
            ],
            r"entry 2 \(test_met/a.jpg\) repeats entry 0",
        ),
        (
            "val",
            [{"path": "test_met/a.jpg", "MET_id": -1}],
            r"entry 0 \(test_met/a.jpg\) has 'MET_id' -1",
        ),
        ("database", [{"id": -5, "path": "MET/1/0.jpg"}], r"entry 0 \(MET/1/0.jpg\) has 'id' -5"),
        (
            "database",
            [{"id": 2**63, "path": "MET/1/0.jpg"}],
            r"entry 0 \(MET/1/0.jpg\) has 'id' 9223372036854775808",
        ),
        (
            "val",
            [{"path": "test_met/a.jpg", "MET_id": 7.5}],
            r"entry 0 has a non-integer 'MET_id': 7.5",
        ),
        (
            "val",
            [{"path": "test_met/a.jpg", "MET_id": None}],
            r"entry 0 has a non-integer 'MET_id': None",
        ),
        (
            "database",
            [{"id": True, "path": "MET/1/0.jpg"}],
            r"entry 0 has a non-integer 'id': True",
        ),
    ],
)
def test_duplicate_and_impossible_entries_are_refused(
    tmp_path: Path, split: str, entries: list, message: str
) -> None:
    name = {"database": "MET_database.json", "val": "valset.json"}[split]
    (tmp_path / name).write_text(json.dumps(entries))
    with pytest.raises(ArtidError, match=message) as info:
        load_split(tmp_path, split)
    assert str(info.value).startswith(str(tmp_path / name))


def test_same_path_spelled_differently_is_a_duplicate(tmp_path: Path) -> None:
    entries = [{"id": 1, "path": "MET/1/0.jpg"}, {"id": 1, "path": "MET\\1\\0.jpg"}]
    (tmp_path / "MET_database.json").write_text(json.dumps(entries))
    with pytest.raises(ArtidError, match=r"entry 1 .* repeats entry 0"):
        load_split(tmp_path, "database")
