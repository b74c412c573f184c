"""Where the X/Y/Z plot's cells are kept for "Evaluate": every image of the last plot,
with the plot's labels for it in its infotext (the group), written atomically into
``outputs/lycoris-eval/xyz-last``. The wrapper that collects them is in ``xyz.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lycoris_eval.fileio import write_atomic_bytes
from lycoris_eval.inputs.infotext import _RE_PARAM, GROUP_KEY
from lycoris_eval.webui.settings import outputs_root

XYZ_DIR = "xyz-last"


_PROCESS_STARTED = time.time()


def last_xyz() -> Path | None:
    """The cells of the last X/Y/Z plot made by this WebUI process; a capture left by an
    earlier process (before a restart) is not "the last grid" and is ignored."""
    folder = outputs_root() / XYZ_DIR
    images = list(folder.glob("*.png"))
    if not images or max(p.stat().st_mtime for p in images) < _PROCESS_STARTED:
        return None
    return folder


def _with_infotext_params(infotext: str, params: dict[str, str]) -> str:

    extra = ", ".join(f"{k}: {json.dumps(v) if ',' in v or ':' in v else v}" for k, v in params.items())
    lines = infotext.rstrip("\n").split("\n") if infotext else [""]
    if len(_RE_PARAM.findall(lines[-1])) >= 3:
        lines[-1] = f"{lines[-1]}, {extra}"
    else:
        lines.append(extra)
    return "\n".join(lines)


def save_xyz_capture(cells: list[tuple[Any, str, str, str, str]]) -> Path:
    """Write the last X/Y/Z grid's cell images (from memory) with their axis labels."""
    from lycoris_eval.grid.runner import png_bytes  # lazy: runner imports PIL at its top

    folder = outputs_root() / XYZ_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for index, (image, infotext, x_label, y_label, z_label) in enumerate(cells):
        labels = [f"{axis}: {label}" for axis, label in (("X", x_label), ("Y", y_label), ("Z", z_label)) if label]
        text = _with_infotext_params(infotext or "", {GROUP_KEY: " | ".join(labels)} if labels else {})
        write_atomic_bytes(folder / f"cell-{index:04d}.png", png_bytes(image, text))
    return folder
