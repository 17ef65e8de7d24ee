"""PCA-whitening of descriptors (METHOD section 4, thesis section 4.2 and appendix B.1).

Learned on the database descriptors: with centred covariance ``C = U diag(l) U^T`` (eigenvalues
descending), keep the top ``dim`` components and set ``P = U_dim diag(l_dim)^(-s/2)`` with
shrinkage ``s`` (1 = full whitening, 0 = plain PCA). Applying it gives
``normalise((v - m) P)`` for database and query descriptors alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from artid.errors import ArtidError
from artid.files import atomic_path

log = logging.getLogger(__name__)

#: Eigenvalues below this fraction of the largest one are numerically zero (rank deficiency).
RANK_TOLERANCE = 1e-9
_CHUNK = 65536


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (zero rows stay zero); returns a new float32 array."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


class PCAWhitening:
    """PCA-whitening with shrinkage and output dimension.

    Args:
        dim: number of components kept (the paper's tables use 512). Clamped, with a warning,
            to the rank of the database covariance (at most ``min(D, N - 1)``) when larger.
        shrinkage: ``s`` in ``l^(-s/2)``; 1 = full whitening, 0 = plain PCA rotation.

    Attributes (after :meth:`fit`):
        mean: (D,) float32 database mean ``m``.
        projection: (D, dim) float32 matrix ``P``.
        eigenvalues: (dim,) float64 eigenvalues kept.
    """

    def __init__(self, dim: int = 512, shrinkage: float = 1.0) -> None:
        if dim < 1:
            raise ArtidError(f"whitening dimension must be at least 1, got {dim}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ArtidError(f"whitening shrinkage must be within [0, 1], got {shrinkage}")
        self.dim = int(dim)
        self.shrinkage = float(shrinkage)
        self.mean: np.ndarray | None = None
        self.projection: np.ndarray | None = None
        self.eigenvalues: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.projection is not None

    @property
    def out_dim(self) -> int:
        """Output dimension actually used (after any clamping in :meth:`fit`)."""
        return self.projection.shape[1] if self.projection is not None else self.dim

    def fit(self, db: np.ndarray) -> PCAWhitening:
        """Learn mean and projection from database descriptors.

        Args:
            db: (N, D) float descriptors (not modified). Covariance is accumulated in float64
                in chunks, so memory stays O(D^2) beyond the input.

        Returns:
            self.
        """
        db = np.asarray(db)
        if db.ndim != 2 or db.shape[0] < 2:
            raise ArtidError(
                "whitening needs at least 2 database descriptors as an (N, D) matrix, "
                f"got {db.shape}"
            )
        n, d = db.shape
        mean = np.zeros(d, dtype=np.float64)
        for start in range(0, n, _CHUNK):
            mean += db[start : start + _CHUNK].astype(np.float64).sum(axis=0)
        mean /= n
        cov = np.zeros((d, d), dtype=np.float64)
        for start in range(0, n, _CHUNK):
            xc = db[start : start + _CHUNK].astype(np.float64) - mean
            cov += xc.T @ xc
        cov /= n
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = eigval[order], eigvec[:, order]
        rank = int(np.sum(eigval > RANK_TOLERANCE * max(eigval[0], 1e-300)))
        dim = self.dim
        if dim > rank:
            log.warning(
                "whitening dimension %d is larger than possible with %d database descriptors "
                "of dimension %d "
                "(covariance rank %d): using %d",
                dim,
                n,
                d,
                rank,
                rank,
            )
            dim = rank
        if rank == 0:
            raise ArtidError(
                "whitening: the database descriptors are all identical (zero covariance)"
            )
        self.eigenvalues = eigval[:dim].copy()
        scale = self.eigenvalues ** (-self.shrinkage / 2.0)
        self.mean = mean.astype(np.float32)
        self.projection = (eigvec[:, :dim] * scale).astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Whiten descriptors: ``normalise((x - m) P)``.

        Args:
            x: (M, D) float descriptors (never modified).

        Returns:
            (M, dim) float32 with L2-normalised rows.
        """
        if not self.fitted:
            raise ArtidError("whitening is not fitted: call fit() or load() first")
        assert self.mean is not None and self.projection is not None
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ArtidError(
                f"whitening expects (M, {self.mean.shape[0]}) descriptors, got {x.shape}"
            )
        out = np.empty((x.shape[0], self.out_dim), dtype=np.float32)
        mean, projection = self.mean, self.projection
        for start in range(0, x.shape[0], _CHUNK):
            out[start : start + _CHUNK] = (
                x[start : start + _CHUNK].astype(np.float32) - mean
            ) @ projection
        return l2_normalise(out)

    def save(self, path: str | Path) -> Path:
        """Write ``mean``, ``projection``, ``eigenvalues`` and ``shrinkage`` to an ``.npz``
        (no pickle)."""
        if not self.fitted:
            raise ArtidError("whitening is not fitted: nothing to save")
        assert (
            self.mean is not None and self.projection is not None and self.eigenvalues is not None
        )
        path = Path(path)
        with atomic_path(path) as tmp:
            np.savez(tmp, mean=self.mean, projection=self.projection,
                     eigenvalues=self.eigenvalues, shrinkage=np.float64(self.shrinkage))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PCAWhitening:
        """Read a whitening written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                mean, proj, eig, s = (
                    z["mean"],
                    z["projection"],
                    z["eigenvalues"],
                    float(z["shrinkage"]),
                )
        except FileNotFoundError:
            raise ArtidError(f"whitening file {path} not found") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ArtidError(f"{path}: not an artid whitening file ({exc})") from None
        if mean.ndim != 1 or proj.ndim != 2 or proj.shape[0] != mean.shape[0]:
            raise ArtidError(
                f"{path}: inconsistent shapes mean {mean.shape}, projection {proj.shape}"
            )
        w = cls(dim=proj.shape[1], shrinkage=s)
        w.mean, w.projection, w.eigenvalues = mean.astype(np.float32), proj.astype(np.float32), eig
        return w
