"""The entry points a library user needs, importable from ``artid`` itself.

Recognise photos with a bundle::

    rec = artid.load_bundle("runs/bundle")            # the bundle's model, pipeline, threshold
    answer = rec.recognize_paths(["photo.jpg"])[0]     # .accepted, .prediction.artwork, .confidence

Describe a folder of images, then fit, save, load and evaluate a pipeline on descriptor files::

    db = artid.extract_folder("collection/", "runs/desc/database")   # a DescriptorSet, resumable
    pipe = artid.KNNPipeline(artid.PipelineConfig(whiten="none", k=3, tau=30)).fit(db.matrix,
    labels)
    pipe.save("runs/pipe"); pipe = artid.KNNPipeline.load("runs/pipe")
    results = artid.evaluate(database, val, test, "runs/eval")       # GAP / GAP- / ACC and a report

Everything here is loaded on first use, so ``import artid`` stays light (no torch until a model is
needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from artid.descriptors import DescriptorSet
    from artid.service.recognizer import Recognizer


def load_bundle(path: str | Path, device: str = "auto", rerank: int | None = None) -> Recognizer:
    """A bundle (``artid index build``) ready to recognise photos: its model and its pipeline.

    Args:
        path: the bundle folder.
        device: torch device of the model (``auto``: CUDA when present).
        rerank: K of re-ranking at recognition time (None: the bundle's own; 0: off).
    """
    from artid.devices import resolve_device
    from artid.service.recognizer import Recognizer

    return Recognizer.from_bundle(path, device=resolve_device(device), rerank=rerank)


def extract_folder(
    folder: str | Path,
    out: str | Path,
    model: str = "efficientnet_lite0",
    scales: tuple[float, ...] | None = None,
    max_size: int | None = 500,
    device: str = "auto",
    weights: str | Path | None = None,
) -> DescriptorSet:
    """Descriptors of every image under ``folder`` (sorted by path) into ``<out>.npy`` / ``.json``.

    As ``artid extract --images``: multi-scale by default, resumable (an interrupted call started
    again keeps the finished shards), unreadable images listed in the result's ``failures``.

    Args:
        folder: a folder of images (searched recursively).
        out: the output path without suffix.
        model: a backbone name or an artid checkpoint (see :func:`artid.models.build_embedder`).
        scales: image scales whose descriptors are summed (default: the multi-scale pyramid).
        max_size: the longer image side in pixels.
        device: torch device (``auto``: CUDA when present).
        weights: a local weights file for a backbone name.
    """
    from artid.devices import resolve_device
    from artid.extraction.run import extract_list
    from artid.extraction.settings import ExtractionSettings
    from artid.extraction.sources import folder_source
    from artid.models import build_embedder

    settings = (
        ExtractionSettings(max_size=max_size)
        if scales is None
        else ExtractionSettings(scales=tuple(scales), max_size=max_size)
    )
    emb = build_embedder(model, weights=weights)
    return extract_list(folder_source(folder), emb, out, settings, device=resolve_device(device))


def evaluate(
    database: Any, val: Any, test: Any, out: str | Path | None = None, **options: Any
) -> dict:
    """The Met protocol on descriptor sets (:func:`artid.evaluation.run.evaluate`): the pipeline
    fitted on the database and tuned on ``val``, GAP / GAP- / ACC on ``test``, a run folder at
    ``out`` (``results.json``, ``predictions_test.csv``, the pipeline, a report)."""
    from artid.evaluation.run import evaluate as run

    return run(database, val, test, out, **options)
