"""Image fidelity in DINOv2 space (reference LyCORIS-evaluation
``evaluation/eval_image_similarity.py``, ``compute_cosine_similarity_and_cent_dist2``).

Both sets are L2-normalised; *similarity* is the mean cosine over all cross pairs
(= ⟨ĉa, ĉb⟩ with ĉ the mean of the normalised vectors); *squared centroid distance* is
``‖ĉa − ĉb‖²``. Note a set against itself has distance 0 but similarity ``‖ĉ‖²``, not 1.
"""

from __future__ import annotations

import numpy as np

from lycoris_eval.errors import MetricError


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise MetricError("cannot normalise a zero or non-finite feature vector")
    return x / norms


def normalised_centroid(x: np.ndarray) -> np.ndarray:
    return l2_normalise(x).mean(axis=0)


def fidelity(generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(mean cosine over all pairs, squared distance of normalised centroids)."""
    if len(generated) == 0 or len(reference) == 0:
        raise MetricError("fidelity needs at least one image on each side")
    ca, cb = normalised_centroid(generated), normalised_centroid(reference)
    return float(ca @ cb), float(((ca - cb) ** 2).sum())


def cosine_to_set(features: np.ndarray, reference_centroid: np.ndarray) -> np.ndarray:
    """Per image: mean cosine to every member of the set (x̂ · ĉ_ref)."""
    return l2_normalise(features) @ reference_centroid
