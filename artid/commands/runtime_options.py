"""``--runtime`` and ``--precision``: what computes descriptors (extract, recognize, serve)."""

from __future__ import annotations

import argparse

from artid.models.precision import PRECISIONS
from artid.models.runtime import RUNTIMES


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        default="torch",
        choices=["auto", *RUNTIMES],
        help="what runs the network: torch, or the model exported to ONNX and run by ONNX "
        "Runtime (onnx; pip install 'artid[onnx]') or OpenVINO (openvino; pip install "
        "'artid[onnx,openvino]'), CPU only; auto: the one measured fastest for --precision",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help="fp32; bf16 (torch autocast or OpenVINO; CPUs with AVX512-BF16 / AMX); int8 (ONNX "
        "Runtime, calibrated on the first 200 images of the first list; CPUs with VNNI / AMX). "
        "Without the CPU's units: fp32, with a warning",
    )
