"""One image of the benchmark per job: which photo a job is, rendered, and saved as a JPEG.

Every image is a pure function of ``(job, seed, image_size)``: its random stream is keyed by the
job (:func:`artid.data.synth.seeding.rng_for`), so the output does not depend on the number or
order of the rendering processes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from artid.data.synth.distractors import noart_photo, reproduction_photo
from artid.data.synth.families import design_of
from artid.data.synth.gallery import visitor_photo, visitor_photo_placed
from artid.data.synth.layout import Job
from artid.data.synth.seeding import rng_for
from artid.data.synth.studio import studio_photo
from artid.files import atomic_path

STUDIO_JPEG_QUALITY = 92
#: Share of the other-art distractors that are reproductions (the other museum's own picture of
#: the work, as found on the web: the Met's other-art queries come from Wikimedia Commons' art
#: categories); the rest are visitor photos taken in another museum's galleries. 0.7 is our choice,
#: not a figure of the paper: it puts the distractors' top-1 similarity at that of correct Met
#: queries, with a smaller margin to the second class, as the paper's k=1 row implies.
REPRODUCTION_SHARE = 0.7


def save_jpeg(img: Image.Image, path: Path, quality: int) -> None:
    """Write ``img`` as a JPEG of ``quality`` atomically (parents created)."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=quality)


def render_job(job: Job, seed: int, image_size: int) -> Image.Image:
    """The image of one job, and nothing else (a pure function of its arguments)."""
    return render_placed(job, seed, image_size)[0]


def render_placed(
    job: Job, seed: int, image_size: int
) -> tuple[Image.Image, list[tuple[float, float]] | None]:
    """The image of one job and, for a Met query, the exhibit's quadrilateral in it (else None)."""
    rng = rng_for(seed, job.kind, job.index, job.view)
    if job.kind == "met":
        assert job.member is not None
        return visitor_photo_placed(
            design_of(seed, "met", job.index, job.member), seed, rng, image_size
        )
    if job.kind == "studio":
        assert job.member is not None
        return studio_photo(
            design_of(seed, "met", job.index, job.member), job.view, rng, image_size
        ), None
    if job.kind == "other":
        assert job.member is not None
        design = design_of(seed, "other", job.index, job.member)
        if rng.random() < REPRODUCTION_SHARE:
            return reproduction_photo(design, rng, image_size), None
        return visitor_photo(design, seed, rng, image_size), None
    if job.kind == "noart":
        assert job.category is not None
        return noart_photo(seed, job.category, rng, image_size), None
    raise ValueError(f"unknown job kind {job.kind!r}")


def jpeg_quality(job: Job, seed: int) -> int:
    """Studio photos are saved at high quality, visitor photos at what a phone or upload leaves."""
    if job.kind == "studio":
        return STUDIO_JPEG_QUALITY
    return int(rng_for(seed, "jpeg", job.kind, job.index, job.view).integers(60, 96))


Placed = tuple[Image.Image, list[tuple[float, float]] | None]


def run_job(
    job: Job,
    root: str,
    seed: int,
    image_size: int,
    render: Callable[[Job, int, int], Placed] = render_placed,
) -> tuple[bool, list[tuple[float, float]] | None]:
    """Render (with ``render``, default :func:`render_placed`) and save one image unless it
    exists; a Met query's placement is computed either way (on resume, by rendering the photo
    again without saving it)."""
    path = Path(root) / job.path
    exists = path.is_file()
    if exists and job.kind != "met":
        return False, None
    img, quad = render(job, seed, image_size)
    if not exists:
        save_jpeg(img, path, jpeg_quality(job, seed))
    return not exists, quad
