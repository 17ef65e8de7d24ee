"""One batched image -> descriptor path (:mod:`artid.extraction.embedding`) for extraction, training
validation and the service: each gives the descriptors its own former code path gave.

The ``OLD_*`` functions below are verbatim copies of the three former paths (as of commit 9a7aacc),
kept here only as references; they are not used anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from artid.data.entries import Entry
from artid.data.images import load_image, resize_max, to_array, to_tensor
from artid.extraction import ExtractionSettings, extract_list, list_source
from artid.extraction.batching import SizeBuckets
from artid.extraction.decode import decode_stream
from artid.extraction.embedding import embed_arrays
from artid.extraction.speed import optimize_for_inference
from artid.models import MULTI_SCALE, build_embedder
from artid.service.recognizer import Recognizer
from artid.training.augment import eval_transform
from artid.training.data import EntryImages, ImageDataset, MemoryImages, collate_list
from artid.training.validation import embed_images

SIZES = [(40, 32), (32, 40), (40, 32), (28, 28), (40, 32), (33, 45)]
TOL = 1e-5


# ---------------------------------------------------------------------------------------------
# OLD reference 1 of 3: artid/training/validation.py::embed_images before the shared path
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def OLD_validation_embed_images(model: nn.Module, source, device: torch.device, batch_size: int = 32,
                                num_workers: int = 0, multiscale: bool = False) -> np.ndarray:
    was_training = model.training
    model.eval()
    ds = ImageDataset(source, np.zeros(len(source), dtype=np.int64), eval_transform())
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_list, generator=torch.Generator().manual_seed(0))
    out: list[np.ndarray] = []
    for batch in loader:
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i, (x, _) in enumerate(batch):
            shapes.setdefault(tuple(x.shape), []).append(i)
        chunk: list[np.ndarray | None] = [None] * len(batch)
        for ids in shapes.values():
            x = torch.stack([batch[i][0] for i in ids]).to(device)
            v = model.embed_multiscale(x) if multiscale else model(x)
            v = v.float().cpu().numpy()
            for j, i in enumerate(ids):
                chunk[i] = v[j]
        out.append(np.stack(chunk))  # type: ignore[arg-type]
    model.train(was_training)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# OLD reference 2 of 3: artid/extraction/run.py (_to_batch, BatchEmbedder.__call__, _run_shards' loop)
# ---------------------------------------------------------------------------------------------
def OLD_extraction(emb, files: list[Path], settings: ExtractionSettings) -> np.ndarray:
    model, _ = optimize_for_inference(emb, fold_bn=settings.fold_bn, channels_last=settings.channels_last,
                                      device=torch.device("cpu"))
    scales = tuple(settings.scales)

    @torch.inference_mode()
    def call(items: list[tuple[int, np.ndarray]]) -> np.ndarray:
        stacked = torch.from_numpy(np.stack([pixels for _, pixels in items]))
        x = stacked.to("cpu", non_blocking=True).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        v = model.embed_multiscale(x, scales)
        return torch.nn.functional.normalize(v.float(), dim=-1).cpu().numpy()

    vectors: dict[int, np.ndarray] = {}
    buckets = SizeBuckets(settings.batch_size)
    for item in decode_stream(list(range(len(files))), files, settings.max_size, 0):
        assert item.pixels is not None
        for batch in buckets.add(item.index, item.pixels):
            vectors.update(zip((i for i, _ in batch), call(batch)))
    for batch in buckets.flush():
        vectors.update(zip((i for i, _ in batch), call(batch)))
    return np.stack([vectors[i] for i in range(len(files))])


# ---------------------------------------------------------------------------------------------
# OLD reference 3 of 3: artid/service/recognizer.py::Recognizer.describe
# ---------------------------------------------------------------------------------------------
def OLD_recognizer_describe(embedder, device, images: list[Image.Image], max_size: int,
                            scales: tuple[float, ...]) -> np.ndarray:
    rows = []
    with torch.inference_mode():
        for img in images:
            x = to_tensor(resize_max(img, max_size)).unsqueeze(0).to(device)
            if scales == (1.0,):
                v = embedder.forward(x)
            else:
                v = embedder.embed_multiscale(x, scales=scales)
            rows.append(v.float().cpu().numpy())
    return np.concatenate(rows).astype(np.float32)


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    out = []
    for i, (h, w) in enumerate(SIZES):
        rng = np.random.default_rng(i)
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def test_validation_pixels_equal_extraction_pixels(files: list[Path]):
    """Training's eval_transform and extraction's decoding see the same pixels (same loader, resize, [0, 1])."""
    for p in files:
        img = load_image(p, max_size=36)
        a = eval_transform()(img)
        b = torch.from_numpy(np.array(to_array(img))).permute(2, 0, 1).float() / 255.0
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-7, rtol=0)


def test_embed_arrays_rows_in_input_order(emb):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    mixed: list[np.ndarray | torch.Tensor] = [torch.from_numpy(a).permute(2, 0, 1).float() / 255 if i % 2 else a
                                              for i, a in enumerate(arrays)]
    emb.eval()
    seen: list[int] = []
    got = embed_arrays(emb, iter(mixed), scales=(1.0, 0.5), batch_size=2, on_batch=seen.append)
    assert sum(seen) == len(arrays) and max(seen) <= 2
    with torch.inference_mode():
        one = np.concatenate([emb.embed_multiscale(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255,
                                                   (1.0, 0.5)).numpy() for a in arrays])
    assert got.shape == (len(arrays), emb.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, one, atol=TOL)
    assert embed_arrays(emb, [], batch_size=2).shape == (0, emb.dim)


@pytest.mark.parametrize("multiscale", [False, True])
def test_validation_embed_images_unchanged(emb, files: list[Path], multiscale: bool):
    """Same rows as the former loader code, on files and in-memory tensors; the model is left as it was."""
    rng = np.random.default_rng(1)
    memory = MemoryImages([torch.from_numpy(rng.random((3, h, w), dtype=np.float32)) for h, w in SIZES])
    entries = [Entry(path=p.name, label=i, kind="exhibit") for i, p in enumerate(files)]
    sources = [EntryImages(files[0].parent, entries, max_size=36), memory]
    emb.train()
    before = {k: v.clone() for k, v in emb.state_dict().items()}
    for source in sources:
        old = OLD_validation_embed_images(emb, source, torch.device("cpu"), batch_size=4, multiscale=multiscale)
        assert emb.training
        new = embed_images(emb, source, torch.device("cpu"), batch_size=4, multiscale=multiscale)
        assert emb.training  # mode restored
        assert new.shape == old.shape and new.dtype == np.float32
        np.testing.assert_allclose(new, old, atol=TOL)
    after = emb.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched
    emb.eval()


def test_extraction_unchanged(emb, files: list[Path], tmp_path: Path):
    settings = ExtractionSettings(scales=(1.0, 0.5), max_size=36, batch_size=2, workers=0, shard_size=4)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in files))
    images = list_source(listing, name="list")
    got = extract_list(images, emb, tmp_path / "out" / "list", settings, progress=False)
    np.testing.assert_allclose(got.matrix, OLD_extraction(emb, files, settings), atol=TOL)


@pytest.mark.parametrize("scales", [(1.0,), MULTI_SCALE])
def test_recognizer_describe_unchanged(emb, files: list[Path], scales: tuple[float, ...]):
    model, _ = optimize_for_inference(emb, device=torch.device("cpu"))  # as Recognizer.from_bundle does
    model.eval()
    images = [load_image(p) for p in files]
    me = SimpleNamespace(
        embedders=[model], inference=[model], device=torch.device("cpu"), max_size=36, scales=scales
    )
    new = Recognizer.describe(me, images)  # type: ignore[arg-type]
    old = OLD_recognizer_describe(model, torch.device("cpu"), images, 36, scales)
    assert new.shape == old.shape and new.dtype == np.float32
    np.testing.assert_allclose(new, old, atol=TOL)
