"""What the recognition service answers for a photo: a :class:`Recognition` and its
:class:`Match` list.

:class:`artid.service.recognizer.Recognizer` makes them; ``to_json`` is the HTTP API's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from artid.attributes.tagger import Tag
from artid.service.collection import Artwork


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
        out["thumbnail"] = (
            (thumbnail_url(self.thumbnail) if thumbnail_url else self.thumbnail)
            if self.thumbnail
            else None
        )
        return out


@dataclass
class Recognition:
    """The answer for one photo.

    Attributes:
        accepted: score > threshold: the photo shows ``prediction``.
        confidence: how sure the answer is, 0..1: the share of the bundle's validation answers of
            this score that were right (:meth:`artid.service.calibrate.Calibration.confidence_of`;
            the softmax when the threshold was given instead of calibrated).
        softmax: the softmax share of ``prediction`` over all the bundle's artworks at the
            pipeline's tau (the fused one with re-ranking), ``sigmoid(score)``: it falls with the
            number of artworks and reads low for a small tau, whatever the verified points say.
        threshold: the acceptance threshold on the scale of ``confidence`` (for display).
        score: log-odds of ``prediction``: what the threshold is compared with (never saturates).
        threshold_score: the acceptance threshold in log-odds.
        prediction: the best match (reported even when not accepted).
        matches: up to 5 best matches, best first.
        timing: milliseconds spent per stage.
        attributes: the photo's tags, highest score first (every predicted one, then the best
            others; see :meth:`artid.attributes.tagger.Tagger.tags`), or None when the bundle
            has no attributes run (the JSON answer then has no ``attributes`` key).
        crop: ``[x0, y0, x1, y1]`` of the part of the photo that was described, in the photo's
            pixels (right / bottom exclusive), or None when the whole photo was (a bundle
            without crop).
        verified_inliers: with re-ranking, the points of the photo that a homography maps onto
            an image of ``prediction`` (0: not verified); None without re-ranking (the JSON
            answer then has no
            ``verified_inliers`` key).
    """

    accepted: bool
    confidence: float
    threshold: float
    score: float
    threshold_score: float
    prediction: Match
    matches: list[Match]
    softmax: float | None = None
    timing: dict[str, float] = field(default_factory=dict)
    attributes: list[Tag] | None = None
    crop: list[int] | None = None
    verified_inliers: int | None = None

    def to_json(self, thumbnail_url: Callable[[str], str] | None = None) -> dict[str, Any]:
        out = {
            "accepted": self.accepted,
            "recognised": self.prediction.artwork.title if self.accepted else None,
            "confidence": float(self.confidence),  # unrounded, as the threshold: comparable
            "softmax": None if self.softmax is None else round(self.softmax, 6),
            "threshold": self.threshold,
            "score": finite(self.score),
            "threshold_score": finite(self.threshold_score),
            "prediction": self.prediction.to_json(thumbnail_url),
            "matches": [m.to_json(thumbnail_url) for m in self.matches],
            "crop": self.crop,
            "timing_ms": {k: round(v, 2) for k, v in self.timing.items()},
        }
        if self.verified_inliers is not None:
            out["verified_inliers"] = int(self.verified_inliers)
        if self.attributes is not None:
            out["attributes"] = [t.to_json() for t in self.attributes]
        return out


def finite(x: float) -> float:
    """A score for JSON (which has no infinity): clipped to +-1e300, rounded."""
    return round(float(min(max(x, -1e300), 1e300)), 6)
