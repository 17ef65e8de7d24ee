"""Table 5.3 of the thesis on a synthetic benchmark: every training method against the untrained
model.

Rows: the untrained model; Con-Syn, Con-Syn+Real, Con-Syn+Real-closest (each with two seeds by
default); SimSiam; DNet CE and ArcFace (their parametric classifier and kNN on their embedding);
DNet CE with class-balanced sampling (the long-tail variant). Every row is evaluated the same way
on the same test queries: single-scale descriptors of the best epoch's model (the untrained model
is a candidate epoch of every run), the kNN pipeline fitted on the database with whitening and
(k, tau) chosen on val; the parametric rows use the DNet head with its temperature tuned on val
GAP. Each row reports GAP / GAP- / ACC with bootstrap SE over test queries and the paired
difference to the untrained row (a gain only beyond 3 paired SE), its optimiser steps and wall
time. A row's answers are saved as it finishes, so an interrupted run resumes where it stopped.

Default size: 300 classes, 600 visitor photos (about 180 val, 420 test) with 2 distractors each,
128 px images, training at 96 px. ``--quick`` runs three rows on a smaller benchmark in minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artid.data.met import load_split
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.files import write_json, write_text
from artid.training.data import EntryImages
from artid.training.methods import DNetSettings
from artid.training.runs import RunSpec, train
from artid.training.sections import DataSettings, ModelSettings, OptimSettings
from artid.training.table53_rows import CONTRASTIVE, ROWS, add_arguments, table_sizes
from artid.training.table53_scores import (
    format_table,
    knn_answers,
    load_answers,
    row_stats,
    save_answers,
)
from artid.training.trainer import BEST_FILE
from artid.training.validation import embed_images, parametric_predict, tune_parametric_temperature

log = logging.getLogger(__name__)

#: The DNet parametric classifier's own best epoch (the trainer's selection with prefix ``param_``).
BEST_PARAM_FILE, BEST_PARAM_HEAD_FILE = "best_param.pt", "best_param_head.pt"


def _plan(rows: list[str], seeds: int, seed: int) -> list[tuple[str, str, int]]:
    """(display name, row, seed) of every run, the contrastive rows once per seed."""
    plan = []
    for row in rows:
        for i in range(seeds if row in CONTRASTIVE else 1):
            plan.append((row if i == 0 else f"{row} (seed {seed + i})", row, seed + i))
    return plan


def _embed_all(
    model: torch.nn.Module, sources: dict[str, EntryImages], device: torch.device
) -> dict[str, np.ndarray]:
    return {
        k: embed_images(model, s, device, batch_size=64, desc=f"embedding {k}")
        for k, s in sources.items()
    }


def _parametric_answers(
    head_file: Path,
    desc: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    class_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    from artid.training.heads import CosineClassifier

    state = torch.load(head_file, map_location="cpu", weights_only=True)
    head = CosineClassifier(state["weight"].shape[1], state["weight"].shape[0])
    head.load_state_dict(state)
    with torch.no_grad():
        cos = {k: head(torch.from_numpy(desc[k])).numpy() for k in ("val", "test")}
    t, _ = tune_parametric_temperature(cos["val"], labels["val"], class_ids)
    pred, score = parametric_predict(cos["test"], t)
    return class_ids[pred], score, {"temperature": t}


def _train_row(
    args: argparse.Namespace, sizes: dict[str, Any], root: Path, out: Path, row: str, seed: int
) -> tuple[Path, dict[str, Any]]:
    settings = ROWS[row]
    assert settings is not None  # the untrained row is not trained
    slug = row.lower().replace(" ", "_").replace("+", "_") + (
        f"_seed{seed}" if seed != args.seed else ""
    )
    run_dir = out / "runs" / slug
    spec = RunSpec(
        out=run_dir,
        preset=args.preset,
        settings=settings,
        data=DataSettings(
            root=root, image_size=args.size, max_size=args.size, augment=args.augment
        ),
        model=ModelSettings(model=args.model, device=args.device),
        optim=OptimSettings(epochs=sizes["epochs"], lr=args.lr, seed=seed, amp=args.amp),
    )
    result = train(spec)
    trained = [h for h in result.history if h.get("epoch", 0) >= 1]
    return run_dir, {
        "best_epoch": result.best_epoch,
        "steps": int(sum(h.get("steps", 0) for h in trained)),
        "history": result.history,
    }


def run(args: argparse.Namespace) -> int:
    from artid.models import build_embedder

    t_start = time.perf_counter()
    sizes = table_sizes(args)
    unknown = [r for r in sizes["rows"] if r not in ROWS]
    if unknown:
        raise ArtidError(f"--rows: unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if "untrained" not in sizes["rows"]:
        sizes["rows"].insert(0, "untrained")  # every difference is taken against it
    out = Path(args.out)
    (out / "answers").mkdir(parents=True, exist_ok=True)
    root = args.root
    if root is None:
        from artid.data.synth import SynthConfig, generate

        root = out / "synth"
        generate(
            root,
            SynthConfig(
                classes=sizes["classes"],
                seed=args.seed,
                image_size=args.synth_size,
                met_queries=sizes["met_queries"],
                val_share=0.3,
                distractor_ratio=args.distractor_ratio,
            ),
        )
    device = resolve_device(args.device)
    splits = {k: load_split(root, k) for k in ("database", "val", "test")}
    sources: dict[str, EntryImages] = {}
    for k, s in splits.items():
        if s.image_root is None:
            raise ArtidError(f"no image of the {k} split found under {root} (nor {root}/images)")
        sources[k] = EntryImages(s.image_root, s.entries, args.size)
    labels = {k: np.asarray(s.labels, dtype=np.int64) for k, s in splits.items()}
    keys = {k: np.array([e.path for e in s.entries], dtype=str) for k, s in splits.items()}
    class_ids = np.unique(labels["database"])
    results_file = out / "table53.json"
    results: dict[str, dict[str, Any]] = (
        json.loads(results_file.read_text()) if results_file.is_file() else {}
    )
    for name, row, seed in _plan(sizes["rows"], sizes["seeds"], args.seed):
        if name in results:
            log.info("%s: already done (%s)", name, results_file)
            continue
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"row": row, "seed": seed}
        row_args = ROWS[row]
        if row_args is None:
            model = build_embedder(args.model).to(device)
        else:
            run_dir, trained = _train_row(args, sizes, root, out, row, seed)
            entry.update(trained)
            model = build_embedder(run_dir / BEST_FILE).to(device)
        desc = _embed_all(model, sources, device)
        pred, score, info = knn_answers(desc, labels, keys, args.whiten)
        save_answers(out / "answers" / f"{len(results):02d}_knn.npz", pred, score)
        entry["knn_file"], entry["knn_info"] = f"answers/{len(results):02d}_knn.npz", info
        if isinstance(row_args, DNetSettings):
            # the parametric classifier's own best epoch (picked on its val GAP): its model and head
            param_model = build_embedder(run_dir / BEST_PARAM_FILE).to(device)
            pdesc = _embed_all(param_model, {k: sources[k] for k in ("val", "test")}, device)
            pred, score, info = _parametric_answers(
                run_dir / BEST_PARAM_HEAD_FILE, pdesc, labels, class_ids
            )
            save_answers(out / "answers" / f"{len(results):02d}_parametric.npz", pred, score)
            entry["parametric_file"], entry["parametric_info"] = (
                f"answers/{len(results):02d}_parametric.npz",
                info,
            )
        entry["minutes"] = (time.perf_counter() - t0) / 60
        results[name] = entry
        write_json(results_file, results)
        log.info("%s done in %.1f min", name, entry["minutes"])
    scored = _score(out, results, labels["test"], keys["test"], args.resamples)
    write_json(out / "table53_scores.json", scored)
    n_met = {k: int(np.sum(v >= 0)) for k, v in labels.items() if k != "database"}
    header = (
        f"Table 5.3 on {root}: {len(splits['database'].entries)} database images of "
        f"{len(class_ids)} classes; val {len(labels['val'])} queries ({n_met['val']} visitor "
        f"photos), test {len(labels['test'])} ({n_met['test']} visitor photos); {args.size} px, "
        f"preset {args.preset}{', epochs ' + str(sizes['epochs']) if sizes['epochs'] else ''}, "
        f"{args.model}; test set, % ± bootstrap SE ({args.resamples} resamples); Δ: paired "
        "difference to the untrained model"
    )
    text = (
        header
        + "\n\n"
        + format_table(scored)
        + f"\n\ntotal {(time.perf_counter() - t_start) / 60:.1f} minutes\n"
    )
    write_text(out / "table53.md", text)
    print(text)
    return 0


def _score(
    out: Path,
    results: dict[str, dict[str, Any]],
    labels: np.ndarray,
    keys: np.ndarray,
    resamples: int,
) -> dict[str, dict[str, Any]]:
    """Every row's statistics, with the paired difference to the untrained kNN row."""
    base = load_answers(out / results["untrained"]["knn_file"])
    scored: dict[str, dict[str, Any]] = {}
    for name, entry in results.items():
        row: dict[str, Any] = {
            k: entry.get(k) for k in ("best_epoch", "steps", "minutes", "knn_info")
        }
        for key in ("knn", "parametric"):
            if entry.get(f"{key}_file"):
                answers = load_answers(out / entry[f"{key}_file"])
                row[key] = row_stats(
                    answers,
                    None if name == "untrained" and key == "knn" else base,
                    labels,
                    keys,
                    resamples,
                )
        scored[name] = row
    return scored


__all__ = ["ROWS", "add_arguments", "run"]
