"""The training-run analysis (issue #24) on synthetic per-image values with a known truth:
the rule finds the epoch, intervals cover the truth at about the stated rate, no effect
gives no over-training verdict."""

from __future__ import annotations

import numpy as np
import pytest

from lycoris_eval.compare import stats
from lycoris_eval.compare.epoch_verdicts import training_runs_section
from lycoris_eval.report.epochs_answer import training_run_answers
from tests.helpers import synthetic_training_run

METRICS = ["text_alignment", "image_similarity", "style_loss_base"]


def _section(run, data, trigger=("le_ink",)):
    return training_runs_section([run], data, METRICS, 1.0, list(trigger))


def _checkpoint(section, name="ckA"):
    return next(c for c in section["runs"][0]["checkpoints"] if c["checkpoint"] == name)


def test_interval_columns_equals_one_interval_at_a_time():
    rng = np.random.default_rng(3)
    values, strata = rng.normal(size=(24, 4)), [i // 6 for i in range(24)]
    together = stats.interval_columns(values, strata, np.random.default_rng(9))
    for j in range(4):
        alone, _ = stats.paired_interval(values[:, j], strata, np.random.default_rng(9))
        assert together[j] == pytest.approx(alone, abs=1e-12)


def test_the_rule_finds_the_epoch_where_alignment_falls_and_fidelity_has_stopped_rising():
    # alignment falls from epoch 5; fidelity rises until 5: over-trained from 6 (at 5 the
    # loss still buys fidelity: a trade-off, not over-training)
    run, data, _ = synthetic_training_run(peak=4, plateau=5, seeds=16)
    ck = _checkpoint(_section(run, data))
    for verdict in ck["overtraining"]:
        assert verdict["status"] == "over-trained", verdict
        assert verdict["from"]["epoch"] == 6
        side, fidelity = verdict["evidence"]
        # alignment or preservation (both are worse at 6 than at 5, where fidelity peaked)
        assert side["objective"] in ("controllability", "preservation") and side["clear"]
        assert (side["diff"] < 0) == side["higher_is_better"]
        assert side["against"]["epoch"] == 5 and fidelity["objective"] == "fidelity"
        # fidelity gained less than the margin (a tenth of the weight's effect), by its interval
        assert fidelity["ci"][1] < fidelity["margin"] == verdict["margin"]
        assert (side["ci"][1] < 0 or side["ci"][0] > 0) and side["q"] <= 0.05


def test_over_training_moves_with_the_truth():
    run, data, _ = synthetic_training_run(peak=7, plateau=7, rng_seed=5)
    ck = _checkpoint(_section(run, data))
    # alignment falls from epoch 8, where fidelity (flat from 7) has stopped rising
    assert {v["from"]["epoch"] for v in ck["overtraining"]} == {8}


def test_no_effect_gives_no_over_training_verdict():
    false = 0
    for seed in range(12):
        run, data, _ = synthetic_training_run(decline=0.0, rise=0.0, leak=0.0, rng_seed=100 + seed)
        ck = _checkpoint(_section(run, data))
        false += sum(v["status"] in ("over-trained", "under-trained") for v in ck["overtraining"])
    assert false <= 1  # 24 verdicts, each behind an FDR-controlled family


def test_under_trained_when_fidelity_still_rises_at_the_last_epoch():
    run, data, _ = synthetic_training_run(decline=0.0, plateau=99, rise=0.05, leak=0.0)
    ck = _checkpoint(_section(run, data))
    assert {v["status"] for v in ck["overtraining"]} == {"under-trained"}
    (evidence,) = ck["overtraining"][0]["evidence"]
    assert evidence["at"]["epoch"] == 10 and evidence["against"]["epoch"] == 9 and evidence["diff"] > 0


def test_curve_intervals_cover_the_truth_at_about_the_stated_rate():
    covered = total = 0
    for seed in range(8):
        run, data, truth = synthetic_training_run(rng_seed=200 + seed, noise=0.02)
        for curve in _checkpoint(_section(run, data))["curves"]:
            if curve["metric"] != "text_alignment":
                continue
            for point in curve["points"]:
                lo, hi = point["ci"]
                covered += lo <= truth("text_alignment", point["epoch"], curve["weight"]) <= hi
                total += 1
    assert total == 160 and 0.90 <= covered / total <= 0.99, covered / total


def test_one_recommendation_with_its_reasons():
    run, data, _ = synthetic_training_run(peak=4, plateau=5, seeds=16)
    ck = _checkpoint(_section(run, data))
    rec = ck["recommendation"]
    # weight 1.0 is clearly more faithful; its saves from 6 on are over-trained, so epoch 5
    # (the plateau's first save) is both the most faithful eligible point and the pick
    assert (rec["pick"]["epoch"], rec["pick"]["weight"]) == (5, 1.0) and rec["most_faithful"] == rec["pick"]
    assert all(c["epoch"] < 6 for c in rec["candidates"])  # never a save past the onset


def test_candidates_the_data_cannot_separate_say_so():
    # nothing declines and nothing leaks: every save past the plateau is as good
    run, data, _ = synthetic_training_run(decline=0.0, leak=0.0, plateau=5)
    section = _section(run, data)
    rec = _checkpoint(section)["recommendation"]
    sep = rec["separation"]
    assert len(rec["candidates"]) >= 2 and sep is not None and not sep["clear"]
    assert sep["candidates_tested"] == len(rec["candidates"]) - 1
    words = " ".join(training_run_answers({"training_runs": section})[0]["sentences"])
    assert "cannot yet tell" in words or "practically the same" in words


def test_few_seeds_give_no_early_onset_and_no_pick_past_it():
    """The review's case: 4 seeds, noisy; the truth is over-training from epoch 6 (alignment
    falls from 5, fidelity flat from 5) with a steady leak. A noisy fidelity gain must not
    read as "no gain" (it did: "over-trained from epoch 2" in 16 of 20 runs)."""
    early = picked_past = 0
    for seed in range(300, 320):
        run, data, _ = synthetic_training_run(rng_seed=seed, seeds=4, noise=0.02)
        ck = _checkpoint(_section(run, data))
        for v in ck["overtraining"]:
            if v["status"] == "over-trained":
                early += v["from"]["epoch"] < 6
                pick = ck["recommendation"]["pick"]
                picked_past += pick["weight"] == v["weight"] and pick["epoch"] >= v["from"]["epoch"]
    assert early <= 1 and picked_past == 0


def test_a_save_missing_at_one_checkpoint_leaves_the_rest_whole():
    run, data, _ = synthetic_training_run(checkpoints=("ckA", "ckB"), seeds=16)
    for w in (0.5, 1.0):
        del data.by_condition[("ckB", "mylora-000010", w)]
    ck = _checkpoint(_section(run, data), "ckB")
    assert [m["adapter"] for m in ck["missing"][0]["saves"]] == ["mylora-000010"]
    assert {v["status"] for v in ck["overtraining"]} == {"over-trained"}
    assert ck["recommendation"]["pick"]["epoch"] == 5 and len(ck["tradeoff"]) == 18
    assert all(len(c["points"]) == 9 for c in ck["curves"])


def test_without_text_alignment_the_pick_keeps_its_fidelity():
    """The review's case: 3 seeds, noisy, no text alignment: the lower weight lost half the
    effect and was picked because its loss was "not clear". Now a candidate must be within
    the margin by its interval, so the most faithful point stays the pick."""
    run, data, _ = synthetic_training_run(seeds=3, noise=0.05, decline=0.0)
    section = training_runs_section([run], data, ["image_similarity", "style_loss_base"], 1.0, ["le_ink"])
    rec = _checkpoint(section)["recommendation"]
    assert rec["pick"]["weight"] == 1.0 and rec["pick"] == rec["most_faithful"]


def test_pairing_sees_through_what_a_prompt_and_seed_share():
    # an offset per (prompt, seed) 20 times the noise, the same under every save and weight:
    # the paired tests still find the onset; the curves' means carry the offset's spread
    run, data, _ = synthetic_training_run(peak=4, plateau=5, seeds=16, shared=0.2)
    ck = _checkpoint(_section(run, data))
    assert {v["from"]["epoch"] for v in ck["overtraining"] if v["from"]} == {6}
    curve = next(c for c in ck["curves"] if c["metric"] == "text_alignment" and c["weight"] == 1.0)
    width = curve["points"][0]["ci"][1] - curve["points"][0]["ci"][0]
    evidence = ck["overtraining"][1]["evidence"][0]
    assert evidence["ci"][1] - evidence["ci"][0] < width / 5


def test_no_reference_no_recommendation_said_why():
    run, data, _ = synthetic_training_run()
    section = training_runs_section([run], data, ["text_alignment", "style_loss_base"], 1.0, ["le_ink"])
    ck = _checkpoint(section)
    assert ck["recommendation"]["pick"] is None and "reference" in ck["recommendation"]["why"]
    assert {v["status"] for v in ck["overtraining"]} <= {"costs grow", "no sign"}


def test_pareto_front_is_exactly_the_undominated_points():
    run, data, _ = synthetic_training_run()
    points = _checkpoint(_section(run, data))["tradeoff"]
    names = ("fidelity", "controllability", "preservation")
    signs = {"fidelity": 1, "controllability": 1, "preservation": -1}

    def dominates(a, b):
        return all(a[n] * signs[n] >= b[n] * signs[n] for n in names) and any(
            a[n] * signs[n] > b[n] * signs[n] for n in names
        )

    for p in points:
        assert p["pareto"] == (not any(dominates(o, p) for o in points if o is not p))
    assert any(p["pareto"] for p in points) and not all(p["pareto"] for p in points)


def test_side_effects_on_prompts_without_the_trigger_word():
    run, data, truth = synthetic_training_run(leak=0.01)
    leak = _checkpoint(_section(run, data))["leakage"]
    assert leak["status"] == "measured"
    line = next(x for x in leak["lines"] if x["metric"] == "style_loss_base" and x["weight"] == 1.0)
    means = [p["mean"] for p in line["points"]]
    assert means == sorted(means) and line["points"][0]["n"] == 8  # "a castle": the one prompt without it
    assert all(p["ci"][0] <= truth("style_loss_base", p["epoch"], 1.0) + 0.01 for p in line["points"])
    unknown = _checkpoint(_section(run, data, trigger=()))["leakage"]
    assert unknown["status"] == "unknown" and "trigger" in unknown["why"]


def test_objectives_say_which_prompts_they_read():
    run, data, _ = synthetic_training_run()
    objectives = _section(run, data)["objectives"]
    assert objectives["controllability"]["prompts"] == ["alter"]
    assert objectives["fidelity"]["metric"] == "image_similarity" and objectives["preservation"]["prompts"] == ["style"]
    run, data, _ = synthetic_training_run(prompts=(("le_ink cat", "unspecified"), ("a castle", "unspecified")))
    objectives = _section(run, data)["objectives"]
    assert objectives["controllability"]["prompts"] == "all" and "alter" in objectives["controllability"]["note"]


def test_a_grid_with_one_epoch_of_the_run_has_no_training_run():
    run, data, _ = synthetic_training_run(epochs=1)
    assert _section(run, data)["runs"] == []
