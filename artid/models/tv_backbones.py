"""torchvision classifiers as backbones (``tv:<name>``): weights from a file or torch-hub's cache.

Nothing is downloaded: without ``weights=`` the file torchvision would fetch is looked up in
``<torch hub dir>/checkpoints``, and its absence raises an :class:`~artid.errors.ArtidError` that
says what to fetch. The trunk is the fully convolutional part (ResNet-like models, or models with
a ``.features`` part).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from artid.errors import ArtidError
from artid.models.state_dicts import load_weights, read_state_dict
from artid.models.weights import _missing_weights

#: ImageNet normalisation: torchvision's weights, and timm's when a model's config names none.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_trunk(model: nn.Module, arch: str) -> nn.Module:
    """Fully convolutional part of a torchvision classifier (ResNet-like or with ``.features``)."""
    if all(hasattr(model, n) for n in ("conv1", "layer4", "fc")):
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        return nn.Sequential(*(getattr(model, n) for n in names))
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        return features
    raise ArtidError(
        f"torchvision model {arch!r} has no known convolutional trunk (supported: "
        "ResNet/ResNeXt-like models and models with a .features part); use its timm name instead"
    )


def trunk_channels(trunk: nn.Module) -> int:
    """C, the channels of a trunk's output (measured on a 64 x 64 input)."""
    was_training = trunk.training
    trunk.eval()
    with torch.inference_mode():
        out = trunk(torch.zeros(1, 3, 64, 64))
    trunk.train(was_training)
    return int(out.shape[1])


def torchvision_model(arch: str, weights: Path | None, random_init: bool) -> tuple[nn.Module, str]:
    """The classifier ``arch`` and the weights file used ('' for random weights)."""
    import torchvision

    try:
        model = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        raise ArtidError(f"unknown torchvision model {arch!r}") from None
    if random_init:
        return model, ""
    if weights is None:
        try:
            url = torchvision.models.get_model_weights(arch).DEFAULT.url
        except (ValueError, AttributeError):
            raise ArtidError(f"torchvision has no pretrained weights for {arch!r}") from None
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if not cached.is_file():
            raise _missing_weights(f"tv:{arch}", arch, url)
        weights = cached
    load_weights(model, read_state_dict(weights), weights, f"torchvision {arch}")
    return model, str(weights)
