"""The service describes photos through a graph runtime as through torch: same descriptors (cosine
>= 0.999), same answers; the exported model is cached in the bundle; int8 is refused."""

import json
from pathlib import Path

import pytest
from service_helpers import artwork, built_bundle, photo_of

from artid.cli import main
from artid.errors import ArtidError
from artid.service.recognizer import Recognizer


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return built_bundle(tmp_path_factory)[0]


def test_runtime_service_answers_as_torch(bundle: Path):
    photos = [photo_of(artwork(i), seed=50 + i) for i in range(3)]
    torch_rec = Recognizer.from_bundle(bundle)
    onnx_rec = Recognizer.from_bundle(bundle, runtime="openvino", precision="fp32")
    a, b = torch_rec.describe(photos), onnx_rec.describe(photos)
    assert ((a * b).sum(1) >= 0.999).all()
    for x, y in zip(torch_rec.recognize(photos), onnx_rec.recognize(photos)):
        assert [m.artwork.key for m in x.matches] == [m.artwork.key for m in y.matches]
        assert x.accepted == y.accepted
    assert list((bundle / ".runtime").glob("model-*.onnx"))  # cached in the bundle
    assert onnx_rec.asked["runtime"] == "openvino"


def test_recognize_answers_through_the_runtime_as_through_torch(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    files = []
    for i in range(2):
        files.append(str(tmp_path / f"p{i}.png"))
        photo_of(artwork(i), seed=70 + i).save(files[-1])
    answers = {}
    for runtime in ("torch", "onnx"):
        argv = ["recognize", "--bundle", str(bundle), "--json", "--runtime", runtime, *files]
        assert main(argv) == 0
        answers[runtime] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for a, b in zip(answers["torch"], answers["onnx"], strict=True):
        assert [m["key"] for m in a["matches"]] == [m["key"] for m in b["matches"]]
        assert a["accepted"] == b["accepted"] and abs(a["score"] - b["score"]) < 1e-2


def test_int8_service_is_refused(bundle: Path):
    with pytest.raises(ArtidError, match="serve with fp32 or bf16"):
        Recognizer.from_bundle(bundle, runtime="onnx", precision="int8")
