"""scripts/xyz_grid.py (v1.10.1), reduced to AxisOption, axis_options and one cell's apply."""

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
