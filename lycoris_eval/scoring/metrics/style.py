"""Gram-matrix style metrics (LyCORIS paper §4 and appendix; reference
LyCORIS-evaluation ``evaluation/eval_style_loss.py``).

* Base-model preservation, ``get_style_loss``: per pair (adapter image, no-adapter image
  at the same prompt and seed) ``Σ (g_ref − g)²`` over the concatenated Gram vector,
  i.e. ``Σ_l ‖G_l(x) − G_l(y)‖²_F``; the mean over pairs. Lower = closer to the base model.
* Style loss to a dataset, ``allpair_msd``: the mean over all cross pairs of squared
  distances, computed as ``‖μ₁−μ₂‖² + v₁ + v₂`` with ``v = mean ‖x − μ‖²``. Lower =
  closer to the reference style.

A Gram vector is 2.4 MB, so sets are summarised by streaming sufficient statistics
(count, mean, sum of squared deviations; merged with Chan et al.'s parallel update, in
float64) and never kept whole. For one image ``x`` against a set the same quantity is
``‖x − μ‖² + v``; its mean over a set of images equals the set-to-set all-pairs value,
so a cell's style loss is the mean of its images' values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lycoris_eval.errors import MetricError


@dataclass
class SetStats:
    """Streaming count/mean/M2 of vectors (M2 = Σ‖x − μ‖²)."""

    n: int = 0
    mean: np.ndarray | None = field(default=None, repr=False)
    m2: float = 0.0

    def add(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == 1:
            batch = batch[None, :]
        if batch.shape[0] == 0:
            return
        nb = batch.shape[0]
        mean_b = batch.mean(axis=0)
        m2_b = float(((batch - mean_b) ** 2).sum())
        if self.n == 0 or self.mean is None:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        if mean_b.shape != self.mean.shape:
            raise MetricError(f"feature size mismatch: {mean_b.shape[0]} vs {self.mean.shape[0]}")
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + float(delta @ delta) * self.n * nb / n
        self.n = n

    @property
    def variance(self) -> float:
        """Mean squared distance to the centroid (the reference's ``var``, divided by n)."""
        if self.n == 0:
            raise MetricError("empty set")
        return self.m2 / self.n

    @classmethod
    def of(cls, features: np.ndarray) -> SetStats:
        stats = cls()
        stats.add(features)
        return stats


def allpair_msd(x1: np.ndarray, x2: np.ndarray) -> float:
    """Reference formula on whole matrices: ``‖μ₁−μ₂‖² + v₁ + v₂``."""
    return allpair_msd_from_stats(SetStats.of(x1), SetStats.of(x2))


def allpair_msd_from_stats(s1: SetStats, s2: SetStats) -> float:
    if s1.n == 0 or s2.n == 0 or s1.mean is None or s2.mean is None:
        raise MetricError("style loss needs at least one image on each side")
    diff = s1.mean - s2.mean
    value = float(diff @ diff) + s1.variance + s2.variance
    if not np.isfinite(value):
        raise MetricError("style loss is not finite (NaN/inf features)")
    return value


def distance_to_set(features: np.ndarray, stats: SetStats) -> np.ndarray:
    """Per image: mean squared distance to every member of the set, ``‖x−μ‖² + v``."""
    if stats.mean is None:
        raise MetricError("empty reference set")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    return ((x - stats.mean) ** 2).sum(axis=1) + stats.variance


def pair_style_loss(features: np.ndarray, base_features: np.ndarray) -> np.ndarray:
    """Per pair ``Σ (g_base − g)²`` (rows paired)."""
    a = np.asarray(features, dtype=np.float64)
    b = np.asarray(base_features, dtype=np.float64)
    if a.shape != b.shape:
        raise MetricError(f"paired features differ in shape: {a.shape} vs {b.shape}")
    return ((a - b) ** 2).sum(axis=-1)
