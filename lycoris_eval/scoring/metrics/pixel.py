"""Pixel change between paired images (adapter vs no-adapter at the same seed):
PSNR and SSIM from scikit-image. Higher = closer to the base model's image."""

from __future__ import annotations

import numpy as np

from lycoris_eval.errors import MetricError


def psnr_ssim(image: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    # lazy: the scientific stack only when a metric needs it
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if image.shape != base.shape:
        raise MetricError(f"paired images differ in size: {image.shape[:2]} vs {base.shape[:2]}")
    if np.array_equal(image, base):
        psnr = float("inf")
    else:
        psnr = float(peak_signal_noise_ratio(base, image, data_range=255))
    ssim = float(structural_similarity(base, image, data_range=255, channel_axis=-1))
    return psnr, ssim
