"""Data-parallel training: one process per GPU (or CPU share), started by ``torchrun``.

``torchrun --nproc_per_node N -m artid train METHOD ...`` starts N processes; each reads its
place from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the process group (:func:`from_env`): NCCL on GPUs (process k on
``cuda:LOCAL_RANK``), gloo on CPUs. Each process then:

- loads its share of every global batch (:mod:`.sharding`), so ``--batch-size`` stays the
  global batch: N processes train on the batches one process would;
- forwards its share through the embedder wrapped in ``DistributedDataParallel`` (gradients
  averaged over the processes during the backward pass);
- gathers the embeddings of all shares WITH their gradient (:meth:`Distributed.gather`: an
  all-gather whose backward is an all-reduce, :class:`GatherWithGrad`) and computes the method's
  loss over the global batch: every process computes the same loss. The gather's backward sums the
  processes' gradients of each share (N times the gradient of the loss), and DDP's average
  divides by N: the gradient is exactly that of one process on the global batch. Plain DDP
  (a loss per share) would see only its share's pairs, sample the heads' BatchNorm (SimSiam)
  over a share and weight DNet's loss per share. Cost per batch and embedding tensor: an
  all-gather of its (B, D) floats forward and an all-reduce of their gradient backward (B x D
  x 4 bytes: 0.66 MB for the 128 images of 64 pairs at EfficientNet-Lite0's D = 1280, against
  DDP's own all-reduce of every weight, 20 MB for Lite0 and its projector), and the loss and
  the head (SimSiam's MLPs, DNet's classifier) computed on the whole batch by every process;
- averages the head's gradients over the processes (they are equal: the head sees the same
  gathered batch everywhere; the average only keeps the copies from drifting apart);
- embeds its share of the database and of the validation photos and gathers the descriptors
  (:meth:`Distributed.sharded`): hard negatives are mined over the whole database, identically
  on every process, and validation is that of one process.

Only rank 0 writes the run folder (checkpoints, best epochs, log, trainer state, run.json);
every process resumes from the same trainer state, so a resume is exact as in one process.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.training.sharding import share

log = logging.getLogger(__name__)

#: torchrun's variables a process of a run reads.
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class GatherWithGrad(torch.autograd.Function):
    """All-gather of equal-size shares (concatenated in rank order) whose backward sums the
    gradients of every process's copy and hands each process those of its own rows.

    The same as ``torch.distributed.nn.functional.all_gather`` (deprecated in torch 2.x) on
    public collectives only, so gloo runs it as NCCL does.
    """

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        ctx.rank, ctx.rows = rank, int(t.shape[0])
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        g = grads[0].contiguous().clone()
        dist.all_reduce(g)
        return g[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows], None, None


class _Rows:
    """Rows ``[lo, hi)`` of an image source (an image source itself)."""

    def __init__(self, source: Any, lo: int, hi: int) -> None:
        self.source, self.lo, self.hi = source, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def load(self, i: int) -> Any:
        return self.source.load(self.lo + i)


@dataclass
class Distributed:
    """This process's place in a data-parallel run (see the module docstring).

    Attributes:
        rank: this process, 0..world-1 (0 writes the run folder).
        world: processes of the run.
        device: this process's device (``cuda:LOCAL_RANK`` or the CPU).
    """

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _sizes(self, n: int) -> list[int]:
        sizes = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world)]
        dist.all_gather(sizes, torch.tensor([n], dtype=torch.int64, device=self.device))
        return [int(s.item()) for s in sizes]

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """The rows of ``t`` of every process, in rank order; gradients flow back to each
        process's own rows when ``t`` requires a gradient. Shares may differ in size."""
        sizes = self._sizes(int(t.shape[0]))
        pad = max(sizes) - int(t.shape[0])
        if pad:
            t = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))])
        if t.requires_grad:
            flat = GatherWithGrad.apply(t, self.rank, self.world)
        else:
            parts = [torch.empty_like(t) for _ in range(self.world)]
            dist.all_gather(parts, t.contiguous())
            flat = torch.cat(parts)
        rows = max(sizes)
        return torch.cat([flat[r * rows:r * rows + s] for r, s in enumerate(sizes)])

    def gather_rows(self, a: np.ndarray) -> np.ndarray:
        """:meth:`gather` for a NumPy array (no gradient)."""
        t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return self.gather(t).cpu().numpy()

    def total(self, x: float) -> float:
        """The sum of ``x`` over the processes."""
        t = torch.tensor([float(x)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item())

    def average_grads(self, module: nn.Module | None) -> None:
        """Average the gradients of ``module``'s parameters over the processes (one all-reduce)."""
        grads = [] if module is None else [p.grad for p in module.parameters()
                                           if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def check(self, method: Any) -> None:
        """Refuse a method whose loss cannot be taken over the global batch (no ``gather``)."""
        params = inspect.signature(method.loss).parameters.values()
        if not any(p.name == "gather" or p.kind is p.VAR_KEYWORD for p in params):
            raise ArtidError(f"{method.name} cannot train on several processes (its loss takes "
                             "no gather); run it in one process, without torchrun")

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model in ``DistributedDataParallel`` (as it is when nothing of it is trained).

        Buffers are not synchronised at every forward: the loop freezes the BatchNorm statistics
        of the embedder.
        """
        if not any(p.requires_grad for p in model.parameters()):
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)

    def sharded(self, embed: Callable[[nn.Module, Any], np.ndarray]
                ) -> Callable[[nn.Module, Any], np.ndarray]:
        """``embed(model, source)`` with each process embedding its share of the source and the
        descriptors of all shares gathered (every process gets all of them, in source order)."""
        def run(model: nn.Module, source: Any) -> np.ndarray:
            if len(source) < self.world:
                raise ArtidError(f"{len(source)} images cannot be shared by {self.world} "
                                 "processes; run fewer")
            lo, hi = share(len(source), self.rank, self.world)
            return self.gather_rows(embed(model, _Rows(source, lo, hi)))
        return run

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (its variables are set)."""
    return all(k in os.environ for k in ENV)


def from_env(device: str = "auto") -> Distributed | None:
    """Join the run torchrun started this process in (None: not started by torchrun).

    Args:
        device: the ``--device`` option: ``auto`` or ``cuda`` put process k on
            ``cuda:LOCAL_RANK`` (NCCL), ``cpu`` on the CPU (gloo); an explicit ``cuda:N``
            is refused with more than one process.

    Raises:
        ArtidError: torchrun's variables are not numbers, ``cuda:N`` with several processes,
            fewer GPUs than processes on the node, or the process group cannot be joined.
    """
    if not launched():
        return None
    try:
        rank, world, local = (int(os.environ[k]) for k in ENV)
    except ValueError:
        raise ArtidError("torchrun's RANK, WORLD_SIZE and LOCAL_RANK must be numbers: "
                         + ", ".join(f"{k}={os.environ[k]!r}" for k in ENV)) from None
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index is not None and world > 1:
            raise ArtidError(f"--device {device}: under torchrun each process takes the GPU of "
                             "its LOCAL_RANK; use --device cuda or auto")
        if local >= torch.cuda.device_count():
            raise ArtidError(f"process {rank} (LOCAL_RANK {local}) has no GPU: this node has "
                             f"{torch.cuda.device_count()}; lower --nproc_per_node")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                    rank=rank, world_size=world)
        except (ValueError, RuntimeError) as exc:
            raise ArtidError(f"cannot join the torchrun process group ({exc}); start training "
                             "with torchrun --nproc_per_node N -m artid train ...") from None
    if rank != 0:  # one process tells: the others only warn
        logging.getLogger("artid").setLevel(logging.WARNING)
    log.info("data-parallel training: %d processes (%s), this one rank %d on %s", world,
             dist.get_backend(), rank, dev)
    return Distributed(rank, world, dev)
