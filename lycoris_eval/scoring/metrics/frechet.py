"""Fréchet distance and KID on encoder features, via clean-fid (not re-derived).

``frechet_distance`` uses ``cleanfid.fid.frechet_distance`` (scipy ``sqrtm`` with the
usual safeguards: ``eps`` on the diagonal when the product is singular, small imaginary
parts dropped). KID uses ``cleanfid.fid.kernel_distance`` (cubic polynomial kernel,
random subsets) with a fixed, recorded seed so results repeat.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from lycoris_eval.errors import MetricError

KID_SEED = 0


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    from cleanfid.fid import frechet_distance as cleanfid_fd  # lazy: the scientific stack only when a metric needs it

    if len(x1) < 2 or len(x2) < 2:
        raise MetricError("Fréchet distance needs at least 2 images on each side")
    if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))):
        raise MetricError("Fréchet distance: features contain NaN or inf")
    mu1, s1 = _stats(x1)
    mu2, s2 = _stats(x2)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(cleanfid_fd(mu1, s1, mu2, s2))
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise MetricError(
            f"Fréchet distance is numerically undefined here ({len(x1)} and {len(x2)} images in "
            f"{np.asarray(x1).shape[1]} dimensions: {exc}); it needs far more images than that"
        ) from exc
    return max(value, 0.0) if value > -1e-6 else value


def reliability_note(n1: int, n2: int, dims: int) -> str | None:
    """FD from fewer images than feature dimensions rests on singular covariances."""
    if min(n1, n2) <= dims:
        return f"only {min(n1, n2)} images for {dims}-d features: Fréchet distance is unreliable (noisy, biased up)"
    return None


def kid(x1: np.ndarray, x2: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    from cleanfid.fid import kernel_distance  # lazy: the scientific stack only when a metric needs it

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


def inception_score(probs: np.ndarray, splits: int = 1) -> tuple[float, float | None]:
    """``exp(E_x KL(p(y|x) ‖ p(y)))`` per split; mean and std over splits (Salimans et al. 2016)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) < 1:
        raise MetricError("Inception Score needs class probabilities for at least one image")
    splits = max(1, min(splits, len(p)))
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), (float(np.std(scores)) if splits > 1 else None)
