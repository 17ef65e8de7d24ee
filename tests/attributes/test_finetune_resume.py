"""Fine-tuning for attributes resumes exactly (issue 19, "Weak": the old loop did not restore the
augmentation RNG and the loader order, and appended its log line before the checkpoint).

A run interrupted in epoch 2 (in the middle of the epoch, or after the epoch's log line but before
its trainer state) and started again ends with the same weights, bit for bit, and the same log as
a run that was never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artid.attributes import finetune as finetune_module
from artid.attributes.finetune import Finetune, FinetuneSettings, finetune
from artid.training import runstate

#: Fields of a log record that are timings, not results.
TIMINGS = ("images_per_s", "prepare_s", "train_s", "validate_s")


class Interrupted(Exception):
    pass


def _data(tmp_path: Path) -> tuple[list[Path], np.ndarray]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        paths.append(tmp_path / "img" / f"{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(paths[-1])
    return paths, rng.integers(0, 2, size=(12, 3))


def _log(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def _weights(file: Path) -> dict[str, torch.Tensor]:
    return torch.load(file, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("where", ["mid-epoch", "after the log line"])
def test_an_interrupted_finetuning_resumes_exactly(tmp_path: Path, monkeypatch, where) -> None:
    torch.set_num_threads(1)
    paths, y = _data(tmp_path)
    s = FinetuneSettings(
        model="random:resnet18", size=32, epochs=3, batch_size=4, step_size=2, device="cpu"
    )
    data = ((paths, y), (paths[:6], y[:6]))
    finetune(s, tmp_path / "whole", *data, progress=False)

    calls = {"loss": 0, "save": 0}
    loss, save_state = Finetune.loss, runstate.save_state

    def interrupted_loss(self, *args):
        calls["loss"] += 1
        if where == "mid-epoch" and calls["loss"] == 5:  # epoch 2 (3 batches an epoch), batch 2
            raise Interrupted
        return loss(self, *args)

    def interrupted_save(state, out_dir):
        calls["save"] += 1
        if where == "after the log line" and state["epoch"] == 2:
            raise Interrupted
        save_state(state, out_dir)

    with monkeypatch.context() as m:
        m.setattr(Finetune, "loss", interrupted_loss)
        m.setattr(runstate, "save_state", interrupted_save)
        with pytest.raises(Interrupted):
            finetune(s, tmp_path / "cut", *data, progress=False)
    cut = tmp_path / "cut"
    assert [r["epoch"] for r in _log(cut)] == ([1] if where == "mid-epoch" else [1, 2])
    assert runstate.read_state(cut)["epoch"] == 1  # type: ignore[index]

    finetune(s, cut, *data, progress=False)  # the same command again: resumes after epoch 1
    assert _log(cut) == _log(tmp_path / "whole")
    assert [r["epoch"] for r in _log(cut)] == [1, 2, 3]
    for name in ("last.pt", "best.pt"):
        whole, resumed = _weights(tmp_path / "whole" / name), _weights(cut / name)
        assert whole.keys() == resumed.keys()
        for key in whole:
            assert torch.equal(whole[key], resumed[key]), (name, key)
    # the runs trained: the weights moved from the initialisation
    torch.manual_seed(s.seed)
    init = finetune_module.AttributeNet(s.model, None, 3).state_dict()
    assert not torch.equal(init["fc.weight"], _weights(cut / "last.pt")["fc.weight"])
