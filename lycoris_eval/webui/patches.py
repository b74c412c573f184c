"""Was the adapter applied to the model that made the image? Decided by what the running
host has (how it records LoRA patches), never by its name or version: each probe below
answers only when the structure it relies on is there, and a host none of them knows
answers ``None`` ("cannot tell").

Only the grid's images are checked, and each of them carries exactly one adapter (the
grid refuses adapter tags in its prompts and turns off "Add network to prompt"), so any
new patch on the model is that adapter's.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

NOT_APPLIED = (
    "adapter {adapter!r} loaded but none of its weights matches this checkpoint's layers "
    "(made for another base model?): the image would equal the baseline, so it is not kept"
)
APPLIED_UNKNOWN = (
    "kept unchecked: this WebUI records LoRA patches in a way the extension does not know, "
    "so whether {adapter!r} changed the model could not be checked"
)


def adapter_applied(sd_model: Any, network: Any) -> tuple[bool | None, str]:
    """``(applied, how)``: ``applied`` is True/False when a probe recognised the host's
    patch records, ``None`` when none did; ``how`` names the probe (for the run's notes)."""
    for probe in (_forge_lora_patches, _ldm_patched_patches, _webui_network_modules):
        answer = probe(sd_model, network)
        if answer is not None:
            return answer, probe.__name__.lstrip("_")
    return None, "unknown"


def _patchers(objects: Any) -> list[Any]:
    """UNet and text-encoder patchers of a ``forge_objects``-like holder."""
    if objects is None:
        return []
    clip = getattr(objects, "clip", None)
    return [p for p in (getattr(objects, "unet", None), getattr(clip, "patcher", clip)) if p is not None]


def _stem(filename: Any) -> str:
    return Path(str(filename)).stem


def _forge_lora_patches(sd_model: Any, network: Any) -> bool | None:
    """Forge: ``backend/patcher/base.py`` ``ModelPatcher.lora_patches``, a dict keyed by
    ``(filename, strength_patch, strength_model, online)`` whose value holds the patched
    weights (empty when no key of the file matched a layer, which
    ``extensions-builtin/sd_forge_lora/networks.py`` only logs)."""
    patchers = [p for p in _patchers(getattr(sd_model, "forge_objects", None)) if hasattr(p, "lora_patches")]
    if not patchers:
        return None
    name = getattr(network, "name", None)
    for patcher in patchers:
        for key, patches in (patcher.lora_patches or {}).items():
            filename = key[0] if isinstance(key, tuple) and key else None
            if filename and _stem(filename) == name and patches:
                return True
    return False


def applied_lora_files(sd_model: Any) -> list[str] | None:
    """reForge: the files ``extensions-builtin/Lora/networks.py`` ``load_networks`` applied
    last, from ``sd_model.current_lora_hash`` (``str([[filename, unet_w, te_w], …])``)."""
    text = getattr(sd_model, "current_lora_hash", None)
    if not isinstance(text, str):
        return None
    try:
        entries = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(entries, list):
        return None
    return [str(e[0]) for e in entries if isinstance(e, (list, tuple)) and e]


def _patch_count(patchers: list[Any]) -> int:
    return sum(len(v) for p in patchers for v in (getattr(p, "patches", None) or {}).values())


def _ldm_patched_patches(sd_model: Any, network: Any) -> bool | None:
    """reForge (``ldm_patched``): ``ldm_patched/modules/sd.py`` ``load_lora_for_models``
    clones the unpatched patchers of ``sd_model.forge_objects_original`` and adds each matched
    key to ``ModelPatcher.patches`` (keyed by weight, no file name; unmatched keys are only
    logged "NOT LOADED"); ``modules/processing.py`` then uses
    ``forge_objects_after_applying_lora``. Applied = the file is in ``current_lora_hash``
    and the patched patchers hold more patches than the original ones."""
    original = getattr(sd_model, "forge_objects_original", None)
    files = applied_lora_files(sd_model)
    if original is None or files is None:
        return None
    patched = getattr(sd_model, "forge_objects_after_applying_lora", None) or getattr(sd_model, "forge_objects", None)
    patchers, originals = _patchers(patched), _patchers(original)
    if not patchers or not all(hasattr(p, "patches") for p in patchers + originals):
        return None
    filename = getattr(getattr(network, "network_on_disk", None), "filename", None)
    mine = [f for f in files if (filename and f == str(filename)) or _stem(f) == getattr(network, "name", None)]
    if not mine:
        return False
    return _patch_count(patchers) > _patch_count(originals)


def _webui_network_modules(sd_model: Any, network: Any) -> bool | None:
    """The WebUI v1.10.1: ``extensions-builtin/Lora/networks.py`` ``load_network`` fills
    ``Network.modules`` with the layers the file's keys matched (a file matching none loads
    with no module and changes nothing). Only where the model has no ``forge_objects``:
    reForge keeps the class but never fills ``modules``."""
    if getattr(sd_model, "forge_objects", None) is not None:
        return None
    modules = getattr(network, "modules", None)
    if not isinstance(modules, dict):
        return None
    return len(modules) > 0
