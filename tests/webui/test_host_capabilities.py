"""The host probes of ``webui/`` (model loading, LoRA patch records, VRAM): each decides
by what the running host has, with its modules stubbed the way Forge ``f2.0.1v1.10.1`` and
reForge ``3b56b268`` define them, and does nothing (or answers "cannot tell") elsewhere."""

from __future__ import annotations

import sys
import types


def test_model_selection_refreshed_only_when_forges_loader_is_stale(fake_webui, monkeypatch):
    from lycoris_eval.webui import model_loading

    sd_models = fake_webui.sd_models
    model_loading.sync_model_selection()  # the WebUI: no Forge loader, nothing to do
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
    model_loading.sync_model_selection()
    assert calls == ["refresh"]
    model_loading.sync_model_selection()  # up to date: no refresh (a refresh makes Forge unload every model)
    assert calls == ["refresh"]


def _net(name="style_lora", filename="/models/Lora/style_lora.safetensors", modules=None):
    return types.SimpleNamespace(
        name=name, network_on_disk=types.SimpleNamespace(filename=filename), modules={} if modules is None else modules
    )


def test_adapter_applied_reads_forges_lora_patches(fake_webui):
    from lycoris_eval.webui.patches import adapter_applied

    def model(unet_patches, clip_patches):
        unet = types.SimpleNamespace(lora_patches=unet_patches)
        clip = types.SimpleNamespace(patcher=types.SimpleNamespace(lora_patches=clip_patches))
        return types.SimpleNamespace(forge_objects=types.SimpleNamespace(unet=unet, clip=clip))

    key = ("/models/Lora/style_lora.safetensors", 1.0, 1.0, False)
    assert adapter_applied(model({key: {"w": [1]}}, {}), _net()) == (True, "forge_lora_patches")
    assert adapter_applied(model({}, {key: {"w": [1]}}), _net())[0] is True  # text encoder only
    assert adapter_applied(model({key: {}}, {}), _net())[0] is False  # every key skipped
    assert adapter_applied(model({key: {"w": [1]}}, {}), _net("style_loha"))[0] is False  # another file's patch


def _reforge_model(files, patched, original=0, hash_text=None):
    """An ``sd_model`` as reForge leaves it after ``load_networks`` (``current_lora_hash``,
    ``forge_objects_original`` and the clones with ``.patches``)."""

    def objects(n):
        unet = types.SimpleNamespace(patches={f"w{i}": [(1.0, "lora", 1.0, None, None)] for i in range(n)})
        return types.SimpleNamespace(unet=unet, clip=types.SimpleNamespace(patcher=types.SimpleNamespace(patches={})))

    model = types.SimpleNamespace(forge_objects_original=objects(original), forge_objects=objects(patched))
    model.forge_objects_after_applying_lora = objects(patched)
    model.current_lora_hash = hash_text if hash_text is not None else str([[f, 1.0, 1.0] for f in files])
    return model


def test_adapter_applied_reads_reforges_ldm_patched_patches(fake_webui):
    from lycoris_eval.webui.patches import adapter_applied, applied_lora_files

    file = "/models/Lora/style_lora.safetensors"
    assert applied_lora_files(_reforge_model([file], 9)) == [file]
    assert adapter_applied(_reforge_model([file], 9), _net()) == (True, "ldm_patched_patches")
    # the file was asked for but none of its keys matched a layer ("NOT LOADED"): no new patch
    assert adapter_applied(_reforge_model([file], 2, original=2), _net())[0] is False
    assert adapter_applied(_reforge_model([], 9), _net())[0] is False  # not among the applied files
    # Network.modules stays {} there: the WebUI's rule would have said "not applied"
    assert adapter_applied(_reforge_model([file], 9), _net(modules={}))[0] is True
    # a record that cannot be read is no answer, never a "no"
    assert adapter_applied(_reforge_model([file], 9, hash_text="[[garbled"), _net()) == (None, "unknown")


def test_adapter_applied_on_the_webui_and_on_an_unknown_host(fake_webui):
    from lycoris_eval.webui.patches import adapter_applied

    webui_model = types.SimpleNamespace(sd_checkpoint_info=None)
    assert adapter_applied(webui_model, _net(modules={"layer": object()})) == (True, "webui_network_modules")
    assert adapter_applied(webui_model, _net(modules={}))[0] is False
    # patchers with records none of the probes knows (another fork, the next release)
    unknown = types.SimpleNamespace(
        forge_objects=types.SimpleNamespace(unet=types.SimpleNamespace(weights={}), clip=None)
    )
    assert adapter_applied(unknown, _net(modules={})) == (None, "unknown")
    assert adapter_applied(None, types.SimpleNamespace(name="x")) == (None, "unknown")


def test_users_checkpoint_is_the_loaded_one_when_the_option_is_empty(fake_webui):
    """reForge's ``load_model`` never writes the option: on a fresh config it is ``null``
    while a model is loaded, and the host's ``select_checkpoint`` would name its first file."""
    from lycoris_eval.webui import model_loading

    ns = fake_webui
    ns.sd_models.reload_model_weights(info=ns.ckpt_b)
    ns.shared.opts.data["sd_model_checkpoint"] = None
    assert ns.sd_models.select_checkpoint() is ns.ckpt_a  # the host's own fallback
    assert model_loading.user_checkpoint_info() is ns.ckpt_b
    ns.shared.opts.data["sd_model_checkpoint"] = ns.ckpt_a.title  # named: the option wins (Forge loads lazily)
    assert model_loading.user_checkpoint_info() is ns.ckpt_a
    ns.shared.opts.data["sd_model_checkpoint"] = "deleted.safetensors [0123456789]"
    assert model_loading.user_checkpoint_info() is ns.ckpt_b  # a name the host no longer has: what is loaded
    ns.shared.sd_model = None
    assert model_loading.user_checkpoint_info() is ns.ckpt_a


def test_reforges_model_manager_frees_vram_for_scoring(fake_webui, monkeypatch):
    from lycoris_eval.webui import memory

    calls = []
    manager = types.SimpleNamespace(
        unload_all_models=lambda: calls.append("unload"), soft_empty_cache=lambda: calls.append("empty")
    )
    memory.make_room("cuda:0")  # the WebUI v1.10.1: neither manager, nothing unloaded
    assert calls == []
    monkeypatch.setitem(sys.modules, "ldm_patched.modules.model_management", manager)
    memory.make_room("cuda:0")
    assert calls == ["unload", "empty"]
