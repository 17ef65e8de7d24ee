"""A synthetic benchmark with the Met's layout and difficulties.

``generate(out_dir, SynthConfig(classes=300, image_size=192))`` writes a Met-format root
(``MET/<id>/<n>.jpg``, ``test_met|test_other|test_noart/*.jpg``, ``ground_truth/*.json``
read by :func:`artid.data.met.load_split`) plus ``ground_truth/attributes.json`` (iMet-style
attribute labels of every exhibit), the same labels in the iMet Collection layout under ``imet/``
(read by :class:`artid.attributes.IMetDataset`) and ``ground_truth/placements.json`` (where each
Met query's exhibit is in the photo); see :mod:`artid.data.synth.annotations`. Studio photos of
procedurally generated exhibits (paintings, prints, textiles, photographs, vessels, sculptures,
coins; families of near-identical works; 1-10 views with the Met's long tail) form the database; visitor
photos in gallery rooms are the Met queries; other artworks and non-art photos are the
distractors. Output is a pure function of the config (not of the number of workers);
an interrupted run resumes, keeping the images already written.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from artid.data.synth.annotations import write_attributes, write_imet, write_placements
from artid.data.synth.attributes import labels_of, vocabulary
from artid.data.synth.distractors import noart_photo, reproduction_photo
from artid.data.synth.families import Member, design_of
from artid.data.synth.gallery import visitor_photo, visitor_photo_placed
from artid.data.synth.layout import Job, Plan, make_plan, write_ground_truth, write_json
from artid.data.synth.seeding import rng_for
from artid.data.synth.studio import studio_photo
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: Bumped whenever the same config renders other images, so that an old folder is not resumed
#: with a mix of old and new images or files (2: the visitor photos and distractors of issue 4's
#: rework; 3: same images, plus imet/ and ground_truth/placements.json).
FORMAT_VERSION = 3
STUDIO_JPEG_QUALITY = 92
#: Share of the other-art distractors that are reproductions (the other museum's own picture of
#: the work, as found on the web: the Met's other-art queries come from Wikimedia Commons' art
#: categories); the rest are visitor photos taken in another museum's galleries. 0.7 is our choice,
#: not a figure of the paper: it puts the distractors' top-1 similarity at that of correct Met
#: queries, with a smaller margin to the second class, as the paper's k=1 row implies.
REPRODUCTION_SHARE = 0.7
#: The Met's validation set: 129 of its 1,132 Met queries (about 11%).
MET_VAL_QUERIES = 129
MET_VAL_SHARE = 0.1
#: The largest val share the default gives to small benchmarks (test keeps the majority).
MAX_AUTO_VAL_SHARE = 0.4


@dataclass(frozen=True)
class SynthConfig:
    """Size and shape of a synthetic benchmark.

    Attributes:
        classes: exhibits in the database (the Met has 224,408).
        seed: everything written is a function of the seed and the other content fields.
        image_size: longer side of every image in pixels (the Met ships 500). Measured with the
            offline EfficientNet-Lite0 (``artid demo`` defaults: 600 classes, 350 Met queries,
            8 distractors per query): at 256 px the paper's orderings hold (multi-scale and
            PCA-whitening help, k=1 halves GAP); at 192 px whitening gained nothing (the half
            scale leaves 96 px), so use 192 px for smoke runs only.
        met_queries: visitor photos of exhibits, val + test (default: 30% of the classes,
            at most 1,132 as in the Met).
        val_share: share of the query classes that go to val (the rest to test). Default: the
            Met's share (about 10%) where that gives val the Met's 129 Met queries, else as much
            as needed for 129, at most 40%: tuning k and tau on a few dozen queries is noise.
        distractor_ratio: distractors per Met query in each split (the Met test set: ~18).
        other_share: share of the distractors that are other artworks (the rest non-art).
        mini_share: share of the classes in the mini database (it always holds every query class).
        single_share: share of classes with a single studio photo (the Met: about 60%).
        workers: rendering processes (does not change the output).
        progress: show a progress bar.
    """

    classes: int = 1000
    seed: int = 0
    image_size: int = 500
    met_queries: int | None = None
    val_share: float | None = None
    distractor_ratio: float = 18.0
    other_share: float = 0.565
    mini_share: float = 0.15
    single_share: float = 0.6
    workers: int = 1
    progress: bool = True

    @property
    def n_met_queries(self) -> int:
        if self.met_queries is not None:
            return self.met_queries
        return min(1132, max(10, int(round(0.3 * self.classes))))

    @property
    def n_val_share(self) -> float:
        """The val share in use (``val_share``, or the default described above)."""
        if self.val_share is not None:
            return self.val_share
        return float(min(MAX_AUTO_VAL_SHARE, max(MET_VAL_SHARE, MET_VAL_QUERIES / self.n_met_queries)))

    def content(self) -> dict[str, Any]:
        """The fields that determine the output (everything but workers and progress)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("workers", "progress")}
        out["met_queries"] = self.n_met_queries
        out["val_share"] = self.n_val_share
        return out

    def validate(self) -> None:
        """Raise ArtidError naming the first field out of range."""
        if self.classes < 10:
            raise ArtidError(f"classes must be at least 10 (val and test need classes of their own), "
                             f"got {self.classes}")
        if not 32 <= self.image_size <= 4096:
            raise ArtidError(f"image_size must be between 32 and 4096 pixels, got {self.image_size}")
        if self.seed < 0:
            raise ArtidError(f"seed must be non-negative, got {self.seed}")
        if not 2 <= self.n_met_queries:
            raise ArtidError(f"met_queries must be at least 2 (one for val, one for test), got {self.n_met_queries}")
        for name in ("val_share", "other_share", "mini_share", "single_share"):
            value = getattr(self, name)
            if value is None and name == "val_share":
                continue
            if not 0.0 <= value <= 1.0:
                raise ArtidError(f"{name} must be between 0 and 1, got {value}")
        if self.distractor_ratio < 0:
            raise ArtidError(f"distractor_ratio must be non-negative, got {self.distractor_ratio}")
        if self.workers < 1:
            raise ArtidError(f"workers must be at least 1, got {self.workers}")


def _save_jpeg(img: Image.Image, path: Path, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, path)


def render_job(job: Job, seed: int, image_size: int) -> Image.Image:
    """The image of one job, and nothing else (a pure function of its arguments)."""
    return render_placed(job, seed, image_size)[0]


def render_placed(job: Job, seed: int, image_size: int) -> tuple[Image.Image, list[tuple[float, float]] | None]:
    """The image of one job and, for a Met query, the exhibit's quadrilateral in it (else None)."""
    rng = rng_for(seed, job.kind, job.index, job.view)
    if job.kind == "met":
        assert job.member is not None
        return visitor_photo_placed(design_of(seed, "met", job.index, job.member), seed, rng, image_size)
    if job.kind == "studio":
        assert job.member is not None
        return studio_photo(design_of(seed, "met", job.index, job.member), job.view, rng, image_size), None
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
    """Studio photos are saved at high quality, visitor photos at what a phone or a web upload leaves."""
    if job.kind == "studio":
        return STUDIO_JPEG_QUALITY
    return int(rng_for(seed, "jpeg", job.kind, job.index, job.view).integers(60, 96))


def _run_job(job: Job, root: str, seed: int, image_size: int) -> tuple[bool, list[tuple[float, float]] | None]:
    """Render and save one image unless it exists; a Met query's placement is computed either way
    (on resume, by rendering the photo again without saving it)."""
    path = Path(root) / job.path
    exists = path.is_file()
    if exists and job.kind != "met":
        return False, None
    img, quad = render_placed(job, seed, image_size)
    if not exists:
        _save_jpeg(img, path, jpeg_quality(job, seed))
    return not exists, quad


def _attributes(c: int, member: Member, seed: int) -> list[str]:
    return labels_of(design_of(seed, "met", c, member))


def _map(fn: Any, items: list[Any], workers: int, desc: str, progress: bool) -> list[Any]:
    bar = tqdm(total=len(items), desc=desc, unit="img" if desc == "images" else "it", disable=not progress,
               dynamic_ncols=True)
    out = []
    try:
        if workers == 1:
            for item in items:
                out.append(fn(item))
                bar.update()
        else:
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            chunk = max(1, min(32, len(items) // (workers * 8) or 1))
            with ctx.Pool(workers) as pool:
                for result in pool.imap(fn, items, chunksize=chunk):
                    out.append(result)
                    bar.update()
    finally:
        bar.close()
    return out


def _call(args: tuple, fn: Any, **kw: Any) -> Any:
    return fn(*args, **kw)


def _check_root(root: Path, config: SynthConfig) -> None:
    stamp = root / "ground_truth" / "synth_config.json"
    wanted = {"format": FORMAT_VERSION, **config.content()}
    if stamp.is_file():
        try:
            found = json.loads(stamp.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError) as exc:
            raise ArtidError(f"{stamp}: unreadable ({exc}); delete it or choose another output folder") from None
        if found != wanted:
            diff = ", ".join(f"{k}: {found.get(k)!r} -> {v!r}" for k, v in wanted.items() if found.get(k) != v)
            raise ArtidError(f"{root} holds a synthetic benchmark made with other settings ({diff}); "
                             f"choose another output folder or delete it")
        log.info("resuming the benchmark in %s (images already written are kept)", root)
        for stale in root.rglob("*.jpg.tmp"):  # half-written when the last run was interrupted
            stale.unlink()
    elif root.exists() and any(root.iterdir()):
        raise ArtidError(f"output folder {root} is not empty and holds no synthetic benchmark; choose an empty folder")
    write_json(stamp, wanted)


def generate(out_dir: str | Path, config: SynthConfig) -> dict[str, Any]:
    """Write a synthetic Met-format benchmark.

    Args:
        out_dir: dataset root to create (or to resume: same config, images already there are kept).
        config: size and settings.

    Returns:
        A summary: counts per split and kind, the single-image share, images written,
        seconds and images per second.

    Raises:
        ArtidError: a config field out of range, or ``out_dir`` holds something else.
    """
    config.validate()
    root = Path(out_dir)
    _check_root(root, config)
    start = time.perf_counter()
    plan: Plan = make_plan(config.classes, config.seed, config.n_met_queries, config.n_val_share,
                           config.distractor_ratio, config.other_share, config.mini_share, config.single_share)
    results = _map(partial(_run_job, root=str(root), seed=config.seed, image_size=config.image_size),
                   plan.jobs, config.workers, "images", config.progress)
    image_seconds = time.perf_counter() - start
    labels = _map(partial(_call, fn=_attributes, seed=config.seed),
                  list(enumerate(plan.members)), config.workers, "attributes", config.progress)
    write_attributes(root, plan, labels, vocabulary(), FORMAT_VERSION)
    write_imet(root, plan, labels, vocabulary())
    write_placements(root, {job.path: quad for job, (_, quad) in zip(plan.jobs, results) if quad is not None},
                     FORMAT_VERSION)
    write_ground_truth(root, plan)
    seconds = time.perf_counter() - start
    n_written = int(sum(w for w, _ in results))
    summary = {
        "root": str(root),
        "classes": config.classes,
        "database_images": len(plan.database),
        "single_image_share": sum(v == 1 for v in plan.views) / config.classes,
        "mini_classes": len({r["id"] for r in plan.mini}),
        "mini_images": len(plan.mini),
        **{f"{s}_{k}": sum(1 for r in rows if _row_kind(r) == k)
           for s, rows in (("val", plan.val), ("test", plan.test)) for k in ("met", "other", "noart")},
        "images_total": len(plan.jobs),
        "images_written": n_written,
        "seconds": round(seconds, 2),
        "images_per_second": round(n_written / image_seconds, 1) if image_seconds > 0 else None,
    }
    log.info("synthetic benchmark in %s: %s", root, summary)
    return summary


def _row_kind(row: dict[str, Any]) -> str:
    return "met" if "MET_id" in row else row["path"].split("/")[0].replace("test_", "")


__all__ = ["FORMAT_VERSION", "SynthConfig", "generate", "render_job", "render_placed"]
