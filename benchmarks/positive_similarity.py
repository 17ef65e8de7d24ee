"""How close are the synthetic positives to what a query looks like? Cosines under the untrained model.

For every database (studio) image of a class that has visitor photos among the val/test Met
queries, the mean cosine (single scale, no whitening) of its descriptor to:
the paper's augmentation of it, the in-situ augmentation of it, a visitor photo of its
class, and a studio photo of another class. A positive that is much easier than a visitor
photo teaches an invariance the queries never need.

    python benchmarks/positive_similarity.py --root runs/synth300 --size 128
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    import torch

    from artid.data.met import load_split
    from artid.models import build_embedder
    from artid.training.augment import augmentations
    from artid.training.data import EntryImages, MemoryImages
    from artid.training.validation import embed_images

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="Met-format root (e.g. from `artid synth`)")
    ap.add_argument("--size", type=int, default=128, help="load size and augmentation size")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--repeats", type=int, default=2, help="augmentations drawn per studio image")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cpu = torch.device("cpu")
    model = build_embedder(args.model).to(cpu)
    db = load_split(args.root, "database")
    labels = np.asarray(db.labels)
    queries = [load_split(args.root, k) for k in ("val", "test")]
    q_entries = [e for s in queries for e, y in zip(s.entries, s.labels) if y >= 0]
    q_labels = np.asarray([y for s in queries for y in s.labels if y >= 0])
    q_root = queries[0].image_root
    with_queries = np.flatnonzero(np.isin(labels, q_labels))
    source = EntryImages(db.image_root, db.entries, args.size)
    studio = embed_images(model, source, cpu, batch_size=64)
    visitor = embed_images(model, EntryImages(q_root, q_entries, args.size), cpu, batch_size=64)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out: dict[str, float] = {}
    for kind in ("paper", "insitu"):
        t = augmentations(kind, args.size).other
        sims = []
        for _ in range(args.repeats):
            aug = MemoryImages([t(source.load(int(i))) for i in with_queries])
            sims.append((embed_images(model, aug, cpu, batch_size=64) * studio[with_queries]).sum(1))
        out[f"{kind} augmentation"] = float(np.mean(sims))
    vis = [float((visitor[q_labels == labels[i]] @ studio[i]).mean()) for i in with_queries]
    out["visitor photo, same class"] = float(np.mean(vis))
    other = [float(studio[int(rng.choice(np.flatnonzero(labels != labels[i])))] @ studio[i]) for i in with_queries]
    out["studio photo, other class"] = float(np.mean(other))
    print(json.dumps({"root": args.root, "size": args.size, "model": args.model,
                      "studio images": int(with_queries.size), "mean cosine to the studio photo": out}, indent=1))


if __name__ == "__main__":
    main()
