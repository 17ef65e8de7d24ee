"""The shape of the thesis' Table 5.3 on a synthetic benchmark: every training method, briefly.

Rows: the untrained baseline; DNet CE and ArcFace (parametric classifier and kNN on their
embeddings); SimSiam; Con-Syn; Con-Syn+Real; Con-Syn+Real-closest. Every row is evaluated
the same way on the test queries: descriptors of the best epoch's model, PCA-whitening
fitted on the database, (k, tau) tuned on val GAP, kNN classifier; the parametric rows
use the DNet head with its softmax temperature tuned on val GAP. Each row's result is
saved as it finishes, so an interrupted run resumes where it stopped.

The default size (300 classes: 534 database images, 107 test Met queries, 96 px) runs in
20-30 minutes on 2 shared CPU cores. One test query is 0.9 points of ACC there, so rows a few
points apart are not distinguishable; the table shows the shape, not the paper's margins.
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
from artid.training.trainer import BEST_FILE, BEST_HEAD_FILE
from artid.training.validation import embed_images, parametric_predict, tune_temperature

log = logging.getLogger(__name__)

#: Row name -> training settings beyond the shared ones (None: no training).
ROWS: dict[str, dict[str, Any] | None] = {
    "baseline": None,
    "DNet CE": {"method": "dnet", "loss": "ce"},
    "DNet AF": {"method": "dnet", "loss": "arcface"},
    "SimSiam": {"method": "simsiam"},
    "Con-Syn": {"method": "contrastive", "positives": "con-syn"},
    "Con-Syn+Real": {"method": "contrastive", "positives": "con-syn+real"},
    "Con-Syn+Real-closest": {"method": "contrastive", "positives": "con-syn+real-closest"},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder for the synthetic benchmark, the runs and the table (table53.md, table53.json); "
                        "running the same command again resumes, skipping finished rows")
    p.add_argument("--root", type=Path, default=None,
                   help="an existing Met-format root (default: generate a synthetic one in OUT/synth)")
    p.add_argument("--classes", type=int, default=300, help="synthetic classes")
    p.add_argument("--synth-size", type=int, default=128, help="synthetic image size (longer side)")
    p.add_argument("--size", type=int, default=96, help="load size and training crop size")
    p.add_argument("--epochs", type=int, default=3, help="epochs of every method")
    p.add_argument("--lr", type=float, default=1e-4,
                   help="backbone learning rate of every method. The paper's 1e-7 over ~10 epochs of the Met's "
                        "397k images sums to about 7e-3 of lr x steps; 3 epochs of a few hundred images need "
                        "~1e-4 for a similar budget (at 1e-5 the weights move by 1e-4 of their norm and no row "
                        "differs from the baseline)")
    p.add_argument("--augment", choices=("paper", "insitu"), default="insitu",
                   help="augmentation of every trained row: the paper's, or in-situ synthetic positives")
    p.add_argument("--whiten-dim", type=int, default=64, help="PCA-whitening dimension of the evaluation")
    p.add_argument("--projector-dim", type=int, default=64, help="FC projector size (PCAw-initialised)")
    p.add_argument("--model", default="efficientnet_lite0", help="backbone every row starts from")
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of the rows")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic benchmark and of every run")


def _embed_all(model: torch.nn.Module, sources: dict[str, EntryImages], device: torch.device) -> dict[str, np.ndarray]:
    return {k: embed_images(model, s, device, batch_size=64, desc=f"embedding {k}") for k, s in sources.items()}


def _knn_scores(desc: dict[str, np.ndarray], labels: dict[str, np.ndarray], whiten_dim: int) -> dict[str, Any]:
    from artid.metrics.ilr import accuracy, gap, gap_minus
    from artid.retrieval.autotune import autotune
    from artid.retrieval.knn import KNNClassifier
    from artid.retrieval.whitening import PCAWhitening

    w = PCAWhitening(dim=whiten_dim, shrinkage=1.0).fit(desc["database"])
    d, v, t = (w.transform(desc[k]) for k in ("database", "val", "test"))
    clf = KNNClassifier(d, labels["database"], use_gpu=False)
    tuned = autotune(clf, v, labels["val"])
    pred, conf, _ = clf.predict(t, tuned.best_k, tuned.best_tau)
    y = labels["test"]
    return {"gap": gap(pred, conf, y), "gap_minus": gap_minus(pred, conf, y), "acc": accuracy(pred, conf, y),
            "k": tuned.best_k, "tau": tuned.best_tau}


def _parametric_scores(head_file: Path, desc: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                       class_ids: np.ndarray) -> dict[str, Any]:
    from artid.metrics.ilr import accuracy, gap, gap_minus
    from artid.training.heads import CosineClassifier

    state = torch.load(head_file, map_location="cpu", weights_only=True)
    head = CosineClassifier(state["weight"].shape[1], state["weight"].shape[0])
    head.load_state_dict(state)
    with torch.no_grad():
        cos = {k: head(torch.from_numpy(desc[k])).numpy() for k in ("val", "test")}
    t, _ = tune_temperature(cos["val"], labels["val"], class_ids)
    pred, conf = parametric_predict(cos["test"], t)
    pred = class_ids[pred]
    y = labels["test"]
    return {"gap": gap(pred, conf, y), "gap_minus": gap_minus(pred, conf, y), "acc": accuracy(pred, conf, y),
            "temperature": t}


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| Method | GAP | GAP- | ACC | best epoch | minutes |", "|---|---|---|---|---|---|"]
    for section, key in (("Parametric classification", "parametric"), ("kNN classification", "knn")):
        if not any(r.get(key) for r in results.values()):
            continue
        lines.append(f"| *{section}* | | | | | |")
        for name, r in results.items():
            s = r.get(key)
            if s:
                lines.append(f"| {name} | {100 * s['gap']:.1f} | {100 * s['gap_minus']:.1f} | {100 * s['acc']:.1f} "
                             f"| {r.get('best_epoch', '-')} | {r.get('minutes', 0):.1f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from artid.models import build_embedder

    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ArtidError(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    root = args.root
    if root is None:
        from artid.data.synth import SynthConfig, generate
        root = out / "synth"
        generate(root, SynthConfig(classes=args.classes, seed=args.seed, image_size=args.synth_size,
                                   met_queries=max(10, args.classes // 2), val_share=0.3, distractor_ratio=4.0))
    device = resolve_device(args.device)
    splits = {k: load_split(root, k) for k in ("database", "val", "test")}
    sources = {k: EntryImages(s.image_root, s.entries, args.size) for k, s in splits.items()}
    labels = {k: np.asarray(s.labels, dtype=np.int64) for k, s in splits.items()}
    class_ids = np.unique(labels["database"])
    results_file = out / "table53.json"
    results: dict[str, dict[str, Any]] = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for name in rows:
        if name in results:
            log.info("%s: already done (%s)", name, results_file)
            continue
        t0 = time.perf_counter()
        settings = ROWS[name]
        entry: dict[str, Any] = {}
        if settings is None:
            model = build_embedder(args.model).to(device)
        else:
            run_dir = out / "runs" / name.lower().replace(" ", "_").replace("+", "_")
            spec = RunSpec(root=root, out=run_dir, model=args.model, epochs=args.epochs, lr=args.lr,
                           image_size=args.size, max_size=args.size, device=args.device, seed=args.seed,
                           projector_dim=args.projector_dim, augment=args.augment, **settings)
            result = train(spec)
            entry["best_epoch"] = result.best_epoch
            entry["history"] = result.history
            model = build_embedder(run_dir / BEST_FILE).to(device)
        desc = _embed_all(model, sources, device)
        entry["knn"] = _knn_scores(desc, labels, args.whiten_dim)
        if settings is not None and settings["method"] == "dnet":
            entry["parametric"] = _parametric_scores(out / "runs" / run_dir.name / BEST_HEAD_FILE, desc, labels,
                                                     class_ids)
        entry["minutes"] = (time.perf_counter() - t0) / 60
        results[name] = entry
        results_file.write_text(json.dumps(results, indent=1))
        log.info("%s: %s", name, entry["knn"])
    table = format_table({k: results[k] for k in rows if k in results})
    header = (f"Table 5.3 shape on {root} ({len(splits['database'].entries)} database images, "
              f"{len(class_ids)} classes; {args.size} px, {args.epochs} epochs, lr {args.lr:g}, {args.augment} augmentation, "
              f"{args.model}, test queries; kNN rows: single scale + PCAw {args.whiten_dim})")
    text = header + "\n\n" + table + f"\n\ntotal {(time.perf_counter() - t_start) / 60:.1f} minutes\n"
    (out / "table53.md").write_text(text)
    print(text)
    return 0
