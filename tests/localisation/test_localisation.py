"""Localisation: IoU and boxes by hand, the CAM box of an image whose answer is known, and
``artid extract --crop cam`` end to end (crop recorded in the manifest, refused on a changed
resume).
"""

from pathlib import Path

import numpy as np
import pytest

from artid import cli
from artid.data.synth import SynthConfig, generate
from artid.descriptors import load_descriptors
from artid.errors import ArtidError
from artid.localisation import (
    Cropper,
    CropSettings,
    activation_maps,
    centre_box,
    expand,
    iou,
    load_placements,
    map_box,
    quad_box,
)
from artid.models import build_embedder


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


def test_iou_against_hand_values():
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 4, 4), (0, 0, 2, 2)) == pytest.approx(0.25)
    assert iou((0, 0, 2, 3), (0, 0, 2, 3)) == pytest.approx(1.0)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0  # touching edges share no area
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert iou((0, 0, 10, 2), (5, 0, 15, 2)) == pytest.approx(10 / 30)


def test_quad_box_is_clipped_to_the_photo_and_boxes_grow_inside_it():
    quad = [[-10.0, 5.0], [50.0, 0.0], [60.0, 40.0], [-5.0, 45.0]]
    assert quad_box(quad, 40, 30) == (0.0, 0.0, 40.0, 30.0)
    assert quad_box([[2, 3], [12, 4], [11, 20], [1, 19]], 40, 30) == (1.0, 3.0, 12.0, 20.0)
    assert centre_box(100, 50, 0.8) == pytest.approx((10, 5, 90, 45))
    assert expand((10, 10, 30, 20), 0.1, 100, 100) == pytest.approx((8, 9, 32, 21))
    assert expand((0, 0, 30, 20), 0.5, 40, 25) == pytest.approx((0, 0, 40, 25))


def test_map_box_keeps_the_largest_component_above_the_threshold():
    heat = np.zeros((20, 30), dtype=np.float32)
    heat[2:5, 2:5] = 1.0  # small and hottest
    heat[8:18, 10:25] = 0.8  # large
    assert map_box(heat, 0.5) == (10.0, 8.0, 25.0, 18.0)
    assert map_box(heat, 0.9) == (2.0, 2.0, 5.0, 5.0)  # only the small one is left
    assert map_box(heat, "otsu") == (10.0, 8.0, 25.0, 18.0)
    assert map_box(np.ones((6, 8)), 0.5) == (0.0, 0.0, 8.0, 6.0)  # flat map: the whole photo
    with pytest.raises(ArtidError, match="threshold"):
        map_box(heat, 1.5)


def _square_on_a_wall(
    h: int = 160, w: int = 224, box: tuple[int, int, int, int] = (120, 40, 200, 120)
) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 190, dtype=np.uint8) + rng.integers(0, 6, (h, w, 1), dtype=np.uint8)
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1]
    art = np.stack(
        [(np.sin(xx / 3.0) * 110 + 120), (np.cos(yy / 5.0) * 110 + 120), ((xx + yy) % 17) * 14.0],
        axis=-1,
    )
    img[y0:y1, x0:x1] = np.clip(art + rng.normal(0, 25, art.shape), 0, 255).astype(np.uint8)
    return img


@pytest.mark.parametrize("cam", ["share", "energy"])
def test_cam_box_finds_a_textured_square_on_a_flat_wall(emb, cam):
    # off centre: the centred box of the same size misses most of it
    truth = (130.0, 20.0, 210.0, 100.0)
    img = _square_on_a_wall(box=(130, 20, 210, 100))
    cropper = Cropper(emb, CropSettings(cam=cam))
    box = cropper.box(img)
    assert iou(box, truth) > 0.5, box
    assert iou(centre_box(224, 160, 0.5), truth) < 0.3
    x0, y0, x1, y1 = cropper.crop_box(img)
    cropped = cropper(img)
    assert cropped.shape == (y1 - y0, x1 - x0, 3) and cropped.flags["C_CONTIGUOUS"]
    heat = activation_maps(
        emb, __import__("torch").from_numpy(img).permute(2, 0, 1)[None].float() / 255, cam
    )
    assert heat.shape == (1, 5, 7) and bool((heat >= 0).all())


def test_crop_settings_refuse_nonsense():
    with pytest.raises(ArtidError, match="unknown crop"):
        CropSettings(method="detector")
    with pytest.raises(ArtidError, match="threshold"):
        CropSettings(threshold=0.0)
    with pytest.raises(ArtidError, match="margin"):
        CropSettings(margin=-0.1)
    assert CropSettings(method="centre", centre_share=0.7).spec() == {
        "method": "centre",
        "share": 0.7,
    }


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loc") / "bench"
    generate(
        root,
        SynthConfig(
            classes=12, seed=5, image_size=64, distractor_ratio=1.0, workers=1, progress=False
        ),
    )
    return root


def test_placements_cover_every_met_query(tiny_root: Path):
    import json

    placements = load_placements(tiny_root)
    queries = [
        q["path"]
        for split in ("valset", "testset")
        for q in json.loads((tiny_root / "ground_truth" / f"{split}.json").read_text())
        if "MET_id" in q
    ]
    assert queries and sorted(placements) == sorted(queries)


def test_extract_crop_cam_end_to_end(tiny_root: Path, tmp_path: Path):
    common = [
        "extract",
        "--root",
        str(tiny_root),
        "--scales",
        "ss",
        "--device",
        "cpu",
        "--shard-size",
        "4",
    ]
    plain, cropped = tmp_path / "plain", tmp_path / "cam"
    assert cli.main([*common, "--out", str(plain)]) == 0
    assert cli.main([*common, "--out", str(cropped), "--crop", "cam", "--crop-margin", "0.1"]) == 0
    spec = CropSettings(margin=0.1).spec()
    db_plain, db_cam = load_descriptors(plain / "database"), load_descriptors(cropped / "database")
    assert "crop" not in db_cam.settings  # studio photos stay whole
    np.testing.assert_allclose(db_cam.matrix, db_plain.matrix, atol=1e-5)
    for split in ("val", "test"):
        p, c = load_descriptors(plain / split), load_descriptors(cropped / split)
        assert c.settings["crop"] == spec and "crop" not in p.settings
        assert c.matrix.shape == p.matrix.shape == (len(c.entries), 1280)
        assert c.entries == p.entries
        np.testing.assert_allclose(np.linalg.norm(c.matrix, axis=1), 1.0, atol=1e-5)
        # cropping changes what the photo is described from (some photos are cropped for sure)
        assert np.abs(c.matrix - p.matrix).max(axis=1).max() > 1e-3
    # the same command again resumes (nothing to do); a changed crop setting is refused, naming it
    assert cli.main([*common, "--out", str(cropped), "--crop", "cam", "--crop-margin", "0.1"]) == 0
    with pytest.raises(ArtidError, match="crop"):
        _extract_val(tiny_root, cropped, CropSettings(margin=0.3))
    assert cli.main([*common, "--out", str(cropped), "--crop", "none", "--splits", "val"]) == 2


def _extract_val(root: Path, out: Path, crop: CropSettings) -> None:
    from artid.extraction import ExtractionSettings, extract_lists, met_sources

    emb = build_embedder("efficientnet_lite0")
    extract_lists(
        met_sources(root, ["val"]),
        emb,
        out,
        ExtractionSettings(scales=(1.0,), workers=0, crop=crop),
        progress=False,
    )


def test_interrupted_extraction_refuses_to_resume_with_another_crop(
    tiny_root: Path, tmp_path: Path
):
    from artid.extraction import ExtractionSettings, met_sources
    from artid.extraction.shards import ShardStore

    emb = build_embedder("efficientnet_lite0")
    (val,) = met_sources(tiny_root, ["val"])
    started = ExtractionSettings(scales=(1.0,), workers=0, crop=CropSettings(threshold="otsu"))
    ShardStore(
        tmp_path / "val", val.entries, emb.spec, started.descriptor_settings(), 4
    ).open()  # then killed
    with pytest.raises(ArtidError, match="crop"):
        _extract_val(tiny_root, tmp_path, CropSettings(threshold=0.3))
