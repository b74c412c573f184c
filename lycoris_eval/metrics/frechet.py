"""Fréchet distance and KID on encoder features, via clean-fid (not re-derived).

``frechet_distance`` uses ``cleanfid.fid.frechet_distance`` (scipy ``sqrtm`` with the
usual safeguards: ``eps`` on the diagonal when the product is singular, small imaginary
parts dropped). KID uses ``cleanfid.fid.kernel_distance`` (cubic polynomial kernel,
random subsets) with a fixed, recorded seed so results repeat.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from ..errors import MetricError

KID_SEED = 0


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    from cleanfid.fid import frechet_distance as cleanfid_fd

    if len(x1) < 2 or len(x2) < 2:
        raise MetricError("Fréchet distance needs at least 2 images on each side")
    if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))):
        raise MetricError("Fréchet distance: features contain NaN or inf")
    mu1, s1 = _stats(x1)
    mu2, s2 = _stats(x2)
    with contextlib.redirect_stdout(io.StringIO()):
        value = float(cleanfid_fd(mu1, s1, mu2, s2))
    return max(value, 0.0) if value > -1e-6 else value


def kid(x1: np.ndarray, x2: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    from cleanfid.fid import kernel_distance

    if len(x1) < 2 or len(x2) < 2:
        raise MetricError("KID needs at least 2 images on each side")
    state = np.random.get_state()
    try:
        np.random.seed(KID_SEED)
        return float(
            kernel_distance(np.asarray(x1, np.float64), np.asarray(x2, np.float64), num_subsets, max_subset_size)
        )
    finally:
        np.random.set_state(state)
