"""The offline backbones side by side: EfficientNet-Lite0, Lite1 and Lite2 on a Met benchmark.

For each backbone: single-scale descriptors of the database, val and test images, the default
pipeline (``artid evaluate``'s: whitening chosen on val, k and tau tuned on val), and test GAP / ACC
with their bootstrap SE; every other backbone is compared with the first on the same test queries
(paired bootstrap SE). The forward pass is timed (images/s at batch 1 on one image of the
benchmark's size), the backbones interleaved in the same rounds (median of the rounds), and given
as a ratio to the first: the shared CPU's load moves absolute figures, much less the ratio.
``--distractors-per-query`` keeps fewer distractors (the same for every backbone) to keep a run
short.

    python benchmarks/backbones.py                       # a small synthetic benchmark (the demo's)
    python benchmarks/backbones.py --benchmark DIR       # an existing Met-format benchmark

Everything is kept under ``--out`` and reused on a second run (the benchmark, the descriptors);
the evaluation runs again.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def _benchmark(args: argparse.Namespace) -> Path:
    if args.benchmark is not None:
        return Path(args.benchmark)
    from artid.data.synth import SynthConfig, generate

    root = args.out / "benchmark"
    generate(
        root,
        SynthConfig(
            classes=args.classes,
            seed=args.seed,
            image_size=args.image_size,
            met_queries=args.met_queries,
            distractor_ratio=args.distractor_ratio,
            workers=1,
        ),
    )
    return root


def _queries(entries: list, per_query: float | None) -> list:
    """Every visitor photo of an exhibit and ``per_query`` distractors for each (None: all), the
    distractors taken in the order of a hash of their path (the same for every backbone)."""
    if per_query is None:
        return entries
    met = [e for e in entries if e.label >= 0]
    others = sorted((e for e in entries if e.label < 0),
                    key=lambda e: hashlib.sha1(e.path.encode()).hexdigest())
    keep = {e.path for e in met + others[: round(per_query * len(met))]}
    return [e for e in entries if e.path in keep]


def _extract(model: str, root: Path, out: Path, per_query: float | None) -> dict:
    """The model's single-scale descriptors of the database and of the kept val / test queries:
    rows of the whole split's descriptors when an earlier run described it, else extracted."""
    from artid.descriptors import DescriptorSet, load_descriptors
    from artid.extraction import ExtractionSettings, extract_lists, met_sources
    from artid.extraction.sources import ImageList
    from artid.models import SINGLE_SCALE, build_embedder

    settings = ExtractionSettings(scales=SINGLE_SCALE, batch_size=1, workers=0)
    lists, sets = [], {}
    for whole in met_sources(root, ["database", "val", "test"]):
        kept = _queries(whole.entries, None if whole.name == "database" else per_query)
        if (out / f"{whole.name}.json").is_file():  # the whole split, described before
            full = load_descriptors(out / whole.name)
            row = {e.path: i for i, e in enumerate(full.entries)}
            rows = [row[e.path] for e in kept]
            sets[whole.name] = DescriptorSet(full.matrix[rows], [full.entries[i] for i in rows],
                                             full.model, full.settings)
        else:
            name = whole.name if len(kept) == len(whole.entries) else f"{whole.name}_{per_query:g}"
            lists.append(ImageList(name, kept, whole.image_root))
    if lists:
        got = extract_lists(lists, build_embedder(model), out, settings)
        for name, dset in got.items():
            sets[name.split("_")[0]] = dset
    return sets


def _forward_speed(models: list[str], size: tuple[int, int], images: int, rounds: int) -> dict:
    """Images/s of the forward pass alone (batch 1), the models interleaved in each round."""
    import torch

    from artid.models import build_embedder

    embs = {m: build_embedder(m).eval() for m in models}
    x = torch.rand(1, 3, *size)
    times: dict[str, list[float]] = {m: [] for m in models}
    with torch.inference_mode():
        for m in models:  # warm-up
            embs[m](x)
        for _ in range(rounds):
            for m in models:
                t = time.perf_counter()
                for _ in range(images):
                    embs[m](x)
                times[m].append(images / (time.perf_counter() - t))
    return {m: statistics.median(v) for m, v in times.items()}


def _answers(run_dir: Path) -> dict[str, tuple[int, int, float]]:
    with open(run_dir / "predictions_test.csv", newline="", encoding="utf-8") as f:
        return {
            r["path"]: (int(r["label"]), int(r["prediction"]), float(r["score"]))
            for r in csv.DictReader(f)
        }


def _pct(e, sign: str = "") -> str:
    """An estimate in percent with its SE: ``37.6 ± 1.2``."""
    return f"{100 * e.value:{sign}.1f} ± {100 * e.se:.1f}"


def _cpu() -> str:
    """The CPU's model name and its vector extensions (avx2, avx512*, amx*)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                 if ln.startswith("model name")), platform.machine())
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                  if ln.startswith("flags")), [])
    ext = sorted({f for f in flags if f == "avx2" or f.startswith(("avx512", "amx"))})
    return f"{name} ({' '.join(ext) or 'no avx2'})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/backbones"))
    p.add_argument("--benchmark", help="an existing Met-format benchmark folder (else synthetic)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated backbones")
    p.add_argument("--classes", type=int, default=600, help="(the demo's defaults)")
    p.add_argument("--met-queries", type=int, default=350)
    p.add_argument("--distractor-ratio", type=float, default=8.0)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distractors-per-query", type=float,
                   help="keep this many distractors per visitor photo of an exhibit (default all)")
    p.add_argument("--speed-images", type=int, default=10, help="forward passes per round")
    p.add_argument("--speed-rounds", type=int, default=3)
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = p.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from artid.evaluation.run import evaluate
    from artid.metrics.bootstrap import ilr_estimates, ilr_paired

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    root = _benchmark(args)
    rows = []
    for model in models:
        sets = _extract(model, root, args.out / "descriptors" / Path(root).name / model,
                        args.distractors_per_query)
        res = evaluate(
            sets["database"], sets["val"], sets["test"], args.out / "runs" / model, name=model
        )
        rows.append((model, res, _answers(args.out / "runs" / model)))
    speed = _forward_speed(models, (args.image_size, args.image_size * 3 // 4), args.speed_images,
                           args.speed_rounds)
    base = rows[0]
    paths = sorted(base[2])
    labels = np.array([base[2][q][0] for q in paths])
    keys = np.array(paths)

    def arrays(ans: dict) -> tuple[np.ndarray, np.ndarray]:
        return np.array([ans[q][1] for q in paths]), np.array([ans[q][2] for q in paths])

    print(f"benchmark {root}: {len(paths)} test queries, {int((labels >= 0).sum())} of exhibits")
    print(f"cpu {_cpu()}, load {os.getloadavg()}, "
          f"torch threads {torch.get_num_threads()}")
    header = (f"{'backbone':<20}{'GAP':>14}{'ACC':>14}{'dGAP vs ' + models[0][-5:]:>18}"
              f"{'dACC':>14}{'img/s':>8}{'x ' + models[0][-5:]:>10}  whitening, k, tau")
    print(header)
    print("-" * len(header))
    table = []
    for model, res, ans in rows:
        est = ilr_estimates(*arrays(ans), labels, keys, args.resamples)
        if model == base[0]:
            dgap = dacc = "-"
            d = None
        else:
            d = ilr_paired(arrays(ans), arrays(base[2]), labels, keys, args.resamples)
            dgap, dacc = _pct(d["gap"], "+"), _pct(d["acc"], "+")
        proj = res["pipeline"]["projection"]
        chosen = f"{proj['whiten']} {proj['dims']}, k={res['k']}, tau={res['tau']:g}"
        ratio = speed[model] / speed[base[0]]
        print(f"{model:<20}{_pct(est['gap']):>14}{_pct(est['acc']):>14}{dgap:>18}{dacc:>14}"
              f"{speed[model]:>8.1f}{ratio:>10.2f}  {chosen}")
        table.append({
            "model": model, "gap": est["gap"].to_json(), "acc": est["acc"].to_json(),
            "paired_vs_first": None if d is None else {k: v.to_json() for k, v in d.items()},
            "forward_images_per_s": speed[model],
            "forward_ratio": ratio, "pipeline": chosen,
        })
    (args.out / "backbones.json").write_text(json.dumps(
        {"benchmark": str(root), "queries": len(paths), "rows": table,
         "load": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
