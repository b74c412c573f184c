"""The grid spec's fields: how each value is read (one parser per field, shared with the
X/Y/Z axes and the Script's UI) and :data:`SPEC_FIELDS`, the table that both validates a
spec (:meth:`lycoris_eval.grid.spec.GridSpec.from_dict`) and generates its JSON schema
(:data:`lycoris_eval.grid.spec.GRID_JSON_SCHEMA`): a field is accepted exactly when the
schema lists it, because both are read from the same rows.
"""

from __future__ import annotations

import math
import random as _random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lycoris_eval.errors import InputError, SpecError
from lycoris_eval.grid.training import MAX_EVERY, parse_training_run
from lycoris_eval.inputs.infotext import PROMPT_TYPES
from lycoris_eval.inputs.prompts import parse_trigger_mapping

MAX_ABS_WEIGHT = 5.0
MAX_SEED = 2**32 - 1
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_TAG = re.compile(r"^\s*\[(" + "|".join(PROMPT_TYPES) + r")\]\s*", re.IGNORECASE)
DEFAULT_SEEDS: dict[str, int] = {"count": 1, "first": -1}


@dataclass(frozen=True)
class PromptSpec:
    text: str
    type: str = "unspecified"


# -- the value parsers (shared with the X/Y/Z axes and the UI) --------------------------
def parse_weights(value: Any) -> list[float]:
    items = _split(value)
    if not items:
        raise SpecError("weights", "give at least one weight, e.g. 0.4, 0.6, 0.8, 1")
    weights: list[float] = []
    for item in items:
        try:
            weight = float(item)
        except (TypeError, ValueError):
            raise SpecError("weights", f"{item!r} is not a number") from None
        if not math.isfinite(weight) or abs(weight) > MAX_ABS_WEIGHT:
            raise SpecError("weights", f"{item!r} is outside -{MAX_ABS_WEIGHT:g}..{MAX_ABS_WEIGHT:g}")
        if weight in weights:
            raise SpecError("weights", f"{weight:g} is listed twice")
        weights.append(weight)
    return weights


def parse_prompts(value: Any) -> list[PromptSpec]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, (list, tuple)):
        raise SpecError("prompts", "must be a list of strings (or one per line)")
    prompts: list[PromptSpec] = []
    for item in value:
        if not isinstance(item, str):
            raise SpecError("prompts", f"{item!r} is not a string")
        if not item.strip():
            continue
        match = _TAG.match(item)
        ptype = match.group(1).lower() if match else "unspecified"
        text = item[match.end() :].strip() if match else item.strip()
        if not text:
            raise SpecError("prompts", f"{item!r} has a type tag but no text")
        prompt = PromptSpec(text, ptype)
        if prompt in prompts:
            raise SpecError("prompts", f"{item.strip()!r} is listed twice")
        prompts.append(prompt)
    if not prompts:
        raise SpecError("prompts", "give at least one prompt")
    return prompts


def parse_seeds(value: Any, random_seed: Any = None) -> list[int]:
    """A list of integers, ``{"count": n, "first": s}``, or text ``"1, 2, 3"``/``"4 from 100"``.

    ``-1`` (or a first seed of -1) draws a seed once; the drawn value is what is stored.
    """

    rng = random_seed if random_seed is not None else _random.SystemRandom()
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:from|@)\s*(-?\d+)\s*", value)
        value = {"count": int(match.group(1)), "first": int(match.group(2))} if match else _split(value)
    if isinstance(value, Mapping):
        try:
            count, first = int(value.get("count", 1)), int(value.get("first", -1))
        except (TypeError, ValueError):
            raise SpecError("seeds", "count and first must be integers") from None
        if not 1 <= count <= 10_000:
            raise SpecError("seeds", f"count must be 1..10000, got {count}")
        if first == -1:
            first = rng.randrange(0, MAX_SEED - count)
        return [_check_seed(first + i) for i in range(count)]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError("seeds", "give a list of integers or {count, first}")
    seeds: list[int] = []
    for item in value:
        try:
            seed = int(str(item).strip())
        except ValueError:
            raise SpecError("seeds", f"{item!r} is not an integer") from None
        if seed == -1:
            seed = rng.randrange(0, MAX_SEED)
        seed = _check_seed(seed)
        if seed in seeds:
            raise SpecError("seeds", f"{seed} is listed twice")
        seeds.append(seed)
    return seeds


def draws_seeds(value: Any) -> bool:
    """Whether :func:`parse_seeds` draws a random seed for ``value`` (a -1 anywhere)."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:from|@)\s*(-?\d+)\s*", value)
        return int(match.group(2)) == -1 if match else any(v.strip() == "-1" for v in _split(value))
    if isinstance(value, Mapping):
        return str(value.get("first", -1)).strip() == "-1"
    if isinstance(value, (list, tuple)):
        return any(str(v).strip() == "-1" for v in value)
    return False


def _check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise SpecError("seeds", f"{seed} is outside 0..{MAX_SEED}")
    return seed


def _split(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,\n]", value) if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise SpecError("value", f"cannot read {value!r}")


def _names(value: Any, name: str, allow_empty: bool) -> list[str]:
    items = _split(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise SpecError(name, f"{item!r} is not a name")
        if item.strip() in out:
            raise SpecError(name, f"{item.strip()!r} is listed twice")
        out.append(item.strip())
    if not out and not allow_empty:
        raise SpecError(name, "give at least one")
    return out


def _paths(value: Any, name: str) -> list[str]:
    return [str(p) for p in _names(value, name, allow_empty=True)]


def _mapping(value: Any, name: str) -> dict[str, str]:
    if isinstance(value, str):
        try:
            return parse_trigger_mapping([v for v in re.split(r"[\n;]", value) if v.strip()])
        except InputError as exc:
            raise SpecError(name, str(exc)) from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError(name, "must map words to replacement text")
    return dict(value)


def _mapping_any(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(name, "must be an object")
    return dict(value)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise SpecError(name, f"must be true or false, got {value!r}")


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise SpecError(name, "must be a string")
    return value.strip()


def _run_id(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not re.fullmatch(RUN_ID_PATTERN, value):
        raise SpecError("run_id", "letters, digits, '.', '_' and '-' only (it names a folder)")
    return value


# -- the table ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecField:
    """One field of a grid request: how its value is read (``parse(value, random source)``,
    raising :class:`SpecError` naming the field), its value when absent, how the JSON schema
    describes it, and a value it accepts (the schema test sends each one)."""

    name: str
    parse: Callable[[Any, Any], Any]
    default: Callable[[], Any]
    schema: dict[str, Any]
    example: Any
    required: bool = False
    # required unless this other field is given (the schema says so with an anyOf)
    or_else: str | None = None

    def read(self, data: Mapping[str, Any], random_seed: Any = None) -> Any:
        return self.parse(data[self.name] if self.name in data else self.default(), random_seed)


_STRINGS = {"type": "array", "items": {"type": "string"}}
TRAINING_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "as GET /training-runs names it"},
        "every": {"type": "integer", "minimum": 1, "maximum": MAX_EVERY, "description": "every k-th save"},
        "epochs": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "these epochs"},
        "adapters": {**_STRINGS, "description": "the run's adapters in training order (overrides the grouping)"},
    },
}
SPEC_FIELDS: tuple[SpecField, ...] = (
    SpecField(
        "checkpoints",
        lambda v, _r: _names(v, "checkpoints", allow_empty=True),
        list,
        {**_STRINGS, "description": "names as /sdapi/v1/sd-models gives them; empty: the loaded one"},
        ["base-a", "mix-b"],
    ),
    SpecField(
        "adapters",
        lambda v, _r: _names(v, "adapters", allow_empty=True),
        list,
        {**_STRINGS, "description": "names as /sdapi/v1/loras gives them (required unless training_run is given)"},
        ["style_lora"],
        required=True,
        or_else="training_run",
    ),
    SpecField(
        "training_run",
        parse_training_run,
        list,
        {
            "oneOf": [TRAINING_RUN_SCHEMA, {"type": "array", "items": TRAINING_RUN_SCHEMA}],
            "description": "a training run's saved epochs as the adapter dimension, in step order "
            "(after any adapters listed): every save, every k-th counted back from the last, or the "
            "listed epochs; GET /training-runs lists the runs",
        },
        {"name": "style", "every": 2},
    ),
    SpecField(
        "weights",
        lambda v, _r: parse_weights(v),
        lambda: [1.0],
        {"type": "array", "items": {"type": "number"}, "description": "adapter weights; 0 is the baseline"},
        [0.5, 1.0],
    ),
    SpecField(
        "prompts",
        lambda v, _r: parse_prompts(v),
        list,
        {**_STRINGS, "description": "each optionally starting with [train], [trigger], [alter] or [style]"},
        ["[style] a tree"],
        required=True,
    ),
    SpecField(
        "seeds",
        parse_seeds,
        lambda: dict(DEFAULT_SEEDS),
        {
            "oneOf": [
                {"type": "array", "items": {"type": "integer"}},
                {"type": "object", "properties": {"count": {"type": "integer"}, "first": {"type": "integer"}}},
            ],
            "description": "a list, or {count, first}; -1 draws once and is recorded",
        },
        {"count": 2, "first": 7},
    ),
    SpecField(
        "trigger",
        lambda v, _r: _mapping(v, "trigger"),
        dict,
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"sks": "a photo of sks"},
    ),
    SpecField(
        "references",
        lambda v, _r: _paths(v, "references"),
        list,
        {**_STRINGS, "description": "target reference folder (inside the allowed roots)"},
        ["outputs/refs"],
    ),
    SpecField(
        "distractors",
        lambda v, _r: _paths(v, "distractors"),
        list,
        {**_STRINGS, "description": "distractor folders (inside the allowed roots)"},
        ["outputs/doodles"],
    ),
    SpecField("score", lambda v, _r: _bool(v, "score"), lambda: False, {"type": "boolean"}, True),
    SpecField("run_name", lambda v, _r: _text(v, "run_name"), str, {"type": "string"}, "castles"),
    SpecField(
        "run_id",
        lambda v, _r: _run_id(v),
        lambda: None,
        {"type": "string", "description": "resume this run: finished images are kept and skipped"},
        "castles-1",
    ),
    SpecField(
        "base",
        lambda v, _r: _mapping_any(v, "base"),
        dict,
        {"type": "object", "description": "any /sdapi/v1/txt2img fields (negative_prompt, steps, ...)"},
        {"steps": 20, "negative_prompt": "lowres"},
    ),
)


def refuse_unknown(data: Mapping[str, Any], fields: tuple[SpecField, ...]) -> None:
    """:class:`SpecError` on the first key of ``data`` that is not one of ``fields``."""
    known = {f.name for f in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
