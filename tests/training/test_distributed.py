"""Data-parallel training: 2 gloo processes reproduce one process at the same global batch
(contrastive with mining across processes, SimSiam, DNet with uneven shares), and a run
killed mid-epoch resumes exactly. One pair of processes runs every run (torch loads once)."""

from __future__ import annotations

import pytest
import torch
from ddp_helpers import build, logged, run_processes, save_weights

METHODS = ("contrastive", "simsiam", "dnet")
FIGURES = ("loss", "gap", "acc")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Folders of the 2-process runs: one per method, ``full``, ``split`` (killed at epoch 2,
    batch 2, then resumed)."""
    root = tmp_path_factory.mktemp("ddp")
    jobs = [(m, root / m, None) for m in METHODS]
    jobs += [("contrastive", root / "split", (2, 2)), ("contrastive", root / "split", None)]
    assert run_processes(jobs) == [0, 0]
    return root


def _single(method, out):
    trainer = build(method, out)
    trainer.fit()
    save_weights(trainer, out / "weights_single.pt")
    return logged(out)


def _same_weights(a, b, tol=1e-4):
    for part in ("model", "head"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            torch.testing.assert_close(a[part][k].float(), b[part][k].float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_reproduce_one_at_the_same_global_batch(tmp_path, runs, method):
    one, two = _single(method, tmp_path), logged(runs / method)
    assert [r["epoch"] for r in two] == [r["epoch"] for r in one] == [0, 1, 2]
    for r1, r2 in zip(one, two):
        assert r1.keys() == r2.keys()
        for k in (k for k in FIGURES if k in r1):
            assert r2[k] == pytest.approx(r1[k], rel=1e-4, abs=1e-5), (r1["epoch"], k)
        assert (r2.get("images"), r2.get("steps")) == (r1.get("images"), r1.get("steps"))
    w0, w1 = (torch.load(runs / method / f"weights_rank{r}.pt") for r in (0, 1))
    _same_weights(w0, w1, tol=0)  # the processes hold one model
    _same_weights(torch.load(tmp_path / "weights_single.pt"), w0)


def test_two_processes_killed_mid_epoch_resume_exactly(runs):
    full, split = logged(runs / "contrastive"), logged(runs / "split")
    timing = [{k: r[k] for k in r if k.endswith("_s")} for r in split]
    assert split == [{**r, **t} for r, t in zip(full, timing)]
    _same_weights(torch.load(runs / "contrastive" / "weights_rank0.pt"),
                  torch.load(runs / "split" / "weights_rank0.pt"), tol=0)
