"""Comparisons in the real host (#13): two checkpoints with identical weights under
different names are, on every metric, "no difference" — exactly zero, never a verdict
that one is worse — and ``GET /runs/{id}/compare`` and "add seeds" work there."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from .host import wait_job

BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}


@pytest.fixture(scope="module")
def twin(api, host):
    """A copy of the first test checkpoint under another name (with its config file, as a
    user copies both), listed by the host."""
    original = host.build.checkpoints[0]
    folder = host.root / "models" / "Stable-diffusion"
    twin_stem = f"zz-twin-of-{original}"
    copies = []
    for source in folder.glob(f"{original}.*"):  # the .safetensors and, in the WebUI, its .yaml
        copies.append(folder / f"{twin_stem}{source.suffix}")
        shutil.copyfile(source, copies[-1])
    api.post("/sdapi/v1/refresh-checkpoints")
    try:
        yield original, twin_stem
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)  # the other tests pick the two smallest checkpoints
        api.post("/sdapi/v1/refresh-checkpoints")


def test_identical_checkpoints_compare_as_no_difference(api, host, twin):
    original, copy = twin
    refs = host.root / "outputs" / "lycoris-eval-refs" / "twin"
    refs.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.effect_noise((64, 64), 20 + 15 * i).convert("RGB").save(refs / f"ref-{i}.png")
    adapter = host.build.adapter("lora")
    spec = {
        "checkpoints": [original, copy],
        "adapters": [adapter],
        "weights": [1.0],
        "prompts": ["[style] a lighthouse at dusk"],
        "seeds": [11, 12, 13],
        "references": [str(refs)],
        "base": BASE,
        "run_name": "twins",
    }
    answer = api.post("/lycoris-eval/v1/grid", json=spec).json()
    status = wait_job(api, answer["job_id"], timeout=600)
    assert status["state"] == "done" and not status["result"]["failed"], status
    run_id = answer["run_id"]
    scored = api.post(
        "/lycoris-eval/v1/evaluate",
        json={"run_id": run_id, "references": [str(refs)], "trained_on": [f"{adapter}={original}"]},
        timeout=600,
    )
    assert scored.status_code in (200, 202), scored.text[:2000]
    document = scored.json() if scored.status_code == 200 else wait_job(api, scored.json()["job_id"])["result"]
    assert document["schema_version"] == 3
    answer = api.get(f"/lycoris-eval/v1/runs/{run_id}/compare", params={"a": original, "b": copy})
    assert answer.status_code == 200, answer.text[:2000]
    entries = answer.json()["entries"]
    metrics = set(document["run"]["metrics"])
    # every metric, with and without the adapter (the baseline-relative ones only with it)
    assert {e["metric"] for e in entries} == metrics
    assert {e["a"]["adapter"] for e in entries} == {None, adapter}
    for entry in entries:
        assert entry["status"] == "no difference" and entry["diff"] == 0.0, entry
        assert not entry["clear"]
        assert entry["n"] == 3
        if entry["ci"] is not None:  # image-level metrics and the centroid distance
            assert entry["ci"] == [0.0, 0.0]
        if entry["ties"] is not None:  # image-level metrics: every pair tied
            assert entry["ties"] == 3
    (verdict,) = [v for v in document["verdicts"]["entries"] if v["checkpoint"] == copy]
    assert verdict["home"] == original and verdict["verdict"] in ("transfers", "not enough evidence"), verdict
    # one more seed for the same run: only its images are made, the run is whole again
    more = {**spec, "run_id": run_id, "seeds": [11, 12, 13, 14]}
    answer = api.post("/lycoris-eval/v1/grid", json=more).json()
    status = wait_job(api, answer["job_id"], timeout=600)
    assert status["state"] == "done" and status["result"]["generated"] == 4, status  # 2 checkpoints × 2
    detail = api.get(f"/lycoris-eval/v1/runs/{run_id}").json()
    assert detail["done"] == 16 and detail["manifest"]["seeds_added"][0]["seeds"] == [14]
