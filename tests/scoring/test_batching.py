"""Batch sizes from free device memory (encoders/batching.py) and how encode() uses them:
the arithmetic with made-up free memory, the CUDA path with a faked ``mem_get_info``,
and the out-of-memory retry. CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lycoris_eval.scoring.encoders import TutorialGramEncoder, VggGramEncoder
from lycoris_eval.scoring.encoders.base import EncoderOptions
from lycoris_eval.scoring.encoders.batching import PER_IMAGE_BYTES, MiB, batch_size_for, image_bytes
from tests.helpers import pattern

IMAGES = [pattern(i) for i in range(1, 6)]


def options() -> EncoderOptions:
    return EncoderOptions(device="cpu", random_weights=True, allow_download=False)


# ---- batch sizes from free memory ------------------------------------------------------
@pytest.fixture
def per_image(monkeypatch):
    """A made-up encoder costing 100 MiB per 100×100 image."""
    monkeypatch.setitem(PER_IMAGE_BYTES, "made-up", (100 * MiB, 100 * 100))
    return "made-up"


def test_batch_size_from_free_memory_arithmetic(per_image):
    assert image_bytes(per_image, 100) == 100 * MiB
    assert image_bytes(per_image, (200, 100)) == 200 * MiB  # scales with pixels
    # 10 GiB free × 0.6 = 6144 MiB: 61 images of 100 MiB, capped by what was asked
    assert batch_size_for(per_image, 100, 10 * 1024 * MiB, 8) == 8
    assert batch_size_for(per_image, 100, 10 * 1024 * MiB, 500) == 61
    assert batch_size_for(per_image, 100, 10 * 1024 * MiB, 500, maximum=32) == 32
    # 1 GiB free: 614.4 MiB usable -> 6 images; 3 at twice the pixels
    assert batch_size_for(per_image, 100, 1024 * MiB, 16) == 6
    assert batch_size_for(per_image, (200, 100), 1024 * MiB, 16) == 3
    # a reserve comes off first: (1024 - 524) × 0.6 = 300 MiB -> 3
    assert batch_size_for(per_image, 100, 1024 * MiB, 16, reserve_bytes=524 * MiB) == 3
    assert batch_size_for(per_image, 100, 1024 * MiB, 16, margin=0.9) == 9
    # never below one, even with nothing free
    assert batch_size_for(per_image, 100, 0, 16) == 1
    assert batch_size_for(per_image, 100, 50 * MiB, 16, reserve_bytes=100 * MiB) == 1
    # no free-memory figure (the CPU): the configured batch unchanged
    assert batch_size_for(per_image, 100, None, 8) == 8
    with pytest.raises(ValueError, match="at least 1"):
        batch_size_for(per_image, 100, 1024 * MiB, 0)


def test_every_encoder_has_a_per_image_estimate():
    from lycoris_eval.scoring.encoders import ENCODERS

    assert set(ENCODERS) <= set(PER_IMAGE_BYTES)


def test_batch_on_cuda_follows_free_memory_and_lifts_the_cpu_cap(monkeypatch):
    tutorial = TutorialGramEncoder(options(), image_size=64)
    tutorial.options.batch_size = 8
    assert tutorial.batch_size == 2  # CPU: capped by max_batch (host RAM)
    tutorial.device = "cuda:0"  # not loaded: batch_for only asks for free memory
    assert tutorial.batch_size == 8
    free = {"bytes": 64 * 1024 * MiB}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 * 1024 * MiB))
    assert tutorial.batch_for((3, 512, 512)) == 8
    free["bytes"] = 1024 * MiB
    assert tutorial.batch_for((3, 512, 512)) == batch_size_for("vgg19-tutorial-gram", (512, 512), 1024 * MiB, 8)
    assert 1 <= tutorial.batch_for((3, 512, 512)) < 8


def test_encode_batches_by_batch_for(monkeypatch):
    encoder = VggGramEncoder(options(), image_size=64)
    encoder.options.batch_size = 8
    monkeypatch.setattr(encoder, "batch_for", lambda shape: 2)
    seen = []
    original = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda batch: seen.append(len(batch)) or original(batch))
    out = encoder.encode([encoder.preprocess(im) for im in IMAGES])
    assert out.shape[0] == 5 and seen == [2, 2, 1]


def test_encode_halves_the_batch_when_the_device_runs_out_of_memory(monkeypatch):
    encoder = VggGramEncoder(options(), image_size=64)
    tensors = [encoder.preprocess(im) for im in IMAGES]
    expected = encoder.encode(tensors)
    monkeypatch.setattr(encoder, "batch_for", lambda shape: 8)
    seen = []
    original = encoder.forward

    def short_of_memory(batch):
        seen.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(batch)

    monkeypatch.setattr(encoder, "forward", short_of_memory)
    np.testing.assert_allclose(encoder.encode(tensors), expected, rtol=1e-5, atol=1e-9)
    assert seen == [5, 4, 2, 2, 1]
    monkeypatch.setattr(encoder, "forward", lambda batch: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("oom")))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # one image that does not fit is the device's error
        encoder.encode(tensors[:1])
