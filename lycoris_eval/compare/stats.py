"""Paired statistics for comparisons: bootstrap intervals, permutation p-values, FDR, seeds.

Pure numpy; every random draw comes from a generator seeded by the caller, so the same
data always gives the same numbers.

* **Interval** — paired bootstrap over pairs (a pair is one prompt × seed seen under both
  A and B), *stratified by prompt*: each prompt keeps its number of pairs in every
  resample. The 95 % interval is an *expanded percentile* interval (Hesterberg 2015, "What
  teachers should know about the bootstrap", §5.1): replicates widened by the per-stratum
  √(n_s/(n_s−1)) the bootstrap loses, read at the tail ``Φ(−t_{n−strata, 0.975})`` instead
  of 0.025. Measured coverage of the stated 95 % (400 simulated datasets each, normal
  noise, 800 datasets): 93 % at 6 pairs (2 prompts), 94 % at 8 and 10, 93.5 % at 20 (4
  prompts); the plain percentile interval gives 82 % at 6 and 91 % at 10. Strongly skewed
  differences (gamma, shape 2) cover less: 88 % at 6 pairs, 94 % at 20.
* **p-value** — the paired t-test. (A sign-flip permutation test was tried first: exact,
  but its p never goes below 2/2ⁿ, so with 8 pairs and a table of 240 tests even a 20σ
  difference could not pass Benjamini–Hochberg. The interval, which must also exclude 0
  for a difference to be called clear, guards against the t-test's normality.)
* **FDR** — Benjamini–Hochberg step-up q-values over the tests of one table.
* **Seeds needed** — the paired t-test's sample size at 80 % power, at the observed mean
  and spread, and at the level Benjamini–Hochberg asks of this table (an estimate).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence

import numpy as np

N_RESAMPLES = 4000  # bootstrap resamples per comparison
CONFIDENCE = 0.95
ALPHA = 0.05  # FDR level and the interval's complement
POWER = 0.80  # for the seeds-needed estimate
MIN_PAIRS = 3  # fewer pairs: "too few seeds", no interval
MIN_STRATUM = 5  # fewer pairs in some prompt: resample all pairs as one pool
MAX_SEEDS_SUGGESTED = 1000
MAX_PAIRS_SEARCHED = 100_000


@functools.lru_cache(maxsize=4096)
def expanded_tail(n: int, strata: int = 1, confidence: float = CONFIDENCE) -> float:
    """The lower percentile (0..1) at which to read replicates whose spread has already been
    corrected for the bootstrap's small-sample shrinkage (:func:`variance_correction`):
    ``Φ(−t_{n−strata, 0.975})``, i.e. Student's t instead of the normal tail, which tends to
    ``(1 − confidence)/2`` as n grows."""
    from scipy.special import ndtr, stdtrit  # Φ and t quantile, without importing scipy.stats (0.4 s)

    df = n - strata
    if df < 1:
        return (1 - confidence) / 2
    return float(ndtr(-stdtrit(df, 1 - (1 - confidence) / 2)))


def variance_correction(sizes: Sequence[int], weights: Sequence[float], variances: Sequence[float]) -> float:
    """Factor by which to widen stratified bootstrap replicates around their centre.

    Resampling ``n_s`` values with replacement gives a mean whose variance is
    ``(n_s − 1)/n_s · s²/n_s``, not ``s²/n_s``: for a mean ``Σ w_s·mean_s`` the ratio of the
    unbiased variance to the bootstrap's is returned (its square root scales deviations).
    This is Hesterberg's √(n/(n−1)) expansion (2015, "What teachers should know about the
    bootstrap", §5.1) made per stratum, where it matters most: 5 seeds per prompt."""
    unbiased = sum(w * w * v / k for k, w, v in zip(sizes, weights, variances))
    boot = sum(w * w * v * (k - 1) / (k * k) for k, w, v in zip(sizes, weights, variances))
    return math.sqrt(unbiased / boot) if boot > 0 else 1.0


def stratified_indices(strata: Sequence[object], n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) indices into the pairs: each resample draws, within every stratum,
    as many pairs as the stratum has, with replacement."""
    labels = list(strata)
    n = len(labels)
    out = np.empty((n_resamples, n), dtype=np.int64)
    members: dict[object, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    column = 0
    for idx in members.values():
        ids = np.asarray(idx, dtype=np.int64)
        draw = rng.integers(0, len(ids), size=(n_resamples, len(ids)))
        out[:, column : column + len(ids)] = ids[draw]
        column += len(ids)
    return out


def percentile_interval(resampled: np.ndarray, centre: float, widen: float, n: int, strata: int) -> tuple[float, float]:
    """The interval read from bootstrap replicates after widening them by ``widen`` around
    ``centre`` (:func:`variance_correction`), at the t-based tail (:func:`expanded_tail`)."""
    tail = expanded_tail(n, strata)
    lo, hi = np.quantile(centre + (resampled - centre) * widen, [tail, 1 - tail])
    return float(lo), float(hi)


def resampling_strata(strata: Sequence[object]) -> tuple[list[object], dict[object, int]]:
    """The strata a bootstrap resamples within, with their sizes: the given ones, or one pool
    when some stratum has fewer than :data:`MIN_STRATUM` pairs (see :func:`paired_interval`)."""
    labels = list(strata)
    counts: dict[object, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if min(counts.values()) < MIN_STRATUM:
        return [0] * len(labels), {0: len(labels)}
    return labels, counts


def paired_interval(
    diffs: np.ndarray, strata: Sequence[object], rng: np.random.Generator
) -> tuple[tuple[float, float], np.ndarray]:
    """95 % interval of the mean paired difference by stratified bootstrap; returns it with
    the replicates. When a stratum has fewer than :data:`MIN_STRATUM` pairs the pairs are
    resampled as one pool: a stratum of 3 has only 10 distinct resamples, and the interval
    then covers the truth ≈ 90 % of the time instead of ≈ 95 % (measured)."""
    labels, counts = resampling_strata(strata)
    idx = stratified_indices(labels, N_RESAMPLES, rng)
    boot = diffs[idx].mean(axis=1)
    n = diffs.size
    groups = {label: diffs[[i for i, x in enumerate(labels) if x == label]] for label in counts}
    widen = variance_correction(
        [g.size for g in groups.values()],
        [g.size / n for g in groups.values()],
        [float(g.var(ddof=1)) for g in groups.values()],
    )
    return percentile_interval(boot, float(diffs.mean()), widen, n, len(groups)), boot


def interval_columns(columns: np.ndarray, strata: Sequence[object], rng: np.random.Generator) -> np.ndarray:
    """:func:`paired_interval` of every column of ``columns`` (n pairs × k), all from the
    same resamples: (k, 2) intervals. A resample's mean is ``counts @ column / n`` (counts:
    how often each pair was drawn), so k columns cost one matrix product instead of k
    gathers; with the same draws the intervals equal :func:`paired_interval`'s."""
    labels, counts = resampling_strata(strata)
    n = len(labels)
    idx = stratified_indices(labels, N_RESAMPLES, rng)
    flat = (np.arange(N_RESAMPLES)[:, None] * n + idx).ravel()
    drawn = np.bincount(flat, minlength=N_RESAMPLES * n).reshape(N_RESAMPLES, n).astype(np.float64)
    cols = np.asarray(columns, dtype=np.float64).reshape(n, -1)
    boot = drawn @ cols / n
    centre = cols.mean(axis=0)
    members = [np.array([i for i, x in enumerate(labels) if x == label]) for label in counts]
    out = np.empty((cols.shape[1], 2))
    tail = expanded_tail(n, len(members))
    for j in range(cols.shape[1]):
        widen = variance_correction(
            [m.size for m in members],
            [m.size / n for m in members],
            [float(cols[m, j].var(ddof=1)) for m in members],
        )
        out[j] = np.quantile(centre[j] + (boot[:, j] - centre[j]) * widen, [tail, 1 - tail])
    return out


def paired_t_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test of ``mean(diffs) == 0`` (1 when every
    difference is 0, 0 when they are equal and non-zero)."""
    from scipy.special import stdtr  # Student's t CDF: scipy.stats.t.sf without its per-call overhead

    d = np.asarray(diffs, dtype=np.float64)
    n, mean = d.size, float(d.mean())
    if mean == 0.0:
        return 1.0
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0
    return float(2 * stdtr(n - 1, -abs(mean) / (sd / math.sqrt(n))))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH step-up adjusted p-values (q-values), in the input order; ``q ≤ α`` controls the
    false discovery rate at α over these tests (independent or positively dependent)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return [float(v) for v in q]


def pairs_needed(mean: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Pairs for a paired difference of ``mean`` with spread ``sd`` to be found by a
    two-sided paired t-test at level ``alpha`` with ``power``: the smallest n with
    n ≥ ((t_{n−1, 1−α/2} + t_{n−1, power})·sd/|mean|)². None when the mean is zero, or
    more than :data:`MAX_PAIRS_SEARCHED` would be needed."""
    # Student's t quantile: what scipy.stats.t.ppf computes, without its argument checking,
    # which made this search three quarters of a run's comparison time
    from scipy.special import stdtrit

    if mean == 0 or not math.isfinite(mean) or not math.isfinite(sd):
        return None
    ratio = (sd / abs(mean)) ** 2

    def enough(n: int) -> bool:
        return n >= (stdtrit(n - 1, 1 - alpha / 2) + stdtrit(n - 1, power)) ** 2 * ratio

    if enough(MIN_PAIRS):
        return MIN_PAIRS
    low, high = MIN_PAIRS, MIN_PAIRS * 2  # enough() is monotone in n: bracket, then bisect
    while not enough(high):
        if high > MAX_PAIRS_SEARCHED:
            return None
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def seed_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from the comparison's identity (stable across runs, processes and
    the order comparisons are computed in)."""

    text = "\x1f".join(repr(p) for p in parts)
    return np.random.default_rng([0, zlib.crc32(text.encode("utf-8"))])
