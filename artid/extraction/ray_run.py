"""Extraction on a Ray cluster with Ray Data (``artid extract --ray [ADDRESS]``).

This process (the driver) keeps artid's resumable work folders (:mod:`artid.extraction.shards`):
the shards still to do, of every image list, become the rows of a Ray dataset, and
``map_batches`` hands them to a pool of actors, one per GPU (``--device cuda``) or per CPU
worker, each holding its own optimised copy of the embedder. An actor reads a shard's images
(local paths or fsspec URLs, :mod:`artid.extraction.remote`), embeds them as single-process
extraction does (one :meth:`BatchEmbedder.embed` per shard, so the same batches), and returns the
shard's descriptors and failures; the driver writes each shard as it arrives, in whatever order,
and merges them in order at the end. The merged file is therefore the single-process one (ids,
order, values); an interrupted run resumes at shard granularity, with or without Ray (the work
folder is the same); an unreadable image is a recorded failure, as without Ray.

Ray is an optional extra (``pip install 'artid[ray]'``), imported only here and only when used.
The output folder is written by the driver: it need not be shared with the workers, but the
images must be readable by them (the same path on every node, or a URL).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.extraction.remote import location_of, read_image
from artid.extraction.run import BatchEmbedder, _existing_result
from artid.extraction.settings import ExtractionSettings
from artid.extraction.shards import ShardStore
from artid.extraction.sources import ImageList
from artid.localisation.crop import Cropper
from artid.models.embedder import Embedder

log = logging.getLogger(__name__)

#: ``--ray`` without an address: start a Ray instance on this machine for the run.
LOCAL = "local"
#: Most blocks of the dataset of shards (one block per shard up to this).
MAX_BLOCKS = 10_000


def import_ray() -> Any:
    """The ``ray`` module, with Ray Data; a short error naming the extra when it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data comes with the ray[data] extra)
    except ImportError as exc:
        raise ArtidError(
            f"--ray needs Ray Data ({exc}); install it with: pip install 'artid[ray]'"
        ) from None
    return ray


def ray_device(name: str) -> torch.device:
    """The device the workers compute on: ``cpu`` or ``cuda`` (one GPU per worker).

    ``auto`` is ``cuda`` when this machine sees a GPU; on a head node without one, ask for
    ``--device cuda`` to use the workers' GPUs.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtidError(f"--device: unknown device {name!r} (auto, cpu, cuda)") from None
    if device.type not in ("cpu", "cuda"):
        raise ArtidError(f"--device {name}: Ray workers compute on cpu or cuda")
    return torch.device(device.type)  # each worker sees its own GPU as cuda:0


@contextmanager
def connected(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, connected to the cluster at ``address`` (``local`` or None: a fresh local one).

    An already initialised Ray (a caller's own cluster) is used as it is and left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address in (None, LOCAL):
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ArtidError(f"--ray {address}: cannot connect to the Ray cluster ({exc})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class Job:
    """One image list of a run: its work folder and the locations of its images."""

    store: ShardStore
    locations: list[str]
    crop: bool
    name: str


class ShardEmbedder:
    """A Ray Data actor: rows of shards (``list``, ``shard``, ``positions``, ``locations``,
    ``crop``) -> their descriptors (float32 bytes), kept positions and failures (JSON).

    An :class:`ArtidError` (settings the worker's device refuses, ...) travels back as the
    ``error`` of its rows, for the driver to raise as it is (Ray would wrap or lose it).
    """

    def __init__(
        self,
        emb: Embedder,
        settings: ExtractionSettings,
        device: str,
        threads: int,
    ) -> None:
        torch.set_num_threads(threads)
        self.settings = settings
        self.decoders = ThreadPoolExecutor(max(1, settings.workers))
        self.error = ""
        try:
            self.runner = BatchEmbedder(emb, settings, torch.device(device))
        except ArtidError as exc:
            self.error = str(exc)
            return
        self.cropper = (
            Cropper(self.runner.model, settings.crop) if settings.crop is not None else None
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = ("list", "shard", "ok", "failures", "vectors", "error")
        out: dict[str, list] = {name: [] for name in columns}
        for which, shard, positions, where, crop in zip(
            batch["list"], batch["shard"], batch["positions"], batch["locations"], batch["crop"]
        ):
            error = self.error
            ok: list[int] = []
            failures: list[list] = []
            vectors = np.zeros((0, 0), dtype=np.float32)
            if not error:
                try:
                    ok, failures, vectors = self._shard(
                        [int(i) for i in positions], list(where), crop
                    )
                except ArtidError as exc:
                    error = str(exc)
            out["error"].append(error)
            out["list"].append(int(which))
            out["shard"].append(int(shard))
            out["ok"].append(json.dumps(ok))
            out["failures"].append(json.dumps(failures))
            out["vectors"].append(vectors.astype(np.float32).tobytes())
        return {k: np.array(v, dtype=object) for k, v in out.items()}

    def _shard(
        self, positions: list[int], where: list[str], crop: bool
    ) -> tuple[list, list, np.ndarray]:
        decoded = self.decoders.map(read_image, positions, where, repeat(self.settings.max_size))
        cropper = self.cropper if crop else None
        kept: list[int] = []
        failures: list[list] = []

        def readable() -> Iterator[np.ndarray]:
            for item in decoded:
                if item.error is not None:
                    failures.append([item.index, item.error])
                    continue
                assert item.pixels is not None  # decoded: no error
                kept.append(item.index)
                yield item.pixels if cropper is None else cropper(item.pixels)

        vectors = self.runner.embed(readable(), self.settings.batch_size)
        return kept, failures, vectors


def extract_lists_ray(
    lists: Sequence[ImageList],
    emb: Embedder,
    out_dir: str | Path,
    settings: ExtractionSettings,
    device: torch.device | str = "cpu",
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, DescriptorSet]:
    """:func:`artid.extraction.run.extract_lists` on a Ray cluster: the same files, resumable.

    Args:
        lists: the image lists (each to ``<out_dir>/<name>.npy/.json``).
        emb: the embedder (sent to every worker).
        out_dir: output folder (written by this process).
        settings: extraction settings; ``workers`` is the decoding threads of each Ray worker.
        device: ``cpu`` (a worker per ``threads`` CPUs) or ``cuda`` (a worker per GPU).
        address: the Ray cluster (``auto``, ``ray://host:10001``, ``host:6379``), or None /
            ``local`` for a local one started for the run.
        workers: Ray workers (actors); default: one per GPU, or per ``threads`` CPUs, of the
            cluster.
        threads: torch threads (and CPUs reserved) per worker.
        progress: show a progress bar.
    """
    if settings.precision == "int8":
        raise ArtidError(
            "--precision int8 is calibrated on images read by this process; with --ray use "
            "fp32 or bf16"
        )
    out_dir = Path(out_dir)
    device = torch.device(device)
    results: dict[str, DescriptorSet] = {}
    jobs: list[Job] = []
    for images in lists:
        list_settings = settings.for_list(images.name)
        out = out_dir / images.name
        done = _existing_result(out, emb.spec, list_settings.descriptor_settings())
        if done is not None:
            log.info("%s already extracted (%d descriptors); skipping", out, len(done.entries))
            results[images.name] = done
            continue
        store = ShardStore(
            out, images.entries, emb.spec, list_settings.descriptor_settings(), settings.shard_size
        )
        store.open()
        locations = [location_of(images, e) for e in images.entries]
        jobs.append(Job(store, locations, list_settings.crop is not None, images.name))
    if any(len(job.store.done_shards()) < job.store.n_shards for job in jobs):
        with connected(address, workers and workers * threads) as ray:
            _run(ray, jobs, emb, settings, device, workers, threads, progress)
    for job in jobs:
        results[job.name] = dset = job.store.merge()
        if dset.failures:
            log.warning(
                "%s: %d image(s) could not be read and are left out (listed in %s.json)",
                job.name,
                len(dset.failures),
                job.store.out,
            )
    return {images.name: results[images.name] for images in lists}


def _run(
    ray: Any,
    jobs: list[Job],
    emb: Embedder,
    settings: ExtractionSettings,
    device: torch.device,
    workers: int | None,
    threads: int,
    progress: bool,
) -> None:
    rows: list[dict[str, Any]] = []
    for j, job in enumerate(jobs):
        done = job.store.done_shards()
        for s in range(job.store.n_shards):
            if s not in done:
                positions = list(job.store.shard_range(s))
                where = [job.locations[i] for i in positions]
                rows.append(
                    {
                        "list": j,
                        "shard": s,
                        "positions": positions,
                        "locations": where,
                        "crop": job.crop,
                    }
                )
    size = min(len(rows), workers or _cluster_workers(ray, device, threads))
    gpu = device.type == "cuda"
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    shards = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
    described = shards.map_batches(
        ShardEmbedder,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=size),
        fn_constructor_kwargs={
            "emb": emb,
            "settings": settings,
            "device": device.type,
            "threads": threads,
        },
        num_cpus=threads,
        num_gpus=1 if gpu else 0,
    )
    total = sum(len(job.store.entries) for job in jobs)
    todo = sum(len(row["positions"]) for row in rows)
    log.info("%d shards on %d Ray worker(s) (%s)", len(rows), size, device.type)
    with tqdm(
        total=total, initial=total - todo, unit="img", desc="ray", disable=not progress
    ) as bar:
        for row in described.iter_rows():
            if row["error"]:
                raise ArtidError(row["error"])
            store = jobs[int(row["list"])].store
            kept, failures = json.loads(row["ok"]), json.loads(row["failures"])
            vectors = np.frombuffer(row["vectors"], dtype=np.float32)
            matrix = vectors.reshape(len(kept), -1) if kept else vectors.reshape(0, 0)
            store.write_shard(int(row["shard"]), dict(zip(kept, matrix)), dict(failures))
            bar.update(len(kept) + len(failures))


def _cluster_workers(ray: Any, device: torch.device, threads: int) -> int:
    """One worker per GPU of the cluster, or per ``threads`` of its CPUs."""
    resources = ray.cluster_resources()
    if device.type == "cuda":
        gpus = int(resources.get("GPU", 0))
        if gpus < 1:
            raise ArtidError("--ray --device cuda: the Ray cluster has no GPU; use --device cpu")
        return gpus
    return max(1, int(resources.get("CPU", 1)) // threads)
