"""Feature extraction with the cache: decode each image at most once, feed every encoder.

:class:`FeatureExtractor` takes a chunk of image records and the encoders wanted, looks
each (image, encoder) up in the cache, decodes only the images that miss somewhere (or
whose pixels are needed), runs every encoder on the decoded images and stores the
results. Images that fail to decode, or whose features are NaN/inf, are reported back
with the reason and left out; nothing else in the chunk is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lycoris_eval.errors import BadImageError
from lycoris_eval.inputs.images import ImageRecord, decode_image
from lycoris_eval.scoring.cache import FeatureCache, NullCache
from lycoris_eval.scoring.encoders import Encoder


@dataclass
class ChunkResult:
    features: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # encoder -> index -> vector
    pixels: dict[int, np.ndarray] = field(default_factory=dict)  # index -> HxWx3 uint8
    failed: dict[int, str] = field(default_factory=dict)  # index -> reason


class FeatureExtractor:
    def __init__(self, encoders: dict[str, Encoder], cache: FeatureCache | NullCache) -> None:
        self.encoders = encoders
        self.cache = cache
        self.fingerprints = {name: enc.fingerprint() for name, enc in encoders.items()}
        self.encoded = {name: 0 for name in encoders}

    def run(
        self,
        records: Sequence[ImageRecord],
        encoder_names: Sequence[str],
        need_pixels: set[int] | None = None,
        on_batch: Callable[[float], None] | None = None,
    ) -> ChunkResult:
        """Features of ``records`` for each encoder (cache first, each image decoded once).
        ``on_batch`` gets the share of this call's encoder work done after each forward pass,
        so progress moves per batch without changing which images share a batch."""
        need_pixels = need_pixels or set()
        result = ChunkResult(features={name: {} for name in encoder_names})
        missing: dict[str, list[int]] = {name: [] for name in encoder_names}
        for index, record in enumerate(records):
            for name in encoder_names:
                vector = self.cache.get(self.fingerprints[name], record.sha256)
                if vector is None:
                    missing[name].append(index)
                else:
                    result.features[name][index] = vector
        to_decode = sorted({i for idx in missing.values() for i in idx} | need_pixels)
        decoded: dict[int, Any] = {}
        for index in to_decode:
            try:
                decoded[index] = decode_image(records[index])
            except BadImageError as exc:
                result.failed[index] = str(exc)
            finally:
                records[index].release_bytes()
        for index in need_pixels:
            if index in decoded:
                result.pixels[index] = np.asarray(decoded[index], dtype=np.uint8)
        work = sum(len([i for i in missing[name] if i in decoded]) for name in encoder_names)
        worked = 0
        for name in encoder_names:
            todo = [i for i in missing[name] if i in decoded]
            if not todo:
                continue
            encoder = self.encoders[name]
            step = encoder.batch_size
            vectors = []
            for start in range(0, len(todo), step):  # preprocess per batch: 512 px tensors are 3 MiB each
                vectors.extend(encoder.encode([encoder.preprocess(decoded[i]) for i in todo[start : start + step]]))
                worked += len(todo[start : start + step])
                if on_batch is not None:
                    on_batch(worked / work)
            self.encoded[name] += len(todo)
            for index, vector in zip(todo, vectors):
                if not np.all(np.isfinite(vector)):
                    result.failed[index] = f"{records[index].path.name}: {name} produced NaN/inf features"
                    continue
                self.cache.put(self.fingerprints[name], records[index].sha256, vector)
                result.features[name][index] = vector
        for index in result.failed:
            for per_encoder in result.features.values():
                per_encoder.pop(index, None)
            result.pixels.pop(index, None)
        return result
