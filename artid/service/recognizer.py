"""One bundle loaded once: a photo in, the best-matching artworks out.

The :class:`Recognizer` is what the CLI, the HTTP API and the benchmarks share. It only describes
the photo and asks the bundle's pipeline: the photo is described exactly as ``artid extract``
describes a query image (:mod:`artid.service.photos`: the same pixels at the bundle's image size,
the same crop, the same batched embedding path at the same scales, one matrix per model of the
bundle), its local features are read as the database images' were when the pipeline re-ranks
(:func:`artid.extraction.local.local_features` at the stage's settings), and
:meth:`artid.retrieval.pipeline.KNNPipeline.answer` gives the decision (re-ranked when the stage is
on) and the candidates. The prediction is *accepted* when its score is above the bundle's
calibrated threshold of that decision; otherwise the answer is "not recognised".

A bundle built with ``--attributes RUN`` also tags every photo, recognised or not, with the run's
model (:mod:`artid.attributes.tagger`) on the (first) model's descriptor; the photo is described a
second time when the run was trained at another image size or scales.

A bundle built with ``--crop cam|centre`` (:mod:`artid.service.cropping`) has every photo cropped to
its artwork before it is described, as its validation photos were; the box is reported in the
answer (``crop``, in the photo's pixels).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artid.attributes.tagger import Tag, Tagger
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures, local_features
from artid.localisation import Cropper, CropSettings
from artid.service.answers import Match, Recognition
from artid.service.bundle import BundleData, load_bundle
from artid.service.bundle_runtime import BundleRuntime
from artid.service.cropping import PhotoCrop, bundle_crop
from artid.service.photos import photo_at, pixels_at
from artid.service.serving import attribute_pass, load_models, load_tagger, serving_pipeline

log = logging.getLogger(__name__)

#: Neighbours searched to list alternative artworks (the decision uses the bundle's k).
LIST_NEIGHBOURS = 20
#: Photos per forward pass: one, as ``artid extract`` describes images on a CPU.
BATCH_SIZE = 1


class Recognizer:
    """A bundle's models and pipeline, ready to recognise photos.

    Thread-safe for concurrent :meth:`recognize` calls (inference only); the HTTP API still bounds
    how many run at once.

    Args:
        data: the bundle's contents.
        embedder: the model the bundle names, or one per descriptor part (an
            :class:`artid.models.Embedder` each), on ``device`` and in eval mode.
        device: torch device the embedders run on.
        top: number of matches listed.
        tagger: the bundle's attributes run, loaded (None: answers carry no attributes).
        crop: crop photos as the bundle says (``extraction.crop``); False describes whole photos.
        rerank: None = the bundle's re-ranking (off for a bundle built without ``--rerank``),
            0 = off, K > 0 = verify K neighbours (a bundle built with ``--rerank``).
    """

    def __init__(self, data: BundleData, embedder: Any | Sequence[Any], device: Any = "cpu",
                 top: int = 5, tagger: Tagger | None = None, crop: bool = True,
                 rerank: int | None = None) -> None:
        import torch

        self.data = data
        #: what was asked for beyond the bundle (:func:`artid.service.following.reloaded`)
        self.asked: dict[str, Any] = {"top": top, "crop": crop, "rerank": rerank}
        self.device = torch.device(device)
        models: list[Any] = list(embedder) if isinstance(embedder, (list, tuple)) else [embedder]
        if len(models) != len(data.models):
            raise ArtidError(f"{len(models)} model(s) for a bundle of {len(data.models)}")
        self.embedders = [m.to(self.device).eval() for m in models]
        self.embedder = self.embedders[0]
        #: what describes photos: the embedders, or their bf16 / graph-runtime forms (use_runtime)
        self.inference: list[Any] = list(self.embedders)
        #: the runtime and precision that describe photos (use_runtime)
        self.runtime = BundleRuntime()
        self.top = int(top)
        self.artworks = data.artwork_by_label()
        self.pipeline = serving_pipeline(data, rerank)
        self.reranker = self.pipeline.reranker if rerank != 0 else None
        self.max_size = data.extraction.get("max_size") or None
        self.scales = tuple(float(s) for s in data.extraction.get("scales", [1.0]))
        calibration = data.calibration
        if data.reranks and self.reranker is None:
            assert data.global_calibration is not None  # BundleData.check
            calibration = data.global_calibration
        self.threshold_score = float(calibration.threshold)
        self.calibration = calibration
        self.threshold = calibration.shown_threshold
        self.crop: CropSettings | None = None
        if crop:
            self.crop = bundle_crop(data.extraction, "the bundle's bundle.json")
        self.croppers = [Cropper(m, self.crop) for m in self.embedders] if self.crop else []
        self.cropper = self.croppers[0] if self.croppers else None
        widths = self.pipeline.projection.widths if self.pipeline.projection else []
        for m, width in zip(self.embedders, widths):
            if getattr(m, "dim", None) is not None and int(m.dim) != width:
                raise ArtidError(f"the model gives {m.dim}-d descriptors but the bundle's "
                                 f"pipeline was fitted on {width}-d ones")
        self.tagger = tagger
        #: image size and scales of the tagger's descriptors when they differ (a second pass)
        self.attribute_pass = attribute_pass(tagger, self.embedder, self.max_size, self.scales)

    @classmethod
    def from_bundle(cls, path: str | Path, device: Any = "cpu", top: int = 5,
                    optimize: bool = True, crop: bool = True,
                    rerank: int | None = None, runtime: str | None = None,
                    precision: str | None = None) -> Recognizer:
        """Load a bundle and the models it names (names, or checkpoints inside the bundle).

        Args:
            path: the bundle folder.
            device: torch device for the models.
            top: number of matches listed.
            optimize: run inference-optimised copies of the models (BatchNorm folded,
                channels-last; :func:`artid.extraction.speed.optimize_for_inference`), as
                ``artid extract`` does.
            crop: crop photos as the bundle says; False: whole photos whatever the bundle says.
            rerank: None: the bundle's re-ranking; 0: off; K: verify K neighbours.
            runtime, precision: what describes photos (:meth:`use_runtime`; None: as the
                bundle's images were described).
        """
        path = Path(path)
        data = load_bundle(path)
        serving_pipeline(data, rerank)  # refuse K > 0 for a bundle without re-ranking: no model yet
        embedders = load_models(path, data, device, optimize)
        rec = cls(
            data,
            embedders,
            device=device,
            top=top,
            tagger=load_tagger(path, data),
            crop=crop,
            rerank=rerank,
        )
        rec.asked["optimize"] = optimize
        rec.use_runtime(path, runtime, precision)
        return rec

    def use_runtime(self, bundle: str | Path, runtime: str | None = None,
                    precision: str | None = None) -> None:
        """Describe photos as the bundle's images were described (its recorded runtime and
        precision: :mod:`artid.service.bundle_runtime`), or with the ``runtime`` / ``precision``
        asked for: torch (FP32 or bf16) or the models exported to ONNX Runtime / OpenVINO, cached
        in ``<bundle>/.runtime`` (:mod:`artid.extraction.inference`). int8 only for a bundle
        built with it (its model is calibrated on the database images)."""
        from artid.extraction.inference import RUNTIME_CACHE, inference_model
        from artid.service.bundle_runtime import chosen_for_serving, recorded, serving

        chosen = chosen_for_serving(recorded(self.data.extraction), runtime, precision,
                                    self.device)
        calibration = serving(Path(bundle), chosen)
        self.asked.update(runtime=runtime, precision=precision)
        self.runtime = chosen
        self.inference = [
            inference_model(m, chosen.runtime, chosen.precision, self.device,
                            Path(bundle) / RUNTIME_CACHE, calibration)
            for m in self.embedders
        ]

    def find_crops(self, images: list[Image.Image], part: int = 0) -> list[PhotoCrop] | None:
        """The crop of each photo by the ``part``-th model, found on the photo at the bundle's
        image size (None: no crop)."""
        if not self.croppers:
            return None
        out = []
        for img in images:
            pixels = pixels_at(img, self.max_size)
            out.append(
                PhotoCrop(self.croppers[part].crop_box(pixels), (pixels.shape[1], pixels.shape[0]))
            )
        return out

    def describe(
        self,
        images: list[Image.Image],
        max_size: int | None = None,
        scales: tuple[float, ...] | None = None,
        crops: list[PhotoCrop] | None = None,
        part: int = 0,
    ) -> np.ndarray:
        """Descriptors of whole upright RGB photos by the ``part``-th model, as ``artid extract``
        describes query images.

        Args:
            images: the photos, decoded whole (shrunk here to ``max_size``).
            max_size, scales: image size and scales (default: the bundle's).
            crops: the part of each photo to describe (:meth:`find_crops`); None: whole photos.

        Returns:
            (B, D) float32 L2-normalised rows of the model (the pipeline projects them).
        """
        from artid.extraction.embedding import embed_arrays

        size = self.max_size if max_size is None else max_size
        pixels = (pixels_at(img, size) for img in images)
        if crops is not None:
            pixels = (c.apply(p) for c, p in zip(crops, pixels, strict=True))
        return embed_arrays(
            self.inference[part],
            pixels,
            self.scales if scales is None else scales,
            batch_size=BATCH_SIZE,
            device=self.device,
        )

    def local_features(self, images: list[Image.Image]) -> list[LocalFeatures] | None:
        """The photos' local features at the re-ranking stage's settings (None without it)."""
        if self.reranker is None:
            return None
        cfg = self.reranker.config
        return [
            local_features(photo_at(img, cfg.max_size), cfg.max_keypoints, None) for img in images
        ]

    def recognize_descriptors(
        self,
        parts: Sequence[np.ndarray],
        attribute_desc: np.ndarray | None = None,
        photos: list[LocalFeatures] | None = None,
    ) -> list[Recognition]:
        """Recognitions of photos described by :meth:`describe` (one matrix per model).

        Args:
            parts: (B, D_i) descriptors at the bundle's image size and scales, one per model.
            attribute_desc: descriptors at the attributes run's settings when they differ
                (:attr:`attribute_pass`); without them such a bundle's answers carry no attributes.
            photos: the photos' local features (:meth:`local_features`), needed when the
                recognizer re-ranks.
        """
        t = time.perf_counter()
        ans, tops = self.pipeline.answer(
            list(parts),
            features=photos,
            rerank=self.reranker is not None,
            n_top=self.top,
            list_neighbours=LIST_NEIGHBOURS,
        )
        search = 1000 * (time.perf_counter() - t)
        n = max(len(parts[0]), 1)
        timing = {"search": search / n}
        verified: list[int | None] = [None] * len(parts[0])
        if self.reranker is not None:
            verify = float(self.reranker.ms_per_query or 0.0)
            timing = {"search": max(search / n - verify, 0.0), "verify": verify}
            verified = [int(v) for v in ans.inliers]
        tags: list[list[Tag]] | list[None] = [None] * len(parts[0])
        if self.tagger is not None and (self.attribute_pass is None or attribute_desc is not None):
            tags = self.tagger.tags(parts[0] if attribute_desc is None else attribute_desc)
        out = []
        shown = self.calibration.confidence_of(ans.score)
        for score, c, softmax, top, attributes, v in zip(
            ans.score, shown, ans.conf, tops, tags, verified
        ):
            matches = [
                Match(self.artworks[label], s, share, self.data.thumbnails.get(label))
                for label, s, share in top
            ]  # top[0]: the decision
            out.append(
                Recognition(
                    accepted=bool(score > self.threshold_score),
                    confidence=float(c),
                    softmax=float(softmax),
                    threshold=self.threshold,
                    score=float(score),
                    threshold_score=self.threshold_score,
                    prediction=matches[0],
                    matches=matches,
                    attributes=attributes,
                    verified_inliers=v,
                    timing=dict(timing),
                )
            )
        return out

    def recognize(self, images: list[Image.Image]) -> list[Recognition]:
        """Recognise whole, upright RGB photos; each answer carries its ``timing`` (ms: crop when
        the bundle crops, embed, search; ``embed_attributes`` for a second pass;
        ``local_features`` and ``verify`` with re-ranking) and its ``crop`` box in the photo's
        pixels."""
        if not images:
            return []
        t = time.perf_counter()
        crops = [self.find_crops(images, i) for i in range(len(self.embedders))]
        t0 = time.perf_counter()
        parts = [self.describe(images, crops=c, part=i) for i, c in enumerate(crops)]
        t1 = time.perf_counter()
        attribute_desc = None
        if self.tagger is not None and self.attribute_pass is not None:
            attribute_desc = self.describe(images, *self.attribute_pass, crops=crops[0])
        t2 = time.perf_counter()
        photos = self.local_features(images)
        t3 = time.perf_counter()
        out = self.recognize_descriptors(parts, attribute_desc, photos)
        n = len(images)
        for i, r in enumerate(out):
            r.timing = {"embed": 1000 * (t1 - t0) / n, **r.timing}
            if photos is not None:
                r.timing["local_features"] = 1000 * (t3 - t2) / n
            if crops[0] is not None:
                r.timing = {"crop": 1000 * (t0 - t) / n, **r.timing}
                r.crop = list(crops[0][i].scaled(*images[i].size))
            if attribute_desc is not None:
                r.timing["embed_attributes"] = 1000 * (t2 - t1) / n
        return out

    def recognize_paths(self, paths: list[str | Path]) -> list[Recognition]:
        """Recognise image files, read whole as ``artid extract`` reads them (EXIF orientation,
        modes, decompression bombs) and shrunk for each use (:mod:`artid.service.photos`)."""
        from artid.data.images import load_image

        t0 = time.perf_counter()
        images = [load_image(p, max_size=None) for p in paths]
        load_ms = 1000 * (time.perf_counter() - t0) / max(len(paths), 1)
        out = self.recognize(images)
        for r in out:
            r.timing = {"load": load_ms, **r.timing}
        return out
