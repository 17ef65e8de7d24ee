"""One model and one index, loaded once: a photo in, the best-matching artworks out.

The :class:`Recognizer` is what the CLI, the HTTP API and the benchmarks share. It
describes a photo exactly as the database images were described (same model, same
image size, same scales, same whitening), searches the index and applies the kNN
classifier with the bundle's (k, tau). The prediction is *accepted* when its
confidence is above the bundle's calibrated threshold; otherwise the answer is
"not recognised".

A bundle built with ``--attributes RUN`` also tags every photo, recognised or not: the run's
model (a head or kNN label transfer on the same network's descriptors, see
:mod:`artid.attributes.tagger`) scores each label, and the run's validation-chosen thresholds
decide which are predicted. The photo's descriptor is reused when the run was trained at the
bundle's image size and scales; otherwise the same network describes the photo a second time
at the run's settings.

A bundle built with ``--crop cam|centre`` (:mod:`artid.service.cropping`) has every photo cropped to
its artwork before it is described, exactly as its validation photos were: the box is found on the
photo shrunk to the bundle's image size (the ``cam`` box from the activation map of the bundle's own
model) and reported in the answer (``crop``, in the photo's pixels). The attributes pass, if any,
describes the same crop.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artid.attributes.tagger import Tag, Tagger
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures
from artid.localisation import Cropper, CropSettings
from artid.service.answers import Match, Recognition
from artid.service.bundle import BundleData, load_bundle
from artid.service.cropping import PhotoCrop, bundle_crop
from artid.service.reranking import bundle_reranker, missing_features, photo_features, reranked_answer

log = logging.getLogger(__name__)

#: The form of a bundle's reference to its attributes run (nothing outside that folder is read).
ATTRIBUTES_REF_RE = re.compile(r"^attributes/[0-9a-f]{32}$")
#: Neighbours searched to list alternative artworks (the decision uses the bundle's k).
LIST_NEIGHBOURS = 20


def fit_max_size(img: Image.Image, max_size: int) -> Image.Image:
    """Shrink ``img`` so that its longer side is at most ``max_size`` (aspect kept, never enlarged)."""
    from artid.data.images import resize_max

    return resize_max(img, max_size)


class Recognizer:
    """A bundle's model, index and classifier, ready to recognise photos.

    Thread-safe for concurrent :meth:`recognize` calls (inference only, no shared
    mutable state); the HTTP API still bounds how many run at once.

    Args:
        data: the bundle's contents.
        embedder: the model the bundle names (an :class:`artid.models.Embedder`).
        device: torch device the embedder runs on.
        top: number of matches listed.
        tagger: the bundle's attributes run, loaded (None: answers carry no attributes).
        crop: crop photos as the bundle says (``extraction.crop``); False describes whole photos
            (the threshold was calibrated on cropped validation photos all the same).
        rerank: K of the re-ranking stage (:mod:`artid.service.reranking`): None = the bundle's (off for a
            bundle built without ``--rerank``), 0 = off, K > 0 needs a bundle built with local features.
    """

    def __init__(self, data: BundleData, embedder: Any, device: Any = "cpu", top: int = 5,
                 tagger: Tagger | None = None, crop: bool = True, rerank: int | None = None) -> None:
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
        #: the re-ranking stage (None: global answers) and the threshold of its answers
        self.reranker, calibration = bundle_reranker(self.pipeline, data.rerank, data.local, rerank)
        self.global_threshold_score = float(data.calibration.threshold)
        if self.reranker is None or calibration is None:
            calibration = data.calibration
        self.threshold_score = float(calibration.threshold)
        self.threshold = calibration.threshold_confidence
        #: how photos are cropped before they are described (None: whole photos)
        self.crop: CropSettings | None = bundle_crop(data.extraction, "the bundle's bundle.json") if crop else None
        self.cropper = Cropper(self.embedder, self.crop) if self.crop is not None else None
        if getattr(embedder, "dim", None) is not None and data.whitening is None \
                and int(embedder.dim) != data.descriptors.matrix.shape[1]:
            raise ArtidError(f"the model gives {embedder.dim}-d descriptors but the bundle holds "
                             f"{data.descriptors.matrix.shape[1]}-d ones")
        self.tagger = tagger
        #: image size and scales of the tagger's descriptors, when they differ from the bundle's (a second pass)
        self.attribute_pass: tuple[int, tuple[float, ...]] | None = None
        if tagger is not None:
            if getattr(embedder, "dim", None) is not None and int(embedder.dim) != tagger.dim:
                raise ArtidError(f"the bundle's attributes run takes {tagger.dim}-d descriptors but the model "
                                 f"gives {embedder.dim}-d ones")
            settings = (int(tagger.features.max_size), tuple(float(s) for s in tagger.features.scales))
            if settings != (self.max_size, self.scales):
                self.attribute_pass = settings

    @classmethod
    def from_bundle(cls, path: str | Path, device: Any = "cpu", top: int = 5, optimize: bool = True,
                    crop: bool = True, rerank: int | None = None) -> Recognizer:
        """Load a bundle and the model it names (a name, or a checkpoint inside the bundle).

        Args:
            path: the bundle folder.
            device: torch device for the model.
            top: number of matches listed.
            optimize: run an inference-optimised copy of the model (BatchNorm folded,
                channels-last; :func:`artid.extraction.speed.optimize_for_inference` checks
                that it gives the same descriptors), as the bundle's own images were described.
            crop: crop photos as the bundle says; False: whole photos whatever the bundle says.
            rerank: K of the re-ranking stage (None: the bundle's; 0: off).
        """
        import torch

        from artid.extraction.speed import optimize_for_inference
        from artid.models import build_embedder

        path = Path(path)
        data = load_bundle(path)
        if rerank and data.local is None:  # before the model is loaded
            raise missing_features(rerank)
        ref = str(data.model.get("ref", ""))
        if not ref:
            raise ArtidError(f"{path / 'bundle.json'} names no model")
        local = path / ref
        embedder = build_embedder(str(local) if local.is_file() else ref)
        if optimize:
            embedder, applied = optimize_for_inference(embedder, device=torch.device(device))
            log.info("model optimisations: %s", ", ".join(k for k, v in applied.items() if v) or "none")
        return cls(data, embedder, device=device, top=top, tagger=load_tagger(path, data), crop=crop, rerank=rerank)

    def find_crops(self, images: list[Image.Image]) -> list[PhotoCrop] | None:
        """The crop of each photo, found on it shrunk to the bundle's image size (None: no crop)."""
        if self.cropper is None:
            return None
        from artid.data.images import to_array

        out = []
        for img in images:
            pixels = to_array(fit_max_size(img, self.max_size))
            out.append(PhotoCrop(self.cropper.crop_box(pixels), (pixels.shape[1], pixels.shape[0])))
        return out

    def describe(self, images: list[Image.Image], max_size: int | None = None,
                 scales: tuple[float, ...] | None = None, crops: list[PhotoCrop] | None = None) -> np.ndarray:
        """Descriptors of photos, as searched in the index.

        Args:
            images: RGB images of any size (shrunk to ``max_size``).
            max_size, scales: image size and scales (default: the bundle's).
            crops: the part of each photo to describe (:meth:`find_crops`); None: whole photos.

        Returns:
            (B, D) float32 L2-normalised rows of the model (the pipeline whitens them).
        """
        from artid.data.images import to_array
        from artid.extraction.embedding import embed_arrays

        max_size = self.max_size if max_size is None else int(max_size)
        scales = self.scales if scales is None else tuple(scales)
        # the pixels extraction decodes ((H, W, 3) uint8), batched by size as the database images were
        pixels = (to_array(fit_max_size(img, max_size)) for img in images)
        if crops is not None:
            pixels = (c.apply(p) for c, p in zip(crops, pixels, strict=True))
        return embed_arrays(self.embedder, pixels, scales, batch_size=8, device=self.device)

    def recognize_descriptors(self, desc: np.ndarray, attribute_desc: np.ndarray | None = None,
                              photos: list[LocalFeatures] | None = None) -> list[Recognition]:
        """Recognitions of (B, D) float32 descriptors of the bundle's model (see :meth:`describe`).

        Args:
            desc: descriptors at the bundle's image size and scales.
            attribute_desc: descriptors at the attributes run's settings when they differ
                (:attr:`attribute_pass`); without them such a bundle's answers carry no attributes.
            photos: the photos' local features (:func:`artid.service.reranking.photo_features`) when
                re-ranking is on; without them the answers are the global ones, at the global threshold.
        """
        verified: list[int | None] = [None] * len(desc)
        threshold_score, threshold = self.threshold_score, self.threshold
        timing: dict[str, float] = {}
        if self.reranker is not None and photos is not None:
            ans, tops, ms = reranked_answer(self.reranker, desc, photos, self.top, LIST_NEIGHBOURS)
            decision, verified = ans.classified, [int(n) for n in ans.inliers]
            timing = {"verify": ms["verify"] / max(len(desc), 1)}
        else:
            decision, tops = self.pipeline.answer(desc, n_top=self.top, list_neighbours=LIST_NEIGHBOURS)
            if self.reranker is not None:
                threshold_score = self.global_threshold_score
                threshold = self.data.calibration.threshold_confidence
        tags: list[list[Tag]] | list[None] = [None] * len(desc)
        if self.tagger is not None and (self.attribute_pass is None or attribute_desc is not None):
            tags = self.tagger.tags(desc if attribute_desc is None else attribute_desc)
        out = []
        for score, c, top, attributes, n in zip(decision.score, decision.conf, tops, tags, verified):
            matches = [Match(self.artworks[label], s, share, self.data.thumbnails.get(label))
                       for label, s, share in top]  # top[0]: the prediction
            out.append(Recognition(accepted=bool(score > threshold_score), confidence=float(c),
                                   threshold=threshold, score=float(score), threshold_score=threshold_score,
                                   prediction=matches[0], matches=matches, attributes=attributes,
                                   verified_inliers=n, timing=dict(timing)))
        return out

    def recognize(self, images: list[Image.Image],
                  sizes: list[tuple[int, int]] | None = None) -> list[Recognition]:
        """Recognise RGB photos; each answer carries its ``timing`` (crop when the bundle crops, embed and
        search, ms; ``embed_attributes`` when the attributes run needs a second pass; ``local_features``
        and ``verify`` with re-ranking, whose search is inside ``search``) and its ``crop`` box.

        Args:
            images: the photos.
            sizes: ``(width, height)`` of the photos the images were shrunk from, for the crop boxes
                (default: the images' own sizes).
        """
        if not images:
            return []
        t = time.perf_counter()
        crops = self.find_crops(images)
        t0 = time.perf_counter()
        desc = self.describe(images, crops=crops)
        t1 = time.perf_counter()
        attribute_desc = None
        if self.tagger is not None and self.attribute_pass is not None:
            attribute_desc = self.describe(images, *self.attribute_pass, crops=crops)
        t2 = time.perf_counter()
        photos = photo_features(self.reranker, images) if self.reranker is not None else None
        t3 = time.perf_counter()
        out = self.recognize_descriptors(desc, attribute_desc, photos)
        t4 = time.perf_counter()
        n = len(images)
        sizes = sizes or [img.size for img in images]
        for i, r in enumerate(out):
            verify = r.timing.get("verify", 0.0)
            r.timing = {"embed": 1000 * (t1 - t0) / n, "search": 1000 * (t4 - t3) / n - verify}
            if photos is not None:
                r.timing.update(local_features=1000 * (t3 - t2) / n, verify=verify)
            if crops is not None:
                r.timing = {"crop": 1000 * (t0 - t) / n, **r.timing}
                r.crop = list(crops[i].scaled(*sizes[i]))
            if attribute_desc is not None:
                r.timing["embed_attributes"] = 1000 * (t2 - t1) / n
        return out

    def recognize_paths(self, paths: list[str | Path]) -> list[Recognition]:
        """Recognise image files (read safely: EXIF orientation, modes, decompression bombs)."""
        from artid.data.images import load_image

        t0 = time.perf_counter()
        size = max(self.max_size, self.attribute_pass[0]) if self.attribute_pass else self.max_size
        if self.reranker is not None:  # the photo's keypoints are read at the database images' size
            size = max(size, self.reranker.config.max_size)
        images = [load_image(p, max_size=size) for p in paths]
        sizes = [_upright_size(p, img) for p, img in zip(paths, images)] if self.cropper is not None else None
        load_ms = 1000 * (time.perf_counter() - t0) / max(len(paths), 1)
        out = self.recognize(images, sizes)
        for r in out:
            r.timing = {"load": load_ms, **r.timing}
        return out


def _upright_size(path: str | Path, loaded: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an image file as read upright (EXIF orientation applied), before shrinking;
    the loaded image's size when the header cannot be read again."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # Orientation: transposed or rotated 90
    except (OSError, ValueError, SyntaxError):
        return loaded.size
    size = (h, w) if turned else (w, h)
    if max(size) < max(loaded.size) or abs(size[0] * loaded.size[1] - size[1] * loaded.size[0]) > max(size):
        return loaded.size  # not the same picture any more (the file changed): report in the loaded pixels
    return size


def load_tagger(path: Path, data: BundleData) -> Tagger | None:
    """The attributes run a bundle holds (a copy inside it), loaded; None when it has none."""
    if not data.attributes:
        return None
    ref = str(data.attributes.get("ref", ""))
    if not ATTRIBUTES_REF_RE.match(ref):
        raise ArtidError(f"{path / 'bundle.json'}: attributes ref {ref!r} is not a folder of the bundle's attributes/")
    return Tagger(path / ref)
