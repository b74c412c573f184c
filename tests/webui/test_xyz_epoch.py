"""The X/Y/Z plot's "LyCORIS: epoch" axis (issue #24): one save of a training run per value
(``RUN@EPOCH``), applied as the adapter axis applies an adapter; typed as text, ``RUN`` is
every save and ``RUN@every k`` every k-th (fake host)."""

from __future__ import annotations

import pytest

from lycoris_eval.inputs.images import read_image_file
from lycoris_eval.inputs.infotext import parse_infotext
from tests.grid.test_training_run_grid import add_runs
from tests.helpers import page_p

EPOCH = "LyCORIS: epoch"


def option(ns, label):
    return next(o for o in ns.xyz.axis_options if o.label == label)


def test_epoch_axis_registered_once_with_the_runs_saves(fake_webui):
    ns = fake_webui
    add_runs(ns)
    ns.adapter.setup()
    ns.adapter.setup()
    assert [o.label for o in ns.xyz.axis_options].count(EPOCH) == 1
    epoch = option(ns, EPOCH)
    assert epoch.choices() == ["ink@1", "ink@2", "mystyle@2", "mystyle@4", "mystyle@6", "mystyle@8"]
    assert epoch.prepare("mystyle@every 2, ink@2") == ["mystyle@4", "mystyle@8", "ink@2"]
    assert epoch.prepare("mystyle") == ["mystyle@2", "mystyle@4", "mystyle@6", "mystyle@8"]
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat", seed=5)
    epoch.confirm(p, ["mystyle@2", "mystyle@final"])
    with pytest.raises(RuntimeError, match=r"LyCORIS: training_run: mystyle has no save '3' \(it has 2, 4, 6, 8\)"):
        epoch.confirm(p, ["mystyle@3"])
    with pytest.raises(RuntimeError, match=r"unknown training run 'nope' \(known: ink \(2 saves\), mystyle"):
        epoch.prepare("nope")
    with pytest.raises(RuntimeError, match="epoch values are duplicated"):
        epoch.confirm(p, ["mystyle@8", "mystyle@final"])


def test_epoch_axis_by_weight_axis_makes_each_save_at_each_weight(fake_webui):
    ns = fake_webui
    add_runs(ns)
    ns.adapter.setup()
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat", seed=5, negative_prompt="")
    epochs = ["mystyle@2", "mystyle@8"]
    ns.xyz.run_plot(p, [(option(ns, EPOCH), epochs), (option(ns, "LyCORIS: adapter weight"), [0.5, 1.0])])
    prompts = [call[1] for call in ns.processing.CALLS]
    assert prompts == [
        "a cat, <lora:mystyle-000002:0.5>",
        "a cat, <lora:mystyle:0.5>",
        "a cat, <lora:mystyle-000002:1>",
        "a cat, <lora:mystyle:1>",
    ]
    cells = sorted(ns.adapter.last_xyz().glob("*.png"))
    infos = [parse_infotext(read_image_file(path).infotext) for path in cells]
    assert [i.params["LyCORIS epoch"] for i in infos] == ["mystyle@2", "mystyle@8"] * 2
    # the epoch is the cell's adapter (read from the tag), never a group label of its own
    assert all("LyCORIS group" not in i.params for i in infos)
    assert p.prompt == "a cat" and "LyCORIS adapter" not in p.extra_generation_params


def test_an_xyz_plot_without_prepare_goes_without_the_epoch_axis_only(fake_webui, monkeypatch, capsys):
    ns = fake_webui
    original = ns.xyz.AxisOption

    class OldAxisOption(original):
        def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None):
            super().__init__(label, type, apply, format_value or ns.xyz.format_value, confirm, cost, choices)

    monkeypatch.setattr(ns.xyz, "AxisOption", OldAxisOption)
    ns.adapter.setup()
    labels = [o.label for o in ns.xyz.axis_options]
    assert "LyCORIS: adapter" in labels and "LyCORIS: adapter weight" in labels and EPOCH not in labels
    lines = [line for line in capsys.readouterr().err.splitlines() if EPOCH in line]
    assert len(lines) == 1 and lines[0].startswith("[lycoris-eval] X/Y/Z plot: no 'LyCORIS: epoch' axis")


def test_adapter_axis_and_epoch_axis_in_one_plot_are_refused_before_any_image(fake_webui):
    """Both axes set the cell's adapter: the one applied last would win in every cell, so the
    plot is refused with one line before its first image (the plot's ``confirm`` of each axis
    alone cannot see the other)."""
    ns = fake_webui
    add_runs(ns)
    ns.adapter.setup()
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat", seed=5, negative_prompt="")
    axes = [(option(ns, EPOCH), ["mystyle@2", "mystyle@8"]), (option(ns, "LyCORIS: adapter"), ["ink_e2"])]
    with pytest.raises(RuntimeError, match=r"^LyCORIS: the adapter axis and the epoch axis both choose"):
        ns.xyz.run_plot(p, axes)
    assert ns.processing.CALLS == []
    # each axis alone still plots
    ns.xyz.run_plot(p, axes[:1])
    assert len(ns.processing.CALLS) == 2
