"""Errors a user sees. Each names the problem and, where possible, the fix."""

from __future__ import annotations


class LycorisEvalError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class InputError(LycorisEvalError):
    """Bad arguments or an unusable folder."""


class BadImageError(LycorisEvalError):
    """One image cannot be used; the evaluation records it and goes on."""


class MissingWeightsError(LycorisEvalError):
    """An encoder's pretrained weights are not on disk and cannot be downloaded."""


class WeightsMismatchError(LycorisEvalError):
    """A weights file does not fit the encoder's architecture."""


class MetricError(LycorisEvalError):
    """A metric cannot be computed from the given features."""
