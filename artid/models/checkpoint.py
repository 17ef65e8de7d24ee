"""Artid checkpoint files: a model that rebuilds itself from the file alone.

A checkpoint is a ``torch.save`` of a plain dict, readable with ``torch.load(weights_only=True)``
(no pickled classes)::

    {"format": "artid-checkpoint/1", "spec": Embedder.spec, "state_dict": {...}, "meta": {...}}

``spec`` names the backbone architecture (rebuilt without downloading anything) and the head
(projector size); ``state_dict`` holds every weight, GeM's ``p`` included; ``meta`` is the
caller's JSON-able information (training settings, epoch, validation accuracy, ...).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from artid.errors import ArtidError
from artid.files import atomic_path
from artid.models.backbones import create_architecture
from artid.models.embedder import Embedder
from artid.models.state_dicts import first_line, load_weights

FORMAT = "artid-checkpoint/1"


def save_checkpoint(path: str | Path, emb: Embedder, meta: dict[str, Any] | None = None) -> Path:
    """Write ``emb`` to ``path`` atomically (temporary file in the same folder, then rename).

    Args:
        path: destination file (``.pt`` by convention).
        emb: the embedder.
        meta: JSON-able information to keep with it.

    Returns:
        The path written.
    """
    path = Path(path)
    meta = dict(meta or {})
    try:
        json.dumps(meta)
    except TypeError as exc:
        raise ArtidError(f"checkpoint meta for {path} must be JSON-able ({exc})") from None
    spec = emb.spec
    spec.pop("checkpoint", None)
    state = {k: v.detach().to("cpu").clone() for k, v in emb.state_dict().items()}
    payload = {"format": FORMAT, "spec": spec, "state_dict": state, "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint's dict (``format``, ``spec``, ``state_dict``, ``meta``).

    Raises:
        ArtidError: missing file, not a torch file, or not an artid checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtidError(f"checkpoint {path} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types: name the file
        raise ArtidError(
            f"{path}: cannot be read as an artid checkpoint ({first_line(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtidError(
            f"{path}: not an artid checkpoint (expected format {FORMAT!r}); "
            "plain backbone weights go to --weights with a backbone name"
        )
    for key in ("spec", "state_dict"):
        if key not in payload:
            raise ArtidError(f"{path}: checkpoint lacks {key!r}")
    return payload


def load_checkpoint(path: str | Path) -> Embedder:
    """Rebuild the embedder stored in ``path`` (eval mode, CPU).

    Its ``spec`` gains ``checkpoint``: the file's name and SHA-256, so that descriptors record
    exactly which weights produced them.
    """
    path = Path(path)
    payload = read_checkpoint(path)
    spec = payload["spec"]
    try:
        backbone = create_architecture(spec["backbone"])
        projector = spec.get("projector")
        p = float(spec.get("gem_p", 3.0))
    except (KeyError, TypeError, ValueError):
        raise ArtidError(f"{path}: malformed model spec in checkpoint") from None
    strip_classifier(backbone.model)
    emb = Embedder(backbone, projector=False, p=p)
    if projector is not None:
        emb.projector = nn.Linear(emb.num_features, int(projector))
    state = payload["state_dict"]
    if not isinstance(state, dict):
        raise ArtidError(f"{path}: the checkpoint's state_dict is a {type(state).__name__}")
    load_weights(emb, state, path, "the model its spec describes")
    emb.origin = {"file": path.name, "sha256": file_sha256(path)}
    return emb.eval()


def strip_classifier(model: nn.Module) -> None:
    """Remove a timm model's classifier in place (the trunk never uses it; it only costs memory)."""
    reset = getattr(model, "reset_classifier", None)
    if callable(reset):
        reset(0)
