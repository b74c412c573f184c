"""Our ``applies`` verdict (``GET /lycoris-eval/v1/adapters``, webui/formats.py) against what
each real host's own Lora extension does with the file.

For each key layout / format that docs/adapter-formats.md says differs between hosts, an
adapter file is written from the host's own control LoRA (``build.adapter('lora')``: kohya
names and shapes of the host's test checkpoint), renamed and reshaped into that layout:
PEFT (``base_model.model.…lora_A``), current diffusers (``unet.…to_q.lora_A`` plus the
text encoder as ``save_lora_weights`` names it), diffusers' older attention processors
(``processor.to_q_lora.down``), LyCORIS IA3 / Diag-OFT / BOFT on kohya names and kohya OFT
(``oft_unet_…``). The same seed is generated with and without ``<lora:NAME:1>``:

* ``applies`` true ⇒ the pixels change;
* ``applies`` false ⇒ the pixels do not change, or the host refuses the request, or it applies
  the file only in part and logs the keys it left out (reForge applies the text-encoder and
  feed-forward parts of a current-diffusers file and leaves out the attention: that image is
  not the adapter's either).

The measured mean |Δ| per layout is printed (``-s``), with the host's log lines for the file.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

PREFIX = "/lycoris-eval/v1"
BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5, "seed": 4242}
PROMPT = "a photo of a cat"
LAYOUTS = ("kohya", "peft", "diffusers", "diffusers_unet", "diffusers_legacy", "ia3", "oft", "boft", "kohya_oft")
# what a host logs when it applies a file in part: reForge "lora key not loaded: KEY",
# Forge "[LORA] Loading FILE … with unmatched keys […]"
PARTLY = re.compile(r"lora key not loaded|NOT LOADED|with unmatched keys")
KOHYA_MODULES = {"ia3": "lycoris.kohya", "oft": "lycoris.kohya", "boft": "lycoris.kohya", "kohya_oft": "networks.oft"}
# kohya module names are diffusers paths with "." written "_"; these words keep their "_"
_WORDS = (
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "proj_in", "proj_out", "to_q", "to_k", "to_v",
    "to_out", "text_model", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj",
)  # fmt: skip


def _dotted(kohya: str) -> tuple[str, str]:
    """``("unet" | "te", diffusers path)`` of a kohya module name."""
    part, rest = (
        ("unet", kohya[len("lora_unet_") :]) if kohya.startswith("lora_unet_") else ("te", kohya[len("lora_te_") :])
    )
    path = rest.replace("_", ".")
    for word in _WORDS:
        path = path.replace(word.replace("_", "."), word)
    return part, path


def _modules(tensors: dict) -> dict[str, tuple]:
    """kohya module -> (down, up, alpha) of the control LoRA's linear modules (the k×k/1×1
    convolutions left out: not every format applies to them the same way)."""
    out = {}
    for key, down in tensors.items():
        if key.endswith(".lora_down.weight") and down.dim() == 2:
            module = key[: -len(".lora_down.weight")]
            out[module] = (down.float(), tensors[f"{module}.lora_up.weight"].float(), tensors.get(f"{module}.alpha"))
    assert out, "the control LoRA has no linear modules"
    return out


def convert(layout: str, tensors: dict) -> dict:
    """The control LoRA's tensors written in ``layout`` (deterministic)."""
    import torch

    g = torch.Generator().manual_seed(LAYOUTS.index(layout))
    modules = _modules(tensors)
    out = {}
    for module, (down, up, _alpha) in modules.items():
        part, path = _dotted(module)
        n_out = up.shape[0]
        if layout == "peft":
            if part == "unet":  # PEFT on the UNet, as save_pretrained names it
                out[f"base_model.model.{path}.lora_A.weight"] = down
                out[f"base_model.model.{path}.lora_B.weight"] = up
        elif layout in ("diffusers", "diffusers_unet"):
            if part == "unet":
                out[f"unet.{path}.lora_A.weight"] = down
                out[f"unet.{path}.lora_B.weight"] = up
            elif layout == "diffusers":  # text encoder, as StableDiffusionPipeline.save_lora_weights
                out[f"text_encoder.{path}.lora_A.weight"] = down
                out[f"text_encoder.{path}.lora_B.weight"] = up
        elif layout == "diffusers_legacy":
            if part == "unet":
                legacy = re.sub(r"\.(to_q|to_k|to_v|to_out)(\.0)?$", r".processor.\1_lora", path)
                if legacy != path:  # only attention has processors
                    out[f"unet.{legacy}.down.weight"] = down
                    out[f"unet.{legacy}.up.weight"] = up
            else:
                out[f"text_encoder.{path}.lora_linear_layer.down.weight"] = down
                out[f"text_encoder.{path}.lora_linear_layer.up.weight"] = up
        elif layout == "ia3":  # LyCORIS IA3: a scale per output channel
            out[f"{module}.weight"] = torch.randn(n_out, generator=g) * 0.5
            out[f"{module}.on_input"] = torch.tensor(0.0)
        elif layout == "oft":  # LyCORIS Diag-OFT: 4 blocks
            out[f"{module}.oft_blocks"] = torch.randn(4, n_out // 4, n_out // 4, generator=g) * 0.05
            out[f"{module}.alpha"] = torch.tensor(0.0)  # no constraint
        elif layout == "boft":  # LyCORIS BOFT: 2 butterfly factors of 4×4 blocks
            out[f"{module}.oft_blocks"] = torch.randn(2, n_out // 4, 4, 4, generator=g) * 0.2
            out[f"{module}.alpha"] = torch.tensor(0.0)
        elif layout == "kohya_oft":  # kohya sd-scripts networks/oft.py: the UNet only, dim = blocks
            if part == "unet":
                name = "oft_unet_" + module[len("lora_unet_") :]
                out[f"{name}.oft_blocks"] = torch.randn(4, n_out // 4, n_out // 4, generator=g) * 0.05
                out[f"{name}.alpha"] = torch.tensor(1.0)
        else:
            raise ValueError(layout)
    assert out, layout
    return {k: v.contiguous() for k, v in out.items()}


@pytest.fixture(scope="module")
def layout_files(build, host, api):
    """The files, written into the host's ``models/Lora`` and listed (refresh-loras);
    removed afterwards."""
    from safetensors.torch import load_file, save_file

    lora_dir = build.root / "models" / "Lora"
    control = build.adapter("lora")
    tensors = load_file(str(lora_dir / f"{control}.safetensors"))
    names = {"kohya": control}
    for layout in LAYOUTS[1:]:
        names[layout] = f"fmt_{layout}"
        # kohya-named files carry the training metadata sd-scripts writes (the family, for one)
        metadata = None
        if layout in KOHYA_MODULES:
            metadata = {"ss_base_model_version": "sd_v1", "ss_network_module": KOHYA_MODULES[layout]}
        save_file(convert(layout, tensors), str(lora_dir / f"fmt_{layout}.safetensors"), metadata=metadata)
    assert api.post("/sdapi/v1/refresh-loras").status_code == 200
    try:
        yield names
    finally:
        for layout in LAYOUTS[1:]:
            (lora_dir / f"fmt_{layout}.safetensors").unlink(missing_ok=True)
        api.post("/sdapi/v1/refresh-loras")


def _generate(api, host, prompt: str):
    """(pixels as int16 array, or None when the host refused; the host's log lines meanwhile)."""
    offset = len(host.log_text())
    body = {**BASE, "prompt": prompt}  # the checkpoint loaded: the same for the baseline and each file
    response = api.post("/sdapi/v1/txt2img", json=body, timeout=600)
    log = host.log_text()[offset:]
    if response.status_code != 200:
        return None, log + response.text[:2000]
    import base64

    data = base64.b64decode(response.json()["images"][0])
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16), log


@pytest.fixture(scope="module")
def baseline(api, host, layout_files):
    first, log = _generate(api, host, PROMPT)
    assert first is not None, log
    again, log = _generate(api, host, PROMPT)
    assert again is not None and np.array_equal(first, again), "the same seed gave other pixels: nothing to compare"
    return first


@pytest.mark.parametrize("layout", LAYOUTS)
def test_applies_verdict_matches_the_host(api, host, layout_files, baseline, layout):
    name = layout_files[layout]
    entries = {a["name"]: a for a in api.get(f"{PREFIX}/adapters").json()}
    assert name in entries, sorted(entries)
    entry = entries[name]
    assert entry["applies"] is not None, f"no verdict on {host.flavour}: the format probe did not know its loader"
    image, log = _generate(api, host, f"{PROMPT} <lora:{name}:1>")
    lines = [line for line in log.splitlines() if name in line or "lora" in line.lower()][:8]
    delta = None if image is None else float(np.abs(image - baseline).mean())
    print(
        f"\n[formats] {host.flavour} {layout:17} type={entry['type']:8} "
        f"applies={entry['applies']!s:5} mean|Δ|={'refused' if delta is None else f'{delta:.3f}'} "
        + json.dumps(lines)[:600]
    )
    if entry["applies"]:
        assert delta is not None and delta > 0, (
            f"{host.flavour}: we say {name} ({layout}) applies, but the image did not change: {lines}"
        )
        assert not PARTLY.search(log), f"{host.flavour}: we say {name} ({layout}) applies, but the host left keys out"
    else:
        # "does not apply" also covers a file the host applies only in part (the image is not
        # the adapter's): then the host must have said it left keys out
        partly = PARTLY.search(log)
        assert delta is None or delta == 0 or partly, (
            f"{host.flavour}: we say {name} ({layout}) does not apply ({entry['applies_note']}), "
            f"but the image changed by {delta:.3f} and the host left no key out: {lines}"
        )
