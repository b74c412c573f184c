"""Transfer verdicts (#13) on constructed comparison tables: each rule, each way round."""

from __future__ import annotations

import pytest

from lycoris_eval.compare.verdicts import home_checkpoints, is_checkpoint, verdicts

HOME, HERE, X = "sd15", "anime", "inkwash"


def entry(kind, a, b, metric, better=None, ci=True):
    """A comparison entry as comparisons.compare_all writes it: ``better`` "a"/"b" makes it
    clear; ``ci=False`` is a "too few seeds" entry."""
    return {
        "kind": kind,
        "a": dict(zip(("checkpoint", "adapter", "weight"), a)),
        "b": dict(zip(("checkpoint", "adapter", "weight"), b)),
        "metric": metric,
        "ci": [0.1, 0.2] if ci else None,
        "clear": better is not None,
        "better": better,
    }


def table(here_vs_home=None, effect_here="a", effect_home="a", text_vs_base=None, ci=True, w=1.0, flip=False):
    """Comparisons for one adapter at weight ``w``: HERE vs HOME (checkpoint table) per
    metric in ``here_vs_home`` ({metric: "here"/"home"/None}), and the adapter vs the
    no-adapter images on each checkpoint for fidelity (``effect_*``: "a" = clearly better
    with the adapter, "b" = clearly worse, None = unclear)."""
    here, home = (HERE, X, w), (HOME, X, w)
    out = []
    for metric, who in (here_vs_home or {}).items():
        better = {"here": "a", "home": "b", None: None}[who]
        if flip:  # stored the other way round (HOME as A): must read the same
            better = {"a": "b", "b": "a", None: None}[better]
            out.append(entry("checkpoint", home, here, metric, better, ci))
        else:
            out.append(entry("checkpoint", here, home, metric, better, ci))
    out.append(entry("baseline", here, (HERE, None, 0.0), "image_similarity", effect_here, ci))
    out.append(entry("baseline", home, (HOME, None, 0.0), "image_similarity", effect_home, ci))
    if text_vs_base is not None:
        out.append(entry("baseline", here, (HERE, None, 0.0), "text_alignment", text_vs_base, ci))
    return {"entries": out}


def verdict_of(comparisons):
    (here,) = [v for v in verdicts(comparisons, [X], [HERE, HOME], {X: HOME}) if v["checkpoint"] == HERE]
    return here


@pytest.mark.parametrize("flip", [False, True])
def test_transfers_when_it_works_here_and_nothing_is_worse(flip):
    v = verdict_of(table({"image_similarity": None, "text_alignment": "here"}, flip=flip))
    assert v["verdict"] == "transfers" and v["weights"] == [1.0]


@pytest.mark.parametrize("flip", [False, True])
def test_weaker_when_a_metric_is_clearly_worse_than_at_home(flip):
    v = verdict_of(table({"image_similarity": None, "style_loss_base": "home"}, flip=flip))
    assert v["verdict"] == "weaker" and "style_loss_base" in v["reason"]


def test_breaks_when_the_effect_is_gone_and_fidelity_is_worse():
    v = verdict_of(table({"image_similarity": "home"}, effect_here=None))
    assert v["verdict"] == "breaks" and "no effect here" in v["reason"]


def test_breaks_when_text_alignment_is_lost():
    v = verdict_of(table({"image_similarity": None, "text_alignment": "home"}, text_vs_base="b"))
    assert v["verdict"] == "breaks" and v["reason"] == "text alignment lost"


def test_worse_fidelity_with_an_effect_here_is_weaker_not_broken():
    assert verdict_of(table({"image_similarity": "home"}, effect_here="a"))["verdict"] == "weaker"


def test_not_enough_evidence():
    assert verdict_of(table({"image_similarity": None}, ci=False))["verdict"] == "not enough evidence"
    v = verdict_of(table({"image_similarity": None}, effect_here=None))
    assert v["verdict"] == "not enough evidence" and v["reason"] == "no clear effect toward the reference here"
    no_reference = {"entries": [entry("checkpoint", (HERE, X, 1.0), (HOME, X, 1.0), "text_alignment")]}
    v = verdict_of(no_reference)
    assert v["verdict"] == "not enough evidence" and v["reason"].startswith("no fidelity comparison")


def test_best_verdict_over_weights_with_its_range():
    comparisons = {
        "entries": table({"image_similarity": None}, w=0.5)["entries"]
        + table({"image_similarity": "home"}, w=1.0, effect_here=None)["entries"]
        + table({"image_similarity": None}, w=0.75)["entries"]
    }
    v = verdict_of(comparisons)
    assert v["verdict"] == "transfers" and v["weights"] == [0.5, 0.75]
    assert [(b["weight"], b["verdict"]) for b in v["by_weight"]] == [
        (0.5, "transfers"),
        (0.75, "transfers"),
        (1.0, "breaks"),
    ]


def test_home_and_unknown_home():
    comparisons = table({"image_similarity": None})
    rows = {v["checkpoint"]: v for v in verdicts(comparisons, [X], [HERE, HOME], {X: HOME})}
    assert rows[HOME]["verdict"] == "home"
    unknown = verdicts(comparisons, [X], [HERE, HOME], {X: None})
    assert all(v["verdict"] is None and v["reason"] == "home unknown" for v in unknown)


def test_home_from_metadata_or_marked():
    adapters = {"a": {"trained_on": "models/Stable-diffusion/sd15.safetensors"}, "b": {"trained_on": "other"}}
    homes, source, notes = home_checkpoints(adapters, ["sd15 [abc123]", "anime"], {})
    assert homes == {"a": "sd15 [abc123]", "b": None} and source == {"a": "metadata"} and notes == []
    homes, source, notes = home_checkpoints(adapters, ["sd15", "anime"], {"a": "anime", "b": "nope"})
    assert homes == {"a": "anime", "b": None} and source == {"a": "marked", "b": "marked"}
    assert notes == ["adapter b: marked as trained on 'nope', which is not in this run"]
    assert is_checkpoint("SD15.ckpt", "sd15.safetensors") and not is_checkpoint("sd15", "sd15-inpaint")


def test_home_falls_back_to_the_runs_only_checkpoint_of_the_adapters_family():
    """Issue #22: no exact trained-on checkpoint in the run, one of the adapter's family
    there: that one is the home, said so; never a guess between several, never on unknowns."""
    families = {"pony-v6": "sdxl", "illustrious": "sdxl", "sd15 [abc123]": "sd1", "anime": "sd1"}
    adapters = {
        "xl": {"trained_on": "sd_xl_base_1.0", "family": "sdxl"},  # two SDXL-family checkpoints
        "one": {"trained_on": "sd15-pruned", "family": "sd1"},  # exact absent
        "exact": {"trained_on": "anime", "family": "sd1"},  # metadata wins over the family rule
        "nofam": {"trained_on": "other"},
        "flux": {"family": "flux"},  # no checkpoint of its family
    }
    run = ["anime", "illustrious", "pony-v6"]
    homes, source, notes = home_checkpoints(adapters, run, {}, families)
    assert homes == {"exact": "anime", "flux": None, "nofam": None, "one": "anime", "xl": None}
    assert source == {"exact": "metadata", "one": "same family"}
    assert (
        "adapter one: trained on 'sd15-pruned', which is not in this run; its verdicts are against anime, "
        "the run's only SD 1.x checkpoint (same-family rule; mark the real one with --trained-on ADAPTER=CHECKPOINT)"
    ) in notes
    assert any(n.startswith("adapter xl: 2 checkpoints of its family (illustrious, pony-v6)") for n in notes)
    # families matched by the WebUI's title form too; without families nothing falls back
    homes, source, _ = home_checkpoints({"one": adapters["one"]}, ["sd15 [abc123]", "pony-v6"], {}, families)
    assert homes == {"one": "sd15 [abc123]"} and source == {"one": "same family"}
    assert home_checkpoints({"one": adapters["one"]}, run, {})[0] == {"one": None}
    # a marked home wins, even when it is absent (the user said which; no silent substitute)
    homes, source, _ = home_checkpoints({"one": adapters["one"]}, run, {"one": "nope"}, families)
    assert homes == {"one": None} and source == {"one": "marked"}


def test_an_effect_without_interval_is_not_evidence_of_transfer():
    """The adapter's effect here must be clear; an effect entry with too few seeds is not."""
    comparisons = table({"image_similarity": None})
    for e in comparisons["entries"]:
        if e["kind"] == "baseline" and e["a"]["checkpoint"] == HERE:
            e.update(ci=None, clear=False, better=None)
    assert verdict_of(comparisons)["verdict"] == "not enough evidence"


def test_preservation_counts_psnr_and_ssim():
    v = verdict_of(table({"image_similarity": None, "ssim_base": "home"}))
    assert v["verdict"] == "weaker" and v["reason"] == "clearly worse than at home: ssim_base"


def test_home_in_a_subfolder_with_its_hash():
    assert is_checkpoint("sd_xl_base_1.0.safetensors", "SDXL/sd_xl_base_1.0.safetensors [31e35c80fc]")
    assert not is_checkpoint("sd_xl_base_1.0.safetensors", "SDXL/sd_xl_refiner_1.0.safetensors [7440042bbd]")


def test_checkpoint_families_come_from_the_runs_manifest(tmp_path):
    import json

    from lycoris_eval.grid.store import MANIFEST
    from lycoris_eval.scoring.document import checkpoint_families, manifest_host

    (tmp_path / "images").mkdir()
    assert checkpoint_families(manifest_host(tmp_path / "images")) == {}  # a plain folder: no manifest
    host = {"checkpoints": [{"name": "pony-v6", "title": "pony-v6.safetensors [1a2b]", "family": "sdxl"}]}
    host["checkpoints"].append({"name": "unread", "title": "unread.ckpt", "family": None})
    (tmp_path / MANIFEST).write_text(json.dumps({"host": host}))
    assert checkpoint_families(manifest_host(tmp_path / "images")) == {
        "pony-v6": "sdxl",
        "pony-v6.safetensors [1a2b]": "sdxl",
    }
    (tmp_path / MANIFEST).write_text("{not json")
    assert checkpoint_families(manifest_host(tmp_path / "images")) == {}
