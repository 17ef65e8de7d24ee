"""Issue 19's "Weak" list: blank photos, crop margins, numbers that are not finite, empty CSVs.

- the CAM crop of a blank or uniform photo is the whole photo (the flat-map guard was an absolute
  1e-12 test, and the map of a uniform photo is not flat anyway: the trunk's edge padding makes
  it vary 30 to 80 times), and a flat map at any scale gives the whole photo;
- ``--crop-margin`` is a finite number in [0, 1] (``inf`` wrote ``Infinity`` into bundle.json);
- focal-loss and head / fine-tuning numbers are finite;
- a header-only ``train.csv`` says so (it said "no image of train could be read (0 failures)").
"""

from __future__ import annotations

import argparse
import io
import json
import math

import numpy as np
import pytest
from PIL import Image
from test_imet import LABELS_2019, SAMPLE_2019, TRAIN_2019, _kaggle

from artid.attributes.finetune import FinetuneSettings
from artid.attributes.head import HeadSettings
from artid.attributes.imet import IMetDataset
from artid.cli import main
from artid.commands.crop_options import add_crop_arguments, crop_settings
from artid.errors import ArtidError
from artid.localisation import Cropper, CropSettings, map_box
from artid.models import build_embedder


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


def _jpeg(pixels: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _uniform(rgb: tuple[int, int, int], h: int = 150, w: int = 200) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (h, w, 1))


BLANK = {
    "black": _uniform((0, 0, 0)),
    "white": _uniform((255, 255, 255)),
    "grey": _uniform((128, 128, 128)),
    "red": _uniform((200, 30, 30)),
    "grey as a JPEG": _jpeg(_uniform((128, 128, 128), 151, 203)),
    "grey with 1-level noise": np.clip(
        128 + np.random.default_rng(0).normal(0, 1, (150, 200, 3)), 0, 255
    ).astype(np.uint8),
}


@pytest.mark.parametrize("cam", ["share", "energy"])
@pytest.mark.parametrize("photo", list(BLANK))
def test_a_blank_or_uniform_photo_crops_to_the_whole_photo(emb, photo, cam) -> None:
    pixels = BLANK[photo]
    h, w = pixels.shape[:2]
    cropper = Cropper(emb, CropSettings(cam=cam))
    assert cropper.box(pixels) == (0.0, 0.0, float(w), float(h))
    assert cropper.crop_box(pixels) == (0, 0, w, h)


def test_a_flat_map_at_any_scale_gives_the_whole_photo() -> None:
    for scale in (1e-20, 1.0, 1e3, 1e9):
        heat = np.full((6, 8), scale, np.float32)
        heat[2, 3] = np.nextafter(np.float32(scale), np.float32(np.inf))  # one rounding step
        assert map_box(heat, 0.5) == (0.0, 0.0, 8.0, 6.0), scale
    heat = np.zeros((6, 8), np.float32)
    assert map_box(heat, 0.5) == (0.0, 0.0, 8.0, 6.0)
    heat[2:4, 3:5] = 1e-3  # a real peak, however small, still gives its box
    assert map_box(heat, 0.5) == (3.0, 2.0, 5.0, 4.0)


def _crop_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artid extract")
    add_crop_arguments(parser, "crop", "crop query photos")
    return parser


@pytest.mark.parametrize("margin", ["inf", "-inf", "nan", "100", "1.5", "-0.1", "ten"])
def test_crop_margins_out_of_range_are_refused(margin, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _crop_parser().parse_args(["--crop", "cam", f"--crop-margin={margin}"])
    assert exc.value.code == 2
    assert "--crop-margin: must be a number between 0 and 1" in capsys.readouterr().err
    value = float(margin) if margin != "ten" else math.nan
    with pytest.raises(ArtidError, match=r"crop margin must be in \[0, 1\]"):
        CropSettings(margin=value)


@pytest.mark.parametrize("margin", ["0", "0.25", "1"])
def test_crop_margins_in_range_write_standard_json(margin) -> None:
    settings = crop_settings(_crop_parser().parse_args(["--crop", "cam", "--crop-margin", margin]))
    assert settings is not None and settings.margin == float(margin)
    text = json.dumps(settings.spec(), allow_nan=False)  # strict: no NaN / Infinity
    assert json.loads(text)["margin"] == float(margin)


@pytest.mark.parametrize("threshold", ["nan", "inf", "0", "1"])
def test_crop_thresholds_that_are_not_a_share_are_refused(threshold) -> None:
    args = _crop_parser().parse_args(["--crop", "cam", "--crop-threshold", threshold])
    with pytest.raises(ArtidError, match="threshold"):
        crop_settings(args)


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--gamma", "nan", "must be a finite number >= 0"),
        ("--gamma", "inf", "must be a finite number >= 0"),
        ("--gamma", "-1", "must be a finite number >= 0"),
        ("--alpha", "nan", "must be a finite number"),
        ("--alpha", "-inf", "must be a finite number"),
        ("--lr", "nan", "must be a finite number > 0"),
        ("--head-lr", "inf", "must be a finite number > 0"),
    ],
)
def test_attribute_numbers_must_be_finite(tmp_path, capsys, option, value, message) -> None:
    argv = ["attributes", "train", "--root", str(tmp_path), "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--model", "finetune", f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field", ["gamma", "alpha", "momentum", "weight_decay", "step_gamma"])
def test_settings_objects_refuse_numbers_that_are_not_finite(field) -> None:
    with pytest.raises(ArtidError, match=f"must be finite numbers, got {field}=nan"):
        FinetuneSettings(**{field: math.nan})
    with pytest.raises(ArtidError, match="head settings must be finite numbers"):
        HeadSettings(lr=math.nan)


def test_a_header_only_split_says_it_lists_no_images(tmp_path, capsys) -> None:
    root = _kaggle(tmp_path / "imet", LABELS_2019, TRAIN_2019, SAMPLE_2019)
    (root / "train.csv").write_text("id,attribute_ids\n")
    with pytest.raises(ArtidError, match=r"train.csv: lists no images \(a header and no rows\)"):
        IMetDataset(root).split("train")
    argv = ["attributes", "train", "--root", str(root), "--out", str(tmp_path / "run")]
    assert main([*argv, "--model", "knn", "--max-size", "32", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train.csv: lists no images" in err and "0 failures" not in err


def test_a_bad_weights_file_is_refused_before_any_image_is_read(tmp_path, capsys) -> None:
    (tmp_path / "w.safetensors").write_text("not weights")
    argv = [
        "attributes",
        "train",
        "--root",
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*argv, "--weights", str(tmp_path / "w.safetensors"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "w.safetensors: not a readable weights file" in err and "nowhere" not in err
