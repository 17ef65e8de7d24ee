"""benchmarks/local_matchers.py: its SIFT matcher runs on today's modules, and its counts resume."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "local_matchers.py"


def _script():
    spec = importlib.util.spec_from_file_location("local_matchers_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _textured(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.kron(rng.integers(0, 256, (24, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_sift_matcher_verifies_an_image_against_itself_not_another(tmp_path):
    features, inliers = _script().make_matcher("sift", 500, 0.2)
    a = features(_textured(tmp_path / "a.png", 0))
    b = features(_textured(tmp_path / "b.png", 1))
    assert len(a["xy"]) > 50
    assert inliers(a, a) > 50
    assert inliers(a, b) < 10


def test_partial_counts_round_trip(tmp_path):
    counts = np.arange(12).reshape(4, 3)
    path = tmp_path / "inliers_val_K3_every1.partial.npz"
    _script().save_partial(path, counts, 2, 1.5, 2.5)
    with np.load(path) as z:
        assert int(z["done"]) == 2 and float(z["t_feat"]) == 1.5 and float(z["t_match"]) == 2.5
        np.testing.assert_array_equal(z["inliers"], counts)
    assert not list(tmp_path.glob("*.tmp.npz"))
