"""open_clip image towers (artid.models.openclip) on tiny randomly initialised configs, offline."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch

from artid.errors import ArtidError
from artid.models import build_embedder, create_backbone, save_checkpoint

#: A 2-block CLIP ViT (patch 8, width 32) with a 1-block text tower: random, about 30k parameters.
TINY_CFG = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16,
                                            "patch_size": 8},
            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1}}
#: The same with a timm trunk and attention pooling, as open_clip's SigLIP configs are built.
TIMM_CFG = {"embed_dim": 192, "vision_cfg": {"image_size": 32, "timm_model_name": "vit_tiny_patch16_224",
                                             "timm_pool": "map", "timm_proj": "none"},
            "text_cfg": TINY_CFG["text_cfg"]}
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


def test_class_token_is_the_towers_own_before_its_projection():
    """At the tower's native size, CLS @ proj is open_clip's image embedding; other sizes resample positions."""
    emb = build_embedder(TINY)
    visual = emb.trunk.model.visual
    x = emb.normalize(_images(2, 3, 32, 32))
    with torch.no_grad():
        tokens = emb.trunk(x)
        torch.testing.assert_close(tokens[:, 0] @ visual.proj, visual(x))
        assert emb.trunk(emb.normalize(_images(1, 3, 40, 100))).shape == (1, 1 + 5 * 13, 32)


def test_descriptors_are_deterministic():
    emb = build_embedder(TINY + "@cls+gem")
    x = _images(2, 3, 50, 41)
    with torch.no_grad():
        assert torch.equal(emb(x), emb(x.clone()))


def test_timm_trunk_towers_take_any_size():
    emb = build_embedder("random:openclip:artid-tiny-siglip@gem")
    with torch.no_grad():
        v = emb.embed_multiscale(_images(2, 3, 60, 90))
    assert v.shape == (2, 192)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))


def test_local_open_clip_checkpoint_and_artid_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    clip = open_clip.create_model("artid-tiny-clip", pretrained=None)
    full = tmp_path / "epoch_1.pt"  # open_clip's training checkpoint: {"state_dict": {"module.visual...": ...}}
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}}, full)
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
    assert {"pool.p", "trunk.model.visual.positional_embedding", "trunk.model.visual.conv1.weight"} <= changed


def test_missing_weights_say_what_to_supply(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"), raising=False)
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
