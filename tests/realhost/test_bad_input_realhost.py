"""The bad-input table of tests/test_bad_input.py against the real WebUI: the same 422s,
nothing generated or written, and the host keeps serving."""

from __future__ import annotations

import json

import pytest

from tests.api.test_bad_input import GRID_CASES

PREFIX = "/lycoris-eval/v1"


def _real(value, build):
    """The fake host's names in a case, as the real host's files are named."""
    a, _ = build.checkpoints
    lora = build.adapter("lora")
    renames = {  # longest first: "style_lorra" is a misspelt "style_lora"
        "style_lorra": lora[:-1] + "r" + lora[-1],
        "style_lora": lora,
        "style_loha": build.adapter("loha"),
        "base-aa": f"{a}a",
        "base-a": a,
    }
    text = json.dumps(value)
    for fake, real in renames.items():
        text = text.replace(fake, real)
    return json.loads(text)


@pytest.mark.parametrize(("case", "change", "field", "words"), GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_bad_grid_input_refused_by_the_real_host(api, host, case, change, field, words):
    root = host.root / "outputs" / "lycoris-eval"
    before = sorted(p.name for p in root.iterdir()) if root.exists() else []
    body = {
        "checkpoints": [host.build.checkpoints[0]],
        "adapters": [host.build.adapter("lora")],
        "weights": [1.0],
        "prompts": ["[style] a tree"],
        "seeds": [1, 2],
        "base": {"steps": 3, "width": 64, "height": 64},
    }
    for key, value in _real(change, host.build).items():
        body[key] = {**body.get(key, {}), **value} if key == "base" else value
    response = api.post(f"{PREFIX}/grid", json=body)
    assert response.status_code in (403, 422), (case, response.status_code, response.text[:300])
    assert _real(field, host.build) in response.text and _real(words, host.build) in response.text, (
        case,
        response.text[:500],
    )
    after = sorted(p.name for p in root.iterdir()) if root.exists() else []
    assert after == before, "nothing written"
    assert api.get("/sdapi/v1/progress").json()["state"]["job_count"] in (0, -1)  # nothing running
    assert api.get("/sdapi/v1/sd-models").status_code == 200
