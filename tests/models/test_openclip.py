"""open_clip image towers (artid.models.openclip) on tiny randomly initialised configs, offline."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models import build_embedder, create_backbone, save_checkpoint

#: A 2-block CLIP ViT (patch 8, width 32) with a 1-block text tower: random, about 30k parameters.
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}
#: The same with a timm trunk and attention pooling, as open_clip's SigLIP configs are built.
TIMM_CFG = {
    "embed_dim": 192,
    "vision_cfg": {
        "image_size": 32,
        "timm_model_name": "vit_tiny_patch16_224",
        "timm_pool": "map",
        "timm_proj": "none",
    },
    "text_cfg": TINY_CFG["text_cfg"],
}
TINY = "random:openclip:artid-tiny-clip"


@pytest.fixture(scope="module", autouse=True)
def _configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openclip-configs")
    for name, cfg in (("artid-tiny-clip", TINY_CFG), ("artid-tiny-siglip", TIMM_CFG)):
        (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pooling, dim", [("", 32), ("@cls", 32), ("@gem", 32), ("@cls+gem", 64)])
def test_descriptors_at_any_size_and_multiscale(pooling, dim):
    emb = build_embedder(TINY + pooling)
    assert emb.spec["pooling"] == (pooling[1:] or "cls")
    assert emb.spec["backbone"]["name"] == "openclip:artid-tiny-clip@" + emb.spec["pooling"]
    assert emb.spec["backbone"]["mean"] == pytest.approx(list(open_clip.OPENAI_DATASET_MEAN))
    x = _images(2, 3, 45, 70)
    with torch.no_grad():
        single, multi = emb(x), emb.embed_multiscale(x)
    assert single.shape == multi.shape == (2, dim)
    torch.testing.assert_close(multi.norm(dim=1), torch.ones(2))
    assert not torch.allclose(single, multi)
    # the documented sum over the scales 1, 1/sqrt(2), 1/2 of each resized batch's descriptor
    with torch.no_grad():
        parts = [emb(F.interpolate(x, scale_factor=s, mode="bilinear")) for s in (0.5**0.5, 0.5)]
    torch.testing.assert_close(multi, F.normalize(single + sum(parts), dim=1))


def test_class_token_is_the_towers_own_before_its_projection():
    """At the tower's native size, CLS @ proj is open_clip's image embedding; other sizes resample
    positions."""
    emb = build_embedder(TINY)
    visual = emb.trunk.model.visual
    x = emb.normalize(_images(2, 3, 32, 32))
    with torch.no_grad():
        tokens = emb.trunk(x)
        torch.testing.assert_close(tokens[:, 0] @ visual.proj, visual(x))
        assert emb.trunk(emb.normalize(_images(1, 3, 40, 100))).shape == (1, 1 + 5 * 13, 32)


def _gem_loop(patches: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """GeM of (B, N, C) patch tokens, one image and one channel at a time, in float64."""
    out = torch.zeros(patches.shape[0], patches.shape[2], dtype=torch.float64)
    for b in range(patches.shape[0]):
        for c in range(patches.shape[2]):
            values = [max(float(t), eps) ** p for t in patches[b, :, c]]
            out[b, c] = (sum(values) / len(values)) ** (1 / p)
    return out


def test_descriptors_are_the_towers_own_tokens_pooled():
    """The reference: a separate open_clip tower with the same weights at its native size, its
    own forward with ``output_tokens`` and no projection (CLS after ``ln_post``, patch tokens),
    OpenAI's mean / std; GeM by a plain loop."""
    emb = build_embedder(TINY + "@cls+gem")
    ref = open_clip.create_model("artid-tiny-clip", pretrained=None).visual.eval()
    ref.load_state_dict(emb.trunk.model.visual.state_dict())
    ref.proj, ref.output_tokens = None, True
    mean, std = (
        torch.tensor(v).view(1, 3, 1, 1)
        for v in (open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    )
    x = _images(3, 3, 32, 32, seed=4)
    with torch.no_grad():
        cls, patches = ref((x - mean) / std)
        got = emb(x)
    expected = F.normalize(
        torch.cat([F.normalize(cls.double(), dim=1), F.normalize(_gem_loop(patches), dim=1)], 1),
        dim=1,
    )
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)


def test_each_descriptor_depends_on_its_own_image_only():
    emb = build_embedder(TINY + "@cls+gem")
    x = _images(3, 3, 50, 41)
    with torch.no_grad():
        batch = emb(x)
        alone = torch.cat([emb(x[i : i + 1]) for i in range(3)])
        changed = x.clone()
        changed[1, :, 8:16, 16:24] = 1.0 - changed[1, :, 8:16, 16:24]  # one 8 x 8 patch
        after = emb(changed)
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after[[0, 2]], batch[[0, 2]], rtol=1e-4, atol=1e-5)
    assert (after[1] - batch[1]).norm() > 1e-3


def test_partial_patches_are_padded_with_zeros_after_normalisation():
    """A 45 x 70 image gives the descriptor of the 48 x 72 image padded (bottom, right) with the
    mean colour, i.e. zeros once normalised."""
    emb = build_embedder(TINY + "@cls+gem")
    x = _images(2, 3, 45, 70)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    padded = mean.expand(2, 3, 48, 72).clone()
    padded[:, :, :45, :70] = x
    shifted = mean.expand(2, 3, 48, 72).clone()
    shifted[:, :, 3:, 2:] = x  # padded top / left instead: another descriptor
    with torch.no_grad():
        torch.testing.assert_close(emb(x), emb(padded), rtol=1e-4, atol=1e-5)
        assert (emb(x) - emb(shifted)).norm(dim=1).min() > 1e-2


def test_timm_trunk_towers_take_any_size():
    emb = build_embedder("random:openclip:artid-tiny-siglip@gem")
    with torch.no_grad():
        v = emb.embed_multiscale(_images(2, 3, 60, 90))
    assert v.shape == (2, 192)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))


def test_local_open_clip_checkpoint_and_artid_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    clip = open_clip.create_model("artid-tiny-clip", pretrained=None)
    full = (
        tmp_path / "epoch_1.pt"
    )  # open_clip's training checkpoint: {"state_dict": {"module.visual...": ...}}
    torch.save(
        {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}}, full
    )
    tower = tmp_path / "visual.pth"  # the image tower alone
    torch.save(clip.visual.state_dict(), tower)
    x = _images(2, 3, 48, 64)
    a = build_embedder("openclip:artid-tiny-clip@cls+gem", weights=full)
    b = build_embedder("openclip:artid-tiny-clip@cls+gem", weights=tower)
    assert a.spec["backbone"]["weights"] == str(full)
    assert torch.equal(a.trunk.model.visual.conv1.weight, clip.visual.conv1.weight)
    ckpt = save_checkpoint(tmp_path / "clip.pt", a)
    c = build_embedder(ckpt)
    assert c.spec["backbone"]["library"] == "openclip" and c.spec["pooling"] == "cls+gem"
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), c(x))
        assert torch.equal(a.embed_multiscale(x), c.embed_multiscale(x))
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(3)}, other)
    with pytest.raises(ArtidError, match="other.pth"):
        build_embedder("openclip:artid-tiny-clip", weights=other)


def test_one_training_step_changes_the_tower():
    torch.manual_seed(0)
    emb = build_embedder(TINY + "@cls+gem").train()
    before = {k: v.detach().clone() for k, v in emb.named_parameters()}
    v = emb(_images(4, 3, 40, 48))
    (-(v[0] @ v[1]) + (v[2] @ v[3])).backward()
    torch.optim.SGD(emb.parameters(), lr=0.1).step()
    changed = {k for k, p in emb.named_parameters() if not torch.equal(before[k], p.detach())}
    assert {
        "pool.p",
        "trunk.model.visual.positional_embedding",
        "trunk.model.visual.conv1.weight",
    } <= changed


def test_missing_weights_say_what_to_supply(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        "huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"), raising=False
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ArtidError, match=r"--weights FILE") as info:
        create_backbone("openclip:ViT-B-32.laion2b_s34b_b79k@gem")
    assert "huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in str(info.value)
    with pytest.raises(ArtidError, match=r"--weights FILE.*laion2b_s34b_b79k"):
        create_backbone("openclip:ViT-B-32")
    with pytest.raises(ArtidError, match="no pretrained tag 'nope'"):
        create_backbone("openclip:ViT-B-32.nope")
    with pytest.raises(ArtidError, match="unknown open_clip model"):
        create_backbone("random:openclip:ViT-Nope")
