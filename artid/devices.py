"""Choosing the torch device once, with a clear error when the asked-for device is not there."""

from __future__ import annotations

import torch

from artid.errors import ArtidError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; any other name is checked.

    Raises:
        ArtidError: an unknown device name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtidError(
            f"--device: unknown device {name!r} (auto, cpu, cuda, cuda:1, ...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArtidError(f"--device {name}: torch sees no CUDA GPU here; use --device cpu")
    return device
