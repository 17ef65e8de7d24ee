"""Throughput of multi-scale descriptor extraction: artid versus the simple way, in one run.

The simple way is the loop of the paper's public code: one image at a time (batch 1), read with
PIL, converted and normalised, the network run at each scale of the pyramid, the descriptors
summed and normalised, no optimisation. ``artid`` is :func:`artid.extraction.extract_list`
(decoding worker, size-bucketed batches, BatchNorm folding, channels-last, shards on disk), in
torch FP32 and bf16 and through the exported graph in OpenVINO / ONNX Runtime (FP32, bf16, int8:
``--runtime`` / ``--precision``; the one-off export and int8 calibration are timed apart). All run
on the same images with the same model, each in a fresh process (so that peak memory, self +
children, is measured separately); each one's descriptors are compared with the simple loop's
(cosine). The service's latency per photo (``Recognizer.recognize``, one photo at a time, one
thread, p50 / p95) is measured in torch FP32 and in the fastest runtime, each photo answered twice
(first with its size new, then seen: a graph runtime compiles its kernels for each new input
shape), on a bundle built with
``--rerank K`` (``--bundle``, photos from ``--root``'s test queries) without and with re-ranking at
K, or, without ``--bundle``, on a toy bundle of the first images, global only.

    python benchmarks/extract_throughput.py --images 300              # the full run
    python benchmarks/extract_throughput.py --images 24 --variants    # each optimisation alone
    python benchmarks/extract_throughput.py --images 40 --threads 1 \
        --bundle bundles/demo-rerank --root runs/demo/benchmark     # with the re-ranked service

The FLOPs of one multi-scale pass (counted by torch's FlopCounterMode) turn images/s into
GFLOP/s, compared with the CPU's peak from its ISA (:func:`artid.models.precision.
peak_flops_per_cycle`: FP32 32 FLOP/cycle/core with AVX2, 64 with AVX-512; bf16 and int8 with
AVX512-BF16 / VNNI or AMX tiles), at the clock /proc/cpuinfo reports.
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
              channels_last: bool, runtime: str = "torch", precision: str = "fp32") -> dict:
    import torch

    from artid.extraction import ExtractionSettings, extract_list, folder_source
    from artid.extraction.inference import RUNTIME_CACHE, calibration_images
    from artid.extraction.run import BatchEmbedder
    from artid.models import build_embedder

    torch.set_num_threads(threads)
    emb = build_embedder("efficientnet_lite0")
    images = folder_source(folder, "bench")
    settings = ExtractionSettings(batch_size=batch_size, workers=workers, fold_bn=fold_bn,
                                  channels_last=channels_last, runtime=runtime, precision=precision)
    start = time.perf_counter()  # export / calibration: once per model, cached beside the output
    files = [images.path_of(e) for e in images.entries]
    runner = BatchEmbedder(emb, settings, torch.device("cpu"), out.parent / RUNTIME_CACHE,
                           calibration_images(files, settings.max_size, settings.scales))
    prepare = time.perf_counter() - start
    start = time.perf_counter()
    dset = extract_list(images, emb, out.with_suffix(""), settings, runner=runner, progress=False)
    elapsed = time.perf_counter() - start
    np.save(out, dset.matrix)
    return {"images": len(dset.entries), "seconds": elapsed, "prepare_seconds": prepare}


def toy_bundle(folder: Path, work: Path, artworks: int = 24) -> tuple[Path, list]:
    """A bundle of the first ``artworks`` images (one artwork each; no re-ranking) and the other
    images as photos (label -1: not scored)."""
    import shutil

    from artid.retrieval.pipeline import PipelineConfig
    from artid.service.builder import BuildOptions, build_bundle

    files = sorted(folder.glob("*.jpg"))
    bundle = work / "bundle"
    if not (bundle / "bundle.json").is_file():
        collection = work / "collection"
        for i, f in enumerate(files[:artworks]):
            (collection / f"art-{i}").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, collection / f"art-{i}" / "0.jpg")
        build_bundle(collection, bundle, BuildOptions(
            workers=0, threshold=0.5, pipeline=PipelineConfig(whiten="none", k=3, tau=10.0)))
    return bundle, [(f, -1) for f in files[artworks:]]


def run_service(folder: Path, work: Path, threads: int, runtime: str, precision: str,
                bundle: str | None = None, root: str | None = None, photos: int = 100,
                top: int | None = None, seed: int = 0) -> dict:
    """p50 / p95 ms of ``Recognizer.recognize`` per photo, one photo at a time, globally and (for a
    bundle built with ``--rerank K``) re-ranked at K, the two alternating first on each photo.

    Without ``bundle``: a toy bundle of the benchmark's first images, global only. With it: the
    photos are a seeded sample of ``root``'s test queries (half exhibits, half distractors, as in
    ``rerank_latency.py``), read into memory first."""
    import cv2
    import torch

    from artid.data.images import load_image
    from artid.service.recognizer import Recognizer

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if bundle is None:
        path, sample = toy_bundle(folder, work)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from rerank_latency import sample_queries

        path, sample = Path(bundle), sample_queries(Path(root or ""), photos, seed)
    plain = Recognizer.from_bundle(path, rerank=0, runtime=runtime, precision=precision)
    variants = {"global": plain}
    if bundle is not None:
        ranked = Recognizer(plain.data, plain.embedder, device=plain.device, rerank=top)
        if ranked.reranker is None:
            raise SystemExit(f"{bundle} has no re-ranking stage: build it with `artid index build ... --rerank K`")
        ranked.runtime, ranked.inference = plain.runtime, plain.inference  # the same network
        variants["re-ranked"] = ranked
    images = [(load_image(p, max_size=None), label) for p, label in sample]
    for rec in variants.values():
        rec.recognize([images[0][0]])  # warm-up
    names = list(variants)
    ms: dict[str, list[list[float]]] = {n: [[], []] for n in names}
    right = dict.fromkeys(names, 0)
    for seen in (0, 1):  # every photo twice: its size new, then seen (graph runtimes compile per shape)
        for i, (img, label) in enumerate(images):
            for name in names[i % len(names):] + names[:i % len(names)]:
                t = time.perf_counter()
                r = variants[name].recognize([img])[0]
                ms[name][seen].append(1000 * (time.perf_counter() - t))
                right[name] += int(not seen and label >= 0 and r.prediction.artwork.label == label)
    out: dict = {"photos": len(images), "exhibit_photos": sum(label >= 0 for _, label in images),
                 "database_images": plain.data.n_images,
                 "photo_sizes": len({img.size for img, _ in images})}
    for name in names:
        new, seen_ms = ms[name]
        out[name] = {"p50_ms": float(np.percentile(new, 50)), "p95_ms": float(np.percentile(new, 95)),
                     "seen_p50_ms": float(np.percentile(seen_ms, 50)),
                     "seen_p95_ms": float(np.percentile(seen_ms, 95)), "right": right[name]}
    if "re-ranked" in variants:
        out["top"] = variants["re-ranked"].reranker.top  # type: ignore[union-attr]
    return out


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


def cpu_peak_gflops(cores: int) -> tuple[float, dict[str, float]]:
    """(clock GHz, peak GFLOP/s per precision) from the CPU's ISA and clock."""
    from artid.models.precision import peak_flops_per_cycle

    mhz = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz.append(float(line.split(":")[1]))
    except OSError:
        pass
    ghz = (max(mhz) / 1000) if mhz else float("nan")
    return ghz, {p: cores * ghz * f for p, f in peak_flops_per_cycle().items()}


def cpu_line() -> str:
    """The CPU's model, its vector / matrix units, and the load now."""
    from artid.models.precision import cpu_flags

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    units = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
             if f in cpu_flags()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} logical CPUs ({', '.join(units) or 'no AVX2'}), load {load:.1f}"


def child(argv: list[str]) -> dict:
    """Run one method in a fresh interpreter; returns its JSON result (with peak memory)."""
    out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


#: (row name, runtime, precision) of the precision / runtime rows
PRECISION_ROWS = [
    ("torch bf16 (autocast)", "torch", "bf16"),
    ("ONNX Runtime FP32", "onnx", "fp32"),
    ("OpenVINO FP32", "openvino", "fp32"),
    ("OpenVINO bf16", "openvino", "bf16"),
    ("ONNX Runtime int8 (static, calibrated)", "onnx", "int8"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--variants", action="store_true", help="also time each optimisation alone")
    parser.add_argument("--no-service", action="store_true", help="skip the service's latency")
    parser.add_argument("--bundle", help="time the service on this bundle, built with `artid index build "
                        "ROOT --rerank K`: global and re-ranked at K (default: a toy bundle of the "
                        "benchmark's images, global only)")
    parser.add_argument("--root", help="with --bundle: the Met-format root whose test queries are the photos")
    parser.add_argument("--photos", type=int, default=100, help="with --bundle: photos timed (half exhibits)")
    parser.add_argument("--top", type=int, default=None, help="with --bundle: K at run time (default: the bundle's)")
    parser.add_argument("--service-threads", type=int, default=1,
                        help="torch and OpenCV threads of the service rows (one visitor per core)")
    parser.add_argument("--_method", help=argparse.SUPPRESS)
    parser.add_argument("--_folder", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_fold", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_cl", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_runtime", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--_precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._method:  # inside a child process
        folder, out = Path(args._folder), Path(args._out)
        if args._method == "simple":
            result = run_simple(folder, out, args.threads)
        elif args._method == "service":
            result = run_service(folder, out, args.service_threads, args._runtime, args._precision,
                                 args.bundle, args.root, args.photos, args.top)
        else:
            result = run_artid(folder, out, args.threads, args.batch_size, args.workers, bool(args._fold),
                               bool(args._cl), args._runtime, args._precision)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "images"
        make_images(folder, args.images)
        common = ["--threads", str(args.threads), "--_folder", str(folder)]

        def artid(name: str, batch: int, workers: int, fold: int, cl: int, runtime: str = "torch",
                  precision: str = "fp32") -> dict:
            r = child(common + ["--_method", "artid", "--_out", str(tmp_path / name / "d.npy"),
                                "--batch-size", str(batch), "--workers", str(workers),
                                "--_fold", str(fold), "--_cl", str(cl), "--_runtime", runtime,
                                "--_precision", precision])
            r["npy"] = str(tmp_path / name / "d.npy")
            return r

        for name in ["simple", "artid", *(f"p{i}" for i in range(len(PRECISION_ROWS))),
                     *(f"v{i}" for i in range(6))]:
            (tmp_path / name).mkdir()
        results = {"simple (batch 1, no optimisation)": child(
            common + ["--_method", "simple", "--_out", str(tmp_path / "simple" / "d.npy")])}
        results["simple (batch 1, no optimisation)"]["npy"] = str(tmp_path / "simple" / "d.npy")
        results[f"artid torch FP32 (batch {args.batch_size}, {args.workers} worker, BN fold, "
                "channels-last)"] = artid("artid", args.batch_size, args.workers, 1, 1)
        for i, (label, runtime, precision) in enumerate(PRECISION_ROWS):
            results[f"artid {label}"] = artid(f"p{i}", args.batch_size, args.workers, 1, 1,
                                              runtime, precision)
        if args.variants:
            results["artid batch 1, 0 workers, no BN fold, contiguous"] = artid("v0", 1, 0, 0, 0)
            results["artid batch 1, 0 workers, BN fold"] = artid("v1", 1, 0, 1, 0)
            results["artid batch 1, 0 workers, channels-last"] = artid("v2", 1, 0, 0, 1)
            results["artid batch 1, 0 workers, BN fold + channels-last"] = artid("v3", 1, 0, 1, 1)
            results["artid batch 1, 1 worker, BN fold + channels-last"] = artid("v4", 1, 1, 1, 1)
            results["artid batch 8, 1 worker, BN fold + channels-last"] = artid("v5", 8, 1, 1, 1)

        simple = np.load(tmp_path / "simple" / "d.npy")
        base = None
        print(f"{args.images} JPEG images up to 500 px, EfficientNet-Lite0, multi-scale (1, 2^-0.5, 1/2), "
              f"{args.threads} threads; {cpu_line()}")
        for name, r in results.items():
            rate = r["images"] / r["seconds"]
            base = base or rate
            cos = (np.load(r["npy"]) * simple).sum(1)
            prep = f"  prepare {r['prepare_seconds']:5.1f} s" if r.get("prepare_seconds", 0) > 0.5 else ""
            print(f"  {name:70s} {rate:6.2f} images/s  x{rate / base:5.2f}  cosine min {cos.min():.4f}  "
                  f"peak memory {r['peak_rss_mib']:5.0f} MiB{prep}")
        flops = flops_per_image()
        ghz, peaks = cpu_peak_gflops(args.threads)
        best = max(r["images"] / r["seconds"] for r in results.values())
        print(f"  FLOPs per multi-scale 375x500 image: {flops / 1e9:.2f} GFLOP; at {best:.2f} images/s that is "
              f"{best * flops / 1e9:.1f} GFLOP/s")
        for precision, peak in peaks.items():
            print(f"  CPU peak {precision} ({args.threads} cores x {ghz:.2f} GHz x "
                  f"{peak / max(args.threads * ghz, 1e-9):.0f} FLOP/cycle): {peak:.0f} GFLOP/s -> "
                  f"ceiling {peak * 1e9 / flops:.1f} images/s")
        if not args.no_service:
            if args.bundle and not args.root:
                raise SystemExit("--bundle needs --root (the Met-format root of its test photos)")
            where = (f"bundle {args.bundle}" if args.bundle else "a toy bundle (no re-ranking: pass --bundle "
                     "and --root for it)")
            print(f"  service, Recognizer.recognize per photo, {args.service_threads} thread(s), {where}:")
            fast = ("openvino", "bf16") if "bf16" in peaks else ("onnx", "fp32")
            for label, runtime, precision in [("torch FP32", "torch", "fp32"),
                                              (f"{'OpenVINO bf16' if fast[1] == 'bf16' else 'ONNX Runtime FP32'}",
                                               *fast)]:
                extra = ["--bundle", args.bundle, "--root", args.root, "--photos", str(args.photos)] \
                    if args.bundle else []
                if args.top is not None:
                    extra += ["--top", str(args.top)]
                r = child(common + ["--_method", "service", "--_out", str(tmp_path / "service"),
                                    "--service-threads", str(args.service_threads),
                                    "--_runtime", runtime, "--_precision", precision, *extra])
                for name in ("global", "re-ranked"):
                    if name not in r:
                        continue
                    x, k = r[name], f" K={r['top']}" if name == "re-ranked" else ""
                    right = f"  right {x['right']}/{r['exhibit_photos']}" if r["exhibit_photos"] else ""
                    print(f"    {label:18s} {name + k:14s} p50 {x['p50_ms']:6.1f} ms  p95 {x['p95_ms']:6.1f} ms"
                          f"  | photo sizes seen before: p50 {x['seen_p50_ms']:6.1f}  p95 "
                          f"{x['seen_p95_ms']:6.1f} ms{right}")
                print(f"      ({r['photos']} photos of {r['photo_sizes']} sizes, each answered twice; "
                      f"{r['database_images']} database images)")

if __name__ == "__main__":
    main()
