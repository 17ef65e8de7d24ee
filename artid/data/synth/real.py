"""A Met-format benchmark whose exhibits are real images (``artid synth --source-images``).

The plan (classes with the Met's long tail of studio photos, val / test query splits,
distractors) is :func:`artid.data.synth.layout.make_plan`'s; only what an image shows changes:
exhibit ``c`` is the ``c``-th real image (or crop) of :func:`artid.data.synth.sources.cut_exhibits`,
photographed by the procedural generator's studio (:func:`~artid.data.synth.studio.studio_photo`:
details, frames, copy stand, colour target, old record shots) and galleries
(:func:`~artid.data.synth.gallery.visitor_photo_placed`: frames, plinths and vitrines for images
with a transparent background, perspective, light, glare, visitors, camera). Other-art
distractors are held-out real images (a reproduction or a photo in another gallery; procedural
works where none is held out); non-art distractors are the generator's own (streets, nature,
textures, empty galleries, crowds, tabletops).

The prepared exhibits are written once as PNGs under ``ROOT/source_images/`` (longer side at
most twice the image size) and listed in ``ROOT/ground_truth/sources.json``; the output is a
function of the images' contents (not their names), the seed and the settings, and an
interrupted run resumes like the procedural one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artid.data.synth import FORMAT_VERSION, SynthConfig, _check_root, _map
from artid.data.synth.annotations import write_placements
from artid.data.synth.artworks import Design, Draw, Pose
from artid.data.synth.distractors import noart_photo, reproduction_photo
from artid.data.synth.families import design_of
from artid.data.synth.gallery import visitor_photo, visitor_photo_placed
from artid.data.synth.layout import Job, plan_for, write_compact_json, write_ground_truth
from artid.data.synth.render import REPRODUCTION_SHARE, Placed, run_job
from artid.data.synth.seeding import rng_for, sub_seed
from artid.data.synth.sources import Exhibit, cut_exhibits, fingerprint, open_upright, scan_sources
from artid.data.synth.studio import studio_photo
from artid.errors import ArtidError
from artid.files import atomic_path

log = logging.getLogger(__name__)

#: Bumped whenever the same sources and settings give other images.
SOURCES_FORMAT = 1
#: Kinds a real image without transparency is shown as (mats and frames differ by kind).
FLAT_AS = ("painting", "print", "photograph")


@dataclass(frozen=True)
class SourceSettings:
    """How real images become exhibits.

    Attributes:
        dirs: folders searched (recursively) for images.
        crops: at most this many exhibits cut from one large image (1: whole images only).
        holdout_share: share of the distinct images held out as other-art distractors.
    """

    dirs: tuple[str, ...]
    crops: int = 1
    holdout_share: float = 0.15

    def validate(self) -> None:
        if not self.dirs:
            raise ArtidError("--source-images needs at least one folder")
        if not 1 <= self.crops <= 16:
            raise ArtidError(f"--crops must be between 1 and 16, got {self.crops}")
        if not 0.0 <= self.holdout_share < 1.0:
            raise ArtidError(f"--holdout-share must be in [0, 1), got {self.holdout_share}")


def _prepared(kind: str, i: int) -> str:
    return f"source_images/{kind}/{i:06d}.png"


@lru_cache(maxsize=1)
def _upright(path: Path) -> Image.Image:
    return open_upright(path)  # the crops of one image come one after another: decoded once


def _prepare(root: Path, rel: str, ex: Exhibit, long_side: int) -> None:
    path = root / rel
    if path.is_file():
        return
    img = _upright(ex.source.path).crop(ex.box)
    img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


@lru_cache(maxsize=64)
def _pixels(path: str) -> tuple[np.ndarray, np.ndarray]:
    img = Image.open(path)
    rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0
    return rgba[..., :3], rgba[..., 3]


def draw_image(
    path: str, long_side: int, pose: Pose | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A prepared real image at longer side ``long_side`` as (rgb, alpha), as ``render`` gives
    a procedural exhibit (the pose cannot turn a picture; it is ignored)."""
    rgb, alpha = _pixels(path)
    h, w = rgb.shape[:2]
    k = long_side / max(h, w)
    size = (max(4, int(round(w * k))), max(4, int(round(h * k))))
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    pil = Image.fromarray((rgba * 255 + 0.5).astype(np.uint8), "RGBA")
    out = np.asarray(pil.resize(size, Image.Resampling.LANCZOS), np.float32) / 255.0
    return out[..., :3], out[..., 3]


def design_for(seed: int, kind: str, index: int, transparent: bool, aspect: float) -> Design:
    """The stand-in design of a real image: its kind (how it is framed or stood) and seeds."""
    rng = rng_for(seed, "source-design", kind, index)
    shown = "sculpture" if transparent else str(rng.choice(FLAT_AS))
    grey = (0.5, 0.5, 0.5)
    return Design(shown, "real", aspect, (grey,), (), sub_seed(rng), sub_seed(rng))


def render_real(
    job: Job,
    seed: int,
    image_size: int,
    root: str,
    meta: tuple[tuple[bool, float], ...],
    held: tuple[tuple[bool, float], ...],
) -> Placed:
    """One image of a real-image benchmark (a pure function of its arguments and the prepared
    PNGs): ``meta`` / ``held`` give each exhibit's / held-out image's (transparent, aspect)."""
    rng = rng_for(seed, job.kind, job.index, job.view)
    if job.kind in ("studio", "met"):
        exhibit = partial(draw_image, str(Path(root) / _prepared("exhibits", job.index)))
        design = design_for(seed, "met", job.index, *meta[job.index])
        if job.kind == "met":
            return visitor_photo_placed(design, seed, rng, image_size, exhibit)
        return studio_photo(design, job.view, rng, image_size, exhibit), None
    if job.kind == "other":
        assert job.member is not None
        draw: Draw | None = None
        if held:
            i = job.index % len(held)
            draw = partial(draw_image, str(Path(root) / _prepared("held_out", i)))
            design = design_for(seed, "other", i, *held[i])
        else:
            design = design_of(seed, "other", job.index, job.member)
        if rng.random() < REPRODUCTION_SHARE:
            return reproduction_photo(design, rng, image_size, draw), None
        return visitor_photo(design, seed, rng, image_size, draw), None
    if job.kind == "noart":
        assert job.category is not None
        return noart_photo(seed, job.category, rng, image_size), None
    raise ValueError(f"unknown job kind {job.kind!r}")


def _listing(exhibits: list[Exhibit]) -> list[dict[str, Any]]:
    return [
        {
            "file": str(e.source.path),
            "sha256": e.source.digest,
            "box": list(e.box),
            "tile": e.tile,
            "transparent": e.source.transparent,
            "duplicates_merged": list(e.source.duplicates),
        }
        for e in exhibits
    ]


def generate_from_sources(
    out_dir: str | Path, config: SynthConfig, settings: SourceSettings
) -> dict[str, Any]:
    """Write a Met-format benchmark of real images (see the module's docstring).

    ``config.classes`` is ignored: the exhibits are the images (and crops) found. Returns a
    summary as :func:`artid.data.synth.generate` does.
    """
    settings.validate()
    start = time.perf_counter()
    sources = scan_sources(settings.dirs, config.progress)
    exhibits, held = cut_exhibits(
        sources, config.seed, settings.holdout_share, settings.crops, config.image_size // 2
    )
    config = replace(config, classes=max(10, len(exhibits)))
    if len(exhibits) < 10:
        raise ArtidError(
            f"--source-images: {len(exhibits)} exhibits from {len(sources)} distinct images; "
            "a benchmark needs at least 10 (add images or raise --crops)"
        )
    config.validate()
    root = Path(out_dir)
    extra = {
        "sources": fingerprint(sources),
        "sources_format": SOURCES_FORMAT,
        "crops": settings.crops,
        "holdout_share": settings.holdout_share,
    }
    _check_root(root, config, extra)
    work = 2 * config.image_size
    jobs = [("exhibits", i, e) for i, e in enumerate(exhibits)]
    jobs += [("held_out", i, e) for i, e in enumerate(held)]
    _map(
        lambda j: _prepare(root, _prepared(j[0], j[1]), j[2], work),
        jobs,
        1,
        "prepare",
        config.progress,
    )
    plan = plan_for(config)

    def shape(e: Exhibit) -> tuple[bool, float]:
        return e.source.transparent, (e.box[2] - e.box[0]) / max(1, e.box[3] - e.box[1])

    render = partial(
        render_real, root=str(root), meta=tuple(map(shape, exhibits)), held=tuple(map(shape, held))
    )
    results = _map(
        partial(
            run_job, root=str(root), seed=config.seed, image_size=config.image_size, render=render
        ),
        plan.jobs,
        config.workers,
        "images",
        config.progress,
    )
    write_placements(
        root,
        {job.path: quad for job, (_, quad) in zip(plan.jobs, results) if quad is not None},
        FORMAT_VERSION,
    )
    write_compact_json(
        root / "ground_truth" / "sources.json",
        {"exhibits": _listing(exhibits), "held_out": _listing(held)},
    )
    write_ground_truth(root, plan)
    n_written = int(sum(w for w, _ in results))
    return {
        "root": str(root),
        "source_images": len(sources),
        "duplicates_merged": sum(len(s.duplicates) for s in sources),
        "classes": len(exhibits),
        "held_out_images": len(held),
        "database_images": len(plan.database),
        "val_met": sum("MET_id" in r for r in plan.val),
        "test_met": sum("MET_id" in r for r in plan.test),
        "val_distractors": sum("MET_id" not in r for r in plan.val),
        "test_distractors": sum("MET_id" not in r for r in plan.test),
        "images_written": n_written,
        "seconds": round(time.perf_counter() - start, 2),
    }
