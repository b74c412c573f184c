"""The grid specification: one validated model for the Script's UI, the HTTP API and the
X/Y/Z axes, and its expansion into a plan of images.

Plain dataclasses (no pydantic) so it behaves the same on A1111 (pydantic 1) and Forge
(pydantic 2). :meth:`GridSpec.from_dict` validates against the field table
(:data:`lycoris_eval.grid.fields.SPEC_FIELDS`) and raises :class:`SpecError` naming the
field; the API turns that into a 422. A request (POST /grid, the Script, a sweep's spec
file) is the spec's fields plus ``confirm_large``: :func:`parse_grid_request` reads it,
:func:`parse_confirm_large` is the one reading of that flag, and :data:`GRID_JSON_SCHEMA` is
generated from the same table, so it lists exactly what the validator accepts.

Semantics (issue "Grid runner"): checkpoints are the outer loop (each loaded once); for
each prompt × seed the no-adapter baseline is generated once, then every adapter × weight
by appending ``<lora:NAME:W>`` to the prompt. A weight of 0 is the baseline and is not
generated twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.fields import (
    DEFAULT_SEEDS,
    MAX_ABS_WEIGHT,
    MAX_SEED,
    SPEC_FIELDS,
    PromptSpec,
    SpecField,
    draws_seeds,
    parse_prompts,
    parse_seeds,
    parse_weights,
    refuse_unknown,
)

__all__ = [
    "GRID_JSON_SCHEMA",
    "MAX_ABS_WEIGHT",
    "MAX_SEED",
    "REQUEST_FIELDS",
    "GridJob",
    "GridSpec",
    "PromptSpec",
    "SpecError",
    "parse_confirm_large",
    "parse_grid_request",
    "parse_prompts",
    "parse_seeds",
    "parse_weights",
]


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
    # a training run's saves as the adapter dimension (grid/training.py): consumed when the
    # names are checked against the host's, which puts its adapters into ``adapters``
    training_run: list[dict[str, Any]] = field(default_factory=list)
    # the training runs this grid makes (TrainingRun.to_dict(), cut to its adapters), found
    # then too; the manifest's ``training_runs`` (not a field of the request)
    training_runs: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)
    # True when a seed was drawn from -1 while parsing: resuming such a spec adopts the
    # seeds stored in the run (they were drawn once, on the first run).
    seeds_drawn: bool = field(default=False, compare=False, repr=False)

    # -- validation ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], random_seed: Any = None) -> GridSpec:
        """Validate a dict (a stored manifest's spec, UI values) against :data:`SPEC_FIELDS`;
        ``random_seed`` draws ``-1`` seeds. A request that may carry ``confirm_large`` too
        (API body, JSON spec, sweep file) goes through :func:`parse_grid_request`."""
        if not isinstance(data, Mapping):
            raise SpecError("spec", "must be a JSON object")
        refuse_unknown(data, SPEC_FIELDS)
        values = {f.name: f.read(data, random_seed) for f in SPEC_FIELDS}
        spec = cls(**values, seeds_drawn=draws_seeds(data.get("seeds", DEFAULT_SEEDS)))
        if not spec.adapters and not spec.training_run:
            raise SpecError("adapters", "give at least one adapter, or a training_run")
        for key in ("prompt", "seed", "script_name", "script_args", "alwayson_scripts"):
            if key in spec.base:
                raise SpecError(f"base.{key}", "is set by the grid itself; use prompts/seeds instead")
        return spec

    def scoring_request(self) -> dict[str, Any]:
        """What this grid asks its scoring for, as :func:`lycoris_eval.config.build_config`'s
        request fields (its first reference folder, its distractor folders, its trigger
        mapping): every front end that scores a grid builds its config from these."""
        return {
            "reference": self.references[0] if self.references else None,
            "distractors": list(self.distractors),
            "trigger": dict(self.trigger),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("seeds_drawn")
        data.pop("training_runs")
        data["prompts"] = [(f"[{p.type}] " if p.type != "unspecified" else "") + p.text for p in self.prompts]
        return data

    def identity(self) -> dict[str, Any]:
        """What must not change under one run id (names and labels excluded; a training run
        counts by the adapters it expanded to)."""
        data = self.to_dict()
        for key in ("run_name", "run_id", "score", "references", "distractors", "trigger", "training_run"):
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


# -- the request: the spec's fields plus confirm_large -------------------------------------
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_confirm_large(value: Any, _random_seed: Any = None) -> bool:
    """``confirm_large`` from any front end (a JSON boolean, the Script's checkbox, a string
    from a form or a script argument): ``"false"``, ``"0"``, ``"no"`` are false; absent
    (``None``, or a blank argument) is false; anything that is not a recognisable boolean is
    a :class:`SpecError` (``bool("false")`` would be true and run a grid the user did not
    confirm)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SpecError("confirm_large", f"must be true or false, got {value!r}")


CONFIRM_LARGE = SpecField(
    "confirm_large",
    parse_confirm_large,
    lambda: False,
    {"type": "boolean", "description": "allow grids over the size limit"},
    True,
)
# what POST /grid, the Script's JSON argument and a sweep's spec file accept
REQUEST_FIELDS: tuple[SpecField, ...] = (*SPEC_FIELDS, CONFIRM_LARGE)


def parse_grid_request(data: Any, random_seed: Any = None) -> tuple[GridSpec, bool]:
    """A grid request (POST /grid body, the Script's JSON spec, a sweep's spec file) ->
    ``(spec, confirm_large)``, every field of :data:`REQUEST_FIELDS` checked, unknown ones refused."""
    if not isinstance(data, Mapping):
        raise SpecError("spec", "must be a JSON object")
    refuse_unknown(data, REQUEST_FIELDS)
    confirm = CONFIRM_LARGE.read(data)
    spec = GridSpec.from_dict({k: v for k, v in data.items() if k != CONFIRM_LARGE.name}, random_seed)
    return spec, confirm


def grid_json_schema(fields: tuple[SpecField, ...] = REQUEST_FIELDS) -> dict[str, Any]:
    """The JSON schema of a grid request, generated from the validator's own table."""
    schema: dict[str, Any] = {
        "title": "GridSpec",
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required and not f.or_else],
        "properties": {f.name: f.schema for f in fields},
    }
    either = [[f.name, f.or_else] for f in fields if f.required and f.or_else]
    if either:  # e.g. adapters, or a training run
        schema["allOf"] = [{"anyOf": [{"required": [a]}, {"required": [b]}]} for a, b in either]
    return schema


GRID_JSON_SCHEMA: dict[str, Any] = grid_json_schema()
