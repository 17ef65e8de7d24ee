"""Table 5.3 of the thesis on a synthetic benchmark: every training method against the untrained model.

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
from artid.training.data import EntryImages
from artid.training.runs import RunSpec, train
from artid.training.settings import CommonSettings, ContrastiveSettings, DNetSettings, MethodSettings, SimSiamSettings
from artid.training.table53_scores import format_table, knn_answers, load_answers, row_stats, save_answers
from artid.training.trainer import BEST_FILE
from artid.training.validation import embed_images, parametric_predict, tune_temperature

log = logging.getLogger(__name__)

#: The DNet parametric classifier's own best epoch (the trainer's selection with prefix ``param_``).
BEST_PARAM_FILE, BEST_PARAM_HEAD_FILE = "best_param.pt", "best_param_head.pt"

CONTRASTIVE = ("Con-Syn", "Con-Syn+Real", "Con-Syn+Real-closest")
#: Row name -> the method and its settings (None: no training).
ROWS: dict[str, MethodSettings | None] = {
    "untrained": None,
    "Con-Syn": ContrastiveSettings(positives="con-syn"),
    "Con-Syn+Real": ContrastiveSettings(positives="con-syn+real"),
    "Con-Syn+Real-closest": ContrastiveSettings(positives="con-syn+real-closest"),
    "SimSiam": SimSiamSettings(),
    "DNet CE": DNetSettings(loss="ce"),
    "DNet ArcFace": DNetSettings(loss="arcface"),
    "DNet CE balanced": DNetSettings(loss="ce", sampling="balanced"),
}
QUICK_ROWS = ("untrained", "Con-Syn+Real", "DNet CE")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the synthetic benchmark, the runs and the table (table53.md, table53.json); "
                        "running the same command again resumes, skipping finished rows")
    p.add_argument("--root", type=Path, default=None,
                   help="an existing Met-format root (default: generate a synthetic one in OUT/synth)")
    p.add_argument("--quick", action="store_true",
                   help="minutes, not hours: 100 classes, 240 visitor photos, 2 epochs, one seed, rows "
                        + ", ".join(QUICK_ROWS))
    p.add_argument("--classes", type=int, default=None, help="synthetic classes (default 300; --quick 100)")
    p.add_argument("--met-queries", type=int, default=None,
                   help="synthetic visitor photos, val + test (default 600: about 180 val, 420 test; --quick 240)")
    p.add_argument("--distractor-ratio", type=float, default=2.0, help="synthetic distractors per visitor photo")
    p.add_argument("--synth-size", type=int, default=128, help="synthetic image size (longer side)")
    p.add_argument("--size", type=int, default=96, help="load size and training crop size")
    p.add_argument("--preset", default="artid", choices=["artid", "paper"],
                   help="training defaults of every row (see `artid train contrastive --help`)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of every method (default: the preset's; --quick 2)")
    p.add_argument("--lr", type=float, default=None,
                   help="backbone learning rate of every method (default: the preset's)")
    p.add_argument("--augment", default=None, choices=["paper", "insitu"],
                   help="synthetic positives of every row (default: the preset's; README, training section)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds of the contrastive rows (default 2; --quick 1); other rows use one seed")
    p.add_argument("--whiten", default="auto", choices=["auto", "pcaw", "none"],
                   help="whitening of the kNN evaluation (auto: chosen on val for every row)")
    p.add_argument("--model", default="efficientnet_lite0", help="backbone every row starts from")
    p.add_argument("--rows", default=None, help=f"comma-separated subset of the rows ({', '.join(ROWS)})")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the standard errors")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"], help="mixed precision of training (CUDA)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the synthetic benchmark and the first seed of every run")


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {"classes": args.classes or (100 if quick else 300),
            "met_queries": args.met_queries or (240 if quick else 600),
            "epochs": args.epochs if args.epochs is not None else (2 if quick else None),
            "seeds": args.seeds or (1 if quick else 2),
            "rows": [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows
            else list(QUICK_ROWS if quick else ROWS)}


def _plan(rows: list[str], seeds: int, seed: int) -> list[tuple[str, str, int]]:
    """(display name, row, seed) of every run, the contrastive rows once per seed."""
    plan = []
    for row in rows:
        for i in range(seeds if row in CONTRASTIVE else 1):
            plan.append((row if i == 0 else f"{row} (seed {seed + i})", row, seed + i))
    return plan


def _embed_all(model: torch.nn.Module, sources: dict[str, EntryImages], device: torch.device) -> dict[str, np.ndarray]:
    return {k: embed_images(model, s, device, batch_size=64, desc=f"embedding {k}") for k, s in sources.items()}


def _parametric_answers(head_file: Path, desc: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                        class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    from artid.training.heads import CosineClassifier

    state = torch.load(head_file, map_location="cpu", weights_only=True)
    head = CosineClassifier(state["weight"].shape[1], state["weight"].shape[0])
    head.load_state_dict(state)
    with torch.no_grad():
        cos = {k: head(torch.from_numpy(desc[k])).numpy() for k in ("val", "test")}
    t, _ = tune_temperature(cos["val"], labels["val"], class_ids)
    pred, score = parametric_predict(cos["test"], t)
    return class_ids[pred], score, {"temperature": t}


def _train_row(args: argparse.Namespace, sizes: dict[str, Any], root: Path, out: Path, row: str,
               seed: int) -> tuple[Path, dict[str, Any]]:
    settings = ROWS[row]
    assert settings is not None  # the untrained row is not trained
    slug = row.lower().replace(" ", "_").replace("+", "_") + (f"_seed{seed}" if seed != args.seed else "")
    run_dir = out / "runs" / slug
    common = CommonSettings(root=root, out=run_dir, model=args.model, preset=args.preset, epochs=sizes["epochs"],
                            lr=args.lr, image_size=args.size, max_size=args.size, device=args.device, seed=seed,
                            amp=args.amp, augment=args.augment)
    spec = RunSpec(common=common, settings=settings)
    result = train(spec)
    trained = [h for h in result.history if h.get("epoch", 0) >= 1]
    return run_dir, {"best_epoch": result.best_epoch, "steps": int(sum(h.get("steps", 0) for h in trained)),
                     "history": result.history}


def run(args: argparse.Namespace) -> int:
    from artid.models import build_embedder

    t_start = time.perf_counter()
    sizes = _sizes(args)
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
        generate(root, SynthConfig(classes=sizes["classes"], seed=args.seed, image_size=args.synth_size,
                                   met_queries=sizes["met_queries"], val_share=0.3,
                                   distractor_ratio=args.distractor_ratio))
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
    results: dict[str, dict[str, Any]] = json.loads(results_file.read_text()) if results_file.is_file() else {}
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
            pred, score, info = _parametric_answers(run_dir / BEST_PARAM_HEAD_FILE, pdesc, labels, class_ids)
            save_answers(out / "answers" / f"{len(results):02d}_parametric.npz", pred, score)
            entry["parametric_file"], entry["parametric_info"] = f"answers/{len(results):02d}_parametric.npz", info
        entry["minutes"] = (time.perf_counter() - t0) / 60
        results[name] = entry
        results_file.write_text(json.dumps(results, indent=1))
        log.info("%s done in %.1f min", name, entry["minutes"])
    scored = _score(out, results, labels["test"], keys["test"], args.resamples)
    (out / "table53_scores.json").write_text(json.dumps(scored, indent=1))
    n_met = {k: int(np.sum(v >= 0)) for k, v in labels.items() if k != "database"}
    header = (f"Table 5.3 on {root}: {len(splits['database'].entries)} database images of {len(class_ids)} classes; "
              f"val {len(labels['val'])} queries ({n_met['val']} visitor photos), test {len(labels['test'])} "
              f"({n_met['test']} visitor photos); {args.size} px, preset {args.preset}"
              f"{', epochs ' + str(sizes['epochs']) if sizes['epochs'] else ''}, {args.model}; test set, % ± "
              f"bootstrap SE ({args.resamples} resamples); Δ: paired difference to the untrained model")
    text = header + "\n\n" + format_table(scored) + f"\n\ntotal {(time.perf_counter() - t_start) / 60:.1f} minutes\n"
    (out / "table53.md").write_text(text)
    print(text)
    return 0


def _score(out: Path, results: dict[str, dict[str, Any]], labels: np.ndarray, keys: np.ndarray,
           resamples: int) -> dict[str, dict[str, Any]]:
    """Every row's statistics, with the paired difference to the untrained kNN row."""
    base = load_answers(out / results["untrained"]["knn_file"])
    scored: dict[str, dict[str, Any]] = {}
    for name, entry in results.items():
        row: dict[str, Any] = {k: entry.get(k) for k in ("best_epoch", "steps", "minutes", "knn_info")}
        for key in ("knn", "parametric"):
            if entry.get(f"{key}_file"):
                answers = load_answers(out / entry[f"{key}_file"])
                row[key] = row_stats(answers, None if name == "untrained" and key == "knn" else base,
                                     labels, keys, resamples)
        scored[name] = row
    return scored
