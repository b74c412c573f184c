"""scripts/xyz_grid.py (v1.10.1), reduced to AxisOption, axis_options (Nothing, Seed, Steps,
Prompt S/R, Checkpoint name as upstream) and one cell's apply."""

from collections import namedtuple
from copy import copy

AxisInfo = namedtuple("AxisInfo", ["axis", "values"])


def format_value_add_label(p, opt, x):
    if type(x) == float:  # noqa: E721 - as upstream
        x = round(x, 8)
    return f"{opt.label}: {x}"


def format_value(p, opt, x):
    if type(x) == float:  # noqa: E721
        x = round(x, 8)
    return x


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


def do_nothing(p, x, xs):
    pass


def apply_prompt(p, x, xs):
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise RuntimeError(f"Prompt S/R did not find {xs[0]} in prompt or negative prompt.")

    p.prompt = p.prompt.replace(xs[0], x)
    p.negative_prompt = p.negative_prompt.replace(xs[0], x)


def apply_checkpoint(p, x, xs):
    import modules.sd_models

    info = modules.sd_models.get_closet_checkpoint_match(x)
    if info is None:
        raise RuntimeError(f"Unknown checkpoint: {x}")
    p.override_settings["sd_model_checkpoint"] = info.name


def confirm_checkpoints(p, xs):
    import modules.sd_models

    for x in xs:
        if modules.sd_models.get_closet_checkpoint_match(x) is None:
            raise RuntimeError(f"Unknown checkpoint: {x}")


def format_remove_path(p, opt, x):
    return x


class AxisOption:
    def __init__(
        self,
        label,
        type,
        apply,
        format_value=format_value_add_label,
        confirm=None,
        cost=0.0,
        choices=None,
        prepare=None,
    ):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


axis_options = [
    AxisOption("Nothing", str, do_nothing),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Steps", int, apply_field("steps")),
    AxisOption("Prompt S/R", str, apply_prompt, format_value=format_value),
    AxisOption(
        "Checkpoint name",
        str,
        apply_checkpoint,
        format_value=format_remove_path,
        confirm=confirm_checkpoints,
        cost=1.0,
        choices=lambda: [],
    ),
]


def run_cell(p, options_and_values):
    """What run() publishes (state.xyz_plot_x/y/z) and draw_xyz_grid's cell() does: copy(p),
    styles copied, each axis applied in turn (x, then y, then z)."""
    from modules.processing import process_images
    from modules.shared import state

    for name, (opt, _x, xs) in zip(("xyz_plot_x", "xyz_plot_y", "xyz_plot_z"), options_and_values):
        setattr(state, name, AxisInfo(opt, xs))

    pc = copy(p)
    pc.styles = pc.styles[:]
    for opt, x, xs in options_and_values:
        opt.apply(pc, x, xs)
    return process_images(pc)


class Script:
    pass


Script.__module__ = "xyz_grid.py"


def draw_xyz_grid(
    p,
    xs,
    ys,
    zs,
    x_labels,
    y_labels,
    z_labels,
    cell,
    draw_legend,
    include_lone_images,
    include_sub_grids,
    first_axes_processed,
    second_axes_processed,
    margin_size,
):
    """As upstream: every cell through ``cell``, a blank image for a failed one, one grid first."""
    from modules.processing import Processed
    from PIL import Image

    images, infotexts = [], []
    for iz, z in enumerate(zs):
        for iy, y in enumerate(ys):
            for ix, x in enumerate(xs):
                processed = cell(x, y, z, ix, iy, iz)
                if processed.images:
                    images.append(processed.images[0])
                    infotexts.append(processed.infotexts[0])
                else:
                    images.append(Image.new("RGB", (p.width, p.height)))
                    infotexts.append("")
    grid = Image.new("RGB", (p.width * len(xs), p.height * len(ys) * len(zs)))
    return Processed(p, [grid, *images], p.seed, "", infotexts=["", *infotexts])


def run_plot(p, axes):
    """What Script.run does around draw_xyz_grid: values confirmed, labels formatted, axes
    published in state, cells made by copy(p) + apply, draw_xyz_grid called with keywords."""
    from modules.processing import Processed, process_images
    from modules.shared import state

    axes = list(axes) + [(axis_options[0], [0])] * (3 - len(axes))
    for opt, values in axes:
        if opt.confirm:
            opt.confirm(p, values)
    (x_opt, xs), (y_opt, ys), (z_opt, zs) = axes
    state.xyz_plot_x, state.xyz_plot_y, state.xyz_plot_z = AxisInfo(x_opt, xs), AxisInfo(y_opt, ys), AxisInfo(z_opt, zs)

    def cell(x, y, z, ix, iy, iz):
        if state.interrupted:
            return Processed(p, [], p.seed, "")
        pc = copy(p)
        pc.styles = pc.styles[:]
        x_opt.apply(pc, x, xs)
        y_opt.apply(pc, y, ys)
        z_opt.apply(pc, z, zs)
        return process_images(pc)

    def labels(opt, values):
        return [opt.format_value(p, opt, v) if opt.label != "Nothing" else "" for v in values]

    return draw_xyz_grid(
        p,
        xs=xs,
        ys=ys,
        zs=zs,
        x_labels=labels(x_opt, xs),
        y_labels=labels(y_opt, ys),
        z_labels=labels(z_opt, zs),
        cell=cell,
        draw_legend=True,
        include_lone_images=True,
        include_sub_grids=False,
        first_axes_processed="x",
        second_axes_processed="y",
        margin_size=0,
    )
