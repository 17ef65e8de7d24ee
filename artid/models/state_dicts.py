"""Weights files read with a short, clear error: ``.safetensors`` or ``torch.save`` state dicts.

Every loader of backbone weights (timm, torchvision, open_clip, the packaged EfficientNet-Lite0,
artid checkpoints) names the file at fault in a message of a few lines: a file that is not a
weights file (text, truncated, random bytes) says so, and weights of another architecture give
the counts of missing, unexpected and reshaped tensors with the first few names, not the 10 KB
list ``load_state_dict`` prints. :func:`check_weights_file` is the cheap check a command runs
before its slow part.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from artid.errors import ArtidError

#: Names listed per kind of mismatch in a message.
LISTED = 3
#: Keys under which training scripts nest the state dict (timm's ``clean_state_dict`` order).
NESTED_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")


def first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_state_dict(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The tensors of a weights file (``.safetensors``, else a ``torch.save`` file read with
    ``weights_only=True``), unnested from a training checkpoint and without a ``module.`` prefix.

    Args:
        path: the file.
        mmap: map a torch zip file instead of reading it (a cheap check of a large file).

    Raises:
        ArtidError: missing, unreadable, not a weights file, or not a dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtidError(f"weights file {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                state: Any = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError:
                if not mmap:
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except Exception as exc:  # noqa: BLE001 - torch / safetensors raise many types: name the file
        raise ArtidError(
            f"{path}: not a readable weights file (.safetensors or torch.save state dict; "
            f"{first_line(exc)})"
        ) from None
    for key in NESTED_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ArtidError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def check_weights_file(path: str | Path) -> None:
    """Refuse a weights file that cannot be read, before any slow work (tensors are mapped, not
    read, where the format allows it).

    Raises:
        ArtidError: as :func:`read_state_dict`, in a line or two naming the file.
    """
    read_state_dict(path, mmap=True)


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:LISTED])
    return shown + (", ..." if len(keys) > LISTED else "")


def mismatch(
    path: str | Path, what: str, state: Mapping[str, Any], target: Mapping[str, Any]
) -> str | None:
    """A few lines on how ``state`` does not fit ``target`` (``what``: "resnet18"), or None
    where every tensor has its name and shape."""
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in state and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    if not (missing or unexpected or reshaped):
        return None
    parts = [f"{path}: not weights of {what} ({len(state)} tensors, {what} has {len(target)})"]
    if missing:
        parts.append(f"{len(missing)} missing: {_names(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {_names(unexpected)}")
    if reshaped:
        parts.append(f"{len(reshaped)} of another shape: {_names(reshaped)}")
    return ";\n  ".join(parts)


def load_weights(
    model: torch.nn.Module,
    state: Mapping[str, Any],
    path: str | Path,
    what: str,
    ignore: tuple[str, ...] = (),
) -> None:
    """``model.load_state_dict(state, strict=True)`` with a short error.

    Args:
        ignore: key prefixes of ``model`` the file need not have nor match (e.g. a classifier).

    Raises:
        ArtidError: names, counts and the first few of the missing / unexpected / reshaped
            tensors (or the first line of torch's error).
    """
    target = {k: v for k, v in model.state_dict().items() if not k.startswith(ignore or ("\0",))}
    given = {k: v for k, v in state.items() if not k.startswith(ignore or ("\0",))}
    problem = mismatch(path, what, given, target)
    if problem:
        raise ArtidError(problem)
    try:
        model.load_state_dict(dict(given), strict=not ignore)
    except Exception as exc:  # noqa: BLE001 - dtype or other torch complaints: name the file
        raise ArtidError(f"{path}: cannot be loaded into {what} ({first_line(exc)})") from None


def summarise_failure(
    exc: BaseException, path: str | Path, what: str, target: Mapping[str, Any]
) -> ArtidError:
    """The error for a library's loader (timm's) that failed on ``path``: the mismatch against
    ``target`` (the model's own state dict) when there is one, else the first line of ``exc``."""
    try:
        state = read_state_dict(path)
    except ArtidError as unreadable:
        return unreadable
    return ArtidError(
        mismatch(path, what, state, target)
        or f"{path}: cannot be loaded as weights of {what} ({first_line(exc)})"
    )
