"""SDXL in the real WebUI v1.10.1: the tiny SDXL fixtures (``../shared/realhost/make_tiny_sdxl.py``,
loaded by the WebUI as SDXL) in an instance of their own (``--data-dir``), with the extension
installed there. A grid of SDXL adapters on SDXL checkpoints makes and scores every cell with
each adapter applied; an SD1.5 LoRA on them is refused before any image — there the host
itself would say nothing (an SDXL LoRA on SD1.5 even changes some pixels through the shared
CLIP-L), so the family read from the files is the only guard."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from PIL import Image

from .conftest import _require
from .host import (
    _IGNORE,
    EXT_NAME,
    FLAVOURS,
    HOST_SETTINGS,
    ROOT,
    SHARED,
    Build,
    Host,
    host_python,
    install_extension,
    run_records,
    wait_job,
    write_weights,
)

PREFIX = "/lycoris-eval/v1"
BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}


@pytest.fixture(scope="module")
def sdxl_host(tmp_path_factory):
    build = Build(FLAVOURS["webui"], _require("webui"))
    install_extension(build)  # its install.py puts the dependencies into the host's environment
    data = tmp_path_factory.mktemp("sdxl") / "data"
    maker = SHARED / "realhost" / "make_tiny_sdxl.py"
    proc = subprocess.run(
        [host_python(build.dest), str(maker), str(build.dest), "--out", str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lora_dir = data / "models" / "Lora"
    shutil.copy(
        build.root / "models" / "Lora" / f"{build.adapter('lora')}.safetensors", lora_dir / "sd1_lora.safetensors"
    )
    shutil.copytree(ROOT, data / "extensions" / EXT_NAME, ignore=_IGNORE)  # its dependencies: in the host's venv
    (data / "config.json").write_text(json.dumps(HOST_SETTINGS))
    write_weights(data / "models" / "lycoris-eval")
    host = Host(build, ui=False, extra=("--data-dir", str(data))).start()
    try:
        yield host, data
    finally:
        host.stop()


@pytest.mark.webui
def test_sdxl_grid_made_applied_and_scored_and_an_sd1_lora_refused(sdxl_host):
    host, data = sdxl_host
    with host.client() as api:
        adapters = {a["name"]: a for a in api.get(f"{PREFIX}/adapters").json()}
        assert adapters["tinyxl_lora"]["family"] == "sdxl" and adapters["tinyxl_loha"]["family"] == "sdxl"
        assert adapters["sd1_lora"]["family"] == "sd1"
        body = {
            "checkpoints": ["tiny-sdxl-a", "tiny-sdxl-b"],
            "adapters": ["tinyxl_lora", "tinyxl_loha"],
            "weights": [1.0],
            "prompts": ["a photo of a cat"],
            "seeds": [101, 102],
            "score": True,
            "base": BASE,
            "run_name": "sdxl",
        }
        answer = api.post(f"{PREFIX}/grid", json=body)
        assert answer.status_code == 202, answer.text
        status = wait_job(api, answer.json()["job_id"], timeout=600)
        assert status["state"] == "done", status
        run_id = answer.json()["run_id"]
        records = run_records(data, run_id)
        assert [r["status"] for r in records] == ["done"] * (2 * 2 * (1 + 2)), records
        images = data / "outputs" / "lycoris-eval" / run_id / "images"

        def pixels(record):
            with Image.open(images / record["image"]) as im:
                return im.convert("RGB").tobytes()

        baselines = {(r["checkpoint"], r["seed"]): pixels(r) for r in records if not r["adapter"]}
        for record in records:
            if record["adapter"]:
                assert pixels(record) != baselines[(record["checkpoint"], record["seed"])], record["key"]
        manifest = json.loads((data / "outputs" / "lycoris-eval" / run_id / "manifest.json").read_text())
        assert {c["family"] for c in manifest["host"]["checkpoints"]} == {"sdxl"}
        document = api.get(f"{PREFIX}/runs/{run_id}").json()["scores"]
        assert document["adapters"]["tinyxl_loha"]["family"] == "sdxl"
        assert document["run"]["n_images"] == len(records)
        # an SD1.5 LoRA on SDXL checkpoints: refused before any image, both families named
        refused = api.post(f"{PREFIX}/grid", json={**body, "adapters": ["sd1_lora"], "run_name": "cross"})
        assert refused.status_code == 422, refused.text
        assert "'sd1_lora' is for SD 1.x but checkpoint 'tiny-sdxl-a' is SDXL" in refused.text
        assert not any(p.name.startswith("cross") for p in (data / "outputs" / "lycoris-eval").iterdir())
