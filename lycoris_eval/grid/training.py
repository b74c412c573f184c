"""A training run as a grid's adapter dimension (issue #24): the spec's ``training_run``
value, its expansion into adapters in step order, and the runs a grid used.

``"training_run": {"name": RUN, "every": k}`` (or ``"epochs": [2, 4, 6]``, or neither: every
save; a list of such objects for several runs) names a run found among the host's adapters
by :func:`lycoris_eval.inputs.training_runs.group_training_runs`, from each adapter's
training metadata (``AdapterInfo.training``, in ``AdapterRef.info["training"]``) or its file
name. ``"adapters": [..]`` in the object is the user's grouping and order for that run
(:func:`lycoris_eval.inputs.training_runs.apply_override`).

Expansion happens where the grid's adapter names are checked against the host's
(:meth:`lycoris_eval.grid.runner.GridRunner.prepare`, the sweep's preflight), before any
image: the spec's ``adapters`` become the adapters listed explicitly (first, as given) and
then each run's selection in step order; ``training_run`` is consumed (emptied), so the
stored spec, its identity and its fingerprint are those of the expanded adapters (a resume
with the same request finds the same grid). :attr:`GridSpec.training_runs` keeps the runs
used, each cut to the adapters the grid makes, for the manifest's top-level
``training_runs`` key (:meth:`lycoris_eval.grid.store.RunStore.open`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from lycoris_eval.errors import SpecError
from lycoris_eval.inputs.training_runs import AdapterFacts, Member, TrainingRun, apply_override, group_training_runs

__all__ = [
    "MAX_EVERY",
    "detected_runs",
    "axis_choices",
    "axis_value_adapter",
    "expand_axis_values",
    "expand_training_runs",
    "find_run",
    "parse_training_run",
    "record_training_runs",
    "runs_among",
]

MAX_EVERY = 1000
_KEYS = ("name", "every", "epochs", "adapters")


class _Adapter(Protocol):  # AdapterRef (grid/host), without importing it: host imports spec imports fields
    name: str
    info: dict[str, Any]


# -- the field's value ------------------------------------------------------------------------
def parse_training_run(value: Any, _random_seed: Any = None) -> list[dict[str, Any]]:
    """``training_run`` as given -> a list of ``{"name", "every"? | "epochs"?, "adapters"?}``
    (empty: no training run); :class:`SpecError` naming ``training_run.<key>``."""
    if value is None or value == [] or value == "":
        return []
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, (list, tuple)):
        raise SpecError("training_run", 'must be {"name": RUN, "every": k} or {"name": RUN, "epochs": [..]}')
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise SpecError("training_run", f"{item!r} is not an object with a name")
        unknown = sorted(set(item) - set(_KEYS))
        if unknown:
            raise SpecError(f"training_run.{unknown[0]}", f"unknown field (known: {', '.join(sorted(_KEYS))})")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError("training_run.name", "give the training run's name")
        entry: dict[str, Any] = {"name": name.strip()}
        if any(e["name"].casefold() == entry["name"].casefold() for e in out):
            raise SpecError("training_run.name", f"{entry['name']!r} is listed twice")
        every, epochs = item.get("every"), item.get("epochs")
        if every is not None and epochs is not None:
            raise SpecError("training_run.every", "give every or epochs, not both")
        if every is not None:
            entry["every"] = _every(every)
        if epochs is not None:
            entry["epochs"] = _epochs(epochs)
        if item.get("adapters") is not None:
            entry["adapters"] = _adapter_names(item["adapters"])
        out.append(entry)
    return out


def _every(value: Any) -> int:
    number = _integer(value)
    if number is None or not 1 <= number <= MAX_EVERY:
        raise SpecError("training_run.every", f"must be an integer 1..{MAX_EVERY}, got {value!r}")
    return number


def _epochs(value: Any) -> list[int]:
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise SpecError("training_run.epochs", "give a list of epoch numbers, e.g. [2, 4, 6]")
    epochs: list[int] = []
    for item in items:
        number = _integer(item)
        if number is None or number < 0:
            raise SpecError("training_run.epochs", f"{item!r} is not an epoch number")
        if number in epochs:
            raise SpecError("training_run.epochs", f"{number} is listed twice")
        epochs.append(number)
    return epochs


def _adapter_names(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise SpecError("training_run.adapters", "must be a list of adapter names, in training order")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise SpecError("training_run.adapters", f"{item!r} is not a name")
        if item.strip() in names:
            raise SpecError("training_run.adapters", f"{item.strip()!r} is listed twice")
        names.append(item.strip())
    if len(names) < 2:
        raise SpecError("training_run.adapters", "a training run needs at least two adapters")
    return names


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


# -- the host's runs ------------------------------------------------------------------------------
def detected_runs(adapters: Iterable[_Adapter]) -> list[TrainingRun]:
    """The training runs among the host's adapters (their names and training metadata)."""
    return group_training_runs(AdapterFacts(a.name, (a.info or {}).get("training") or {}) for a in adapters)


def find_run(runs: Sequence[TrainingRun], name: str) -> TrainingRun:
    """The run called ``name`` (exact, then ignoring case); :class:`SpecError` listing the known runs."""
    for run in runs:
        if run.name == name:
            return run
    for run in runs:
        if run.name.casefold() == name.casefold():
            return run
    known = ", ".join(f"{r.name} ({len(r.members)} saves)" for r in runs) or "none among the WebUI's adapters"
    raise SpecError("training_run.name", f"unknown training run {name!r} (known: {known})")


def _cut(run: TrainingRun, adapters: Sequence[str]) -> TrainingRun:
    keep = set(adapters)
    return TrainingRun(run.name, tuple(m for m in run.members if m.adapter in keep), run.grouped_by)


def expand_training_runs(spec: Any, adapters: Sequence[_Adapter]) -> None:
    """``spec.training_run`` -> ``spec.adapters`` (explicit ones first, then each run's
    selection in step order) and ``spec.training_runs``; the request is consumed. A no-op
    for a spec without one (or already expanded)."""
    if not spec.training_run:
        return
    pool = {a.name: a.name for a in adapters}
    lowered = {name.casefold(): name for name in pool}
    runs = detected_runs(adapters)
    overrides: dict[str, list[str]] = {}
    for request in spec.training_run:
        if request.get("adapters"):
            names = []
            for name in request["adapters"]:
                found = pool.get(name) or lowered.get(name.casefold())
                if found is None:
                    raise SpecError("training_run.adapters", f"unknown adapter {name!r}")
                names.append(found)
            overrides[request["name"]] = names
    if overrides:
        try:
            runs = apply_override(runs, overrides)
        except SpecError as exc:
            raise SpecError("training_run.adapters", exc.message) from None
    chosen = list(spec.adapters)
    used: list[TrainingRun] = []
    for request in spec.training_run:
        run = find_run(runs, request["name"])
        selected = run.select(every=request.get("every"), epochs=request.get("epochs"))
        for name in selected:
            if name in chosen or name.casefold() in {c.casefold() for c in chosen}:
                raise SpecError(
                    "training_run", f"{name!r} is in adapters and in training run {run.name!r}: list it once"
                )
            chosen.append(name)
        used.append(_cut(run, selected))
    spec.adapters = chosen
    spec.training_run = []
    spec.training_runs = [run.to_dict() for run in used]


def runs_among(names: Sequence[str], adapters: Sequence[_Adapter]) -> list[TrainingRun]:
    """The detected runs with at least two of ``names`` (adapters picked by hand that are
    saves of one training), each cut to those."""
    keep = set(names)
    out = []
    for run in detected_runs(adapters):
        members = [m.adapter for m in run.members if m.adapter in keep]
        if len(members) >= 2:
            out.append(_cut(run, members))
    return out


def record_training_runs(spec: Any, adapters: Sequence[_Adapter]) -> None:
    """After the names are resolved: add to ``spec.training_runs`` the runs formed by
    adapters listed by hand (not already in a requested run), so a grid over epochs picked
    one by one is recorded as one too."""
    covered = {m["adapter"] for run in spec.training_runs for m in run.get("members", [])}
    rest = [name for name in spec.adapters if name not in covered]
    known = {run["name"] for run in spec.training_runs}
    for run in runs_among(rest, adapters):
        if run.name not in known:
            spec.training_runs.append(run.to_dict())


# -- the X/Y/Z "LyCORIS: epoch" axis: one save per value, ``RUN@EPOCH`` ----------------------------
def member_token(member: Member, run: TrainingRun | None = None) -> str:
    """A save's name on the epoch axis after ``RUN@``: its epoch, else ``step N``, else
    ``final``; ``step N`` too when another save of ``run`` has the same epoch (kohya's
    ``--save_every_n_steps`` writes the current epoch into every step save)."""
    shared = run is not None and sum(1 for m in run.members if m.epoch == member.epoch) > 1
    if member.epoch is not None and not (shared and member.step is not None):
        return str(member.epoch)
    if member.step is not None:
        return f"step {member.step}"
    return "final"


def axis_choices(runs: Sequence[TrainingRun]) -> list[str]:
    """Every save of every run as an epoch axis value, runs by name, saves in step order."""
    return [f"{run.name}@{member_token(m, run)}" for run in runs for m in run.members]


def _split_value(value: str) -> tuple[str, str | None]:
    text = str(value).strip()
    if "@" not in text:
        return text, None
    name, token = text.rsplit("@", 1)
    return name.strip(), token.strip()


def axis_value_adapter(runs: Sequence[TrainingRun], value: str) -> str:
    """The adapter an epoch axis value (``RUN@4``, ``RUN@step 1000``, ``RUN@final``) means;
    :class:`SpecError` on ``training_run`` naming what the run has."""
    name, token = _split_value(value)
    run = find_run(runs, name)
    if token is None:
        raise SpecError(
            "training_run",
            f"{value!r}: give one save as RUN@EPOCH, e.g. {run.name}@{member_token(run.members[-1], run)}",
        )
    wanted = token.casefold().replace(" ", "")
    for member in run.members:
        if wanted == member_token(member, run).casefold().replace(" ", ""):
            return member.adapter
    if wanted == "final" and run.members:
        return run.members[-1].adapter  # the last save, whether or not it has an epoch number
    known = ", ".join(member_token(m, run) for m in run.members)
    raise SpecError("training_run", f"{run.name} has no save {token!r} (it has {known})")


def expand_axis_values(runs: Sequence[TrainingRun], values: Iterable[str]) -> list[str]:
    """The epoch axis typed as text: ``RUN`` is every save of the run, ``RUN@every k`` every
    k-th (counted back from the last), ``RUN@4`` one save; in the order given, each save once."""
    out: list[str] = []
    for value in values:
        name, token = _split_value(value)
        if not name:
            continue
        run = find_run(runs, name)
        every = None
        if token is not None and token.casefold().replace(" ", "").startswith("every"):
            every = _every(token.casefold().replace(" ", "")[len("every") :])
        if token is None or every is not None:
            picked = run.select(every=every)
            tokens = [f"{run.name}@{member_token(run.member(a), run)}" for a in picked]  # type: ignore[arg-type]
        else:
            axis_value_adapter(runs, value)  # checked now: the plot shows the error before any image
            tokens = [f"{run.name}@{token}"]
        out.extend(t for t in tokens if t not in out)
    return out
