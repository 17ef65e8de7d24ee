"""Batched, resumable, multi-scale descriptor extraction (METHOD.md section 3).

>>> from artid.extraction import ExtractionSettings, extract_lists, met_sources
>>> extract_lists(met_sources(root, ["database", "val"]), emb, "runs/desc", ExtractionSettings())
"""

from artid.extraction.embedding import embed_arrays
from artid.extraction.run import BatchEmbedder, ExtractionSettings, extract_list, extract_lists
from artid.extraction.sources import ImageList, folder_source, list_source, met_sources

__all__ = [
    "BatchEmbedder", "ExtractionSettings", "ImageList", "embed_arrays", "extract_list", "extract_lists",
    "folder_source", "list_source", "met_sources",
]
