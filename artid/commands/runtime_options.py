"""``--runtime`` and ``--precision``: what computes descriptors (extract, index build, recognize,
serve)."""

from __future__ import annotations

import argparse

from artid.models.precision import PRECISIONS
from artid.models.runtime import RUNTIMES


def add_runtime_arguments(parser: argparse.ArgumentParser, served: bool = False) -> None:
    """The two options; ``served``: for a bundle's photos (recognize, serve), whose default is
    what the bundle's images were described with (``index build --runtime / --precision``)."""
    default = " (default: as the bundle's images were described)" if served else ""
    parser.add_argument(
        "--runtime",
        default=None if served else "torch",
        choices=["auto", *RUNTIMES],
        help="what runs the network: torch, or the model exported to ONNX and run by ONNX "
        "Runtime (onnx; pip install 'artid[onnx]') or OpenVINO (openvino; pip install "
        "'artid[onnx,openvino]'), CPU only; auto: the one measured fastest for --precision"
        + default,
    )
    int8 = (
        "int8 only for a bundle built with it"
        if served
        else "int8 (ONNX Runtime, calibrated on the first 200 images of the first list, or of "
        "the collection for index build; CPUs with VNNI / AMX)"
    )
    parser.add_argument(
        "--precision",
        default=None if served else "fp32",
        choices=list(PRECISIONS),
        help=f"fp32; bf16 (torch autocast or OpenVINO; CPUs with AVX512-BF16 / AMX); {int8}. "
        "Without the CPU's units: fp32, with a warning" + default,
    )
