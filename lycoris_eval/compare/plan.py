"""Which pairs the comparison tables hold.

Every pair of checkpoints (at the same adapter and weight) is what a user reading a small grid
wants. It does not scale: the LyCORIS paper's study has 234 checkpoints, which is 27,261
checkpoint pairs per adapter and weight — hours of bootstraps and gigabytes of JSON before the
first table could be read. So a *context* (the conditions that differ only in the table's own
dimension: the checkpoints of one adapter and weight…) holds every pair only up to
``all_pairs_up_to`` members; beyond that:

* **checkpoint** — each checkpoint against one *anchor* per adapter: the checkpoint the adapter
  was trained on (its home, which is also what the transfer verdicts compare with), else the
  user's ``compare_to``, else the checkpoint most adapters call home, else the first by name
  (also where the anchor lacks that adapter and weight);
* **adapter** — none stored (each adapter still has its ``baseline`` table entries);
* **weight** — each weight against the next one up.

Any other pair is computed when asked for (:mod:`.on_demand`) with the same code:
the same difference, interval and p-value. The tables do not depend on the images' values,
only on the conditions the run has, so the family each Benjamini–Hochberg correction runs
over is fixed before any value is seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lycoris_eval.compare.verdicts import is_checkpoint
from lycoris_eval.config import ALL_PAIRS_UP_TO

Condition = tuple[str | None, str | None, float | None]  # checkpoint, adapter, weight
KINDS = ("checkpoint", "adapter", "weight", "baseline")


@dataclass(frozen=True)
class PairPlan:
    """``anchors``: adapter (None for the no-adapter images) -> the checkpoint its
    checkpoint pairs are taken against where a context has more than ``all_pairs_up_to``
    checkpoints; ``default_anchor`` for the adapters without one."""

    all_pairs_up_to: int = ALL_PAIRS_UP_TO
    anchors: Mapping[str | None, str] = field(default_factory=dict)
    default_anchor: str | None = None

    def anchor(self, adapter: str | None, members: Sequence[Condition]) -> Condition:
        """The member to compare the others with: the adapter's anchor, else the default,
        else the first named checkpoint (an anchor may lack this adapter and weight)."""
        have = {c[0]: c for c in members}
        for name in (self.anchors.get(adapter), self.default_anchor):
            if name is not None and name in have:
                return have[name]
        return next((c for c in members if c[0] is not None), members[0])


def make_plan(
    checkpoints: Iterable[str | None],
    homes: Mapping[str, str | None],
    wanted: str | None,
    all_pairs_up_to: int = ALL_PAIRS_UP_TO,
    notes: list[str] | None = None,
) -> PairPlan:
    """The plan for a run's checkpoints (those of its paired images; None for images whose
    infotext names none) and the adapters' homes; what the user should know goes to
    ``notes``. ``wanted``: the user's ``compare_to``, matched like a training base name
    (file stem, subfolder and hash of the WebUI's title allowed)."""
    names = sorted({c for c in checkpoints if c is not None})
    count = len(set(checkpoints))
    notes = [] if notes is None else notes
    compare_to = next((c for c in names if c == wanted or is_checkpoint(wanted, c) or is_checkpoint(c, wanted)), None)
    if wanted and compare_to is None:
        notes.append(f"compare with {wanted!r}: no such checkpoint in this run; using the default anchor")
    if count <= all_pairs_up_to:
        if compare_to is not None:
            notes.append(f"compare with {compare_to}: not needed, every pair of the {count} checkpoints is compared")
        return PairPlan(all_pairs_up_to)
    counted = Counter(h for h in homes.values() if h is not None)
    if compare_to is not None:
        default, why = compare_to, "asked for"
    elif counted:
        default, why = counted.most_common(1)[0][0], "the checkpoint most adapters were trained on"
    elif names:
        default, why = names[0], "the first by name; choose another with --compare-to"
    else:
        default, why = None, "no checkpoint is named"
    anchors = {a: h for a, h in homes.items() if h is not None}
    notes.append(
        f"{count} checkpoints (more than {all_pairs_up_to}): each is compared with its adapter's home "
        f"checkpoint, else with {default} ({why}); other pairs are computed when asked for"
    )
    return PairPlan(all_pairs_up_to, anchors, default)


def families(conditions: Iterable[Condition], plan: PairPlan | None = None) -> list[tuple[str, Condition, Condition]]:
    """Every (kind, A, B) the four tables hold, A before B in a stable order (the order of
    :func:`cond_order`), tables in the order of :data:`KINDS`. Each *context* (the conditions
    that differ only in the table's own dimension) holds every pair while it has at most
    ``all_pairs_up_to`` members, else: checkpoints against the anchor, adapters on demand,
    weights with the next one up."""
    plan = plan or PairPlan()
    conds = sorted(set(conditions), key=cond_order)
    pos = {c: i for i, c in enumerate(conds)}
    out: list[tuple[str, Condition, Condition]] = []
    for kind, members in contexts(conds):
        if len(members) <= plan.all_pairs_up_to:
            out += [(kind, a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
        elif kind == "checkpoint":
            anchor = plan.anchor(members[0][1], members)
            out += [(kind, *sorted((anchor, c), key=pos.__getitem__)) for c in members if c != anchor]
        elif kind == "weight":
            out += [(kind, a, b) for a, b in zip(members, members[1:])]
    present = set(conds)
    out += [("baseline", c, (c[0], None, 0.0)) for c in conds if c[1] is not None and (c[0], None, 0.0) in present]
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda t: (order[t[0]], pos[t[1]], pos[t[2]]))


def contexts(conds: Sequence[Condition]) -> list[tuple[str, list[Condition]]]:
    """(kind, the conditions of one context in ``conds``' order) for the three pair tables."""
    by: dict[tuple, list[Condition]] = {}
    for c in conds:
        by.setdefault(("checkpoint", c[1], c[2]), []).append(c)
        if c[1] is not None:
            by.setdefault(("adapter", c[0], c[2]), []).append(c)
            by.setdefault(("weight", c[0], c[1]), []).append(c)
    return [(key[0], members) for key, members in by.items()]


def coverage(conditions: Iterable[Condition], plan: PairPlan) -> dict[str, Any]:
    """What the stored tables hold, for the scores document (``comparisons.coverage``)."""
    conds = sorted(set(conditions), key=cond_order)
    largest = Counter()
    for kind, members in contexts(conds):
        largest[kind] = max(largest[kind], len(members))
    limit = plan.all_pairs_up_to
    partial = {"checkpoint": "against an anchor", "adapter": "on demand", "weight": "neighbouring weights"}
    out: dict[str, Any] = {"all_pairs_up_to": limit}
    for kind in ("checkpoint", "adapter", "weight"):
        out[kind] = "all pairs" if largest[kind] <= limit else partial[kind]
    anchors = {"(default)": plan.default_anchor} if plan.default_anchor else {}
    anchors.update({str(a): c for a, c in sorted(plan.anchors.items(), key=lambda t: str(t[0]))})
    out["anchors"] = anchors if out["checkpoint"] != "all pairs" else {}
    out["baseline"] = "all"
    out["on_demand"] = (
        "pairs not stored are computed when asked for (API, tab, CLI compare); their q-values count every "
        "pair of their table as tested (p = 1 where not computed)"
    )
    return out


def coverage_notes(cov: Mapping[str, Any], kinds: Sequence[str] = ("checkpoint", "adapter", "weight")) -> list[str]:
    """Plain sentences for the tables of ``kinds`` that do not hold every pair (run notes,
    report.md)."""
    limit = cov.get("all_pairs_up_to")
    notes = []
    if "checkpoint" in kinds and cov.get("checkpoint") == "against an anchor":
        anchors = ", ".join(f"{a}: {c}" for a, c in cov.get("anchors", {}).items()) or "the first checkpoint"
        notes.append(
            f"More than {limit} checkpoints: each is compared with one anchor ({anchors}), not with every other."
        )
    if "adapter" in kinds and cov.get("adapter") == "on demand":
        notes.append(f"More than {limit} adapters: adapter-vs-adapter comparisons are not stored.")
    if "weight" in kinds and cov.get("weight") == "neighbouring weights":
        notes.append(f"More than {limit} weights: each weight is compared with the next one up only.")
    if notes:
        notes.append(
            "Any other pair: `python -m lycoris_eval compare SCORES A B`, the tab's Compare view or the API "
            "(same difference, interval and p-value as if stored; raise --all-pairs-up-to to store every pair)."
        )
    return notes


def is_complete(section: Mapping[str, Any], kind: str) -> bool:
    """Whether the stored table ``kind`` holds every pair (documents without ``coverage``,
    written before it existed, always did)."""
    cov = section.get("coverage")
    return cov is None or cov.get(kind) in ("all pairs", "all")


def cond_order(c: Condition) -> tuple:
    return (str(c[0] or ""), c[1] is not None, str(c[1] or ""), -1.0 if c[2] is None else c[2])
