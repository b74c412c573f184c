"""Vendi score (Friedman & Dieng 2023; reference LyCORIS-evaluation
``evaluation/metrics/vendi.py``): rows L2-normalised, linear kernel ``K = X Xᵀ``, the
eigenvalues of ``K / n`` as a distribution, ``exp`` of its order-``q`` entropy.

``X Xᵀ/n`` (n×n) and ``Xᵀ X/n`` (d×d) share their non-zero spectrum, so when d < n the
d×d "dual" matrix is used: same value, less work. The paper scores whole sets for
in-distribution/trigger prompts and groups of images per prompt for out-of-distribution
prompts (then averages); here every cell is one prompt's images, so each cell's Vendi is
that per-group score and a summary averages the cells.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from lycoris_eval.errors import MetricError
from lycoris_eval.scoring.metrics.fidelity import l2_normalise


def entropy_q(p: np.ndarray, q: float | str = 1) -> float:
    p = p[p > 0]
    if q == "inf" or q == float("inf"):
        return float(-np.log(np.max(p)))
    q = float(q)
    if q == 1.0:
        return float(-(p * np.log(p)).sum())
    return float(np.log((p**q).sum()) / (1.0 - q))


def vendi_score(features: np.ndarray, q: float | str = 1, normalize: bool = True) -> float:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise MetricError("Vendi score needs a non-empty (n, d) feature matrix")
    if not np.all(np.isfinite(x)):
        raise MetricError("Vendi score: features contain NaN or inf")
    if normalize:
        x = l2_normalise(x)
    n, d = x.shape
    gram = (x.T @ x) if d < n else (x @ x.T)
    eigenvalues = scipy.linalg.eigvalsh(gram / n)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return float(np.exp(entropy_q(eigenvalues, q)))
