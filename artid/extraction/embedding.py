"""The one batched image -> descriptor path: bucket by size, batch, embed, re-normalise, rows in
order.

Used by descriptor extraction (:mod:`artid.extraction.run`, around its decoding workers and shards),
training validation (:func:`artid.training.validation.embed_images`, around its data loader) and the
service (:meth:`artid.service.recognizer.Recognizer.describe`). Each caller keeps its own way of
reading images; all of them read and resize with :func:`artid.data.images.load_image` /
:func:`artid.data.images.resize_max` and scale pixels to [0, 1], so the images given here are the
same.

Images of identical height and width share a batch
(:class:`~artid.extraction.batching.SizeBuckets`); the model runs in whatever mode the caller left
it (eval for descriptors), and is not modified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from artid.data.images import array_to_tensor
from artid.extraction.batching import Pixels, SizeBuckets

# : ``scales`` value asking for the model's own default multi-scale pyramid
# (``model.embed_multiscale(x)``).
MODEL_DEFAULT_SCALES = None


def to_batch(images: Sequence[Pixels], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Images of one size -> (B, 3, H, W) in [0, 1] on ``device`` in ``dtype``.

    (H, W, 3) uint8 arrays are stacked, moved as uint8 and converted there (channels-last strides);
    (3, H, W) float tensors in [0, 1] are stacked as they are (arrays among them are converted
    first).
    """
    if all(isinstance(p, np.ndarray) for p in images):
        stacked = torch.from_numpy(np.stack(images))  # (B, H, W, 3) uint8
        batch = stacked.to(device, non_blocking=True).permute(0, 3, 1, 2)  # channels-last strides
        return batch.to(dtype).div_(255.0)
    tensors = [array_to_tensor(p) if isinstance(p, np.ndarray) else p for p in images]
    return torch.stack(tensors).to(device=device, dtype=dtype)


def embed_batch(
    model: Any,
    images: Sequence[Pixels],
    scales: Sequence[float] | None,
    device: torch.device,
    dtype: torch.dtype,
) -> np.ndarray:
    """(B, D) float32 L2-normalised descriptors of images of one size, in order.

    Args:
        model: an embedder: ``model(x)`` for ``scales == (1,)``, else ``model.embed_multiscale(x,
            scales)`` (``model.embed_multiscale(x)`` when ``scales`` is None: the model's own
            pyramid).
        images: (H, W, 3) uint8 arrays or (3, H, W) float tensors in [0, 1], all of one height and
        width. scales: image-pyramid factors, or None. device, dtype: where and in which precision
        to compute (the model's own).
    """
    x = to_batch(images, device, dtype)
    with torch.no_grad():
        if scales is None:
            v = model.embed_multiscale(x)
        elif tuple(float(s) for s in scales) == (1.0,):
            v = model(x)
        else:
            v = model.embed_multiscale(x, tuple(scales))
        v = F.normalize(v.float(), dim=-1)  # re-normalise (after a float16 pass)
    return v.cpu().numpy()


def embed_arrays(
    model: Any,
    images: Iterable[Pixels],
    scales: Sequence[float] | None = (1.0,),
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    on_batch: Callable[[int], None] | None = None,
    max_pending: int | None = None,
) -> np.ndarray:
    """Descriptors of images of any sizes, batched by size, as rows in the order of ``images``.

    ``images`` is consumed lazily: batches are computed as soon as they are full, so a stream
    (e.g. of decoding workers) overlaps with the forward passes and only about ``max_pending``
    images wait at a time.

    Args:
        model: the embedder, on ``device`` in ``dtype`` and in the mode wanted (eval); see
        :func:`embed_batch`. images: (H, W, 3) uint8 arrays or (3, H, W) float tensors in [0, 1].
        scales: image-pyramid factors (``(1,)``: single-scale), or None for the model's own
        multi-scale. batch_size: images per forward pass. device, dtype: where and in which
        precision to compute. on_batch: called with the number of images of each batch once it is
        embedded (progress). max_pending: bound of waiting images (see :class:`SizeBuckets`).

    Returns:
        (N, D) float32 L2-normalised rows; (0, D) (D = ``model.dim`` when it has one, else 0) for no
        image.
    """
    device = torch.device(device)
    buckets = SizeBuckets(batch_size, max_pending)
    rows: dict[int, np.ndarray] = {}

    def run(batch: list[tuple[int, Pixels]]) -> None:
        vectors = embed_batch(model, [pixels for _, pixels in batch], scales, device, dtype)
        rows.update(zip((i for i, _ in batch), vectors))
        if on_batch is not None:
            on_batch(len(batch))

    n = 0
    for n, pixels in enumerate(images, start=1):
        for batch in buckets.add(n - 1, pixels):
            run(batch)
    for batch in buckets.flush():
        run(batch)
    if n == 0:
        return np.zeros((0, int(getattr(model, "dim", 0) or 0)), dtype=np.float32)
    return np.ascontiguousarray(np.stack([rows[i] for i in range(n)]), dtype=np.float32)
