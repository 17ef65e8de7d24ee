"""Bundles that crop: ``artid index build --crop`` records it, validation photos are cropped as queries are
(studio photos never), the recognizer and the API crop every photo and report the box; old bundles do not crop."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import (
    artwork,
    built_bundle,
    jpeg_bytes,
    make_collection,
    make_validation,
    photo_of,
)

from artid.cli import main
from artid.errors import ArtidError
from artid.localisation import CropSettings
from artid.service import builder
from artid.service.api import create_app
from artid.service.cropping import PhotoCrop, crop_from_spec
from artid.service.recognizer import Recognizer

pytestmark = pytest.mark.slow

CROP = CropSettings()  # cam, the defaults


def wall_photo(
    i: int, seed: int, size: tuple[int, int] = (300, 220), at: tuple[int, int] = (150, 60)
) -> Image.Image:
    """A photo of artwork ``i`` hanging off-centre on a plain, slightly noisy wall (larger than the bundle's size)."""
    rng = np.random.default_rng(seed)
    wall = np.clip(
        np.full((size[1], size[0], 3), 200.0) + rng.normal(0, 4, (size[1], size[0], 3)), 0, 255
    )
    img = Image.fromarray(wall.astype(np.uint8))
    img.paste(photo_of(artwork(i), seed), at)
    return img


@pytest.fixture(scope="module")
def cam_bundle(tmp_path_factory):
    """A bundle built with crop=cam; the crop each describe call got, by image list name."""
    base = tmp_path_factory.mktemp("crop-bundle")
    make_collection(base / "collection")
    make_validation(base / "val")
    calls: dict[str, object] = {}
    real = builder.describe

    def spy(
        entries,
        root,
        embedder,
        settings,
        work,
        name,
        device="cpu",
        workers=1,
        crop=None,
        batch_size=None,
        calibration=None,
    ):
        calls[name.split("-")[0]] = crop
        return real(
            entries,
            root,
            embedder,
            settings,
            work,
            name,
            device,
            workers,
            crop=crop,
            batch_size=batch_size,
            calibration=calibration,
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builder, "describe", spy)
        bundle = builder.build_bundle(
            base / "collection",
            base / "bundle",
            builder.BuildOptions(max_size=128, workers=0, crop=CROP),
            val=base / "val",
        )
    return bundle, base, calls


def test_build_records_the_crop_and_crops_only_validation_photos(cam_bundle, capsys):
    bundle, _, calls = cam_bundle
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["extraction"]["crop"] == CROP.spec()
    assert calls == {"database": None, "validation": CROP}
    assert main(["index", "info", str(bundle)]) == 0
    assert f"crop         cam ({CROP.cam} map" in capsys.readouterr().out


def test_recognizer_describes_the_crop_as_validation_photos_were(cam_bundle, tmp_path):
    bundle, base, _ = cam_bundle
    rec = Recognizer.from_bundle(bundle)
    assert rec.crop == CROP
    from artid.data.entries import Entry
    from artid.service.describing import describe

    paths = (
        sorted((base / "val" / "art-1").glob("*.jpg"))
        + sorted((base / "val" / "_distractors").glob("*.jpg"))[:2]
    )
    entries = [Entry(path=str(p.relative_to(base / "val")), label=0, kind="query") for p in paths]
    extracted = describe(
        entries,
        base / "val",
        rec.embedder,
        rec.data.extraction,
        tmp_path,
        "v",
        workers=0,
        crop=CROP,
    )
    images = [Image.open(p).convert("RGB") for p in paths]
    served = rec.describe(images, crops=rec.find_crops(images))
    np.testing.assert_allclose(served, extracted.matrix, atol=1e-4)
    whole = rec.describe(images)
    assert not np.allclose(whole, extracted.matrix, atol=1e-3)  # the crop changed what is described


def test_api_answer_has_a_crop_box_inside_the_photo(cam_bundle):
    bundle, _, _ = cam_bundle
    rec = Recognizer.from_bundle(bundle)
    with TestClient(create_app(rec, bundle)) as client:
        assert client.get("/health").json()["crop"] == CROP.spec()
        photo = wall_photo(3, 7)
        r = client.post("/recognize", files={"image": ("p.jpg", jpeg_bytes(photo), "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    x0, y0, x1, y1 = body["crop"]
    assert all(isinstance(v, int) for v in body["crop"])
    assert 0 <= x0 < x1 <= photo.width and 0 <= y0 < y1 <= photo.height
    assert (x1 - x0) * (
        y1 - y0
    ) < photo.width * photo.height  # not the whole photo: the wall is left out
    assert x1 > 150 and y1 > 60  # it overlaps the artwork (at x >= 150, y >= 60 of the photo)
    assert "crop" in body["timing_ms"]


def test_recognize_reports_the_box_in_the_files_pixels_and_no_crop_overrides(
    cam_bundle, tmp_path, capsys
):
    bundle, _, _ = cam_bundle
    photo = wall_photo(2, 11, size=(600, 440), at=(350, 150))  # shrunk to 128 px before describing
    path = tmp_path / "big.jpg"
    photo.save(path, quality=92)
    assert main(["recognize", str(path), "--bundle", str(bundle), "--json"]) == 0
    box = json.loads(capsys.readouterr().out.strip())["crop"]
    assert (
        box[2] <= 600 and box[3] <= 440 and (box[2] > 128 or box[3] > 128)
    )  # the file's pixels, not 128-px ones
    assert main(["recognize", str(path), "--bundle", str(bundle), "--json", "--no-crop"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["crop"] is None


def test_a_bundle_without_crop_answers_crop_null(tmp_path_factory):
    bundle, _ = built_bundle(tmp_path_factory)
    assert (
        "crop" not in json.loads((bundle / "bundle.json").read_text())["extraction"]
    )  # as old bundles
    rec = Recognizer.from_bundle(bundle)
    assert rec.crop is None and rec.cropper is None
    with TestClient(create_app(rec, bundle)) as client:
        r = client.post(
            "/recognize",
            files={"image": ("p.jpg", jpeg_bytes(photo_of(artwork(1), 5)), "image/jpeg")},
        )
    assert r.status_code == 200 and r.json()["crop"] is None
    assert r.json()["prediction"]["key"] == "art-1"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--crop", "sides"], ["--crop", "invalid choice", "'sides'"]),
        (["--crop", "cam", "--cam", "grad"], ["--cam", "invalid choice"]),
        (["--crop", "cam", "--crop-margin", "-0.5"], ["--crop-margin"]),
        (["--crop", "centre", "--crop-share", "1.5"], ["--crop-share"]),
    ],
)
def test_index_build_refuses_unknown_crop_values_naming_the_option(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["index", "build", str(tmp_path), "--out", str(tmp_path / "b"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--crop", "cam", "--crop-threshold", "most"], "--crop-threshold"),
        (["--crop", "cam", "--cam-size", "8"], "--cam-size"),
    ],
)
def test_index_build_refuses_bad_crop_tuning_before_any_work(argv, option, tmp_path):
    with pytest.raises(ArtidError, match=option):
        from artid.cli import build_parser

        args = build_parser().parse_args(
            ["index", "build", str(tmp_path), "--out", str(tmp_path / "b"), *argv]
        )
        args._run(args)
    assert not (tmp_path / "b").exists()


def test_crop_specs_round_trip_and_unknown_ones_are_refused():
    for settings in (
        CROP,
        CropSettings(method="centre", centre_share=0.7),
        CropSettings(threshold="otsu", cam="share", margin=0.2, cam_size=320),
    ):
        assert crop_from_spec(settings.spec()) == settings
    assert crop_from_spec(None) is None and crop_from_spec({"method": "none"}) is None
    with pytest.raises(ArtidError, match="unknown crop 'sides'"):
        crop_from_spec({"method": "sides"})


def test_photo_crop_scales_to_the_photo():
    c = PhotoCrop((10, 20, 50, 60), (100, 80))
    assert c.scaled(100, 80) == (10, 20, 50, 60)
    assert c.scaled(300, 240) == (30, 60, 150, 180)
    x0, y0, x1, y1 = c.scaled(7, 5)
    assert 0 <= x0 < x1 <= 7 and 0 <= y0 < y1 <= 5
    pixels = np.zeros((80, 100, 3), np.uint8)
    assert c.apply(pixels).shape == (40, 40, 3)
