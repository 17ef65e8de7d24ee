"""One model and one index, loaded once: a photo in, the best-matching artworks out.

The :class:`Recognizer` is what the CLI, the HTTP API and the benchmarks share. It
describes a photo exactly as the database images were described (same model, same
image size, same scales, same whitening), searches the index and applies the kNN
classifier with the bundle's (k, tau). The prediction is *accepted* when its
confidence is above the bundle's calibrated threshold; otherwise the answer is
"not recognised".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artid.errors import ArtidError
from artid.service.bundle import BundleData, load_bundle
from artid.service.collection import Artwork

log = logging.getLogger(__name__)

#: Neighbours searched to list alternative artworks (the decision uses the bundle's k).
LIST_NEIGHBOURS = 20


@dataclass(frozen=True)
class Match:
    """One candidate artwork for a photo.

    Attributes:
        artwork: the artwork and its metadata.
        similarity: cosine similarity of its closest image to the photo (the class score s_c).
        share: its softmax share (same tau) among the classes of the ``max(k, LIST_NEIGHBOURS)``
            nearest images; only the prediction's ``Recognition.confidence`` is thresholded.
        thumbnail: thumbnail file name inside the bundle, or None.
    """

    artwork: Artwork
    similarity: float
    share: float
    thumbnail: str | None

    def to_json(self, thumbnail_url: Callable[[str], str] | None = None) -> dict[str, Any]:
        out = self.artwork.to_json()
        out.update(similarity=round(self.similarity, 6), share=round(self.share, 6))
        out["thumbnail"] = (thumbnail_url(self.thumbnail) if thumbnail_url else self.thumbnail) \
            if self.thumbnail else None
        return out


@dataclass
class Recognition:
    """The answer for one photo.

    Attributes:
        accepted: score > threshold: the photo shows ``prediction``.
        confidence: the kNN classifier's confidence in ``prediction`` (bundle's k and tau), 0..1.
        threshold: the bundle's acceptance threshold as a confidence, 0..1 (for display).
        score: log-odds of ``prediction``: what the threshold is compared with (never saturates).
        threshold_score: the acceptance threshold in log-odds.
        prediction: the best match (reported even when not accepted).
        matches: up to 5 best matches, best first.
        timing: milliseconds spent per stage.
    """

    accepted: bool
    confidence: float
    threshold: float
    score: float
    threshold_score: float
    prediction: Match
    matches: list[Match]
    timing: dict[str, float] = field(default_factory=dict)

    def to_json(self, thumbnail_url: Callable[[str], str] | None = None) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "recognised": self.prediction.artwork.title if self.accepted else None,
            "confidence": round(self.confidence, 6),
            "threshold": self.threshold,
            "score": _finite(self.score),
            "threshold_score": _finite(self.threshold_score),
            "prediction": self.prediction.to_json(thumbnail_url),
            "matches": [m.to_json(thumbnail_url) for m in self.matches],
            "timing_ms": {k: round(v, 2) for k, v in self.timing.items()},
        }


def fit_max_size(img: Image.Image, max_size: int) -> Image.Image:
    """Shrink ``img`` so that its longer side is at most ``max_size`` (aspect kept, never enlarged)."""
    from artid.data.images import resize_max

    return resize_max(img, max_size)


def _finite(x: float) -> float:
    """A score for JSON (which has no infinity): clipped to +-1e300, rounded."""
    return round(float(min(max(x, -1e300), 1e300)), 6)


class Recognizer:
    """A bundle's model, index and classifier, ready to recognise photos.

    Thread-safe for concurrent :meth:`recognize` calls (inference only, no shared
    mutable state); the HTTP API still bounds how many run at once.

    Args:
        data: the bundle's contents.
        embedder: the model the bundle names (an :class:`artid.models.Embedder`).
        device: torch device the embedder runs on.
        top: number of matches listed.
    """

    def __init__(self, data: BundleData, embedder: Any, device: Any = "cpu", top: int = 5) -> None:
        import torch

        self.data = data
        self.device = torch.device(device)
        self.embedder = embedder.to(self.device).eval()
        self.top = int(top)
        self.artworks = data.artwork_by_label()
        #: the kNN pipeline (whitening, database, k limited to its size, tau) the bundle stores
        self.pipeline = data.pipeline()
        self.max_size = int(data.extraction.get("max_size", 500))
        self.scales = tuple(float(s) for s in data.extraction.get("scales", [1.0]))
        self.threshold_score = float(data.calibration.threshold)
        self.threshold = data.calibration.threshold_confidence
        if getattr(embedder, "dim", None) is not None and data.whitening is None \
                and int(embedder.dim) != data.descriptors.matrix.shape[1]:
            raise ArtidError(f"the model gives {embedder.dim}-d descriptors but the bundle holds "
                             f"{data.descriptors.matrix.shape[1]}-d ones")

    @classmethod
    def from_bundle(cls, path: str | Path, device: Any = "cpu", top: int = 5, optimize: bool = True) -> Recognizer:
        """Load a bundle and the model it names (a name, or a checkpoint inside the bundle).

        Args:
            path: the bundle folder.
            device: torch device for the model.
            top: number of matches listed.
            optimize: run an inference-optimised copy of the model (BatchNorm folded,
                channels-last; :func:`artid.extraction.speed.optimize_for_inference` checks
                that it gives the same descriptors), as the bundle's own images were described.
        """
        import torch

        from artid.extraction.speed import optimize_for_inference
        from artid.models import build_embedder

        path = Path(path)
        data = load_bundle(path)
        ref = str(data.model.get("ref", ""))
        if not ref:
            raise ArtidError(f"{path / 'bundle.json'} names no model")
        local = path / ref
        embedder = build_embedder(str(local) if local.is_file() else ref)
        if optimize:
            embedder, applied = optimize_for_inference(embedder, device=torch.device(device))
            log.info("model optimisations: %s", ", ".join(k for k, v in applied.items() if v) or "none")
        return cls(data, embedder, device=device, top=top)

    def describe(self, images: list[Image.Image]) -> np.ndarray:
        """Descriptors of photos, as searched in the index.

        Args:
            images: RGB images of any size (shrunk to the bundle's ``max_size``).

        Returns:
            (B, D) float32 L2-normalised rows of the model (the pipeline whitens them).
        """
        import torch

        from artid.data.images import to_tensor

        rows = []
        with torch.inference_mode():
            for img in images:
                x = to_tensor(fit_max_size(img, self.max_size)).unsqueeze(0).to(self.device)
                if self.scales == (1.0,):
                    v = self.embedder.forward(x)
                else:
                    v = self.embedder.embed_multiscale(x, scales=self.scales)
                rows.append(v.float().cpu().numpy())
        return np.concatenate(rows).astype(np.float32)

    def recognize_descriptors(self, desc: np.ndarray) -> list[Recognition]:
        """Recognitions of (B, D) float32 descriptors of the bundle's model (see :meth:`describe`)."""
        decision, tops = self.pipeline.answer(desc, n_top=self.top, list_neighbours=LIST_NEIGHBOURS)
        out = []
        for score, c, top in zip(decision.score, decision.conf, tops):  # top[0]: the predicted class
            matches = [Match(self.artworks[label], s, share, self.data.thumbnails.get(label))
                       for label, s, share in top]
            out.append(Recognition(accepted=bool(score > self.threshold_score), confidence=float(c),
                                   threshold=self.threshold, score=float(score),
                                   threshold_score=self.threshold_score, prediction=matches[0], matches=matches))
        return out

    def recognize(self, images: list[Image.Image]) -> list[Recognition]:
        """Recognise RGB photos; each answer carries its ``timing`` (embed and search, ms)."""
        if not images:
            return []
        t0 = time.perf_counter()
        desc = self.describe(images)
        t1 = time.perf_counter()
        out = self.recognize_descriptors(desc)
        t2 = time.perf_counter()
        for r in out:
            r.timing = {"embed": 1000 * (t1 - t0) / len(images), "search": 1000 * (t2 - t1) / len(images)}
        return out

    def recognize_paths(self, paths: list[str | Path]) -> list[Recognition]:
        """Recognise image files (read safely: EXIF orientation, modes, decompression bombs)."""
        from artid.data.images import load_image

        t0 = time.perf_counter()
        images = [load_image(p, max_size=self.max_size) for p in paths]
        load_ms = 1000 * (time.perf_counter() - t0) / max(len(paths), 1)
        out = self.recognize(images)
        for r in out:
            r.timing = {"load": load_ms, **r.timing}
        return out
