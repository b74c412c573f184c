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
* **p-value** — paired sign-flip permutation test (under "no difference" A and B are
  exchangeable within a pair, so the sign of each paired difference is a coin flip):
  exact over all 2ⁿ flips up to n = 12, Monte Carlo with :data:`N_RESAMPLES` flips above.
  It never goes below ``2/2ⁿ``: 5 pairs cannot give p < 0.05.
* **FDR** — Benjamini–Hochberg step-up q-values over the tests of one table.
* **Seeds needed** — the normal-approximation sample size for a paired difference at 5 %
  two-sided and 80 % power, at the observed mean and spread (an estimate, said as such).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

N_RESAMPLES = 4000  # bootstrap resamples and Monte Carlo sign flips per comparison
CONFIDENCE = 0.95
ALPHA = 0.05  # FDR level and the interval's complement
POWER = 0.80  # for the seeds-needed estimate
MIN_PAIRS = 3  # fewer pairs: "too few seeds", no interval
MIN_STRATUM = 5  # fewer pairs in some prompt: resample all pairs as one pool
EXACT_FLIPS_UP_TO = 12
MAX_SEEDS_SUGGESTED = 1000


def _norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


@functools.lru_cache(maxsize=4096)
def expanded_tail(n: int, strata: int = 1, confidence: float = CONFIDENCE) -> float:
    """The lower percentile (0..1) at which to read replicates whose spread has already been
    corrected for the bootstrap's small-sample shrinkage (:func:`variance_correction`):
    ``Φ(−t_{n−strata, 0.975})``, i.e. Student's t instead of the normal tail, which tends to
    ``(1 − confidence)/2`` as n grows."""
    from scipy.stats import norm, t

    df = n - strata
    if df < 1:
        return (1 - confidence) / 2
    return float(norm.cdf(-t.ppf(1 - (1 - confidence) / 2, df)))


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


def paired_interval(
    diffs: np.ndarray, strata: Sequence[object], rng: np.random.Generator
) -> tuple[tuple[float, float], np.ndarray]:
    """95 % interval of the mean paired difference by stratified bootstrap; returns it with
    the replicates. When a stratum has fewer than :data:`MIN_STRATUM` pairs the pairs are
    resampled as one pool: a stratum of 3 has only 10 distinct resamples, and the interval
    then covers the truth ≈ 90 % of the time instead of ≈ 95 % (measured)."""
    labels = list(strata)
    counts: dict[object, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if min(counts.values()) < MIN_STRATUM:
        labels = [0] * len(labels)
        counts = {0: len(labels)}
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


@functools.lru_cache(maxsize=EXACT_FLIPS_UP_TO + 1)
def _all_signs(n: int) -> np.ndarray:
    """Every ±1 sign pattern of n pairs, (2ⁿ, n)."""
    return (1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)).astype(np.float64)


def sign_flip_p(diffs: np.ndarray, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> float:
    """Two-sided p-value of the paired sign-flip test of ``mean(diffs) == 0``.

    Counts flips whose |mean| reaches the observed |mean| (a tiny relative tolerance so
    that the observed arrangement always counts itself)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    observed = abs(d.mean())
    if observed == 0.0:
        return 1.0
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= EXACT_FLIPS_UP_TO:
        means = np.abs(_all_signs(n) @ d) / n
        return float(np.mean(means >= observed - tol))
    signs = rng.integers(0, 2, size=(n_resamples, n)) * 2.0 - 1.0
    means = np.abs(signs @ d) / n
    return float((1 + np.sum(means >= observed - tol)) / (n_resamples + 1))


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
    """Pairs for a paired difference of ``mean`` with spread ``sd`` to be detected at
    ``alpha`` (two-sided) with ``power``; None when the mean is zero. At least the 6 pairs a
    sign-flip test needs to reach p < 0.05 at all."""
    if mean == 0 or not math.isfinite(mean) or not math.isfinite(sd):
        return None
    z = _norm_ppf(1 - alpha / 2) + _norm_ppf(power)
    return max(6, math.ceil((z * sd / abs(mean)) ** 2))


def seed_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from the comparison's identity (stable across runs, processes and
    the order comparisons are computed in)."""
    import zlib

    text = "\x1f".join(repr(p) for p in parts)
    return np.random.default_rng([0, zlib.crc32(text.encode("utf-8"))])


def _counts(idx: np.ndarray, width: int) -> np.ndarray:
    """(R, width) how often each row index appears in each of the R selections ``idx``."""
    r = idx.shape[0]
    flat = (idx + np.arange(r)[:, None] * width).ravel()
    return np.bincount(flat, minlength=r * width).reshape(r, width).astype(np.float64)


def _sq_dist_to(gram: np.ndarray, proj: np.ndarray, tt: float, weights: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from the centroid of ``k`` selected rows to a target ``t``, for each
    selection given as counts ``weights`` (R, rows), from the rows' Gram matrix and their
    projections on ``t``: ‖c − t‖² = wᵀGw/k² − 2·wᵀ(Xt)/k + tᵀt."""
    cc = ((weights @ gram) * weights).sum(axis=1) / (k * k)
    return cc - 2 * (weights @ proj) / k + tt


def centroid_distance_comparison(
    blocks: Sequence[tuple[np.ndarray, np.ndarray]], target: np.ndarray, rng: np.random.Generator
) -> tuple[float, np.ndarray, float]:
    """Squared centroid distance to ``target`` (the reference set's centroid), A minus B,
    averaged over strata. ``blocks`` holds per stratum (prompt) the paired vectors of A and
    B, row i of both being the same seed.

    Returns the observed difference, :data:`N_RESAMPLES` stratified paired bootstrap
    replicates of it (the same seeds drawn for A and B) and a permutation p-value (A and B
    swapped at random within pairs, recomputing both centroids)."""
    t = np.asarray(target, dtype=np.float64)
    tt = float(t @ t)
    observed = 0.0
    boot = np.zeros(N_RESAMPLES)
    perm = np.zeros(N_RESAMPLES)
    for a, b in blocks:
        k = a.shape[0]
        z = np.concatenate([a, b]).astype(np.float64)
        gram, proj = z @ z.T, z @ t
        ones, zeros = np.ones((1, k)), np.zeros((1, k))
        a_sel, b_sel = np.hstack([ones, zeros]), np.hstack([zeros, ones])
        observed += float(_sq_dist_to(gram, proj, tt, a_sel, k)[0] - _sq_dist_to(gram, proj, tt, b_sel, k)[0])
        w = _counts(rng.integers(0, k, size=(N_RESAMPLES, k)), k)
        empty = np.zeros_like(w)
        boot += _sq_dist_to(gram, proj, tt, np.hstack([w, empty]), k)
        boot -= _sq_dist_to(gram, proj, tt, np.hstack([empty, w]), k)
        flip = rng.integers(0, 2, size=(N_RESAMPLES, k)).astype(np.float64)
        perm += _sq_dist_to(gram, proj, tt, np.hstack([1 - flip, flip]), k)
        perm -= _sq_dist_to(gram, proj, tt, np.hstack([flip, 1 - flip]), k)
    s = len(blocks)
    observed, boot, perm = observed / s, boot / s, perm / s
    if observed == 0.0:
        return 0.0, boot, 1.0
    tol = 1e-12 * max(1.0, abs(observed))
    p = float((1 + np.sum(np.abs(perm) >= abs(observed) - tol)) / (N_RESAMPLES + 1))
    return observed, boot, p
