"""Paired comparisons: is A really better than B, by how much, how sure?

A grid is paired by design: the same prompt and seed are generated under every
(checkpoint, adapter, weight). A *condition* is one (checkpoint, adapter, weight); a
*pair* is one (prompt, prompt type, X/Y/Z group, seed) seen under both conditions. Four
tables (``kind``):

* ``checkpoint`` — checkpoint vs checkpoint at the same adapter and weight (the baseline
  included);
* ``adapter`` — adapter vs adapter on the same checkpoint at the same weight;
* ``weight`` — weight vs weight of one adapter on one checkpoint;
* ``baseline`` — an adapter at a weight vs no adapter on the same checkpoint (metrics
  measured *against* the baseline image, like ``style_loss_base``, are left out there).

Up to 12 checkpoints (adapters, weights) a table holds every pair; beyond, which pairs it
holds is :mod:`.plan`'s choice, and the rest are computed on demand.

Per metric: the mean paired difference A − B, its 95 % interval and p-value from
:mod:`.stats`, A's wins/B's wins/ties, and a status. A difference is called *clear* only
when its Benjamini–Hochberg q-value over its table is ≤ 0.05 **and** its interval excludes
zero. Image-level metrics get intervals; the cell-level metrics (Vendi, centroid distance)
and the set-level ones (FD, KID, FID, IS) get a point difference and ``interval: none`` —
resampling repeats images, and a repeated image lowers Vendi, shrinks the spread term of the
squared centroid distance and biases FD/KID by construction.

Pure functions of their arguments (numpy only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lycoris_eval.compare import stats
from lycoris_eval.compare.plan import KINDS, Condition, PairPlan, coverage, families
from lycoris_eval.inputs.grouping import ImageMeta
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.metrics.fidelity import fidelity
from lycoris_eval.scoring.metrics.vendi import vendi_score

SET_LEVEL = ("fd_dinov2", "kid_dinov2", "fid_inception", "inception_score")
STATUS_A, STATUS_B = "A better", "B better"
STATUS_UNCLEAR, STATUS_SAME = "no clear difference", "no difference"
STATUS_FEW, STATUS_NO_INTERVAL = "too few seeds", "no interval"

Item = tuple[str | None, str, str | None, int]  # prompt, prompt type, group, seed


def condition_dict(cond: Condition) -> dict[str, Any]:
    return {"checkpoint": cond[0], "adapter": cond[1], "weight": cond[2]}


@dataclass
class PairedData:
    """Per condition, per pair item: the image's index in the table."""

    by_condition: dict[Condition, dict[Item, int]]
    values: dict[int, dict[str, float]]
    dino: dict[int, np.ndarray]
    duplicates: int = 0

    @classmethod
    def build(
        cls, metas: Sequence[ImageMeta], index: dict[int, int], values: dict[int, dict[str, float]], dino: dict
    ) -> PairedData:
        """``index`` maps ``id(meta)`` to its table index. Images without prompt or seed
        (no infotext) cannot be paired and are left out."""
        by: dict[Condition, dict[Item, int]] = {}
        duplicates = 0
        for meta in metas:
            if meta.seed is None or meta.prompt is None:
                continue
            cond = (meta.checkpoint, meta.adapter, 0.0 if meta.adapter is None else meta.weight)
            item = (meta.prompt, meta.prompt_type, meta.group, meta.seed)
            slot = by.setdefault(cond, {})
            if item in slot:
                duplicates += 1  # same condition, prompt and seed twice: the first one counts
                continue
            slot[item] = index[id(meta)]
        return cls(by, values, dino, duplicates)


def compare_all(
    data: PairedData,
    metrics: Sequence[str],
    summaries: Sequence[dict[str, Any]],
    target_dino: np.ndarray | None,
    vendi_q: float,
    plan: PairPlan | None = None,
) -> dict[str, Any]:
    """The ``comparisons`` section of the scores document: the tables ``plan`` holds
    (:mod:`.plan`; default: every pair up to its limit)."""
    plan = plan or PairPlan()
    entries = compare_families(families(data.by_condition, plan), data, metrics, summaries, target_dino, vendi_q)
    tables = apply_fdr(entries)
    return {
        "method": method(),
        "coverage": coverage(data.by_condition, plan),
        "tables": tables,
        "duplicates_ignored": data.duplicates,
        "entries": entries,
    }


def compare_families(
    wanted: Sequence[tuple[str, Condition, Condition]],
    data: PairedData,
    metrics: Sequence[str],
    summaries: Sequence[dict[str, Any]],
    target_dino: np.ndarray | None,
    vendi_q: float,
) -> list[dict[str, Any]]:
    """The entries of the (kind, A, B) in ``wanted``, every metric, before the FDR step
    (``q`` None; :func:`apply_fdr` sets it and the status)."""
    entries: list[dict[str, Any]] = []
    set_means = _set_means(summaries)
    for kind, a, b in wanted:
        items = sorted(set(data.by_condition[a]) & set(data.by_condition[b]), key=_item_order)
        for metric in metrics:
            info = METRICS[metric]
            if kind == "baseline" and info.needs == "baseline":
                continue
            ctx = _Pair(kind, a, b, metric, items, data)
            if info.level == "image":
                entry = ctx.image_level()
            elif metric == "centroid_distance":
                entry = ctx.centroid(target_dino) if target_dino is not None else None
            elif metric == "vendi":
                entry = ctx.vendi(vendi_q)
            else:
                entry = ctx.set_level(set_means)
            if entry is not None:
                entries.append(entry)
    return entries


def method() -> dict[str, Any]:
    return {
        "pairs": "same prompt, prompt type, X/Y/Z group and seed under A and B",
        "difference": "mean over pairs of A − B",
        "interval": f"{stats.CONFIDENCE:.0%} expanded percentile paired bootstrap, stratified by prompt",
        "resamples": stats.N_RESAMPLES,
        "p_value": "paired t-test",
        "fdr": f"Benjamini–Hochberg per table, clear when q ≤ {stats.ALPHA} and the interval excludes 0",
        "min_pairs": stats.MIN_PAIRS,
        "seeds_needed": f"paired t-test at {stats.POWER:.0%} power, at the level Benjamini–Hochberg asks of the table",
        "random_seed": "per comparison, from its kind, A, B and metric",
    }


class _Pair:
    """One comparison (kind, A, B, metric) over its shared items."""

    def __init__(self, kind: str, a: Condition, b: Condition, metric: str, items: list[Item], data: PairedData) -> None:
        self.kind, self.a, self.b, self.metric, self.data = kind, a, b, metric, data
        self.items = items
        self.rng = stats.seed_rng(kind, a, b, metric)
        self.higher = METRICS[metric].higher_is_better

    def _entry(self, n: int, strata: int, diff: float | None, **extra: Any) -> dict[str, Any]:
        seeds = self._seeds_per_prompt()
        return {
            "kind": self.kind,
            "a": condition_dict(self.a),
            "b": condition_dict(self.b),
            "metric": self.metric,
            "higher_is_better": self.higher,
            "n": n,
            "prompts": strata,
            "seeds": seeds,
            "diff": diff,
            "ci": None,
            "p": None,
            "q": None,
            "a_wins": None,
            "b_wins": None,
            "ties": None,
            "a_better_share": None,
            "interval": "none",
            "status": STATUS_NO_INTERVAL,
            "better": None,
            "clear": False,
            "pairs_needed": None,
            "seeds_to_add": None,
            "note": None,
            **extra,
        }

    def _seeds_per_prompt(self) -> int:
        counts: dict[tuple, int] = {}
        for item in self.items:
            counts[item[:3]] = counts.get(item[:3], 0) + 1
        return min(counts.values()) if counts else 0

    def image_level(self) -> dict[str, Any] | None:
        va, vb = self.data.by_condition[self.a], self.data.by_condition[self.b]
        rows = [
            (item[:3], self.data.values[va[item]][self.metric], self.data.values[vb[item]][self.metric])
            for item in self.items
            if self.metric in self.data.values.get(va[item], {}) and self.metric in self.data.values.get(vb[item], {})
        ]
        rows = [r for r in rows if math.isfinite(r[1]) and math.isfinite(r[2])]
        if not rows:
            return None
        strata = [r[0] for r in rows]
        diffs = np.array([r[1] - r[2] for r in rows], dtype=np.float64)
        n = diffs.size
        better_a = diffs > 0 if self.higher else diffs < 0
        better_b = diffs < 0 if self.higher else diffs > 0
        entry = self._entry(
            n,
            len(set(strata)),
            float(diffs.mean()),
            a_wins=int(better_a.sum()),
            b_wins=int(better_b.sum()),
            ties=int((diffs == 0).sum()),
            a_better_share=float(better_a.mean()),
        )
        sd = float(diffs.std(ddof=1)) if n > 1 else float("nan")
        # no bootstrap (and no draw from the rng) where the opening status needs no interval
        ci = stats.paired_interval(diffs, strata, self.rng)[0] if n >= stats.MIN_PAIRS and np.any(diffs) else None
        opening = opening_status(diffs, ci)
        if opening["status"] == STATUS_SAME:
            return {**entry, **opening, "interval": "bootstrap"}
        if opening["status"] == STATUS_FEW:
            return self._too_few(entry, sd)
        return self._with_interval(entry, ci, opening["p"], sd)

    def _dino_blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per stratum, the DINOv2 vectors of A and of B, row i of both the same seed."""
        va, vb, dino = self.data.by_condition[self.a], self.data.by_condition[self.b], self.data.dino
        blocks: dict[tuple, tuple[list, list]] = {}
        for item in self.items:
            if va[item] in dino and vb[item] in dino:
                pair = blocks.setdefault(item[:3], ([], []))
                pair[0].append(dino[va[item]])
                pair[1].append(dino[vb[item]])
        return [(np.stack(x), np.stack(y)) for x, y in blocks.values()]

    def centroid(self, target_dino: np.ndarray) -> dict[str, Any] | None:
        """The metric's own definition (``metrics.fidelity``: L2-normalised vectors), per
        prompt, averaged: a point difference without an interval. The squared distance of a
        sample centroid contains the spread term tr(Σ)/k, and a resample that repeats images
        shrinks it, so a bootstrap interval would be off-centre (and a difference in
        diversity would read as one in fidelity)."""
        arrays = self._dino_blocks()
        if not arrays:
            return None
        n = sum(x.shape[0] for x, _ in arrays)
        identical = all(np.array_equal(x, y) for x, y in arrays)
        diffs = [fidelity(x, target_dino)[1] - fidelity(y, target_dino)[1] for x, y in arrays]
        note = "no interval: the squared centroid distance also grows with spread, and resampling shrinks it"
        entry = self._entry(n, len(arrays), 0.0 if identical else float(np.mean(diffs)), note=note)
        return {**entry, "status": STATUS_SAME} if identical else entry

    def vendi(self, q: float) -> dict[str, Any] | None:
        arrays = self._dino_blocks()
        if not arrays:
            return None
        n = sum(x.shape[0] for x, _ in arrays)
        identical = all(np.array_equal(x, y) for x, y in arrays)
        diff = float(np.mean([vendi_score(x, q=q) - vendi_score(y, q=q) for x, y in arrays]))
        note = "no interval: a resample repeats images, and a repeated image lowers Vendi by construction"
        entry = self._entry(n, len(arrays), 0.0 if identical else diff, note=note)
        return {**entry, "status": STATUS_SAME} if identical else entry

    def set_level(self, set_means: dict[tuple, dict[str | None, dict[str, float]]]) -> dict[str, Any] | None:
        if not self.items:
            return None  # no prompt and seed in common: these two are not a paired comparison
        a_rows, b_rows = set_means.get(self.a, {}), set_means.get(self.b, {})
        groups = [g for g in a_rows if g in b_rows and self.metric in a_rows[g] and self.metric in b_rows[g]]
        if not groups:
            return None
        diff = float(np.mean([a_rows[g][self.metric] - b_rows[g][self.metric] for g in groups]))
        note = "no interval: set-level metric; a resample repeats images, which biases FD/KID by construction"
        entry = self._entry(len(self.items), len({i[:3] for i in self.items}), diff, note=note)
        return {**entry, "status": STATUS_SAME} if diff == 0.0 else entry

    def _too_few(self, entry: dict[str, Any], sd: float) -> dict[str, Any]:
        return {**entry, "status": STATUS_FEW, "note": f"fewer than {stats.MIN_PAIRS} pairs: no interval", "_sd": sd}

    def _with_interval(self, entry: dict[str, Any], ci: tuple[float, float], p: float, sd: float) -> dict[str, Any]:
        return {**entry, "ci": list(ci), "p": p, "interval": "bootstrap", "status": STATUS_UNCLEAR, "_sd": sd}


def opening_status(diffs: np.ndarray, ci: Sequence[float] | None) -> dict[str, Any]:
    """The status a paired test of the differences ``diffs`` (A − B) opens with, before the
    FDR step (:func:`settle`) makes it clear or not: "no difference" when every pair is
    equal, "too few pairs" without an interval (``ci`` None: fewer than
    ``stats.MIN_PAIRS``), else "no clear difference" with its interval and p-value. The one
    rule for a single comparison and for each column of a training run's curves."""
    if diffs.size and not np.any(diffs):
        return {"status": STATUS_SAME, "ci": [0.0, 0.0], "p": 1.0}
    if ci is None:
        return {"status": STATUS_FEW, "ci": None, "p": None}
    return {"status": STATUS_UNCLEAR, "ci": [float(ci[0]), float(ci[1])], "p": stats.paired_t_p(diffs)}


def apply_fdr(entries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """q-values per table, then the status of every entry with an interval, then the seeds
    what is not clear yet would need (at the level BH asks of its table); returns each
    table's count of tests and clear differences."""
    tables: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        own = [e for e in entries if e["kind"] == kind]
        p_values = [e["p"] for e in own if e["p"] is not None]
        clear = settle(own, stats.benjamini_hochberg(p_values), len(p_values))
        tables[kind] = {"tests": len(p_values), "clear": clear}
    return tables


def settle(entries: list[dict[str, Any]], q_values: Sequence[float], tests: int, clear_before: int = 0) -> int:
    """Give the entries of one table their q (``q_values`` in the order of the entries with
    a p-value), status and seeds to add, out of a family of ``tests`` tests of which
    ``clear_before`` others are clear; returns how many of ``entries`` are clear."""
    members = [e for e in entries if e["p"] is not None]
    for entry, q in zip(members, q_values):
        entry["q"] = q
        if entry["status"] == STATUS_SAME:
            continue
        lo, hi = entry["ci"]
        if q <= stats.ALPHA and (lo > 0 or hi < 0):
            a_better = (entry["diff"] > 0) == entry["higher_is_better"]
            entry.update(status=STATUS_A if a_better else STATUS_B, better="a" if a_better else "b", clear=True)
    clear = sum(1 for e in members if e["clear"])
    # BH rejects at p ≤ α·k/m: a new clear difference must reach about α·(clear + 1)/m
    level = stats.ALPHA * (clear_before + clear + 1) / max(1, tests)
    for entry in entries:
        if entry["status"] in (STATUS_UNCLEAR, STATUS_FEW):
            entry.update(_suggest(entry, entry.get("_sd", float("nan")), level))
        entry.pop("_sd", None)
    return clear


def _suggest(entry: dict[str, Any], sd: float, level: float) -> dict[str, Any]:
    """How many more seeds (per prompt) the difference would need to become clear."""
    prompts = max(1, entry["prompts"])
    diff = entry["diff"]
    needed = stats.pairs_needed(diff, sd, alpha=level) if diff is not None and math.isfinite(sd) else None
    if needed is None and entry["status"] == STATUS_FEW:
        needed = stats.MIN_PAIRS  # no spread to go by yet: at least enough for an interval
    if needed is None:
        note = "tiny against its spread: more seeds than can be suggested would be needed" if diff else None
        return {**entry, "pairs_needed": None, "seeds_to_add": None, "note": note or entry.get("note")}
    per_prompt = math.ceil(needed / prompts)
    if per_prompt > stats.MAX_SEEDS_SUGGESTED:
        note = f"tiny against its spread: more than {stats.MAX_SEEDS_SUGGESTED} seeds per prompt would be needed"
        return {**entry, "pairs_needed": needed, "seeds_to_add": None, "note": note}
    return {**entry, "pairs_needed": needed, "seeds_to_add": max(1, per_prompt - entry["seeds"])}


def _set_means(summaries: Sequence[dict[str, Any]]) -> dict[tuple, dict[str | None, dict[str, float]]]:
    out: dict[tuple, dict[str | None, dict[str, float]]] = {}
    for row in summaries:
        adapter = row.get("adapter")
        cond = (row.get("checkpoint"), adapter, 0.0 if adapter is None else row.get("weight"))
        means = {
            m: v["mean"] for m, v in row.get("metrics", {}).items() if m in SET_LEVEL and v.get("mean") is not None
        }
        out.setdefault(cond, {})[row.get("group")] = means
    return out


def _item_order(item: Item) -> tuple:
    return (item[0] or "", item[1], item[2] or "", item[3])
