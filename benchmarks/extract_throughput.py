"""Throughput of multi-scale descriptor extraction: artid versus the simple way, in one run.

The simple way is the loop of the paper's public code: one image at a time (batch 1), read with
PIL, converted and normalised, the network run at each scale of the pyramid, the descriptors
summed and normalised, no optimisation. ``artid`` is :func:`artid.extraction.extract_list`
(decoding worker, size-bucketed batches, BatchNorm folding, channels-last, shards on disk).
Both run on the same images with the same model, each in a fresh process (so that peak
memory, self + children, is measured separately); the descriptors are compared too.

    python benchmarks/extract_throughput.py --images 300              # the full run
    python benchmarks/extract_throughput.py --images 24 --variants    # each optimisation alone

The FLOPs of one multi-scale pass (counted by torch's FlopCounterMode) turn images/s into
GFLOP/s, compared with the CPU's peak (cores x clock x 32 FP32 FLOP/cycle for AVX2 + 2 FMA units).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = [(375, 500), (500, 375), (333, 500), (500, 400), (281, 500), (500, 500)]


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` JPEG photos (crops of scikit-image's photos, longer side 500, a mix of common sizes)."""
    import skimage.data
    from PIL import Image

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = Image.fromarray(photos[i % len(photos)])
        h, w = SIZES[int(rng.integers(len(SIZES)))]
        cw, ch = photo.size
        box = (int(rng.integers(0, cw // 4)), int(rng.integers(0, ch // 4)))
        crop = photo.crop((box[0], box[1], box[0] + cw * 3 // 4, box[1] + ch * 3 // 4))
        crop.resize((w, h), Image.Resampling.BILINEAR).save(folder / f"{i:05d}.jpg", quality=90)


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its (waited-for) children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def run_simple(folder: Path, out: Path, threads: int) -> dict:
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from artid.models import MULTI_SCALE, build_embedder

    torch.set_num_threads(threads)
    emb = build_embedder("efficientnet_lite0")
    files = sorted(folder.glob("*.jpg"))
    rows = []
    start = time.perf_counter()
    with torch.no_grad():
        for path in files:
            img = Image.open(path).convert("RGB")
            x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)[None]
            x = emb.normalize(x)
            total = 0
            for s in MULTI_SCALE:
                xs = x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
                total = total + emb.embed_features(emb.trunk(xs))
            rows.append(F.normalize(total, dim=-1)[0].numpy())
    elapsed = time.perf_counter() - start
    np.save(out, np.stack(rows))
    return {"images": len(files), "seconds": elapsed}


def run_artid(folder: Path, out: Path, threads: int, batch_size: int, workers: int, fold_bn: bool,
              channels_last: bool) -> dict:
    import torch

    from artid.extraction import ExtractionSettings, extract_list, folder_source
    from artid.models import build_embedder

    torch.set_num_threads(threads)
    emb = build_embedder("efficientnet_lite0")
    images = folder_source(folder, "bench")
    settings = ExtractionSettings(batch_size=batch_size, workers=workers, fold_bn=fold_bn,
                                  channels_last=channels_last)
    start = time.perf_counter()
    dset = extract_list(images, emb, out.with_suffix(""), settings, progress=False)
    elapsed = time.perf_counter() - start
    np.save(out, dset.matrix)
    return {"images": len(dset.entries), "seconds": elapsed}


def flops_per_image(height: int = 375, width: int = 500) -> float:
    """FLOPs of one multi-scale descriptor of a height x width image (2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from artid.models import build_embedder

    emb = build_embedder("efficientnet_lite0")
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        emb.embed_multiscale(torch.rand(1, 3, height, width))
    return float(counter.get_total_flops())


def cpu_peak_gflops(cores: int) -> tuple[float, float]:
    """(clock GHz, peak FP32 GFLOP/s) for AVX2 with two FMA units: 32 FLOP per cycle per core."""
    mhz = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz.append(float(line.split(":")[1]))
    except OSError:
        pass
    ghz = (max(mhz) / 1000) if mhz else float("nan")
    return ghz, cores * ghz * 32


def child(argv: list[str]) -> dict:
    """Run one method in a fresh interpreter; returns its JSON result (with peak memory)."""
    out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--variants", action="store_true", help="also time each optimisation alone")
    parser.add_argument("--_method", help=argparse.SUPPRESS)
    parser.add_argument("--_folder", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_fold", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_cl", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._method:  # inside a child process
        folder, out = Path(args._folder), Path(args._out)
        if args._method == "simple":
            result = run_simple(folder, out, args.threads)
        else:
            result = run_artid(folder, out, args.threads, args.batch_size, args.workers, bool(args._fold),
                               bool(args._cl))
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "images"
        make_images(folder, args.images)
        common = ["--threads", str(args.threads), "--_folder", str(folder)]

        def artid(name: str, batch: int, workers: int, fold: int, cl: int) -> dict:
            return child(common + ["--_method", "artid", "--_out", str(tmp_path / f"{name}.npy"),
                                   "--batch-size", str(batch), "--workers", str(workers),
                                   "--_fold", str(fold), "--_cl", str(cl)])

        results = {"simple (batch 1, no optimisation)": child(common + ["--_method", "simple", "--_out",
                                                                         str(tmp_path / "simple.npy")])}
        results[f"artid (batch {args.batch_size}, {args.workers} worker, BN fold, channels-last)"] = artid(
            "artid", args.batch_size, args.workers, 1, 1)
        if args.variants:
            results["artid batch 1, 0 workers, no BN fold, contiguous"] = artid("v0", 1, 0, 0, 0)
            results["artid batch 1, 0 workers, BN fold"] = artid("v1", 1, 0, 1, 0)
            results["artid batch 1, 0 workers, channels-last"] = artid("v2", 1, 0, 0, 1)
            results["artid batch 1, 0 workers, BN fold + channels-last"] = artid("v3", 1, 0, 1, 1)
            results["artid batch 1, 1 worker, BN fold + channels-last"] = artid("v4", 1, 1, 1, 1)
            results["artid batch 8, 1 worker, BN fold + channels-last"] = artid("v5", 8, 1, 1, 1)

        simple = np.load(tmp_path / "simple.npy")
        fast = np.load(tmp_path / "artid.npy")
        base = None
        print(f"{args.images} JPEG images up to 500 px, EfficientNet-Lite0, multi-scale (1, 2^-0.5, 1/2), "
              f"{args.threads} torch threads")
        for name, r in results.items():
            rate = r["images"] / r["seconds"]
            base = base or rate
            print(f"  {name:58s} {rate:6.2f} images/s  x{rate / base:4.2f}  peak memory {r['peak_rss_mib']:6.0f} MiB")
        print(f"  max |descriptor difference| artid vs simple: {np.abs(fast - simple).max():.2e}")
        flops = flops_per_image()
        ghz, peak = cpu_peak_gflops(args.threads)
        best = max(r["images"] / r["seconds"] for r in results.values())
        print(f"  FLOPs per multi-scale 375x500 image: {flops / 1e9:.2f} GFLOP; at {best:.2f} images/s that is "
              f"{best * flops / 1e9:.1f} GFLOP/s")
        print(f"  CPU peak ({args.threads} cores x {ghz:.2f} GHz x 32 FLOP/cycle): {peak:.0f} GFLOP/s -> "
              f"ceiling {peak * 1e9 / flops:.1f} images/s at 100% of peak")


if __name__ == "__main__":
    main()
