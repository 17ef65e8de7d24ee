"""Models: backbones (offline registry), GeM pooling, the embedder and its checkpoint files.

>>> from artid.models import build_embedder
>>> emb = build_embedder("efficientnet_lite0")  # offline default, ImageNet weights
>>> v = emb(x)  # x (B, 3, H, W) in [0, 1] -> (B, D), L2-normalised
"""

from __future__ import annotations

from pathlib import Path

from artid.errors import ArtidError
from artid.models.backbones import DEFAULT_BACKBONE, Backbone, create_backbone
from artid.models.checkpoint import (
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    strip_classifier,
)
from artid.models.embedder import MULTI_SCALE, SINGLE_SCALE, Embedder
from artid.models.gem import GeM, gem

__all__ = [
    "DEFAULT_BACKBONE",
    "MULTI_SCALE",
    "SINGLE_SCALE",
    "Backbone",
    "Embedder",
    "GeM",
    "build_embedder",
    "create_backbone",
    "gem",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def build_embedder(
    name: str | Path = DEFAULT_BACKBONE,
    projector: bool = False,
    weights: str | Path | None = None,
    p: float = 3.0,
) -> Embedder:
    """Build an embedder from a backbone name or an artid checkpoint file, offline.

    Args:
        name: ``efficientnet_lite0`` (default), a paper alias (``r18in``, ``r50swsl``, ...), a timm
            name, ``tv:<torchvision name>``, ``random:<name>``, or the path of an artid checkpoint.
        projector: add the FC projector (ignored for checkpoints, which say themselves).
        weights: local weights file for a backbone name (e.g. downloaded ResNet50 weights).
        p: initial GeM exponent (ignored for checkpoints).

    Returns:
        The embedder in eval mode on the CPU.

    Raises:
        ArtidError: unknown name, weights unavailable offline, unreadable checkpoint.
    """
    as_path = Path(name)
    if as_path.is_file() or as_path.suffix in _CHECKPOINT_SUFFIXES:
        if weights is not None:
            raise ArtidError(
                f"--weights applies to backbone names, not to the checkpoint {as_path}"
            )
        return load_checkpoint(as_path)
    backbone = create_backbone(str(name), weights=weights)
    strip_classifier(backbone.model)
    return Embedder(backbone, projector=projector, p=p)
