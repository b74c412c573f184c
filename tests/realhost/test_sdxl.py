"""SDXL in the three real hosts, each in an instance of its own (``--data-dir``) with the
extension installed there. The WebUI v1.10.1 runs the leads' tiny SDXL fixtures
(``../shared/realhost/make_tiny_sdxl.py``, loaded as SDXL). Forge and reForge refuse those (they
take a UNet only when it matches a known model exactly, and build both text encoders and the
VAE at full size from fixed configs), so they run ``make_mini_sdxl.py``'s: Segmind Vega's
layout with full-size encoders (2.0 GB, made once into ``test-artifacts`` and hard-linked).
A grid of SDXL adapters on SDXL checkpoints makes and scores every cell with each adapter
applied; an SD1.5 LoRA on them is refused before any image — there the host itself would say
nothing (an SDXL LoRA on SD1.5 even changes some pixels through the shared CLIP-L), so the
family read from the files is the only guard."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
    run_records,
    wait_job,
    write_weights,
    xyz_args,
    xyz_axis_index,
)

PREFIX = "/lycoris-eval/v1"
BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}
MAKER = Path(__file__).with_name("make_mini_sdxl.py")


@dataclass(frozen=True)
class Models:
    """What one host's SDXL instance has: its SDXL checkpoints and SDXL adapters."""

    checkpoints: tuple[str, ...]
    adapters: tuple[str, str]  # (LoRA, LoHa)


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _mini_sdxl(a1111: Build, tiny: Path) -> Path:
    """The Forge family's SDXL fixtures, made once per maker version (2.0 GB, about 25 s)."""
    version = hashlib.sha256(MAKER.read_bytes()).hexdigest()[:10]
    cache = ROOT / "test-artifacts" / f"mini-sdxl-{version}"
    if not (cache / "mini-sdxl.safetensors").is_file():
        for old in (ROOT / "test-artifacts").glob("mini-sdxl-*"):
            shutil.rmtree(old)  # an older maker's 2 GB
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _run([host_python(a1111.dest), str(MAKER), str(a1111.root), str(tiny), str(partial)])
        partial.rename(cache)
    return cache


@pytest.fixture(scope="module")
def sdxl_host(build, tmp_path_factory):
    a1111 = Build(FLAVOURS["webui"], _require("webui"))  # its sgm code and Python make the fixtures
    data = tmp_path_factory.mktemp(f"sdxl-{build.flavour.name}") / "data"
    tiny = data if build.flavour.name == "webui" else data.parent / "tiny"
    _run([host_python(a1111.dest), str(SHARED / "realhost" / "make_tiny_sdxl.py"), str(a1111.dest), "--out", str(tiny)])
    lora_dir = data / "models" / "Lora"
    if build.flavour.name == "webui":
        models = Models(("tiny-sdxl-a", "tiny-sdxl-b"), ("tinyxl_lora", "tinyxl_loha"))
    else:
        mini = _mini_sdxl(a1111, tiny)
        (data / "models" / "Stable-diffusion").mkdir(parents=True)
        os.link(mini / "mini-sdxl.safetensors", data / "models" / "Stable-diffusion" / "mini-sdxl.safetensors")
        lora_dir.mkdir(parents=True)
        for kind in ("lora", "loha"):
            shutil.copy(mini / f"minixl_{kind}.safetensors", lora_dir)
        # live previews: the tiny fixtures' SDXL approximation net, and the host's own
        shutil.copytree(tiny / "models" / "VAE-approx", data / "models" / "VAE-approx")
        for net in (build.root / "models" / "VAE-approx").glob("*"):
            shutil.copy(net, data / "models" / "VAE-approx")
        models = Models(("mini-sdxl",), ("minixl_lora", "minixl_loha"))
    shutil.copy(
        build.root / "models" / "Lora" / f"{build.adapter('lora')}.safetensors", lora_dir / "sd1_lora.safetensors"
    )
    shutil.copytree(ROOT, data / "extensions" / EXT_NAME, ignore=_IGNORE)  # its dependencies: in the host's venv
    (data / "config.json").write_text(json.dumps(HOST_SETTINGS))
    write_weights(data / "models" / "lycoris-eval")
    host = Host(build, ui=False, extra=("--data-dir", str(data))).start()
    try:
        yield host, data, models
    finally:
        host.stop()


def test_sdxl_grid_made_applied_and_scored_and_an_sd1_lora_refused(sdxl_host):
    host, data, models = sdxl_host
    lora, loha = models.adapters
    with host.client() as api:
        adapters = {a["name"]: a for a in api.get(f"{PREFIX}/adapters").json()}
        assert adapters[lora]["family"] == "sdxl" and adapters[loha]["family"] == "sdxl"
        assert adapters["sd1_lora"]["family"] == "sd1"
        body = {
            "checkpoints": list(models.checkpoints),
            "adapters": [lora, loha],
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
        assert [r["status"] for r in records] == ["done"] * (len(models.checkpoints) * 2 * (1 + 2)), records
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
        assert document["adapters"][loha]["family"] == "sdxl"
        assert document["run"]["n_images"] == len(records)
        # an SD1.5 LoRA on SDXL checkpoints: refused before any image, both families named
        refused = api.post(f"{PREFIX}/grid", json={**body, "adapters": ["sd1_lora"], "run_name": "cross"})
        assert refused.status_code == 422, refused.text
        assert f"'sd1_lora' is for SD 1.x but checkpoint '{models.checkpoints[0]}' is SDXL" in refused.text
        assert not any(p.name.startswith("cross") for p in (data / "outputs" / "lycoris-eval").iterdir())


def test_sdxl_xyz_plot_with_our_adapter_axis_and_an_sd1_lora_refused(sdxl_host):
    """The built-in X/Y/Z plot on an SDXL checkpoint with our adapter axis: each SDXL adapter
    applied in its cell and the cells kept for Evaluate, labelled by the infotext; an SD1.5
    LoRA on that axis refuses the plot before its first image (the checkpoint the cells use
    is the request's override here: on reForge the option is empty)."""
    host, data, models = sdxl_host
    lora, loha = models.adapters
    capture = data / "outputs" / "lycoris-eval" / "xyz-last"
    with host.client(timeout=600) as api:
        adapter_axis = xyz_axis_index(api, "LyCORIS: adapter")
        body = {**BASE, "prompt": "a photo of a cat", "seed": 101, "script_name": "x/y/z plot"}
        body["override_settings"] = {"sd_model_checkpoint": models.checkpoints[0]}
        response = api.post(
            "/sdapi/v1/txt2img", json={**body, "script_args": xyz_args(api, (adapter_axis, "", ["None", lora, loha]))}
        )
        assert response.status_code == 200, response.text[:2000]
        cells = sorted(capture.glob("*.png"))
        assert len(cells) == 3, [c.name for c in cells]
        pixels, infotexts = [], []
        for cell in cells:
            with Image.open(cell) as im:
                pixels.append(im.convert("RGB").tobytes())
                infotexts.append(im.info.get("parameters", ""))
        assert len(set(pixels)) == 3  # the baseline and each adapter's image all differ
        assert [lora in t for t in infotexts] == [False, True, False]
        assert [loha in t for t in infotexts] == [False, False, True]
        before = {c.name: c.stat().st_mtime_ns for c in cells}
        args = xyz_args(api, (adapter_axis, "", [lora, "sd1_lora"]))
    with host.client(timeout=600) as fresh:  # Forge closes the connection after an error
        refused = fresh.post("/sdapi/v1/txt2img", json={**body, "script_args": args})
    assert refused.status_code != 200 and "'sd1_lora' is for SD 1.x" in refused.text, refused.text[:2000]
    assert {c.name: c.stat().st_mtime_ns for c in capture.glob("*.png")} == before
