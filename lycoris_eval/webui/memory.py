"""VRAM around scoring: the host's own models make room for the scoring encoders, the
host's way, and come back by themselves on the next image.

v1.10.1: ``modules/lowvram.py`` (``send_everything_to_cpu``, only under ``--lowvram`` /
``--medvram``: otherwise the WebUI keeps SD on the GPU and expects it there).
Forge: ``backend/memory_management.py`` (``unload_all_models``, ``soft_empty_cache``); its
loader moves the models back to the GPU at the start of the next generation.
reForge: ``ldm_patched/modules/model_management.py`` (the same two functions; it refuses
``--lowvram``/``--medvram``).

Which one applies is decided by the module the running host has imported (hosts that have
it import it at start-up, before any extension), never by the host's name.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


def make_room(device: str) -> None:
    """Free what the host holds on ``device`` before the encoders load; CPU scoring needs
    nothing moved."""
    if not str(device).startswith(("cuda", "mps")):
        return
    gc.collect()
    patcher_memory = _patcher_memory_management()
    if patcher_memory is not None:
        patcher_memory.unload_all_models()
        patcher_memory.soft_empty_cache()
        return
    from modules import shared  # lazy: the host's modules exist only inside a running WebUI

    cmd_opts: Any = getattr(shared, "cmd_opts", None)
    if getattr(cmd_opts, "lowvram", False) or getattr(cmd_opts, "medvram", False):
        try:
            from modules import lowvram  # lazy: the host's modules exist only inside a running WebUI

            lowvram.send_everything_to_cpu()
        except Exception:  # noqa: BLE001 - best effort: scoring still works, just tighter on VRAM
            pass
    try:
        from modules import devices  # lazy: the host's modules exist only inside a running WebUI

        devices.torch_gc()
    except Exception:  # noqa: BLE001
        pass


def _patcher_memory_management() -> Any:
    """The model manager of a host that patches models instead of swapping weights (Forge's
    ``backend.memory_management``, reForge's ``ldm_patched.modules.model_management``), when
    the running host has imported one; ``None`` on the WebUI v1.10.1."""
    for name in ("backend.memory_management", "ldm_patched.modules.model_management"):
        module = sys.modules.get(name)
        if callable(getattr(module, "unload_all_models", None)) and callable(getattr(module, "soft_empty_cache", None)):
            return module
    return None
