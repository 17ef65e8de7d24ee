"""What the benchmark holds: class sizes with the Met's long tail, query splits, file names,
and the Met-format ground-truth JSON files.

Everything here is planning on integers (no pixels): the plan lists one job per image,
and the JSON is written from the plan, so it never depends on how rendering went.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.synth.config import SynthConfig
from artid.data.synth.distractors import NOART_CATEGORIES
from artid.data.synth.families import Member, plan_families
from artid.data.synth.seeding import rng_for
from artid.files import write_text

MAX_VIEWS = 10


@dataclass(frozen=True)
class Job:
    """One image to render.

    Attributes:
        kind: ``studio`` (database image), ``met`` (visitor photo of a class), ``other``
            (other-art distractor) or ``noart`` (non-art distractor).
        index: class id (studio, met) or distractor index (other, noart).
        view: view number (studio) or query number (met, other, noart): keys the image's random
            stream.
        member: family membership of the exhibit shown (studio, met, other).
        category: non-art category (noart only).
        path: output path relative to the dataset root.
    """

    kind: str
    index: int
    view: int
    member: Member | None
    category: str | None
    path: str


@dataclass(frozen=True)
class Plan:
    """The whole benchmark as lists of jobs and ground-truth rows."""

    members: list[Member]
    views: list[int]
    jobs: list[Job]
    database: list[dict[str, Any]]
    mini: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]


def views_per_class(n: int, rng: np.random.Generator, single_share: float) -> list[int]:
    """Number of studio photos of each class: 1 with probability ``single_share``, else
    2..10 with geometrically falling odds (ratio 0.5), which gives the Met's mean of about
    1.8 images per class at the default 60% single-image share."""
    sizes = np.arange(2, MAX_VIEWS + 1)
    p = 0.5 ** (sizes - 2)
    p /= p.sum()
    single = rng.random(n) < single_share
    multi = rng.choice(sizes, size=n, p=p)
    return np.where(single, 1, multi).astype(int).tolist()


def make_plan(
    classes: int,
    seed: int,
    met_queries: int,
    val_share: float,
    distractor_ratio: float,
    other_share: float,
    mini_share: float,
    single_share: float,
) -> Plan:
    """Plan a benchmark (see :class:`artid.data.synth.SynthConfig` for the parameters)."""
    rng = rng_for(seed, "plan")
    members = plan_families(classes, rng_for(seed, "families"))
    views = views_per_class(classes, rng, single_share)
    jobs = [
        Job("studio", c, v, members[c], None, f"MET/{c}/{v}.jpg")
        for c in range(classes)
        for v in range(views[c])
    ]
    database = [
        {"id": c, "path": f"MET/{c}/{v}.jpg"} for c in range(classes) for v in range(views[c])
    ]

    # Met queries: distinct classes, a few photographed twice; val and test class-disjoint.
    n_qclasses = max(2, min(classes, int(round(met_queries / 1.15))))
    qclasses = rng.choice(classes, size=n_qclasses, replace=False)
    n_val = min(n_qclasses - 1, max(1, int(round(val_share * n_qclasses))))
    split_of = {int(c): ("val" if i < n_val else "test") for i, c in enumerate(qclasses)}
    photos = [int(c) for c in qclasses]
    extra = max(0, met_queries - n_qclasses)
    photos += [int(c) for c in rng.choice(qclasses, size=extra, replace=extra > n_qclasses)]
    photos = [photos[i] for i in rng.permutation(len(photos))]
    rows: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
    for q, c in enumerate(photos):
        path = f"test_met/{q:06d}.jpg"
        jobs.append(Job("met", c, q, members[c], None, path))
        rows[split_of[c]].append({"path": path, "MET_id": c})

    # Distractors: as many per split as the ratio asks, other-art and non-art mixed.
    counts = {s: int(round(distractor_ratio * len(rows[s]))) for s in rows}
    n_other_total = sum(int(round(other_share * counts[s])) for s in rows)
    other_members = (
        plan_families(n_other_total, rng_for(seed, "other-families")) if n_other_total else []
    )
    i_other = i_noart = 0
    for s in ("val", "test"):
        n_other = int(round(other_share * counts[s]))
        for _ in range(n_other):
            path = f"test_other/{i_other:06d}.jpg"
            jobs.append(Job("other", i_other, i_other, other_members[i_other], None, path))
            rows[s].append({"path": path, "category": "other artwork"})
            i_other += 1
        for _ in range(counts[s] - n_other):
            category = str(rng.choice(NOART_CATEGORIES))
            path = f"test_noart/{i_noart:06d}.jpg"
            jobs.append(Job("noart", i_noart, i_noart, None, category, path))
            rows[s].append({"path": path, "category": category})
            i_noart += 1
    for s in rows:
        rows[s] = [rows[s][i] for i in rng.permutation(len(rows[s]))]

    # Mini database: every query class plus a random share of the others, all their images.
    n_mini = max(len(qclasses), int(round(mini_share * classes)))
    rest = np.setdiff1d(np.arange(classes), qclasses)
    mini_classes = set(int(c) for c in qclasses) | set(
        int(c) for c in rng.choice(rest, size=min(len(rest), n_mini - len(qclasses)), replace=False)
    )
    mini = [row for row in database if row["id"] in mini_classes]
    return Plan(
        members=members,
        views=views,
        jobs=jobs,
        database=database,
        mini=mini,
        val=rows["val"],
        test=rows["test"],
    )


def write_compact_json(path: Path, data: Any) -> None:
    """Write JSON without spaces, one line and a newline, atomically (:mod:`artid.files`)."""
    write_text(path, json.dumps(data, separators=(",", ":")) + "\n")


def write_ground_truth(root: Path, plan: Plan) -> None:
    """Write the four Met ground-truth files under ``root/ground_truth``."""
    gt = root / "ground_truth"
    write_compact_json(gt / "MET_database.json", plan.database)
    write_compact_json(gt / "mini_MET_database.json", plan.mini)
    write_compact_json(gt / "valset.json", plan.val)
    write_compact_json(gt / "testset.json", plan.test)


def plan_for(config: SynthConfig) -> Plan:
    """The plan of a benchmark with ``config``'s sizes and seed (procedural or from real images)."""
    return make_plan(
        config.classes,
        config.seed,
        config.n_met_queries,
        config.n_val_share,
        config.distractor_ratio,
        config.other_share,
        config.mini_share,
        config.single_share,
    )
