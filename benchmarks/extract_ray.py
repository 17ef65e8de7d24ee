"""Throughput of extraction on Ray (1 and 2 workers) against single-process, in one run.

The same photos (those of ``extract_throughput.py``: crops of scikit-image's photos, longer side
500) are described with the default multi-scale settings four ways: single-process with 1 torch
thread and with as many threads as Ray gets CPUs (the fair baseline for N workers), then
``artid.extraction.ray_run.extract_lists_ray`` with 1 and with 2 workers (1 thread each) on a
local Ray instance started once (its start-up is reported apart). Every output is checked to be
identical to the single-process one. For Ray the wall time includes starting the actor pool
(shipping the model, optimising it); ``steady`` (every way) counts only the images after the
first shard was written, over the time from then to the last one.

    python benchmarks/extract_ray.py --images 96 --shard-size 8
    python benchmarks/extract_ray.py --device cuda --images 2000 --shard-size 256  # per GPU

With ``--device cuda`` the single-process run and each Ray worker use one GPU (batch 32, 4
decoding threads), and Ray runs with as many workers (1, 2) as there are GPUs. Prints the CPU
(model, avx2 / avx512 / amx flags), the load before and after, and each way's images/s (all,
and steady) and CPU seconds per image (this process and its descendants: Ray's workers too;
under a shared machine's load the least noisy figure) with their ratios to the single-process
run at 1 thread. ``steady`` needs several shards per worker to mean anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_throughput import make_images  # noqa: E402  (a sibling benchmark script)


def cpu_line() -> str:
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "Model name" in ln), "?"
    )
    flags = next((ln for ln in info.splitlines() if ln.startswith("Flags")), "")
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    return f"{model}, {os.cpu_count()} CPUs, flags: {' '.join(have) or 'none of avx2/avx512/amx'}"


def load_line() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class CpuMeter:
    """CPU seconds of this process and all its descendants (Ray's raylet and workers) over a
    run, from ``/proc`` sampled every ``every`` seconds (a process that ends loses at most its
    last ``every`` seconds)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.seen: dict[int, float] = {}
        self.start: dict[int, float] = {}
        self.stop_event = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def _tree(self) -> dict[int, float]:
        stats: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry)] = (
                    int(fields[1]),
                    (int(fields[11]) + int(fields[12])) / self.tick,
                )
        tree, todo = {}, [os.getpid()]
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in tree:
                tree[pid] = stats[pid][1]
                todo += [child for child, (parent, _) in stats.items() if parent == pid]
        return tree

    def _watch(self) -> None:
        while not self.stop_event.wait(self.every):
            self.seen.update(self._tree())

    def __enter__(self) -> CpuMeter:
        self.start = self._tree()
        self.seen = dict(self.start)
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join()
        self.seen.update(self._tree())
        self.seconds = sum(t - self.start.get(pid, 0.0) for pid, t in self.seen.items())


def timed(run):
    """(seconds, steady images/s, result, CPU seconds) of ``run()``; shard arrival times seen
    by the driver."""
    from artid.extraction.shards import ShardStore

    arrivals: list[tuple[float, int]] = []
    real = ShardStore.write_shard

    def timed_write(self, shard, vectors, failures):
        real(self, shard, vectors, failures)
        arrivals.append((time.perf_counter(), len(vectors) + len(failures)))

    ShardStore.write_shard = timed_write
    try:
        with CpuMeter() as cpu:
            start = time.perf_counter()
            result = run()
            elapsed = time.perf_counter() - start
    finally:
        ShardStore.write_shard = real
    later = sum(n for _, n in arrivals[1:])
    steady = later / (arrivals[-1][0] - arrivals[0][0]) if len(arrivals) > 1 else float("nan")
    return elapsed, steady, result, cpu.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: a Ray worker per GPU"
    )
    parser.add_argument(
        "--no-threaded",
        action="store_true",
        help="leave out single-process with --cpus threads (it crawls when other jobs hold the "
        "cores: OpenMP threads wait for each other)",
    )
    args = parser.parse_args()

    import ray
    import torch

    from artid.extraction import ExtractionSettings, extract_lists, folder_source, ray_run
    from artid.models import build_embedder

    gpu = args.device == "cuda"
    gpus = torch.cuda.device_count() if gpu else 0
    print(f"cpu: {cpu_line()}")
    if gpu:
        print(f"gpu: {gpus} x {torch.cuda.get_device_name(0)}")
    print(f"load before: {load_line()}")
    settings = ExtractionSettings(
        batch_size=32 if gpu else 1, workers=4 if gpu else 0, shard_size=args.shard_size
    )
    emb = build_embedder("efficientnet_lite0")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        make_images(folder, args.images)
        lists = [folder_source(folder, "photos")]
        for threads in [1] if gpu or args.no_threaded else sorted({1, args.cpus}):
            torch.set_num_threads(threads)
            where = Path(tmp) / f"single{threads}"
            run = partial(extract_lists, lists, emb, where, settings, args.device, progress=False)
            rows.append((f"single process, {threads} thread(s)", *timed(run)))
        start = time.perf_counter()
        ray.init(
            num_cpus=args.cpus,
            num_gpus=gpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        )
        started = time.perf_counter() - start
        print(f"ray start-up (local instance, {args.cpus} CPUs, {gpus} GPUs): {started:.1f} s")
        torch.set_num_threads(1)
        try:
            for workers in [1, 2] if not gpu else [n for n in (1, 2) if n <= gpus]:
                where = Path(tmp) / f"ray{workers}"
                run = partial(ray_run.extract_lists_ray, lists, emb, where, settings, args.device)
                run = partial(run, workers=workers, progress=False)
                rows.append((f"ray, {workers} worker(s) x 1 thread", *timed(run)))
        finally:
            ray.shutdown()
    reference = rows[0][3]["photos"]
    base, base_steady = args.images / rows[0][1], rows[0][2]
    print(
        f"{args.images} images, multi-scale {settings.scales}, max size {settings.max_size}, "
        f"shards of {args.shard_size}, batch {settings.batch_size}, on {args.device}"
    )
    base_cpu = rows[0][4] / args.images
    print(
        f"{'way':<34} {'wall s':>7} {'img/s':>7} {'ratio':>6} {'steady':>7} {'ratio':>6} "
        f"{'CPU s/img':>9} {'ratio':>6} same"
    )
    for name, elapsed, steady, out, cpu in rows:
        dset = out["photos"]
        same = np.array_equal(dset.matrix, reference.matrix) and dset.entries == reference.entries
        rate, per = args.images / elapsed, cpu / args.images
        print(
            f"{name:<34} {elapsed:>7.1f} {rate:>7.2f} {rate / base:>6.2f} {steady:>7.2f} "
            f"{steady / base_steady:>6.2f} {per:>9.3f} {per / base_cpu:>6.2f} {same}"
        )
    print(f"load after: {load_line()}")


if __name__ == "__main__":
    main()
