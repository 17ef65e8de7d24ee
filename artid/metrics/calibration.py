"""The probability that an answer is right, read off its ranking score; and how well it reads.

The ranking score (the log-odds of the top class, :mod:`artid.retrieval.knn`) orders answers well
but is no probability: its softmax ``sigmoid(score)`` sits at 1.0 for nearly every answer at a
large tau, right, wrong or distractor, and falls as 1 / N at a small one. What a person can read is
the share of answers of about that score that were right. :func:`fit_confidence` fits it on the
validation queries (distractors included, never right), as a non-decreasing function of the score:

- ``isotonic`` (scikit-learn's :class:`~sklearn.isotonic.IsotonicRegression`), with at least
  :data:`MIN_ISOTONIC` validation answers;
- ``logistic`` with fewer (a tiny validation set: isotonic regression follows single answers and
  steps from near 0 to near 1): a logistic curve of the score (Platt scaling, scikit-learn's
  L2-regularised :class:`~sklearn.linear_model.LogisticRegression` on the standardised score),
  tabulated at :data:`KNOTS` scores; ``constant`` when its slope is not positive.
  ``benchmarks/calibration_size.py`` (20 random validation subsets per size, test ECE): with 10
  and 20 answers the logistic curve was as good or better on both benchmarks measured (demo:
  6.3 ± 0.8% and 2.0 ± 0.5% against isotonic regression's 7.0 ± 1.0% and 3.2 ± 0.8%; real
  images: 7.0 ± 1.4% and 5.2 ± 0.6% against 7.1 ± 1.5% and 5.7 ± 0.4%); from 30 answers on they
  split (demo: logistic lower, 1.3 ± 0.1% against 1.7 ± 0.2% at 300; real images: isotonic lower,
  3.2 ± 0.3% against 4.7 ± 0.4% at 100), and isotonic regression, which assumes no shape of the
  curve, is kept there;
- ``constant`` when every validation answer was right, or every one wrong: ``(R + 1) / (Q + 2)``
  for R right of Q (Laplace's rule of succession).

Every curve is kept within ``[1 / (Q + 2), (Q + 1) / (Q + 2)]``: Q queries cannot tell a share
closer to 0 or 1. The curve is stored as knots (score, share), linear between them and constant
beyond; a score outside every knot (the unreadable photo's -inf) takes the nearest end.

:func:`expected_calibration_error` measures it on test: the confidences binned in ten equal-width
bins of [0, 1], ECE = sum over bins of (queries in the bin / Q) * |share right - mean confidence|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from artid.errors import ArtidError

#: Fewer validation answers than this: a logistic curve instead of isotonic regression.
MIN_ISOTONIC = 30
#: Knots of a tabulated logistic curve.
KNOTS = 33
#: Bins of the expected calibration error and the reliability diagram.
BINS = 10
METHODS = ("isotonic", "logistic", "constant")


@dataclass(frozen=True)
class ConfidenceCalibration:
    """Score -> probability that the answer is right, as knots fitted on validation.

    Attributes:
        scores, shares: knots (non-decreasing in both); linear between, constant beyond.
        method: ``isotonic``, ``logistic`` or ``constant`` (see the module docstring).
        n_queries: validation queries fitted on; n_right: those answered right.
    """

    scores: tuple[float, ...]
    shares: tuple[float, ...]
    method: str
    n_queries: int
    n_right: int

    def __call__(self, score: np.ndarray | float) -> np.ndarray:
        """The probability that answers of these scores are right (float64, shape of score)."""
        s = np.asarray(score, dtype=np.float64)
        return np.interp(np.clip(s, -1e300, 1e300), self.scores, self.shares)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "scores": list(self.scores),
            "shares": list(self.shares),
            "n_queries": self.n_queries,
            "n_right": self.n_right,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str = "calibration") -> ConfidenceCalibration:
        """Read :meth:`to_json`'s dict (``where`` names the file in errors)."""
        try:
            scores = tuple(float(x) for x in obj["scores"])
            shares = tuple(float(x) for x in obj["shares"])
            method = str(obj.get("method", "isotonic"))
            n, right = int(obj.get("n_queries", 0)), int(obj.get("n_right", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtidError(f"{where}: not a confidence calibration ({exc!r})") from None
        if not scores or len(scores) != len(shares) or method not in METHODS:
            raise ArtidError(f"{where}: a confidence calibration needs knots and a known method")
        if np.any(np.diff(scores) < 0) or np.any(np.diff(shares) < 0):
            raise ArtidError(f"{where}: the confidence calibration's knots must not decrease")
        return cls(scores, shares, method, n, right)


def fit_confidence(
    scores: np.ndarray, correct: np.ndarray, min_isotonic: int = MIN_ISOTONIC
) -> ConfidenceCalibration:
    """The share of right answers as a non-decreasing function of the score (module docstring).

    Args:
        scores: (Q,) ranking scores of the validation answers (non-finite ones are left out).
        correct: (Q,) bool, the answer named the query's artwork (False for a distractor).
        min_isotonic: fewest validation answers for isotonic regression.

    Raises:
        ArtidError: the arrays differ in length, or no query has a finite score.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ArtidError(f"calibration: {s.size} scores but {y.size} right / wrong answers")
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    q, right = int(s.size), int(y.sum())
    if q == 0:
        raise ArtidError("calibration: no validation answer with a finite score to calibrate on")
    lo, hi = 1 / (q + 2), (q + 1) / (q + 2)
    constant = ConfidenceCalibration((0.0,), ((right + 1) / (q + 2),), "constant", q, right)
    if right in (0, q):
        return constant
    if q < min_isotonic:
        return _logistic(s, y, lo, hi) or constant
    from sklearn.isotonic import IsotonicRegression

    fit = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(s, y.astype(np.float64))
    shares = np.clip(fit.y_thresholds_, lo, hi)
    return ConfidenceCalibration(
        tuple(float(x) for x in fit.X_thresholds_),
        tuple(float(v) for v in shares),
        "isotonic",
        q,
        right,
    )


def _logistic(
    s: np.ndarray, y: np.ndarray, lo: float, hi: float
) -> ConfidenceCalibration | None:
    """Platt scaling tabulated at :data:`KNOTS` scores; None when the slope is not positive."""
    from sklearn.linear_model import LogisticRegression

    mean, std = float(s.mean()), float(s.std()) or 1.0
    model = LogisticRegression().fit(((s - mean) / std)[:, None], y)
    if float(model.coef_[0, 0]) <= 0:
        return None
    knots = np.unique(np.linspace(float(s.min()), float(s.max()), KNOTS))
    shares = np.clip(model.predict_proba(((knots - mean) / std)[:, None])[:, 1], lo, hi)
    shares = np.maximum.accumulate(shares)  # exact monotonicity against rounding
    return ConfidenceCalibration(
        tuple(float(x) for x in knots),
        tuple(float(v) for v in shares),
        "logistic",
        int(s.size),
        int(y.sum()),
    )


def reliability_bins(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width bin of [0, 1]: ``lo``, ``hi``, ``queries``, ``confidence`` (mean) and
    ``right`` (share of right answers; None for an empty bin). The last bin includes 1.0."""
    c = np.asarray(conf, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=bool).ravel()
    if c.shape != y.shape:
        raise ArtidError(f"calibration: {c.size} confidences but {y.size} right / wrong answers")
    if np.isnan(c).any() or (c < 0).any() or (c > 1).any():
        raise ArtidError("calibration: confidences must lie in [0, 1]")
    which = np.minimum((c * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        n = int(m.sum())
        out.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "queries": n,
                "confidence": float(c[m].mean()) if n else None,
                "right": float(y[m].mean()) if n else None,
            }
        )
    return out


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """ECE: sum over equal-width bins of (queries in the bin / Q) * |share right - mean conf|."""
    rows = reliability_bins(conf, correct, bins)
    total = sum(r["queries"] for r in rows)
    if total == 0:
        raise ArtidError("calibration: no answers to measure the calibration error on")
    return float(
        sum(r["queries"] * abs(r["right"] - r["confidence"]) for r in rows if r["queries"]) / total
    )
