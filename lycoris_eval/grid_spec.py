"""The grid specification: one validated model for the Script's UI, the HTTP API and the
X/Y/Z axes, and its expansion into a plan of images.

Plain dataclasses (no pydantic) so it behaves the same on A1111 (pydantic 1) and Forge
(pydantic 2). :meth:`GridSpec.from_dict` validates and raises :class:`SpecError` naming
the field; the API turns that into a 422.

Semantics (issue "Grid runner"): checkpoints are the outer loop (each loaded once); for
each prompt × seed the no-adapter baseline is generated once, then every adapter × weight
by appending ``<lora:NAME:W>`` to the prompt. A weight of 0 is the baseline and is not
generated twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InputError, SpecError
from .infotext import PROMPT_TYPES

MAX_ABS_WEIGHT = 5.0
MAX_SEED = 2**32 - 1
_TAG = re.compile(r"^\s*\[(" + "|".join(PROMPT_TYPES) + r")\]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PromptSpec:
    text: str
    type: str = "unspecified"


@dataclass
class GridSpec:
    checkpoints: list[str]
    adapters: list[str]
    weights: list[float]
    prompts: list[PromptSpec]
    seeds: list[int]
    trigger: dict[str, str] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)
    score: bool = False
    run_name: str = ""
    run_id: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    # True when a seed was drawn from -1 while parsing: resuming such a spec adopts the
    # seeds stored in the run (they were drawn once, on the first run).
    seeds_drawn: bool = field(default=False, compare=False, repr=False)

    # -- validation ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], random_seed: Any = None) -> GridSpec:
        """Validate a dict (API body, UI values, JSON). ``random_seed`` draws ``-1`` seeds."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", "must be a JSON object")
        known = {f for f in cls.__dataclass_fields__} - {"seeds_drawn"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
        spec = cls(
            checkpoints=_names(data.get("checkpoints", []), "checkpoints", allow_empty=True),
            adapters=_names(data.get("adapters", []), "adapters", allow_empty=False),
            weights=parse_weights(data.get("weights", [1.0])),
            prompts=parse_prompts(data.get("prompts", [])),
            seeds=parse_seeds(data.get("seeds", {"count": 1, "first": -1}), random_seed),
            seeds_drawn=_draws_seeds(data.get("seeds", {"count": 1, "first": -1})),
            trigger=_mapping(data.get("trigger", {}), "trigger"),
            references=_paths(data.get("references", []), "references"),
            distractors=_paths(data.get("distractors", []), "distractors"),
            score=_bool(data.get("score", False), "score"),
            run_name=_text(data.get("run_name", ""), "run_name"),
            run_id=_run_id(data.get("run_id")),
            base=_mapping_any(data.get("base", {}), "base"),
        )
        for key in ("prompt", "seed", "script_name", "script_args", "alwayson_scripts"):
            if key in spec.base:
                raise SpecError(f"base.{key}", "is set by the grid itself; use prompts/seeds instead")
        return spec

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("seeds_drawn")
        data["prompts"] = [(f"[{p.type}] " if p.type != "unspecified" else "") + p.text for p in self.prompts]
        return data

    def identity(self) -> dict[str, Any]:
        """What must not change under one run id (names and labels excluded)."""
        data = self.to_dict()
        for key in ("run_name", "run_id", "score", "references", "distractors", "trigger"):
            data.pop(key)
        return data

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def difference(self, other: GridSpec) -> list[str]:
        mine, theirs = self.identity(), other.identity()
        return [
            f"{key}: {theirs.get(key)!r} -> {mine.get(key)!r}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        ]

    def with_more_seeds(self, count: int) -> GridSpec:
        """The same grid with ``count`` more seeds after its largest (skipping any it has):
        resuming the run under the same id makes only the new images."""
        if not 1 <= count <= 1000:
            raise SpecError("seeds", f"add 1..1000 seeds, got {count}")
        seeds, candidate = list(self.seeds), max(self.seeds, default=-1) + 1
        while len(seeds) < len(self.seeds) + count:
            if candidate > MAX_SEED:
                raise SpecError("seeds", f"no room for {count} more seeds below {MAX_SEED}")
            if candidate not in seeds:
                seeds.append(candidate)
            candidate += 1
        return dataclasses.replace(self, seeds=seeds, seeds_drawn=False)

    def only_adds_seeds(self, previous: GridSpec) -> bool:
        """Whether this spec is ``previous`` with seeds appended (and nothing else changed)."""
        mine, theirs = self.identity(), previous.identity()
        mine.pop("seeds"), theirs.pop("seeds")
        n = len(previous.seeds)
        return mine == theirs and len(self.seeds) > n and self.seeds[:n] == previous.seeds

    # -- plan --------------------------------------------------------------------------
    def plan(self, checkpoints: Sequence[str] | None = None) -> list[GridJob]:
        """Every image of the grid, checkpoints outermost, baseline first in each row."""
        jobs: list[GridJob] = []
        for checkpoint in checkpoints if checkpoints is not None else self.checkpoints or [""]:
            for p_index, prompt in enumerate(self.prompts):
                for seed in self.seeds:
                    jobs.append(GridJob(checkpoint, None, 0.0, p_index, prompt, seed))
                    for adapter in self.adapters:
                        for weight in self.weights:
                            if weight == 0:
                                continue
                            jobs.append(GridJob(checkpoint, adapter, weight, p_index, prompt, seed))
        return jobs

    def count(self) -> int:
        nonzero = sum(1 for w in self.weights if w != 0)
        per_row = 1 + len(self.adapters) * nonzero
        return max(1, len(self.checkpoints)) * len(self.prompts) * len(self.seeds) * per_row


@dataclass(frozen=True)
class GridJob:
    checkpoint: str
    adapter: str | None
    weight: float
    prompt_index: int
    prompt: PromptSpec
    seed: int

    @property
    def key(self) -> str:
        """Stable identity of one image inside a run (used to resume)."""
        adapter = self.adapter or "-"
        return f"{self.checkpoint}|{adapter}|{self.weight:g}|p{self.prompt_index}|{self.seed}"

    def prompt_text(self, prefix: str = "") -> str:
        text = ", ".join(part for part in (prefix.strip(" ,"), self.prompt.text) if part)
        if self.adapter is None:
            return text
        return f"{text}, <lora:{self.adapter}:{self.weight:g}>"

    def label(self) -> str:
        return "baseline" if self.adapter is None else f"{self.adapter} @{self.weight:g}"


# -- parsing helpers (shared with the X/Y/Z axes and the UI) ----------------------------
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
    import random as _random

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


def _draws_seeds(value: Any) -> bool:
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
        from .prompts import parse_trigger_mapping

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
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", value):
        raise SpecError("run_id", "letters, digits, '.', '_' and '-' only (it names a folder)")
    return value


_STRINGS = {"type": "array", "items": {"type": "string"}}
GRID_JSON_SCHEMA: dict[str, Any] = {
    "title": "GridSpec",
    "type": "object",
    "additionalProperties": False,
    "required": ["adapters", "prompts"],
    "properties": {
        "checkpoints": {**_STRINGS, "description": "names as /sdapi/v1/sd-models gives them; empty: the loaded one"},
        "adapters": {**_STRINGS, "description": "names as /sdapi/v1/loras gives them"},
        "weights": {"type": "array", "items": {"type": "number"}, "description": "adapter weights; 0 is the baseline"},
        "prompts": {**_STRINGS, "description": "each optionally starting with [train], [trigger], [alter] or [style]"},
        "seeds": {
            "oneOf": [
                {"type": "array", "items": {"type": "integer"}},
                {"type": "object", "properties": {"count": {"type": "integer"}, "first": {"type": "integer"}}},
            ],
            "description": "a list, or {count, first}; -1 draws once and is recorded",
        },
        "trigger": {"type": "object", "additionalProperties": {"type": "string"}},
        "references": {**_STRINGS, "description": "target reference folder (inside the allowed roots)"},
        "distractors": {**_STRINGS, "description": "distractor folders (inside the allowed roots)"},
        "score": {"type": "boolean"},
        "run_name": {"type": "string"},
        "run_id": {"type": "string", "description": "resume this run: finished images are kept and skipped"},
        "base": {"type": "object", "description": "any /sdapi/v1/txt2img fields (negative_prompt, steps, ...)"},
        "confirm_large": {"type": "boolean", "description": "allow grids over the size limit"},
    },
}
