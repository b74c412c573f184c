"""Values of a grid's ``base`` txt2img settings, checked before any job exists.

The WebUI's page cannot send a value outside its sliders, but its API accepts anything
(``steps: -1``, a 10⁶×10⁶ image, an unknown sampler are all answered and reach the
sampler or the allocator). A grid multiplies every such mistake by its size, so each
value is checked against the limits of the v1.10.1 page (``modules/ui.py`` sliders) and
the vocabularies the host knows (samplers, schedulers, upscalers). Pure: the host's
vocabularies come in as :class:`HostVocabulary`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lycoris_eval.errors import SpecError

MAX_PROMPT_CHARS = 10_000  # a prompt is a few hundred tokens; 10k characters is far beyond any real one

# name -> (min, max, step or None, integer?) as the v1.10.1 txt2img page's sliders allow
RANGES: dict[str, tuple[float, float, float | None, bool]] = {
    "steps": (1, 150, None, True),
    "width": (64, 2048, 8, True),
    "height": (64, 2048, 8, True),
    "cfg_scale": (1.0, 30.0, None, False),
    "denoising_strength": (0.0, 1.0, None, False),
    "batch_size": (1, 8, None, True),
    "n_iter": (1, 100, None, True),
    "hr_scale": (1.0, 4.0, None, False),
    "hr_second_pass_steps": (0, 150, None, True),
    "hr_resize_x": (0, 2048, 8, True),
    "hr_resize_y": (0, 2048, 8, True),
    "clip_skip": (1, 12, None, True),
    "subseed_strength": (0.0, 1.0, None, False),
}
TEXT_FIELDS = ("prompt_prefix", "negative_prompt", "hr_prompt", "hr_negative_prompt")
BOOL_FIELDS = ("enable_hr", "restore_faces", "tiling", "override_settings_restore_afterwards", "do_not_save_grid")


@dataclass(frozen=True)
class HostVocabulary:
    """Names the host accepts; ``None`` where the host could not say (then not checked)."""

    samplers: Sequence[str] | None = None
    schedulers: Sequence[str] | None = None
    upscalers: Sequence[str] | None = None


def check_base_values(base: Mapping[str, Any], vocabulary: HostVocabulary | None = None) -> None:
    """Raise :class:`SpecError` naming ``base.FIELD``, the value and what is allowed."""
    vocabulary = vocabulary or HostVocabulary()
    for name, value in base.items():
        field = f"base.{name}"
        if name in RANGES:
            _check_number(field, value, *RANGES[name])
        elif name in TEXT_FIELDS:
            if not isinstance(value, str):
                raise SpecError(field, f"must be text, got {type(value).__name__}")
            if len(value) > MAX_PROMPT_CHARS:
                raise SpecError(field, f"is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
        elif name in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise SpecError(field, f"must be true or false, got {value!r}")
        elif name == "sampler_name":
            _check_name(field, value, vocabulary.samplers, "sampler")
        elif name in ("scheduler",):
            _check_name(field, value, vocabulary.schedulers, "scheduler")
        elif name == "hr_upscaler":
            _check_name(field, value, vocabulary.upscalers, "upscaler")
        elif name == "override_settings" and not isinstance(value, Mapping):
            raise SpecError(field, "must be an object of setting names to values")


def check_prompt_lengths(prompts: Sequence[str]) -> None:
    for text in prompts:
        if len(text) > MAX_PROMPT_CHARS:
            raise SpecError("prompts", f"a prompt is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}")


def _check_number(field: str, value: Any, low: float, high: float, step: float | None, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(field, f"must be finite, got {value!r}")
    if integer and value != int(value):
        raise SpecError(field, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise SpecError(field, f"{value:g} is outside {low:g}..{high:g}")
    if step is not None and value and value % step:
        raise SpecError(field, f"{value:g} is not a multiple of {step:g}")


def _check_name(field: str, value: Any, known: Sequence[str] | None, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, f"must be a {what} name, got {value!r}")
    if known is None:
        return
    lowered = {k.lower() for k in known}
    if value.lower() in lowered:
        return
    close = difflib.get_close_matches(value, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known)[:20])}"
    raise SpecError(field, f"unknown {what} {value!r}{hint}")
