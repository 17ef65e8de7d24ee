"""How descriptors are computed and how fast: :class:`ExtractionSettings`, recorded in every
descriptor manifest and checked when a run resumes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from artid.data.images import DEFAULT_MAX_SIZE
from artid.errors import ArtidError
from artid.localisation.crop import CropSettings
from artid.models.embedder import MULTI_SCALE

DTYPES = {"float32": torch.float32, "float16": torch.float16}
# : Image lists of studio photos: :func:`extract_lists` never crops them (the crop is for query
# photos).
UNCROPPED_LISTS = ("database", "mini")


@dataclass(frozen=True)
class ExtractionSettings:
    """How descriptors are computed (first three) and how fast (the rest).

    Attributes:
        scales: image-pyramid factors; ``(1,)`` is single-scale.
        max_size: longer-side bound of the input images (None: original size).
        dtype: ``float32`` or ``float16`` (GPU) computation; descriptors are stored as float32.
        batch_size: images per forward pass (images of one size only).
        workers: decoding processes (0: decode in the main process).
        shard_size: images per shard of resumable work.
        fold_bn, channels_last: inference optimisations (checked not to change descriptors).
        crop: crop each photo to its artwork before describing it (:mod:`artid.localisation`);
            None describes the whole photo. Recorded in the manifest only when set.
        runtime, precision: ``torch`` / ``onnx`` / ``openvino`` / ``auto`` and ``fp32`` / ``bf16``
            / ``int8`` (:mod:`artid.extraction.inference`); recorded when not torch FP32.
    """

    scales: tuple[float, ...] = MULTI_SCALE
    max_size: int | None = DEFAULT_MAX_SIZE
    dtype: str = "float32"
    batch_size: int = 8
    workers: int = 1
    shard_size: int = 256
    fold_bn: bool = True
    channels_last: bool = True
    crop: CropSettings | None = None
    runtime: str = "torch"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if not self.scales or not all(s > 0 for s in self.scales):
            raise ArtidError(f"scales must be one or more positive factors, got {self.scales!r}")
        if self.max_size is not None and self.max_size < 0:
            raise ArtidError(
                f"max_size must be None, 0 (original size) or positive, got {self.max_size}"
            )
        for name in ("batch_size", "workers", "shard_size"):
            least = 0 if name == "workers" else 1
            if getattr(self, name) < least:
                raise ArtidError(f"{name} must be at least {least}, got {getattr(self, name)}")

    def descriptor_settings(self) -> dict[str, Any]:
        """The settings that define the descriptors (recorded in manifests, checked on resume)."""
        out: dict[str, Any] = {
            "scales": [float(s) for s in self.scales],
            "max_size": self.max_size,
            "dtype": self.dtype,
        }
        if (
            self.crop is not None
        ):  # absent = the whole photo (and manifests written before crops existed)
            out["crop"] = self.crop.spec()
        if (self.runtime, self.precision) != ("torch", "fp32"):  # absent: torch FP32
            out["runtime"], out["precision"] = self.runtime, self.precision
        return out

    def for_list(self, name: str) -> ExtractionSettings:
        """The settings for the image list ``name``: no crop for the studio photos
        (:data:`UNCROPPED_LISTS`)."""
        return (
            replace(self, crop=None) if self.crop is not None and name in UNCROPPED_LISTS else self
        )
