"""The extraction loop: decode in workers, batch by size, embed, write shards, merge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from artid.data.jsonfile import read_json
from artid.descriptors import DescriptorSet, load_descriptors
from artid.errors import ArtidError
from artid.extraction.decode import Decoded, decode_stream
from artid.extraction.embedding import embed_arrays, embed_batch
from artid.extraction.inference import RUNTIME_CACHE, calibration_images, inference_model
from artid.extraction.settings import DTYPES, ExtractionSettings
from artid.extraction.shards import ShardStore, _differences
from artid.extraction.sources import ImageList
from artid.extraction.speed import optimize_for_inference
from artid.localisation.crop import Cropper
from artid.models.embedder import Embedder

log = logging.getLogger(__name__)

class BatchEmbedder:
    """Runs an (optimised copy of an) embedder on batches of decoded images.

    Args:
        emb: the embedder (not modified).
        settings: extraction settings.
        device: where to compute.
    """

    def __init__(self, emb: Embedder, settings: ExtractionSettings, device: torch.device,
                 cache: Path | None = None, calibration: Any = None) -> None:
        if settings.dtype not in DTYPES:
            raise ArtidError(
                f"unknown dtype {settings.dtype!r}; expected one of {', '.join(DTYPES)}"
            )
        if settings.dtype == "float16" and device.type == "cpu":
            raise ArtidError("--dtype float16 needs a GPU (--device cuda); on the CPU use float32")
        self.model, self.optimizations = optimize_for_inference(
            emb, fold_bn=settings.fold_bn, channels_last=settings.channels_last, device=device
        )
        self.dtype = DTYPES[settings.dtype]
        self.model = self.model.to(self.dtype)
        self.scales = tuple(settings.scales)
        self.device = device
        #: what computes descriptors: the model, or its bf16 / graph-runtime form
        self.infer = inference_model(self.model, settings.runtime, settings.precision, device,
                                     cache, calibration)

    def __call__(self, items: list[tuple[int, np.ndarray]]) -> np.ndarray:
        """(B, D) float32 L2-normalised descriptors of (index, pixels) images of one size, in
        order."""
        return embed_batch(
            self.infer, [pixels for _, pixels in items], self.scales, self.device, self.dtype
        )

    def embed(
        self,
        images: Iterable[np.ndarray],
        batch_size: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(N, D) float32 L2-normalised descriptors of (H, W, 3) uint8 images of any sizes, in order
        (:func:`artid.extraction.embedding.embed_arrays`)."""
        return embed_arrays(
            self.infer, images, self.scales, batch_size, self.device, self.dtype, on_batch
        )


def _existing_result(
    out: Path, model: dict[str, Any], settings: dict[str, Any]
) -> DescriptorSet | None:
    """A finished descriptor file made the same way, or None if there is none; refuse a different
    one."""
    manifest = out.with_name(out.name + ".json")
    if not manifest.is_file() or not out.with_name(out.name + ".npy").is_file():
        return None
    try:
        meta = read_json(manifest)
    except ArtidError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    diffs = _differences(
        {"model": meta.get("model"), "settings": meta.get("settings")},
        {"model": model, "settings": settings},
    )
    if diffs:
        raise ArtidError(
            f"{manifest} already exists and was made differently ({'; '.join(diffs)[:600]}); "
            "choose another --out or delete it"
        )
    return load_descriptors(out)


def extract_list(
    images: ImageList,
    emb: Embedder,
    out: str | Path,
    settings: ExtractionSettings,
    device: torch.device | str = "cpu",
    runner: BatchEmbedder | None = None,
    progress: bool = True,
) -> DescriptorSet:
    """Extract (or finish extracting) the descriptors of one image list into ``<out>.npy/.json``.

    Resumable: finished shards of an interrupted run with the same model, settings and entries
    are kept; a finished output made the same way is returned as it is.

    Args:
        images: the image list.
        emb: the embedder.
        out: output path without suffix.
        settings: extraction settings.
        device: where to compute.
        runner: a prepared :class:`BatchEmbedder` (to share one between lists).
        progress: show a progress bar.

    Returns:
        The descriptor set written (readable images only; the others in ``failures``).
    """
    out = Path(out)
    device = torch.device(device)
    model_spec = emb.spec
    dsettings = settings.descriptor_settings()
    done = _existing_result(out, model_spec, dsettings)
    if done is not None:
        log.info("%s already extracted (%d descriptors); skipping", out, len(done.entries))
        return done
    store = ShardStore(out, images.entries, model_spec, dsettings, settings.shard_size)
    store.open()
    todo_shards = [s for s in range(store.n_shards) if s not in store.done_shards()]
    files = [images.path_of(e) for e in images.entries]
    todo = [i for s in todo_shards for i in store.shard_range(s)]
    if todo:
        runner = runner or BatchEmbedder(
            emb, settings, device, out.parent / RUNTIME_CACHE,
            calibration_images(files, settings.max_size, settings.scales),
        )
        cropper = Cropper(runner.model, settings.crop) if settings.crop is not None else None
        _run_shards(
            store, todo_shards, todo, files, settings, runner, progress, images.name, cropper
        )
    dset = store.merge()
    if dset.failures:
        log.warning(
            "%s: %d image(s) could not be read and are left out (listed in %s.json)",
            images.name,
            len(dset.failures),
            out,
        )
    return dset


def _run_shards(
    store: ShardStore,
    shards: list[int],
    todo: list[int],
    files: list[Path],
    settings: ExtractionSettings,
    runner: BatchEmbedder,
    progress: bool,
    name: str,
    cropper: Cropper | None = None,
) -> None:
    total = len(store.entries)
    bar = tqdm(
        total=total,
        initial=total - len(todo),
        unit="img",
        desc=name,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    stream = decode_stream(todo, files, settings.max_size, settings.workers)
    try:
        for shard in (
            shards
        ):  # ``todo`` is the shards' positions in order: take each shard's share of the stream
            positions = store.shard_range(shard)
            kept: list[int] = []
            failures: dict[int, str] = {}
            images = _readable(islice(stream, len(positions)), kept, failures, bar, cropper)
            vectors = runner.embed(images, settings.batch_size, bar.update)
            store.write_shard(shard, dict(zip(kept, vectors)), failures)
    finally:
        stream.close()
        bar.close()


def _readable(
    items: Iterable[Decoded],
    kept: list[int],
    failures: dict[int, str],
    bar: tqdm,
    cropper: Cropper | None,
) -> Iterator[np.ndarray]:
    """The pixels of the decoded images (cropped when asked); their positions go to ``kept``, the
    others' errors to ``failures``."""
    for item in items:
        if item.error is not None:
            failures[item.index] = item.error
            bar.update(1)
            log.debug("%s", item.error)
            continue
        assert item.pixels is not None  # decoded: no error
        kept.append(item.index)
        yield item.pixels if cropper is None else cropper(item.pixels)


def extract_lists(
    lists: Sequence[ImageList],
    emb: Embedder,
    out_dir: str | Path,
    settings: ExtractionSettings,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, DescriptorSet]:
    """Extract several image lists into ``<out_dir>/<name>.npy/.json`` with one prepared model.

    A crop in the settings applies to every list but the studio photos
    (:meth:`ExtractionSettings.for_list`).
    """
    out_dir = Path(out_dir)
    device = torch.device(device)
    runner: BatchEmbedder | None = None
    results = {}
    for images in lists:
        out = out_dir / images.name
        list_settings = settings.for_list(images.name)
        if (
            runner is None
            and _existing_result(out, emb.spec, list_settings.descriptor_settings()) is None
        ):
            runner = BatchEmbedder(
                emb, settings, device, out_dir / RUNTIME_CACHE,
                calibration_images([lists[0].path_of(e) for e in lists[0].entries],
                                   settings.max_size, settings.scales),
            )
        results[images.name] = extract_list(
            images, emb, out, list_settings, device, runner, progress
        )
    return results
