"""Run an exported embedder in a graph runtime: ONNX Runtime or OpenVINO, FP32 / bf16 / int8.

:class:`RuntimeEmbedder` is called as an :class:`~artid.models.embedder.Embedder` is (``model(x)``,
``model.embed_multiscale(x, scales)``, ``dim``, ``spec``), so the batched path of
:mod:`artid.extraction.embedding` runs it unchanged; multi-scale resizes the batch in torch exactly
as the embedder does and runs the graph (dynamic height and width) at each scale.

Measured on EfficientNet-Lite0 (2 threads of an AMX Xeon, batch 4, 256 x 192): OpenVINO FP32 was
1.2x ONNX Runtime's FP32 and OpenVINO bf16 2x OpenVINO FP32; ONNX Runtime has no bf16 CPU kernels,
and OpenVINO mis-read ONNX Runtime's int8 QDQ graph (cosine 0.2 to FP32), so bf16 runs in
OpenVINO and int8 in ONNX Runtime (:data:`DEFAULT_RUNTIME`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models.embedder import MULTI_SCALE
from artid.models.export import INPUT, cached_model, require

RUNTIMES = ("torch", "onnx", "openvino")
#: The runtime each precision runs in when the runtime is ``auto`` (measured fastest; see above).
DEFAULT_RUNTIME = {"fp32": "openvino", "bf16": "openvino", "int8": "onnx"}
#: Precisions each graph runtime computes.
SUPPORTED = {"onnx": ("fp32", "int8"), "openvino": ("fp32", "bf16"),
             "torch": ("fp32", "bf16")}
EXTRA = {"onnx": "onnx", "openvino": "openvino"}


def check_runtime(runtime: str, precision: str) -> str:
    """The runtime to use (``auto`` resolved); a short error for an unknown or unsupported pair."""
    if runtime == "auto":
        return DEFAULT_RUNTIME[precision]
    if runtime not in RUNTIMES:
        raise ArtidError(f"--runtime: unknown {runtime!r}; expected auto or one of "
                         f"{', '.join(RUNTIMES)}")
    if precision not in SUPPORTED[runtime]:
        raise ArtidError(f"--runtime {runtime} does not compute --precision {precision}; use "
                         f"--runtime {DEFAULT_RUNTIME[precision]} (or auto)")
    return runtime


def _session(runtime: str, path: Path, precision: str, threads: int) -> Callable[[np.ndarray],
                                                                                np.ndarray]:
    """A function (B, 3, H, W) float32 -> (B, D) running the ONNX file ``path``."""
    if runtime == "onnx":
        ort = require("onnxruntime", EXTRA[runtime])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # not the warnings about initializers it folded
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda x: sess.run(None, {INPUT: x})[0]
    ov = require("openvino", EXTRA[runtime])
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads)}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    return lambda x: np.asarray(request.infer({0: x})[0]).copy()


class RuntimeEmbedder:
    """An embedder exported to ONNX and run by ONNX Runtime or OpenVINO on the CPU.

    Args:
        emb: the embedder (exported once per weights and spec; not modified).
        runtime: ``onnx`` or ``openvino``.
        precision: ``fp32``, ``bf16`` (OpenVINO) or ``int8`` (ONNX Runtime).
        cache: folder of the exported files (beside the descriptors, or in the bundle).
        calibration: for int8, a function yielding (1, 3, H, W) float32 images in [0, 1].
        calibration_id: what identifies the calibration images (part of the int8 file's key).
        threads: compute threads (default: torch's).
    """

    def __init__(self, emb: Any, runtime: str, precision: str, cache: str | Path,
                 calibration: Callable[[], Iterable[np.ndarray]] | None = None,
                 calibration_id: str = "", threads: int | None = None) -> None:
        runtime = check_runtime(runtime, precision)
        if runtime == "torch":
            raise ArtidError("RuntimeEmbedder runs a graph runtime (onnx or openvino)")
        require(*(("onnxruntime", "onnx") if runtime == "onnx" else ("openvino", "openvino")))
        self.path = cached_model(emb, cache, precision, calibration, calibration_id)
        self.runtime, self.precision = runtime, precision
        self.dim = int(emb.dim)
        self.spec = emb.spec
        self._run = _session(runtime, self.path, precision, threads or torch.get_num_threads())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, D) L2-normalised float32 descriptors."""
        v = self._run(np.ascontiguousarray(x.detach().float().cpu().numpy()))
        return F.normalize(torch.from_numpy(np.asarray(v, dtype=np.float32)), dim=-1)

    def embed_multiscale(self, x: torch.Tensor,
                         scales: Sequence[float] = MULTI_SCALE) -> torch.Tensor:
        """L2(sum over scales of the descriptor of the bilinearly resized batch), as
        :meth:`Embedder.embed_multiscale`."""
        total = None
        for s in scales:
            xs = x if s == 1 else F.interpolate(x, scale_factor=float(s), mode="bilinear",
                                                align_corners=False)
            v = self(xs)
            total = v if total is None else total + v
        if total is None:
            raise ArtidError("scales must not be empty")
        return F.normalize(total, dim=-1)
