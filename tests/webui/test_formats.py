"""Can this WebUI apply the format? The verdict on every fixture file for the three hosts
as their sources show them (docs/adapter-formats.md), and the probes on stand-in host
modules: what the host has decides, not its name."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from lycoris_eval.inputs.adapter_types import detect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
LYCORIS = {"LoRA", "LoCon", "LoHa", "LoKr", "full", "norm", "GLoRA"}

# what each host's loader has, as its source shows (the probes find the same on the real host)
HOSTS = {
    "a1111": ("webui-networks", LYCORIS | {"IA3", "OFT", "BOFT"}, True, {"kohya", "kohya-oft-sgm"}),
    "forge": ("comfy", LYCORIS, True, {"kohya", "diffusers-legacy"}),
    "reforge": ("comfy", LYCORIS | {"OFT", "BOFT"}, True, {"kohya", "diffusers-legacy"}),
}


@pytest.fixture
def formats(fake_webui, monkeypatch):
    """webui/formats.py (the webui package needs the WebUI's modules: the fake's), probe cache emptied."""
    from lycoris_eval.webui import formats as module

    monkeypatch.setattr(module, "_CACHE", [])
    return module


def caps(formats, host):
    loader, kinds, dora, layouts = HOSTS[host]
    return formats.HostFormats(loader, frozenset(kinds), dora, frozenset(layouts), host)


def expected(name: str, host: str) -> bool:
    e = MANIFEST[name]
    if e["layout"] in ("peft",):
        return False  # base_model.model. names match no layer of an SD/SDXL/Flux model anywhere
    if host == "a1111":  # kohya OFT: only SDXL's names (input_blocks_…) reach a layer
        return e["layout"] == "kohya" or (e["layout"] == "kohya-oft" and e["family"] == "sdxl")
    if e["layout"] == "kohya-oft" or e["layout"] == "diffusers":
        return e["layout"] == "diffusers" and e["family"] == "flux"
    no = {"IA3", "OFT", "BOFT"} if host == "forge" else {"IA3"}
    return e["type"] not in no


@pytest.mark.parametrize("host", ["a1111", "forge", "reforge"])
def test_every_fixture_gets_the_hosts_verdict(formats, host):
    wrong = {}
    for name in MANIFEST:
        applies, note = formats.verdict(detect(FIXTURES / name).as_dict(), caps(formats, host))
        if applies is not expected(name, host) or (applies is False and not note):
            wrong[name] = (applies, note)
    assert not wrong


def test_no_verdict_without_a_known_loader_or_a_known_type(formats):
    verdict = formats.verdict
    assert verdict({"type": "LoRA", "layout": "peft"}, None) == (None, None)
    assert verdict({"type": "unknown"}, caps(formats, "a1111")) == (None, None)
    no_dora = formats.HostFormats("webui-networks", frozenset({"LoRA"}), False, frozenset({"kohya"}), "")
    applies, note = verdict({"type": "LoRA+DoRA", "components": ["LoRA"], "dora": True, "layout": "kohya"}, no_dora)
    assert applies is False and "DoRA" in note


@pytest.fixture
def host_modules(formats, monkeypatch):
    """Stand-in host modules in sys.modules (the probe cache is emptied by ``formats``)."""

    def install(**mods):
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)

    return install


def _classes(*names):
    return [type(n, (), {})() for n in names]


def test_probe_reads_the_webui_lora_extensions_module_types(formats, host_modules):
    verdict = formats.verdict
    networks = types.ModuleType("networks")
    networks.module_types = _classes("ModuleTypeLora", "ModuleTypeHada")  # an older WebUI: no OFT, no LoKr
    networks.load_network = lambda: None
    network = types.ModuleType("network")
    network.NetworkModule = type("NetworkModule", (), {})  # no apply_weight_decompose: no DoRA
    host_modules(networks=networks, network=network)
    caps = formats.host_formats()
    assert caps.loader == "webui-networks" and caps.formats == {"LoRA", "LoCon", "LoHa"} and not caps.dora
    assert verdict(detect(FIXTURES / "lycoris_lokr.safetensors").as_dict(), caps)[0] is False
    assert verdict(detect(FIXTURES / "lycoris_loha.safetensors").as_dict(), caps) == (True, None)
    assert verdict(detect(FIXTURES / "lycoris_lora_dora.safetensors").as_dict(), caps)[0] is False


def test_probe_reads_reforges_weight_adapters(formats, host_modules):
    adapters = types.ModuleType("ldm_patched.modules.weight_adapter")
    adapters.adapters = [type(n, (), {}) for n in ("LoRAAdapter", "OFTAdapter")]
    lora = types.ModuleType("ldm_patched.modules.lora")
    lora.load_lora = lambda: None
    lora.model_lora_keys_unet = lambda: None
    host_modules(**{"ldm_patched.modules.weight_adapter": adapters, "ldm_patched.modules.lora": lora})
    caps = formats.host_formats()
    assert caps.loader == "comfy" and caps.formats == {"LoRA", "LoCon", "OFT"}


def test_an_unknown_loader_switches_the_verdict_off_with_one_log_line(formats, host_modules, caplog):
    host_modules(networks=types.ModuleType("networks"))  # a Lora extension without module_types
    with caplog.at_level("INFO", logger="lycoris_eval.webui.formats"):
        assert formats.host_formats() is None and formats.host_formats() is None
    assert len(caplog.records) == 1
    assert formats.with_verdict({"type": "LoRA"}) == {"type": "LoRA", "applies": None, "applies_note": None}


REAL = {
    "forge": Path("realhost-forge/src/packages_3rdparty/comfyui_lora_collection/lora.py"),
    "reforge": Path("realhost-reforge/src/ldm_patched/modules/lora.py"),
}


@pytest.mark.parametrize("host", sorted(REAL))
def test_the_key_map_reading_on_the_real_hosts_source(formats, host):
    path = Path(__file__).resolve().parents[2] / REAL[host]
    if not path.exists():
        pytest.skip(f"{REAL[host]} not built here")
    source = path.read_text(encoding="utf-8")
    keymap = source[source.index("def model_lora_keys_unet") :]
    assert formats._comfy_layouts(keymap) == {"kohya", "diffusers-legacy"}
    if host == "forge":
        loader = source[source.index("def load_lora") : source.index("def model_lora_keys_clip")]
        found = {f for s, fs in formats._COMFY_SUFFIXES.items() if s in loader for f in fs}
        assert found == HOSTS["forge"][1] and "dora_scale" in loader
