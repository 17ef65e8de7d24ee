"""PCA-whitening: the closed form, shrinkage, clamping, no mutation, .npz round trip."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.decomposition import PCA

from artid.errors import ArtidError
from artid.retrieval.whitening import PCAWhitening, l2_normalise


def _data(n: int = 200, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(3, 0.5, d) + 1.0
    return l2_normalise(x)


def test_full_whitening_gives_identity_covariance():
    x = _data()
    w = PCAWhitening(dim=5, shrinkage=1.0).fit(x)
    assert w.mean.shape == (8,) and w.projection.shape == (8, 5)
    y = (x.astype(np.float64) - x.mean(0)) @ w.projection
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(5), atol=1e-4)


def test_zero_shrinkage_is_plain_pca_rotation():
    w = PCAWhitening(dim=8, shrinkage=0.0).fit(_data())
    np.testing.assert_allclose(w.projection.T @ w.projection, np.eye(8), atol=1e-5)
    assert np.all(np.diff(w.eigenvalues) <= 0)


def test_matches_scikit_learn_up_to_component_signs():
    x = _data()
    ours = PCAWhitening(dim=4).fit(x).transform(x)
    ref = PCA(n_components=4, whiten=True, svd_solver="full").fit(x).transform(x)
    np.testing.assert_allclose(np.abs(ours), np.abs(l2_normalise(ref)), atol=1e-4)


def test_transform_normalises_and_never_mutates():
    x = _data()
    before = x.copy()
    y = PCAWhitening(dim=6, shrinkage=0.5).fit(x).transform(x)
    assert y.dtype == np.float32 and y.shape == (200, 6)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(x, before)


def test_dim_larger_than_possible_is_clamped_with_a_warning(caplog):
    x = _data(n=5, d=8)  # centred covariance of 5 points has rank 4
    with caplog.at_level(logging.WARNING):
        w = PCAWhitening(dim=512).fit(x)
    assert w.out_dim == 4
    assert "larger than possible" in caplog.text
    assert w.transform(x).shape == (5, 4)


def test_save_load_round_trip(tmp_path):
    x = _data()
    w = PCAWhitening(dim=3, shrinkage=0.7).fit(x)
    w.save(tmp_path / "w.npz")
    w2 = PCAWhitening.load(tmp_path / "w.npz")
    assert w2.shrinkage == 0.7
    np.testing.assert_array_equal(w.transform(x), w2.transform(x))


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ArtidError, match="shrinkage"):
        PCAWhitening(shrinkage=2)
    with pytest.raises(ArtidError, match="at least 1"):
        PCAWhitening(dim=0)
    with pytest.raises(ArtidError, match="not fitted"):
        PCAWhitening().transform(_data())
    with pytest.raises(ArtidError, match=r"expects \(M, 8\)"):
        PCAWhitening(dim=2).fit(_data()).transform(np.ones((3, 5), np.float32))
    with pytest.raises(ArtidError, match="not found"):
        PCAWhitening.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(ArtidError, match="bad.npz"):
        PCAWhitening.load(tmp_path / "bad.npz")
