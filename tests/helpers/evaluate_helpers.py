"""`artid evaluate` as the CLI runs it, and tiny descriptor sets to evaluate (evaluation tests)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from artid.commands import evaluate as evaluate_command
from artid.data.entries import Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError


def main(argv: list[str]) -> int:
    """``artid evaluate ...`` as the CLI runs it (error: message, status 2), independent of other commands."""
    assert argv[0] == "evaluate"
    parser = argparse.ArgumentParser(prog="artid evaluate")
    evaluate_command.add_arguments(parser)
    try:
        return evaluate_command.run(parser.parse_args(argv[1:]))
    except ArtidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _sets(seed: int = 0, classes: int = 30, d: int = 16):
    """A database of 1-4 images per class and queries near their class (or distractors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d))
    labels = np.repeat(np.arange(classes), rng.integers(1, 5, classes))
    database = DescriptorSet(
        _unit(centres[labels] + 0.5 * rng.normal(size=(len(labels), d))),
        [Entry(f"MET/{c}/{i}.jpg", int(c), "exhibit") for i, c in enumerate(labels)],
        model={"name": "toy"},
    )

    def queries(n: int) -> DescriptorSet:
        q = np.where(np.arange(n) % 3 == 0, rng.integers(0, classes, n), -1)
        x = np.where(q[:, None] >= 0, centres[np.maximum(q, 0)], 0) + 0.9 * rng.normal(size=(n, d))
        kinds = ["met" if c >= 0 else ("other" if i % 2 else "noart") for i, c in enumerate(q)]
        folders = {"met": "test_met", "other": "test_other", "noart": "test_noart"}
        return DescriptorSet(
            _unit(x),
            [Entry(f"{folders[k]}/{i}.jpg", int(c), k) for i, (c, k) in enumerate(zip(q, kinds))],
        )

    return database, queries(45), queries(60)


def _err(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err
