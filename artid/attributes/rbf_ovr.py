"""A fitted one-vs-rest RBF SVM as plain arrays: scores without scikit-learn objects, saved without
pickle.

scikit-learn's own way to save a model is pickle (joblib), which runs code on load; artid writes
no pickle of its own (DESIGN). A binary RBF ``SVC`` is fully described by public arrays:
``f(x) = sum_j dual_coef_[j] * exp(-gamma * |x - support_vectors_[j]|^2) + intercept_``, so
:meth:`RbfOvr.from_sklearn` copies them out of a fitted ``OneVsRestClassifier(SVC(kernel="rbf"))``
and :meth:`RbfOvr.decision_function` recomputes ``decision_function`` with scikit-learn's
``rbf_kernel``. The labels' support vectors are rows of the one training matrix, so they are stored
once (their union) with a sparse (support vectors x labels) matrix of dual coefficients: scoring is
one kernel matrix and one sparse product for all labels. A label that was constant in training
(scikit-learn's ``_ConstantPredictor``) has no support vector and its constant as intercept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from artid.errors import ArtidError


def resolved_gamma(gamma: str | float, x: np.ndarray) -> float:
    """The numeric RBF gamma scikit-learn's ``SVC`` uses for training matrix ``x`` (scale / auto /
    number)."""
    if gamma == "scale":
        var = float(np.asarray(x, dtype=np.float64).var())
        return 1.0 / (x.shape[1] * var) if var != 0 else 1.0
    if gamma == "auto":
        return 1.0 / x.shape[1]
    return float(gamma)


@dataclass(frozen=True)
class RbfOvr:
    """L binary RBF SVMs sharing support vectors.

    Attributes:
        support_vectors: (U, D) float64 union of every label's support vectors.
        dual_coef: (U, L) sparse CSC dual coefficients (``dual_coef_`` of label l in column l).
        intercept: (L,) intercept of each label (the constant of a constant label).
        gamma: RBF gamma.
    """

    support_vectors: np.ndarray
    dual_coef: sp.csc_matrix
    intercept: np.ndarray
    gamma: float

    @classmethod
    def from_sklearn(cls, ovr: OneVsRestClassifier, x_train: np.ndarray) -> RbfOvr:
        """Copy the arrays out of a fitted one-vs-rest RBF ``SVC`` trained on ``x_train``."""
        x_train = np.asarray(x_train, dtype=np.float64)
        gamma: float | None = None
        rows, cols, vals, intercept = [], [], [], []
        for label, est in enumerate(ovr.estimators_):
            if isinstance(est, SVC):
                if est.kernel != "rbf" or len(est.classes_) != 2:
                    raise ArtidError("RbfOvr holds binary RBF SVMs only")
                gamma = resolved_gamma(est.gamma, x_train)
                rows.append(est.support_)
                cols.append(np.full(len(est.support_), label))
                vals.append(est.dual_coef_.ravel())
                intercept.append(float(est.intercept_[0]))
            else:  # a label constant in training: its decision is the constant
                intercept.append(float(np.ravel(est.decision_function(x_train[:1]))[0]))
        n_labels = len(ovr.estimators_)
        if not rows:
            return cls(
                np.zeros((0, x_train.shape[1])),
                sp.csc_matrix((0, n_labels)),
                np.array(intercept),
                1.0,
            )
        assert gamma is not None  # set by every SVC, and there is one since rows is not empty
        r = np.concatenate(rows)
        used, inverse = np.unique(r, return_inverse=True)
        dual = sp.csc_matrix(
            (np.concatenate(vals), (inverse, np.concatenate(cols))), shape=(len(used), n_labels)
        )
        return cls(x_train[used], dual, np.array(intercept, dtype=np.float64), float(gamma))

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """(N, L) decision values of (N, D) features (positive: the label is predicted)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.support_vectors.shape[1]:
            raise ArtidError(
                f"features must be (N, {self.support_vectors.shape[1]}); got {x.shape}"
            )
        out = np.tile(self.intercept, (len(x), 1))
        if self.support_vectors.shape[0]:
            kernel = rbf_kernel(x, self.support_vectors, gamma=self.gamma)
            out += np.asarray((self.dual_coef.T @ kernel.T).T)
        return out

    def arrays(self, prefix: str = "svm_") -> dict[str, np.ndarray]:
        """The model as named plain arrays (for ``np.savez``)."""
        coo = self.dual_coef.tocoo()
        return {
            f"{prefix}support_vectors": self.support_vectors,
            f"{prefix}dual_rows": coo.row.astype(np.int64),
            f"{prefix}dual_cols": coo.col.astype(np.int64),
            f"{prefix}dual_vals": coo.data.astype(np.float64),
            f"{prefix}shape": np.array(self.dual_coef.shape, dtype=np.int64),
            f"{prefix}intercept": self.intercept,
            f"{prefix}gamma": np.array(self.gamma),
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], prefix: str = "svm_", source: str | Path = ""
    ) -> RbfOvr:
        """Rebuild from :meth:`arrays` (``source`` names the file in error messages)."""
        try:
            shape = tuple(int(v) for v in arrays[f"{prefix}shape"])
            dual = sp.csc_matrix(
                (
                    arrays[f"{prefix}dual_vals"],
                    (arrays[f"{prefix}dual_rows"], arrays[f"{prefix}dual_cols"]),
                ),
                shape=shape,
            )
            model = cls(
                np.asarray(arrays[f"{prefix}support_vectors"], dtype=np.float64),
                dual,
                np.asarray(arrays[f"{prefix}intercept"], dtype=np.float64),
                float(arrays[f"{prefix}gamma"]),
            )
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ArtidError(f"{source}: not a valid artid SVM file ({exc})") from None
        if model.support_vectors.shape[0] != shape[0] or model.intercept.shape != (shape[1],):
            raise ArtidError(f"{source}: inconsistent SVM arrays")
        return model
