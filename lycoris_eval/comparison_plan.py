"""Which pairs the comparison tables hold.

Every pair of checkpoints (at the same adapter and weight) is what a user reading a small grid
wants. It does not scale: the LyCORIS paper's study has 234 checkpoints, which is 27,261
checkpoint pairs per adapter and weight — hours of bootstraps and gigabytes of JSON before the
first table could be read. So a table holds every pair only up to ``all_pairs_up_to``
members; beyond that:

* **checkpoint** — each checkpoint against one *anchor* per adapter: the checkpoint the adapter
  was trained on (its home, which is also what the transfer verdicts compare with), else the
  user's ``compare_to``, else the checkpoint most adapters call home, else the first by name;
* **adapter** — none stored (each adapter still has its ``baseline`` table entries);
* **weight** — each weight against the next one up.

Any other pair is computed when asked for (:mod:`.compare_on_demand`) with the same code,
so the same images give the same numbers. The tables do not depend on the images, only on
the conditions the run has, so the family each Benjamini–Hochberg correction runs over is
fixed before any value is seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .verdicts import is_checkpoint

Condition = tuple[str | None, str | None, float | None]  # checkpoint, adapter, weight
KINDS = ("checkpoint", "adapter", "weight", "baseline")
ALL_PAIRS_UP_TO = 12  # 66 pairs per table context


@dataclass(frozen=True)
class PairPlan:
    """``anchors``: adapter (None for the no-adapter images) -> the checkpoint its
    checkpoint pairs are taken against when there are more than ``all_pairs_up_to``."""

    all_pairs_up_to: int = ALL_PAIRS_UP_TO
    anchors: Mapping[str | None, str] = field(default_factory=dict)
    default_anchor: str | None = None

    def anchor(self, adapter: str | None) -> str | None:
        return self.anchors.get(adapter, self.default_anchor)


def make_plan(
    checkpoints: Iterable[str],
    homes: Mapping[str, str | None],
    wanted: str | None,
    all_pairs_up_to: int = ALL_PAIRS_UP_TO,
    notes: list[str] | None = None,
) -> PairPlan:
    """The plan for a run's checkpoints and the adapters' homes; what the user should know
    goes to ``notes``. ``wanted``: the user's ``compare_to``, matched like a training
    base name (file stem, subfolder and hash of the WebUI's title allowed)."""
    names = sorted(set(checkpoints))
    notes = [] if notes is None else notes
    compare_to = next((c for c in names if c == wanted or is_checkpoint(wanted, c) or is_checkpoint(c, wanted)), None)
    if wanted and compare_to is None:
        notes.append(f"compare with {wanted!r}: no such checkpoint in this run; using the default anchor")
    if len(names) <= all_pairs_up_to:
        return PairPlan(all_pairs_up_to)
    counted = Counter(h for h in homes.values() if h is not None)
    if compare_to is not None:
        default, why = compare_to, "asked for"
    elif counted:
        default, why = counted.most_common(1)[0][0], "the checkpoint most adapters were trained on"
    else:
        default, why = names[0], "the first by name; choose another with --compare-to"
    anchors = {a: h for a, h in homes.items() if h is not None}
    notes.append(
        f"{len(names)} checkpoints (more than {all_pairs_up_to}): each is compared with its adapter's home "
        f"checkpoint, else with {default} ({why}); other pairs are computed when asked for"
    )
    return PairPlan(all_pairs_up_to, anchors, default)


def families(conditions: Iterable[Condition], plan: PairPlan | None = None) -> list[tuple[str, Condition, Condition]]:
    """Every (kind, A, B) the four tables hold, A before B in a stable order (the order of
    :func:`cond_order`), tables in the order of :data:`KINDS`."""
    plan = plan or PairPlan()
    conds = sorted(set(conditions), key=cond_order)
    pos = {c: i for i, c in enumerate(conds)}
    present = set(conds)
    by: dict[str, dict[tuple, list[Condition]]] = {"checkpoint": {}, "adapter": {}, "weight": {}}
    for c in conds:
        by["checkpoint"].setdefault((c[1], c[2]), []).append(c)
        if c[1] is not None:
            by["adapter"].setdefault((c[0], c[2]), []).append(c)
            by["weight"].setdefault((c[0], c[1]), []).append(c)
    n_checkpoints = len({c[0] for c in conds})
    n_adapters = len({c[1] for c in conds if c[1] is not None})
    out: list[tuple[str, Condition, Condition]] = []
    for members in by["checkpoint"].values():
        if n_checkpoints <= plan.all_pairs_up_to:
            out += [("checkpoint", a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
            continue
        anchor = next((c for c in members if c[0] == plan.anchor(members[0][1])), None)
        if anchor is not None:
            out += [("checkpoint", *sorted((anchor, c), key=pos.__getitem__)) for c in members if c != anchor]
    if n_adapters <= plan.all_pairs_up_to:
        for members in by["adapter"].values():
            out += [("adapter", a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    for members in by["weight"].values():
        if len(members) <= plan.all_pairs_up_to:
            out += [("weight", a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
        else:
            out += [("weight", a, b) for a, b in zip(members, members[1:])]
    out += [("baseline", c, (c[0], None, 0.0)) for c in conds if c[1] is not None and (c[0], None, 0.0) in present]
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda t: (order[t[0]], pos[t[1]], pos[t[2]]))


def coverage(conditions: Iterable[Condition], plan: PairPlan) -> dict[str, Any]:
    """What the stored tables hold, for the scores document (``comparisons.coverage``)."""
    conds = set(conditions)
    n_checkpoints = len({c[0] for c in conds})
    n_adapters = len({c[1] for c in conds if c[1] is not None})
    n_weights = Counter((c[0], c[1]) for c in conds if c[1] is not None)
    limit = plan.all_pairs_up_to
    checkpoint = "all pairs" if n_checkpoints <= limit else "against an anchor"
    return {
        "all_pairs_up_to": limit,
        "checkpoint": checkpoint,
        "anchors": {
            **({"(default)": plan.default_anchor} if plan.default_anchor else {}),
            **{str(a): c for a, c in sorted(plan.anchors.items(), key=lambda t: str(t[0]))},
        }
        if checkpoint != "all pairs"
        else {},
        "adapter": "all pairs" if n_adapters <= limit else "on demand",
        "weight": "all pairs" if max(n_weights.values(), default=0) <= limit else "neighbouring weights",
        "baseline": "all",
        "on_demand": "pairs not stored are computed when asked for (API, tab, CLI compare); their q-values "
        "run over the stored table plus the request",
    }


def is_complete(section: Mapping[str, Any], kind: str) -> bool:
    """Whether the stored table ``kind`` holds every pair (documents without ``coverage``,
    written before it existed, always did)."""
    cov = section.get("coverage")
    return cov is None or cov.get(kind) in ("all pairs", "all")


def cond_order(c: Condition) -> tuple:
    return (str(c[0] or ""), c[1] is not None, str(c[1] or ""), -1.0 if c[2] is None else c[2])
