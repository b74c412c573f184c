"""Which checkpoint the user has, and making the host load the one asked for: decided by
what the running host has (a lazy loader's refresh function, an option that may be empty),
never by its name or version.

Host sources relied on: the WebUI v1.10.1 ``modules/sd_models.py`` (``select_checkpoint``,
``reload_model_weights`` loads at once and writes the option); Forge ``f2.0.1v1.10.1``
``modules_forge/main_entry.py`` (``refresh_model_loading_parameters``; ``reload_model_weights``
is a no-op, the model loads on the next image); reForge ``3b56b268`` ``modules/sd_models.py``
(``load_model`` never writes ``opts.data["sd_model_checkpoint"]``, so on a fresh config the
option is ``null`` while a model is loaded, and an override is not switched back).
"""

from __future__ import annotations

import sys
from typing import Any


def user_checkpoint_info() -> Any:
    """The checkpoint the user has: the one the option names when it names one the host
    knows; else (the option is empty, as on reForge with a fresh config) the model loaded
    now; else the host's own fallback (``select_checkpoint``, its first checkpoint)."""
    from modules import sd_models, shared  # lazy: the host's modules exist only inside a running WebUI

    wanted = shared.opts.data.get("sd_model_checkpoint")
    aliases = getattr(sd_models, "checkpoint_aliases", None) or {}
    if wanted and (wanted in aliases or not aliases):
        return sd_models.select_checkpoint()
    loaded = getattr(getattr(shared, "sd_model", None), "sd_checkpoint_info", None)
    if loaded is not None and getattr(loaded, "title", None):
        return loaded
    return sd_models.select_checkpoint()


def sync_model_selection() -> None:
    """Make the model a lazy loader (Forge) will load the one the options name.

    Forge loads lazily, from loading parameters refreshed only when ``set_config`` sees the
    checkpoint option *change*; writing the option directly (as the built-in X/Y/Z plot
    and the WebUI's own restore do) leaves the parameters at the last checkpoint, and the
    next image with an override equal to the option is made with that stale model. Hosts
    without ``refresh_model_loading_parameters`` load eagerly: nothing to do."""
    main_entry = sys.modules.get("modules_forge.main_entry")
    refresh = getattr(main_entry, "refresh_model_loading_parameters", None)
    if refresh is None:
        return
    from modules import sd_models  # lazy: the host's modules exist only inside a running WebUI

    # only when stale: a refresh also makes Forge unload every model before the next image
    params = getattr(getattr(sd_models, "model_data", None), "forge_loading_parameters", None) or {}
    loading = getattr(params.get("checkpoint_info"), "filename", None)
    wanted = getattr(sd_models.select_checkpoint(), "filename", None)
    if loading is None or loading != wanted:
        refresh()
