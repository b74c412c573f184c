"""Paired comparisons (#13): the statistics against independent computations and
simulations with a known truth, the tables, FDR, orientation and the errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control, norm

from lycoris_eval import stats
from lycoris_eval.compare_view import choices, flip, select
from lycoris_eval.comparisons import STATUS_A, STATUS_B, STATUS_FEW, STATUS_SAME, PairedData, compare_all
from lycoris_eval.errors import InputError


# -- statistics -------------------------------------------------------------------------
def test_sign_flip_p_is_the_exact_enumeration():
    rng = np.random.default_rng(3)
    for n in (3, 5, 8):
        d = rng.normal(0.3, 1, n)
        brute = np.mean(
            [abs(np.mean(np.array(s) * d)) >= abs(d.mean()) - 1e-12 for s in itertools.product((-1, 1), repeat=n)]
        )
        assert stats.sign_flip_p(d, np.random.default_rng(0)) == pytest.approx(brute)
        assert stats.sign_flip_p(d, np.random.default_rng(0)) >= 2 / 2**n


def test_sign_flip_p_monte_carlo_is_close_to_exact_above_twelve_pairs():
    d = np.random.default_rng(4).normal(0.4, 1, 14)
    exact = np.mean(
        [abs(np.mean(np.array(s) * d)) >= abs(d.mean()) - 1e-12 for s in itertools.product((-1, 1), repeat=14)]
    )
    assert stats.sign_flip_p(d, np.random.default_rng(1)) == pytest.approx(exact, abs=0.02)


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(5).uniform(0, 0.2, 40)
    assert np.allclose(stats.benjamini_hochberg(p), false_discovery_control(p, method="bh"))
    assert stats.benjamini_hochberg([]) == []


def test_expanded_tail_widens_small_samples_and_tends_to_the_percentile():
    assert stats.expanded_tail(8) < 0.02
    assert stats.expanded_tail(10_000) == pytest.approx(0.025, abs=1e-3)


def test_pairs_needed_is_the_normal_approximation():
    z = norm.ppf(0.975) + norm.ppf(0.8)
    assert stats.pairs_needed(0.5, 2.0) == math.ceil((z * 2.0 / 0.5) ** 2)
    assert stats.pairs_needed(10.0, 0.1) == 6  # a sign-flip test needs 6 pairs for p < 0.05
    assert stats.pairs_needed(0.0, 1.0) is None


def test_centroid_comparison_equals_direct_computation():
    rng = np.random.default_rng(6)
    a, b, t = rng.normal(size=(5, 7)), rng.normal(size=(5, 7)) + 0.3, rng.normal(size=7)
    observed, boot, _ = stats.centroid_distance_comparison([(a, b)], t, np.random.default_rng(9))
    assert observed == pytest.approx(np.sum((a.mean(0) - t) ** 2) - np.sum((b.mean(0) - t) ** 2))
    # the same draws, computed directly on the vectors
    idx = np.random.default_rng(9).integers(0, 5, size=(stats.N_RESAMPLES, 5))
    direct = [np.sum((a[i].mean(0) - t) ** 2) - np.sum((b[i].mean(0) - t) ** 2) for i in idx[:50]]
    assert np.allclose(boot[:50], direct)


# -- a synthetic paired table ----------------------------------------------------------
class _Meta:
    def __init__(self, checkpoint, adapter, weight, prompt, seed):
        self.checkpoint, self.adapter, self.weight = checkpoint, adapter, weight
        self.prompt, self.prompt_type, self.group, self.seed = prompt, "unspecified", None, seed


def paired(values_a, values_b, prompts=2, metric="image_similarity"):
    """Two checkpoints (A, B) of one baseline condition with the given per-image values."""
    metas, values = [], {}
    per_prompt = len(values_a) // prompts
    for ck, vals in (("A", values_a), ("B", values_b)):
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
    for _ in range(400):
        b = rng.normal(0, 1, n) + np.repeat(rng.normal(0, 2, prompts), n // prompts)
        entry = one(b + 0.3 + rng.normal(0, 0.3, n), b, prompts=prompts)
        covered += entry["ci"][0] <= 0.3 <= entry["ci"][1]
    assert 0.91 <= covered / 400 <= 0.985


def test_no_effect_interval_covers_zero_and_is_rarely_called_clear():
    rng = np.random.default_rng(12)
    covers, clear = 0, 0
    for _ in range(300):
        b = rng.normal(0, 1, 12)
        entry = one(b + rng.normal(0, 0.5, 12), b)
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
    assert entry["seeds_to_add"] == 4  # to the 6 pairs a sign-flip test needs


def test_unclear_difference_suggests_seeds():
    rng = np.random.default_rng(14)
    b = rng.normal(0, 1, 6)
    a = b + 0.05 + rng.normal(0, 0.3, 6)
    entry = one(a, b)
    assert entry["status"] == "no clear difference"
    diffs = a - b
    expected = stats.pairs_needed(float(diffs.mean()), float(diffs.std(ddof=1)))
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
    """A's images sit nearer the reference centroid than B's: a clear, lower (better)
    centroid distance; Vendi gets a point difference without an interval."""
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
    assert centroid["metric"] == "centroid_distance" and centroid["status"] == STATUS_A and centroid["n"] == 12
    a = [dino[i] for i in range(12)]
    b = [dino[i] for i in range(12, 24)]
    t = target.mean(0)
    truth = np.mean(
        [np.sum((np.mean(a[k : k + 6], 0) - t) ** 2) - np.sum((np.mean(b[k : k + 6], 0) - t) ** 2) for k in (0, 6)]
    )
    assert centroid["diff"] == pytest.approx(truth) and centroid["ci"][0] < truth < centroid["ci"][1] < 0
    assert vendi["interval"] == "none" and vendi["ci"] is None and vendi["status"] == "no interval"
    same = compare_all(
        PairedData.build(metas[:12] * 1, {id(m): i for i, m in enumerate(metas[:12])}, {}, dino),
        ["vendi"],
        [],
        None,
        1.0,
    )
    assert same["entries"] == []  # one condition: nothing to compare
