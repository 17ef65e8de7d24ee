"""Benchmark: full-grid (k, tau) autotune + test evaluation at the Met's scale, against the naive way.

Synthetic data with the Met's shape: 397,121 database descriptors of dimension 512 in 224,408
classes with the Met's class-size distribution (60.8% of classes with one image, 1.2% with ten,
the rest geometrically between), 2,165 val and 19,319 test queries with the Met's share of Met
queries (129 and 1,003); a Met query is a noisy copy of one of its class's images (a planted
near neighbour), distractors are random unit vectors.

In one run it times:

1. one exact faiss search of the val queries at k=50 (the baseline unit);
2. the full 9 x 12 autotune (one search at k=50 + the whole grid);
3. the test evaluation at the tuned (k, tau): one search, classification, GAP / GAP- / ACC;
4. the naive way on a subsample of val queries: a fresh search for every (k, tau) pair and a
   Python loop per query, scaled up to all val queries;

asserts that the fast and naive predictions and confidences are identical on the subsample at
all 108 points, and prints times, ratios and peak memory. ``--scale 0.05`` runs a small version.

    python benchmarks/knn_autotune.py                 # full Met scale (~1 GB database matrix)
    python benchmarks/knn_autotune.py --scale 0.05    # quick check
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time

import numpy as np

from artid.metrics.ilr import accuracy, gap, gap_minus
from artid.retrieval.autotune import K_GRID, autotune
from artid.retrieval.knn import KNNClassifier, exact_search

MET = {"classes": 224_408, "images": 397_121, "val": 2_165, "val_met": 129, "test": 19_319, "test_met": 1_003}
DIM = 512


def class_sizes(n_classes: int, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Sizes 1..10 with P(1)=0.608, P(10)=0.012 and a geometric middle fitted to the mean, summing to n_images."""
    target_mean = n_images / n_classes
    middle = np.arange(2, 10)
    mass = 1 - 0.608 - 0.012
    want = (target_mean - 0.608 - 0.12) / mass  # mean size within 2..9

    def mean_of(r: float) -> float:
        w = r ** (middle - 2)
        return float((w * middle).sum() / w.sum())

    lo, hi = 1e-6, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_of(mid) < want else (lo, mid)
    w = lo ** (middle - 2)
    probs = np.r_[0.608, mass * w / w.sum(), 0.012]
    counts = np.floor(probs * n_classes).astype(np.int64)
    counts[0] += n_classes - counts.sum()
    sizes = np.repeat(np.arange(1, 11), counts)
    excess = int(sizes.sum()) - n_images  # move single images between classes to hit the total exactly
    if excess > 0:
        grow = np.flatnonzero(sizes == 2)[:excess]
        sizes[grow] = 1
    elif excess < 0:
        sizes[np.flatnonzero(sizes == 1)[:-excess]] = 2
    return rng.permutation(sizes)


def unit_rows(n: int, rng: np.random.Generator, chunk: int = 65536) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - s), DIM), dtype=np.float32)
        out[s:s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def queries(db: np.ndarray, labels: np.ndarray, n: int, n_met: int, rng: np.random.Generator):
    """n queries: n_met noisy copies of random database images (label = their class), the rest distractors."""
    q = unit_rows(n, rng)
    q_labels = np.full(n, -1, dtype=np.int64)
    met = rng.choice(n, n_met, replace=False)
    src = rng.choice(len(db), n_met, replace=False)
    # similarity to the planted image 1/sqrt(1 + noise^2) ~ 0.2-0.55; the best of 397k random rows is ~0.2
    noise = rng.uniform(1.5, 5.0, size=(n_met, 1)).astype(np.float32)
    x = db[src] + noise * q[met]
    q[met] = x / np.linalg.norm(x, axis=1, keepdims=True)
    q_labels[met] = labels[src]
    return q, q_labels


def naive_grid(db, labels, n_classes, q, ks, taus):
    """The naive way: a fresh search per (k, tau) and a Python loop per query.

    Returns:
        {(k, tau): (pred, conf)}, seconds spent searching, seconds spent in the Python loops.
    """
    out = {}
    t_search = t_loop = 0.0
    for k in ks:
        for tau in taus:
            t0 = time.perf_counter()
            sims, idx = exact_search(q, db, k, use_gpu=False, progress=False)
            t1 = time.perf_counter()
            preds, confs = [], []
            for row in range(len(q)):
                scores: dict[int, float] = {}
                for j in range(k):
                    c = int(labels[idx[row, j]])
                    if c not in scores:  # neighbours are sorted: the first is the class maximum
                        scores[c] = float(sims[row, j])
                s0 = float(sims[row, 0])
                denom = 0.0
                for v in scores.values():
                    denom += math.exp(tau * (v - s0))
                denom += (n_classes - len(scores)) * math.exp(-tau * s0)
                preds.append(int(labels[idx[row, 0]]))
                confs.append(1.0 / denom)
            out[(k, tau)] = (np.array(preds), np.array(confs))
            t_search += t1 - t0
            t_loop += time.perf_counter() - t1
    return out, t_search, t_loop


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the Met's database and query counts")
    p.add_argument("--naive-queries", type=int, default=64, help="val queries in the naive subsample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ivf", action="store_true",
                   help="also time the approximate IVF index and count changed predictions")
    p.add_argument("--nprobe", type=int, default=32, help="IVF cells visited per query")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n_classes = max(10, round(MET["classes"] * args.scale))
    n_images = max(n_classes, round(MET["images"] * args.scale))
    n_val, n_test = max(50, round(MET["val"] * args.scale)), max(50, round(MET["test"] * args.scale))
    n_val_met = max(5, round(MET["val_met"] * args.scale))
    n_test_met = max(5, round(MET["test_met"] * args.scale))

    t = time.perf_counter()
    sizes = class_sizes(n_classes, n_images, rng)
    labels = np.repeat(np.arange(n_classes), sizes)
    db = unit_rows(len(labels), rng)
    qv, lv = queries(db, labels, n_val, n_val_met, rng)
    qt, lt = queries(db, labels, n_test, n_test_met, rng)
    print(f"data: {len(db):,} x {DIM} database ({db.nbytes / 2**30:.2f} GiB) in {n_classes:,} classes "
          f"({np.mean(sizes == 1):.1%} with one image, max {sizes.max()}), {n_val:,} val ({n_val_met} Met), "
          f"{n_test:,} test ({n_test_met} Met) queries; generated in {time.perf_counter() - t:.1f}s")
    clf = KNNClassifier(db, labels)
    print(f"faiss threads: {__import__('faiss').omp_get_max_threads()}, device: {'gpu' if clf.use_gpu else 'cpu'}")

    clf.search(qv[:256], max(K_GRID), progress=False)  # warm-up (threads, caches), not timed
    t = time.perf_counter()
    clf.search(qv, max(K_GRID), progress=False)
    t_exact_1 = time.perf_counter() - t

    t = time.perf_counter()
    tuned = autotune(clf, qv, lv, keep_neighbours=True)
    t_autotune = time.perf_counter() - t

    t = time.perf_counter()
    clf.search(qv, max(K_GRID), progress=False)
    t_exact_2 = time.perf_counter() - t
    t_exact = (t_exact_1 + t_exact_2) / 2
    print(f"1. one exact search of {n_val:,} val queries at k=50: {t_exact:.2f}s "
          f"(mean of {t_exact_1:.2f}s before and {t_exact_2:.2f}s after the autotune)")
    print(f"2. full {len(tuned.ks) * len(tuned.taus)}-point autotune: {t_autotune:.2f}s "
          f"(search {tuned.search_seconds:.2f}s + grid {tuned.grid_seconds:.3f}s) = "
          f"{t_autotune / t_exact:.3f}x one exact search [target < 1.5x]; best k={tuned.best_k} "
          f"tau={tuned.best_tau:g} val GAP {100 * tuned.best_gap:.1f}")

    t = time.perf_counter()
    sims, idx = clf.search(qt, tuned.best_k)
    t_test_search = time.perf_counter() - t
    pred, score, _ = clf.classify(sims, idx, tuned.best_k, tuned.best_tau)
    scores = gap(pred, score, lt), gap_minus(pred, score, lt), accuracy(pred, score, lt)
    t_test = time.perf_counter() - t
    searches = tuned.search_seconds + t_test_search
    total = t_autotune + t_test
    print(f"3. test evaluation: {t_test:.2f}s (search {t_test_search:.2f}s); test GAP {100 * scores[0]:.1f} "
          f"GAP- {100 * scores[1]:.1f} ACC {100 * scores[2]:.1f}")
    print(f"   whole evaluation {total:.2f}s = {total / searches:.3f}x the exact searches it needs "
          f"({searches:.2f}s) [target < 1.2x]")

    n_sub = min(args.naive_queries, n_val)
    sub = np.sort(rng.choice(n_val, n_sub, replace=False))
    naive, t_naive_search, t_naive_loop = naive_grid(db, labels, clf.n_classes, qv[sub], tuned.ks, tuned.taus)
    scale = n_val / n_sub
    t_naive_scaled = (t_naive_search + t_naive_loop) * scale
    t_naive_low = len(naive) * t_exact + t_naive_loop * scale
    print(f"4. naive way on {n_sub} val queries: {t_naive_search + t_naive_loop:.2f}s ({len(naive)} searches "
          f"{t_naive_search:.2f}s + Python loops {t_naive_loop:.2f}s); scaled to {n_val:,} queries: "
          f"{t_naive_scaled:.0f}s ({t_naive_scaled / 60:.1f} min); lower estimate with full-batch searches "
          f"({len(naive)} x {t_exact:.2f}s + loops x {scale:.1f}): {t_naive_low:.0f}s ({t_naive_low / 60:.1f} min)")
    print(f"   fast autotune is {t_naive_scaled / t_autotune:.0f}x faster than the scaled naive way "
          f"({t_naive_low / t_autotune:.0f}x faster than the lower estimate)")

    # the fast way on the same sub-queries: one search at k=50, then every grid point from it
    sub_sims, sub_idx = clf.search(qv[sub], max(tuned.ks), progress=False)
    wrong_pred, bitwise, max_rel, batch_changes = 0, 0, 0.0, 0
    for (k, tau), (p_naive, c_naive) in naive.items():
        p_fast, _, c_fast = clf.classify(sub_sims, sub_idx, k, tau)
        wrong_pred += int(np.sum(p_fast != p_naive))
        bitwise += int(np.sum(c_fast == c_naive))
        ok = c_naive > 1e-300
        max_rel = max(max_rel, float(np.max(np.abs(c_fast[ok] - c_naive[ok]) / c_naive[ok], initial=0.0)))
        batch_changes += int(np.sum(clf.classify(tuned.sims[sub], tuned.idx[sub], k, tau)[0] != p_fast))
    n_values = n_sub * len(naive)
    # same neighbours and formula; artid computes the confidence as sigmoid(log-odds) in log space
    # (the ranking score), the naive way as 1 / sum of exponentials: equal to rounding
    assert wrong_pred == 0, f"{wrong_pred} predictions differ between the fast and the naive way"
    assert max_rel <= 1e-12, f"confidences differ by up to {max_rel:.3g} (relative)"
    print(f"   equality on {n_sub} queries x {len(naive)} grid points: predictions identical; confidences "
          f"bit-identical in {bitwise}/{n_values}, the rest within {max_rel:.2g} relative")
    diff = float(np.max(np.abs(tuned.sims[sub].astype(np.float64) - sub_sims)))
    print(f"   (faiss similarities of these queries searched alone vs inside the full val batch differ by up to "
          f"{diff:.2g}: BLAS blocking; predictions changed by it: {batch_changes})")
    print(f"peak memory (max RSS): {peak_rss_gib():.2f} GiB")
    if args.ivf:
        compare_ivf(db, labels, qv, lv, qt, lt, clf, tuned, pred, scores, t_autotune, t_test_search, args.nprobe)
    return 0


def compare_ivf(db, labels, qv, lv, qt, lt, clf, tuned, pred, scores, t_autotune, t_test_search, nprobe) -> None:
    """Approximate option: IVF-Flat autotune + test search, speed-up and predictions changed vs exact."""
    from artid.retrieval.index import IVFSearcher

    ivf = IVFSearcher(db, nprobe=nprobe)
    approx = KNNClassifier(db, labels, searcher=ivf)
    t = time.perf_counter()
    tuned_ivf = autotune(approx, qv, lv)
    t_auto_ivf = time.perf_counter() - t
    t = time.perf_counter()
    sims, idx = approx.search(qt, tuned.best_k)
    t_search_ivf = time.perf_counter() - t
    p_ivf, c_ivf, _ = approx.classify(sims, idx, tuned.best_k, tuned.best_tau)  # c_ivf: the ranking score
    changed = int(np.sum(p_ivf != pred))
    met = lt >= 0
    print(f"5. IVF-Flat ({ivf.index.nlist} cells, nprobe {ivf.index.nprobe}; build {ivf.build_seconds:.1f}s): "
          f"autotune {t_auto_ivf:.2f}s ({t_autotune / t_auto_ivf:.1f}x faster than exact), test search "
          f"{t_search_ivf:.2f}s ({t_test_search / t_search_ivf:.1f}x faster); at the exact-tuned (k, tau) "
          f"{changed}/{len(pred)} test predictions change ({int(np.sum(p_ivf[met] != pred[met]))}/{int(met.sum())} "
          f"of Met queries); test GAP {100 * gap(p_ivf, c_ivf, lt):.1f} vs exact {100 * scores[0]:.1f}, ACC "
          f"{100 * accuracy(p_ivf, c_ivf, lt):.1f} vs {100 * scores[2]:.1f}; IVF-tuned k={tuned_ivf.best_k} "
          f"tau={tuned_ivf.best_tau:g}")


if __name__ == "__main__":
    sys.exit(main())
