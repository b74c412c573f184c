from __future__ import annotations

import pytest

from lycoris_eval.errors import InputError
from lycoris_eval.inputs.grouping import describe, find_baselines, group_cells, pair_groups
from lycoris_eval.inputs.images import read_image_file
from lycoris_eval.inputs.infotext import adapter_tags, parse_infotext, strip_network_tags
from lycoris_eval.inputs.prompts import clean_prompt, parse_trigger_mapping, reference_cleanup, strip_webui_syntax
from tests.helpers import infotext, make_grid


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat <lora:style_loha:0.8>, sitting", "a cat, sitting"),
        ("<lyco:x:1> <hypernet:h:0.5>a dog", "a dog"),
        ("(masterpiece:1.2), (best quality), [blurry]", "masterpiece, best quality, blurry"),
        ("((nested (deep:1.3)))", "nested deep"),
        ("a [cat:dog:0.5] on grass", "a dog on grass"),
        ("a [hat:0.3] man", "a hat man"),
        ("a [hat::0.3] man", "a man"),
        ("a [red|blue] car", "a red car"),
        ("a cat BREAK a dog", "a cat, a dog"),
        ("a cat AND a dog", "a cat, a dog"),
        (r"a \(literal\) bracket \[x\]", "a (literal) bracket [x]"),
        ("of a tree, ,  tall , ", "a tree, tall"),
        ("line one\nline two", "line one line two"),
    ],
)
def test_clean_prompt_strips_webui_syntax(prompt, expected):
    assert clean_prompt(prompt) == expected


def test_trigger_mapping_replace_and_remove():
    mapping = {"olis": "bunny", "sks": ""}
    assert clean_prompt("olis, sks style, golis", mapping) == "bunny, style, golis"
    assert parse_trigger_mapping(["olis=bunny", "sks="]) == mapping
    with pytest.raises(InputError, match="expected WORD=TEXT"):
        parse_trigger_mapping(["olis"])


def test_reference_cleanup_is_the_reference_process_line():
    # LyCORIS-evaluation encode_text_features.process_line, minus the trailing newline
    assert reference_cleanup(" , of  a   cat , , x ,") == "a cat , x"
    assert reference_cleanup("of a cat, ,  x") == "a cat, x"
    assert strip_webui_syntax("(a:1.5)") == "a"


def test_parse_infotext_like_the_webui():
    text = infotext("a cat, <lora:styleA:0.8>\nsecond line", 42) + ', Lora hashes: "styleA: 0123abcd"'
    info = parse_infotext(text)
    assert info.prompt == "a cat, <lora:styleA:0.8>\nsecond line"
    assert info.negative_prompt == "lowres, bad anatomy"
    assert info.seed == 42 and info.checkpoint == "ckA"
    assert info.params["Lora hashes"] == "styleA: 0123abcd"
    assert info.params["Sampler"] == "Euler a"


def test_infotext_without_params_line_is_all_prompt():
    info = parse_infotext("just a prompt\nNegative prompt: x")
    assert info.prompt == "just a prompt" and info.negative_prompt == "x" and info.params == {}


def test_adapter_tags_forms():
    tags = adapter_tags("x <lora:a:0.5> <lyco:b> <lora:c:te=0.7:unet=0.2> <hypernet:h:1>")
    assert [(t.name, t.weight) for t in tags] == [("a", 0.5), ("b", 1.0), ("c", 0.7)]
    assert strip_network_tags("a cat, <lora:a:1>, sitting") == "a cat, sitting"


def test_grouping_cells_and_pairs(tmp_path):
    make_grid(tmp_path / "g", checkpoints=("ckA", "ckB"), seeds=(1, 2, 3))
    metas = [describe(read_image_file(p)) for p in sorted((tmp_path / "g").iterdir())]
    cells = group_cells(metas)
    # 2 checkpoints x (baseline + 2 weights) x 1 prompt
    assert len(cells) == 6
    base_cells = [c for c in cells if c.is_baseline]
    assert {c.checkpoint for c in base_cells} == {"ckA", "ckB"}
    assert all(len(c.images) == 3 for c in cells)
    baselines = find_baselines(metas)
    assert len(baselines) == 6  # checkpoint x seed
    for meta in metas:
        if meta.adapter:
            base = baselines[meta.pair_key]
            assert base.seed == meta.seed and base.checkpoint == meta.checkpoint and base.adapter is None
    groups = pair_groups(metas, baselines)
    assert all(g[0].is_baseline and len(g) == 3 for g in groups)


def test_images_without_infotext_form_one_group(tmp_path):
    from tests.helpers import make_set

    make_set(tmp_path / "plain", 3, 1)
    (tmp_path / "plain" / "img0.txt").write_text("a caption")
    metas = [describe(read_image_file(p)) for p in sorted((tmp_path / "plain").glob("*.png"))]
    cells = group_cells(metas)
    assert len(cells) == 1 and cells[0].checkpoint is None and cells[0].prompt is None
    assert metas[0].raw_prompt == "a caption"


def test_lora_hashes_name_the_adapter_when_tags_are_gone(tmp_path):
    from PIL import PngImagePlugin

    from tests.helpers import pattern

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", 'a cat\nSteps: 4, Seed: 3, Model: ckA, Lora hashes: "styleA: 0123abcd"')
    pattern(1).save(tmp_path / "x.png", pnginfo=info)
    meta = describe(read_image_file(tmp_path / "x.png"))
    assert (meta.adapter, meta.weight, meta.prompt, meta.seed) == ("styleA", None, "a cat", 3)


def test_garbage_infotext_is_not_fatal(tmp_path):
    from PIL import PngImagePlugin

    from tests.helpers import pattern

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "\x00\x01<lora:\n:::,,,\nNegative prompt:")
    pattern(1).save(tmp_path / "x.png", pnginfo=info)
    meta = describe(read_image_file(tmp_path / "x.png"))
    assert meta.seed is None and meta.checkpoint is None


def test_adapter_at_weight_zero_is_the_baseline_it_pairs_with(tmp_path):
    """An X/Y/Z plot's "<lora:x:0>" changes nothing: it is the no-adapter image of its seed."""
    from PIL import PngImagePlugin

    from tests.helpers import pattern

    for name, prompt in (("zero", "a cat, <lora:styleA:0>"), ("half", "a cat, <lora:styleA:0.5>")):
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", infotext(prompt, 3))
        pattern(1).save(tmp_path / f"{name}.png", pnginfo=info)
    zero, half = (describe(read_image_file(tmp_path / f"{n}.png")) for n in ("zero", "half"))
    assert (zero.adapter, zero.weight, zero.is_baseline) == (None, 0.0, True)
    assert (half.adapter, half.weight) == ("styleA", 0.5)
    assert find_baselines([zero, half])[half.pair_key] is zero


def test_run_store_record_is_the_truth_for_extension_runs(tmp_path):
    """The host may rewrite the infotext (tags stripped): the run store says what an image is."""
    from PIL import PngImagePlugin

    from tests.helpers import pattern

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", 'a cat\nSteps: 4, Seed: 3, Model: ckA, Lora hashes: "styleA: 0123abcd"')
    pattern(1).save(tmp_path / "x.png", pnginfo=info)
    record = {"checkpoint": "ckA", "adapter": "styleA", "weight": 0.5, "prompt": "a cat", "prompt_type": "style"}
    meta = describe(read_image_file(tmp_path / "x.png"), {**record, "seed": 3})
    assert (meta.adapter, meta.weight, meta.prompt, meta.prompt_type, meta.seed) == ("styleA", 0.5, "a cat", "style", 3)
    assert meta.raw_prompt == "a cat"
