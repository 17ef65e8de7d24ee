"""How small a validation set the confidence calibration survives: isotonic against logistic.

The pipeline is fitted once on the database and the whole validation set (its k, tau and
whitening stay fixed); then the confidence is calibrated on random subsets of Q validation
answers (several seeds each) by isotonic regression, by the logistic curve (Platt scaling) and by
what :func:`artid.metrics.calibration.fit_confidence` picks (logistic below ``MIN_ISOTONIC``), and
measured on all test answers: the expected calibration error and the Brier score (mean squared
error of the probability against right / wrong), mean over seeds with the standard error of that
mean. The softmax ``sigmoid(score)`` is the baseline.

    python benchmarks/calibration_size.py --descriptors runs/backbones/descriptors/benchmark/\
efficientnet_lite0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from artid.descriptors import load_descriptors
from artid.metrics.calibration import expected_calibration_error, fit_confidence
from artid.retrieval.knn import confidence
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--descriptors", type=Path, required=True, help="database / val / test sets")
    p.add_argument("--val", default="val", help="file name of the validation descriptors")
    p.add_argument("--test", default="test", help="file name of the test descriptors")
    p.add_argument("--sizes", default="10,20,30,50,100,300,1000")
    p.add_argument("--seeds", type=int, default=20)
    args = p.parse_args()
    names = {"database": "database", "val": args.val, "test": args.test}
    sets = {s: load_descriptors(args.descriptors / n) for s, n in names.items()}
    labels = {s: np.array([e.label for e in d.entries]) for s, d in sets.items()}
    keys = np.array([e.path for e in sets["val"].entries])
    pipe = KNNPipeline(PipelineConfig()).fit(
        sets["database"].matrix, labels["database"], sets["val"].matrix, labels["val"], keys,
        progress=False,
    )
    assert pipe.val_answer is not None
    val_s, val_y = pipe.val_answer.score, pipe.val_answer.pred == labels["val"]
    test = pipe.predict(sets["test"].matrix, progress=False)
    test_s, test_y = test.score, test.pred == labels["test"]

    def measure(conf: np.ndarray) -> tuple[float, float]:
        return expected_calibration_error(conf, test_y), float(np.mean((conf - test_y) ** 2))

    soft = measure(confidence(test_s))
    print(f"{len(val_s)} val answers ({int(val_y.sum())} right), {len(test_s)} test answers "
          f"({int(test_y.sum())} right); k={pipe.k}, tau={pipe.tau:g}")
    print(f"softmax: ECE {100 * soft[0]:.1f}, Brier {100 * soft[1]:.2f} (percent)")
    print(f"{'Q':>6}  {'isotonic ECE':>14} {'logistic ECE':>14} {'chosen ECE':>14}   "
          f"{'isotonic Brier':>15} {'logistic Brier':>15}")
    for q in (int(x) for x in args.sizes.split(",")):
        if q > len(val_s):
            continue
        got: dict[str, list[tuple[float, float]]] = {"isotonic": [], "logistic": [], "chosen": []}
        for seed in range(args.seeds):
            ix = np.random.default_rng(seed).choice(len(val_s), q, replace=False)
            s, y = val_s[ix], val_y[ix]
            for name, floor in (("isotonic", 1), ("logistic", q + 1), ("chosen", None)):
                cal = fit_confidence(s, y) if floor is None else fit_confidence(s, y, floor)
                got[name].append(measure(cal(test_s)))

        print(f"{q:>6}  {_cell(got['isotonic'], 0):>14} {_cell(got['logistic'], 0):>14} "
              f"{_cell(got['chosen'], 0):>14}   {_cell(got['isotonic'], 1, 2):>15} "
              f"{_cell(got['logistic'], 1, 2):>15}")


def _cell(runs: list[tuple[float, float]], i: int, digits: int = 1) -> str:
    """Mean over seeds of measure i, in percent, with the standard error of the mean."""
    v = np.array([r[i] for r in runs]) * 100
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) / np.sqrt(len(v)):.{digits}f}"


if __name__ == "__main__":
    main()
