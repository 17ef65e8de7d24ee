"""Benchmark: the cost of the global-batch loss of data-parallel training (the all-gather with
gradient of :mod:`artid.training.distributed`) against plain DDP's loss per share.

N gloo processes (CPU) train the contrastive loss on random pairs with the same DDP-wrapped
embedder; each timed step is a forward of the process's share, the loss, a backward and an Adam
step. The two variants alternate step by step (so machine load hits both alike) and the median
step time of each is printed with their ratio:

- ``global``: embeddings gathered with gradient, the loss over the global batch (artid's);
- ``local``: each process's loss over its own share (plain DDP; another loss for SimSiam's
  BatchNorm and DNet's weighted mean, see the module docstring).

    python benchmarks/ddp_gather.py                               # 2 processes, Lite0, 64 px
    python benchmarks/ddp_gather.py --model random:resnet18 --pairs 16 --steps 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.multiprocessing as mp


def _worker(rank: int, args: argparse.Namespace, port: int, queue: mp.Queue) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(args.procs), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    from artid.models import build_embedder
    from artid.training.distributed import from_env
    from artid.training.losses import contrastive_loss
    from artid.training.sharding import share

    dist = from_env("cpu")
    assert dist is not None
    torch.manual_seed(0)
    model = build_embedder(args.model, projector=False).freeze_batchnorm()
    ddp = dist.wrap(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    lo, hi = share(args.pairs, rank, args.procs)
    xa = torch.rand(hi - lo, 3, args.size, args.size)
    xb = torch.rand(hi - lo, 3, args.size, args.size)
    y = (torch.arange(lo, hi) % 2).long()
    times: dict[str, list[float]] = {"global": [], "local": []}
    for step in range(args.warmup + args.steps):
        for name in ("global", "local"):
            gather = dist.gather if name == "global" else (lambda t: t)
            dist.barrier()
            t0 = time.perf_counter()
            a, b = ddp(torch.cat([xa, xb])).split(hi - lo)
            contrastive_loss(gather(a), gather(b), gather(y)).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            dist.barrier()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    if rank == 0:
        queue.put({k: statistics.median(v) for k, v in times.items()})
    dist.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, default=2, help="processes (gloo, CPU)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--model", default="random:efficientnet_lite0", help="embedder")
    p.add_argument("--pairs", type=int, default=32, help="pairs per global batch")
    p.add_argument("--size", type=int, default=64, help="image side")
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    return _run(p.parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_worker, args=(args, port, queue), nprocs=args.procs, start_method="spawn")
    med = queue.get()
    print(f"{args.procs} processes, {args.model}, {args.pairs} pairs of {args.size} px, "
          f"median of {args.steps} steps")
    for name in ("global", "local"):
        print(f"  {name:6s} {1000 * med[name]:8.1f} ms/step")
    print(f"  global / local: {med['global'] / med['local']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
