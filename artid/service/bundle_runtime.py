"""What describes a bundle's images: the runtime and precision ``index build`` used, recorded in
the bundle, so that ``index add``, ``artid recognize`` and ``artid serve`` describe new images
and photos as its database was described.

The record sits in the manifest's ``extraction`` (absent: torch FP32, as bundles built before
it): ``runtime`` (resolved: ``auto`` is written as the runtime it chose), ``precision`` (after
the CPU fallback) and, for int8, ``int8_calibration``: the id of the database images the
quantised model was calibrated on. Exported models are cached in ``<bundle>/.runtime``, so the
service finds the int8 model of the build without database images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artid.errors import ArtidError

log = logging.getLogger(__name__)

RUNTIME_KEY = "runtime"
PRECISION_KEY = "precision"
CALIBRATION_KEY = "int8_calibration"


@dataclass(frozen=True)
class BundleRuntime:
    """A bundle's runtime and precision (and int8 calibration id), as recorded."""

    runtime: str = "torch"
    precision: str = "fp32"
    calibration_id: str = ""

    def record(self) -> dict[str, str]:
        """The manifest's entries (none for torch FP32)."""
        if (self.runtime, self.precision) == ("torch", "fp32"):
            return {}
        out = {RUNTIME_KEY: self.runtime, PRECISION_KEY: self.precision}
        if self.precision == "int8":
            out[CALIBRATION_KEY] = self.calibration_id
        return out

    def describe(self) -> str:
        return f"--runtime {self.runtime} --precision {self.precision}"


def recorded(extraction: dict[str, Any]) -> BundleRuntime:
    """The runtime a bundle's ``extraction`` record names (torch FP32 when it names none)."""
    return BundleRuntime(
        str(extraction.get(RUNTIME_KEY, "torch")),
        str(extraction.get(PRECISION_KEY, "fp32")),
        str(extraction.get(CALIBRATION_KEY, "")),
    )


def resolved(runtime: str, precision: str, device: Any) -> BundleRuntime:
    """``runtime`` / ``precision`` as they will compute on ``device``: the precision after the
    CPU's fallback, ``auto`` resolved (errors for a pair no runtime computes)."""
    import torch

    from artid.models.precision import resolve_precision
    from artid.models.runtime import check_runtime

    precision = resolve_precision(precision, torch.device(device))
    runtime = check_runtime(runtime, precision)
    if runtime != "torch" and torch.device(device).type != "cpu":
        raise ArtidError(f"--runtime {runtime} runs on the CPU (--device cpu); on a GPU use "
                         "--runtime torch")
    return BundleRuntime(runtime, precision)


def calibrated(
    chosen: BundleRuntime, files: Sequence[Path], max_size: int | None, scales: Sequence[float]
) -> tuple[BundleRuntime, tuple[Callable[[], Iterator[np.ndarray]], str] | None]:
    """For int8: the runtime with the id of its calibration images (the first database images)
    and the calibration to quantise with; other precisions need none."""
    if chosen.precision != "int8":
        return chosen, None
    from artid.extraction.inference import calibration_images

    images, ident = calibration_images(files, max_size, scales)
    return BundleRuntime(chosen.runtime, chosen.precision, ident), (images, ident)


def serving(bundle: Path, runtime: BundleRuntime) -> tuple[Callable[[], Iterator[np.ndarray]],
                                                           str] | None:
    """The calibration to pass for a bundle's int8 model: its id, and images that say the model
    is missing (the service has no database images to quantise with)."""
    if runtime.precision != "int8":
        return None
    if not runtime.calibration_id:
        raise ArtidError(
            "--precision int8 is calibrated on database images: build the bundle with "
            "`artid index build ... --precision int8`, or serve with fp32 or bf16"
        )

    def missing() -> Iterator[np.ndarray]:
        raise ArtidError(
            f"bundle {bundle}: its int8 model is not in {bundle / '.runtime'} (removed?); "
            "build the bundle again with --precision int8, or serve with fp32 or bf16"
        )

    return missing, runtime.calibration_id


def chosen_for_serving(
    record: BundleRuntime, runtime: str | None, precision: str | None, device: Any
) -> BundleRuntime:
    """What describes the photos of a served bundle: the bundle's runtime and precision
    (``record``) where ``runtime`` / ``precision`` are None, else those asked for, with a warning
    when they differ from the database's (the descriptors then differ a little from those the
    bundle was validated with). A graph runtime runs on the CPU only: on a GPU, torch."""
    import torch

    on_cpu = torch.device(device).type == "cpu"
    if runtime is None and precision is None and (on_cpu or record.runtime == "torch"):
        return record
    default_runtime = record.runtime if on_cpu else "torch"
    default_precision = record.precision if on_cpu or record.precision != "int8" else "fp32"
    asked = resolved(runtime or default_runtime, precision or default_precision, device)
    if (asked.runtime, asked.precision) != (record.runtime, record.precision):
        log.warning("the bundle's images were described with %s; photos are described with %s",
                    record.describe(), asked.describe())
    if asked.precision == "int8" and record.precision == "int8":
        return BundleRuntime(asked.runtime, "int8", record.calibration_id)
    return asked
