"""Batched, resumable, multi-scale descriptor extraction (METHOD.md section 3), and local features.

>>> from artid.extraction import ExtractionSettings, extract_lists, met_sources
>>> extract_lists(met_sources(root, ["database", "val"]), emb, "runs/desc", ExtractionSettings())

The names are loaded on first use, so that ``artid.extraction.local`` (SIFT keypoints, no torch)
can be imported by retrieval without loading the torch side of extraction.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "embed_arrays": "artid.extraction.embedding",
    "BatchEmbedder": "artid.extraction.run",
    "ExtractionSettings": "artid.extraction.settings",
    "extract_list": "artid.extraction.run",
    "extract_lists": "artid.extraction.run",
    "ImageList": "artid.extraction.sources",
    "folder_source": "artid.extraction.sources",
    "list_source": "artid.extraction.sources",
    "met_sources": "artid.extraction.sources",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'artid.extraction' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
