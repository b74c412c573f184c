"""Text-image alignment with CLIP (reference LyCORIS-evaluation
``evaluation/eval_text_similarity.py``): the mean over images of the cosine between an
image's features and its own (cleaned) prompt's features. No ×100, no clamp.

``clip_score`` is torchmetrics' CLIPScore convention, ``max(100·cos, 0)``, for
comparability with papers that report it.
"""

from __future__ import annotations

import numpy as np

from lycoris_eval.errors import MetricError
from lycoris_eval.scoring.metrics.fidelity import l2_normalise


def pair_cosine(image_features: np.ndarray, text_features: np.ndarray) -> np.ndarray:
    if image_features.shape != text_features.shape:
        raise MetricError(f"image/text features differ in shape: {image_features.shape} vs {text_features.shape}")
    return (l2_normalise(image_features) * l2_normalise(text_features)).sum(axis=-1)


def clip_score(cosines: np.ndarray) -> np.ndarray:
    return np.maximum(100.0 * np.asarray(cosines, dtype=np.float64), 0.0)
