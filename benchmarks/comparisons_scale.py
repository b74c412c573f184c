"""Paired comparisons on a grid with many checkpoints: every pair vs pairs with an anchor.

Synthetic per-image values (the comparisons never see an image), the shape of a sweep:
C checkpoints × (no adapter + A adapters × W weights) × P prompts × S seeds, six image-level
metrics. Both plans run alternately on the same data; the report gives entries, seconds and
JSON size of each, the ratio, the cost of one on-demand pair, and what the paper's
234 checkpoints would cost (extrapolated from the measured seconds per entry).

    .venv/bin/python benchmarks/comparisons_scale.py --checkpoints 16 --out benchmarks/results-comparisons-scale.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from lycoris_eval.compare.paired import PairedData, compare_all
from lycoris_eval.compare.plan import PairPlan, families
from lycoris_eval.compare.select import select

METRICS = ["image_similarity", "text_alignment", "style_loss_ref", "style_loss_base", "psnr_base", "ssim_base"]


class _Meta:
    def __init__(self, checkpoint, adapter, weight, prompt, seed):
        self.checkpoint, self.adapter, self.weight = checkpoint, adapter, weight
        self.prompt, self.prompt_type, self.group, self.seed = prompt, "plain", None, seed


def synthetic(checkpoints: int, adapters: int, weights: int, prompts: int, seeds: int):
    rng = np.random.default_rng(0)
    metas, values = [], {}
    conditions = [(None, 0.0)] + [(f"a{i}", w) for i in range(adapters) for w in np.linspace(0.25, 1.0, weights)]
    for c in range(checkpoints):
        for adapter, weight in conditions:
            for p in range(prompts):
                for s in range(seeds):
                    values[len(metas)] = {m: float(rng.normal(0.01 * c, 0.1)) for m in METRICS}
                    metas.append(_Meta(f"ck{c:03d}", adapter, float(weight), f"p{p}", s))
    return metas, values


def document(metas, values, section):
    cells: dict[tuple, dict] = {}
    for i, m in enumerate(metas):
        cell = cells.setdefault(
            (m.checkpoint, m.adapter, m.weight, m.prompt),
            {"checkpoint": m.checkpoint, "adapter": m.adapter, "weight": m.weight, "prompt": m.prompt}
            | {"prompt_type": "plain", "group": None, "image_seeds": [], "values": {k: [] for k in METRICS}},
        )
        cell["image_seeds"].append(m.seed)
        for k in METRICS:
            cell["values"][k].append(values[i][k])
    return {"cells": list(cells.values()), "summaries": [], "comparisons": section, "metrics": dict.fromkeys(METRICS)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", type=int, default=16)
    ap.add_argument("--adapters", type=int, default=4)
    ap.add_argument("--weights", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    metas, values = synthetic(args.checkpoints, args.adapters, args.weights, args.prompts, args.seeds)
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    plans = {"all pairs": PairPlan(all_pairs_up_to=10_000), "anchored": PairPlan(12, {}, "ck000")}
    times: dict[str, list[float]] = {k: [] for k in plans}
    sections: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, plan in plans.items():
            start = time.perf_counter()
            sections[name] = compare_all(data, METRICS, [], None, 1.0, plan)
            times[name].append(time.perf_counter() - start)
    doc = json.loads(json.dumps(document(metas, values, sections["anchored"])))
    start = time.perf_counter()
    asked = select(doc, "ck001", "ck002")
    on_demand_s = time.perf_counter() - start
    result: dict = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "grid": vars(args) | {"images": len(metas), "out": None},
        "on_demand": {"pair": "ck001 vs ck002", "entries": len(asked["entries"]), "seconds": round(on_demand_s, 3)},
    }
    for name in plans:
        entries = len(sections[name]["entries"])
        median = statistics.median(times[name])
        result[name] = {
            "entries": entries,
            "seconds": [round(t, 2) for t in times[name]],
            "median_s": round(median, 2),
            "ms_per_entry": round(1000 * median / entries, 3),
            "json_mb": round(len(json.dumps(sections[name])) / 1e6, 2),
        }
    result["ratio_all_to_anchored"] = round(result["all pairs"]["median_s"] / result["anchored"]["median_s"], 2)
    # the paper's study: 234 checkpoints, same adapters/weights/prompts/seeds as measured here
    conds = [(f"ck{c:03d}", a, w) for c in range(234) for a, w in {(m.adapter, m.weight) for m in metas}]
    for name, plan in plans.items():
        pairs = sum(1 for k, *_ in families(conds, plan))
        per_pair = result[name]["entries"] / len(families(data.by_condition, plan))
        est = pairs * per_pair
        result.setdefault("at_234_checkpoints", {})[name] = {
            "pairs": pairs,
            "entries": round(est),
            "minutes": round(est * result[name]["ms_per_entry"] / 60000, 1),
            "json_mb": round(est * result[name]["json_mb"] * 1e6 / result[name]["entries"] / 1e6),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
