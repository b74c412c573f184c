"""Rank normalisation (LyCORIS paper appendix D.6; reference
``results/helper/preprocess.py`` ``compute_scaled_ranks``): within a group,
``(rank − 1) / (n − 1)`` with average ranks for ties (pandas' default, = scipy's
``rankdata(method='average')``); ascending for scores (higher is better → rank 1 is the
worst), descending for distances. 1 is best, 0 worst. A group with one valid value is
not ranked (``None``), never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def rank_normalise(values: Sequence[float | None], higher_is_better: bool) -> list[float | None]:
    valid = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    out: list[float | None] = [None] * len(values)
    if len(valid) < 2:
        return out
    data = np.array([values[i] for i in valid], dtype=np.float64)
    ranks = rankdata(data if higher_is_better else -data, method="average")
    scaled = (ranks - 1.0) / (len(valid) - 1.0)
    for i, r in zip(valid, scaled):
        out[i] = float(r)
    return out
