"""The built-in X/Y/Z plot: the extension's axes (adapter, adapter weight, and epoch: one
save of a training run per value, ``RUN@EPOCH``), the checks before a plot's first image,
and the wrapper that collects each plot's cells (every image, as the plot labelled it) for
"Evaluate" (where they are kept: ``xyz_capture.py``).

v1.10.1 counterpart: ``scripts/xyz_grid.py`` (``AxisOption``, ``axis_options``,
``draw_xyz_grid``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from modules import scripts, shared

from lycoris_eval.errors import ADAPTER_AND_EPOCH_AXES, SpecError
from lycoris_eval.grid.fields import parse_weights
from lycoris_eval.grid.names import match_name
from lycoris_eval.grid.training import axis_choices, axis_value_adapter, detected_runs, expand_axis_values
from lycoris_eval.inputs.families import checkpoint_family, compatible, cross_family_message
from lycoris_eval.inputs.grouping import adapter_and_weight
from lycoris_eval.inputs.infotext import adapter_tags, strip_adapter_tags
from lycoris_eval.webui import model_loading
from lycoris_eval.webui.host import WebUIHost, _networks
from lycoris_eval.webui.xyz_capture import save_xyz_capture

AXIS_ADAPTER = "LyCORIS: adapter"
AXIS_WEIGHT = "LyCORIS: adapter weight"
AXIS_EPOCH = "LyCORIS: epoch"
ADAPTER_AXES = (AXIS_ADAPTER, AXIS_EPOCH)  # axes that put an adapter into the prompt
NO_ADAPTER = ("", "None", "none")  # adapter axis values that mean the baseline
# axes whose labels never go into a cell's group (see wrap_draw_xyz_grid)
IDENTITY_AXES = ("Seed", "Var. seed", "Checkpoint name", AXIS_ADAPTER, AXIS_WEIGHT, AXIS_EPOCH)
PROMPT_SR = "Prompt S/R"


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
        check_one_adapter_axis()  # before any cell: two axes would fight over the cell's adapter
        check_families(p)  # before any cell: an adapter that cannot apply is a plot of baselines

        groups = {
            key: group_labels(
                p, _axis_label(f"xyz_plot_{d}"), list(values.get(f"{d}s") or []), list(values.get(key) or [])
            )
            for d, key in (("x", "x_labels"), ("y", "y_labels"), ("z", "z_labels"))
        }

        def recording_cell(x: Any, y: Any, z: Any, ix: int, iy: int, iz: int) -> Any:
            res = cell(x, y, z, ix, iy, iz)
            if getattr(res, "images", None) and not (shared.state.interrupted or shared.state.skipped):
                labels = [
                    groups[k][i] if i < len(groups[k]) else ""
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


def _axis_values(label: str) -> list[Any] | None:
    for name in ("xyz_plot_x", "xyz_plot_y", "xyz_plot_z"):
        info = getattr(shared.state, name, None)
        if info is not None and getattr(getattr(info, "axis", None), "label", None) == label:
            return list(info.values)
    return None


def check_one_adapter_axis() -> None:
    """Refuse a plot with both the adapter and the epoch axis, before its first image: each
    sets the cell's adapter, so the one applied last would silently win in every cell. The
    plot's ``confirm`` cannot see the other axes (they are published only after it)."""
    if _axis_values(AXIS_ADAPTER) is not None and _axis_values(AXIS_EPOCH) is not None:
        raise RuntimeError(f"LyCORIS: {ADAPTER_AND_EPOCH_AXES.words('webui')}")


def check_families(p: Any) -> None:
    """Refuse the plot, before its first image, when an adapter on our axis cannot apply to
    a checkpoint of the plot (its Checkpoint name axis, else the checkpoint the cells use).
    The plot cannot leave one cell out without drawing a fake image, so the whole plot is
    refused with the pair named (the Script skips such cells instead)."""
    from modules import sd_models  # lazy: the host's modules exist only inside a running WebUI

    # lazy: host needs the host's modules (only inside a running WebUI)
    from lycoris_eval.webui.host import adapter_info

    adapters = []
    for value in _axis_values(AXIS_ADAPTER) or []:
        try:
            name = adapter_name(str(value))
        except SpecError:  # confirm_adapters refused it already
            continue
        if name is not None:
            adapters.append(name)
    epochs = _axis_values(AXIS_EPOCH) or []
    runs = training_runs() if epochs else []
    for value in epochs:
        try:
            adapters.append(axis_value_adapter(runs, str(value)))
        except SpecError:  # confirm_epochs refused it already
            continue
    if not adapters:
        return
    names = _axis_values("Checkpoint name")
    if names is None:
        names = [(getattr(p, "override_settings", None) or {}).get("sd_model_checkpoint")]
    for name in names:
        # no name: the cells use the user's checkpoint (the grid's rule; reForge's option can be
        # empty while a model is loaded)
        info = sd_models.get_closet_checkpoint_match(name) if name else model_loading.user_checkpoint_info()
        family = checkpoint_family(getattr(info, "filename", None)).family
        for adapter in adapters:
            adapter_family = adapter_info(str(adapter)).get("family")
            if compatible(adapter_family, family) is False:
                label = getattr(info, "model_name", None) or str(name)
                message = cross_family_message(str(adapter), adapter_family, label, family)
                raise RuntimeError(f"LyCORIS: {message} (remove it from the adapter or epoch axis)")


def _axis_label(state_name: str) -> str:
    """The label of the axis the plot published in ``state.xyz_plot_x/y/z``."""
    return getattr(getattr(getattr(shared.state, state_name, None), "axis", None), "label", "") or ""


def group_labels(p: Any, axis: str, xs: list[Any], labels: list[Any]) -> list[str]:
    """What each value of one axis adds to its cells' group (a stratum; "" adds nothing).

    The group names the plot's *other* conditions (CFG, steps…). Seeds are repetitions, not
    conditions; checkpoint, adapter and weight are read from each image's infotext into the
    cell itself. Labels of those axes would make every cell its own group, and no image could
    be paired across checkpoints or adapters at the same seed.

    A *Prompt S/R* value is the text it puts into the prompt, so its LoRA/LyCORIS tags are
    read from the infotext like the adapter axis's, and only the rest of the value is a
    condition: values that differ only in tags (``<lora:a:0.5>``, ``<lora:a:1>``,
    ``<lora:b:1>``, ``<lora:a:0>``, or no tag) add nothing, and values that also change words
    add those words without the tags (``cat <lora:a:1>`` and ``cat <lora:a:0.5>`` share the
    stratum ``cat`` and pair; ``dog <lora:a:1>`` is ``dog`` and pairs with neither). When the
    first value is not in the prompt (S/R of the negative prompt only), the tags are not in the
    infotext's prompt and the whole value stays the label, as before. So does each of two
    different values the cells could not tell apart (same words, and tags read as the same
    adapter and weight, e.g. ``<lora:a:1:0.5>`` and ``<lora:a:1:1>``, text encoder and UNet
    weights): blank, their images would collide seed by seed.
    """
    if axis in IDENTITY_AXES:
        return [""] * len(labels)
    if axis == PROMPT_SR and xs and len(xs) == len(labels) and str(xs[0]) in str(getattr(p, "prompt", "") or ""):
        keys = [(strip_adapter_tags(str(x)), adapter_and_weight(adapter_tags(str(x)))) for x in xs]
        values_of: dict[tuple, set[str]] = {}
        for key, x in zip(keys, xs):
            values_of.setdefault(key, set()).add(str(x))
        # (two baselines, <lora:a:0> and no tag, are the same condition: one of each seed counts)
        words = [k[0] if len(values_of[k]) == 1 or k[1][0] is None else str(label) for k, label in zip(keys, labels)]
        return [""] * len(words) if len(set(words)) == 1 else words
    return [str(label) for label in labels]


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
                return  # the adapter (or epoch) axis is applied after this one and uses the weight
            raise RuntimeError(
                "LyCORIS: adapter weight needs an adapter: add the adapter or epoch axis or a <lora:…> tag"
            )
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
        if info is not None and getattr(info.axis, "label", None) in ADAPTER_AXES:
            return True
    return False


def adapter_name(x: str) -> str | None:
    """An adapter axis value as the host names the adapter (None: no adapter), by the grid
    runner's rule (:func:`lycoris_eval.grid.names.match_name`: exact, then ignoring case);
    :class:`SpecError` for a name the host does not have."""
    if x in NO_ADAPTER:
        return None
    return match_name(x, {name: name for name in _networks().available_networks}, "adapter")


def apply_adapter(p: Any, x: str, xs: list[str]) -> None:
    try:
        p.lycoris_eval_adapter = adapter_name(x)
    except SpecError:  # refused by confirm_adapters before any image; as typed, if it was not called
        p.lycoris_eval_adapter = x
    _replace_lora_tag(p, p.lycoris_eval_adapter, getattr(p, "lycoris_eval_weight", None))
    if p.lycoris_eval_adapter is not None:
        # a new dict: copy(p) in the X/Y/Z plot shares this one with every other cell
        p.extra_generation_params = {**p.extra_generation_params, "LyCORIS adapter": x}


def apply_weight(p: Any, x: float, xs: list[float]) -> None:
    p.lycoris_eval_weight = float(x)
    _replace_lora_tag(p, getattr(p, "lycoris_eval_adapter", None), p.lycoris_eval_weight)


def confirm_adapters(p: Any, xs: list[str]) -> None:
    """The runner's name check (the same error); the X/Y/Z plot shows a RuntimeError from
    ``confirm`` and makes no image. Two values naming one adapter are duplicates."""
    try:
        names = [adapter_name(x) for x in xs]
    except SpecError as exc:
        raise RuntimeError(f"LyCORIS: {exc.words('webui')}") from None  # the plot shows RuntimeErrors
    if len(set(names)) != len(names):
        raise RuntimeError("LyCORIS: adapter values are duplicated")


def training_runs() -> list[Any]:
    """The training runs among the WebUI's adapters (grouped from their headers and names)."""
    return detected_runs(WebUIHost(None).adapters())


def apply_epoch(p: Any, x: str, xs: list[str]) -> None:
    """One save of a training run (``RUN@EPOCH``) as the cell's adapter, as the adapter axis
    applies one (and with the weight axis's weight)."""
    try:
        name = axis_value_adapter(training_runs(), str(x))
    except SpecError as exc:  # refused by confirm_epochs before any image; the plot shows it
        raise RuntimeError(f"LyCORIS: {exc.words('webui')}") from None
    p.lycoris_eval_adapter = name
    _replace_lora_tag(p, name, getattr(p, "lycoris_eval_weight", None))
    # a new dict: copy(p) in the X/Y/Z plot shares this one with every other cell
    p.extra_generation_params = {**p.extra_generation_params, "LyCORIS adapter": name, "LyCORIS epoch": str(x)}


def confirm_epochs(p: Any, xs: list[str]) -> None:
    """Every value names a save of a known run (the grid's rule and words), each once."""
    runs = training_runs()
    try:
        names = [axis_value_adapter(runs, str(x)) for x in xs]
    except SpecError as exc:
        raise RuntimeError(f"LyCORIS: {exc.words('webui')}") from None  # the plot shows RuntimeErrors
    if len(set(names)) != len(names):
        raise RuntimeError("LyCORIS: epoch values are duplicated")


def prepare_epochs(text: str) -> list[str]:
    """The epoch axis typed as text: ``RUN`` (every save), ``RUN@every 2``, ``RUN@4``, comma separated."""
    values = [v.strip() for v in str(text or "").split(",") if v.strip()]
    try:
        return expand_axis_values(training_runs(), values)
    except SpecError as exc:
        raise RuntimeError(f"LyCORIS: {exc.words('webui')}") from None


def confirm_weights(p: Any, xs: list[float]) -> None:
    """The grid spec's own weight rules (one argument model for Script, API and axes); the
    X/Y/Z plot shows a RuntimeError from ``confirm`` and makes no image."""
    try:
        parse_weights(list(xs))
    except SpecError as exc:
        raise RuntimeError(f"LyCORIS: adapter weight: {exc}") from None


def register_xyz_axes() -> bool:
    """Add the axes to the built-in X/Y/Z plot, once (re-import replaces, not duplicates)."""
    xyz = _xyz_module()
    if xyz is None:
        return False
    xyz.axis_options[:] = [o for o in xyz.axis_options if o.label not in (AXIS_ADAPTER, AXIS_WEIGHT, AXIS_EPOCH)]

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
    register_epoch_axis(xyz)
    wrap_draw_xyz_grid(xyz)
    return True


def register_epoch_axis(xyz: Any) -> bool:
    """The "LyCORIS: epoch" axis; an X/Y/Z plot without what it needs (choices, ``prepare``)
    goes without this one axis, said in one log line."""
    xyz.axis_options[:] = [o for o in xyz.axis_options if o.label != AXIS_EPOCH]
    try:
        option = xyz.AxisOption(
            AXIS_EPOCH,
            str,
            apply_epoch,
            format_value=xyz.format_value,
            confirm=confirm_epochs,
            choices=lambda: axis_choices(training_runs()),
            prepare=prepare_epochs,
        )
    except (AttributeError, TypeError) as exc:
        print(f"[lycoris-eval] X/Y/Z plot: no '{AXIS_EPOCH}' axis on this WebUI ({exc})", file=sys.stderr)
        return False
    xyz.axis_options.append(option)
    return True
