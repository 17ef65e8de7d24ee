"""Graph runtimes and lower precision: descriptors against torch FP32, sizes and scales, the
exported-model cache, the error naming a missing extra, and the FP32 fallback on a CPU without
matrix units (forced).

Bounds (cosine to torch FP32, per image): FP32 runtimes >= 0.999 (measured 1.0000); bf16 >= 0.99
(measured >= 0.9989 on 12 demo photos, torch autocast and OpenVINO alike; >= 0.995 here); int8
>= 0.7 (ONNX Runtime static u8s8: measured 0.88 - 0.95 on 12 demo photos at 256 px, 0.74 - 0.89
here at 128 x 96).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from artid.errors import ArtidError
from artid.extraction.inference import inference_model
from artid.models import build_embedder
from artid.models import precision as precisions
from artid.models.precision import AutocastEmbedder, peak_flops_per_cycle, resolve_precision
from artid.models.runtime import RuntimeEmbedder

AMX = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"}
SIZES = [(64, 48), (80, 96)]
SCALES = (1.0, 2.0**-0.5, 0.5)


@pytest.fixture(scope="module")
def emb():
    torch.manual_seed(0)
    return build_embedder("efficientnet_lite0").eval()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime")


def _images(h: int, w: int, n: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth images (random noise is far from what a network sees)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear")


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum(-1).min())


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_fp32_runtimes_equal_torch_at_every_size_and_scale(emb, cache, runtime):
    rt = RuntimeEmbedder(emb, runtime, "fp32", cache, threads=1)
    with torch.no_grad():
        for h, w in SIZES:
            x = _images(h, w)
            assert _cos(rt(x), emb(x)) >= 0.999
            assert _cos(rt.embed_multiscale(x, SCALES), emb.embed_multiscale(x, SCALES)) >= 0.999
    assert rt.dim == emb.dim and rt.spec == emb.spec


def test_bf16_within_its_bound(emb, cache):
    x = _images(80, 96)
    with torch.no_grad():
        ref = emb.embed_multiscale(x, SCALES)
        torch_bf16 = AutocastEmbedder(emb).embed_multiscale(x, SCALES)
    ov_bf16 = RuntimeEmbedder(emb, "openvino", "bf16", cache, threads=1).embed_multiscale(x, SCALES)
    assert torch_bf16.dtype == torch.float32
    assert _cos(torch_bf16, ref) >= 0.99
    assert _cos(ov_bf16, ref) >= 0.99


def _photos(w: int = 128, h: int = 96) -> torch.Tensor:
    import skimage.data
    from PIL import Image

    names = ["chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field"]
    return torch.cat([
        torch.from_numpy(np.asarray(Image.fromarray(getattr(skimage.data, n)()).resize((w, h)),
                                    dtype=np.float32) / 255).permute(2, 0, 1)[None]
        for n in names
    ])


def test_int8_calibrated_within_its_bound_and_cached(emb, cache):
    photos = _photos()
    calib = [photos[i : i + 1].numpy() for i in range(4)]  # the last two photos are held out
    calls = []

    def images():
        calls.append(1)
        return iter(calib)

    rt = RuntimeEmbedder(emb, "onnx", "int8", cache, images, "four", threads=1)
    assert rt.path.name.endswith(".int8.onnx")
    with torch.no_grad():
        sim = rt(photos) @ emb(photos).T
    assert float(sim.diagonal().min()) >= 0.7  # measured 0.74 - 0.89
    assert (sim.argmax(1) == torch.arange(len(photos))).all()  # each photo still finds itself
    again = RuntimeEmbedder(emb, "onnx", "int8", cache, images, "four", threads=1)
    assert again.path == rt.path and len(calls) == 1  # the calibrated file is reused


def test_cached_export_rebuilt_when_the_weights_change(emb, cache):
    a = RuntimeEmbedder(emb, "onnx", "fp32", cache, threads=1)
    changed = emb.clone()
    with torch.no_grad():
        changed.pool.p.fill_(4.0)
    b = RuntimeEmbedder(changed, "onnx", "fp32", cache, threads=1)
    assert a.path != b.path
    x = _images(64, 48)
    with torch.no_grad():
        assert _cos(b(x), changed(x)) >= 0.999
    mtime = a.path.stat().st_mtime_ns
    assert RuntimeEmbedder(emb, "onnx", "fp32", cache, threads=1).path == a.path
    assert a.path.stat().st_mtime_ns == mtime  # reused, not exported again


@pytest.mark.parametrize("name,sizes", [
    ("random:tv:resnet18", [(64, 48), (96, 80)]),
    ("random:vit_tiny_patch16_224", [(240, 256), (320, 224)]),  # position grid grows: exact
])
def test_other_architectures_export(name, sizes, tmp_path):
    torch.manual_seed(0)
    model = build_embedder(name).eval()
    rt = RuntimeEmbedder(model, "onnx", "fp32", tmp_path, threads=1)
    with torch.no_grad():
        for h, w in sizes:
            x = _images(h, w, 2)
            assert _cos(rt(x), model(x)) >= 0.999


@pytest.mark.parametrize("module,extra", [("onnxruntime", "onnx"), ("openvino", "openvino")])
def test_missing_runtime_names_the_extra(emb, tmp_path, monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when not installed
    runtime = "onnx" if module == "onnxruntime" else "openvino"
    with pytest.raises(ArtidError, match=rf"pip install 'artid\[{extra}\]'"):
        RuntimeEmbedder(emb, runtime, "fp32", tmp_path)
    assert not list(tmp_path.iterdir())  # refused before exporting anything


def test_unsupported_pairs_are_short_errors(emb, tmp_path):
    with pytest.raises(ArtidError, match="--runtime onnx does not compute --precision bf16"):
        RuntimeEmbedder(emb, "onnx", "bf16", tmp_path)
    with pytest.raises(ArtidError, match="unknown 'fp8'"):
        resolve_precision("fp8")


def test_fp32_fallback_on_a_cpu_without_the_units(emb, monkeypatch, caplog):
    avx2_only = frozenset({"avx", "avx2", "fma"})
    assert resolve_precision("bf16", "cpu", avx2_only) == "fp32"
    assert resolve_precision("int8", "cpu", avx2_only) == "fp32"
    assert resolve_precision("bf16", "cpu", AMX) == "bf16"
    assert resolve_precision("int8", "cpu", AMX) == "int8"
    monkeypatch.setattr(precisions, "cpu_flags", lambda: avx2_only)
    with caplog.at_level("WARNING"):
        model = inference_model(emb, "torch", "bf16", torch.device("cpu"), None)
    assert model is emb  # plain torch FP32
    assert "computing in fp32" in caplog.text


def test_peak_from_the_isa():
    intel = "GenuineIntel"
    assert peak_flops_per_cycle({"avx2", "fma"}, intel) == {"fp32": 32}
    assert peak_flops_per_cycle(AMX, intel) == {"fp32": 64, "bf16": 1024, "int8": 2048}
    assert peak_flops_per_cycle({"avx512f", "avx512_vnni", "avx512_bf16"}, intel) == {
        "fp32": 64, "bf16": 128, "int8": 256}


def test_peak_of_amd_zen4_counts_its_256_bit_datapaths():
    zen4 = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}
    assert peak_flops_per_cycle(zen4, "AuthenticAMD") == {"fp32": 32, "bf16": 64, "int8": 128}
    zen5 = zen4 | {"avx_vnni"}
    assert peak_flops_per_cycle(zen5, "AuthenticAMD") == {"fp32": 64, "bf16": 128, "int8": 256}
