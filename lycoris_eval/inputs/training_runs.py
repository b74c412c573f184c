"""Training runs: the adapter files that are saved epochs (or steps) of one training.

A trainer saves ``name-000002``, ``name-000004``, … and a final ``name``; the question is
which of them to publish. This module finds them, from what the files say first and from
their names second:

* **Metadata** (the safetensors header, never the tensors), written by kohya's sd-scripts
  and the trainers built on it (LyCORIS, the kohya GUI, OneTrainer's kohya-compatible
  export): ``ss_session_id`` (one per training), else ``ss_output_name`` with
  ``ss_training_started_at``; the position is ``ss_steps`` (optimizer steps at the save)
  and ``ss_epoch``; ``ss_num_batches_per_epoch`` / ``ss_gradient_accumulation_steps``
  turn an epoch into steps where only the epoch is known. ai-toolkit writes its position
  in a ``training_info`` JSON (``step``, ``epoch``) and its name in ``name``/``modelspec.title``.
* **File names** where the metadata is silent (merged, converted or re-saved files):
  kohya's ``name-000004`` (epoch, 6 digits) and ``name-step00001000`` (step, 8 digits),
  ai-toolkit's ``name_000001000`` (step, 9 digits), OneTrainer's ``…-save-STEP-EPOCH-…``,
  and the hand-named ``name_e4``, ``name-ep04``, ``name_epoch4``, ``name-s1000`` (a bare
  ``name-4`` is not taken: ``char-1``/``char-2`` are as often two characters); the file
  called just ``name`` beside them is the final save (ordered last).

A group of fewer than two files is not a training run. Members are ordered by step; where
a run mixes members with and without a known step, by epoch, then the final file last.
Every member says where its position came from (``metadata`` or ``file name``), and the run
says how it was grouped, so a wrong guess is visible and a user can override it
(:func:`apply_override`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lycoris_eval.errors import SpecError

__all__ = [
    "AdapterFacts",
    "Member",
    "TrainingRun",
    "apply_override",
    "group_training_runs",
    "parse_name",
    "training_metadata",
]

# metadata keys kept from a header (what grouping and ordering read), as AdapterInfo.training
TRAINING_KEYS = (
    "ss_output_name",
    "ss_session_id",
    "ss_training_started_at",
    "ss_epoch",
    "ss_steps",
    "ss_max_train_steps",
    "ss_num_epochs",
    "ss_num_batches_per_epoch",
    "ss_gradient_accumulation_steps",
    "training_info",
    "name",
    "modelspec.title",
)


@dataclass(frozen=True)
class AdapterFacts:
    """What grouping needs of one adapter: the name used in ``<lora:NAME:w>`` and its
    training metadata (:func:`training_metadata`; empty when unknown)."""

    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    adapter: str
    epoch: int | None = None
    step: int | None = None
    final: bool = False
    source: str = "file name"  # where epoch/step came from: "metadata", "file name", "user"

    def label(self) -> str:
        if self.epoch is not None:
            return f"epoch {self.epoch}" + (" (final)" if self.final else "")
        if self.step is not None:
            return f"step {self.step}" + (" (final)" if self.final else "")
        return "final" if self.final else self.adapter


@dataclass(frozen=True)
class TrainingRun:
    name: str
    members: tuple[Member, ...]
    grouped_by: str  # "session id", "output name and start time", "output name", "file name", "user"

    @property
    def adapters(self) -> list[str]:
        return [m.adapter for m in self.members]

    def member(self, adapter: str) -> Member | None:
        return next((m for m in self.members if m.adapter == adapter), None)

    def select(self, every: int | None = None, epochs: Sequence[int] | None = None) -> list[str]:
        """The adapters of a grid over this run: all (in order), every k-th counted back
        from the last save (so the final one is always in), or the listed epochs."""
        if epochs is not None:
            for e in set(epochs):
                steps = [m.step for m in self.members if m.epoch == e]
                if len(steps) > 1:  # kohya's step saves carry the current epoch
                    raise SpecError(
                        "training_run.epochs",
                        f"{self.name} has {len(steps)} saves of epoch {e} (steps "
                        f"{', '.join(str(x) for x in steps)}): list them as adapters, or use the epoch axis' step values",
                    )
            have = {m.epoch: m.adapter for m in self.members if m.epoch is not None}
            missing = [e for e in epochs if e not in have]
            if missing:
                known = ", ".join(str(e) for e in sorted(have)) or "none"
                raise SpecError("training_run.epochs", f"{self.name} has no epoch {missing[0]} (it has {known})")
            return [have[e] for e in sorted(set(epochs))]
        names = self.adapters
        if every is None or every <= 1:
            return names
        return names[::-1][::every][::-1]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "grouped_by": self.grouped_by, "members": [asdict(m) for m in self.members]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingRun:
        members = tuple(
            Member(
                str(m["adapter"]),
                _int(m.get("epoch")),
                _int(m.get("step")),
                bool(m.get("final")),
                str(m.get("source") or "user"),
            )
            for m in data.get("members") or []
        )
        return cls(str(data["name"]), members, str(data.get("grouped_by") or "user"))


def training_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The header metadata grouping reads (a small dict to keep in AdapterInfo/manifests)."""
    return {k: metadata[k] for k in TRAINING_KEYS if metadata.get(k) not in (None, "")}


# -- file names -------------------------------------------------------------------------
# (pattern, what the number is); the first that matches wins. The stem before the suffix
# is the run's name; ``[-_.]`` separators are all in use.
_NAME_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?P<stem>.+?)-save-(?P<step>\d+)-(?P<epoch>\d+)(?:-\d+)?$"), "onetrainer"),
    (re.compile(r"^(?P<stem>.+?)[-_.]step[-_]?(?P<step>\d+)$", re.IGNORECASE), "step"),
    (re.compile(r"^(?P<stem>.+?)[-_.](?:e|ep|epoch)[-_]?(?P<epoch>\d+)$", re.IGNORECASE), "epoch"),
    (re.compile(r"^(?P<stem>.+?)[-_.]s(?P<step>\d+)$", re.IGNORECASE), "step"),
    (re.compile(r"^(?P<stem>.+?)_(?P<step>\d{9})$"), "step"),  # ai-toolkit: name_000001000
    (re.compile(r"^(?P<stem>.+?)-(?P<epoch>\d{6})$"), "epoch"),  # kohya: name-000004
)


def parse_name(name: str) -> tuple[str, int | None, int | None] | None:
    """``(stem, epoch, step)`` from a file name (without extension, any folder dropped), or
    None when no pattern matches (it may be a run's final file: :func:`group_training_runs`
    decides that from its neighbours)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for pattern, _what in _NAME_PATTERNS:
        match = pattern.match(base)
        if match:
            groups = match.groupdict()
            return match["stem"], _int(groups.get("epoch")), _int(groups.get("step"))
    return None


# -- grouping -----------------------------------------------------------------------------
def group_training_runs(adapters: Iterable[AdapterFacts]) -> list[TrainingRun]:
    """The training runs among ``adapters`` (each adapter in at most one), sorted by name."""
    facts = list(adapters)
    runs: list[TrainingRun] = []
    taken: set[str] = set()
    # 1. metadata: one training session per key
    by_key: dict[tuple[str, str], list[tuple[AdapterFacts, dict[str, Any]]]] = {}
    for fact in facts:
        position = _metadata_position(fact.metadata)
        key = _metadata_key(fact.metadata)
        if key is not None and position is not None:
            by_key.setdefault(key, []).append((fact, position))
    names_in_use: dict[str, int] = {}
    for (how, _value), group in sorted(by_key.items(), key=lambda kv: _first_started(kv[1])):
        if len(group) < 2:
            continue
        name = _run_name(group)
        members = [
            Member(fact.name, pos.get("epoch"), pos.get("step"), bool(pos.get("final")), "metadata")
            for fact, pos in group
        ]
        names_in_use[name] = names_in_use.get(name, 0) + 1
        runs.append(TrainingRun(name, _ordered(members), how))
        taken.update(f.name for f, _ in group)
    # 2. file names, for the rest
    by_stem: dict[str, list[Member]] = {}
    rest = [f for f in facts if f.name not in taken]
    for fact in rest:
        parsed = parse_name(fact.name)
        if parsed is not None:
            stem, epoch, step = parsed
            folder = fact.name.replace("\\", "/").rpartition("/")[0]  # the same stem in two folders: two runs
            key = f"{folder}/{stem}" if folder else stem
            by_stem.setdefault(key, []).append(Member(fact.name, epoch, step, False, "file name"))
    for fact in rest:  # the final save: a file named just like the stem of numbered ones
        base = fact.name.replace("\\", "/")
        if base in by_stem and all(m.adapter != fact.name for m in by_stem[base]):
            by_stem[base].append(Member(fact.name, None, None, True, "file name"))
    for stem, members in by_stem.items():
        if len(members) < 2:
            continue
        runs.append(TrainingRun(stem.replace("\\", "/").rsplit("/", 1)[-1], _ordered(members), "file name"))
    # the same name for two runs (two trainings with one output name): tell them apart
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.name] = counts.get(run.name, 0) + 1
    out = []
    seen: dict[str, int] = {}
    for run in runs:
        if counts[run.name] > 1:
            seen[run.name] = seen.get(run.name, 0) + 1
            run = TrainingRun(f"{run.name} ({seen[run.name]})", run.members, run.grouped_by)
        out.append(run)
    return sorted(out, key=lambda r: r.name.lower())


def apply_override(runs: Sequence[TrainingRun], override: Mapping[str, Sequence[str]]) -> list[TrainingRun]:
    """A user's grouping: ``{run name: [adapters in order]}`` replaces any run of that name
    and takes its adapters out of other runs; positions are kept where the detected run
    knew them, else the list order is the order."""
    known = {m.adapter: m for run in runs for m in run.members}
    claimed = {a for names in override.values() for a in names}
    out = []
    for run in runs:
        if run.name in override:
            continue
        members = tuple(m for m in run.members if m.adapter not in claimed)
        if len(members) >= 2:
            out.append(TrainingRun(run.name, members, run.grouped_by))
    for name, adapters in override.items():
        if len(adapters) < 2:
            raise SpecError("training_runs", f"{name}: a training run needs at least two adapters")
        members = []
        for i, adapter in enumerate(adapters):
            m = known.get(adapter)
            members.append(
                Member(adapter, m.epoch if m else None, m.step if m else None, i == len(adapters) - 1, "user")
            )
        out.append(TrainingRun(name, tuple(members), "user"))
    return sorted(out, key=lambda r: r.name.lower())


def _metadata_key(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    if metadata.get("ss_session_id"):
        return ("session id", str(metadata["ss_session_id"]))
    name = metadata.get("ss_output_name")
    if name and metadata.get("ss_training_started_at"):
        return ("output name and start time", f"{name}\x1f{metadata['ss_training_started_at']}")
    if name:
        return ("output name", str(name))
    info = _training_info(metadata)
    title = metadata.get("name") or metadata.get("modelspec.title")
    if info and title:
        return ("output name", str(title))
    return None


def _metadata_position(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """epoch/step from kohya's keys or ai-toolkit's ``training_info``; None when neither."""
    info = _training_info(metadata)
    epoch = _int(metadata.get("ss_epoch"))
    step = _int(metadata.get("ss_steps"))
    if info:
        epoch = epoch if epoch is not None else _int(info.get("epoch"))
        step = step if step is not None else _int(info.get("step"))
    if epoch is None and step is None:
        return None
    per_epoch = _int(metadata.get("ss_num_batches_per_epoch"))
    accumulation = _int(metadata.get("ss_gradient_accumulation_steps")) or 1
    if step is None and epoch is not None and per_epoch:
        step = epoch * max(1, per_epoch // accumulation)
    total = _int(metadata.get("ss_max_train_steps"))
    final = (step is not None and total is not None and step >= total) or (
        epoch is not None and _int(metadata.get("ss_num_epochs")) == epoch
    )
    return {"epoch": epoch, "step": step, "final": final}


def _training_info(metadata: Mapping[str, Any]) -> dict[str, Any]:
    raw = metadata.get("training_info")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _run_name(group: Sequence[tuple[AdapterFacts, dict[str, Any]]]) -> str:
    for fact, _ in group:
        md = fact.metadata
        name = md.get("ss_output_name") or md.get("name") or md.get("modelspec.title")
        if name:
            return str(name)
    parsed = parse_name(group[0][0].name)
    return parsed[0] if parsed else group[0][0].name


def _first_started(group: Sequence[tuple[AdapterFacts, dict[str, Any]]]) -> tuple:
    started = [_int(f.metadata.get("ss_training_started_at")) for f, _ in group]
    known = [s for s in started if s is not None]
    return (min(known) if known else 0, _run_name(group))


def _ordered(members: Sequence[Member]) -> tuple[Member, ...]:
    """By step where every member has one; else by epoch; the final save last either way."""
    with_step = all(m.step is not None or m.final for m in members)

    def key(m: Member) -> tuple:
        if with_step and m.step is not None:
            return (0, m.step, m.epoch or 0, m.adapter)
        if m.epoch is not None:
            return (0, m.epoch, m.step or 0, m.adapter)
        if m.step is not None:
            return (0, m.step, 0, m.adapter)
        return (1, 0, 0, m.adapter)  # the final file without a number: last

    return tuple(sorted(members, key=key))


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
