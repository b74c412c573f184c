"""What webui/forge.py does in Forge (its modules stubbed the way Forge's
f2.0.1v1.10.1 defines them), and that it does nothing in the WebUI v1.10.1."""

from __future__ import annotations

import sys
import types


def test_model_selection_refreshed_only_when_forges_loader_is_stale(fake_webui, monkeypatch):
    from lycoris_eval.webui import forge

    sd_models = fake_webui.sd_models
    forge.sync_model_selection()  # the WebUI: no Forge loader, nothing to do
    calls = []
    wanted = sd_models.select_checkpoint()
    main_entry = types.ModuleType("modules_forge.main_entry")

    def refresh():  # Forge's refresh_model_loading_parameters: parameters from the options
        calls.append("refresh")
        sd_models.model_data.forge_loading_parameters = {"checkpoint_info": sd_models.select_checkpoint()}

    main_entry.refresh_model_loading_parameters = refresh
    monkeypatch.setitem(sys.modules, "modules_forge.main_entry", main_entry)
    stale = types.SimpleNamespace(filename=wanted.filename + ".other")
    monkeypatch.setattr(
        sd_models,
        "model_data",
        types.SimpleNamespace(forge_loading_parameters={"checkpoint_info": stale}),
        raising=False,
    )
    forge.sync_model_selection()
    assert calls == ["refresh"]
    forge.sync_model_selection()  # up to date: no refresh (a refresh makes Forge unload every model)
    assert calls == ["refresh"]


def test_adapter_applied_reads_forges_lora_patches(fake_webui):
    from lycoris_eval.webui.forge import adapter_applied

    def model(unet_patches, clip_patches):
        unet = types.SimpleNamespace(lora_patches=unet_patches)
        clip = types.SimpleNamespace(patcher=types.SimpleNamespace(lora_patches=clip_patches))
        return types.SimpleNamespace(forge_objects=types.SimpleNamespace(unet=unet, clip=clip))

    key = ("/models/Lora/style_lora.safetensors", 1.0, 1.0, False)
    assert adapter_applied(types.SimpleNamespace(), "style_lora") is None  # the WebUI: no Forge patchers
    assert adapter_applied(model({key: {"w": [1]}}, {}), "style_lora") is True
    assert adapter_applied(model({}, {key: {"w": [1]}}), "style_lora") is True  # text encoder only
    assert adapter_applied(model({key: {}}, {}), "style_lora") is False  # every key skipped
    assert adapter_applied(model({key: {"w": [1]}}, {}), "style_loha") is False  # another file's patch
