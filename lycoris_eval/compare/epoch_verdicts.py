"""The verdicts on a training run: over-training, under-training, the Pareto set and the one
(save, weight) to publish. The measurements come from :mod:`.epochs`; this module decides.

Two kinds of evidence, and which one each claim needs:

* **clearly different** — Benjamini–Hochberg q ≤ 0.05 over the run's tests and a 95 %
  interval excluding 0 (:func:`.paired.settle`, as in every comparison here);
* **no meaningful gain** — the 95 % interval of a fidelity difference lies below the
  *margin*: a tenth of what the run's adapter does to fidelity at that checkpoint (its most
  faithful point against the no-adapter images; without those, a tenth of the spread of
  the run's points). Evidence of absence, not absence of evidence: a noisy fidelity
  difference never counts as "no gain", so a few seeds cannot make a run look over-trained.

**Over-trained from save e** (per checkpoint and weight): some earlier save e′ is *clearly*
better on a side objective — controllability, diversity or preservation — and fidelity at e
has *no meaningful gain* over e′: the longer training paid a price and bought nothing. Every
pair of saves is tested (testing each save against the side objective's own best save would
pick that best by its noise). The paper's reading of its seed-003 scatter plots, made a
test. **Under-trained**: fidelity at the last save is clearly better than at the one before.

**The recommendation** (per checkpoint) — :data:`RULE`: of the Pareto-optimal (save, weight)
points before any over-training onset, those whose fidelity is *within the margin* of the
most faithful one's (by its interval); of those, the best text alignment on ``alter``
prompts (without that metric: the lower weight, then the earlier save). The pick is then
tested against every other candidate in one family; when it is not clearly ahead of the
runner-up the answer says so and how many seeds per prompt would tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lycoris_eval.compare import stats
from lycoris_eval.compare.epochs import (
    Line,
    Objective,
    RunData,
    curves,
    item_order,
    leakage,
    mean_intervals,
    member_dict,
    objectives,
    test_columns,
)
from lycoris_eval.compare.paired import PairedData, settle
from lycoris_eval.inputs.training_runs import TrainingRun

MARGIN_SHARE = 0.1  # "no meaningful gain": below a tenth of the adapter's effect on fidelity
RULE = (
    "Of the Pareto-optimal (save, weight) points before any over-training onset, those whose fidelity "
    "is within the margin of the most faithful point's (by its 95 % interval; margin: a tenth of the "
    "adapter's effect on fidelity at that checkpoint); of those, the best text alignment on alter prompts; "
    "ties to the lower weight, then the earlier save. Over-trained from the first save that an earlier "
    "save beats clearly on controllability, diversity or preservation while its fidelity gain over that "
    "save is within the margin (by its interval); under-trained when fidelity at the last save is clearly "
    "better than at the one before. Clear = Benjamini–Hochberg q ≤ 0.05 over the run's tests and a 95 % "
    "interval excluding 0."
)
SIDES = ("controllability", "diversity", "preservation")


def training_runs_section(
    runs: Sequence[TrainingRun],
    data: PairedData,
    metrics: Sequence[str],
    vendi_q: float,
    trigger_words: Sequence[str] = (),
    homes: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The ``training_runs`` section of the scores document (empty ``runs`` when the grid
    holds no two saves of one run)."""
    present_types = {item[1] for slot in data.by_condition.values() for item in slot}
    objs = objectives(metrics, present_types)
    out = []
    for run in runs:
        rd = RunData(run, data, trigger_words)
        if len(rd.members) < 2:
            continue
        out.append(_run(rd, objs, metrics, vendi_q, (homes or {}).get(rd.members[-1].adapter)))
    return {
        "rule": RULE,
        "margin_share": MARGIN_SHARE,
        "objectives": {name: obj.describe() for name, obj in objs.items()},
        "runs": out,
    }


def _run(
    rd: RunData, objs: Mapping[str, Objective], metrics: Sequence[str], vendi_q: float, home: str | None
) -> dict[str, Any]:
    family: list[dict[str, Any]] = []  # every over-training test of the run: one BH family
    pending = []
    for checkpoint in rd.checkpoints:
        measured = {w: _measure(rd.line(checkpoint, w), objs, vendi_q) for w in rd.weights}
        margin = _margin(rd, checkpoint, objs, measured)  # across weights: for the pick
        tests = {w: _overtraining_tests(rd.line(checkpoint, w), objs, measured[w]) for w in rd.weights}
        family.extend(e for per in tests.values() for e in per)
        pending.append((checkpoint, measured, margin, tests))
    with_p = [e for e in family if e["p"] is not None]
    settle(family, stats.benjamini_hochberg([e["p"] for e in with_p]), len(with_p))
    checkpoints = []
    for checkpoint, measured, margin, tests in pending:
        lines = {w: rd.line(checkpoint, w) for w in rd.weights}
        # a weight's own effect sets its margin: 0.02 is a real gain at a weight whose whole
        # effect is 0.17, however large the effect at another weight
        verdicts = [
            _overtraining_verdict(lines[w], tests[w], objs, _margin(rd, checkpoint, objs, {w: measured[w]}))
            for w in rd.weights
        ]
        trade = _tradeoff(lines, objs, measured)
        checkpoints.append(
            {
                "checkpoint": checkpoint,
                "home": home is not None and checkpoint == home,
                "fidelity_margin": margin,  # the pick's; each over-training verdict carries its own
                "missing": [
                    {"weight": w, "saves": [member_dict(m) for m in line.missing]}
                    for w, line in lines.items()
                    if line.missing
                ],
                "curves": curves(rd, checkpoint, metrics, vendi_q),
                "tradeoff": trade,
                "overtraining": verdicts,
                "leakage": leakage(rd, checkpoint, metrics),
                "recommendation": _recommend(rd, checkpoint, objs, trade, verdicts, margin),
            }
        )
    return {
        **rd.run.to_dict(),
        "in_grid": [member_dict(m) for m in rd.members],
        "weights": rd.weights,
        "home": home,
        "checkpoints": checkpoints,
    }


Measured = dict[str, tuple[list, np.ndarray, list]]  # objective -> (items, rows × saves, strata)


def _measure(line: Line, objs: Mapping[str, Objective], vendi_q: float) -> Measured:
    out: Measured = {}
    for name, obj in objs.items():
        found = line.values(obj, vendi_q)
        if found is not None and np.isfinite(found[1]).any():
            out[name] = found
    return out


def _column_means(values: np.ndarray) -> np.ndarray:
    rows = np.all(np.isfinite(values), axis=1)
    return values[rows].mean(axis=0) if rows.any() else np.full(values.shape[1], np.nan)


def _margin(
    rd: RunData, checkpoint: str | None, objs: Mapping[str, Objective], measured: Mapping[float, Measured]
) -> float | None:
    """A tenth of the adapter's effect on fidelity in ``measured`` (one weight, or all of a
    checkpoint's): its most faithful point against the no-adapter images (else the spread of
    the points); None without fidelity."""
    fid = objs.get("fidelity")
    if fid is None:
        return None
    means, items = [], set()
    for per in measured.values():
        if "fidelity" in per:
            found_items, values, _ = per["fidelity"]
            means.extend(float(v) for v in _column_means(values) if np.isfinite(v))
            items.update(found_items)
    if not means:
        return None
    best = max(means) if fid.higher_is_better else min(means)
    base = rd.baseline(checkpoint, fid.metric, sorted(items, key=item_order))
    effect = abs(best - base) if base is not None else max(means) - min(means)
    return MARGIN_SHARE * effect if effect > 0 else None


def _overtraining_tests(line: Line, objs: Mapping[str, Objective], measured: Measured) -> list[dict[str, Any]]:
    """Every later save against every earlier one (A = the later) on every objective measured."""
    pairs = [(later, earlier) for later in range(1, len(line.members)) for earlier in range(later)]
    tests: list[dict[str, Any]] = []
    for name in ("fidelity", *SIDES):
        if not pairs or name not in measured:
            continue
        obj = objs[name]
        _items, values, strata = measured[name]
        diffs = values[:, [a for a, _ in pairs]] - values[:, [b for _, b in pairs]]
        rng = stats.seed_rng("epochs-pairs", line.rd.run.name, line.checkpoint, line.weight, name)
        unit = "prompt" if obj.metric == "vendi" else "image"
        for (a, b), entry in zip(pairs, test_columns(diffs, strata, rng, obj.higher_is_better, unit)):
            role = "fidelity" if name == "fidelity" else "side"
            tests.append({**entry, "role": role, "objective": name, "metric": obj.metric, "at": a, "against": b})
    return tests


def _gain_upper(entry: Mapping[str, Any]) -> float | None:
    """The upper end of the 95 % interval of A's gain over B (oriented: positive = better)."""
    ci = entry.get("ci")
    if not ci:
        return None
    return ci[1] if entry["higher_is_better"] else -ci[0]


def _public(entry: Mapping[str, Any], line: Line, margin: float | None = None) -> dict[str, Any]:
    keys = ("objective", "metric", "higher_is_better", "diff", "ci", "p", "q", "n", "unit", "status", "clear")
    out = {
        **{k: entry.get(k) for k in keys},
        "seeds_to_add": entry.get("seeds_to_add") if entry.get("unit") != "prompt" else None,
        "at": member_dict(line.members[entry["at"]]),
        "against": member_dict(line.members[entry["against"]]),
    }
    if margin is not None:
        out["margin"] = margin
    return out


def _overtraining_verdict(
    line: Line, tests: list[dict[str, Any]], objs: Mapping[str, Objective], margin: float | None
) -> dict[str, Any]:
    base = {"weight": line.weight, "margin": margin, "missing": [member_dict(m) for m in line.missing]}
    fidelity = {(t["at"], t["against"]): t for t in tests if t["role"] == "fidelity"}
    sides = [t for t in tests if t["role"] == "side"]
    worse = sorted(
        (t for t in sides if t["clear"] and t["better"] == "b"), key=lambda t: (t["at"], -abs(t["diff"] or 0.0))
    )
    for side in worse:
        if "fidelity" not in objs:  # nothing to weigh the cost against
            evidence = [_public(side, line)]
            return {**base, "status": "costs grow", "from": member_dict(line.members[side["at"]]), "evidence": evidence}
        fid = fidelity.get((side["at"], side["against"]))
        upper = _gain_upper(fid) if fid is not None else None
        if margin is None or upper is None or upper >= margin:
            continue  # a fidelity gain that may matter (or cannot be told): a trade-off, not over-training
        evidence = [_public(side, line), _public(fid, line, margin)]
        return {**base, "status": "over-trained", "from": member_dict(line.members[side["at"]]), "evidence": evidence}
    last = len(line.members) - 1
    under = fidelity.get((last, last - 1))
    if under is not None and under["clear"] and under["better"] == "a":
        return {**base, "status": "under-trained", "from": None, "evidence": [_public(under, line)]}
    if not sides and not fidelity:
        return {**base, "status": "cannot tell", "from": None, "evidence": []}
    unclear = [t for t in sides if not t["clear"] and t.get("seeds_to_add") and t.get("unit") != "prompt"]
    more = min((t["seeds_to_add"] for t in unclear), default=None)
    return {**base, "status": "no sign", "from": None, "evidence": [], "seeds_to_add": more}


def _tradeoff(
    lines: Mapping[float, Line], objs: Mapping[str, Objective], measured: Mapping[float, Measured]
) -> list[dict[str, Any]]:
    """One point per (save, weight) with each objective's mean; ``pareto`` marks the front
    among the points that have every objective measured."""
    points = []
    for weight, line in lines.items():
        cols = {name: _column_means(values) for name, (_i, values, _s) in measured[weight].items()}
        for j, member in enumerate(line.members):
            values = {name: (float(c[j]) if np.isfinite(c[j]) else None) for name, c in cols.items()}
            points.append({**member_dict(member), "index": j, "weight": weight, **values, "pareto": False})
    names = [n for n in objs if any(p.get(n) is not None for p in points)]
    signs = {n: 1.0 if objs[n].higher_is_better else -1.0 for n in names}
    full = [p for p in points if all(p.get(n) is not None for n in names)]
    for p in full:
        mine = [p[n] * signs[n] for n in names]
        p["pareto"] = bool(names) and not any(
            all(o[n] * signs[n] >= v for n, v in zip(names, mine))
            and any(o[n] * signs[n] > v for n, v in zip(names, mine))
            for o in full
            if o is not p
        )
    return points


def _pair_tests(
    rd: RunData, checkpoint: str | None, obj: Objective, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Point a against point b (any saves and weights) on ``obj``, over their common pairs;
    one entry per pair, settled together as one family."""
    out = []
    for a, b in pairs:
        la, lb = rd.line(checkpoint, a["weight"]), rd.line(checkpoint, b["weight"])
        items = sorted(set(la.items(obj.prompt_types)) & set(lb.items(obj.prompt_types)), key=item_order)
        va = la.matrix(obj.metric, items, [a["index"]])[:, 0]  # the one save each side compares
        vb = lb.matrix(obj.metric, items, [b["index"]])[:, 0]
        seed = (a["index"], a["weight"], b["index"], b["weight"])
        rng = stats.seed_rng("epochs-pick", rd.run.name, checkpoint, obj.name, *seed)
        out.append(test_columns((va - vb)[:, None], [i[:3] for i in items], rng, obj.higher_is_better)[0])
    with_p = [t for t in out if t["p"] is not None]
    settle(out, stats.benjamini_hochberg([t["p"] for t in with_p]), len(with_p))
    return out


def _before_onset(rd: RunData, p: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the point's save comes before its weight's over-training onset (if any)."""
    onset = next((v["from"] for v in verdicts if v["weight"] == p["weight"] and v["status"] == "over-trained"), None)
    if onset is None:
        return True
    order = [m.adapter for m in rd.members]
    return order.index(p["adapter"]) < order.index(onset["adapter"])


def _recommend(
    rd: RunData,
    checkpoint: str | None,
    objs: Mapping[str, Objective],
    trade: list[dict[str, Any]],
    verdicts: Sequence[Mapping[str, Any]],
    margin: float | None,
) -> dict[str, Any]:
    fid = objs.get("fidelity")
    if fid is None:
        why = "no reference images: fidelity cannot be measured (give the training images as the reference)"
        return {"pick": None, "why": why}
    points = [p for p in trade if p.get("fidelity") is not None]
    if not points:
        return {"pick": None, "why": "no image of the run could be scored for fidelity"}
    eligible = [p for p in points if _before_onset(rd, p, verdicts)] or points
    sign = 1.0 if fid.higher_is_better else -1.0
    top = max(eligible, key=lambda p: (sign * p["fidelity"], -abs(p["weight"]), -p["index"]))
    front = [p for p in eligible if p["pareto"] and p is not top]
    tests = _pair_tests(rd, checkpoint, fid, [(p, top) for p in front])
    close = [p for p, t in zip(front, tests) if margin is not None and _within(t, margin)]
    candidates = [top, *close]
    ctrl = objs.get("controllability")
    if ctrl is not None and all(p.get("controllability") is not None for p in candidates):
        c_sign = 1.0 if ctrl.higher_is_better else -1.0
        ranked = sorted(candidates, key=lambda p: (-c_sign * p["controllability"], abs(p["weight"]), p["index"]))
        judge = ctrl
    else:
        ranked = sorted(candidates, key=lambda p: (abs(p["weight"]), p["index"]))
        judge = fid
    pick = ranked[0]
    versus = None if pick is top else tests[front.index(pick)]
    separation = None
    if len(ranked) > 1:  # the pick against every other candidate, one family (it was chosen first)
        others = ranked[1:]
        against = _pair_tests(rd, checkpoint, judge, [(pick, o) for o in others])
        runner, t = others[0], against[0]
        separation = {
            "runner_up": _point(runner),
            "objective": "controllability" if judge is ctrl else "fidelity",
            "candidates_tested": len(others),
            **{k: t.get(k) for k in ("diff", "ci", "n", "status", "clear", "seeds_to_add")},
        }
    found = rd.line(checkpoint, pick["weight"]).values(fid, 1.0)  # fidelity is never Vendi: q unused
    pick_fidelity = None
    if found is not None:
        _items, values, strata = found
        rng = stats.seed_rng("epochs-pick-fidelity", rd.run.name, checkpoint, pick["adapter"], pick["weight"])
        pick_fidelity = mean_intervals(values[:, [pick["index"]]], strata, rng)[0]
    return {
        "pick": _point(pick),
        "pick_fidelity": pick_fidelity,  # mean, 95 % interval and n on the fidelity objective's prompts
        "most_faithful": _point(top),
        "fidelity_vs_most_faithful": None
        if versus is None
        else {k: versus.get(k) for k in ("diff", "ci", "n", "status", "clear")},
        "fidelity_margin": margin,
        "candidates": [_point(p) for p in ranked],
        "separation": separation,
        "why": None,
    }


def _within(entry: Mapping[str, Any], margin: float) -> bool:
    """A's loss of fidelity against B is smaller than ``margin``, by its 95 % interval."""
    ci = entry.get("ci")
    if not ci:
        return False
    lower = ci[0] if entry["higher_is_better"] else -ci[1]
    return lower > -margin


def _point(p: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("adapter", "epoch", "step", "final", "weight", "fidelity", "controllability", "diversity", "preservation")
    return {k: p.get(k) for k in keys if k in p}
