"""The host probes of ``lycoris_eval/webui/`` and the fake host's patch layouts rely on names
in each real host's sources (read with ``ast``, never imported): if a host renames one, the
probe would silently stop answering, so the rename fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import _require


def _tree(root: Path, rel: str) -> ast.Module:
    return ast.parse((root / rel).read_text(encoding="utf-8"))


def _functions(tree: ast.Module) -> set[str]:
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _assigned_attributes(tree: ast.Module) -> set[str]:
    """Every ``x.name = …`` target in a module."""
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Attribute):
                names.add(target.attr)
    return names


def _host_root(name: str) -> Path:
    from .host import FLAVOURS

    return _require(name) / FLAVOURS[name].subdir


@pytest.mark.reforge
def test_reforge_records_the_ldm_patched_patches_the_probe_reads():
    root = _host_root("reforge")
    networks = _tree(root, "extensions-builtin/Lora/networks.py")
    assert {"current_lora_hash", "forge_objects_after_applying_lora"} <= _assigned_attributes(networks)
    source = (root / "extensions-builtin/Lora/networks.py").read_text(encoding="utf-8")
    # the record the probe parses: str([[filename, unet_w, te_w], ...]) and the unpatched originals
    assert "compiled_lora_targets.append([a.filename, b, c])" in source
    assert "current_sd.forge_objects_original" in source
    patcher = _tree(root, "ldm_patched/modules/model_patcher.py")
    assert "patches" in _assigned_attributes(patcher) and "add_patches" in _functions(patcher)
    clip = (root / "ldm_patched/modules/sd.py").read_text(encoding="utf-8")
    assert "self.patcher = " in clip  # CLIP's patcher, as for Forge's clip
    loader = _tree(root, "modules_forge/forge_loader.py")
    assert {"forge_objects_original", "current_lora_hash"} <= _assigned_attributes(loader)
    memory = _functions(_tree(root, "ldm_patched/modules/model_management.py"))
    assert {"unload_all_models", "soft_empty_cache"} <= memory
    # no Forge markers: a probe for them would see the WebUI here
    assert not (root / "modules_forge" / "main_entry.py").exists() and not (root / "backend").exists()
    # the loader never writes the checkpoint option (the option can be null while a model is loaded)
    sd_models = (root / "modules/sd_models.py").read_text(encoding="utf-8")
    assert 'opts.data["sd_model_checkpoint"]' not in sd_models


@pytest.mark.forge
def test_forge_keeps_lora_patches_by_file_as_the_probe_reads():
    root = _host_root("forge")
    base = (root / "backend/patcher/base.py").read_text(encoding="utf-8")
    assert "self.lora_patches = {}" in base
    assert "for (filename, strength_patch, strength_model, online_mode), this_patches in self.lora_patches" in base
    assert {"unload_all_models", "soft_empty_cache"} <= _functions(_tree(root, "backend/memory_management.py"))
    assert "refresh_model_loading_parameters" in _functions(_tree(root, "modules_forge/main_entry.py"))


@pytest.mark.webui
def test_webui_fills_network_modules_as_the_probe_reads():
    root = _host_root("webui")
    network = _tree(root, "extensions-builtin/Lora/network.py")
    assert "modules" in _assigned_attributes(network)
    source = (root / "extensions-builtin/Lora/networks.py").read_text(encoding="utf-8")
    assert "net.modules[key] = net_module" in source
    assert not (root / "ldm_patched").exists() and not (root / "backend").exists()
