"""open_clip image towers (CLIP, OpenCLIP, SigLIP, ...) as backbones ``openclip:<model>[.<tag>]``.

``openclip:ViT-B-32`` builds ``open_clip.create_model("ViT-B-32")`` and keeps its image tower; the
optional tag (``openclip:ViT-B-32.laion2b_s34b_b79k``, see ``open_clip.list_pretrained()``) names
the pretrained weights to find in the local Hugging Face cache and sets the model's input
normalisation (and QuickGELU for the ``openai`` tags). Nothing is downloaded. A local file
(``--weights``) may be a whole open_clip checkpoint (``visual.*`` keys; a ``state_dict`` wrapper
and a ``module.`` prefix are accepted; ``.safetensors`` too) or the image tower's own state dict.

The tower is wrapped in :class:`OpenClipTokens`, which looks like a timm ViT to
:class:`~artid.models.vit.ViTTrunk`: ``forward_features`` gives (B, N, C) tokens after the tower's
final LayerNorm, the class token first. So the poolings are those of timm ViTs (``@cls``,
``@gem``, ``@cls+gem``), and ``@cls`` is the class token after ``ln_post`` *without* the tower's
projection ``proj`` into the joint image-text space: the same C channels as the patch tokens (so
``@cls+gem`` mixes like with like), and a linear map that PCA-whitening, fitted on the database,
replaces anyway. Towers without a class token (SigLIP's timm trunks pool with attention) take
``@gem``.

Any input size works: open_clip's own ViTs get their position embedding resampled to the patch
grid here (bicubic, as timm's ``dynamic_img_size``) and the input zero-padded to whole patches;
timm trunks (SigLIP) are switched to timm's dynamic size. Towers with attentional pooling (CoCa)
and convolutional towers (RN50, ConvNeXt) are refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from artid.errors import ArtidError
from artid.models.state_dicts import first_line, load_weights

PREFIX = "openclip:"
#: File names of open_clip weights on the Hugging Face hub, preferred first.
HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError:
        raise ArtidError(
            "openclip: backbones need the package open-clip-torch "
            "(pip install 'artid[clip]', or `make setup`)"
        ) from None
    return open_clip


def split_tag(arch: str) -> tuple[str, str | None]:
    """``"ViT-B-32.laion2b_s34b_b79k"`` -> ``("ViT-B-32", "laion2b_s34b_b79k")``; no tag -> None.

    Raises:
        ArtidError: an unknown model or tag.
    """
    oc = _open_clip()
    model, _, tag = arch.partition(".")
    if model not in oc.list_models():
        raise ArtidError(f"unknown open_clip model {model!r} (open_clip.list_models() lists them)")
    if tag and tag not in oc.list_pretrained_tags_by_model(model):
        raise ArtidError(
            f"open_clip has no pretrained tag {tag!r} for {model}; its tags: "
            f"{', '.join(oc.list_pretrained_tags_by_model(model)) or '(none)'}"
        )
    return model, tag or None


class OpenClipTokens(nn.Module):
    """An open_clip image tower seen as a timm ViT: ``forward_features``, ``num_prefix_tokens``,
    ``cls_token``, ``num_features``. Its state dict is the tower's under ``visual.``."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        visual: Any = tower  # open_clip's VisionTransformer or TimmModel
        self.visual = visual
        trunk = getattr(visual, "trunk", None)
        if trunk is not None:  # open_clip's TimmModel: a timm ViT inside
            if not hasattr(trunk, "patch_embed") or not hasattr(trunk, "num_prefix_tokens"):
                raise ArtidError(
                    f"open_clip tower {type(trunk).__name__} is not a ViT; artid takes ViT towers"
                )
            trunk.dynamic_img_size = True  # timm's dynamic size, switched on after construction
            embed = trunk.patch_embed
            embed.strict_img_size, embed.dynamic_img_pad, embed.flatten = False, True, False
            embed.output_fmt = type(embed.output_fmt)("NHWC")
            self.num_prefix_tokens = int(trunk.num_prefix_tokens)
            self.patch_size = tuple(embed.patch_size)
            self.num_features = int(trunk.num_features)
            self._has_cls = getattr(trunk, "cls_token", None) is not None
        else:
            if not hasattr(visual, "class_embedding"):
                raise ArtidError(
                    f"open_clip tower {type(visual).__name__} is not a ViT; artid takes ViT towers"
                )
            if getattr(visual, "attn_pool", None) is not None:
                raise ArtidError(
                    "open_clip towers with attentional pooling (CoCa) are not supported"
                )
            self.num_prefix_tokens = 1
            self.patch_size = tuple(visual.patch_size)
            self.num_features = int(visual.class_embedding.shape[-1])
            self._has_cls = True

    @property
    def cls_token(self) -> torch.Tensor | None:
        """The class embedding, or None for towers without one (what ``create_backbone`` checks)."""
        if not self._has_cls:
            return None
        trunk = getattr(self.visual, "trunk", None)
        return trunk.cls_token if trunk is not None else self.visual.class_embedding

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, N, C) tokens after the final norm, CLS first."""
        trunk = getattr(self.visual, "trunk", None)
        if trunk is not None:
            return trunk.forward_features(x)
        v = self.visual
        ph, pw = v.patch_size
        pad_h, pad_w = -x.shape[-2] % ph, -x.shape[-1] % pw
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = v.conv1(x)  # (B, C, h, w)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos = v.positional_embedding
        if (h, w) != tuple(v.grid_size):
            from timm.layers import resample_abs_pos_embed

            pos = resample_abs_pos_embed(
                pos[None], new_size=[h, w], old_size=list(v.grid_size), num_prefix_tokens=1
            )[0]
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + pos.to(x.dtype)
        x = v.ln_pre(v.patch_dropout(x))
        return v.ln_post(v.transformer(x))


class _NoRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded")


def _cached_weights(model: str, tag: str) -> tuple[Path | None, str]:
    """The tag's weights file in the local caches, and where to fetch it when absent."""
    cfg = _open_clip().get_pretrained_cfg(model, tag)
    where = []
    hub = str(cfg.get("hf_hub") or "")
    if hub:
        repo, name = os.path.split(hub)  # "org/repo/" or "org/repo/file", as open_clip reads it
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None  # type: ignore[assignment]
        for filename in [name] if name else list(HF_FILES):
            found = (
                None if try_to_load_from_cache is None else try_to_load_from_cache(repo, filename)
            )
            if isinstance(found, str) and Path(found).is_file():
                return Path(found), ""
        where.append(f"https://huggingface.co/{repo} ({name or HF_FILES[0]})")
    url = str(cfg.get("url") or "")
    if url:
        candidate = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if candidate.is_file():
            return candidate, ""
        where.append(url)
    return None, " or ".join(where) or "the model card"


def load_tower_weights(tokens: OpenClipTokens, path: Path) -> None:
    """Load a local open_clip checkpoint (``visual.*``) or image-tower state dict into ``tokens``.

    Raises:
        ArtidError: the file cannot be read or its tensors do not fit the tower (naming the file).
    """
    try:
        state = _open_clip().factory.load_state_dict(str(path))
    except Exception as exc:  # noqa: BLE001 - torch / safetensors raise many types: name the file
        raise ArtidError(
            f"{path}: not a readable open_clip weights file ({first_line(exc)})"
        ) from None
    if not isinstance(state, dict):
        raise ArtidError(f"{path}: holds a {type(state).__name__}, not a state dict")
    if not any(k.startswith("visual.") for k in state):
        state = {f"visual.{k}": v for k, v in state.items()}
    visual = {k: v for k, v in state.items() if k.startswith("visual.")}
    load_weights(tokens, visual, path, "the open_clip image tower")


def create_openclip(
    arch: str,
    weights: Path | None,
    random_init: bool,
) -> tuple[OpenClipTokens, tuple[float, float, float], tuple[float, float, float], str]:
    """Build ``openclip:<arch>``'s image tower offline.

    Args:
        arch: open_clip model name with an optional ``.tag``.
        weights: local weights file; None: the tag's file from the caches (unless ``random_init``).
        random_init: keep the random initial weights.

    Returns:
        (tower, mean, std, weights description).

    Raises:
        ArtidError: unknown model or tag, weights absent (naming what to fetch), or not fitting.
    """
    from artid.models.weights import _missing_weights

    oc = _open_clip()
    model_name, tag = split_tag(arch)
    pcfg = oc.get_pretrained_cfg(model_name, tag) if tag else {}
    if not random_init and weights is None:
        if tag is None:
            tags = ", ".join(oc.list_pretrained_tags_by_model(model_name)) or "(none)"
            raise ArtidError(
                f"backbone {PREFIX}{arch} names no weights: pass a local file with --weights "
                "FILE, or add a pretrained tag whose file is in the Hugging Face cache "
                f"({model_name}.<tag>; tags: {tags}), or use random:{PREFIX}{arch}"
            )
        weights, source = _cached_weights(model_name, tag)
        if weights is None:
            raise _missing_weights(PREFIX + arch, model_name, source)
    # open_clip warns "initialized randomly" before artid loads the weights
    quiet = _NoRandomInitWarning()
    logging.getLogger().addFilter(quiet)
    try:
        clip = oc.create_model(
            model_name,
            pretrained=None,
            pretrained_text=False,
            force_quick_gelu=bool(pcfg.get("quick_gelu", False)),
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    tokens = OpenClipTokens(clip.visual)
    if not random_init and weights is not None:
        load_tower_weights(tokens, weights)
    pre = getattr(clip.visual, "preprocess_cfg", {}) or {}
    m, s = (
        pcfg.get(k) or pre.get(k) or default
        for k, default in (("mean", oc.OPENAI_DATASET_MEAN), ("std", oc.OPENAI_DATASET_STD))
    )
    mean, std = (float(m[0]), float(m[1]), float(m[2])), (float(s[0]), float(s[1]), float(s[2]))
    return tokens, mean, std, "random" if random_init else str(weights)
