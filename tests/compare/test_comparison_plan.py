"""Comparisons at scale: which pairs the tables store beyond ``all_pairs_up_to``, and the
pairs computed on demand giving the numbers a stored pair would have had."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from lycoris_eval.cli.main import main
from lycoris_eval.compare.on_demand import paired_from_document
from lycoris_eval.compare.paired import PairedData, compare_all
from lycoris_eval.compare.plan import PairPlan, families, make_plan
from lycoris_eval.compare.select import choices, select
from lycoris_eval.config import EvalConfig
from lycoris_eval.report.sections import clearly_better_markdown
from lycoris_eval.scoring.pipeline import evaluate
from lycoris_eval.tab.compare import compare_table
from tests.helpers import make_grid


def _all_pairs_by_definition(conds):
    """The four tables as #13 defines them, written out pair by pair (no grouping)."""
    out = set()
    for a, b in itertools.combinations(conds, 2):
        same = [a[i] == b[i] for i in range(3)]
        if same == [False, True, True]:
            out.add(("checkpoint", *sorted((a, b), key=str)))
        elif a[1] is not None and b[1] is not None and same in ([True, False, True], [True, True, False]):
            out.add(("adapter" if not same[1] else "weight", *sorted((a, b), key=str)))
    out |= {("baseline", c, (c[0], None, 0.0)) for c in conds if c[1] is not None and (c[0], None, 0.0) in conds}
    return out


def _conditions(n_checkpoints, adapters=("x", "y"), weights=(0.5, 1.0)):
    cks = [f"ck{i:02d}" for i in range(n_checkpoints)]
    return [(c, None, 0.0) for c in cks] + [(c, a, w) for c in cks for a in adapters for w in weights]


def _order_of_13(conds):
    """The order #13's tables had: conditions sorted, every i < j pair classified, then the
    baseline pairs, stable-sorted by table."""
    key = lambda c: (str(c[0] or ""), c[1] is not None, str(c[1] or ""), -1.0 if c[2] is None else c[2])  # noqa: E731
    conds = sorted(set(conds), key=key)
    out = []
    for i, a in enumerate(conds):
        for b in conds[i + 1 :]:
            same = [a[k] == b[k] for k in range(3)]
            if same == [False, True, True]:
                out.append(("checkpoint", a, b))
            elif a[1] is not None and b[1] is not None and same in ([True, False, True], [True, True, False]):
                out.append(("adapter" if not same[1] else "weight", a, b))
    out += [("baseline", a, (a[0], None, 0.0)) for a in conds if a[1] is not None and (a[0], None, 0.0) in conds]
    order = ("checkpoint", "adapter", "weight", "baseline")
    return sorted(out, key=lambda t: order.index(t[0]))


def test_small_runs_store_every_pair_of_the_definition_in_the_same_order():
    conds = _conditions(4)
    got = families(conds)
    assert {(k, *sorted((a, b), key=str)) if k != "baseline" else (k, a, b) for k, a, b in got} == (
        _all_pairs_by_definition(set(conds))
    )
    assert got == _order_of_13(conds)
    odd = [(None, None, 0.0), (None, "x", 1.0), ("ck1", "x", 1.0), ("ck1", "x", 0.5), ("ck0", None, 0.0)]
    assert families(odd) == _order_of_13(odd)  # images naming no checkpoint included


def test_a_context_within_the_limit_keeps_every_pair_and_a_missing_anchor_is_replaced():
    conds = _conditions(14, adapters=("x",), weights=(1.0,)) + [(f"ck{i:02d}", "x", 0.5) for i in range(3, 6)]
    got = families(conds, PairPlan(12, {"x": "ck03"}, "ck07"))
    small = {(a[0], b[0]) for k, a, b in got if k == "checkpoint" and a[1:] == ("x", 0.5)}
    assert small == {("ck03", "ck04"), ("ck03", "ck05"), ("ck04", "ck05")}  # 3 checkpoints: every pair
    no_adapter = {(a[0], b[0]) for k, a, b in got if k == "checkpoint" and a[1] is None}
    assert len(no_adapter) == 13 and all("ck07" in pair for pair in no_adapter)
    # the anchor ck03 lacks weight 1 of x: the default ck07 takes its place, else the first named
    gone = [c for c in conds if c != ("ck03", "x", 1.0)]
    pairs = {
        (a[0], b[0])
        for k, a, b in families(gone, PairPlan(12, {"x": "ck03"}, "ck07"))
        if k == "checkpoint" and a[1:] == ("x", 1.0)
    }
    assert len(pairs) == 12 and all("ck07" in pair for pair in pairs)
    pairs = {
        (a[0], b[0])
        for k, a, b in families(gone, PairPlan(12, {"x": "ck03"}, None))
        if k == "checkpoint" and a[1:] == ("x", 1.0)
    }
    assert len(pairs) == 12 and all("ck00" in pair for pair in pairs)


def test_images_naming_no_checkpoint_never_become_the_anchor():
    conds = [(None, None, 0.0), (None, "x", 1.0)] + _conditions(3, adapters=("x",), weights=(1.0,))
    plan = make_plan({c[0] for c in conds}, {"x": None}, None, 3)
    assert plan.default_anchor == "ck00"  # 4 checkpoints counted (the unnamed one too), none of them None
    pairs = [(a[0], b[0]) for k, a, b in families(conds, plan) if k == "checkpoint"]
    assert len(pairs) == 6 and all("ck00" in pair for pair in pairs)


def test_many_checkpoints_are_compared_with_their_anchor():
    conds = _conditions(14)
    plan = PairPlan(12, {"x": "ck03"}, "ck07")
    got = families(conds, plan)
    checkpoint = [(a, b) for k, a, b in got if k == "checkpoint"]
    # per (adapter, weight): 13 pairs, each with that adapter's anchor (y and no adapter: the default)
    assert len(checkpoint) == 13 * 5
    for a, b in checkpoint:
        anchor = {"x": "ck03"}.get(a[1], "ck07")
        assert anchor in (a[0], b[0]) and a[1:] == b[1:]
    assert sum(1 for k, *_ in got if k == "adapter") == 14 * 2  # 2 adapters: still every pair
    assert sum(1 for k, *_ in got if k == "baseline") == 14 * 4
    # all pairs would have been 91 per context
    assert len(families(conds, PairPlan(20))) - len(got) == (91 - 13) * 5


def test_many_adapters_and_weights():
    adapters = [f"a{i}" for i in range(4)]
    conds = _conditions(2, adapters, weights=(0.25, 0.5, 0.75, 1.0))
    got = families(conds, PairPlan(3))
    assert not [1 for k, *_ in got if k == "adapter"]  # 4 adapters > 3: on demand
    weights = [(a[2], b[2]) for k, a, b in got if k == "weight"]
    assert sorted(set(weights)) == [(0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]  # neighbours only
    assert len(weights) == 3 * 2 * 4


def test_make_plan_picks_the_anchor_and_says_so():
    cks = [f"ck{i}" for i in range(5)]
    members = [(c, "z", 1.0) for c in cks]

    def anchor(plan, adapter):
        return plan.anchor(adapter, [(c, adapter, 1.0) for c in cks])[0]

    notes: list[str] = []
    assert make_plan(cks, {"x": "ck3"}, None, 5, notes) == PairPlan(5) and notes == []  # not over the limit
    plan = make_plan(cks, {"x": "ck3", "y": "ck3", "z": None}, None, 4, notes)
    assert anchor(plan, "x") == "ck3" and anchor(plan, "z") == "ck3" and anchor(plan, None) == "ck3"
    assert "trained on" in notes[-1] and "5 checkpoints (more than 4)" in notes[-1]
    plan = make_plan(cks, {"x": "ck3"}, "models/ck1.safetensors [abc123]", 4, notes)
    assert anchor(plan, "x") == "ck3" and anchor(plan, None) == "ck1"  # a home wins for its adapter
    plan = make_plan(cks, {}, None, 4, notes)
    assert anchor(plan, None) == "ck0" and "--compare-to" in notes[-1]
    plan = make_plan(cks, {}, "ck9", 4, notes)
    assert anchor(plan, None) == "ck0" and "compare with 'ck9': no such checkpoint in this run" in notes[-2]
    make_plan(cks, {}, "ck2", 5, notes)
    assert notes[-1] == "compare with ck2: not needed, every pair of the 5 checkpoints is compared"
    assert plan.anchor("z", members[1:])[0] == "ck1"  # the default ck0 lacks this context


# -- the same numbers stored or on demand --------------------------------------------
class _Meta:
    def __init__(self, checkpoint, adapter, weight, prompt, seed):
        self.checkpoint, self.adapter, self.weight = checkpoint, adapter, weight
        self.prompt, self.prompt_type, self.group, self.seed = prompt, "plain", None, seed


def _synthetic(n_checkpoints=5, seeds=6):
    rng = np.random.default_rng(11)
    metas, values = [], {}
    for c in range(n_checkpoints):
        for adapter, weight in ((None, 0.0), ("x", 1.0)):
            for p in range(2):
                for s in range(seeds):
                    m = _Meta(f"ck{c}", adapter, weight, f"p{p}", s)
                    values[len(metas)] = {"image_similarity": float(rng.normal(0.05 * c, 0.1))}
                    metas.append(m)
    return metas, values


def _document(metas, values, plan):
    """A scores document as evaluate writes it: cells with per-image values, comparisons."""
    cells: dict[tuple, dict] = {}
    for i, m in enumerate(metas):
        key = (m.checkpoint, m.adapter, m.weight, m.prompt)
        cell = cells.setdefault(
            key,
            {
                "checkpoint": m.checkpoint,
                "adapter": m.adapter,
                "weight": m.weight,
                "prompt": m.prompt,
                "prompt_type": m.prompt_type,
                "group": None,
                "image_seeds": [],
                "values": {"image_similarity": []},
            },
        )
        cell["image_seeds"].append(m.seed)
        cell["values"]["image_similarity"].append(values[i]["image_similarity"])
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    comparisons = compare_all(data, ["image_similarity"], [], None, 1.0, plan)
    doc = {"schema_version": 2, "cells": list(cells.values()), "summaries": [], "comparisons": comparisons}
    doc["metrics"] = {"image_similarity": {}}
    return json.loads(json.dumps(doc)), data


def test_document_cells_pair_like_the_evaluation():
    metas, values = _synthetic()
    doc, data = _document(metas, values, PairPlan())
    again = paired_from_document(doc)
    assert set(again.by_condition) == set(data.by_condition)
    for cond, items in data.by_condition.items():
        assert {i: values[j] for i, j in items.items()} == {
            i: again.values[j] for i, j in again.by_condition[cond].items()
        }


def test_a_pair_on_demand_has_the_numbers_it_would_have_had_stored():
    metas, values = _synthetic()
    full, _ = _document(metas, values, PairPlan())
    partial, _ = _document(metas, values, PairPlan(3, {"x": "ck2"}, "ck0"))
    assert partial["comparisons"]["coverage"]["checkpoint"] == "against an anchor"
    stored = [e for e in partial["comparisons"]["entries"] if e["kind"] == "checkpoint"]
    assert all(
        {e["a"]["checkpoint"], e["b"]["checkpoint"]} & {"ck0" if e["a"]["adapter"] is None else "ck2"} for e in stored
    )
    assert "checkpoint:ck4" in choices(partial)
    asked = select(partial, "ck3", "ck1")
    assert asked["on_demand"] == 2 and all(e["on_demand"] for e in asked["entries"])
    reference = {e["a"]["adapter"]: e for e in select(full, "ck3", "ck1")["entries"]}
    assert select(full, "ck3", "ck1")["on_demand"] == 0
    for e in asked["entries"]:
        ref = reference[e["a"]["adapter"]]
        for key in ("diff", "ci", "p", "n", "a_wins", "b_wins", "ties", "seeds"):
            assert e[key] == ref[key], key
    # q: Benjamini–Hochberg over every pair the table could hold (5 checkpoints: 10 pairs in
    # each of 2 contexts), the stored, the asked and the never computed (p = 1)
    assert asked["on_demand_tests"] == 20
    p = [e["p"] for e in stored] + [e["p"] for e in asked["entries"]]
    q = false_discovery_control(p + [1.0] * (20 - len(p)), method="bh")[len(stored) : len(p)]
    assert [e["q"] for e in asked["entries"]] == pytest.approx(list(q))
    note = compare_table(partial, "ck3", "ck1")["note"]
    assert "2 rows computed just now" in note and "--all-pairs-up-to" in note
    assert "computed just now" not in compare_table(full, "ck3", "ck1")["note"]
    # a stored pair is read back, not recomputed
    again = select(partial, "ck2", "ck4")
    assert [e for e in again["entries"] if e["a"]["adapter"] == "x"][0].get("on_demand") is None


def test_an_evaluation_with_many_checkpoints_stores_anchored_pairs_and_answers_the_rest(tmp_path):
    grid = tmp_path / "grid"
    make_grid(grid, checkpoints=("ckA", "ckB", "ckC", "ckD"), adapters=(("styleA", 1.0),), seeds=(1, 2, 3, 4))
    config = EvalConfig(metrics=("psnr_base", "ssim_base"), all_pairs_up_to=3, trained_on={"styleA": "ckC"})
    doc = json.loads(json.dumps(evaluate(grid, config)))
    section = doc["comparisons"]
    assert section["coverage"]["checkpoint"] == "against an anchor"
    assert section["coverage"]["anchors"]["styleA"] == "ckC"
    pairs = {(e["a"]["checkpoint"], e["b"]["checkpoint"]) for e in section["entries"] if e["kind"] == "checkpoint"}
    assert pairs == {("ckA", "ckC"), ("ckB", "ckC"), ("ckC", "ckD")}
    assert any("4 checkpoints (more than 3)" in n for n in doc["run"]["notes"])
    verdicts = {v["checkpoint"]: v["verdict"] for v in doc["verdicts"]["entries"]}
    assert verdicts["ckC"] == "home" and all(verdicts[c] is not None for c in ("ckA", "ckB", "ckD"))
    text = "\n".join(clearly_better_markdown(doc))
    assert "More than 3 checkpoints: each is compared with one anchor ((default): ckC, styleA: ckC)" in text
    asked = select(doc, "ckA", "ckB")
    assert asked["on_demand"] == 2 and {e["metric"] for e in asked["entries"]} == {"psnr_base", "ssim_base"}
    full = json.loads(json.dumps(evaluate(grid, EvalConfig(metrics=("psnr_base", "ssim_base")))))
    assert full["comparisons"]["coverage"]["checkpoint"] == "all pairs"
    reference = {e["metric"]: e for e in select(full, "ckA", "ckB")["entries"]}
    for e in asked["entries"]:
        assert (e["diff"], e["ci"], e["p"]) == (
            reference[e["metric"]]["diff"],
            reference[e["metric"]]["ci"],
            reference[e["metric"]]["p"],
        )


def test_cli_options_reach_the_evaluation(tmp_path, capsys):
    grid = tmp_path / "grid"
    make_grid(grid, checkpoints=("ckA", "ckB", "ckC"), adapters=(("styleA", 1.0),), seeds=(1, 2, 3))
    out = tmp_path / "out"
    argv = ["evaluate", str(grid), "--metrics", "psnr_base", "--all-pairs-up-to", "2", "--compare-to", "ckB"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "scores.json").read_text())
    assert doc["comparisons"]["coverage"]["anchors"] == {"(default)": "ckB"}
    capsys.readouterr()
    assert main(["compare", str(out), "ckA", "ckC"]) == 0
    printed = capsys.readouterr().out
    assert "on demand" in printed and "psnr" in printed.lower()
    assert main(["evaluate", str(grid), "--all-pairs-up-to", "1", "--out", str(out), "--quiet"]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_many_adapters_are_said_and_their_pairs_judged_in_the_whole_table(tmp_path):
    grid = tmp_path / "grid"
    make_grid(grid, checkpoints=("ckA",), adapters=tuple((f"s{i}", 1.0) for i in range(4)), seeds=(1, 2, 3, 4))
    doc = json.loads(json.dumps(evaluate(grid, EvalConfig(metrics=("psnr_base", "ssim_base"), all_pairs_up_to=3))))
    section = doc["comparisons"]
    assert section["coverage"]["adapter"] == "on demand" and section["tables"]["adapter"]["tests"] == 0
    assert "More than 3 adapters: adapter-vs-adapter comparisons are not stored." in doc["run"]["notes"]
    assert "More than 3 adapters" in "\n".join(clearly_better_markdown(doc))
    asked = select(doc, "adapter:s0", "adapter:s2")
    assert asked["on_demand"] == 2 and asked["on_demand_tests"] == 6 * 2  # C(4, 2) pairs × 2 metrics
    p = [e["p"] for e in asked["entries"]]
    q = false_discovery_control(p + [1.0] * 10, method="bh")[:2]
    assert [e["q"] for e in asked["entries"]] == pytest.approx(list(q))
    baseline = select(doc, "adapter:s0", "baseline")
    assert baseline["kind"] == "baseline" and baseline["on_demand"] == 0  # the baseline table is always whole
    note = compare_table(doc, "adapter:s0", "adapter:s2")["note"]
    assert "this run's adapter table stores on demand only" in note and "all 12 tests" in note
    assert "No difference in this table has an interval yet" not in note
