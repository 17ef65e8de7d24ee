"""ViT backbones (artid.models.vit): poolings, any input size, checkpoints, training, offline
weights."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models import build_embedder, create_backbone, load_checkpoint, save_checkpoint
from artid.models.vit import TokenPool, is_vit, split_pooling

TINY = "random:vit_tiny_patch16_224"  # 5.7M parameters, C = 192, random weights


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny():
    return build_embedder(TINY)


def test_name_suffix_selects_the_pooling():
    assert split_pooling("vit_small_patch14_dinov2.lvd142m@cls+gem") == (
        "vit_small_patch14_dinov2.lvd142m",
        "cls+gem",
    )
    assert split_pooling("resnet50") == ("resnet50", None)
    with pytest.raises(ArtidError, match="@gem"):
        split_pooling("vit_tiny_patch16_224@avg")
    assert (
        is_vit("vit_small_patch14_dinov2.lvd142m")
        and is_vit("eva02_tiny_patch14_224")
        and not is_vit("resnet18")
    )
    with pytest.raises(ArtidError, match="ViT backbones only"):
        create_backbone("random:r18in@gem")


@pytest.mark.parametrize(
    "pooling, dim", [("", 192), ("@cls", 192), ("@gem", 192), ("@cls+gem", 384)]
)
def test_descriptors_are_unit_vectors_of_the_pooling_length(pooling, dim):
    emb = build_embedder(TINY + pooling)
    assert emb.spec["pooling"] == (pooling[1:] or "cls")  # CLS is the default
    assert emb.spec["backbone"]["name"] == "vit_tiny_patch16_224@" + emb.spec["pooling"]
    assert emb.dim == dim
    with torch.no_grad():
        v = emb(_images(3, 3, 64, 96))
    assert v.shape == (3, dim)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3))


def test_cls_and_gem_are_the_two_halves_of_both():
    torch.manual_seed(0)
    both = build_embedder(TINY + "@cls+gem")
    x = _images(2, 3, 48, 48)
    with torch.no_grad():
        tokens = both.trunk(both.normalize(x))
        v = both(x)
    assert tokens.shape == (2, 1 + 9, 192)  # class token + 3 x 3 patches
    cls = F.normalize(tokens[:, 0], dim=-1)
    patches = tokens[:, 1:].clamp(min=1e-6).pow(3).mean(1).pow(1 / 3)
    expected = F.normalize(torch.cat([cls, F.normalize(patches, dim=-1)], 1), dim=-1)
    torch.testing.assert_close(v, expected)


def test_prefix_tokens_are_not_pooled_as_patches():
    pool = TokenPool("gem", num_prefix_tokens=2, p=1.0)
    tokens = torch.tensor([[[100.0], [100.0], [1.0], [3.0]]])
    torch.testing.assert_close(pool(tokens), torch.tensor([[2.0]]))
    with pytest.raises(ArtidError, match="no class token"):
        TokenPool("cls", num_prefix_tokens=0)


def _gem_loop(patches: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """GeM of (B, N, C) patch tokens, one image and one channel at a time, in float64."""
    out = torch.zeros(patches.shape[0], patches.shape[2], dtype=torch.float64)
    for b in range(patches.shape[0]):
        for c in range(patches.shape[2]):
            values = [max(float(t), eps) ** p for t in patches[b, :, c]]
            out[b, c] = (sum(values) / len(values)) ** (1 / p)
    return out


def test_descriptors_are_timms_own_class_token_and_a_gem_of_its_patch_tokens(tiny):
    """The reference: a separate timm model with the same weights, its documented normalisation
    (the pretrained config's mean / std) and its own token pooling (``global_pool="token"``)."""
    import timm
    from timm.data import resolve_data_config

    ref = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=0, global_pool="token"
    ).eval()
    ref.load_state_dict(tiny.trunk.model.state_dict())
    cfg = resolve_data_config({}, model=ref)
    mean, std = (torch.tensor(cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    gem = build_embedder(TINY + "@gem")
    gem.trunk.model.load_state_dict(tiny.trunk.model.state_dict())
    x = _images(3, 3, 224, 224, seed=3)
    with torch.no_grad():
        cls = ref((x - mean) / std)
        patches = ref.forward_features((x - mean) / std)[:, 1:]
        got_cls, got_gem = tiny(x), gem(x)
    torch.testing.assert_close(got_cls, F.normalize(cls, dim=1))
    torch.testing.assert_close(
        got_gem.double(), F.normalize(_gem_loop(patches), dim=1), rtol=1e-4, atol=1e-5
    )
    assert (got_cls * got_gem).sum(1).abs().max() < 0.9  # two different descriptors


def test_each_descriptor_depends_on_its_own_image_only(tiny):
    x = _images(3, 3, 64, 80)
    with torch.no_grad():
        batch = tiny(x)
        alone = torch.cat([tiny(x[i : i + 1]) for i in range(3)])
        changed = x.clone()
        changed[1, :, 16:32, 32:48] = 1.0 - changed[1, :, 16:32, 32:48]  # one 16 x 16 patch
        after = tiny(changed)
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after[[0, 2]], batch[[0, 2]], rtol=1e-4, atol=1e-5)
    assert (after[1] - batch[1]).norm() > 1e-3


def test_partial_patches_are_padded_with_zeros_after_normalisation(tiny):
    """A 50 x 70 image gives the descriptor of the 64 x 80 image padded (bottom, right) with the
    mean colour, i.e. zeros once normalised."""
    x = _images(2, 3, 50, 70)
    mean = torch.tensor(tiny.spec["backbone"]["mean"]).view(1, 3, 1, 1)
    padded = mean.expand(2, 3, 64, 80).clone()
    padded[:, :, :50, :70] = x
    with torch.no_grad():
        torch.testing.assert_close(tiny(x), tiny(padded), rtol=1e-4, atol=1e-5)
        shifted = mean.expand(2, 3, 64, 80).clone()
        shifted[:, :, 14:, 10:] = x  # padded top / left instead: another descriptor
        assert (tiny(x) - tiny(shifted)).norm(dim=1).min() > 1e-2


@pytest.mark.parametrize("size", [(50, 70), (97, 61), (224, 160), (33, 17)])
def test_any_input_size_and_multiscale(tiny, size):
    x = _images(2, 3, *size)
    with torch.no_grad():
        single = tiny(x)
        multi = tiny.embed_multiscale(x)
    assert single.shape == multi.shape == (2, 192)
    torch.testing.assert_close(multi.norm(dim=1), torch.ones(2))
    assert not torch.allclose(single, multi)
    # the documented sum over the scales 1, 1/sqrt(2), 1/2 of each resized batch's descriptor
    with torch.no_grad():
        parts = [tiny(F.interpolate(x, scale_factor=s, mode="bilinear")) for s in (0.5**0.5, 0.5)]
    torch.testing.assert_close(multi, F.normalize(single + sum(parts), dim=1))


def test_position_embedding_follows_the_patch_grid(tiny):
    """Non-square inputs give ceil(H/16) x ceil(W/16) patch tokens, each with its interpolated
    position."""
    with torch.no_grad():
        tokens = tiny.trunk(tiny.normalize(_images(1, 3, 40, 100)))
    assert tokens.shape == (1, 1 + 3 * 7, 192)


@pytest.mark.parametrize(
    "name, prefix",
    [
        ("random:eva02_tiny_patch14_224@cls+gem", 1),
        ("random:deit_tiny_distilled_patch16_224@gem", 2),  # class + distillation tokens
        ("random:vit_small_patch14_reg4_dinov2@gem", 5),  # DINOv2 with 4 registers
    ],
)
def test_eva_deit_dinov2_at_non_square_sizes(name, prefix):
    emb = build_embedder(name)
    assert emb.pool.num_prefix_tokens == prefix
    with torch.no_grad():
        v = emb.embed_multiscale(_images(2, 3, 60, 90))
    assert v.shape == (2, emb.dim)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))


def test_checkpoint_round_trip(tmp_path: Path):
    emb = build_embedder(TINY + "@cls+gem", projector=True)
    with torch.no_grad():
        emb.pool.p.fill_(2.5)
    path = save_checkpoint(tmp_path / "vit.pt", emb, meta={"epoch": 1})
    again = build_embedder(path)
    assert again.spec["pooling"] == "cls+gem" and again.dim == 384
    assert again.spec["backbone"]["token_pooling"] == "cls+gem"
    x = _images(2, 3, 72, 56)
    with torch.no_grad():
        assert torch.equal(emb(x), again(x))
        assert torch.equal(emb.embed_multiscale(x), again.embed_multiscale(x))
    assert load_checkpoint(path).spec["checkpoint"]["file"] == "vit.pt"


def test_one_training_step_changes_the_weights():
    torch.manual_seed(0)
    emb = build_embedder(TINY + "@cls+gem").train()
    before = {k: v.detach().clone() for k, v in emb.named_parameters()}
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    x = _images(4, 3, 48, 64)
    v = emb(x)
    loss = -(v[0] @ v[1]) + (v[2] @ v[3])
    loss.backward()
    opt.step()
    changed = {k for k, p in emb.named_parameters() if not torch.equal(before[k], p.detach())}
    assert "pool.p" in changed
    assert any(k.startswith("trunk.model.blocks.0.") for k in changed)
    assert "trunk.model.patch_embed.proj.weight" in changed and "trunk.model.pos_embed" in changed


def test_missing_weights_fail_at_once_saying_what_to_supply(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        "huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"), raising=False
    )
    with pytest.raises(ArtidError, match=r"--weights FILE") as info:
        build_embedder("vit_small_patch14_dinov2.lvd142m@gem")
    assert "huggingface.co/timm/vit_small_patch14_dinov2.lvd142m" in str(info.value)


def test_local_weights_file_is_loaded(tmp_path: Path):
    source = create_backbone(TINY)
    path = tmp_path / "vit_tiny.pth"
    torch.save(source.model.state_dict(), path)
    emb = build_embedder("vit_tiny_patch16_224@gem", weights=path)
    assert emb.spec["backbone"]["weights"] == str(path)
    assert torch.equal(emb.trunk.model.pos_embed, source.model.pos_embed)
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(3)}, other)
    with pytest.raises(ArtidError, match="other.pth"):
        build_embedder("vit_tiny_patch16_224", weights=other)
