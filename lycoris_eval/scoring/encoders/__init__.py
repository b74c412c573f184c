"""Encoder registry: one place that knows every encoder by name."""

from __future__ import annotations

from typing import Any

from lycoris_eval.errors import InputError
from lycoris_eval.scoring.encoders.base import LOADED as LOADED_ENCODERS
from lycoris_eval.scoring.encoders.base import Encoder, EncoderOptions, is_pooled, pick_device, pooled, release_pool
from lycoris_eval.scoring.encoders.clip import OpenClipEncoder
from lycoris_eval.scoring.encoders.dinov2 import Dinov2Encoder
from lycoris_eval.scoring.encoders.inception import InceptionEncoder
from lycoris_eval.scoring.encoders.vgg import TutorialGramEncoder, VggGramEncoder

ENCODERS: dict[str, type[Encoder]] = {
    VggGramEncoder.name: VggGramEncoder,
    TutorialGramEncoder.name: TutorialGramEncoder,
    OpenClipEncoder.name: OpenClipEncoder,
    Dinov2Encoder.name: Dinov2Encoder,
    InceptionEncoder.name: InceptionEncoder,
}


def make_encoder(name: str, options: EncoderOptions, **kwargs: Any) -> Encoder:
    try:
        cls = ENCODERS[name]
    except KeyError:
        raise InputError(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}") from None
    return cls(options, **kwargs)


__all__ = [
    "ENCODERS",
    "Encoder",
    "LOADED_ENCODERS",
    "EncoderOptions",
    "Dinov2Encoder",
    "InceptionEncoder",
    "OpenClipEncoder",
    "TutorialGramEncoder",
    "VggGramEncoder",
    "is_pooled",
    "make_encoder",
    "pooled",
    "release_pool",
    "pick_device",
]
