"""Every error a user can see, in one place, and the one policy that maps them to an HTTP
status (:func:`http_status`) and an exit code (:func:`exit_code`): each class carries its
``status`` (HTTP) and ``exit_code`` (command line), and each error the ``field`` it names
(``None`` when it names none). Each message names the problem and, where possible, the fix.

A message that names an option (``--reference`` at the command line, the "target reference
folder" box in the tab, ``references`` in the API) is a :class:`Message`: written once, here,
with the option as a placeholder, and put in the words of each front end by
:meth:`LycorisEvalError.words` (``str(exc)`` is the command line's). Front ends:
``cli`` (``python -m lycoris_eval``), ``tab`` (the standalone Evaluate tab,
``python -m lycoris_eval ui``), ``webui`` (the tab and Script inside the WebUI) and ``api``
(``/lycoris-eval/v1``, served by the WebUI). Imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FRONT_ENDS = ("cli", "tab", "webui", "api")


@dataclass(frozen=True)
class Named:
    """An option as one front end names it: ``name`` in a sentence, ``give`` how to give it.
    In a :class:`Message` template ``{reference}`` is the name, ``{reference.give}`` the how."""

    name: str
    give: str

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


WEBUI_RANDOM_WEIGHTS = "Settings → LyCORIS Eval → Dry run: random scoring weights"

# option (a build_config keyword) -> its name in each front end
OPTIONS: dict[str, dict[str, Named]] = {
    "reference": {
        "cli": Named("--reference", "pass --reference DIR"),
        "tab": Named("target reference folder", "fill in the target reference folder"),
        "webui": Named("target reference folder", "fill in the target reference folder"),
        "api": Named("references", "give one folder in references"),
    },
    "training_runs": {
        "cli": Named("--training-run", "group them with --training-run RUN=ADAPTER,ADAPTER,..."),
        "tab": Named("training runs", "group them in the training runs box (RUN=ADAPTER,ADAPTER,...)"),
        "webui": Named("training run", "pick a training run in the grid"),
        "api": Named("training_runs", "group them with training_runs {RUN: [ADAPTER, ...]}"),
    },
    "random_weights": {
        "cli": Named("--random-weights", "use --random-weights"),
        "tab": Named("--random-weights", "start the app with --random-weights"),  # python -m lycoris_eval ui
        "webui": Named(WEBUI_RANDOM_WEIGHTS, f"turn on {WEBUI_RANDOM_WEIGHTS}"),
        "api": Named(WEBUI_RANDOM_WEIGHTS, f"turn on {WEBUI_RANDOM_WEIGHTS}"),  # the API's host's setting
    },
}


def option(name: str, front: str) -> Named:
    """How ``front`` names the option ``name`` (a key of :data:`OPTIONS`)."""
    if front not in FRONT_ENDS:
        raise ValueError(f"unknown front end {front!r}; one of {', '.join(FRONT_ENDS)}")
    return OPTIONS[name][front]


def field_label(name: str | None, front: str) -> str | None:
    """A field as ``front`` names it: an option of :data:`OPTIONS` by that front end's name
    (``reference`` is ``references`` in the API), any other field as it is."""
    return option(name, front).name if name in OPTIONS else name


@dataclass(frozen=True)
class Message:
    """A sentence that names options: ``template`` holds ``{option}``/``{option.give}`` for the
    keys of :data:`OPTIONS` and ``{key}`` for ``values`` (the user's data, never parsed as a
    template). ``str()`` gives the command line's words."""

    template: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def words(self, front: str = "cli") -> str:
        return self.template.format_map({**{k: option(k, front) for k in OPTIONS}, **self.values})

    def __str__(self) -> str:
        return self.words("cli")


# -- the messages that name an option, each worded once ----------------------------------
DISTRACTORS_NEED_REFERENCE = Message("distractor sets need a target reference set ({reference})")
METRICS_NEED_REFERENCE = Message("every selected metric needs a reference set; {reference.give}")
NO_TRAINING_RUN = Message(
    "no training run in these images: it takes two or more saved epochs of one training, recognised "
    "from their metadata or file names (name-000004, name_e4, name-step00001000); {training_runs.give}"
)
ADAPTER_AND_EPOCH_AXES = Message(
    "the adapter axis and the epoch axis both choose the cell's adapter: keep one of them (to compare "
    "a run's saves with other adapters, pick both in the LyCORIS Eval Script: Adapters and Training run)"
)
RANDOM_WEIGHTS_WARNING = Message(
    "RANDOM WEIGHTS: encoders were randomly initialised ({random_weights}); "
    "these numbers test the pipeline and mean nothing about the images."
)
DRY_RUN_HINT = "For a dry run without real weights {random_weights.give}; its numbers mean nothing."


def missing_weights(details: list[str]) -> Message:
    """Pretrained weights not found: one line per encoder (where to put which file), then how
    to do a dry run without them."""
    return Message("{details} " + DRY_RUN_HINT, {"details": "\n".join(details)})


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class LycorisEvalError(Exception):
    """Base class: a problem with the user's input or environment, not a bug.

    ``message``: a plain sentence or a :class:`Message`; ``field``: the request field or option
    it is about, if any (the API names it in its answer; the message need not)."""

    status = 500  # HTTP status when it reaches the API
    exit_code = 2  # the command line's exit code

    def __init__(self, message: str | Message = "", *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(self.words("cli"))

    def words(self, front: str = "cli") -> str:
        """The message in the words of ``front`` (one of :data:`FRONT_ENDS`)."""
        message = self.message
        return message.words(front) if isinstance(message, Message) else str(message)

    def __reduce__(self) -> Any:  # pickled whole (a sweep's Ray workers), whatever __init__ takes
        return _restore, (type(self), self.args, self.__dict__)


class InputError(LycorisEvalError):
    """Bad arguments or an unusable folder."""

    status = 422


class NotFoundError(InputError):
    """An unknown run or job, or a run that has no scores yet."""

    status = 404


class SpecError(InputError):
    """A field of a request (grid spec, evaluate body, setting) is invalid; ``field`` names it
    and the message starts with it."""

    def __init__(self, field_name: str, message: str | Message) -> None:
        super().__init__(message, field=field_name)

    def words(self, front: str = "cli") -> str:
        return f"{field_label(self.field, front)}: {super().words(front)}"


class TooLargeError(SpecError):
    """A request over a documented size limit (count, bytes, pixels)."""

    status = 413


class SpecChangedError(InputError):
    """A run id resumed with a different grid."""


class PathRefused(LycorisEvalError):
    """A path outside the allowed roots."""

    status = 403


class Unauthorized(LycorisEvalError):
    """The API's HTTP Basic credentials (the WebUI's ``--api-auth``) are missing or wrong."""

    status = 401


class BusyError(InputError):
    """Another evaluation is running (the tab runs one at a time)."""

    status = 409


class BadImageError(LycorisEvalError):
    """One image cannot be used; the evaluation records it and goes on."""

    status = 422


class MissingWeightsError(LycorisEvalError):
    """Encoders' pretrained weights are not on disk and cannot be downloaded: ``details``
    says which file each needs and where it goes; the message ends with the dry-run hint."""

    status = 422

    def __init__(self, details: str | list[str]) -> None:
        self.details = [details] if isinstance(details, str) else list(dict.fromkeys(details))
        super().__init__(missing_weights(self.details))


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
    """The error's own ``status``; 500 for anything else (a bug)."""
    return exc.status if isinstance(exc, LycorisEvalError) else 500


def exit_code(exc: BaseException | None) -> int:
    """The error's own ``exit_code`` (2 for the user's input or environment); 1 for a bug."""
    return exc.exit_code if isinstance(exc, LycorisEvalError) else 1


def words(exc: BaseException, front: str) -> str:
    """Any exception's message in ``front``'s words (a bug's as Python wrote it)."""
    return exc.words(front) if isinstance(exc, LycorisEvalError) else str(exc)
