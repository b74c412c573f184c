"""Which epoch, at which weight? The analysis of a training run's saved epochs.

For every training run (:mod:`lycoris_eval.inputs.training_runs`) whose epochs are in the
grid, per checkpoint and weight, from the per-image values the scoring already has:

* **curves** — every image-level metric (and Vendi per prompt) over the run's steps, one
  line per weight, each point the mean with its 95 % interval (the stratified bootstrap of
  :mod:`.stats`, the same as the comparisons'), and the no-adapter baseline's level;
* **trade-off** — the LyCORIS paper's view (§5, seed 003): *fidelity* (DINOv2 image
  similarity to the reference, else Gram style loss to it) against *controllability*
  (text alignment on ``alter`` prompts), *diversity* (Vendi) and *preservation* (style loss
  to the no-adapter image on ``style`` prompts), one point per (epoch, weight), the
  Pareto-optimal ones marked;
* **over-training** (:mod:`.epoch_verdicts`) — the first epoch from which a side objective
  is clearly worse than at its best epoch while fidelity is not clearly better there;
  *under-trained* when fidelity still rises clearly at the last epoch;
* **side effects** — on prompts without the trigger word, how far the adapter moves the
  image from the no-adapter image at the same seed (the ``*_base`` metrics), with intervals;
* **one recommendation** (:mod:`.epoch_verdicts`) by a documented rule.

"Clearly" means what it means in every comparison here: Benjamini–Hochberg q ≤ 0.05 over
the run's tests **and** a 95 % interval that excludes 0 (:func:`.paired.settle`).
Pure numpy, deterministic (every resample is seeded from what it compares).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lycoris_eval.compare import stats
from lycoris_eval.compare.paired import PairedData, opening_status
from lycoris_eval.inputs.training_runs import Member, TrainingRun
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.metrics.vendi import vendi_score

Item = tuple[str | None, str, str | None, int]

# the four objectives of the trade-off view: (metric candidates in order of preference,
# prompt types it is read on (empty: every prompt), what it stands for)
OBJECTIVES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "fidelity": (("image_similarity", "style_loss_ref"), ("train", "trigger"), "closeness to the reference"),
    "controllability": (("text_alignment", "clip_score"), ("alter",), "follows prompts that alter the content"),
    "diversity": (("vendi",), (), "variety of the images of one prompt"),
    "preservation": (("style_loss_base", "ssim_base"), ("style",), "keeps the base model's look"),
}
LEAKAGE_METRICS = ("style_loss_base", "ssim_base", "psnr_base")


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    prompt_types: tuple[str, ...]  # empty: every prompt
    note: str | None = None  # where the preferred prompts were missing

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    def describe(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "title": METRICS[self.metric].title,
            "higher_is_better": self.higher_is_better,
            "prompts": list(self.prompt_types) or "all",
            "note": self.note,
        }


class RunData:
    """One training run's images, by (checkpoint, adapter, weight), with their values."""

    def __init__(self, run: TrainingRun, data: PairedData, trigger_words: Sequence[str]) -> None:
        self.run, self.data = run, data
        adapters = {c[1] for c, slot in data.by_condition.items() if slot}
        self.members: list[Member] = [m for m in run.members if m.adapter in adapters]
        mine = {m.adapter for m in self.members}
        self.checkpoints = sorted({c[0] for c in data.by_condition if c[1] in mine}, key=lambda c: c or "")
        self.weights = sorted({c[2] for c in data.by_condition if c[1] in mine and c[2] is not None})
        pattern = "|".join(re.escape(w) for w in trigger_words if w.strip())
        self.trigger = re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE) if pattern else None
        self._lines: dict[tuple[str | None, float], Line] = {}

    def line(self, checkpoint: str | None, weight: float) -> Line:
        """The saves of the run that have images at (checkpoint, weight), in step order."""
        key = (checkpoint, weight)
        if key not in self._lines:
            self._lines[key] = Line(self, checkpoint, weight)
        return self._lines[key]

    def no_trigger(self, items: Sequence[Item]) -> list[Item]:
        if self.trigger is None:
            return []
        return [i for i in items if i[0] is not None and not self.trigger.search(i[0])]

    def baseline(self, checkpoint: str | None, metric: str, items: Sequence[Item]) -> float | None:
        slot = self.data.by_condition.get((checkpoint, None, 0.0), {})
        values = [self.data.values.get(slot.get(i, -1), {}).get(metric) for i in items]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        return float(np.mean(finite)) if finite else None


class Line:
    """One (checkpoint, weight) of a run: only the saves with images there (a save missing at
    one weight or checkpoint leaves the others' analysis whole, and is named)."""

    def __init__(self, rd: RunData, checkpoint: str | None, weight: float) -> None:
        self.rd, self.checkpoint, self.weight = rd, checkpoint, weight
        by = rd.data.by_condition
        self.members = [m for m in rd.members if by.get((checkpoint, m.adapter, weight))]
        self.missing = [m for m in rd.members if not by.get((checkpoint, m.adapter, weight))]

    def slot(self, j: int) -> dict[Item, int]:
        return self.rd.data.by_condition.get((self.checkpoint, self.members[j].adapter, self.weight), {})

    def items(self, types: Sequence[str] = ()) -> list[Item]:
        """The pairs every save of the line has, of ``types`` (empty: all)."""
        sets = [set(self.slot(j)) for j in range(len(self.members))]
        common = set.intersection(*sets) if sets else set()
        chosen = [i for i in common if not types or i[1] in types]
        return sorted(chosen, key=item_order)

    def matrix(self, metric: str, items: Sequence[Item], saves: Sequence[int] | None = None) -> np.ndarray:
        """(items × saves) values of ``metric`` (``saves``: those columns only; default all);
        NaN where an image has none."""
        columns = list(range(len(self.members))) if saves is None else list(saves)
        out = np.full((len(items), len(columns)), np.nan)
        for k, j in enumerate(columns):
            slot = self.slot(j)
            for i, item in enumerate(items):
                value = self.rd.data.values.get(slot.get(item, -1), {}).get(metric)
                if value is not None:
                    out[i, k] = value
        return out

    def vendi_matrix(self, items: Sequence[Item], q: float) -> np.ndarray:
        """(prompts × saves) Vendi of each prompt's images (DINOv2), NaN below 2 images."""
        strata = sorted({i[:3] for i in items}, key=lambda s: tuple(str(x) for x in s))
        out = np.full((len(strata), len(self.members)), np.nan)
        dino = self.rd.data.dino
        for j in range(len(self.members)):
            slot = self.slot(j)
            for s, stratum in enumerate(strata):
                vectors = [dino[slot[i]] for i in items if i[:3] == stratum and slot.get(i) in dino]
                if len(vectors) >= 2:
                    out[s, j] = vendi_score(np.stack(vectors), q=q)
        return out

    def values(self, obj: Objective, q: float) -> tuple[list[Item], np.ndarray, list[object]] | None:
        """An objective's items, (rows × saves) values and the rows' strata (prompts for
        Vendi, whose row is one prompt); None when the line has no such pair."""
        items = self.items(obj.prompt_types)
        if not items or not self.members:
            return None
        if obj.metric == "vendi":
            values = self.vendi_matrix(items, q)
            return items, values, list(range(values.shape[0]))
        return items, self.matrix(obj.metric, items), [i[:3] for i in items]


def item_order(item: Item) -> tuple:
    return (item[0] or "", item[1], item[2] or "", item[3])


def objectives(metrics: Sequence[str], present_types: set[str]) -> dict[str, Objective]:
    """The objectives this evaluation can measure: the first of each one's metrics that was
    computed, on its prompt types where the grid has them (else every prompt, said)."""
    out: dict[str, Objective] = {}
    for name, (candidates, types, _what) in OBJECTIVES.items():
        metric = next((m for m in candidates if m in metrics), None)
        if metric is None:
            continue
        if types and not present_types & set(types):
            note = f"no {'/'.join(types)} prompts in the grid: read on every prompt"
            out[name] = Objective(name, metric, (), note)
        else:
            out[name] = Objective(name, metric, tuple(t for t in types if t in present_types))
    return out


def mean_intervals(values: np.ndarray, strata: Sequence[object], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Per column: mean, 95 % interval (stratified bootstrap, :func:`stats.interval_columns`)
    and n, over the rows where every column has a value."""
    rows = np.all(np.isfinite(values), axis=1)
    kept, labels = values[rows], [s for s, r in zip(strata, rows) if r]
    n = int(kept.shape[0])
    if n == 0:
        return [{"mean": None, "ci": None, "n": 0} for _ in range(values.shape[1])]
    means = kept.mean(axis=0)
    if n < stats.MIN_PAIRS:
        return [{"mean": float(m), "ci": None, "n": n} for m in means]
    ci = stats.interval_columns(kept, labels, rng)
    return [{"mean": float(m), "ci": [float(lo), float(hi)], "n": n} for m, (lo, hi) in zip(means, ci)]


def test_columns(
    diffs: np.ndarray, strata: Sequence[object], rng: np.random.Generator, higher: bool, unit: str = "image"
) -> list[dict[str, Any]]:
    """Paired tests of each column of differences (A − B) against 0, as entries
    :func:`.paired.settle` completes (q, status, seeds to add). ``unit``: what a row is —
    an image (more seeds add rows) or a prompt (Vendi: only more prompts do, so no seed
    advice)."""
    rows = np.all(np.isfinite(diffs), axis=1)
    kept, labels = diffs[rows], [s for s, r in zip(strata, rows) if r]
    n = int(kept.shape[0])
    prompts = len(set(labels))
    seeds = min((labels.count(s) for s in set(labels)), default=0)
    base = {"higher_is_better": higher, "n": n, "unit": unit, "prompts": prompts, "seeds": seeds, "q": None}
    base["clear"] = False
    base.update(better=None, pairs_needed=None, seeds_to_add=None, note=None)
    out = []
    ci = stats.interval_columns(kept, labels, rng) if n >= stats.MIN_PAIRS else None
    for j in range(kept.shape[1]):
        d = kept[:, j]
        diff = float(d.mean()) if n else None
        sd = float(d.std(ddof=1)) if n > 1 else float("nan")
        out.append({**base, "diff": diff, "_sd": sd, **opening_status(d, None if ci is None else ci[j])})
    return out


def curves(rd: RunData, checkpoint: str | None, metrics: Sequence[str], vendi_q: float) -> list[dict[str, Any]]:
    """Each image-level metric (and Vendi) over the run's saves, one line per weight."""
    out = []
    image_metrics = [m for m in metrics if METRICS[m].level == "image"]
    for weight in rd.weights:
        line = rd.line(checkpoint, weight)
        items = line.items()
        if not items:
            continue
        strata = [i[:3] for i in items]
        for metric in image_metrics:
            values = line.matrix(metric, items)
            if not np.isfinite(values).any():
                continue
            rng = stats.seed_rng("epochs-curve", rd.run.name, checkpoint, weight, metric)
            points = mean_intervals(values, strata, rng)
            out.append(_curve(line, metric, points, rd.baseline(checkpoint, metric, items)))
        if "vendi" in metrics and rd.data.dino:
            values = line.vendi_matrix(items, vendi_q)
            if np.isfinite(values).any():
                rng = stats.seed_rng("epochs-curve", rd.run.name, checkpoint, weight, "vendi")
                points = mean_intervals(values, list(range(values.shape[0])), rng)
                out.append(_curve(line, "vendi", points, None, unit="prompt"))
    return out


def _curve(
    line: Line, metric: str, points: list[dict[str, Any]], baseline: float | None, unit: str = "image"
) -> dict[str, Any]:
    return {
        "metric": metric,
        "weight": line.weight,
        "higher_is_better": METRICS[metric].higher_is_better,
        "unit": unit,  # what the interval resamples: images (stratified by prompt) or prompts
        "baseline": baseline,
        "points": [{**member_dict(m), **p} for m, p in zip(line.members, points)],
    }


def leakage(rd: RunData, checkpoint: str | None, metrics: Sequence[str]) -> dict[str, Any]:
    """Side effects: the ``*_base`` metrics on prompts without the trigger word, per save,
    and the last save against the first (paired: how much more it leaks)."""
    wanted = [m for m in LEAKAGE_METRICS if m in metrics]
    if rd.trigger is None:
        return {"status": "unknown", "why": "no trigger word known (give the trigger mapping)", "lines": []}
    if not wanted:
        return {"status": "unknown", "why": "no metric against the no-adapter image was computed", "lines": []}
    lines = []
    for weight in rd.weights:
        line = rd.line(checkpoint, weight)
        items = rd.no_trigger(line.items())
        if not items:
            continue
        strata = [i[:3] for i in items]
        for metric in wanted:
            values = line.matrix(metric, items)
            rng = stats.seed_rng("epochs-leak", rd.run.name, checkpoint, weight, metric)
            curve = _curve(line, metric, mean_intervals(values, strata, rng), None)
            if values.shape[1] >= 2:
                rng = stats.seed_rng("epochs-leak-growth", rd.run.name, checkpoint, weight, metric)
                diffs = values[:, [-1]] - values[:, [0]]
                growth = test_columns(diffs, strata, rng, METRICS[metric].higher_is_better)[0]
                growth.pop("_sd", None)
                curve["last_vs_first"] = growth
            lines.append(curve)
    if not lines:
        return {"status": "unknown", "why": "every prompt of the grid contains the trigger word", "lines": []}
    return {"status": "measured", "why": None, "lines": lines}


def member_dict(m: Member) -> dict[str, Any]:
    return {"adapter": m.adapter, "epoch": m.epoch, "step": m.step, "final": m.final}
