"""Batch sizes from free device memory (CUDA).

:func:`batch_size_for` is pure arithmetic: the free bytes (``torch.cuda.mem_get_info``,
after the model is loaded), less a reserve, times a safety margin, divided by what one
image costs during a forward pass, clamped to ``[1, requested]`` (``requested`` is the
user's batch size, the cap) and to :data:`MAX_BATCH`. Without a free-memory figure (the
CPU) the requested batch is returned unchanged.

The per-image costs are peak bytes of the tensors one more image keeps alive during a
forward pass, measured in fp32 on the CPU with a tensor-lifetime tracker
(``benchmarks/gpu_ready.py batchmem``) and rounded up. fp16/bf16 autocast roughly halves
them; we keep the fp32 figure (smaller batches, never an out-of-memory) and a margin for
what the measurement cannot see (cuDNN workspaces, allocator fragmentation). Should a
batch still run out of memory, ``Encoder.encode`` halves it and retries.
"""

from __future__ import annotations

import math

MiB = 2**20
# Share of the free memory (after the reserve) a batch may use.
SAFETY_MARGIN = 0.6
MAX_BATCH = 64
# encoder name -> (peak bytes per image, at this many input pixels); costs scale with pixels
PER_IMAGE_BYTES: dict[str, tuple[int, int]] = {
    "vgg19-gram": (72 * MiB, 224 * 224),
    "vgg19-tutorial-gram": (336 * MiB, 512 * 512),
    "openclip": (24 * MiB, 224 * 224),
    "dinov2": (24 * MiB, 224 * 224),
    "inception": (40 * MiB, 299 * 299),
}
DEFAULT_PER_IMAGE = (400 * MiB, 512 * 512)  # an encoder without a measured figure


def image_bytes(encoder_name: str, image_hw: tuple[int, int] | int) -> int:
    """Estimated peak bytes one image of ``image_hw`` (H, W; an int is square) adds."""
    h, w = (image_hw, image_hw) if isinstance(image_hw, int) else image_hw
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    bytes_at, pixels_at = PER_IMAGE_BYTES.get(encoder_name, DEFAULT_PER_IMAGE)
    return math.ceil(bytes_at * (h * w) / pixels_at)


def batch_size_for(
    encoder_name: str,
    image_hw: tuple[int, int] | int,
    free_bytes: int | None,
    requested: int,
    *,
    reserve_bytes: int = 0,
    margin: float = SAFETY_MARGIN,
    maximum: int = MAX_BATCH,
) -> int:
    """The batch that fits ``free_bytes`` for ``encoder_name`` at ``image_hw``.

    ``requested`` is the user's batch size and the upper bound; ``free_bytes`` ``None``
    (no device memory figure: the CPU) returns it unchanged. Always at least 1: a
    single image that does not fit is the device's out-of-memory error to report.
    """
    if requested < 1:
        raise ValueError(f"requested batch size must be at least 1, got {requested}")
    if free_bytes is None:
        return requested
    usable = max(0.0, (free_bytes - reserve_bytes) * margin)
    fits = int(usable // image_bytes(encoder_name, image_hw))
    return max(1, min(requested, maximum, fits))
