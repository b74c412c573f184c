"""The X/Y/Z plot's *Prompt S/R* axis swapping LoRA tags (``<lora:x:0.5>``, ``<lora:x:1>``…):
its images pair across adapters and weights like the extension's own axes; a Prompt S/R
that changes words stays a condition of its own (fake host)."""

from __future__ import annotations

from collections import Counter

import pytest

from lycoris_eval.config import EvalConfig
from lycoris_eval.tab.ui import SOURCE_XYZ, run_evaluation
from tests.helpers import SMALL, page_p


@pytest.mark.parametrize(
    ("axis", "prompt", "xs", "expected"),
    [
        # tags only (another adapter, a weight, weight 0, no tag at all): no stratum
        ("Prompt S/R", "a cat <lora:a:0.5>", ["<lora:a:0.5>", "<lora:a:1>", "<lyco:b:1>", "<lora:a:0>", ""], [""] * 5),
        # words only: each value is its own stratum, as before
        ("Prompt S/R", "a cat", ["cat", "dog"], ["cat", "dog"]),
        # both: the words without the tags, so values sharing their words pair
        (
            "Prompt S/R",
            "a cat, <lora:a:1>",
            ["cat, <lora:a:1>", "cat, <lora:a:0.5>", "dog, <lora:a:1>"],
            ["cat", "cat", "dog"],
        ),
        # other extra networks are not read from the infotext: they stay conditions
        ("Prompt S/R", "a cat <lora:a:1>", ["<lora:a:1>", "<hypernet:h:1>"], ["", "<hypernet:h:1>"]),
        # values the cells cannot tell apart (one weight read from te/unet pairs) keep their label
        (
            "Prompt S/R",
            "a cat <lora:a:1:0.5>",
            ["<lora:a:1:0.5>", "<lora:a:1:1>", "<lora:a:0.5>"],
            ["<lora:a:1:0.5>", "<lora:a:1:1>", ""],
        ),
        # S/R of the negative prompt only: its tags are not in the infotext's prompt
        ("Prompt S/R", "a cat", ["<lora:a:1>", "<lora:a:0.5>"], ["<lora:a:1>", "<lora:a:0.5>"]),
        ("Seed", "a cat", [1, 2], ["", ""]),
        ("Steps", "a cat", [3, 4], ["Steps: 3", "Steps: 4"]),
    ],
)
def test_group_labels(fake_webui, axis, prompt, xs, expected):
    from lycoris_eval.webui.xyz import group_labels

    p = page_p(fake_webui, prompt=prompt, negative_prompt="<lora:a:1>, blurry")
    labels = [x if axis == "Prompt S/R" else f"{axis}: {x}" for x in xs]  # as format_value(_add_label) makes them
    assert group_labels(p, axis, xs, labels) == expected


def _evaluate(ns, tmp_path, p, axes) -> dict:
    processed = ns.xyz.run_plot(p, axes)
    assert processed.images
    services = ns.adapter.ui_services()
    services.eval_config = lambda: EvalConfig(
        random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "c", **SMALL
    )
    return run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", ["vendi", "psnr_base"], "settings").document


def _axis(ns, label: str):
    return next(o for o in ns.xyz.axis_options if o.label == label)


def test_prompt_sr_over_lora_tags_pairs_across_weights_and_adapters(fake_webui, tmp_path):
    ns = fake_webui
    ns.adapter.setup()
    sr, seed = _axis(ns, "Prompt S/R"), _axis(ns, "Seed")
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat, <lora:style_lora:0.5>", seed=5)
    # "" removes the tag: the baseline (as <lora:style_lora:0> is, on the real hosts' test)
    tags = ["<lora:style_lora:0.5>", "<lora:style_lora:1>", "", "<lora:style_loha:1>"]
    # X: adapter tags by Prompt S/R; Y: seeds; Z: a Prompt S/R changing a word (two prompts)
    document = _evaluate(ns, tmp_path, p, [(sr, tags), (seed, [1, 2, 3]), (sr, ["cat", "dog"])])
    cells = document["cells"]
    assert len(cells) == 4 * 2 and all(c["seeds"] == [1, 2, 3] for c in cells)
    assert {(c["adapter"], c["weight"]) for c in cells} == {
        ("style_lora", 0.5),
        ("style_lora", 1.0),
        (None, 0.0),
        ("style_loha", 1.0),
    }
    # the tag axis is no stratum; the word axis is, and each word is its own prompt
    assert {(c["group"], c["prompt"]) for c in cells} == {("Z: cat", "a cat"), ("Z: dog", "a dog")}
    comparisons = document["comparisons"]
    assert comparisons["duplicates_ignored"] == 0
    entries = comparisons["entries"]
    kinds = Counter((e["kind"], e["metric"]) for e in entries)
    # 0.5 vs 1 of style_lora; lora vs loha at 1; each adapter condition vs the tag-free baseline
    assert kinds == {
        ("weight", "vendi"): 1,
        ("weight", "psnr_base"): 1,
        ("adapter", "vendi"): 1,
        ("adapter", "psnr_base"): 1,
        ("baseline", "vendi"): 3,
    }
    # every pair is one (prompt, seed): 3 seeds × 2 prompts, never cat against dog
    assert all(e["n"] == 3 * 2 and e["prompts"] == 2 and e["seeds"] == 3 for e in entries)
    weight = next(e for e in entries if e["kind"] == "weight" and e["metric"] == "psnr_base")
    assert (weight["a"]["weight"], weight["b"]["weight"]) == (0.5, 1.0)
    assert weight["a"]["adapter"] == weight["b"]["adapter"] == "style_lora"


def test_word_prompt_sr_stays_a_condition(fake_webui, tmp_path):
    """A Prompt S/R of words in the negative prompt only leaves the prompt text as it is:
    its label is what keeps its values apart (they would otherwise collide seed by seed)."""
    ns = fake_webui
    ns.adapter.setup()
    sr, seed = _axis(ns, "Prompt S/R"), _axis(ns, "Seed")
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat, <lora:style_lora:1>", negative_prompt="blurry", seed=5)
    tags = ["<lora:style_lora:1>", "<lora:style_lora:0.5>"]
    document = _evaluate(ns, tmp_path, p, [(sr, ["blurry", "sharp"]), (sr, tags), (seed, [1, 2, 3])])
    cells = document["cells"]
    assert {(c["group"], c["weight"]) for c in cells} == {(g, w) for g in ("X: blurry", "X: sharp") for w in (0.5, 1.0)}
    comparisons = document["comparisons"]
    assert comparisons["duplicates_ignored"] == 0
    entries = comparisons["entries"]
    assert {e["kind"] for e in entries} == {"weight"}
    # blurry pairs with blurry and sharp with sharp: 2 strata of 3 seeds
    assert all(e["n"] == 6 and e["prompts"] == 2 for e in entries)
