"""Paired comparisons (#13): the statistics against independent computations and
simulations with a known truth, the tables, FDR, orientation and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control, ttest_rel
from scipy.stats import t as t_dist

from lycoris_eval.compare import stats
from lycoris_eval.compare.paired import STATUS_A, STATUS_B, STATUS_FEW, STATUS_SAME, PairedData, compare_all
from lycoris_eval.compare.select import choices, flip, select
from lycoris_eval.errors import InputError


# -- statistics -------------------------------------------------------------------------
def test_paired_t_p_matches_scipy():
    rng = np.random.default_rng(3)
    for n in (3, 5, 12, 40):
        a, b = rng.normal(0.3, 1, n), rng.normal(0, 1, n)
        assert stats.paired_t_p(a - b) == pytest.approx(ttest_rel(a, b).pvalue)
    assert stats.paired_t_p(np.zeros(5)) == 1.0 and stats.paired_t_p(np.full(5, 0.2)) == 0.0


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(5).uniform(0, 0.2, 40)
    assert np.allclose(stats.benjamini_hochberg(p), false_discovery_control(p, method="bh"))
    assert stats.benjamini_hochberg([]) == []


def test_expanded_tail_widens_small_samples_and_tends_to_the_percentile():
    assert stats.expanded_tail(8) < 0.02
    assert stats.expanded_tail(10_000) == pytest.approx(0.025, abs=1e-3)


def test_pairs_needed_is_the_smallest_n_with_the_power():
    def enough(n, d, sd, alpha):
        return n >= ((t_dist.ppf(1 - alpha / 2, n - 1) + t_dist.ppf(0.8, n - 1)) * sd / d) ** 2

    for d, sd, alpha in ((0.5, 2.0, 0.05), (0.1, 0.3, 0.001), (1.0, 0.5, 0.05)):
        n = stats.pairs_needed(d, sd, alpha)
        assert enough(n, d, sd, alpha) and (n == stats.MIN_PAIRS or not enough(n - 1, d, sd, alpha))
    assert stats.pairs_needed(0.5, 2.0, 0.001) > stats.pairs_needed(0.5, 2.0, 0.05)  # a stricter level needs more
    assert stats.pairs_needed(0.0, 1.0) is None


# -- a synthetic paired table ----------------------------------------------------------
class _Meta:
    def __init__(self, checkpoint, adapter, weight, prompt, seed):
        self.checkpoint, self.adapter, self.weight = checkpoint, adapter, weight
        self.prompt, self.prompt_type, self.group, self.seed = prompt, "unspecified", None, seed


def paired(values_a, values_b, prompts=2, metric="image_similarity", names=("A", "B")):
    """Two checkpoints (A, B) of one baseline condition with the given per-image values;
    other ``names`` give the bootstrap another random stream (it is seeded by them)."""
    metas, values = [], {}
    per_prompt = len(values_a) // prompts
    for ck, vals in zip(names, (values_a, values_b)):
        for i, v in enumerate(vals):
            m = _Meta(ck, None, 0.0, f"p{i // per_prompt}", i)
            values[len(metas)] = {metric: float(v)}
            metas.append(m)
    return PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})


def one(values_a, values_b, **kw):
    section = compare_all(paired(values_a, values_b, **kw), ["image_similarity"], [], None, 1.0)
    (entry,) = section["entries"]
    return entry


def test_known_effect_is_detected_with_its_interval():
    rng = np.random.default_rng(10)
    base = rng.normal(0.5, 0.2, 20)
    entry = one(base + 0.1 + rng.normal(0, 0.03, 20), base)
    assert entry["status"] == STATUS_A and entry["better"] == "a" and entry["clear"]
    assert entry["ci"][0] < 0.1 < entry["ci"][1]
    assert entry["n"] == 20 and entry["prompts"] == 2 and entry["seeds"] == 10
    assert entry["a_wins"] + entry["b_wins"] + entry["ties"] == 20


@pytest.mark.parametrize("n, prompts", [(6, 2), (10, 2), (20, 4)])
def test_interval_covers_the_truth_at_about_the_stated_rate(n, prompts):
    """400 datasets with a true paired difference of 0.3 and prompt effects that pairing
    removes: the 95 % interval covers 0.3 in about 95 % of them (binomial SE ≈ 1.1 %)."""
    rng = np.random.default_rng(11)
    covered = 0
    for rep in range(400):
        b = rng.normal(0, 1, n) + np.repeat(rng.normal(0, 2, prompts), n // prompts)
        entry = one(b + 0.3 + rng.normal(0, 0.3, n), b, prompts=prompts, names=(f"A{rep}", f"B{rep}"))
        covered += entry["ci"][0] <= 0.3 <= entry["ci"][1]
    assert 0.91 <= covered / 400 <= 0.985


def test_no_effect_interval_covers_zero_and_is_rarely_called_clear():
    rng = np.random.default_rng(12)
    covers, clear = 0, 0
    for rep in range(300):
        b = rng.normal(0, 1, 12)
        entry = one(b + rng.normal(0, 0.5, 12), b, names=(f"A{rep}", f"B{rep}"))
        covers += entry["ci"][0] <= 0 <= entry["ci"][1]
        clear += entry["clear"]
    assert covers / 300 >= 0.90
    assert clear / 300 <= 0.07


def test_identical_images_give_exactly_zero():
    b = np.random.default_rng(13).normal(0, 1, 8)
    entry = one(b, b.copy())
    assert entry["diff"] == 0.0 and entry["ci"] == [0.0, 0.0] and entry["status"] == STATUS_SAME
    assert entry["ties"] == 8 and not entry["clear"]


def test_fewer_than_three_pairs_is_too_few_seeds():
    entry = one([0.9, 0.8], [0.1, 0.2], prompts=1)
    assert entry["status"] == STATUS_FEW and entry["ci"] is None and entry["p"] is None
    needed = stats.pairs_needed(0.7, float(np.std([0.8, 0.6], ddof=1)), alpha=0.05)
    assert entry["pairs_needed"] == needed and entry["seeds_to_add"] == needed - 2


def test_unclear_difference_suggests_seeds():
    rng = np.random.default_rng(14)
    b = rng.normal(0, 1, 6)
    a = b + 0.05 + rng.normal(0, 0.3, 6)
    entry = one(a, b)
    assert entry["status"] == "no clear difference"
    diffs = a - b
    expected = stats.pairs_needed(float(diffs.mean()), float(diffs.std(ddof=1)), alpha=0.05)  # one test in its table
    assert entry["pairs_needed"] == expected
    assert entry["seeds_to_add"] == max(1, math.ceil(expected / 2) - 3)


def test_same_data_same_numbers():
    b = np.random.default_rng(15).normal(0, 1, 10)
    assert one(b + 0.2, b) == one(b + 0.2, b)


def test_fdr_is_controlled_over_a_table():
    """Many checkpoints of pure noise plus a few real effects: the share of false 'clear'
    calls among all clear calls stays near or below 5 % on average."""
    rng = np.random.default_rng(16)
    fdp = []
    for _ in range(20):
        metas, values = [], {}
        effects = {f"ck{i:02d}": (0.8 if i < 4 else 0.0) for i in range(16)}
        for ck, effect in [("ref", 0.0), *effects.items()]:
            for s in range(10):
                values[len(metas)] = {"image_similarity": effect + float(rng.normal(0, 1))}
                metas.append(_Meta(ck, None, 0.0, "p", s))
        data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
        section = compare_all(data, ["image_similarity"], [], None, 1.0)
        calls = [e for e in section["entries"] if e["clear"]]
        false = [e for e in calls if effects.get(e["a"]["checkpoint"], 0) == effects.get(e["b"]["checkpoint"], 0)]
        fdp.append(len(false) / len(calls) if calls else 0.0)
        # never coloured as real with an interval across zero
        assert all(e["ci"][0] > 0 or e["ci"][1] < 0 for e in calls)
    assert np.mean(fdp) <= 0.08


# -- the document's tables and reading them back ----------------------------------------
def grid_document(rng, effect=0.2):
    """Two checkpoints × (baseline + one adapter at two weights) × 2 prompts × 4 seeds."""
    metas, values = [], {}
    for ck, shift in (("ckA", 0.0), ("ckB", 0.0)):
        for adapter, weight in ((None, 0.0), ("styleA", 0.5), ("styleA", 1.0)):
            for p in range(2):
                for s in range(4):
                    v = (effect * weight if adapter else 0.0) + shift + float(rng.normal(0, 0.01))
                    values[len(metas)] = {"image_similarity": v, "text_alignment": 0.3}
                    metas.append(_Meta(ck, adapter, weight, f"prompt {p}", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    return {
        "schema_version": 2,
        "comparisons": compare_all(data, ["image_similarity", "text_alignment"], [], None, 1.0),
    }


def test_the_four_tables_and_their_pairs():
    doc = grid_document(np.random.default_rng(17))
    section = doc["comparisons"]
    kinds = {e["kind"] for e in section["entries"]}
    assert kinds == {"checkpoint", "adapter", "weight", "baseline"} - {"adapter"}  # one adapter only
    # checkpoint: 3 conditions × 2 metrics; weight: 2 checkpoints × 2 metrics; baseline: 4 × 2
    assert section["tables"]["checkpoint"]["tests"] == 6
    assert section["tables"]["weight"]["tests"] == 4
    assert section["tables"]["baseline"]["tests"] == 8
    text = [e for e in section["entries"] if e["metric"] == "text_alignment"]
    assert all(e["status"] == STATUS_SAME for e in text)  # constant: exactly no difference
    base = [e for e in section["entries"] if e["kind"] == "baseline" and e["metric"] == "image_similarity"]
    assert all(e["status"] == STATUS_A for e in base)  # the adapter raises similarity, clearly


def test_select_orients_and_flip_negates():
    doc = grid_document(np.random.default_rng(18))
    forward = select(doc, "0.5", "1", {"metric": "image_similarity"})
    backward = select(doc, "weight:1", "weight:0.5", {"metric": "image_similarity"})
    assert forward["kind"] == "weight" and len(forward["entries"]) == 2
    for f, b in zip(forward["entries"], backward["entries"]):
        assert f["diff"] == pytest.approx(-b["diff"])
        assert f["ci"] == pytest.approx([-b["ci"][1], -b["ci"][0]])
        assert f["status"] == {STATUS_A: STATUS_B, STATUS_B: STATUS_A}.get(b["status"], b["status"])
    assert all(e["status"] == STATUS_B for e in forward["entries"])  # 0.5 is weaker than 1.0
    vs_base = select(doc, "baseline", "styleA", {"checkpoint": "ckA"})
    assert vs_base["kind"] == "baseline" and {e["a"]["adapter"] for e in vs_base["entries"]} == {None}
    e = vs_base["entries"][0]
    assert flip(flip(e)) == e


def test_select_errors_name_the_problem():
    doc = grid_document(np.random.default_rng(19))
    with pytest.raises(InputError, match=r"^a: 'ckZ' is not in this run; choose one of: checkpoint:ckA"):
        select(doc, "ckZ", "ckA")
    with pytest.raises(InputError, match=r"^a is a checkpoint and b an adapter: compare two of the same kind"):
        select(doc, "ckA", "styleA")
    with pytest.raises(InputError, match=r"^a and b are the same checkpoint: 'ckA'"):
        select(doc, "ckA", "checkpoint:ckA")
    with pytest.raises(InputError, match=r"schema version 1\) have no comparisons; evaluate the run again"):
        select({"schema_version": 1, "cells": []}, "ckA", "ckB")
    assert "baseline" in choices(doc) and "weight:0.5" in choices(doc)


def test_centroid_distance_and_vendi_from_dinov2_vectors():
    """The centroid distance is compared by the metric's own definition (normalised DINOv2
    vectors, per prompt): a point difference, no interval; Vendi likewise."""
    from lycoris_eval.scoring.metrics.fidelity import fidelity

    rng = np.random.default_rng(21)
    target = rng.normal(0, 1, (6, 16)) + 3.0
    metas, dino = [], {}
    for ck, shift in (("A", 2.5), ("B", 0.0)):
        for p in range(2):
            for s in range(6):
                dino[len(metas)] = rng.normal(0, 0.3, 16) + shift
                metas.append(_Meta(ck, None, 0.0, f"p{p}", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, {}, dino)
    section = compare_all(data, ["centroid_distance", "vendi"], [], target, 1.0)
    centroid, vendi = section["entries"]
    a, b = np.stack([dino[i] for i in range(12)]), np.stack([dino[i] for i in range(12, 24)])
    truth = np.mean([fidelity(a[k : k + 6], target)[1] - fidelity(b[k : k + 6], target)[1] for k in (0, 6)])
    assert centroid["metric"] == "centroid_distance" and centroid["n"] == 12 and centroid["prompts"] == 2
    assert centroid["diff"] == pytest.approx(truth) and centroid["ci"] is None and centroid["status"] == "no interval"
    assert vendi["interval"] == "none" and vendi["ci"] is None and vendi["status"] == "no interval"
    one_condition = PairedData.build(metas[:12], {id(m): i for i, m in enumerate(metas[:12])}, {}, dino)
    assert compare_all(one_condition, ["vendi"], [], None, 1.0)["entries"] == []  # nothing to compare


def test_centroid_distance_reads_normalised_vectors_like_the_metric():
    """B's vectors are A's times 3: the metric (normalised) sees no difference, and so must
    the comparison (it once used raw vectors and called B clearly better)."""
    rng = np.random.default_rng(22)
    metas, dino = [], {}
    base = [rng.normal(0, 1, 8) for _ in range(5)]
    for ck, scale in (("A", 1.0), ("B", 3.0)):
        for s in range(5):
            dino[len(metas)] = base[s] * scale
            metas.append(_Meta(ck, None, 0.0, "p", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, {}, dino)
    (entry,) = compare_all(data, ["centroid_distance"], [], rng.normal(0, 1, (4, 8)), 1.0)["entries"]
    assert entry["diff"] == pytest.approx(0.0, abs=1e-12) and not entry["clear"]


def test_huge_effects_pass_a_large_table():
    """4 checkpoints × (baseline + 3 adapters × 3 weights) × 4 metrics at 2 prompts × 4 seeds:
    one checkpoint 20σ off on one metric must come out clear in a 240-test table."""
    rng = np.random.default_rng(23)
    metas, values = [], {}
    metrics = ["image_similarity", "text_alignment", "style_loss_ref", "clip_score"]
    for c in range(4):
        for adapter, weight in [(None, 0.0)] + [(f"ad{a}", w) for a in range(3) for w in (0.5, 0.75, 1.0)]:
            for p in range(2):
                for s in range(4):
                    values[len(metas)] = {m: float(rng.normal()) for m in metrics}
                    if c == 0:
                        values[len(metas)]["image_similarity"] += 20.0
                    metas.append(_Meta(f"ck{c}", adapter, weight, f"p{p}", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    section = compare_all(data, metrics, [], None, 1.0)
    assert section["tables"]["checkpoint"]["tests"] == 6 * 10 * 4
    shifted = [
        e
        for e in section["entries"]
        if e["kind"] == "checkpoint"
        and e["metric"] == "image_similarity"
        and "ck0" in (e["a"]["checkpoint"], e["b"]["checkpoint"])
    ]
    assert len(shifted) == 30 and all(e["clear"] for e in shifted)
    false = [e for e in section["entries"] if e["clear"] and e not in shifted]
    assert len(false) <= 0.05 * section["tables"]["checkpoint"]["tests"]


def test_mixed_weight_adapters_weights_and_ambiguous_names():
    """An adapter mix without one weight (weight None) labels without crashing; a name that
    is both a checkpoint and an adapter asks for a prefix; weights pick by their text."""
    from lycoris_eval.report.sections import clearly_better_markdown
    from lycoris_eval.report.terminal import text_comparison

    rng = np.random.default_rng(24)
    metas, values = [], {}
    for ck in ("x", "y"):
        for adapter, weight in (("x", 1 / 3), ("mix:1 + other:0.5", None)):
            for s in range(6):
                values[len(metas)] = {"image_similarity": float(rng.normal()) + (3.0 if ck == "x" else 0.0)}
                metas.append(_Meta(ck, adapter, weight, "p", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    doc = {"schema_version": 2, "comparisons": compare_all(data, ["image_similarity"], [], None, 1.0), "metrics": {}}
    with pytest.raises(InputError, match=r"^a: 'x' is both checkpoint and adapter; write e.g. checkpoint:x"):
        select(doc, "x", "y")
    both = select(doc, "checkpoint:x", "checkpoint:y")
    assert len(both["entries"]) == 2 and all(e["clear"] for e in both["entries"])
    text = text_comparison(both, doc)
    assert "mix:1 + other:0.5 " in text and "x @0.3333" in text
    assert any("beats" in line for line in clearly_better_markdown(doc))
    assert "weight:0.333333" in choices(doc)
    with pytest.raises(InputError, match="a and b are the same weight"):
        select(doc, "weight:0.333333", "0.333333")


def test_duplicates_are_counted():
    metas, values = [], {}
    for ck in ("A", "B"):
        for s in (1, 1, 2, 3):  # seed 1 twice under each checkpoint
            values[len(metas)] = {"image_similarity": float(s)}
            metas.append(_Meta(ck, None, 0.0, "p", s))
    data = PairedData.build(metas, {id(m): i for i, m in enumerate(metas)}, values, {})
    assert data.duplicates == 2 and compare_all(data, ["image_similarity"], [], None, 1.0)["duplicates_ignored"] == 2
