"""The two ways a headless user runs a grid, in the real WebUI: the Script through
``/sdapi/v1/txt2img`` and ``POST /lycoris-eval/v1/grid``; both scored, both giving one cell
per (checkpoint, adapter, weight, prompt) with every seed paired to its baseline."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from PIL import Image

from .host import HOST_SETTINGS, plain_image_checkpoint, run_records, wait_job, without_hash

WEIGHTS = [0.5, 1.0]
SEEDS = [101, 102]


def grid(build) -> dict:
    return {
        "checkpoints": list(build.checkpoints),
        "adapters": [build.adapter("lora"), build.adapter("loha")],
        "weights": WEIGHTS,
        "prompts": ["[style] a castle on a hill"],
        "seeds": SEEDS,
        "score": True,
    }


BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}


def _check_cells(document: dict, records: list[dict], build) -> None:
    spec = grid(build)
    checkpoints = spec["checkpoints"]
    lora, loha = spec["adapters"]
    cells = document["cells"]
    adapter_cells = {(c["checkpoint"], c["adapter"], c["weight"]) for c in cells if c["adapter"]}
    expected = {(ck, ad, w) for ck in checkpoints for ad in spec["adapters"] for w in WEIGHTS}
    assert adapter_cells == expected, json.dumps([(c["checkpoint"], c["adapter"], c["weight"]) for c in cells])
    baselines = [c for c in cells if c["baseline"]]
    assert sorted(c["checkpoint"] for c in baselines) == sorted(checkpoints)
    for cell in cells:
        assert sorted(cell["seeds"]) == SEEDS, cell
        assert len(cell["images"]) == 2
        assert cell["prompt_type"] == "style"
        if cell["adapter"]:
            # every seed paired with the baseline of the same checkpoint and seed
            assert cell["metrics"]["style_loss_base"]["n"] == 2, cell
            assert cell["metrics"]["psnr_base"]["n"] == 2, cell
            assert cell["metrics"]["style_loss_base"]["mean"] > 0
    # the "Default metrics" setting is what was scored (clip_score and the tutorial loss are off there)
    assert set(document["run"]["metrics"]) <= set(HOST_SETTINGS["lycoris_eval_default_metrics"].split(","))
    assert "style_loss_ref" in document["run"]["metrics"] and "clip_score" not in document["run"]["metrics"]
    # adapter type and training base in the scores themselves
    assert document["adapters"][loha]["type"] == "LoHa"
    assert document["adapters"][lora]["base_model_version"] == "sd_v1"
    done = [r for r in records if r["status"] == "done"]
    assert len(done) == 2 * 2 * (1 + 2 * 2)
    assert {r["checkpoint"] for r in done} == set(checkpoints)
    assert document["run"]["n_images"] == len(done)


def test_script_through_txt2img_scored(api, host, references):
    run_id = f"script-{uuid.uuid4().hex[:8]}"
    spec = {**grid(host.build), "references": [references], "run_id": run_id}
    before = plain_image_checkpoint(api)
    body = {
        "prompt": "",
        **BASE,
        "script_name": "lycoris eval grid",
        "script_args": ["", "", "", "", "", "", "", "", False, "", "", False, json.dumps(spec)],
    }
    response = api.post("/sdapi/v1/txt2img", json=body, timeout=600)
    assert response.status_code == 200, response.text[:2000]
    run_dir = host.root / "outputs" / "lycoris-eval" / run_id
    document = json.loads((run_dir / "scores.json").read_text())
    records = run_records(host.root, run_id)
    _check_cells(document, records, host.build)
    # the PNGs keep their adapter tags and the run's cell keys
    for record in records:
        with Image.open(run_dir / "images" / record["image"]) as im:
            infotext = im.info["parameters"]
        assert f"LyCORIS cell: {record['key']}" in infotext or record["key"] in infotext
        if record["adapter"]:
            assert f"<lora:{record['adapter']}:{record['weight']:g}>" in infotext
        assert f"Seed: {record['seed']}" in infotext
    _check_user_checkpoint_back(api, before)


def _check_user_checkpoint_back(api, before: str) -> None:
    """The user's checkpoint is the one loaded after the grid, and the options name it (on
    reForge they said ``null`` before: its loader never writes the option)."""
    assert plain_image_checkpoint(api) == before
    assert without_hash(api.get("/sdapi/v1/options").json()["sd_model_checkpoint"] or "").startswith(before)


def test_api_grid_scored_gives_the_same_cells(api, host, references):
    before = plain_image_checkpoint(api)
    response = api.post(
        "/lycoris-eval/v1/grid", json={**grid(host.build), "references": [references], "base": BASE, "run_name": "api"}
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    run_id = answer.get("run_id")
    assert run_id, f"the 202 answer names the run id: {answer}"
    status = api.get(f"/lycoris-eval/v1/jobs/{answer['job_id']}").json()
    assert status["run_id"] == run_id
    status = wait_job(api, answer["job_id"], timeout=600)
    assert status["state"] == "done", status
    detail = api.get(f"/lycoris-eval/v1/runs/{run_id}").json()
    _check_cells(detail["scores"], run_records(host.root, run_id), host.build)
    # re-scoring the run through POST /evaluate gives the same cells
    again = api.post("/lycoris-eval/v1/evaluate", json={"run_id": run_id, "references": [references]}, timeout=600)
    assert again.status_code in (200, 202), again.text[:2000]
    document = again.json() if again.status_code == 200 else wait_job(api, again.json()["job_id"])["result"]
    _check_cells(document, run_records(host.root, run_id), host.build)
    assert Path(host.root / "outputs" / "lycoris-eval" / run_id / "scores.csv").is_file()
    _check_user_checkpoint_back(api, before)
