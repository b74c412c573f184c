"""VRAM around scoring: the host's own models make room for the scoring encoders, the
host's way, and come back by themselves on the next image.

v1.10.1: ``modules/lowvram.py`` (``send_everything_to_cpu``, only under ``--lowvram`` /
``--medvram``: otherwise the WebUI keeps SD on the GPU and expects it there).
Forge: ``backend/memory_management.py`` (``unload_all_models``, ``soft_empty_cache``); its
loader moves the models back to the GPU at the start of the next generation.
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
    forge_memory = _forge_memory_management()
    if forge_memory is not None:
        forge_memory.unload_all_models()
        forge_memory.soft_empty_cache()
        return
    from modules import shared

    cmd_opts: Any = getattr(shared, "cmd_opts", None)
    if getattr(cmd_opts, "lowvram", False) or getattr(cmd_opts, "medvram", False):
        try:
            from modules import lowvram

            lowvram.send_everything_to_cpu()
        except Exception:  # noqa: BLE001 - best effort: scoring still works, just tighter on VRAM
            pass
    try:
        from modules import devices

        devices.torch_gc()
    except Exception:  # noqa: BLE001
        pass


def _forge_memory_management() -> Any:
    """Forge's ``backend.memory_management``, only when Forge runs (already imported by it)."""
    from .forge import is_forge

    if not is_forge():
        return None
    return sys.modules.get("backend.memory_management")
