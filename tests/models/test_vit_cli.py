"""The README's commands end to end with a tiny randomly initialised ViT: synth -> extract -> evaluate,
index build -> recognize -> the HTTP API, with local weights files and artid checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from artid.cli import main
from artid.descriptors import load_descriptors
from artid.models import build_embedder, create_backbone, save_checkpoint

pytestmark = pytest.mark.slow
VIT = "vit_tiny_patch16_224"  # C = 192


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vit-cli") / "bench"
    assert (
        main(
            [
                "synth",
                "--out",
                str(root),
                "--classes",
                "10",
                "--image-size",
                "48",
                "--distractor-ratio",
                "1",
                "--met-queries",
                "16",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Seeded random weights of the tiny ViT, saved as a plain state dict (what a downloaded file is)."""
    torch.manual_seed(0)
    model = create_backbone(f"random:{VIT}").model
    path = tmp_path_factory.mktemp("vit-weights") / "vit_tiny.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_extract_then_evaluate_with_a_local_weights_file(
    bench: Path, weights: Path, tmp_path: Path, capsys
):
    out = tmp_path / "desc"
    assert (
        main(
            [
                "extract",
                "--root",
                str(bench),
                "--out",
                str(out),
                "--model",
                f"{VIT}@cls+gem",
                "--weights",
                str(weights),
                "--scales",
                "ms",
                "--max-size",
                "64",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    db = load_descriptors(out / "database")
    assert db.matrix.shape[1] == 384 and db.model["backbone"]["name"] == f"{VIT}@cls+gem"
    np.testing.assert_allclose(np.linalg.norm(db.matrix, axis=1), 1.0, atol=1e-5)
    assert main(["evaluate", "--descriptors", str(out), "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert "test" in json.dumps(results) and (tmp_path / "eval" / "index.html").is_file()


def test_extract_crop_cam_with_a_vit(bench: Path, tmp_path: Path):
    """The CAM crop maps a ViT's patch tokens back onto the photo (GeM over patches, whatever the pooling)."""
    out = tmp_path / "cam"
    assert (
        main(
            [
                "extract",
                "--root",
                str(bench),
                "--out",
                str(out),
                "--model",
                f"random:{VIT}@gem",
                "--splits",
                "val",
                "--scales",
                "ss",
                "--max-size",
                "64",
                "--device",
                "cpu",
                "--crop",
                "cam",
            ]
        )
        == 0
    )
    val = load_descriptors(out / "val")
    assert val.matrix.shape[1] == 192 and val.settings["crop"]["method"] == "cam"


@pytest.mark.parametrize("pooling,given", [("@cls", "checkpoint"), ("@gem", "weights")])
def test_index_recognize_and_serve_a_vit_checkpoint(
    bench: Path, weights: Path, tmp_path: Path, capsys, pooling, given
):
    """The service takes an artid checkpoint, or a backbone name with a local weights file (--weights)."""
    if given == "checkpoint":
        model = [
            "--model",
            str(
                save_checkpoint(tmp_path / "vit.pt", build_embedder(VIT + pooling, weights=weights))
            ),
        ]
    else:
        model = ["--model", VIT + pooling, "--weights", str(weights)]
    bundle = tmp_path / "bundle"
    assert (
        main(
            [
                "index",
                "build",
                str(bench),
                "--out",
                str(bundle),
                *model,
                "--max-size",
                "64",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    photo = sorted((bench / "test_met").rglob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["recognize", str(photo), "--bundle", str(bundle), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(answer["matches"]) == 5

    from artid.service.api import create_app
    from artid.service.recognizer import Recognizer

    recognizer = Recognizer.from_bundle(bundle)
    assert recognizer.embedder.spec["pooling"] == pooling[1:]
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():  # the bundle recognises with the weights it was built with
        assert torch.allclose(
            recognizer.embedder.eval()(x), build_embedder(VIT + pooling, weights=weights).eval()(x)
        )
    with TestClient(create_app(recognizer, bundle)) as client:
        r = client.post("/recognize", files={"image": ("p.jpg", photo.read_bytes(), "image/jpeg")})
        assert r.status_code == 200
        assert [m["key"] for m in r.json()["matches"]] == [m["key"] for m in answer["matches"]]


def test_a_bundle_of_a_random_vit_answers_as_it_was_built(bench: Path, tmp_path: Path, capsys):
    """``random:`` weights are drawn once, at build time, and kept in the bundle: recognising later uses them."""
    bundle = tmp_path / "bundle"
    assert (
        main(
            [
                "index",
                "build",
                str(bench),
                "--out",
                str(bundle),
                "--model",
                f"random:{VIT}@gem",
                "--max-size",
                "64",
                "--workers",
                "0",
                "--whiten",
                "none",
            ]
        )
        == 0
    )
    from artid.service.recognizer import Recognizer

    a, b = Recognizer.from_bundle(bundle), Recognizer.from_bundle(bundle)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(a.embedder(x), b.embedder(x))
