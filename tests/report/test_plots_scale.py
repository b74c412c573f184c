"""Figures for runs with many checkpoints: readable layouts instead of a legend of 80 lines
or a 4,000-pixel strip of cells, and the trained-on outline where the verdicts put it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from lycoris_eval.report.figures import (
    MAX_LINES_WITH_LEGEND,
    heatmap_layout,
    heatmap_png,
    verdict_heatmap_png,
    weight_curve_figure,
)
from lycoris_eval.report.sections import report_tables

CHECKPOINTS = [f"ck{i:02d}" for i in range(40)]


def _summary(checkpoints, adapters=("styleA", "styleB"), weights=(0.5, 1.0)):
    rows = []
    for i, ck in enumerate(checkpoints):
        rows.append({"checkpoint": ck, "adapter": None, "weight": 0.0, "m": 1.0 + i / 100})
        for j, adapter in enumerate(adapters):
            rows += [{"checkpoint": ck, "adapter": adapter, "weight": w, "m": 1.0 + i / 100 + j * w} for w in weights]
    return rows


def _size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def test_heatmap_layout_by_size():
    assert heatmap_layout(3, 4) == {"transposed": False, "text": True, "figsize": (1.6 + 1.3 * 4, 1.2 + 0.55 * 3)}
    many = heatmap_layout(3, 40)
    assert many["transposed"] and many["text"]  # 120 cells: numbers still fit, checkpoints down the side
    paper = heatmap_layout(8, 234)
    assert paper["transposed"] and not paper["text"]
    assert paper["figsize"][0] < 10 and paper["figsize"][1] < 60  # inches: bounded, readable with a scroll
    assert not heatmap_layout(20, 14)["transposed"]  # more adapters than checkpoints: as before


def test_heatmap_with_many_checkpoints_is_tall_not_wide():
    heat = {
        "rows": ["styleA", "styleB"],
        "columns": CHECKPOINTS,
        "values": [[float(i) for i in range(40)], [None] * 39 + [1.0]],
        "higher_is_better": True,
        "trained_on": {"styleA": "ck03"},
        "verdicts": {"styleA": {c: "not enough evidence" for c in CHECKPOINTS[4:]} | {"ck00": "transfers"}},
    }
    width, height = _size(heatmap_png(heat, "Image similarity"))
    assert height > 3 * width and width < 1000
    few = {**heat, "columns": CHECKPOINTS[:4], "values": [row[:4] for row in heat["values"]]}
    width, height = _size(heatmap_png(few, "Image similarity"))
    assert width > height  # few checkpoints: across, as before


def test_weight_curves_with_many_lines_become_one_panel_per_adapter():
    fig = weight_curve_figure(_summary(CHECKPOINTS), "m", "M", {"styleA": "ck07"})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["styleA", "styleB"]
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in visible]
    assert labels == [["median of 40 checkpoints", "home: ck07"], ["median of 40 checkpoints"]]
    grey = [line for line in visible[0].get_lines() if line.get_color() == "#9e9e9e"]
    assert len(grey) == 40 and list(grey[0].get_xdata()) == [0.0, 0.5, 1.0]  # the no-adapter value at 0
    median = next(line for line in visible[0].get_lines() if line.get_label().startswith("median"))
    assert list(median.get_ydata()) == pytest.approx([1.195] * 3)  # median over ck00..ck39 of 1 + i/100
    few = weight_curve_figure(_summary(CHECKPOINTS[:3], adapters=("styleA",)), "m", "M")
    assert len(few.axes) == 1 and len(few.axes[0].get_legend().get_texts()) == 3 <= MAX_LINES_WITH_LEGEND


def test_verdict_map_with_many_checkpoints_is_tall():
    entries = [
        {"adapter": "styleA", "checkpoint": c, "home": "ck03", "verdict": "home" if c == "ck03" else "weaker",
         "weights": [1.0], "by_weight": [], "reason": ""}
        for c in CHECKPOINTS
    ]  # fmt: skip
    width, height = _size(verdict_heatmap_png({"verdicts": {"entries": entries}}))
    assert height > 3 * width


def test_trained_on_outline_follows_the_verdicts_home():
    doc = {
        "metrics": {"m": {"title": "M", "higher_is_better": True}},
        "adapters": {"styleA": {"trained_on": "ckB"}, "styleB": {"trained_on": "ckA"}},
        "summaries": [
            {"checkpoint": c, "adapter": a, "weight": 1.0, "metrics": {"m": {"mean": 1.0}}, "ranks": {}}
            for c in ("ckA", "ckB")
            for a in ("styleA", "styleB")
        ],
        "verdicts": {"home": {"styleA": "ckA", "styleB": None}},  # styleA marked by the user
    }
    heat = report_tables(doc)["heatmaps"]["m"]
    assert heat["trained_on"] == {"styleA": "ckA", "styleB": "ckA"}  # marked wins; else the metadata
