"""``torchrun --nproc_per_node 2 -m artid train`` on CPUs (gloo): the run of one process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from artid.training.trainer import LOG_FILE

ARGS = ["--model", "random:resnet18", "--epochs", "1", "--batch-size", "6", "--image-size", "32",
        "--max-size", "48", "--lr", "1e-3", "--projector-dim", "8", "--augment", "paper",
        "--device", "cpu"]


def _log(out):
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_trains_as_one_process(tmp_path):
    from artid.cli import main
    from artid.data.synth import SynthConfig, generate

    root = tmp_path / "synth"
    generate(root, SynthConfig(classes=10, seed=0, image_size=48, met_queries=4, val_share=0.5,
                               distractor_ratio=1.0, progress=False))
    argv = ["train", "contrastive", "--root", str(root), *ARGS]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    two = tmp_path / "two"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "artid", *argv, "--out", str(two)],
        capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1",
                                                          "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained contrastive for 1 epochs") == 1  # rank 0 reports
    one_log, two_log = _log(tmp_path / "one"), _log(two)
    assert [r["epoch"] for r in two_log] == [0, 1]
    for r1, r2 in zip(one_log, two_log):
        for k in ("loss", "gap", "acc"):
            if k in r1:
                assert r2[k] == pytest.approx(r1[k], rel=1e-4, abs=1e-5), (r1["epoch"], k)
    run = json.loads((two / "run.json").read_text())
    assert run["processes"] == 2 and run["batch_size"] == 6
