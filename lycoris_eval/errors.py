"""Every error a user can see, in one place, and the one policy that maps them to an HTTP
status (:func:`http_status`) and an exit code (:func:`exit_code`). Each message names the
problem and, where possible, the fix. Imports nothing from the package.
"""

from __future__ import annotations


class LycorisEvalError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    status = 500  # HTTP status when it reaches the API


class InputError(LycorisEvalError):
    """Bad arguments or an unusable folder."""

    status = 422


class SpecError(InputError):
    """A field of a request (grid spec, evaluate body, setting) is invalid; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class TooLargeError(SpecError):
    """A request over a documented size limit (count, bytes, pixels)."""

    status = 413


class SpecChangedError(InputError):
    """A run id resumed with a different grid."""


class PathRefused(LycorisEvalError):
    """A path outside the allowed roots."""

    status = 403


class BusyError(InputError):
    """Another evaluation is running (the tab runs one at a time)."""

    status = 409


class BadImageError(LycorisEvalError):
    """One image cannot be used; the evaluation records it and goes on."""

    status = 422


class MissingWeightsError(LycorisEvalError):
    """An encoder's pretrained weights are not on disk and cannot be downloaded."""

    status = 422


class WeightsMismatchError(LycorisEvalError):
    """A weights file does not fit the encoder's architecture."""

    status = 422


class MetricError(LycorisEvalError):
    """A metric cannot be computed from the given features."""

    status = 422


# -- raised by the host while a grid runs: recorded on the image's cell, never fatal --------
class AdapterLoadError(LycorisEvalError):
    """The host generated an image but could not apply the adapter."""


class AdapterNotAppliedError(AdapterLoadError):
    """The host loaded the adapter, but none of its weights matched the layers of the
    checkpoint it was asked for: that (checkpoint, adapter) only, not the adapter's file."""


class CheckpointMismatchError(LycorisEvalError):
    """The host generated with another checkpoint than the one asked for."""


class HostImageError(LycorisEvalError):
    """The host failed on one image (NaNs, out of memory, …)."""


class WebUIUnreachable(LycorisEvalError):
    """A sweep's WebUI does not answer (down, killed, wrong URL): its work goes to the others."""


def http_status(exc: BaseException | None) -> int:
    """422 for the user's input, 403 for refused paths, 409 busy, 500 for anything else (a bug)."""
    return exc.status if isinstance(exc, LycorisEvalError) else 500


def exit_code(exc: BaseException | None) -> int:
    """The command line's code: 2 for the user's input or environment, 1 for a bug."""
    return 2 if isinstance(exc, LycorisEvalError) else 1
