"""``index build --runtime / --precision`` is recorded in the bundle, and what the bundle was built
with describes what comes later: ``index add``'s images and the photos of ``recognize`` /
``serve`` (their default), so the database and the photos are described alike. int8 is calibrated
on the collection's images at build time and served from the bundle's cache."""

import json
from pathlib import Path

import pytest
from PIL import Image
from service_helpers import artwork, make_collection, make_validation, photo_of

from artid.cli import main
from artid.commands.serve import add_arguments as serve_arguments
from artid.models import precision as precisions
from artid.service.bundle import load_bundle
from artid.service.recognizer import Recognizer

VNNI = frozenset({"avx2", "avx512f", "avx512_vnni"})


def _build(base: Path, *options: str) -> Path:
    if not (base / "collection").is_dir():
        make_collection(base / "collection", n=5)
        make_validation(base / "val", n=5, per_artwork=1, distractors=6)
    out = base / "bundle"
    argv = ["index", "build", str(base / "collection"), "--out", str(out), "--val",
            str(base / "val"), "--max-size", "96", "--scales", "1", "--workers", "0", *options]
    assert main(argv) == 0
    return out


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "bundle.json").read_text())


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("onnx"), "--runtime", "onnx")


def test_the_build_records_its_runtime_and_photos_are_described_with_it(onnx_bundle: Path):
    extraction = load_bundle(onnx_bundle).extraction
    assert (extraction["runtime"], extraction["precision"]) == ("onnx", "fp32")
    rec = Recognizer.from_bundle(onnx_bundle)  # what serve and recognize do without options
    assert (rec.runtime.runtime, rec.runtime.precision) == ("onnx", "fp32")
    assert type(rec.inference[0]).__name__ == "RuntimeEmbedder"
    torch_rec = Recognizer.from_bundle(onnx_bundle, runtime="torch")  # asked for: torch
    assert rec.asked["runtime"] is None and torch_rec.runtime.runtime == "torch"
    photos = [photo_of(artwork(i), seed=300 + i) for i in range(3)]
    assert ((rec.describe(photos) * torch_rec.describe(photos)).sum(1) >= 0.999).all()


def test_serve_and_recognize_default_to_the_bundle(onnx_bundle: Path):
    import argparse

    parser = argparse.ArgumentParser()
    serve_arguments(parser)
    args = parser.parse_args(["--bundle", str(onnx_bundle)])
    assert (args.runtime, args.precision) == (None, None)


def test_a_bundle_without_a_record_is_torch_fp32(tmp_path: Path):
    bundle = _build(tmp_path)
    assert "runtime" not in _manifest(bundle)["extraction"]
    rec = Recognizer.from_bundle(bundle)
    assert (rec.runtime.runtime, rec.runtime.precision) == ("torch", "fp32")
    assert rec.inference[0] is rec.embedders[0]


def test_int8_is_calibrated_at_build_and_kept_by_add_and_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(precisions, "cpu_flags", lambda: VNNI)  # int8 on any CPU of the suite
    bundle = _build(tmp_path, "--runtime", "onnx", "--precision", "int8")
    extraction = load_bundle(bundle).extraction
    assert extraction["precision"] == "int8" and extraction["int8_calibration"]
    assert list((bundle / ".runtime").glob("model-*.int8.onnx"))
    rec = Recognizer.from_bundle(bundle)  # no database images needed: the build's model
    assert rec.runtime.precision == "int8"

    new = tmp_path / "new"
    (new / "art-new").mkdir(parents=True)
    artwork(42).save(new / "art-new" / "0.jpg", quality=92)
    assert main(["index", "add", str(bundle), str(new)]) == 0
    rec = Recognizer.from_bundle(bundle)
    added = rec.pipeline.classifier.db[-1]  # the new image's row, as index add described it
    image = Image.open(new / "art-new" / "0.jpg").convert("RGB")
    int8 = rec.pipeline.transform([rec.describe([image])])[0]
    fp32 = rec.pipeline.transform([Recognizer.from_bundle(bundle, runtime="torch",
                                                          precision="fp32").describe([image])])[0]
    assert float(added @ int8) > 0.9999 > float(added @ fp32)  # described in int8, as the build
    answer = rec.recognize([photo_of(artwork(42), seed=7)])[0]
    assert answer.matches[0].artwork.key == "art-new"


def test_int8_needs_a_bundle_built_with_it(onnx_bundle: Path):
    from artid.errors import ArtidError

    with pytest.raises(ArtidError, match="index build ... --precision int8"):
        Recognizer.from_bundle(onnx_bundle, precision="int8", runtime="onnx")


def test_a_bundle_of_a_graph_runtime_is_added_to_on_the_cpu(onnx_bundle: Path, tmp_path: Path):
    from artid.errors import ArtidError
    from artid.service.builder import add_to_bundle

    (tmp_path / "c" / "art-x").mkdir(parents=True)
    artwork(9).save(tmp_path / "c" / "art-x" / "0.jpg")
    with pytest.raises(ArtidError, match="add with --device cpu"):
        add_to_bundle(onnx_bundle, tmp_path / "c", device="cuda")


def test_index_info_names_the_runtime_photos_are_described_with(onnx_bundle: Path, capsys):
    assert main(["index", "info", str(onnx_bundle)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("runtime"))
    assert "onnx fp32" in line


def test_index_add_on_a_gpu_machine_describes_a_graph_runtime_bundle_on_the_cpu(
    onnx_bundle: Path, tmp_path: Path, monkeypatch
):
    """`--device auto` (the default) on a machine with a GPU: the images of a bundle built with
    ONNX Runtime are still described as its database was, on the CPU, instead of an error."""
    import torch

    from artid import devices

    real = devices.resolve_device
    monkeypatch.setattr(devices, "resolve_device",
                        lambda d: torch.device("cuda") if d == "auto" else real(d))
    (tmp_path / "c" / "art-y").mkdir(parents=True)
    artwork(8).save(tmp_path / "c" / "art-y" / "0.jpg")
    assert main(["index", "add", str(onnx_bundle), str(tmp_path / "c"), "--workers", "0"]) == 0
    assert "art-y" in {a.key for a in load_bundle(onnx_bundle).artworks}
