"""A training run as the grid's adapter dimension (issue #24): the spec's ``training_run``,
its expansion where adapter names are checked (before any image), and the manifest's
``training_runs``; through the Script and the grid runner on the fake WebUI."""

from __future__ import annotations

import json

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.spec import GridSpec, parse_grid_request
from lycoris_eval.grid.store import RunStore
from lycoris_eval.grid.training import axis_choices, axis_value_adapter, detected_runs, expand_axis_values
from tests.helpers import page_p, write_adapter

BASE = {"checkpoints": ["base-a"], "weights": [1.0], "prompts": ["[style] a tree"], "seeds": [1]}


def kohya(epoch: int, epochs: int = 8) -> dict[str, str]:
    meta = {
        "ss_output_name": "mystyle",
        "ss_session_id": "1234",
        "ss_epoch": epoch,
        "ss_steps": epoch * 25,
        "ss_max_train_steps": epochs * 25,
        "ss_num_epochs": epochs,
        "ss_sd_model_name": "base-a.safetensors",
        "ss_base_model_version": "sd_v1",
    }
    return {k: str(v) for k, v in meta.items()}


def add_runs(ns) -> None:
    """``mystyle``: epochs 2, 4, 6 and the final 8 (kohya metadata); ``ink``: two files named
    ``ink_e1``/``ink_e2`` without metadata."""
    folder = ns.data / "models" / "Lora"
    for epoch, name in ((2, "mystyle-000002"), (4, "mystyle-000004"), (6, "mystyle-000006"), (8, "mystyle")):
        ns.networks.add(name, str(write_adapter(folder / f"{name}.safetensors", "LoRA", kohya(epoch))))
    for name in ("ink_e1", "ink_e2"):
        ns.networks.add(name, str(write_adapter(folder / f"{name}.safetensors", "LoHa")))


def run_script(ns, spec: dict, p=None, **ui):
    args = {**{k: "" for k in ns.adapter.ARG_NAMES}, "score": False, "confirm_large": False}
    args.update(ui)
    if spec:
        args["spec_json"] = json.dumps(spec)
    p = p or page_p(ns, ns.scripts.scripts_txt2img, prompt="", negative_prompt="")
    return ns.adapter.LycorisEvalGridScript().run(p, *[args[k] for k in ns.adapter.ARG_NAMES])


def manifest(ns, run_id: str) -> dict:
    return RunStore(ns.data / "outputs" / "lycoris-eval", run_id).read_manifest()


# ---- the field ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"every": 2}, "training_run.name", "give the training run's name"),
        ({"name": "x", "every": 2, "epochs": [2]}, "training_run.every", "not both"),
        ({"name": "x", "every": 0}, "training_run.every", "1..1000"),
        ({"name": "x", "every": True}, "training_run.every", "1..1000"),
        ({"name": "x", "epochs": []}, "training_run.epochs", "list of epoch numbers"),
        ({"name": "x", "epochs": [2, 2]}, "training_run.epochs", "2 is listed twice"),
        ({"name": "x", "epochs": ["two"]}, "training_run.epochs", "not an epoch number"),
        ({"name": "x", "adapters": ["a"]}, "training_run.adapters", "at least two"),
        ({"name": "x", "step": 2}, "training_run.step", "unknown field"),
        ([{"name": "x"}, {"name": "X"}], "training_run.name", "listed twice"),
        ("x", "training_run", "must be"),
    ],
)
def test_training_run_field_errors_name_the_field(value, field, message):
    with pytest.raises(SpecError, match=message) as err:
        parse_grid_request({**BASE, "training_run": value})
    assert err.value.field == field


def test_adapters_or_a_training_run_is_required():
    with pytest.raises(SpecError, match="give at least one adapter, or a training_run") as err:
        GridSpec.from_dict(BASE)
    assert err.value.field == "adapters"
    spec, _ = parse_grid_request({**BASE, "training_run": {"name": "mystyle", "epochs": "2, 4"}})
    assert spec.adapters == [] and spec.training_run == [{"name": "mystyle", "epochs": [2, 4]}]
    one = GridSpec.from_dict({**BASE, "training_run": [{"name": "a"}, {"name": "b", "every": 2.0}]})
    assert one.training_run == [{"name": "a"}, {"name": "b", "every": 2}]


def test_the_identity_is_the_expanded_adapters():
    """A resume finds the grid by its adapters, however they were asked for."""
    explicit = GridSpec.from_dict({**BASE, "adapters": ["mystyle-000004", "mystyle"]})
    asked = GridSpec.from_dict({**BASE, "training_run": {"name": "mystyle", "every": 2}})
    assert asked.fingerprint() != explicit.fingerprint()
    asked.adapters, asked.training_run = ["mystyle-000004", "mystyle"], []
    assert asked.fingerprint() == explicit.fingerprint() and "training_runs" not in asked.to_dict()
    old = {**BASE, "adapters": ["a"]}  # a spec stored before training runs existed
    assert "training_run" not in GridSpec.from_dict(old).identity()


# ---- expansion through the Script and the runner -----------------------------------------------
def test_a_training_run_grid_expands_in_step_order_and_is_recorded(fake_webui):
    ns = fake_webui
    add_runs(ns)
    processed = run_script(ns, {**BASE, "run_id": "tr1", "training_run": {"name": "mystyle", "every": 2}})
    assert processed.comments.startswith("Run tr1: 3 new images"), processed.comments
    prompts = [call[1] for call in ns.processing.CALLS]
    assert prompts == ["a tree", "a tree, <lora:mystyle-000004:1>", "a tree, <lora:mystyle:1>"]
    data = manifest(ns, "tr1")
    assert data["spec"]["adapters"] == ["mystyle-000004", "mystyle"] and data["spec"]["training_run"] == []
    [run] = data["training_runs"]
    assert run["name"] == "mystyle" and run["grouped_by"] == "session id"
    assert [(m["adapter"], m["epoch"], m["step"], m["final"]) for m in run["members"]] == [
        ("mystyle-000004", 4, 100, False),
        ("mystyle", 8, 200, True),
    ]
    # the same request again resumes the same grid (nothing new), the record kept
    processed = run_script(ns, {**BASE, "run_id": "tr1", "training_run": {"name": "mystyle", "every": 2}})
    assert processed.comments.startswith("Run tr1: 0 new images, 3 kept"), processed.comments
    assert manifest(ns, "tr1")["training_runs"] == [run]
    # a run with a new save since is another grid, said by its adapters
    processed = run_script(ns, {**BASE, "run_id": "tr1", "training_run": {"name": "mystyle"}})
    assert "different grid: adapters:" in processed.comments


def test_epochs_adapters_first_and_a_file_name_run(fake_webui):
    ns = fake_webui
    add_runs(ns)
    spec = {
        **BASE,
        "run_id": "tr2",
        "adapters": ["style_lora"],
        "training_run": [{"name": "MYSTYLE", "epochs": [6, 2]}, {"name": "ink"}],
    }
    processed = run_script(ns, spec)
    assert processed.comments.startswith("Run tr2: 6 new images"), processed.comments
    data = manifest(ns, "tr2")
    assert data["spec"]["adapters"] == ["style_lora", "mystyle-000002", "mystyle-000006", "ink_e1", "ink_e2"]
    assert [r["name"] for r in data["training_runs"]] == ["mystyle", "ink"]
    assert data["training_runs"][1]["grouped_by"] == "file name"


def test_the_users_order_overrides_the_grouping(fake_webui):
    ns = fake_webui
    add_runs(ns)
    spec = {**BASE, "run_id": "tr3", "training_run": {"name": "mine", "adapters": ["mystyle", "style_lora"]}}
    run_script(ns, spec)
    [run] = manifest(ns, "tr3")["training_runs"]
    assert run["name"] == "mine" and run["grouped_by"] == "user"
    assert [m["adapter"] for m in run["members"]] == ["mystyle", "style_lora"]


def test_adapters_picked_by_hand_that_are_saves_of_one_run_are_recorded_too(fake_webui):
    ns = fake_webui
    add_runs(ns)
    run_script(ns, {**BASE, "run_id": "tr4", "adapters": ["mystyle", "style_loha", "mystyle-000002"]})
    [run] = manifest(ns, "tr4")["training_runs"]
    assert [m["adapter"] for m in run["members"]] == ["mystyle-000002", "mystyle"]
    run_script(ns, {**BASE, "run_id": "tr5", "adapters": ["style_loha"]})
    assert "training_runs" not in manifest(ns, "tr5")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"name": "mystyl"}, "unknown training run 'mystyl' (known: ink (2 saves), mystyle (4 saves))"),
        ({"name": "mystyle", "epochs": [2, 3]}, "mystyle has no epoch 3 (it has 2, 4, 6, 8)"),
        ({"name": "x", "adapters": ["mystyle", "nope"]}, "unknown adapter 'nope'"),
    ],
)
def test_a_bad_training_run_fails_before_any_image(fake_webui, request_, message):
    ns = fake_webui
    add_runs(ns)
    processed = run_script(ns, {**BASE, "training_run": request_})
    assert message in processed.comments and ns.processing.CALLS == []


def test_an_adapter_in_both_places_is_refused(fake_webui):
    ns = fake_webui
    add_runs(ns)
    processed = run_script(ns, {**BASE, "adapters": ["mystyle"], "training_run": {"name": "mystyle"}})
    assert "'mystyle' is in adapters and in training run 'mystyle': list it once" in processed.comments


def test_the_scripts_training_run_fields(fake_webui):
    ns = fake_webui
    add_runs(ns)
    fields = {"checkpoints": ["base-a"], "weights": "1", "prompts": "a tree", "seeds": "1", "run_id": "tr6"}
    processed = run_script(ns, {}, training_run="mystyle", training_every=3.0, **fields)
    assert processed.comments.startswith("Run tr6: 3 new images"), processed.comments
    assert manifest(ns, "tr6")["spec"]["adapters"] == ["mystyle-000002", "mystyle"]


def test_the_scripts_training_run_picker(fake_webui):
    import gradio as gr

    ns = fake_webui
    add_runs(ns)
    with gr.Blocks() as demo:
        components = ns.adapter.LycorisEvalGridScript().ui(False)
    by_name = dict(zip(ns.adapter.ARG_NAMES, components))
    choices = {c[0] if isinstance(c, tuple) else c for c in by_name["training_run"].choices}
    assert choices == {"ink", "mystyle"} and by_name["training_every"].value == 1
    fns = {f.name if hasattr(f, "name") else f.fn.__name__: f.fn for f in demo.fns}
    text = fns["describe_run"]("mystyle")
    assert "4 saves, grouped by session id" in text and "epoch 8 (final) (mystyle)" in text


# ---- the epoch axis's values (core; the axis itself: tests/webui) ------------------------------
def test_epoch_axis_values(fake_webui):
    from lycoris_eval.webui.host import WebUIHost

    ns = fake_webui
    add_runs(ns)
    runs = detected_runs(WebUIHost(None).adapters())
    assert axis_choices(runs) == ["ink@1", "ink@2", "mystyle@2", "mystyle@4", "mystyle@6", "mystyle@8"]
    assert axis_value_adapter(runs, "mystyle@8") == axis_value_adapter(runs, "MyStyle@final") == "mystyle"
    assert expand_axis_values(runs, ["mystyle@every 2", "ink", "mystyle@8"]) == [
        "mystyle@4",
        "mystyle@8",
        "ink@1",
        "ink@2",
    ]
    with pytest.raises(SpecError, match=r"mystyle has no save '3' \(it has 2, 4, 6, 8\)"):
        axis_value_adapter(runs, "mystyle@3")
    with pytest.raises(SpecError, match="give one save as RUN@EPOCH, e.g. mystyle@8"):
        axis_value_adapter(runs, "mystyle")


def test_the_openapi_examples_are_what_the_schema_and_the_parser_take():
    jsonschema = pytest.importorskip("jsonschema")
    from lycoris_eval.api.examples import GRID_EXAMPLE
    from lycoris_eval.grid.spec import GRID_JSON_SCHEMA

    for example in GRID_EXAMPLE.values():
        jsonschema.validate(example["value"], GRID_JSON_SCHEMA)
        parse_grid_request(example["value"])
    with pytest.raises(jsonschema.ValidationError):  # neither adapters nor a training run
        jsonschema.validate({"prompts": ["a"]}, GRID_JSON_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prompts": ["a"], "training_run": {"name": "x", "bogus": 1}}, GRID_JSON_SCHEMA)
