"""The acceptance threshold: when a prediction is sure enough to tell a visitor "this is X".

The classifier always predicts some artwork; a photo of something outside the
collection (a distractor) must instead be answered "not recognised". A prediction
is *accepted* when its score, the log-odds of the top class (see
:mod:`artid.retrieval.knn`), is strictly greater than the threshold. The score is
monotone in the 0..1 confidence but never saturates: at a large tau many
confidences are exactly 1.0, and a threshold on them could not tell those apart.
The threshold is chosen on validation queries (photos of the collection's artworks
mixed with distractors) so that at most a target fraction of the distractors is
accepted, keeping as many right answers as that allows. It lies halfway between the
highest score that must be refused (a distractor's) and the next higher score: not on
that distractor's score, where a rounding difference of the same photo described again
(another batch, another thread count: 1.2e-7 in log-odds) would accept it.

The confidence an answer shows is calibrated on the same queries
(:meth:`Calibration.confidence_of`): the share of validation answers of about that score that
were right, fitted as a non-decreasing function of the score and kept off 0 and 1 by one query's
worth, by :func:`artid.metrics.calibration.fit_confidence` (isotonic regression; a logistic curve
on a tiny validation set), the calibration evaluate writes into ``predictions_test.csv``. The
acceptance threshold is shown on this scale (:attr:`Calibration.shown_threshold`). The softmax
of the score is no such probability: it falls with the number of artworks N and with a small
tau, so that an answer verified by 25 points could read "3.4%". Without validation figures
(a threshold given with ``--threshold``) the confidence is that softmax.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.metrics.calibration import ConfidenceCalibration, fit_confidence
from artid.retrieval.knn import confidence


@dataclass(frozen=True)
class Calibration:
    """An acceptance threshold and what it gave on the validation queries.

    Attributes:
        threshold: accept a prediction when its score (log-odds) is > threshold.
        target_false_accept: the fraction of distractors that may be accepted (asked for).
        false_accept: fraction of validation distractors accepted at the threshold (achieved).
        precision: right predictions among all accepted queries (distractors included).
        recall: right and accepted predictions among the non-distractor queries.
        accuracy: right predictions among the non-distractor queries (threshold ignored).
        n_queries: non-distractor validation queries.
        n_distractors: distractor validation queries.
        source: ``"validation"`` when calibrated, ``"given"`` when set by the user.
        reliability: the share of right validation answers as a function of the score
            (:class:`~artid.metrics.calibration.ConfidenceCalibration`); None when not calibrated
            (the confidence is then the softmax).
    """

    threshold: float
    target_false_accept: float | None
    false_accept: float | None
    precision: float | None
    recall: float | None
    accuracy: float | None
    n_queries: int
    n_distractors: int
    source: str
    reliability: ConfidenceCalibration | None = None

    def confidence_of(self, score: np.ndarray | float) -> np.ndarray:
        """The confidence shown for answers of this score: the validation share of right answers
        at that score, or the softmax without validation figures."""
        s = np.asarray(score, dtype=np.float64)
        return confidence(s) if self.reliability is None else self.reliability(s)

    @property
    def shown_threshold(self) -> float:
        """The threshold on the scale of :meth:`confidence_of` (what the page marks)."""
        return float(self.confidence_of(self.threshold))

    @property
    def threshold_confidence(self) -> float:
        """The threshold as a 0..1 confidence (for display)."""
        return float(confidence(np.asarray(self.threshold, dtype=np.float64)))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.reliability is not None:
            out["reliability"] = self.reliability.to_json()
        return {
            **out,
            "scale": "log-odds",
            "threshold_confidence": self.threshold_confidence,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Calibration:
        values: dict[str, Any] = {k: obj.get(k) for k in cls.__dataclass_fields__}
        if obj.get("scale") != "log-odds" and values.get("threshold") is not None:
            values["threshold"] = log_odds_of(
                float(values["threshold"])
            )  # bundles before the log-odds score
        curve = obj.get("reliability")
        values["reliability"] = None
        if isinstance(curve, dict) and curve.get("scores"):  # bundles before: no method (isotonic)
            values["reliability"] = ConfidenceCalibration.from_json(curve, "calibration")
        return cls(**values)

    @classmethod
    def given(cls, threshold_confidence: float) -> Calibration:
        """A threshold chosen by the user as a confidence in [0, 1), with no validation figures."""
        return cls(
            threshold=log_odds_of(threshold_confidence),
            target_false_accept=None,
            false_accept=None,
            precision=None,
            recall=None,
            accuracy=None,
            n_queries=0,
            n_distractors=0,
            source="given",
        )


#: The threshold that accepts every prediction (JSON has no -inf).
ACCEPT_ALL = -1e300


def log_odds_of(conf: float) -> float:
    """A confidence in [0, 1) as log-odds (0 -> :data:`ACCEPT_ALL`)."""
    if not 0.0 <= conf < 1.0:
        raise ArtidError(f"a confidence threshold must lie in [0, 1), got {conf}")
    return ACCEPT_ALL if conf == 0.0 else math.log(conf / (1.0 - conf))


def _check(conf: np.ndarray, correct: np.ndarray, distractor: np.ndarray) -> tuple[np.ndarray, ...]:
    conf = np.asarray(conf, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    distractor = np.asarray(distractor, dtype=bool).ravel()
    if not (conf.size == correct.size == distractor.size):
        raise ArtidError(
            f"calibration: confidence ({conf.size}), correct ({correct.size}) and "
            f"distractor ({distractor.size}) arrays differ in length"
        )
    if np.isnan(conf).any():
        raise ArtidError("calibration: scores contain NaN")
    if (correct & distractor).any():
        raise ArtidError("calibration: a distractor query cannot have a correct prediction")
    return conf, correct, distractor


def evaluate_threshold(
    threshold: float, conf: np.ndarray, correct: np.ndarray, distractor: np.ndarray
) -> dict[str, float]:
    """Precision, recall and false-accept rate of accepting ``conf > threshold``.

    Args:
        threshold: the acceptance threshold (log-odds).
        conf: (Q,) scores (log-odds) of the predictions.
        correct: (Q,) bool, the prediction is the query's artwork (False for distractors).
        distractor: (Q,) bool, the query shows nothing of the collection.

    Returns:
        ``precision`` (1.0 when nothing is accepted), ``recall``, ``false_accept``
        (NaN without distractors / queries where undefined) and ``accepted`` (count).
    """
    conf, correct, distractor = _check(conf, correct, distractor)
    accepted = conf > threshold
    n_acc = int(accepted.sum())
    n_pos = int((~distractor).sum())
    n_dis = int(distractor.sum())
    right = int((accepted & correct).sum())
    return {
        "precision": right / n_acc if n_acc else 1.0,
        "recall": right / n_pos if n_pos else math.nan,
        "false_accept": int((accepted & distractor).sum()) / n_dis if n_dis else math.nan,
        "accepted": float(n_acc),
    }


def calibrate_threshold(
    conf: np.ndarray, correct: np.ndarray, distractor: np.ndarray, target_false_accept: float = 0.05
) -> Calibration:
    """The lowest threshold that accepts at most ``target_false_accept`` of the distractors.

    With the distractors' confidences sorted in descending order d_0 >= d_1 >= ..., and
    m = floor(target * n_distractors), the queries accepted are those with confidence > d_m:
    at most m distractors (fewer when d_m is tied). The threshold lies halfway from d_m to the
    next higher score of any query (:func:`_above`), so that it accepts the same queries while
    a score that moves by rounding stays on its side. When m >= n_distractors every query is
    accepted (threshold :data:`ACCEPT_ALL`).

    Args:
        conf: (Q,) scores (log-odds) of the validation predictions.
        correct: (Q,) bool, the prediction is the query's artwork.
        distractor: (Q,) bool, the query is a distractor.
        target_false_accept: allowed fraction of distractors accepted, in [0, 1].

    Raises:
        ArtidError: no distractor among the queries, or a target outside [0, 1].
    """
    conf, correct, distractor = _check(conf, correct, distractor)
    if not 0.0 <= target_false_accept <= 1.0:
        raise ArtidError(f"target false-accept rate must lie in [0, 1], got {target_false_accept}")
    d = np.sort(conf[distractor])[::-1]
    if d.size == 0:
        raise ArtidError(
            "cannot calibrate the acceptance threshold: the validation queries hold no distractor "
            "(add photos of things outside the collection, or give the threshold yourself)"
        )
    m = int(math.floor(target_false_accept * d.size + 1e-9))
    threshold = ACCEPT_ALL if m >= d.size else _above(float(d[m]), conf)
    figures = evaluate_threshold(threshold, conf, correct, distractor)
    n_pos = int((~distractor).sum())
    curve = reliability(conf, correct)
    return Calibration(
        threshold=threshold,
        target_false_accept=float(target_false_accept),
        false_accept=figures["false_accept"],
        precision=figures["precision"],
        recall=None if n_pos == 0 else figures["recall"],
        accuracy=float(correct[~distractor].mean()) if n_pos else None,
        n_queries=n_pos,
        n_distractors=int(d.size),
        source="validation",
        reliability=curve,
    )


def _above(refused: float, conf: np.ndarray) -> float:
    """A threshold that refuses ``refused`` and accepts every score above it: halfway to the next
    higher score (or, when none is higher, as far above it as the next lower one lies below)."""
    higher, lower = conf[conf > refused], conf[conf < refused]
    if higher.size:
        mid = refused + (float(higher.min()) - refused) / 2
        return mid if mid < float(higher.min()) else refused  # adjacent floats: no room between
    return refused + ((refused - float(lower.max())) / 2 if lower.size else 0.5)


def reliability(scores: np.ndarray, correct: np.ndarray) -> ConfidenceCalibration:
    """The share of right answers as a non-decreasing function of the score
    (:func:`artid.metrics.calibration.fit_confidence`)."""
    return fit_confidence(scores, correct)
