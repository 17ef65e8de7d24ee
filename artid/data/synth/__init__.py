"""A synthetic benchmark with the Met's layout and difficulties.

``generate(out_dir, SynthConfig(classes=300, image_size=192))`` writes a Met-format root
(``MET/<id>/<n>.jpg``, ``test_met|test_other|test_noart/*.jpg``, ``ground_truth/*.json``
read by :func:`artid.data.met.load_split`) plus ``ground_truth/attributes.json`` (iMet-style
attribute labels of every exhibit), the same labels in the iMet Collection layout under ``imet/``
(read by :class:`artid.attributes.IMetDataset`) and ``ground_truth/placements.json`` (where each
Met query's exhibit is in the photo); see :mod:`artid.data.synth.annotations`. Studio photos of
procedurally generated exhibits (paintings, prints, textiles, photographs, vessels, sculptures,
coins; families of near-identical works; 1-10 views with the Met's long tail) form the database;
visitor photos in gallery rooms are the Met queries; other artworks and non-art photos are the
distractors. Output is a pure function of the config (not of the number of workers);
an interrupted run resumes, keeping the images already written.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from artid.data.synth.annotations import write_attributes, write_imet, write_placements
from artid.data.synth.attributes import labels_of, vocabulary
from artid.data.synth.config import SynthConfig
from artid.data.synth.families import Member, design_of
from artid.data.synth.layout import Plan, plan_for, write_compact_json, write_ground_truth
from artid.data.synth.render import render_job, render_placed, run_job
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: Bumped whenever the same config renders other images, so that an old folder is not resumed
#: with a mix of old and new images or files (2: the visitor photos and distractors of issue 4's
#: rework; 3: same images, plus imet/ and ground_truth/placements.json).
FORMAT_VERSION = 3


def _attributes(c: int, member: Member, seed: int) -> list[str]:
    return labels_of(design_of(seed, "met", c, member))


def _map(fn: Any, items: list[Any], workers: int, desc: str, progress: bool) -> list[Any]:
    bar = tqdm(
        total=len(items),
        desc=desc,
        unit="img" if desc == "images" else "it",
        disable=not progress,
        dynamic_ncols=True,
    )
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


def _check_root(root: Path, config: SynthConfig, extra: dict[str, Any] | None = None) -> None:
    # extra: further fields that determine the output (a benchmark of real images: its sources)
    stamp = root / "ground_truth" / "synth_config.json"
    wanted = {"format": FORMAT_VERSION, **config.content(), **(extra or {})}
    if stamp.is_file():
        try:
            found = json.loads(stamp.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError) as exc:
            raise ArtidError(
                f"{stamp}: unreadable ({exc}); delete it or choose another output folder"
            ) from None
        if found != wanted:
            diff = ", ".join(
                f"{k}: {found.get(k)!r} -> {v!r}" for k, v in wanted.items() if found.get(k) != v
            )
            raise ArtidError(
                f"{root} holds a synthetic benchmark made with other settings ({diff}); "
                f"choose another output folder or delete it"
            )
        log.info("resuming the benchmark in %s (images already written are kept)", root)
        # half-written when the last run was interrupted: artid.files' temporary names, and the
        # ``<name>.jpg.tmp`` that earlier versions wrote
        for pattern in (".*.tmp.*", "*.jpg.tmp"):
            for stale in root.rglob(pattern):
                if stale.is_file():
                    stale.unlink()
    elif root.exists() and any(root.iterdir()):
        raise ArtidError(
            f"output folder {root} is not empty and holds no synthetic benchmark; "
            "choose an empty folder"
        )
    write_compact_json(stamp, wanted)


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
    plan: Plan = plan_for(config)
    results = _map(
        partial(run_job, root=str(root), seed=config.seed, image_size=config.image_size),
        plan.jobs,
        config.workers,
        "images",
        config.progress,
    )
    image_seconds = time.perf_counter() - start
    labels = _map(
        partial(_call, fn=_attributes, seed=config.seed),
        list(enumerate(plan.members)),
        config.workers,
        "attributes",
        config.progress,
    )
    write_attributes(root, plan, labels, vocabulary(), FORMAT_VERSION)
    write_imet(root, plan, labels, vocabulary())
    write_placements(
        root,
        {job.path: quad for job, (_, quad) in zip(plan.jobs, results) if quad is not None},
        FORMAT_VERSION,
    )
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
        **{
            f"{s}_{k}": sum(1 for r in rows if _row_kind(r) == k)
            for s, rows in (("val", plan.val), ("test", plan.test))
            for k in ("met", "other", "noart")
        },
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
