"""What a recognizer loads of a bundle: its models, its attributes run, and the pipeline it serves
with the re-ranking asked for at run time."""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

from artid.attributes.tagger import Tagger
from artid.errors import ArtidError
from artid.retrieval.pipeline import KNNPipeline
from artid.service.bundle import BundleData
from artid.service.reranking import missing_features

log = logging.getLogger(__name__)

#: The form of a bundle's reference to its attributes run (nothing outside that folder is read).
ATTRIBUTES_REF_RE = re.compile(r"^attributes/[0-9a-f]{32}$")


def serving_pipeline(data: BundleData, rerank: int | None) -> KNNPipeline:
    """The bundle's pipeline with the re-ranking asked for at run time: None = the bundle's,
    0 = off (the kNN-only answer), K > 0 = the bundle's stage verifying K neighbours.

    Raises:
        ArtidError: K > 0 for a bundle built without re-ranking (it says how to rebuild it).
    """
    pipe = data.pipeline
    if rerank and pipe.reranker is None:
        raise missing_features(rerank)
    if rerank and pipe.reranker is not None and rerank != pipe.reranker.top:
        stage = copy.copy(pipe.reranker)
        stage.config = dataclasses.replace(stage.config, top=int(rerank))
        pipe = copy.copy(pipe)
        pipe.reranker = stage
    return pipe


def load_models(path: Path, data: BundleData, device: Any, optimize: bool) -> list[Any]:
    """The bundle's models, one per descriptor part (a name, or a checkpoint inside the bundle);
    with ``optimize`` the inference-optimised copies ``artid extract`` describes images with
    (:func:`artid.extraction.speed.optimize_for_inference`)."""
    import torch

    from artid.extraction.speed import optimize_for_inference
    from artid.models import build_embedder

    embedders = []
    for model in data.models:
        ref = str(model.get("ref", ""))
        if not ref:
            raise ArtidError(f"{path / 'bundle.json'} names no model")
        embedder = build_embedder(str(path / ref) if (path / ref).is_file() else ref)
        if optimize:
            embedder, applied = optimize_for_inference(embedder, device=torch.device(device))
            log.info(
                "model optimisations: %s", ", ".join(k for k, v in applied.items() if v) or "none"
            )
        embedders.append(embedder)
    return embedders


def load_tagger(path: Path, data: BundleData) -> Tagger | None:
    """The attributes run a bundle holds (a copy inside it), loaded; None when it has none."""
    if not data.attributes:
        return None
    ref = str(data.attributes.get("ref", ""))
    if not ATTRIBUTES_REF_RE.match(ref):
        raise ArtidError(
            f"{path / 'bundle.json'}: attributes ref {ref!r} is not a folder of the "
            "bundle's attributes/"
        )
    return Tagger(path / ref)


def attribute_pass(tagger: Tagger | None, embedder: Any, max_size: int | None,
                   scales: tuple[float, ...]) -> tuple[int, tuple[float, ...]] | None:
    """The image size and scales of the tagger's descriptors when they differ from the bundle's
    (the photo is then described a second time); None when one pass serves both, or no tagger.

    Raises:
        ArtidError: a tagger that takes descriptors of another dimension than the model's.
    """
    if tagger is None:
        return None
    if getattr(embedder, "dim", None) is not None and int(embedder.dim) != tagger.dim:
        raise ArtidError(f"the bundle's attributes run takes {tagger.dim}-d descriptors but the "
                         f"model gives {embedder.dim}-d ones")
    settings = (int(tagger.features.max_size), tuple(float(s) for s in tagger.features.scales))
    return None if settings == (max_size, scales) else settings
