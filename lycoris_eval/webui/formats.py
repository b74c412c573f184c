"""Can this WebUI apply an adapter's format? Said in the adapter list before it is picked.

Decided by what the running host's Lora loader has, never its name or version
(docs/adapter-formats.md has the facts read in each host's source):

* the WebUI's built-in Lora extension (A1111 v1.10.1): the module types in
  ``networks.module_types`` (one class per format), DoRA when ``network.NetworkModule`` has
  ``apply_weight_decompose``, BOFT when its OFT module knows the butterfly form; key names
  are split at the first dot and converted from kohya's names, so dotted PEFT/diffusers names
  match no layer (``networks.load_network``).
* ComfyUI-style loaders (Forge's ``backend.patcher.lora``, reForge's ``ldm_patched``): the
  weight adapters reForge lists (``weight_adapter.adapters``) or the key suffixes the
  loader's ``load_lora`` reads (Forge); their key maps take kohya names, diffusers' older
  attention-processor names and, for Flux, diffusers' ``transformer.`` names.

A host none of the probes knows gives no verdict (``None``), with one log line, and the
rest of the extension works as before.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)

# A1111 Lora extension: module type class -> the formats it builds
_WEBUI_TYPES = {
    "ModuleTypeLora": ("LoRA", "LoCon"),
    "ModuleTypeHada": ("LoHa",),
    "ModuleTypeIa3": ("IA3",),
    "ModuleTypeLokr": ("LoKr",),
    "ModuleTypeFull": ("full",),
    "ModuleTypeNorm": ("norm",),
    "ModuleTypeGLora": ("GLoRA",),
    "ModuleTypeOFT": ("OFT",),
}
# reForge (ComfyUI) weight adapters -> formats
_COMFY_ADAPTERS = {
    "LoRAAdapter": ("LoRA", "LoCon"),
    "LoHaAdapter": ("LoHa",),
    "LoKrAdapter": ("LoKr",),
    "GLoRAAdapter": ("GLoRA",),
    "OFTAdapter": ("OFT",),
    "BOFTAdapter": ("BOFT",),
}
# a key suffix a ComfyUI-style load_lora reads -> the format it makes
_COMFY_SUFFIXES = {
    "lora_up.weight": ("LoRA", "LoCon"),
    "hada_w1_a": ("LoHa",),
    "lokr_w1": ("LoKr",),
    "a1.weight": ("GLoRA",),
    "oft_blocks": ("OFT",),
    "on_input": ("IA3",),
    ".diff": ("full",),
    "w_norm": ("norm",),
}
LAYOUT_WORDS = {
    "kohya": "kohya/LyCORIS names (lora_unet_…)",
    "kohya-oft": "kohya OFT names (oft_unet_…)",
    "kohya-oft-sgm": "kohya OFT names in the SDXL form (oft_unet_input_blocks_…)",
    "peft": "PEFT names (base_model.model.…)",
    "diffusers": "diffusers names (unet.…lora_A)",
    "diffusers-legacy": "diffusers' older attention-processor names",
}


@dataclass(frozen=True)
class HostFormats:
    loader: str  # "webui-networks" or "comfy" (Forge, reForge)
    formats: frozenset[str]  # adapter types its loader builds
    dora: bool  # applies dora_scale
    layouts: frozenset[str]  # key layouts its key map matches to the model's layers
    evidence: str  # what was found, in words


def verdict(info: dict[str, Any], host: HostFormats | None) -> tuple[bool | None, str | None]:
    """``(applies, note)`` for one adapter's detected info (adapter_types.AdapterInfo as a
    dict): False with the reason when the host cannot apply its format, None when it cannot
    be told (unknown host or unknown type). Pure."""
    if host is None:
        return None, None
    kind = str(info.get("type") or "unknown")
    if kind == "unknown":
        return None, None
    layout = info.get("layout")
    if layout == "diffusers" and host.loader == "comfy" and info.get("family") == "flux":
        pass  # its key map names diffusers' Flux transformer (transformer.…)
    elif layout == "diffusers" and host.loader == "comfy":
        return False, (
            "this WebUI cannot apply diffusers names (unet.…to_q.lora_A): its key map knows diffusers' "
            "UNet attention only under the older processor names, so at most the rest (text encoder, "
            "feed-forward, convolutions) is applied and the image is not the adapter's (Forge's loader "
            "drops the whole file when more than 12 keys match nothing)"
        )
    elif layout == "kohya-oft" and "kohya-oft" not in host.layouts and "kohya-oft-sgm" in host.layouts:
        # the WebUI turns oft_unet_ into diffusion_model_ and nothing more: only names already in
        # the SGM UNet's form (kohya's SDXL: input_blocks_…) match; SD1/SD2 files name diffusers'
        # blocks (down_blocks_…), which match no layer (measured: tests/realhost/test_formats_realhost.py)
        family = info.get("family")
        if family not in ("sdxl", "sd1", "sd2", "flux"):
            return None, None
        if family != "sdxl":
            return False, (
                "this WebUI cannot apply kohya OFT names for this model (oft_unet_down_blocks_…): its Lora "
                "loader maps oft_unet_ names only in the SDXL form (oft_unet_input_blocks_…)"
            )
    elif layout and layout not in host.layouts:
        return False, (
            f"this WebUI cannot apply {LAYOUT_WORDS.get(layout, layout)}: its Lora loader matches only "
            + ", ".join(LAYOUT_WORDS[x] for x in sorted(host.layouts) if x in LAYOUT_WORDS)
            + " (convert the file to kohya names first)"
        )
    missing = [c for c in info.get("components") or [kind] if c not in host.formats]
    if missing:
        return False, (
            f"this WebUI cannot apply {', '.join(missing)}: its Lora loader builds " + ", ".join(sorted(host.formats))
        )
    if info.get("dora") and layout in ("peft", "diffusers"):
        return False, "this WebUI cannot apply PEFT's DoRA (lora_magnitude_vector); its loaders read only dora_scale"
    if info.get("dora") and not host.dora:
        return (
            False,
            "this WebUI cannot apply DoRA (its Lora loader ignores dora_scale): the image would not be the adapter's",
        )
    return True, None


_CACHE: list[HostFormats | None] = []


def host_formats() -> HostFormats | None:
    """What the running host's Lora loader applies; probed once. None (and one log line)
    when no probe recognises the loader."""
    if not _CACHE:
        found = None
        for probe in (_webui_networks, _reforge_adapters, _forge_loader):
            try:
                found = probe()
            except (ImportError, AttributeError, TypeError, ValueError) as exc:  # absent, or not as expected
                LOG.debug("format probe %s failed: %s", probe.__name__, exc)
                found = None
            if found is not None:
                break
        if found is None:
            LOG.info(
                "LyCORIS Eval: this WebUI's Lora loader is not one it knows; the adapter list says nothing on formats"
            )
        _CACHE.append(found)
    return _CACHE[0]


def with_verdict(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with ``applies`` and ``applies_note`` from this host."""
    applies, note = verdict(info, host_formats())
    return {**info, "applies": applies, "applies_note": note}


def _module(name: str) -> Any:
    # the host's own modules: imported only inside the WebUI, where they are on the path
    return sys.modules.get(name) or importlib.import_module(name)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _webui_networks() -> HostFormats | None:
    networks = _module("networks")  # the built-in Lora extension (extensions-builtin/Lora)
    types = getattr(networks, "module_types", None)
    if not isinstance(types, list):
        return None
    formats: set[str] = set()
    for module_type in types:
        formats.update(_WEBUI_TYPES.get(type(module_type).__name__, ()))
        if type(module_type).__name__ == "ModuleTypeOFT" and "boft" in _source(inspect.getmodule(type(module_type))):
            formats.add("BOFT")  # v1.10.1 network_oft.py: 4-d oft_blocks, is_boft
    network = _module("network")
    dora = hasattr(getattr(network, "NetworkModule", None), "apply_weight_decompose")
    layouts = {"kohya"}
    if "oft_unet" in _source(getattr(networks, "load_network", None)):
        # v1.10.1 replaces oft_unet_ by diffusion_model_ without converting diffusers' block names
        # (convert_diffusers_name_to_compvis knows lora_unet_ only): SDXL-form names only
        convert = _source(getattr(networks, "convert_diffusers_name_to_compvis", None))
        layouts.add("kohya-oft" if "oft_unet" in convert else "kohya-oft-sgm")
    names = ", ".join(type(t).__name__ for t in types)
    return HostFormats(
        "webui-networks", frozenset(formats), dora, frozenset(layouts), f"networks.module_types: {names}"
    )


def _comfy_layouts(keymap_source: str) -> set[str]:
    layouts = {"kohya"} if "lora_unet_" in keymap_source else set()
    if "processor.to_" in keymap_source:
        layouts.add("diffusers-legacy")
    if "oft_unet" in keymap_source:
        layouts.add("kohya-oft")
    return layouts


def _reforge_adapters() -> HostFormats | None:
    adapters = getattr(_module("ldm_patched.modules.weight_adapter"), "adapters", None)
    if not isinstance(adapters, list):
        return None
    lora = _module("ldm_patched.modules.lora")
    formats = {f for a in adapters for f in _COMFY_ADAPTERS.get(a.__name__, ())}
    loader = _source(lora.load_lora)
    formats.update(f for s, fs in _COMFY_SUFFIXES.items() if s in (".diff", "w_norm") and s in loader for f in fs)
    layouts = _comfy_layouts(_source(lora.model_lora_keys_unet))
    names = ", ".join(a.__name__ for a in adapters)
    return HostFormats(
        "comfy", frozenset(formats), "dora_scale" in loader, frozenset(layouts), f"weight adapters: {names}"
    )


def _forge_loader() -> HostFormats | None:
    patcher = _module("backend.patcher.lora")
    get_function = getattr(patcher, "get_function", None)
    if get_function is None:
        return None
    loader = _source(get_function("load_lora"))
    if not loader:
        return None
    formats = {f for s, fs in _COMFY_SUFFIXES.items() if s in loader for f in fs}
    layouts = _comfy_layouts(_source(get_function("model_lora_keys_unet")))
    return HostFormats(
        "comfy", frozenset(formats), "dora_scale" in loader, frozenset(layouts), "backend.patcher.lora load_lora"
    )
