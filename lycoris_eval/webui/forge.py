"""What Stable Diffusion WebUI Forge does differently from the WebUI v1.10.1 at the points
the grid relies on; every function is a no-op (or answers ``None``) on the WebUI itself.

Forge counterparts (``f2.0.1v1.10.1``): ``modules_forge/main_entry.py``
(``refresh_model_loading_parameters``), ``modules/sysinfo.py`` (``set_config``: an override
equal to the current option is skipped), ``modules/sd_models.py`` (``reload_model_weights``
is a no-op), ``extensions-builtin/sd_forge_lora/networks.py`` (a LoRA whose keys do not
match is skipped with only a log line), ``backend/patcher/base.py`` (``lora_patches``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def is_forge() -> bool:
    """Forge is running: its entry module is imported (it is, before any extension loads)."""
    return "modules_forge.main_entry" in sys.modules


def sync_model_selection() -> None:
    """Make the model Forge will load the one the options name.

    Forge loads lazily, from loading parameters refreshed only when ``set_config`` sees the
    checkpoint option *change*; writing the option directly (as the built-in X/Y/Z plot
    and the WebUI's own restore do) leaves the parameters at the last checkpoint, and the
    next image with an override equal to the option is made with that stale model."""
    main_entry = sys.modules.get("modules_forge.main_entry")
    refresh = getattr(main_entry, "refresh_model_loading_parameters", None)
    if refresh is None:
        return
    from modules import sd_models

    # only when stale: a refresh also makes Forge unload every model before the next image
    params = getattr(getattr(sd_models, "model_data", None), "forge_loading_parameters", None) or {}
    loading = getattr(params.get("checkpoint_info"), "filename", None)
    wanted = getattr(sd_models.select_checkpoint(), "filename", None)
    if loading is None or loading != wanted:
        refresh()


def adapter_applied(sd_model: Any, adapter: str) -> bool | None:
    """Whether Forge patched any weight of ``adapter`` into the model that made the image;
    ``None`` where the model has no Forge patchers (the WebUI v1.10.1)."""
    objects = getattr(sd_model, "forge_objects", None)
    if objects is None:
        return None
    clip = getattr(objects, "clip", None)
    patchers = [getattr(objects, "unet", None), getattr(clip, "patcher", clip)]
    for patcher in patchers:
        for key, patches in (getattr(patcher, "lora_patches", None) or {}).items():
            filename = key[0] if isinstance(key, tuple) and key else None
            if filename and Path(str(filename)).stem == adapter and patches:
                return True
    return False
