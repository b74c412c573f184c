"""Auth on every route, no deadlock when the host's overrides are not restored, unknown
names refused before any image, an adapter the host cannot load recorded on its cells."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from .host import current_checkpoint, run_records, wait_job

PREFIX = "/lycoris-eval/v1"


def test_api_auth_on_every_route_of_ours(api, host):
    paths = [p for p in api.get("/openapi.json").json()["paths"] if p.startswith(PREFIX)]
    assert len(paths) >= 9
    with host.client(auth=False) as anonymous:
        for path in paths:
            concrete = path.replace("{job_id}", "nojob").replace("{run_id}", "norun")
            for method in ("get", "post"):
                response = getattr(anonymous, method)(concrete)
                if response.status_code == 405:
                    continue
                assert response.status_code == 401, f"{method.upper()} {concrete}: {response.status_code}"
    assert api.get(f"{PREFIX}/version").status_code == 200
    assert api.get(f"{PREFIX}/runs").status_code == 200


def test_overrides_not_restored_no_deadlock_user_checkpoint_back(api, host):
    a, b = host.build.checkpoints
    assert api.post("/sdapi/v1/options", json={"sd_model_checkpoint": f"{a}.safetensors"}).status_code == 200
    user = current_checkpoint(api)
    assert user.startswith(a)
    body = {
        "checkpoints": [a, b],
        "adapters": [host.build.adapter("lora")],
        "weights": [1.0],
        "prompts": ["a kite"],
        "seeds": [1],
        "base": {"steps": 4, "width": 64, "height": 64, "override_settings_restore_afterwards": False},
    }
    answer = api.post(f"{PREFIX}/grid", json=body).json()
    status = wait_job(api, answer["job_id"], timeout=120)
    assert status["state"] == "done", status
    assert current_checkpoint(api).startswith(a), "the user's checkpoint, not the grid's last"
    # the next plain image is made with the user's file (Forge loads lazily, on that image)
    digest = hashlib.sha256((host.root / "models" / "Stable-diffusion" / f"{a}.safetensors").read_bytes()).hexdigest()
    response = api.post(
        "/sdapi/v1/txt2img", json={"prompt": "after", "steps": 2, "width": 64, "height": 64}, timeout=120
    )
    info = json.loads(response.json()["info"])
    assert digest.startswith(info["sd_model_hash"]), (info["sd_model_hash"], digest)
    assert response.status_code == 200  # the queue lock is free


def test_unknown_checkpoint_refused_before_any_image(api, host):
    before = len(list((host.root / "outputs" / "lycoris-eval").iterdir()))
    a, _ = host.build.checkpoints
    lora, loha = host.build.adapter("lora"), host.build.adapter("loha")
    body = {"checkpoints": [a + "-zz"], "adapters": [lora], "prompts": ["x"], "seeds": [1]}
    response = api.post(f"{PREFIX}/grid", json=body)
    assert response.status_code == 422
    assert "checkpoints" in response.text and f"{a}-zz" in response.text and a in response.text
    body = {"adapters": [lora[:-1] + "r" + lora[-1]], "prompts": ["x"], "seeds": [1]}
    response = api.post(f"{PREFIX}/grid", json=body)
    assert response.status_code == 422 and f"did you mean {lora}" in response.text
    response = api.post(f"{PREFIX}/grid", json={"adapters": [lora], "prompts": [f"x <lora:{loha}:1>"]})
    assert response.status_code == 422 and "adapter-free" in response.text
    assert len(list((host.root / "outputs" / "lycoris-eval").iterdir())) == before


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        # a truncated download: the WebUI cannot load it, Forge moves it to *.corrupted
        ("broken_lora", "could not load adapter 'broken_lora'"),
        # well-formed, but no key matches a layer of this model: both hosts load it silently
        # and change nothing (Forge prints "LoRA version mismatch", the WebUI logs at debug)
        ("mismatch_lora", "none of its weights matches this checkpoint"),
    ],
)
def test_adapter_that_does_not_work_is_recorded_on_its_cells(api, host, bad, words):
    """Its images are recorded as failed with the reason, never kept as adapter images that
    are really baselines; the other adapter's images are made."""
    run_id = f"{bad.split('_')[0]}-{uuid.uuid4().hex[:6]}"
    body = {
        "adapters": [host.build.adapter("lora"), bad],
        "weights": [1.0],
        "prompts": ["a boat"],
        "seeds": [1, 2],
        "run_id": run_id,
        "base": {"steps": 4, "width": 64, "height": 64},
    }
    status = wait_job(api, api.post(f"{PREFIX}/grid", json=body).json()["job_id"], timeout=180)
    assert status["state"] == "done", status
    records = run_records(host.root, run_id)
    failed = [r for r in records if r["status"] == "failed"]
    assert {r["adapter"] for r in failed} == {bad} and len(failed) == 2, records
    assert all(words in r["error"] for r in failed), failed
    assert sum(r["status"] == "done" for r in records) == 4  # baselines and the working LoRA


def test_cross_family_adapter_refused_before_any_image(api, host):
    """An SDXL LoRA on the host's SD1.5 checkpoints: 422 naming the adapter, both families
    (read from the files' headers) and what to do; no run folder, no image; and the host's
    adapter list already says the family."""
    runs = host.root / "outputs" / "lycoris-eval"
    before = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    body = {
        "adapters": [host.build.adapter("lora"), "crossfamily-sdxl"],
        "weights": [1.0],
        "prompts": ["a boat"],
        "seeds": [1],
        "base": {"steps": 4, "width": 64, "height": 64},
    }
    response = api.post(f"{PREFIX}/grid", json=body)
    assert response.status_code == 422, response.text
    text = response.text
    assert "'crossfamily-sdxl' is for SDXL" in text and "is SD 1.x" in text and "pick a checkpoint" in text
    assert (sorted(p.name for p in runs.iterdir()) if runs.exists() else []) == before
    listed = {a["name"]: a for a in api.get(f"{PREFIX}/adapters").json()}
    assert listed["crossfamily-sdxl"]["info"]["family"] == "sdxl"
    assert listed[host.build.adapter("lora")]["info"]["family"] == "sd1"


def test_add_network_to_prompt_never_reaches_a_baseline(api, host):
    """The Lora extension's "Add network to prompt" (``sd_lora``) would put an adapter into
    every baseline. Forge's Lora extension has no such setting (read from the host): there
    the grid must simply leave the baselines free of adapters."""
    run_id = f"pure-{uuid.uuid4().hex[:6]}"
    lora, loha = host.build.adapter("lora"), host.build.adapter("loha")
    has_setting = "sd_lora" in api.get("/sdapi/v1/options").json()
    if has_setting:
        assert api.post("/sdapi/v1/options", json={"sd_lora": loha}).status_code == 200
    try:
        body = {
            "adapters": [lora],
            "weights": [1.0],
            "prompts": ["a bell"],
            "seeds": [4],
            "run_id": run_id,
            "base": {"steps": 4, "width": 64, "height": 64},
        }
        status = wait_job(api, api.post(f"{PREFIX}/grid", json=body).json()["job_id"], timeout=120)
        assert status["state"] == "done", status
        if has_setting:
            assert api.get("/sdapi/v1/options").json()["sd_lora"] == loha  # the user's setting kept
    finally:
        if has_setting:
            api.post("/sdapi/v1/options", json={"sd_lora": "None"})
    records = {r["adapter"]: r for r in run_records(host.root, run_id)}
    assert loha not in records[None]["infotext"] and "Lora hashes" not in records[None]["infotext"]
    assert lora not in records[None]["infotext"] and lora in records[lora]["infotext"]
    assert loha not in records[lora]["infotext"]
    manifest = api.get(f"{PREFIX}/runs/{run_id}").json()["manifest"]
    if has_setting:
        assert loha in manifest["host"]["neutralised"]["sd_lora"]
    else:
        assert "neutralised" not in manifest["host"]
