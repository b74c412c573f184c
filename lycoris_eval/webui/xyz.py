"""The built-in X/Y/Z plot: the extension's two axes (adapter, adapter weight) and the
capture of each plot's cells (every image, as the plot labelled it) for "Evaluate".

v1.10.1 counterpart: ``scripts/xyz_grid.py`` (``AxisOption``, ``axis_options``,
``draw_xyz_grid``).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from modules import scripts, shared

from ..errors import SpecError
from ..grid_spec import parse_weights
from .host import _networks
from .settings import outputs_root

AXIS_ADAPTER = "LyCORIS: adapter"


AXIS_WEIGHT = "LyCORIS: adapter weight"
# axes whose labels never go into a cell's group (see wrap_draw_xyz_grid)
IDENTITY_AXES = ("Seed", "Var. seed", "Checkpoint name", AXIS_ADAPTER, AXIS_WEIGHT)


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
    from ..infotext import _RE_PARAM

    extra = ", ".join(f"{k}: {json.dumps(v) if ',' in v or ':' in v else v}" for k, v in params.items())
    lines = infotext.rstrip("\n").split("\n") if infotext else [""]
    if len(_RE_PARAM.findall(lines[-1])) >= 3:
        lines[-1] = f"{lines[-1]}, {extra}"
    else:
        lines.append(extra)
    return "\n".join(lines)


def save_xyz_capture(cells: list[tuple[Any, str, str, str, str]]) -> Path:
    """Write the last X/Y/Z grid's cell images (from memory) with their axis labels."""
    from ..grid_runner import png_bytes
    from ..infotext import GROUP_KEY
    from ..report import write_atomic_bytes

    folder = outputs_root() / XYZ_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for index, (image, infotext, x_label, y_label, z_label) in enumerate(cells):
        labels = [f"{axis}: {label}" for axis, label in (("X", x_label), ("Y", y_label), ("Z", z_label)) if label]
        text = _with_infotext_params(infotext or "", {GROUP_KEY: " | ".join(labels)} if labels else {})
        write_atomic_bytes(folder / f"cell-{index:04d}.png", png_bytes(image, text))
    return folder


def wrap_draw_xyz_grid(xyz: Any) -> None:
    """Record each X/Y/Z cell's image and labels as the plot made them (once per module)."""
    original = getattr(xyz, "draw_xyz_grid", None)
    if original is None or getattr(original, "_lycoris_eval", False):
        return

    def draw_xyz_grid(p: Any, *args: Any, **kwargs: Any) -> Any:
        names = ("xs", "ys", "zs", "x_labels", "y_labels", "z_labels", "cell")
        values = dict(zip(names, args))
        values.update({k: v for k, v in kwargs.items() if k in names})
        cell, captured = values.get("cell"), []
        if cell is None:
            return original(p, *args, **kwargs)

        # The group names the plot's *other* conditions (CFG, steps…). Seeds are repetitions,
        # not conditions; checkpoint, adapter and weight are read from each image's infotext
        # into the cell itself. Labels of those axes would make every cell its own group, and
        # no image could be paired across checkpoints or adapters at the same seed.
        seed_axes = {
            key
            for key, axis in (("x_labels", "xyz_plot_x"), ("y_labels", "xyz_plot_y"), ("z_labels", "xyz_plot_z"))
            if getattr(getattr(getattr(shared.state, axis, None), "axis", None), "label", "") in IDENTITY_AXES
        }

        def recording_cell(x: Any, y: Any, z: Any, ix: int, iy: int, iz: int) -> Any:
            res = cell(x, y, z, ix, iy, iz)
            if getattr(res, "images", None) and not (shared.state.interrupted or shared.state.skipped):
                labels = [
                    str(values[k][i]) if values.get(k) and k not in seed_axes else ""
                    for k, i in (("x_labels", ix), ("y_labels", iy), ("z_labels", iz))
                ]
                # every image of the cell (batch count/size > 1), never the batch grid the
                # host puts first when "return grid" is on
                first = getattr(res, "index_of_first_image", 0) or 0
                infotexts = list(getattr(res, "infotexts", None) or [])
                for n, image in enumerate(res.images[first:]):
                    index = first + n
                    infotext = infotexts[index] if index < len(infotexts) else ""
                    captured.append((image, infotext, *labels))
            return res

        if "cell" in kwargs:
            kwargs["cell"] = recording_cell
        else:
            args = tuple(recording_cell if i == 6 else a for i, a in enumerate(args))
        result = original(p, *args, **kwargs)
        if captured:
            try:
                save_xyz_capture(captured)
            except OSError as exc:
                print(f"[lycoris-eval] could not keep the X/Y/Z cells for evaluation: {exc}", file=sys.stderr)
        return result

    draw_xyz_grid._lycoris_eval = True  # type: ignore[attr-defined]
    xyz.draw_xyz_grid = draw_xyz_grid


def _xyz_module() -> Any:
    for data in getattr(scripts, "scripts_data", []):
        if data.script_class.__module__ in ("xyz_grid.py", "xyz_grid", "scripts.xyz_grid"):
            return data.module
    return sys.modules.get("scripts.xyz_grid") or sys.modules.get("xyz_grid.py")


def _replace_lora_tag(p: Any, name: str | None, weight: float | None) -> None:

    previous = getattr(p, "lycoris_eval_tag", None)
    if previous and previous in p.prompt:
        p.prompt = p.prompt.replace(previous, "").rstrip(" ,")
    if name is None:
        if weight is None:
            return
        tags = re.findall(r"<(?:lora|lyco):([^:>]+)(?::[^>]*)?>", p.prompt)
        if not tags:
            if _adapter_axis_in_plot():
                return  # the adapter axis is applied after this one and uses the weight
            raise RuntimeError("LyCORIS: adapter weight needs an adapter: add the adapter axis or a <lora:…> tag")
        p.prompt = re.sub(
            r"<(lora|lyco):([^:>]+)(?::[^>]*)?>", lambda m: f"<{m.group(1)}:{m.group(2)}:{weight:g}>", p.prompt
        )
        return
    tag = f"<lora:{name}:{(1.0 if weight is None else weight):g}>"
    p.prompt = f"{p.prompt}, {tag}" if p.prompt else tag
    p.lycoris_eval_tag = tag


def _adapter_axis_in_plot() -> bool:
    """The X/Y/Z plot publishes its axes in ``state.xyz_plot_x/y/z`` before the first cell."""
    for axis in ("xyz_plot_x", "xyz_plot_y", "xyz_plot_z"):
        info = getattr(shared.state, axis, None)
        if info is not None and getattr(info.axis, "label", None) == AXIS_ADAPTER:
            return True
    return False


def apply_adapter(p: Any, x: str, xs: list[str]) -> None:
    p.lycoris_eval_adapter = None if x in ("", "None", "none") else x
    _replace_lora_tag(p, p.lycoris_eval_adapter, getattr(p, "lycoris_eval_weight", None))
    if p.lycoris_eval_adapter is not None:
        # a new dict: copy(p) in the X/Y/Z plot shares this one with every other cell
        p.extra_generation_params = {**p.extra_generation_params, "LyCORIS adapter": x}


def apply_weight(p: Any, x: float, xs: list[float]) -> None:
    p.lycoris_eval_weight = float(x)
    _replace_lora_tag(p, getattr(p, "lycoris_eval_adapter", None), p.lycoris_eval_weight)


def confirm_adapters(p: Any, xs: list[str]) -> None:
    names = set(_networks().available_networks)
    for x in xs:
        if x in ("", "None", "none"):
            continue
        if x not in names:
            close = difflib.get_close_matches(x, sorted(names), n=3, cutoff=0.5)
            raise RuntimeError(f"Unknown adapter: {x}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    if len(set(xs)) != len(xs):
        raise RuntimeError("LyCORIS: adapter values are duplicated")


def confirm_weights(p: Any, xs: list[float]) -> None:
    """The grid spec's own weight rules (one argument model for Script, API and axes); the
    X/Y/Z plot shows a RuntimeError from ``confirm`` and makes no image."""
    try:
        parse_weights(list(xs))
    except SpecError as exc:
        raise RuntimeError(f"LyCORIS: adapter weight: {exc}") from None


def register_xyz_axes() -> bool:
    """Add the two axes to the built-in X/Y/Z plot, once (re-import replaces, not duplicates)."""
    xyz = _xyz_module()
    if xyz is None:
        return False
    xyz.axis_options[:] = [o for o in xyz.axis_options if o.label not in (AXIS_ADAPTER, AXIS_WEIGHT)]

    def adapter_choices() -> list[str]:
        return sorted(_networks().available_networks, key=str.casefold)

    xyz.axis_options.append(
        xyz.AxisOption(
            AXIS_ADAPTER,
            str,
            apply_adapter,
            format_value=xyz.format_value,
            confirm=confirm_adapters,
            choices=adapter_choices,
        )
    )
    xyz.axis_options.append(xyz.AxisOption(AXIS_WEIGHT, float, apply_weight, confirm=confirm_weights))
    wrap_draw_xyz_grid(xyz)
    return True
