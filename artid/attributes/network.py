"""The attribute network and its image input: an artid backbone's trunk and GeM pooling followed
by one linear layer with a logit per label (trained by :mod:`artid.attributes.finetune`), the
image files it reads, and its logits for a list of files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from artid.data.images import load_image, to_tensor
from artid.models import build_embedder


class AttributeNet(nn.Module):
    """Backbone trunk -> GeM -> linear layer with one logit per label."""

    def __init__(
        self, model: str, weights: str | None, n_labels: int, freeze_bn: bool = True
    ) -> None:
        super().__init__()
        self.embedder = build_embedder(model, weights=weights)
        self.fc = nn.Linear(self.embedder.num_features, n_labels)
        self.freeze_bn = freeze_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, L) logits."""
        e = self.embedder
        return self.fc(e.pool(e.trunk(e.normalize(x))).flatten(1))

    def freeze_batchnorm(self) -> None:
        """Keep the backbone's BatchNorm statistics frozen (when ``freeze_bn``)."""
        if self.freeze_bn:
            self.embedder.freeze_batchnorm()


class ImageSet(Dataset):
    """Image files (and optional targets) as (3, size, size) tensors, augmented for training."""

    def __init__(
        self, paths: list[Path], targets: np.ndarray | None, size: int, train: bool
    ) -> None:
        self.paths, self.targets = paths, targets
        aug = [
            v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        self.transform = v2.Compose(aug if train else [v2.Resize((size, size), antialias=True)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.transform(to_tensor(load_image(self.paths[i], max_size=None)))
        y = (
            torch.zeros(0)
            if self.targets is None
            else torch.as_tensor(self.targets[i], dtype=torch.float32)
        )
        return x, y


@torch.inference_mode()
def predict_logits(
    net: AttributeNet,
    paths: list[Path],
    size: int,
    batch_size: int = 32,
    progress: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """(N, L) float32 logits of image files (resized to ``size`` x ``size``, no augmentation),
    computed on the network's device."""
    net.eval()
    device = next(net.parameters()).device
    loader = DataLoader(ImageSet(paths, None, size, train=False), batch_size=batch_size)
    out = [
        net(x.to(device)).float().cpu()
        for x, _ in tqdm(loader, desc=desc, unit="batch", disable=not progress)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, net.fc.out_features), np.float32)
