"""The embedder: L2 norms, multi-scale aggregation, whitening projector, checkpoints, batches."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.extraction import BatchEmbedder, ExtractionSettings
from artid.models import MULTI_SCALE, build_embedder, save_checkpoint


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


def _images(n: int, h: int = 64, w: int = 80, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_descriptors_have_unit_norm(emb):
    with torch.inference_mode():
        v = emb(_images(2))
        m = emb.embed_multiscale(_images(2))
    assert v.shape == (2, 1280) and emb.dim == 1280
    assert torch.allclose(v.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(m.norm(dim=1), torch.ones(2), atol=1e-5)


def test_multiscale_is_normalised_sum_of_bilinear_scales(emb):
    x = _images(1, 64, 96, seed=1)
    with torch.inference_mode():
        parts = [
            emb(F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False))
            if s != 1
            else emb(x)
            for s in MULTI_SCALE
        ]
        expected = F.normalize(sum(parts), dim=-1)
        assert torch.allclose(emb.embed_multiscale(x), expected, atol=1e-6)
        assert torch.allclose(emb.embed_multiscale(x, (1.0,)), emb(x), atol=1e-6)
    assert MULTI_SCALE == (1.0, 2**-0.5, 0.5)


def test_projector_from_whitening_computes_centred_projection():
    emb = build_embedder("random:tv:resnet18")
    rng = np.random.default_rng(0)
    mean, P = rng.normal(size=512).astype(np.float32), rng.normal(size=(512, 16)).astype(np.float32)
    emb.set_projector_from_whitening(mean, P)
    assert emb.dim == 16 and emb.spec["projector"] == 16
    v = torch.from_numpy(rng.normal(size=(3, 512)).astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(
            emb.projector(v), (v - torch.from_numpy(mean)) @ torch.from_numpy(P), atol=1e-4
        )
        out = emb(_images(2))
    assert out.shape == (2, 16) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_checkpoint_round_trip(tmp_path: Path):
    emb = build_embedder("random:r18in", projector=True)
    with torch.no_grad():
        emb.pool.p.fill_(2.5)
    path = save_checkpoint(tmp_path / "m.pt", emb, {"epoch": 3})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "artid-checkpoint/1" and raw["meta"] == {"epoch": 3}
    loaded = build_embedder(path)
    x = _images(2)
    with torch.inference_mode():
        assert torch.equal(loaded(x), emb(x))
    assert float(loaded.pool.p.detach()) == 2.5
    assert (
        loaded.spec["checkpoint"]["file"] == "m.pt"
        and len(loaded.spec["checkpoint"]["sha256"]) == 64
    )
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_checkpoint_is_an_artid_error(tmp_path: Path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ArtidError, match="junk.pt"):
        build_embedder(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ArtidError, match="not an artid checkpoint"):
        build_embedder(tmp_path / "other.pt")


def test_freeze_batchnorm_keeps_bn_in_eval():
    emb = build_embedder("random:r18in").freeze_batchnorm()
    emb.train()
    bns = [m for m in emb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert emb.pool.training


def test_batched_optimised_extraction_equals_one_at_a_time(emb):
    """Same-size batches, BN folding and channels-last leave each descriptor unchanged (1e-5)."""
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (48, 72, 3), dtype=np.uint8) for _ in range(3)]
    runner = BatchEmbedder(emb, ExtractionSettings(batch_size=3), torch.device("cpu"))
    assert runner.optimizations == {"fold_bn": True, "channels_last": True}
    batched = runner(list(enumerate(pixels)))
    with torch.inference_mode():
        single = np.concatenate(
            [
                emb.embed_multiscale(
                    torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255
                ).numpy()
                for p in pixels
            ]
        )
    assert batched.shape == (3, 1280) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5)
