"""artid: instance-level recognition of artworks (the Met dataset benchmark and a recognition
service).

The public entry points (:mod:`artid.api`; each loaded on first use)::

    artid.load_bundle(path)                    recognise photos with an index bundle
    artid.extract_folder(folder, out)          descriptors of a folder of images
    artid.KNNPipeline, artid.PipelineConfig,   fit, save, load a recognition pipeline
    artid.RerankConfig
    artid.load_descriptors(path)               descriptor files written by extraction
    artid.evaluate(database, val, test, out)   the Met protocol's numbers and a run folder
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time each loads on first use
    from artid.api import evaluate, extract_folder, load_bundle
    from artid.descriptors import load_descriptors
    from artid.retrieval.config import PipelineConfig
    from artid.retrieval.pipeline import KNNPipeline
    from artid.retrieval.rerank import RerankConfig

__version__ = "0.1.0"

_NAMES = {
    "load_bundle": "artid.api",
    "extract_folder": "artid.api",
    "evaluate": "artid.api",
    "KNNPipeline": "artid.retrieval.pipeline",
    "PipelineConfig": "artid.retrieval.config",
    "RerankConfig": "artid.retrieval.rerank",
    "load_descriptors": "artid.descriptors",
}

__all__ = [
    "KNNPipeline",
    "PipelineConfig",
    "RerankConfig",
    "__version__",
    "evaluate",
    "extract_folder",
    "load_bundle",
    "load_descriptors",
]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'artid' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
