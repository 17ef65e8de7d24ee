"""The model extraction computes descriptors with: torch FP32, torch bf16 (autocast) or an
exported graph in ONNX Runtime / OpenVINO (:mod:`artid.models.runtime`), chosen by the runtime and
precision of the extraction settings (the precision falls back to FP32 on a CPU without units for
it: :func:`artid.models.precision.resolve_precision`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models.precision import AutocastEmbedder, resolve_precision
from artid.models.runtime import RuntimeEmbedder, check_runtime

#: Images of a list that calibrate int8 quantisation (each at every scale of the pyramid).
CALIBRATION_IMAGES = 200
#: Sub-folder of the descriptor output (or of a bundle) that caches exported models.
RUNTIME_CACHE = ".runtime"


def calibration_images(
    files: Sequence[Path], max_size: int | None, scales: Sequence[float],
    n: int = CALIBRATION_IMAGES,
) -> tuple[Callable[[], Iterator[np.ndarray]], str]:
    """(a function yielding the first ``n`` readable images of ``files`` as (1, 3, H, W) float32
    in [0, 1] at each scale, an id of those images and settings for the int8 model's key)."""
    from artid.extraction.decode import decode_stream

    chosen = list(files[:n])
    ident = hashlib.sha256(json_id(chosen, max_size, scales).encode()).hexdigest()[:16]

    def images() -> Iterator[np.ndarray]:
        stream = decode_stream(list(range(len(chosen))), chosen, max_size, 0)
        try:
            for item in stream:
                if item.pixels is None:
                    continue
                x = torch.from_numpy(np.array(item.pixels)).permute(2, 0, 1)[None]
                x = x.float().div_(255.0)
                for s in scales:
                    xs = x if s == 1 else F.interpolate(
                        x, scale_factor=float(s), mode="bilinear", align_corners=False)
                    yield xs.numpy()
        finally:
            stream.close()

    return images, ident


def json_id(files: Sequence[Path], max_size: int | None, scales: Sequence[float]) -> str:
    return "\n".join([str(max_size), ",".join(str(float(s)) for s in scales),
                      *(str(f) for f in files)])


def inference_model(
    model: Any, runtime: str, precision: str, device: torch.device, cache: Path | None,
    calibration: tuple[Callable[[], Iterator[np.ndarray]], str] | None = None,
) -> Any:
    """``model`` itself (torch FP32), wrapped in bf16 autocast, or exported to a graph runtime.

    Args:
        model: the optimised eval-mode embedder.
        runtime: ``torch``, ``onnx``, ``openvino`` or ``auto``; precision: ``fp32``, ``bf16``,
            ``int8`` (resolved against the CPU's units here).
        cache: folder of exported models (a graph runtime only).
        calibration: (images, id) of :func:`calibration_images` (int8 only).
    """
    precision = resolve_precision(precision, device)
    runtime = check_runtime(runtime, precision)
    if runtime != "torch" and device.type != "cpu":
        raise ArtidError(f"--runtime {runtime} runs on the CPU (--device cpu); on a GPU use "
                         "--runtime torch")
    if runtime == "torch":
        return AutocastEmbedder(model, device) if precision == "bf16" else model
    images, ident = calibration if calibration is not None else (None, "")
    return RuntimeEmbedder(model, runtime, precision, cache or Path(RUNTIME_CACHE), images, ident)
