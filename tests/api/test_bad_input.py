"""A table of bad grid inputs through the HTTP API (fake host): each is refused with 422
naming the field, and nothing is generated or written. The same table runs against the
real WebUI in tests/realhost/test_bad_input_realhost.py."""

from __future__ import annotations

import pytest

from lycoris_eval.api.routes import PREFIX
from lycoris_eval.errors import SpecError
from lycoris_eval.grid.base_values import MAX_PROMPT_CHARS, check_base_values
from tests.api.test_api import api, grid_body  # noqa: F401 - the fixture
from tests.helpers import page_p

# (case id, body changes, field named in the 422, words in the message)
GRID_CASES = [
    ("steps-negative", {"base": {"steps": -1}}, "base.steps", "outside 1..150"),
    ("steps-zero", {"base": {"steps": 0}}, "base.steps", "outside"),
    ("steps-huge", {"base": {"steps": 10_000}}, "base.steps", "outside 1..150"),
    ("steps-fraction", {"base": {"steps": 4.5}}, "base.steps", "whole number"),
    ("steps-text", {"base": {"steps": "20"}}, "base.steps", "must be a number"),
    ("steps-bool", {"base": {"steps": True}}, "base.steps", "must be a number"),
    ("width-huge", {"base": {"width": 1_000_000}}, "base.width", "outside 64..2048"),
    ("height-huge", {"base": {"height": 1_000_000}}, "base.height", "outside 64..2048"),
    ("width-not-8", {"base": {"width": 100}}, "base.width", "multiple of 8"),
    ("height-small", {"base": {"height": 8}}, "base.height", "outside"),
    ("cfg-negative", {"base": {"cfg_scale": -3}}, "base.cfg_scale", "outside 1..30"),
    ("cfg-huge", {"base": {"cfg_scale": 500}}, "base.cfg_scale", "outside"),
    ("cfg-nan-text", {"base": {"cfg_scale": "NaN"}}, "base.cfg_scale", "must be a number"),
    ("denoise-over-1", {"base": {"denoising_strength": 1.5}}, "base.denoising_strength", "outside 0..1"),
    ("batch-size", {"base": {"batch_size": 64}}, "base.batch_size", "outside 1..8"),
    ("batch-count", {"base": {"n_iter": 1000}}, "base.n_iter", "outside 1..100"),
    ("hr-scale", {"base": {"hr_scale": 16}}, "base.hr_scale", "outside 1..4"),
    ("hr-steps", {"base": {"hr_second_pass_steps": -2}}, "base.hr_second_pass_steps", "outside"),
    ("sampler-typo", {"base": {"sampler_name": "Eulr a"}}, "base.sampler_name", "did you mean Euler a"),
    ("sampler-empty", {"base": {"sampler_name": ""}}, "base.sampler_name", "sampler name"),
    ("scheduler-unknown", {"base": {"scheduler": "weird"}}, "base.scheduler", "unknown scheduler"),
    ("negative-huge", {"base": {"negative_prompt": "x" * (MAX_PROMPT_CHARS + 1)}}, "base.negative_prompt", "limit"),
    ("negative-not-text", {"base": {"negative_prompt": 5}}, "base.negative_prompt", "must be text"),
    ("prefix-huge", {"base": {"prompt_prefix": "x" * 200_000}}, "base.prompt_prefix", "limit"),
    ("enable-hr-text", {"base": {"enable_hr": "yes"}}, "base.enable_hr", "true or false"),
    ("unknown-base-field", {"base": {"stepz": 4}}, "base.stepz", "not a txt2img field"),
    ("base-seed", {"base": {"seed": 4}}, "base.seed", "set by the grid"),
    ("prompt-huge", {"prompts": ["y" * 200_000]}, "prompts", "limit"),
    ("prompt-with-tag", {"prompts": ["a <lora:style_loha:1>"]}, "prompts", "adapter-free"),
    ("prompts-empty", {"prompts": []}, "prompts", "at least one"),
    ("weight-huge", {"weights": [50]}, "weights", "outside"),
    ("weight-text", {"weights": ["heavy"]}, "weights", "not a number"),
    ("weight-twice", {"weights": [1, 1]}, "weights", "twice"),
    ("seed-negative", {"seeds": [-5]}, "seeds", "outside"),
    ("seed-huge", {"seeds": [2**40]}, "seeds", "outside"),
    ("seed-count", {"seeds": {"count": 0, "first": 1}}, "seeds", "count must be"),
    ("run-id-path", {"run_id": "../../etc"}, "run_id", "letters, digits"),
    ("adapter-unknown", {"adapters": ["style_lorra"]}, "adapters", "did you mean style_lora"),
    ("checkpoint-unknown", {"checkpoints": ["base-aa"]}, "checkpoints", "did you mean"),
    ("unknown-field", {"colour": "red"}, "colour", "unknown field"),
    ("score-text", {"score": "yes"}, "score", "true or false"),
    ("references-outside", {"references": ["/etc"]}, "references", "allowed"),
]


@pytest.mark.parametrize(("case", "change", "field", "words"), GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_bad_grid_input_is_refused_before_any_work(api, case, change, field, words):  # noqa: F811
    root = api.data / "outputs" / "lycoris-eval"
    before = sorted(p.name for p in root.iterdir()) if root.exists() else []
    body = grid_body()
    for key, value in change.items():
        body[key] = {**body.get(key, {}), **value} if key == "base" else value
    response = api.client.post(f"{PREFIX}/grid", json=body)
    assert response.status_code in (403, 422), (case, response.status_code, response.text[:300])
    text = response.text
    assert field in text and words in text, (case, text[:500])
    assert not api.processing.CALLS, "nothing generated"
    after = sorted(p.name for p in root.iterdir()) if root.exists() else []
    assert after == before, "nothing written"
    assert api.client.get(f"{PREFIX}/version").status_code == 200  # still serving


def test_base_values_accept_the_page_limits():
    check_base_values({"steps": 150, "width": 2048, "height": 64, "cfg_scale": 1, "denoising_strength": 0.0})
    with pytest.raises(SpecError, match=r"base.width: 2056 is outside 64..2048"):
        check_base_values({"width": 2056})


# ---- the Script's arguments (txt2img → Script, or script_args over the API) ----------------
SCRIPT_CASES = [
    ("weights-text", {"weights": "0.5, heavy"}, "weights", "not a number"),
    ("weights-empty", {"weights": ""}, "weights", "at least one weight"),
    ("seeds-text", {"seeds": "x from y"}, "seeds", "not an integer"),
    ("seeds-count-zero", {"seeds": "0 from 5"}, "seeds", "count must be 1..10000"),
    ("prompts-empty", {"prompts": "\n \n"}, "prompts", "at least one prompt"),
    ("adapters-empty", {"adapters": []}, "adapters", "give at least one"),
    ("run-id-slash", {"run_id": "a/b"}, "run_id", "letters, digits"),
    ("trigger-garbage", {"trigger": "no equals sign"}, "trigger", "trigger"),
    ("spec-json-broken", {"spec_json": "{not json"}, "spec_json", "not valid JSON"),
    ("spec-json-list", {"spec_json": "[1, 2]"}, "spec", "JSON object"),
    (
        "spec-json-steps",
        {"spec_json": '{"adapters": ["style_lora"], "prompts": ["a"], "base": {"steps": -1}}'},
        "base.steps",
        "outside 1..150",
    ),
    (
        "spec-json-sampler",
        {"spec_json": '{"adapters": ["style_lora"], "prompts": ["a"], "base": {"sampler_name": "Eulr"}}'},
        "base.sampler_name",
        "did you mean",
    ),
]


@pytest.mark.parametrize(("case", "values", "field", "words"), SCRIPT_CASES, ids=[c[0] for c in SCRIPT_CASES])
def test_bad_script_arguments_are_refused_before_any_image(fake_webui, case, values, field, words):
    ns = fake_webui
    args = {name: "" for name in ns.adapter.ARG_NAMES}
    args.update(adapters=["style_lora"], weights="1", prompts="a tree", seeds="1", score=False, confirm_large=False)
    args.update(values)
    p = page_p(ns, prompt="")
    processed = ns.adapter.LycorisEvalGridScript().run(p, *[args[k] for k in ns.adapter.ARG_NAMES])
    assert processed.images == [] and field in processed.comments and words in processed.comments, processed.comments
    assert not ns.processing.CALLS
    root = ns.data / "outputs" / "lycoris-eval"
    assert not root.exists() or not any(root.iterdir()), "nothing written"


# ---- the X/Y/Z plot's axis values -----------------------------------------------------------
XYZ_CASES = [
    ("adapter-unknown", "LyCORIS: adapter", ["style_lorx"], "unknown adapter .style_lorx.; did you mean style_lora"),
    ("adapter-twice", "LyCORIS: adapter", ["style_lora", "style_lora"], "duplicated"),
    ("weight-huge", "LyCORIS: adapter weight", [9.0], "outside -5..5"),
    ("weight-negative-huge", "LyCORIS: adapter weight", [-7.5], "outside -5..5"),
    ("weight-twice", "LyCORIS: adapter weight", [0.5, 0.5], "0.5 is listed twice"),
]


@pytest.mark.parametrize(("case", "axis", "values", "words"), XYZ_CASES, ids=[c[0] for c in XYZ_CASES])
def test_bad_xyz_axis_values_stop_the_plot_before_any_image(fake_webui, case, axis, values, words):
    ns = fake_webui
    ns.adapter.setup()
    option = next(o for o in ns.xyz.axis_options if o.label == axis)
    with pytest.raises(RuntimeError, match=words):
        ns.xyz.run_plot(page_p(ns, prompt="a cat", seed=5), [(option, values)])
    assert not ns.processing.CALLS
