"""Safe image loading: EXIF orientation, modes, resizing and every bad-file case."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artid.data.images import ImageLoadError, load_image, resize_max, to_tensor
from artid.errors import ArtidError


def _rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_exif_orientation_is_applied(tmp_path: Path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.size == (20, 40)
    top = np.asarray(out)[:8].reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[0] < 60  # the left band ended up on top


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "P", "I;16", "I", "F"])
def test_modes_become_rgb(tmp_path: Path, mode: str):
    base = (
        _rgb(30, 20).convert(mode)
        if mode not in ("I;16", "I", "F")
        else Image.fromarray(
            (np.arange(600).reshape(20, 30) * 109).astype(
                {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
            )
        )
    )
    suffix = ".tif" if mode in ("I;16", "I", "F", "CMYK") else ".png"
    path = tmp_path / f"img{suffix}"
    base.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (30, 20)
    arr = np.asarray(out)
    if mode.startswith("I") or mode == "F":
        assert arr.min() == 0 and arr.max() >= 254  # full range, not clipped to white


def test_alpha_is_flattened_on_white(tmp_path: Path):
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((0, 0), (0, 0, 255, 255))
    img.save(tmp_path / "a.png")
    arr = np.asarray(load_image(tmp_path / "a.png"))
    assert tuple(arr[5, 5]) == (255, 255, 255)
    assert tuple(arr[0, 0]) == (0, 0, 255)


def test_palette_transparency_is_flattened(tmp_path: Path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "p.png", transparency=0)
    arr = np.asarray(load_image(tmp_path / "p.png"))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[1, 1]) == (200, 10, 10)


def test_resize_keeps_aspect_and_never_enlarges(tmp_path: Path):
    _rgb(1000, 600).save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png").size == (500, 300)
    assert load_image(tmp_path / "big.png", max_size=100).size == (100, 60)
    assert load_image(tmp_path / "big.png", max_size=None).size == (1000, 600)
    assert resize_max(_rgb(50, 30), 500).size == (50, 30)


def test_truncated_jpeg_fails_naming_the_file(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    _rgb(64, 64).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.jpg"):
        load_image(path)


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\xff\xd8\xff\xe0garbage"])
def test_non_images_fail(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        load_image(path)


def test_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ArtidError):
        load_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path: Path):
    path = tmp_path / "bomb.png"
    Image.new("1", (11000, 10000)).save(path)  # 110 MP, a few kB on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="bomb"):
        _rgb(20, 20).save(tmp_path / "small.png") or load_image(
            tmp_path / "small.png", max_pixels=100
        )


def test_to_tensor_shape_and_range():
    img = Image.fromarray(np.array([[[0, 128, 255]]], dtype=np.uint8))
    t = to_tensor(img)
    assert t.shape == (3, 1, 1) and t.dtype == torch.float32
    assert torch.allclose(t.flatten(), torch.tensor([0.0, 128 / 255, 1.0]))


def test_negative_max_size_is_refused_not_a_1x1_image():
    with pytest.raises(ArtidError, match="max_size must be"):
        resize_max(_rgb(40, 20), -1)
