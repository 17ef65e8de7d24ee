"""Lower-precision inference on the CPU: which precisions its matrix units make fast, and bf16.

``fp32`` is exact. ``bf16`` (bfloat16 matrix products, float32 accumulation) pays where the CPU has
AVX512-BF16 or AMX-BF16; ``int8`` (statically quantised graph, :mod:`artid.models.export`) where
it has VNNI (AVX512-VNNI, AVX-VNNI) or AMX-INT8. Elsewhere both are emulated, slower than FP32, and
:func:`resolve_precision` falls back to ``fp32`` with a warning. The flags are those the kernel
reports in ``/proc/cpuinfo`` (Linux); on other systems no unit is assumed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from artid.errors import ArtidError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
#: CPU flags (any one) that make each lower precision fast.
UNITS = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where ``/proc/cpuinfo`` cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def resolve_precision(
    precision: str, device: torch.device | str = "cpu", flags: Iterable[str] | None = None
) -> str:
    """The precision to compute in: ``precision`` where the CPU has units for it, else ``fp32``.

    Args:
        precision: ``fp32``, ``bf16`` or ``int8``.
        device: a CUDA device keeps bf16 (int8 is a CPU graph-runtime precision).
        flags: the CPU's flags (default: :func:`cpu_flags`).

    Raises:
        ArtidError: an unknown precision, or int8 on a GPU.
    """
    if precision not in PRECISIONS:
        raise ArtidError(f"--precision: unknown {precision!r}; expected one of "
                         f"{', '.join(PRECISIONS)}")
    if precision == "fp32":
        return precision
    if torch.device(device).type != "cpu":
        if precision == "int8":
            raise ArtidError("--precision int8 runs on the CPU (--device cpu)")
        return precision
    have = set(cpu_flags() if flags is None else flags)
    if not have.intersection(UNITS[precision]):
        log.warning("--precision %s: this CPU has none of %s; computing in fp32 instead",
                    precision, ", ".join(UNITS[precision]))
        return "fp32"
    return precision


def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``; empty where unknown)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("vendor_id"):
            return line.partition(":")[2].strip()
    return ""


def peak_flops_per_cycle(
    flags: Iterable[str] | None = None, vendor: str | None = None
) -> dict[str, int]:
    """FLOP per cycle per core of the CPU's widest units (2 FMA ports assumed, as on Xeons).

    ``fp32``: 32 with AVX2 / FMA, 64 with AVX-512 (32 on AMD Zen 4, which runs each 512-bit
    instruction on its two 256-bit halves: an AMD CPU with AVX-512 but without Zen 5's AVX-VNNI);
    ``bf16``: twice the FP32 rate with AVX512-BF16, 1024 with AMX-BF16 (a 16x32 by 32x16 tile
    product per 16 cycles); ``int8``: four times the FP32 rate in ops with VNNI, 2048 with AMX-INT8.
    """
    have = set(cpu_flags() if flags is None else flags)
    fp32 = 64 if "avx512f" in have else 32 if "avx2" in have else 16 if "avx" in have else 8
    zen4 = (cpu_vendor() if vendor is None else vendor) == "AuthenticAMD" and "avx_vnni" not in have
    if fp32 == 64 and zen4:
        fp32 = 32
    out = {"fp32": fp32}
    if "amx_bf16" in have:
        out["bf16"] = 1024
    elif "avx512_bf16" in have:
        out["bf16"] = 2 * fp32
    if "amx_int8" in have:
        out["int8"] = 2048
    elif have.intersection(("avx512_vnni", "avx_vnni")):
        out["int8"] = 4 * fp32
    return out


class AutocastEmbedder:
    """An embedder run under ``torch.autocast`` in bfloat16: same calls, float32 descriptors.

    Args:
        model: the (optimised, eval-mode) :class:`~artid.models.embedder.Embedder`.
        device: where it runs (the autocast device type).
    """

    def __init__(self, model: Any, device: torch.device | str = "cpu") -> None:
        self.model = model
        self.device_type = torch.device(device).type
        self.dim = model.dim
        self.spec = model.spec

    def _autocast(self) -> Any:
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return F.normalize(self.model(x).float(), dim=-1)

    def embed_multiscale(
        self, x: torch.Tensor, scales: Sequence[float] | None = None
    ) -> torch.Tensor:
        with self._autocast():
            if scales is None:
                v = self.model.embed_multiscale(x)
            else:
                v = self.model.embed_multiscale(x, tuple(scales))
        return F.normalize(v.float(), dim=-1)
