"""The end-to-end demo: synthetic benchmark -> descriptors -> whitening -> kNN -> the Table 5.1
ablation, and the same kNN re-ranked by spatial verification.

Every stage writes its files under one folder and is skipped when its output is already
there, so an interrupted demo resumes where it stopped (``artid demo`` again).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artid.data.met import load_split
from artid.data.synth import SynthConfig, generate
from artid.descriptors import DescriptorSet
from artid.evaluation.examples import plot_examples
from artid.evaluation.report import format_table
from artid.evaluation.reranking import RerankSetup
from artid.evaluation.run import evaluate
from artid.extraction import ExtractionSettings, extract_lists, met_sources
from artid.files import write_json, write_text
from artid.models import MULTI_SCALE, SINGLE_SCALE, build_embedder
from artid.retrieval.autotune import K_GRID
from artid.retrieval.pipeline import PipelineConfig
from artid.retrieval.rerank import RerankConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Size of the demo. The defaults took 10 minutes on a 2-core CPU (most of it extraction).

    Attributes:
        out: folder that receives the benchmark, the descriptors and the run folders.
        classes: exhibits in the synthetic database.
        image_size: longer side of the synthetic images (the Met ships 500 px).
        distractor_ratio: distractor queries per Met query (the Met test set: about 18).
        met_queries: visitor photos of exhibits, val + test.
        model: backbone name or checkpoint (default: the offline ImageNet EfficientNet-Lite0).
        dim: PCA-whitening output dimension.
        seed: benchmark seed.
        workers: processes for image generation (and for decoding when extracting on a GPU).
        device: torch device for extraction.
    """

    out: Path = Path("runs/demo")
    classes: int = 600
    image_size: int = 256
    distractor_ratio: float = 8.0
    met_queries: int = 350
    model: str = "efficientnet_lite0"
    dim: int = 512
    seed: int = 0
    workers: int = 2
    device: str = "cpu"


#: The rows of Table 5.1, then artid's re-ranking: (row name, descriptor set, whitening, k grid,
#: share of val distractors, re-ranking K or 0).
ROWS: list[tuple[str, str, str, tuple[int, ...] | None, float, int]] = [
    ("1  SS", "ss", "none", None, 1.0, 0),
    ("2  PCAw SS", "ss", "pcaw", None, 1.0, 0),
    ("3  MS", "ms", "none", None, 1.0, 0),
    ("4  PCAw MS", "ms", "pcaw", None, 1.0, 0),
    ("5  PCAw MS k=1", "ms", "pcaw", (1,), 1.0, 0),
    ("6  PCAw MS, val w/o distractors", "ms", "pcaw", None, 0.0, 0),
    ("7  PCAw MS + re-ranking K=10", "ms", "pcaw", None, 1.0, 10),
]
#: The row whose test answers are drawn in ``examples.png`` (the paper's best untrained setting).
EXAMPLES_ROW = 3


def _extract(
    cfg: DemoConfig, root: Path, scales: tuple[float, ...], name: str
) -> dict[str, DescriptorSet]:
    emb = build_embedder(cfg.model)
    settings = ExtractionSettings(
        scales=scales,
        batch_size=1 if cfg.device == "cpu" else 32,
        workers=0 if cfg.device == "cpu" else cfg.workers,
    )
    return extract_lists(
        met_sources(root, ["database", "val", "test"]),
        emb,
        cfg.out / "descriptors" / name,
        settings,
        cfg.device,
    )


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the whole demo and return its summary (also written to ``<out>/demo.json``).

    Returns:
        ``{"benchmark": synth summary, "rows": [evaluate() results], "table": str,
        "seconds": {...}}``.
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    root = cfg.out / "benchmark"
    bench = generate(
        root,
        SynthConfig(
            classes=cfg.classes,
            seed=cfg.seed,
            image_size=cfg.image_size,
            met_queries=cfg.met_queries,
            distractor_ratio=cfg.distractor_ratio,
            workers=cfg.workers,
        ),
    )
    seconds["benchmark"] = time.perf_counter() - t0
    descriptors = {}
    for name, scales in (("ss", SINGLE_SCALE), ("ms", MULTI_SCALE)):
        t = time.perf_counter()
        descriptors[name] = _extract(cfg, root, scales, name)
        seconds[f"extract_{name}"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = []
    for row_name, desc, whiten, ks, val_share, top in ROWS:
        d = descriptors[desc]
        # "6  PCAw MS, val w/o ..." -> "6_PCAw_MS_val_w_o_..."
        slug = re.sub(r"[^A-Za-z0-9]+", "_", row_name).strip("_")
        config = PipelineConfig(whiten=whiten, dim=cfg.dim, ks=ks or K_GRID)
        rerank = (
            RerankSetup(RerankConfig(top=top), root, cfg.out / "local_features") if top else None
        )
        rows.append(
            evaluate(
                d["database"],
                d["val"],
                d["test"],
                cfg.out / "runs" / slug,
                config=config,
                name=row_name,
                val_distractor_ratio=val_share,
                rerank=rerank,
            )
        )
    seconds["evaluate"] = time.perf_counter() - t
    examples = _draw_examples(root, rows[EXAMPLES_ROW], cfg.out / "examples.png")
    seconds["total"] = time.perf_counter() - t0
    table = format_table(rows, "test")
    summary = {
        "config": {k: str(v) for k, v in cfg.__dict__.items()},
        "benchmark": bench,
        "rows": [
            {
                "name": r["name"],
                "k": r["k"],
                "tau": r["tau"],
                "test": _headline(r["test"]),
                "val": _headline(r["val"]),
                "run_dir": r.get("run_dir"),
            }
            for r in rows
        ],
        "table": table,
        "examples": str(examples),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    write_json(cfg.out / "demo.json", summary, indent=2)
    write_text(cfg.out / "table.txt", table + "\n")
    return summary


def _draw_examples(root: Path, row: dict[str, Any], out: Path) -> Path:
    """Visitor photos and distractors beside the exhibit the row's classifier named."""
    split = load_split(root, "database")
    assert split.image_root is not None, "the demo's benchmark was generated on disk"
    return plot_examples(
        Path(row["run_dir"]) / "predictions_test.csv", split.image_root, split.entries, out
    )


def _headline(m: dict[str, Any]) -> dict[str, float]:
    return {key: m[key] for key in ("gap", "gap_minus", "acc")}
