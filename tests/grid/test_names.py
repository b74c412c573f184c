"""One name-matching rule (issue #21): the grid runner and the X/Y/Z adapter axis find an
adapter the user typed the same way (lycoris_eval/grid/names.py), with the same error."""

from __future__ import annotations

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.names import match_name
from tests.grid.test_grid import run_script
from tests.helpers import page_p

POOL = {"style_lora": 1, "style_loha": 2, "Mix-B": 3}


def test_exact_then_ignoring_case_then_close_matches():
    assert match_name("style_lora", POOL, "adapter") == 1
    assert match_name("STYLE_LOHA", POOL, "adapter") == 2 and match_name("mix-b", POOL, "checkpoint") == 3
    with pytest.raises(SpecError, match=r"unknown adapter 'style_lorx'; did you mean style_lora, style_loha\?") as err:
        match_name("style_lorx", POOL, "adapter")
    assert err.value.field == "adapters"
    with pytest.raises(SpecError, match=r"^checkpoints: unknown checkpoint 'zzz'$"):
        match_name("zzz", POOL, "checkpoint")


@pytest.mark.parametrize("typed", ["style_lora", "STYLE_LORA", "Style_Loha", "style_lorx", "nothing-like-it"])
def test_the_runner_and_the_xyz_axis_give_the_same_answer(fake_webui, typed):
    from lycoris_eval.grid.runner import resolve_adapters
    from lycoris_eval.webui.host import WebUIHost
    from lycoris_eval.webui.xyz import adapter_name

    ns = fake_webui
    ns.adapter.setup()
    axis = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    try:
        by_runner = resolve_adapters(WebUIHost(None), [typed])[0].name
    except SpecError as exc:
        by_runner = f"LyCORIS: {exc}"
    try:
        axis.confirm(page_p(ns, prompt="a cat"), [typed])
        by_axis = adapter_name(typed)
    except RuntimeError as exc:
        by_axis = str(exc)
    assert by_axis == by_runner
    assert by_runner.startswith("LyCORIS: adapters: unknown adapter") == (typed.lower() not in POOL)


def test_a_name_typed_in_another_case_makes_the_adapters_images_in_both(fake_webui, tmp_path):
    """Matched ignoring case, the host's own spelling goes into <lora:…> (its lookup is exact)."""
    ns = fake_webui
    ns.adapter.setup()
    processed = run_script(
        ns, tmp_path, run_id="case", checkpoints=["base-a"], adapters=["STYLE_LORA"], weights=[1.0], prompts=["a"],
        seeds=[1],
    )  # fmt: skip
    assert "0 failed" in processed.comments and ns.processing.CALLS[-1][1].endswith("<lora:style_lora:1>")
    axis = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    ns.xyz.run_plot(page_p(ns, prompt="a cat", seed=5), [(axis, ["STYLE_LORA"])])
    assert ns.processing.CALLS[-1][1] == "a cat, <lora:style_lora:1>"
    assert [n.name for n in ns.networks.loaded_networks] == ["style_lora"]
    with pytest.raises(RuntimeError, match="duplicated"):  # one adapter, however it is typed
        axis.confirm(page_p(ns, prompt="a cat"), ["style_lora", "Style_Lora"])
