"""The fixed settings ``benchmarks/small_validation.py`` chooses among, and their answers.

Each choice made on validation is a family of fixed settings, the default first:

    whitening  ``--whiten auto``'s candidates (PCAw at the supported dimension, at half of it, raw
               descriptors), plus two regularised whitenings measured beside them as fixed
               settings only: PCAw with shrinkage and PCAw on the Ledoit-Wolf covariance
    expansion  every (dba_n, qe_n) of ``N_GRID`` x ``N_GRID`` at the default whitening; the default
               is no expansion
    fusion     the re-ranking rule's (w, min_inliers) grid at the default whitening, each at its
               best val tau (:func:`artid.retrieval.fusion.choose_fusion`); the default is the
               service's rule (w 0.5, 8 inliers)

The whitening is fitted on the database only, so each is fitted once and every draw of validation
queries fits the kNN pipeline (``whiten="none"``: the rows are already whitened and normalised) on
the whitened rows, (k, tau) tuned on the draw; the answers are those of ``whiten="pcaw"`` up to
float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artid.retrieval.choosing import paired_z
from artid.retrieval.config import PipelineConfig, whitening_candidates
from artid.retrieval.expansion import N_GRID
from artid.retrieval.pipeline import KNNPipeline
from artid.retrieval.projection import Projection
from artid.retrieval.whitening import PCAWhitening

Answers = tuple[np.ndarray, np.ndarray]
#: database, val and test rows in one searched space
Space = tuple[np.ndarray, np.ndarray, np.ndarray]


def ledoit_wolf_whitening(db: np.ndarray, dim: int) -> tuple[PCAWhitening, float]:
    """PCA-whitening of the Ledoit-Wolf covariance (``sklearn.covariance.LedoitWolf``): the sample
    covariance's eigenvectors with eigenvalues ``(1 - a) l + a mean(l)``, so that the small,
    noisy ones are not blown up. Returns the whitening and the shrinkage ``a`` it estimated."""
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(np.asarray(db, dtype=np.float64))
    eigval, eigvec = np.linalg.eigh(lw.covariance_)
    order = np.argsort(eigval)[::-1][:dim]
    w = PCAWhitening(dim=dim)
    w.mean = lw.location_.astype(np.float32)
    w.eigenvalues = eigval[order]
    w.projection = (eigvec[:, order] * eigval[order] ** -0.5).astype(np.float32)
    return w, float(lw.shrinkage_)


def whitening_spaces(
    db: np.ndarray, val: np.ndarray, test: np.ndarray, dim: int, shrinkage: float
) -> tuple[dict[str, Space], list[str], dict[str, float]]:
    """Every whitening's space, the names of auto's candidates (default first) and notes (the
    Ledoit-Wolf shrinkage)."""
    spaces: dict[str, Space] = {}
    auto = whitening_candidates(PipelineConfig(dim=dim), [db])
    for c in auto:
        proj = Projection.fit([db], c.whiten, max(c.dim, 1))
        spaces[f"PCAw {c.dim}" if c.whiten else "raw"] = (
            proj.transform(db), proj.transform(val), proj.transform(test)
        )
    names = list(spaces)
    top = max(c.dim for c in auto)
    proj = Projection.fit([db], True, top, shrinkage)
    spaces[f"PCAw {top} shrink {shrinkage:g}"] = tuple(proj.transform(x) for x in (db, val, test))
    lw, a = ledoit_wolf_whitening(db, top)
    spaces[f"PCAw {top} Ledoit-Wolf"] = tuple(lw.transform(x) for x in (db, val, test))
    return spaces, names, {"ledoit_wolf_shrinkage": a}


def expansion_settings() -> list[tuple[int, int]]:
    """(dba_n, qe_n) in the order ``choose_expansion`` tries them (no expansion first)."""
    return [(d, q) for d in N_GRID for q in N_GRID]


@dataclass
class Draw:
    """Validation queries of one draw: rows of the val split, their labels and keys."""

    rows: np.ndarray
    labels: np.ndarray
    keys: np.ndarray


@dataclass
class FamilyAnswers:
    """One family on one draw: each setting's val and test answers, and the candidates' val GAP
    and paired z against the default (the first candidate)."""

    val: dict[str, Answers]
    test: dict[str, Answers]
    candidates: list[str]
    gaps: list[float]
    z: list[float]


def fit_answers(
    space: Space, db_labels: np.ndarray, draw: Draw, **options: int
) -> tuple[Answers, Answers, KNNPipeline]:
    """The kNN pipeline fitted on a space ((k, tau) and fixed QE / DBA ``options`` on the draw):
    its val answer, its test answer and the pipeline."""
    db, val, test = space
    cfg = PipelineConfig(whiten="none", use_gpu=False, **options)
    pipe = KNNPipeline(cfg).fit(
        db, db_labels, val[draw.rows], draw.labels, draw.keys, progress=False
    )
    va, ta = pipe.val_answer, pipe.predict(test, progress=False)
    assert va is not None
    return (va.pred, va.score), (ta.pred, ta.score), pipe


def family(
    answers: dict[str, tuple[Answers, Answers]], candidates: list[str], draw: Draw, resamples: int
) -> FamilyAnswers:
    """Gather a family's answers and the z of its candidates on the draw."""
    gaps, z = paired_z([answers[n][0] for n in candidates], draw.labels, draw.keys, resamples)
    return FamilyAnswers(
        {n: a[0] for n, a in answers.items()},
        {n: a[1] for n, a in answers.items()},
        candidates,
        gaps,
        z,
    )
