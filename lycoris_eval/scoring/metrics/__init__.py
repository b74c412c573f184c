"""Metric catalogue: names (stable, used in scores.json), direction, what each needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    title: str
    higher_is_better: bool
    encoder: str | None  # encoder whose features it needs (None: pixels)
    needs: str  # "reference", "baseline", "prompt", "none"
    level: str  # "image" (mean ± std over images), "cell" (one value per cell), "group"
    source: str
    default: bool = True


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo(
            "style_loss_base",
            "Style loss to base model (Gram, paired)",
            False,
            "vgg19-gram",
            "baseline",
            "image",
            "paper §4.2 'Style Loss (base model)'; eval_style_loss.get_style_loss",
        ),
        MetricInfo(
            "style_loss_ref",
            "Style loss to reference set (Gram, all pairs)",
            False,
            "vgg19-gram",
            "reference",
            "image",
            "paper §4.2; eval_style_loss.allpair_msd",
        ),
        MetricInfo(
            "style_loss_tutorial",
            "Tutorial style loss to reference set",
            False,
            "vgg19-tutorial-gram",
            "reference",
            "image",
            "PyTorch neural-style tutorial (community convention)",
        ),
        MetricInfo(
            "image_similarity",
            "Image similarity to reference (DINOv2 cosine)",
            True,
            "dinov2",
            "reference",
            "image",
            "paper §4.1 image similarity; eval_image_similarity",
        ),
        MetricInfo(
            "centroid_distance",
            "Squared centroid distance to reference (DINOv2)",
            False,
            "dinov2",
            "reference",
            "cell",
            "paper appendix; eval_image_similarity",
        ),
        MetricInfo(
            "text_alignment",
            "Text-image alignment (CLIP cosine)",
            True,
            "openclip",
            "prompt",
            "image",
            "paper §4.1 text similarity; eval_text_similarity",
        ),
        MetricInfo(
            "clip_score",
            "CLIPScore max(100·cos, 0)",
            True,
            "openclip",
            "prompt",
            "image",
            "torchmetrics CLIPScore convention",
        ),
        MetricInfo(
            "vendi",
            "Diversity (Vendi, DINOv2)",
            True,
            "dinov2",
            "none",
            "cell",
            "paper §4.1 diversity; metrics/vendi.py",
        ),
        MetricInfo(
            "fd_dinov2",
            "Fréchet distance to reference (DINOv2)",
            False,
            "dinov2",
            "reference",
            "group",
            "paper appendix; metrics/fd.py (clean-fid)",
        ),
        MetricInfo(
            "kid_dinov2",
            "KID to reference (DINOv2)",
            False,
            "dinov2",
            "reference",
            "group",
            "clean-fid kernel_distance",
        ),
        MetricInfo(
            "fid_inception",
            "Classic FID (Inception-V3) to reference",
            False,
            "inception",
            "reference",
            "group",
            "clean-fid TF-Inception features; off by default",
            default=False,
        ),
        MetricInfo(
            "inception_score",
            "Inception Score",
            True,
            "inception",
            "none",
            "group",
            "Salimans et al. 2016, StyleGAN2-ADA probabilities; off by default",
            default=False,
        ),
        MetricInfo("psnr_base", "PSNR to base-model image", True, None, "baseline", "image", "scikit-image"),
        MetricInfo("ssim_base", "SSIM to base-model image", True, None, "baseline", "image", "scikit-image"),
    ]
}

DEFAULT_METRICS = tuple(name for name, m in METRICS.items() if m.default)
