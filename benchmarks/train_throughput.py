"""Training throughput of the contrastive trainer versus a plain Siamese loop, in one run.

``artid`` is :class:`artid.training.trainer.Trainer` driving the
:class:`~artid.training.methods.Contrastive` method (Con-Syn+Real positives, hard negatives
mined with faiss, progress bar, per-epoch checkpoint, frozen BatchNorm, AMP on CUDA) for one
epoch on a small synthetic benchmark (:mod:`artid.data.synth`) with the offline
EfficientNet-Lite0. The reference is a hand-written minimal loop over the SAME pairs with the
same model, weights, crop size, batch size and augmentation: read each image with PIL, augment,
forward both sides, contrastive loss, Adam step; no mining, no data loader, no logging.

The cost of one epoch's hard-negative mining (embedding the whole database with the current
model, the faiss search and the pair drawing) is measured on its own and reported separately,
with its share of a full epoch.

    python benchmarks/train_throughput.py                        # CPU (and CUDA when present)
    python benchmarks/train_throughput.py --classes 300 --crop 224 --synth-size 256 --devices cuda

Images/s counts every image forwarded and back-propagated (two per pair). Each loop runs
``--rounds`` epochs from the same starting weights, alternating which of the two goes first
(the load of other processes on a shared machine drifts); the median epoch of each is reported,
and the ratio is the median of the rounds' ratios (each round's two epochs ran back to back).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_benchmark(root: Path, classes: int, synth_size: int, seed: int) -> None:
    """A small synthetic Met-format benchmark (database only matters here)."""
    from artid.data.synth import SynthConfig, generate
    generate(root, SynthConfig(classes=classes, seed=seed, image_size=synth_size, met_queries=max(2, classes // 10),
                               distractor_ratio=1.0, progress=False))


def reference_epoch(model, source, pairs: np.ndarray, transform, batch_pairs: int, margin: float, lr: float,
                    device, amp: bool) -> dict[str, float]:
    """The plain loop: for each batch of pairs, read, augment, forward, loss, backward, Adam step.

    Args:
        model: a fresh copy of the starting embedder on ``device``.
        source: the database images (``EntryImages``; only its paths and load size are used).
        pairs: (M, 3) rows (a, b, y); b = -1 is a second augmentation of a.
        transform: the training augmentation (image -> (3, S, S) tensor).
        batch_pairs: pairs per batch.
        margin: contrastive margin.
        lr: Adam learning rate.
        device: torch device.
        amp: float16 autocast + grad scaler (CUDA only).

    Returns:
        {"images", "seconds", "images_per_s", "mean_loss"}.
    """
    import torch
    from PIL import Image

    def read(i: int) -> Image.Image:
        img = Image.open(source.image_root / source.entries[i].path).convert("RGB")
        img.thumbnail((source.max_size, source.max_size))
        return img

    model.train()
    for m in model.modules():  # frozen BatchNorm statistics, as in the paper (and the trainer)
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-6)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    order = np.random.default_rng(0).permutation(len(pairs))
    losses = []
    _sync(device)
    t0 = time.perf_counter()
    for s in range(0, len(order), batch_pairs):
        xa, xb, ys = [], [], []
        for a, b, y in pairs[order[s:s + batch_pairs]]:
            img_a = read(int(a))
            img_b = img_a if b < 0 else read(int(b))
            xa.append(transform(img_a))
            xb.append(transform(img_b))
            ys.append(float(y))
        x = torch.stack(xa + xb).to(device)
        y = torch.tensor(ys, device=device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            emb = model(x).float()
        ea, eb = emb.split(len(ys))
        d2 = (ea - eb).pow(2).sum(1)
        d = d2.clamp_min(1e-12).sqrt()
        loss = 0.5 * (y * d2 + (1 - y) * torch.relu(margin - d).pow(2)).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.detach())
    _sync(device)
    seconds = time.perf_counter() - t0
    images = 2 * len(pairs)
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds,
            "mean_loss": float(torch.stack(losses).float().mean())}


def run_device(root: Path, device_name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from artid.data.met import load_split
    from artid.models import build_embedder
    from artid.training.augment import train_transform
    from artid.training.data import EntryImages, LabelIndex
    from artid.training.methods import Contrastive
    from artid.training.positives import STRATEGIES
    from artid.training.sections import OptimSettings
    from artid.training.trainer import TrainConfig, Trainer
    from artid.training.validation import EmbeddingCache, embed_images

    device = torch.device(device_name)
    amp = device.type == "cuda" and not args.no_amp
    db = load_split(root, "database")
    labels = LabelIndex(db.labels).encode(db.labels)
    source = EntryImages(db.image_root, db.entries, args.synth_size)
    transform = train_transform(size=args.crop)

    base = build_embedder("efficientnet_lite0").to(device)
    # the projector of the real runs (PCAw-initialised FC); identity-initialised here, same cost
    d = base.num_features
    base.set_projector_from_whitening(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))
    base.freeze_batchnorm()
    start_state = {k: v.clone() for k, v in base.state_dict().items()}

    def embed(model, src):
        return embed_images(model, src, device, batch_size=args.eval_batch)

    # warm-up (allocator, kernels, cudnn autotuning) on one batch of the training shape, not timed
    x = torch.rand(2 * args.batch_pairs, 3, args.crop, args.crop, device=device)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        base(x).float().sum().backward()
    base.zero_grad(set_to_none=True)
    base.load_state_dict(start_state)
    _sync(device)

    # 1. one epoch's mining on its own: embed the database, faiss search + pair drawing
    cache = EmbeddingCache(source, embed)
    strategy = STRATEGIES[args.positives]()
    probe = Contrastive(source, labels, strategy, transform, cache, pairs_per_batch=args.batch_pairs)
    cache.get(base)  # a first pass warms up the eval-mode shapes; the second is timed
    cache.invalidate()
    _sync(device)
    t0 = time.perf_counter()
    desc = cache.get(base)
    _sync(device)
    t1 = time.perf_counter()
    pairs = probe.make_pairs(desc, np.random.default_rng(args.seed))
    t2 = time.perf_counter()
    mining = {"database_images": len(source), "embed_s": t1 - t0, "search_and_pairs_s": t2 - t1,
              "total_s": t2 - t0, "embed_images_per_s": len(source) / (t1 - t0)}

    def artid_epoch(r: int) -> dict[str, Any]:
        """One epoch of the artid trainer from the starting weights (it mines at its start: prepare_s)."""
        base.load_state_dict(start_state)
        c = EmbeddingCache(source, embed)
        method = Contrastive(source, labels, strategy, transform, c, pairs_per_batch=args.batch_pairs,
                             margin=1.8, negative_pool=10)
        optim = OptimSettings(epochs=1, lr=args.lr, amp="fp16" if amp else "off", seed=args.seed)
        cfg = TrainConfig(work / f"run_{device.type}_{r}", optim)
        trainer = Trainer(base, method, cfg, device, validator=None, invalidate=c.invalidate)
        _sync(device)
        t0 = time.perf_counter()
        trainer.fit(resume=False)
        _sync(device)
        rec = trainer.result.history[-1]
        nonlocal pairs
        pairs = method.pairs  # the reference runs over exactly these
        return {"images": rec["images"], "seconds": rec["train_s"], "images_per_s": rec["images_per_s"],
                "mean_loss": rec["loss"], "prepare_s": rec["prepare_s"], "epoch_wall_s": time.perf_counter() - t0}

    ref_model = build_embedder("efficientnet_lite0").to(device)
    ref_model.set_projector_from_whitening(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))

    def ref_epoch() -> dict[str, Any]:
        """The reference loop over the pairs of the artid epoch, from the same starting weights."""
        ref_model.load_state_dict(start_state)
        torch.manual_seed(args.seed)
        return reference_epoch(ref_model, source, pairs, transform, args.batch_pairs, 1.8, args.lr, device, amp)

    # 2. rounds, the order alternating (artid first, then the reference first, ...): on a shared
    #    machine the load of other processes drifts, so both see the same conditions on average
    artid_runs: list[dict[str, Any]] = []
    ref_runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        if r % 2 == 0:
            artid_runs.append(artid_epoch(r))
            ref_runs.append(ref_epoch())
        else:
            ref_runs.append(ref_epoch())
            artid_runs.append(artid_epoch(r))

    def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
        out = dict(runs[int(np.argsort([x["images_per_s"] for x in runs])[len(runs) // 2])])
        out["rounds_images_per_s"] = [round(x["images_per_s"], 2) for x in runs]
        return out

    artid, reference = median(artid_runs), median(ref_runs)
    # each round's two epochs ran back to back under the same outside load: their ratio is the paired figure
    ratios = [a["images_per_s"] / r["images_per_s"] for a, r in zip(artid_runs, ref_runs)]
    return {"device": str(device), "amp": amp, "threads": torch.get_num_threads(), "pairs": int(len(pairs)),
            "mining": mining, "artid": artid, "reference": reference,
            "ratio": float(np.median(ratios)), "round_ratios": [round(x, 3) for x in ratios],
            "mining_share_of_epoch": mining["total_s"] / (mining["total_s"] + artid["seconds"])}


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=60, help="synthetic classes (about 1.9 database images each)")
    p.add_argument("--synth-size", type=int, default=160, help="longer side of the synthetic images (load size)")
    p.add_argument("--crop", type=int, default=128, help="side of the square training crops")
    p.add_argument("--batch-pairs", type=int, default=32, help="pairs per batch (the paper: 64)")
    p.add_argument("--eval-batch", type=int, default=32, help="images per batch when embedding for mining")
    p.add_argument("--positives", default="con-syn+real", choices=("con-syn", "con-syn+real", "con-syn+real-closest"))
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--devices", default="auto", help="comma-separated torch devices; auto = cpu (+ cuda if present)")
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    p.add_argument("--rounds", type=int, default=3,
                   help="epochs of each loop, alternating which runs first; the median is reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", type=Path, default=None, help="use this synthetic root (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if args.devices == "auto" \
        else [d.strip() for d in args.devices.split(",") if d.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="artid_train_tp_") as tmp:
        work = Path(tmp)
        root = args.root or work / "synth"
        t0 = time.perf_counter()
        make_benchmark(root, args.classes, args.synth_size, args.seed)
        print(f"synthetic benchmark: {args.classes} classes, {args.synth_size} px ({time.perf_counter() - t0:.1f}s)")
        for dev in devices:
            r = run_device(root, dev, args, work)
            results.append(r)
            m, a, ref = r["mining"], r["artid"], r["reference"]
            print(f"\n== {r['device']} (AMP {'on' if r['amp'] else 'off'}, {r['threads']} threads), "
                  f"{r['pairs']} pairs of {args.crop} px crops, {args.batch_pairs} pairs per batch")
            print(f"  artid Trainer + Contrastive : {a['images_per_s']:8.1f} images/s "
                  f"({a['images']} images in {a['seconds']:.1f}s; loss {a['mean_loss']:.4f}; "
                  f"rounds {a['rounds_images_per_s']})")
            print(f"  reference Siamese loop      : {ref['images_per_s']:8.1f} images/s "
                  f"({ref['images']} images in {ref['seconds']:.1f}s; loss {ref['mean_loss']:.4f}; "
                  f"rounds {ref['rounds_images_per_s']})")
            print(f"  ratio artid / reference     : {r['ratio']:8.2f} "
                  f"(median of the rounds' ratios {r['round_ratios']})")
            print(f"  mining, once per epoch      : {m['total_s']:8.2f} s = embed {m['database_images']} database "
                  f"images {m['embed_s']:.2f}s ({m['embed_images_per_s']:.1f} images/s) + faiss search and pairs "
                  f"{m['search_and_pairs_s'] * 1000:.1f} ms; {100 * r['mining_share_of_epoch']:.0f}% of an epoch "
                  f"(in the trainer's epochs: {a['prepare_s']:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
