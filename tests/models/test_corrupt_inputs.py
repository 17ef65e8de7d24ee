"""Corrupt attribute-run arrays and weights files end in a short ArtidError naming the file.

Issue 19 items 6 and 7: a truncated ``.npy`` inside an attributes run (the ``--attributes RUN``
folder or a bundle's copy of it) ended ``recognize``, ``serve`` and ``index build`` in raw
tracebacks; a text or truncated ``.safetensors`` given as ``--weights`` to a timm backbone raised
``SafetensorError``, and another architecture's state dict gave a 10 KB message listing every key.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from artid.attributes.arrays import load_npy, load_npz, npy_header
from artid.attributes.bow import BowSvm
from artid.attributes.head import HeadSettings, build_head, load_head, save_head
from artid.attributes.runs import FORMAT
from artid.attributes.tagger import Tagger, copy_servable, servable_run
from artid.errors import ArtidError
from artid.models.backbones import create_backbone
from artid.models.checkpoint import load_checkpoint
from artid.models.state_dicts import check_weights_file, read_state_dict

LABELS = ["culture::a", "culture::b", "tag::c"]
#: A clear error is a few lines, not a listing.
SHORT = 600


def _run(folder: Path, kind: str) -> Path:
    """A servable attributes run of 3 labels on 8-d descriptors."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    meta = {
        "format": FORMAT,
        "model": kind,
        "labels": LABELS,
        "features": {
            "model": "efficientnet_lite0",
            "weights": None,
            "scales": [1.0],
            "max_size": 64,
        },
        "thresholds_mode": "global",
        "thresholds": {"global": {"thresholds": 0.5, "fbeta": 0.4}},
        "settings": {"k": 3, "tau": 0.1} if kind == "knn" else {"head": HeadSettings().to_json()},
    }
    (folder / "run.json").write_text(json.dumps(meta))
    if kind == "knn":
        np.save(folder / "knn_database.npy", rng.normal(size=(20, 8)).astype(np.float32))
        np.save(folder / "knn_labels.npy", rng.integers(0, 2, size=(20, 3)).astype(np.uint8))
    else:
        save_head(build_head(8, 3, HeadSettings()), folder / "head.npz")
    return folder


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGES = {
    "truncated": _truncate,
    "header only": lambda p: _truncate(p, 0.02),
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("not an array"),
}


def _short_error(excinfo: pytest.ExceptionInfo, name: str) -> str:
    text = str(excinfo.value)
    assert name in text and len(text) < SHORT and text.count("\n") <= 4, text
    return text


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("name", ["knn_database.npy", "knn_labels.npy", "head.npz"])
def test_a_damaged_run_array_is_a_clear_error_from_every_loader(
    tmp_path: Path, name: str, damage: str
) -> None:
    run = _run(tmp_path / "run", "head" if name == "head.npz" else "knn")
    assert Tagger(run).dim == 8
    DAMAGES[damage](run / name)
    for load in (
        servable_run,  # what `index build` checks before its slow part
        lambda r: copy_servable(r, tmp_path / f"copy-{id(r)}"),  # the bundle's copy
        Tagger,  # recognize, serve start-up
    ):
        with pytest.raises(ArtidError) as excinfo:
            load(run)
        _short_error(excinfo, name)
    if name == "head.npz":
        with pytest.raises(ArtidError) as excinfo:
            load_head(run / name, 8, 3, HeadSettings())
        _short_error(excinfo, name)
    else:
        with pytest.raises(ArtidError) as excinfo:
            load_npy(run / name)
        _short_error(excinfo, name)


def test_run_arrays_of_the_wrong_shape_or_pickled_are_refused(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", "knn")
    np.save(run / "knn_labels.npy", np.zeros((19, 3), np.uint8))
    with pytest.raises(ArtidError, match=r"knn_labels.npy \(19, 3\) do not fit 3 labels"):
        servable_run(run)
    np.save(run / "knn_labels.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ArtidError, match="knn_labels.npy: holds Python objects"):
        npy_header(run / "knn_labels.npy")
    np.save(tmp_path / "one.npz.npy", np.zeros(3))
    (tmp_path / "one.npz.npy").rename(tmp_path / "one.npz")
    with pytest.raises(ArtidError, match="single array"):
        load_npz(tmp_path / "one.npz")
    head = _run(tmp_path / "head", "head")
    save_head(build_head(8, 5, HeadSettings()), head / "head.npz")
    with pytest.raises(ArtidError) as excinfo:
        load_head(head / "head.npz", 8, 3, HeadSettings())
    assert "of another shape: weight (5, 8) vs (3, 8)" in _short_error(excinfo, "head.npz")


def test_a_damaged_bow_model_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "bow"
    folder.mkdir()
    meta = {
        "format": "artid-bow-svm",
        "version": 1,
        "settings": BowSvm(4).settings,
        "multilabel": True,
        "classes": [0, 1],
        "search": {},
    }
    (folder / "bow_svm.json").write_text(json.dumps(meta))
    np.savez(folder / "bow_svm.npz", vocabulary=np.zeros((4, 128), np.float32))
    _truncate(folder / "bow_svm.npz")
    with pytest.raises(ArtidError) as excinfo:
        BowSvm.load(folder)
    _short_error(excinfo, "bow_svm.npz")


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    import timm
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    good = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file(good, str(root / "resnet18.safetensors"))
    torch.save(good, root / "resnet18.pth")
    files = {"good safetensors": root / "resnet18.safetensors", "good pth": root / "resnet18.pth"}
    (root / "text.safetensors").write_text("these are not weights\n")
    (root / "text.pth").write_text("these are not weights\n")
    (root / "empty.safetensors").write_bytes(b"")
    for name in ("resnet18.safetensors", "resnet18.pth"):
        data = (root / name).read_bytes()
        (root / f"cut-{name}").write_bytes(data[: len(data) // 2])
    other = timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict()
    torch.save(other, root / "other.pth")
    save_file(other, str(root / "other.safetensors"))
    torch.save([1, 2, 3], root / "list.pth")
    for name in (
        "text.safetensors",
        "text.pth",
        "empty.safetensors",
        "cut-resnet18.safetensors",
        "cut-resnet18.pth",
        "other.pth",
        "other.safetensors",
        "list.pth",
    ):
        files[name] = root / name
    return files


BAD_FILES = [
    "text.safetensors",
    "text.pth",
    "empty.safetensors",
    "cut-resnet18.safetensors",
    "cut-resnet18.pth",
    "list.pth",
]


@pytest.mark.parametrize("name", BAD_FILES)
@pytest.mark.parametrize("backbone", ["timm:resnet18", "tv:resnet18", "efficientnet_lite0"])
def test_an_unreadable_weights_file_is_a_clear_error(weight_files, name, backbone) -> None:
    with pytest.raises(ArtidError) as excinfo:
        create_backbone(backbone, weight_files[name])
    _short_error(excinfo, name)
    with pytest.raises(ArtidError) as excinfo:
        check_weights_file(weight_files[name])  # what a command checks before its slow part
    _short_error(excinfo, name)


@pytest.mark.parametrize("name", ["other.pth", "other.safetensors"])
@pytest.mark.parametrize("backbone", ["timm:resnet18", "tv:resnet18"])
def test_another_architectures_weights_give_counts_and_a_few_names(
    weight_files, name, backbone
) -> None:
    check_weights_file(weight_files[name])  # a readable file: the architecture decides
    with pytest.raises(ArtidError) as excinfo:
        create_backbone(backbone, weight_files[name])
    text = _short_error(excinfo, name)
    assert "not weights of" in text and "117 missing: " in text and "239 unexpected: " in text
    assert "4 of another shape: bn1.weight (16,) vs (64,)" in text and ", ..." in text


def test_good_weights_still_load(weight_files) -> None:
    for name in ("good safetensors", "good pth"):
        check_weights_file(weight_files[name])
        net = create_backbone("timm:resnet18", weight_files[name]).model
        ref = read_state_dict(weight_files[name])
        torch.testing.assert_close(net.state_dict()["conv1.weight"], ref["conv1.weight"])


def test_a_damaged_artid_checkpoint_is_a_clear_error(weight_files, tmp_path: Path) -> None:
    for name in ("text.pth", "cut-resnet18.pth"):
        with pytest.raises(ArtidError) as excinfo:
            load_checkpoint(weight_files[name])
        _short_error(excinfo, name)
