"""The iMet Collection reader on fixtures in the exact Kaggle forms (2019 and 2020), bad rows
included."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artid.attributes import IMetDataset, read_annotations, read_labels, write_submission
from artid.errors import ArtidError

# iMet Collection 2019: culture:: ids first, then tag:: ids (1,103 in the real file); one name with
# a comma.
LABELS_2019 = """attribute_id,attribute_name
0,culture::abruzzi
1,culture::achaemenid
2,"culture::french, paris"
3,tag::landscapes
4,tag::men
5,tag::women
"""
TRAIN_2019 = """id,attribute_ids
1000483014d91860,1 4
1000fe2e667721fe,0 3 5
1001614cb89646ee,2
"""
SAMPLE_2019 = """id,attribute_ids
10023b2cc4ed5f68,0 1 2
100fbe75ed8fd887,0 1 2
"""
# iMet Collection 2020: five groups (3,474 labels in the real file), 32-hex-digit ids.
LABELS_2020 = """attribute_id,attribute_name
0,country::afghanistan
1,culture::american
2,dimension::h
3,medium::wood
4,tags::landscapes
5,tags::men
"""
TRAIN_2020 = """id,attribute_ids
000040d66f14ced4cdd18cd95d91800f,0 2 3
0000ef13e37ef70412166725ec034a8a,1 4 5
"""
SAMPLE_2020 = """id,attribute_ids
00035b5a3a9fa9e7d18b2b1d2b3c0f7a,
"""


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 4), (120, 80, 40)).save(path)


def _kaggle(root: Path, labels: str, train: str, sample: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text(labels)
    (root / "train.csv").write_text(train)
    (root / "sample_submission.csv").write_text(sample)
    for folder, text in (("train", train), ("test", sample)):
        for line in text.splitlines()[1:]:
            _png(root / folder / f"{line.split(',')[0]}.png")
    return root


@pytest.fixture
def imet2019(tmp_path: Path) -> Path:
    return _kaggle(tmp_path / "imet-2019", LABELS_2019, TRAIN_2019, SAMPLE_2019)


def test_reads_the_2019_layout(imet2019):
    ds = IMetDataset(imet2019)
    assert ds.kind == "imet2019"
    assert [label.id for label in ds.labels] == list(range(6))
    assert ds.labels[2].name == "culture::french, paris" and ds.labels[2].value == "french, paris"
    assert {g: c.tolist() for g, c in ds.groups.items()} == {"culture": [0, 1, 2], "tag": [3, 4, 5]}
    train = ds.split("train")
    assert train.ids == ["1000483014d91860", "1000fe2e667721fe", "1001614cb89646ee"]
    assert train.paths[1] == imet2019 / "train" / "1000fe2e667721fe.png"
    np.testing.assert_array_equal(
        train.targets(), [[0, 1, 0, 0, 1, 0], [1, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 0]]
    )
    test = ds.split(
        "test"
    )  # from sample_submission.csv: ids only, the placeholder labels are not targets
    assert not test.labelled and test.ids == ["10023b2cc4ed5f68", "100fbe75ed8fd887"]
    assert test.paths[0] == imet2019 / "test" / "10023b2cc4ed5f68.png"
    with pytest.raises(ArtidError, match="no labels"):
        test.targets()
    assert ds.available_splits() == ["train", "test"]


def test_reads_the_2020_layout(tmp_path):
    ds = IMetDataset(_kaggle(tmp_path / "imet-2020", LABELS_2020, TRAIN_2020, SAMPLE_2020))
    assert ds.kind == "imet2020"
    assert list(ds.groups) == ["country", "culture", "dimension", "medium", "tags"]
    np.testing.assert_array_equal(
        ds.split("train").targets(), [[1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1]]
    )
    assert ds.split("test").ids == [
        "00035b5a3a9fa9e7d18b2b1d2b3c0f7a"
    ]  # an empty label list is allowed there


def test_label_ids_need_not_be_contiguous(tmp_path):
    root = _kaggle(
        tmp_path / "r",
        "attribute_id,attribute_name\n7,tag::b\n3,culture::a\n",
        "id,attribute_ids\nx1,7\n",
        "id,attribute_ids\n",
    )
    ds = IMetDataset(root)
    assert [label.id for label in ds.labels] == [3, 7] and ds.columns == {3: 0, 7: 1}
    np.testing.assert_array_equal(ds.split("train").targets(), [[0, 1]])


BAD = [
    # (file, text, line named, message)
    ("labels.csv", "id,name\n0,culture::a\n", 1, "header must be 'attribute_id,attribute_name'"),
    ("labels.csv", LABELS_2019 + "4,tag::again\n", 8, "attribute_id 4 already defined on line 6"),
    ("labels.csv", LABELS_2019 + "6,landscapes\n", 8, "group::value"),
    ("labels.csv", LABELS_2019 + "six,tag::six\n", 8, "must be an integer"),
    ("labels.csv", LABELS_2019 + "6,tag::six,extra\n", 8, "expected 2 fields"),
    ("train.csv", "id,attributes\n1000483014d91860,1\n", 1, "header must be 'id,attribute_ids'"),
    (
        "train.csv",
        TRAIN_2019 + "1002a8c2b4d1e9f0,4 1103\n",
        5,
        "attribute id 1103 is not in labels.csv",
    ),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0,\n", 5, "no attribute ids"),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0,4;5\n", 5, "integers separated by single spaces"),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0,4  5\n", 5, "integers separated by single spaces"),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0,-1\n", 5, "non-negative integers"),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0,4 5 4\n", 5, "lists an attribute id twice"),
    (
        "train.csv",
        TRAIN_2019 + "1000fe2e667721fe,1\n",
        5,
        "1000fe2e667721fe already listed on line 3",
    ),
    ("train.csv", TRAIN_2019 + "1002a8c2b4d1e9f0\n", 5, "expected 2 fields"),
    ("train.csv", TRAIN_2019 + "../secret,1\n", 5, "not a plain file name"),
    (
        "train.csv",
        TRAIN_2019 + "1002a8c2b4d1e9f0,1\n",
        5,
        "missing file",
    ),  # no train/1002a8c2b4d1e9f0.png
    ("sample_submission.csv", "id\n10023b2cc4ed5f68\n", 1, "header must be 'id,attribute_ids'"),
    ("sample_submission.csv", SAMPLE_2019 + "10023b2cc4ed5f68,0\n", 4, "already listed on line 2"),
]


@pytest.mark.parametrize("name,text,line,message", BAD, ids=[f"{b[0]}:{b[3][:24]}" for b in BAD])
def test_bad_rows_name_file_and_line(imet2019, name, text, line, message):
    (imet2019 / name).write_text(text)
    with pytest.raises(ArtidError) as err:
        ds = IMetDataset(imet2019)
        ds.split("train")
        ds.split("test")
    assert f"{imet2019 / name}:{line}: " in str(err.value)
    assert message in str(err.value)


def test_missing_files_and_splits(imet2019, tmp_path):
    with pytest.raises(ArtidError, match="no such folder"):
        IMetDataset(tmp_path / "nowhere")
    with pytest.raises(ArtidError, match=re.escape(f"{imet2019 / 'val.csv'}: no such file")):
        IMetDataset(imet2019).split("val")
    with pytest.raises(ArtidError, match="unknown split 'dev'"):
        IMetDataset(imet2019).split("dev")
    (imet2019 / "test" / "100fbe75ed8fd887.png").unlink()
    with pytest.raises(
        ArtidError,
        match=re.escape(f"{imet2019 / 'sample_submission.csv'}:3: image 100fbe75ed8fd887"),
    ):
        IMetDataset(imet2019).split("test")
    assert len(IMetDataset(imet2019, check_images=False).split("test").paths) == 2


def test_paths_file_points_at_images_elsewhere(tmp_path):
    """The synthetic benchmark's form: ids map to existing images through paths.csv (relative to its
    folder)."""
    root = tmp_path / "bench" / "imet"
    root.mkdir(parents=True)
    (root / "labels.csv").write_text(
        "attribute_id,attribute_name\n0,department::Textiles\n1,colour::red\n"
    )
    (root / "train.csv").write_text("id,attribute_ids\nMET_0_0,0 1\n")
    (root / "val.csv").write_text("id,attribute_ids\ntest_met_000001,1\n")
    (root / "paths.csv").write_text(
        "id,path\nMET_0_0,../MET/0/0.jpg\ntest_met_000001,../test_met/000001.jpg\n"
    )
    _png(tmp_path / "bench" / "MET" / "0" / "0.jpg")
    _png(tmp_path / "bench" / "test_met" / "000001.jpg")
    ds = IMetDataset(root)
    assert ds.kind == "custom" and ds.available_splits() == ["train", "val"]
    assert (
        ds.split("train").paths[0].resolve()
        == (tmp_path / "bench" / "MET" / "0" / "0.jpg").resolve()
    )
    np.testing.assert_array_equal(ds.split("val").targets(), [[0, 1]])
    (root / "val.csv").write_text("id,attribute_ids\ntest_met_000001,1\ntest_met_000002,0\n")
    with pytest.raises(
        ArtidError, match=re.escape(f"{root / 'val.csv'}:3: image test_met_000002 is not in")
    ):
        IMetDataset(root).split("val")
    (root / "paths.csv").write_text("id,path\nMET_0_0,../MET/0/1.jpg\n")
    with pytest.raises(
        ArtidError, match=re.escape(f"{root / 'paths.csv'}:2: image MET_0_0: missing file")
    ):
        IMetDataset(root).split("train")
    (root / "paths.csv").write_text("id,path\nMET_0_0,/etc/passwd\n")
    with pytest.raises(
        ArtidError, match=re.escape(f"{root / 'paths.csv'}:2: path must be relative")
    ):
        IMetDataset(root).split("train")


def test_submission_round_trip(tmp_path, imet2019):
    out = tmp_path / "sub" / "submission.csv"
    write_submission(out, ["10023b2cc4ed5f68", "100fbe75ed8fd887"], [[3, 1], []])
    assert out.read_text() == "id,attribute_ids\n10023b2cc4ed5f68,3 1\n100fbe75ed8fd887,\n"
    known = [label.id for label in read_labels(imet2019 / "labels.csv")]
    assert read_annotations(out, known, allow_empty=True) == (
        ["10023b2cc4ed5f68", "100fbe75ed8fd887"],
        [(3, 1), ()],
    )
    with pytest.raises(ArtidError, match="no attribute ids"):
        read_annotations(out, known)
    with pytest.raises(ArtidError, match="2 image ids but 1 label lists"):
        write_submission(out, ["a", "b"], [[1]])
    with pytest.raises(ArtidError, match="image id a given twice"):
        write_submission(out, ["a", "a"], [[1], [2]])
    with pytest.raises(ArtidError, match="distinct and non-negative"):
        write_submission(out, ["a"], [[1, 1]])
