"""``artid train`` end to end on a tiny synthetic benchmark: resume, refusal of changed settings,
checkpoints that ``artid extract`` loads, one seed one model."""

from __future__ import annotations

import json

import pytest
import torch

from artid.training.trainer import BEST_FILE, LOG_FILE, STATE_FILE


@pytest.mark.slow
def test_artid_train_checkpoint_loads_in_artid_extract(tmp_path, capsys):
    """End to end on a tiny synthetic benchmark: `artid train` -> best.pt -> `artid extract`."""
    from artid.cli import main
    from artid.data.synth import SynthConfig, generate
    from artid.descriptors import load_descriptors
    from artid.models import build_embedder

    root = tmp_path / "synth"
    generate(
        root,
        SynthConfig(
            classes=10,
            seed=0,
            image_size=48,
            met_queries=4,
            val_share=0.5,
            distractor_ratio=1.0,
            progress=False,
        ),
    )
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "dnet",
        "--root",
        str(root),
        "--out",
        str(run_dir),
        "--model",
        "random:resnet18",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--max-size",
        "48",
        "--lr",
        "1e-4",
        "--projector-dim",
        "8",
        "--loss",
        "arcface",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    state_after_one = torch.load(run_dir / STATE_FILE, weights_only=True)["model"]
    more = argv[: argv.index("--epochs") + 1] + ["2"] + argv[argv.index("--epochs") + 2 :]
    assert main(more) == 2  # another number of epochs is another schedule: refused, named
    assert "--epochs 1 -> 2" in capsys.readouterr().err
    assert main(more + ["--resume-changed"]) == 0  # resumes under the new settings, recorded
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["changes"] == [{"after_epoch": 1, "changed": {"epochs": [1, 2]}}]
    log = [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2] and {"acc", "gap", "param_acc"} <= set(log[-1])
    assert not torch.equal(
        state_after_one["projector.weight"],
        torch.load(run_dir / STATE_FILE, weights_only=True)["model"]["projector.weight"],
    )

    best = run_dir / BEST_FILE
    emb = build_embedder(best)
    assert emb.dim == 8 and emb.projector is not None
    out = tmp_path / "desc"
    assert (
        main(
            [
                "extract",
                "--root",
                str(root),
                "--out",
                str(out),
                "--model",
                str(best),
                "--splits",
                "val",
                "--scales",
                "ss",
                "--max-size",
                "48",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    ds = load_descriptors(out / "val")
    assert ds.matrix.shape[1] == 8
    x = torch.rand(1, 3, 40, 48)
    saved = build_embedder(
        run_dir / f"epoch_{log[-1]['best_epoch']:03d}.pt"
    )  # best.pt is the best epoch's
    other = build_embedder(run_dir / f"epoch_{1 if log[-1]['best_epoch'] == 2 else 2:03d}.pt")
    with torch.no_grad():
        assert torch.equal(emb(x), saved(x)) and not torch.equal(emb(x), other(x))

    # classifier re-training on the trained checkpoint keeps its projector (and all its weights)
    retrain = tmp_path / "retrain"
    assert (
        main(
            [
                "train",
                "dnet",
                "--root",
                str(root),
                "--out",
                str(retrain),
                "--model",
                str(best),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--image-size",
                "32",
                "--max-size",
                "48",
                "--retrain-classifier",
                "--no-validate",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    retrained = build_embedder(retrain / BEST_FILE).state_dict()
    assert all(torch.equal(v, retrained[k]) for k, v in emb.state_dict().items())


@pytest.mark.slow
def test_two_runs_with_one_seed_train_the_same_weights(tmp_path):
    """The DNet head is created after the run's seed is applied: one command twice, one model."""
    from artid.cli import main
    from artid.data.synth import SynthConfig, generate

    root = tmp_path / "synth"
    generate(
        root,
        SynthConfig(
            classes=10,
            seed=0,
            image_size=40,
            met_queries=4,
            val_share=0.5,
            distractor_ratio=1.0,
            progress=False,
        ),
    )
    states = []
    for name in ("a", "b"):
        argv = [
            "train",
            "dnet",
            "--root",
            str(root),
            "--out",
            str(tmp_path / name),
            "--model",
            "random:resnet18",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--max-size",
            "40",
            "--lr",
            "1e-3",
            "--projector-dim",
            "4",
            "--device",
            "cpu",
            "--no-validate",
        ]
        assert main(argv) == 0
        states.append(torch.load(tmp_path / name / STATE_FILE, weights_only=True))
    assert set(states[0]["model"]) == set(states[1]["model"])
    for key, value in states[0]["model"].items():
        assert torch.equal(value, states[1]["model"][key]), key
    head_a, head_b = states[0].get("method"), states[1].get("method")
    assert head_a is not None and str(head_a) == str(head_b)
