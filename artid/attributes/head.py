"""A linear or small MLP head on frozen descriptors: multi-label (sigmoid + BCE) or multi-class
(softmax + CE).

Training is mini-batch Adam on (N, D) descriptors already in memory; on the
synthetic benchmark it takes seconds on one CPU core. Saved as ``head.npz`` (the state dict as
arrays, read with ``allow_pickle=False``) plus the settings in the run's JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from artid.attributes.arrays import load_npz
from artid.errors import ArtidError
from artid.files import atomic_path
from artid.models.state_dicts import load_weights


@dataclass(frozen=True)
class HeadSettings:
    """How the head is built and trained.

    Attributes:
        hidden: width of the MLP's hidden layer; 0 for a linear head.
        dropout: dropout before the output layer (MLP only).
        epochs, batch_size, lr, weight_decay: Adam training.
        pos_weight: BCE positive weight per label, ``none`` or ``balanced`` (negatives / positives,
            capped at ``max_pos_weight``).
        max_pos_weight: the cap of ``balanced``.
        seed: initialisation and batch order.
    """

    hidden: int = 0
    dropout: float = 0.2
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-4
    pos_weight: str = "none"
    max_pos_weight: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [
            f"{n}={getattr(self, n)!r}"
            for n in ("dropout", "lr", "weight_decay", "max_pos_weight")
            if not math.isfinite(float(getattr(self, n)))
        ]
        if bad:
            raise ArtidError(f"head settings must be finite numbers, got {', '.join(bad)}")
        if self.hidden < 0 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ArtidError(
                f"head settings: hidden >= 0, epochs >= 1, batch size >= 1, lr > 0; got {self}"
            )
        if self.pos_weight not in ("none", "balanced"):
            raise ArtidError(f"--pos-weight must be none or balanced, got {self.pos_weight!r}")

    def to_json(self) -> dict:
        return asdict(self)


def build_head(dim: int, outputs: int, settings: HeadSettings) -> nn.Module:
    """``Linear(dim, outputs)``, or ``Linear -> ReLU -> Dropout -> Linear`` when ``settings.hidden``
    > 0."""
    if settings.hidden == 0:
        return nn.Linear(dim, outputs)
    return nn.Sequential(
        nn.Linear(dim, settings.hidden),
        nn.ReLU(),
        nn.Dropout(settings.dropout),
        nn.Linear(settings.hidden, outputs),
    )


def balanced_pos_weight(y: np.ndarray, cap: float) -> np.ndarray:
    """(L,) negatives / positives of each label, clipped to [1, cap] (labels never positive get
    ``cap``)."""
    pos = y.sum(0).astype(np.float64)
    neg = len(y) - pos
    return np.clip(neg / np.maximum(pos, 1e-9), 1.0, cap).astype(np.float32)


def class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) inverse-frequency class weights ``n / (C * count)`` (scikit-learn's ``balanced``); 0 for
    absent classes."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    present = counts > 0
    out = np.zeros(n_classes)
    out[present] = len(codes) / (present.sum() * counts[present])
    return out.astype(np.float32)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    settings: HeadSettings,
    *,
    multiclass: bool = False,
    n_classes: int | None = None,
    weights: np.ndarray | None = None,
    progress: bool = False,
) -> nn.Module:
    """Train a head on descriptors.

    Args:
        x: (N, D) descriptors.
        y: (N, L) 0/1 labels (multi-label), or (N,) class codes 0..C-1 (``multiclass``).
        settings: head and training settings.
        multiclass: softmax + cross-entropy instead of sigmoid + BCE.
        n_classes: C for multi-class (default ``y.max() + 1``).
        weights: (C,) class weights for the cross-entropy (multi-class only).
        progress: show a progress bar over epochs.

    Returns:
        The trained head in eval mode.
    """
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if len(x_t) == 0 or len(x_t) != len(y):
        raise ArtidError(
            f"head training needs as many label rows as descriptors (>0); got {len(x_t)} and "
            f"{len(y)}"
        )
    torch.manual_seed(settings.seed)
    if multiclass:
        y_t = torch.as_tensor(np.asarray(y, dtype=np.int64))
        outputs = int(n_classes if n_classes is not None else int(y_t.max()) + 1)
        w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        loss_fn: nn.Module = nn.CrossEntropyLoss(weight=w)
    else:
        y_t = torch.as_tensor(np.asarray(y, dtype=np.float32))
        outputs = y_t.shape[1]
        pw = None
        if settings.pos_weight == "balanced":
            pw = torch.as_tensor(balanced_pos_weight(np.asarray(y), settings.max_pos_weight))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pw)
    head = build_head(x_t.shape[1], outputs, settings)
    opt = torch.optim.Adam(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    head.train()
    for _ in tqdm(range(settings.epochs), desc="head", unit="epoch", disable=not progress):
        for idx in torch.randperm(len(x_t), generator=gen).split(settings.batch_size):
            opt.zero_grad()
            loss = loss_fn(head(x_t[idx]), y_t[idx])
            loss.backward()
            opt.step()
    return head.eval()


@torch.inference_mode()
def head_logits(head: nn.Module, x: np.ndarray) -> np.ndarray:
    """(N, outputs) float32 logits of descriptors."""
    return head(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()


def save_head(head: nn.Module, file: Path) -> None:
    """The head's state dict as ``.npz`` arrays."""
    with atomic_path(file) as tmp:
        np.savez(tmp, **{k: v.detach().cpu().numpy() for k, v in head.state_dict().items()})


def load_head(file: Path, dim: int, outputs: int, settings: HeadSettings) -> nn.Module:
    """A head written by :func:`save_head` (shapes checked)."""
    head = build_head(dim, outputs, settings)
    state = {k: torch.as_tensor(v) for k, v in load_npz(file).items()}
    load_weights(head, state, file, f"a head of {dim} -> {outputs} with these settings")
    return head.eval()
