"""The grid request (issue #21, "one path for each rule"): its JSON schema is generated from
the validator's own field table, and ``confirm_large`` is read by one parser in the Script,
the API and the sweep."""

from __future__ import annotations

import json
import random

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.spec import (
    GRID_JSON_SCHEMA,
    REQUEST_FIELDS,
    GridSpec,
    parse_confirm_large,
    parse_grid_request,
)
from tests.api.test_api import PREFIX, api, grid_body, wait  # noqa: F401 - api is a fixture
from tests.helpers import page_p

REQUIRED = {f.name: f.example for f in REQUEST_FIELDS if f.required}


# ---- the schema is the validator's table ----------------------------------------------------
def test_every_schema_property_is_accepted_with_its_example():
    jsonschema = pytest.importorskip("jsonschema")
    without = parse_grid_request(dict(REQUIRED), random.Random(0))
    for field in REQUEST_FIELDS:
        body = {**REQUIRED, field.name: field.example}
        jsonschema.validate(body, GRID_JSON_SCHEMA)  # the example is what the schema describes
        spec, confirm = parse_grid_request(body, random.Random(0))  # ... and the validator takes it
        got = confirm if field.name == "confirm_large" else spec.to_dict()[field.name]
        before = without[1] if field.name == "confirm_large" else without[0].to_dict()[field.name]
        if not field.required:
            assert got != before, f"{field.name}: the example changed nothing: was the field read?"


def test_the_validator_accepts_exactly_the_schema_properties():
    schema = set(GRID_JSON_SCHEMA["properties"])
    examples = {f.name: f.example for f in REQUEST_FIELDS}
    # every name a spec could plausibly carry: the model's attributes, txt2img's, and nonsense
    candidates = schema | set(GridSpec.__dataclass_fields__) | {"prompt", "seed", "steps", "bogus", "confirm"}
    for name in sorted(candidates):
        body = {**REQUIRED, name: examples.get(name, 1)}
        if name in schema:
            parse_grid_request(body)
        else:
            with pytest.raises(SpecError, match="unknown field") as err:
                parse_grid_request(body)
            assert err.value.field == name
    assert "seeds_drawn" in candidates - schema  # an attribute of the model is not a field of the request


def test_required_fields_are_the_schemas():
    assert set(REQUIRED) == {"adapters", "prompts"}
    # adapters, or a training run: said by an anyOf beside the fields every request needs
    assert GRID_JSON_SCHEMA["required"] == ["prompts"]
    assert GRID_JSON_SCHEMA["allOf"] == [{"anyOf": [{"required": ["adapters"]}, {"required": ["training_run"]}]}]
    parse_grid_request(dict(REQUIRED))  # nothing else is needed
    for name in REQUIRED:
        with pytest.raises(SpecError) as err:
            parse_grid_request({k: v for k, v in REQUIRED.items() if k != name})
        assert err.value.field == name


def test_a_stored_spec_is_the_request_without_confirm_large():
    with pytest.raises(SpecError, match="unknown field") as err:
        GridSpec.from_dict({**REQUIRED, "confirm_large": True})
    assert err.value.field == "confirm_large"


# ---- confirm_large: one parser ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        ("", False),
        ("false", False),
        ("False ", False),
        ("0", False),
        ("no", False),
        ("off", False),
        (0, False),
        ("true", True),
        ("1", True),
        ("YES", True),
        (1, True),
    ],
)
def test_confirm_large_reads_booleans(value, expected):
    assert parse_confirm_large(value) is expected


@pytest.mark.parametrize("value", ["maybe", "nein", 2, -1, 0.5, [], {}])
def test_confirm_large_refuses_anything_else(value):
    with pytest.raises(SpecError, match="must be true or false") as err:
        parse_confirm_large(value)
    assert err.value.field == "confirm_large"


def _script(ns, confirm, spec_json=""):
    """The Script from its UI fields: a 4-image grid (limit set to 3 by the caller)."""
    args = {
        "checkpoints": ["base-a"],
        "adapters": ["style_lora"],
        "weights": "1",
        "prompts": "a castle",
        "seeds": "1, 2",
        "trigger": "",
        "references": "",
        "distractors": "",
        "score": False,
        "run_name": "",
        "run_id": "",
        "confirm_large": confirm,
        "spec_json": spec_json,
    }
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="", negative_prompt="")
    # the arguments before training_run only: a caller's positional script_args keep their meaning
    return ns.adapter.LycorisEvalGridScript().run(p, *[args[k] for k in ns.adapter.ARG_NAMES if k in args])


def test_script_reads_confirm_large_with_the_parser(fake_webui):
    ns = fake_webui
    ns.shared.opts.lycoris_eval_grid_limit = 3
    assert "over the limit of 3" in _script(ns, "false").comments  # bool("false") was True
    assert "confirm_large: must be true or false, got 'maybe'" in _script(ns, "maybe").comments
    json_spec = json.dumps({**REQUIRED, "adapters": ["style_lora"], "seeds": [1, 2], "confirm_large": "no"})
    assert "over the limit of 3" in _script(ns, True, json_spec).comments  # the JSON spec's value wins
    assert ns.processing.CALLS == []
    assert "4 new images" in _script(ns, "yes").comments


def test_api_reads_confirm_large_with_the_parser(api):  # noqa: F811 - the fixture
    api.shared.opts.lycoris_eval_grid_limit = 3
    c = api.client
    refused = c.post(f"{PREFIX}/grid", json=grid_body(confirm_large="false"))
    assert refused.status_code == 422 and "over the limit of 3" in refused.json()["detail"][0]["msg"]
    bad = c.post(f"{PREFIX}/grid", json=grid_body(confirm_large="maybe"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "confirm_large"]
    accepted = c.post(f"{PREFIX}/grid", json=grid_body(confirm_large="true", run_id="big"))
    assert accepted.status_code == 202
    assert wait(c, accepted.json()["job_id"])["result"]["generated"] == 4


def test_sweep_reads_confirm_large_with_the_parser(tmp_path, capsys):
    from lycoris_eval.cli import main as cli
    from lycoris_eval.sweep.preflight import read_spec, sweep_run_id

    path = tmp_path / "spec.json"
    plain = {**REQUIRED, "seeds": [1]}
    path.write_text(json.dumps(plain))
    spec, raw, confirm = read_spec(path)
    assert confirm is False
    run_id = sweep_run_id(spec, raw)
    for value, expected in (("false", False), ("yes", True), (True, True)):
        path.write_text(json.dumps({**plain, "confirm_large": value}))
        spec, raw, confirm = read_spec(path)
        assert confirm is expected and "confirm_large" not in raw
        assert sweep_run_id(spec, raw) == run_id  # it names no image: the same run resumes
    path.write_text(json.dumps({**plain, "confirm_large": "maybe"}))
    assert cli.main(["sweep", str(path), "--webui", "http://127.0.0.1:9"]) == 2
    assert "confirm_large: must be true or false, got 'maybe'" in capsys.readouterr().err
