"""Export an embedder with its pooling to ONNX, quantise it to int8, and cache the files.

The graph is :meth:`Embedder.forward`: pixels in [0, 1] (B, 3, H, W) -> normalisation, trunk,
pooling (GeM or the ViT's token pooling), L2, projector -> (B, D), with batch, height and width
dynamic, so one file serves every image size and every scale of a multi-scale pyramid (the
resizing stays in torch: :class:`artid.models.runtime.RuntimeEmbedder`).

A cached file is named by :func:`model_key`: a hash of the model's weights and spec, the precision,
the exporter's versions and (int8) the calibration images, so a changed model or checkpoint gets a
new file and an unchanged one is reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artid.errors import ArtidError
from artid.files import atomic_path

log = logging.getLogger(__name__)

OPSET = 17
INPUT, OUTPUT = "images", "descriptors"
#: Probe size of the export trace (any size works afterwards: the axes are dynamic).
PROBE = (2, 3, 224, 192)


def require(module: str, extra: str) -> Any:
    """Import an optional runtime module, or a short error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ArtidError(
            f"{module} is not installed (needed here: {e}); pip install 'artid[{extra}]'"
        ) from None


def model_key(emb: torch.nn.Module, precision: str, calibration: str = "") -> str:
    """Hex key of an exported model: weights, buffers and spec, precision, calibration, versions."""
    h = hashlib.sha256()
    spec = getattr(emb, "spec", {})
    h.update(json.dumps([spec, precision, calibration, OPSET, torch.__version__],
                        sort_keys=True, default=str).encode())
    for name, t in emb.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _exportable_interpolation() -> Iterator[None]:
    """timm resamples a ViT's position embedding bicubically with antialiasing, which ONNX has no
    operator for; during the export it runs without, the same for a grid that grows (inputs at
    least the model's native size: 224 px for most ViTs), slightly different for one that
    shrinks."""
    try:
        import timm.layers.pos_embed as pos_embed
    except ImportError:  # no timm ViT here
        yield
        return
    original = pos_embed.F

    class Shim:
        def __getattr__(self, name: str) -> Any:
            return getattr(original, name)

        @staticmethod
        def interpolate(*args: Any, **kwargs: Any) -> torch.Tensor:
            kwargs.pop("antialias", None)
            return original.interpolate(*args, **kwargs)

    pos_embed.F = Shim()  # type: ignore[assignment]
    try:
        yield
    finally:
        pos_embed.F = original


def export_onnx(emb: torch.nn.Module, path: str | Path) -> Path:
    """Write ``emb``'s forward (float32, eval mode) as an ONNX file with dynamic B, H, W."""
    require("onnx", "onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = emb.eval().float()
    probe = torch.rand(*PROBE, generator=torch.Generator().manual_seed(0))
    import warnings

    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings(), \
            _exportable_interpolation():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (probe,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch", 2: "height", 3: "width"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    return path


def head_nodes(path: Path) -> list[str]:
    """Names of the graph's nodes from its last convolution on: the head and the pooling, which
    int8 quantisation leaves in float (GeM's cube magnifies their rounding)."""
    onnx = require("onnx", "onnx")
    nodes = onnx.load(str(path)).graph.node
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    return [n.name for n in nodes[convs[-1]:]] if convs else []


def quantize_int8(fp32: Path, path: Path, calibration: Iterable[np.ndarray]) -> Path:
    """Static post-training int8 quantisation calibrated by min / max on the images given
    ((1, 3, H, W) float32 arrays in [0, 1]): QDQ, per-channel int8 weights, uint8 activations
    (ONNX Runtime's fused u8s8 kernels: 1.6-1.9x its FP32 on EfficientNet-Lite0, where symmetric
    int8 activations ran slower than FP32 for no closer descriptors), the last convolution and
    the pooling kept in float (:func:`head_nodes`).
    """
    require("onnxruntime", "onnx")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    batches = iter(calibration)

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(batches, None)
            return None if x is None else {INPUT: np.ascontiguousarray(x, dtype=np.float32)}

    from onnxruntime.quantization.shape_inference import quant_pre_process

    with atomic_path(path) as tmp:
        pre = tmp.with_name(tmp.stem + ".pre.onnx")  # BatchNorm folded, shapes inferred
        try:
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=head_nodes(pre),
            )
        finally:
            pre.unlink(missing_ok=True)
    return path


def cached_model(
    emb: torch.nn.Module,
    cache: str | Path,
    precision: str = "fp32",
    calibration: Callable[[], Iterable[np.ndarray]] | None = None,
    calibration_id: str = "",
) -> Path:
    """The ONNX file of ``emb`` at ``precision`` in the folder ``cache``, exported (and for int8
    quantised with the images ``calibration()`` yields) unless a file of the same key is there.

    ``fp32`` and ``bf16`` share the FP32 graph (a runtime computes it in bf16).
    """
    cache = Path(cache)
    fp32 = cache / f"model-{model_key(emb, 'fp32')}.onnx"
    if not fp32.is_file():
        log.info("exporting the model to %s", fp32)
        export_onnx(emb, fp32)
    if precision != "int8":
        return fp32
    if calibration is None:
        raise ArtidError("--precision int8 needs calibration images (a database image list)")
    q = cache / f"model-{model_key(emb, 'int8', calibration_id)}.int8.onnx"
    if not q.is_file():
        log.info("quantising the model to int8: %s", q)
        quantize_int8(fp32, q, calibration())
    return q
