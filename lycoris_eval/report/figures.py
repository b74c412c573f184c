"""Figures people read, made from the report tables (:func:`lycoris_eval.report.sections.report_tables`)
and the scores document:

* compatibility heatmap per metric: adapters × checkpoints, the checkpoint each adapter
  was trained on outlined (the transfer matrix LoRA trainers draw by hand);
* metric vs adapter weight: a line per (checkpoint, adapter), the baseline at weight 0;
* the transfer-verdict heatmap and the forest plot of one A-vs-B comparison.

matplotlib (a gradio dependency, so present in the WebUI) is imported lazily, with the
non-interactive Agg backend.
"""

from __future__ import annotations

import io
import math
from typing import Any

from lycoris_eval.compare.verdicts import is_checkpoint
from lycoris_eval.report.format import context_label, signed


def _pyplot() -> Any:
    import matplotlib  # lazy: matplotlib only when figures are drawn

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # lazy: matplotlib only when figures are drawn

    return plt


RANDOM_WEIGHTS_MARK = "RANDOM WEIGHTS: numbers mean nothing"


def _png(fig: Any, mark: str | None = None) -> bytes:
    """The figure as PNG bytes; ``mark`` (a random-weights run) is written across it, so a
    figure passed around on its own still says what it is."""
    if mark:
        fig.text(0.5, 0.5, mark, ha="center", va="center", rotation=20, fontsize=18, color="red", alpha=0.35)
        fig.suptitle(mark, color="red", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


# Beyond these, a figure switches to its layout for many checkpoints: a legend of 80 lines
# covers its plot, and 40 columns of 1.3-inch cells with numbers in them make a 4,000-pixel
# strip no one can read.
MAX_LINES_WITH_LEGEND = 12
MAX_COLUMNS = 12
MAX_CELLS_WITH_TEXT = 150
VERDICT_MARKS = {"transfers": "✓", "weaker": "~", "breaks": "✗", "home": "⌂"}


def heatmap_layout(n_adapters: int, n_checkpoints: int) -> dict[str, Any]:
    """How to draw an adapters × checkpoints heatmap: checkpoints down the side when there
    are many of them (a long list reads better down than across), numbers and verdict words
    in the cells only while they fit (else the colour bar and a one-character verdict mark)."""
    transposed = n_checkpoints > MAX_COLUMNS and n_checkpoints > n_adapters
    n_y, n_x = (n_checkpoints, n_adapters) if transposed else (n_adapters, n_checkpoints)
    text = n_x * n_y <= MAX_CELLS_WITH_TEXT
    width = 1.6 + (1.3 if text else 0.5) * n_x
    height = 1.2 + (0.55 if text else 0.22) * n_y
    return {"transposed": transposed, "text": text, "figsize": (max(width, 4.0), height)}


def heatmap_png(heatmap: dict[str, Any], title: str, mark: str | None = None) -> bytes | None:
    rows, cols, values = heatmap["rows"], heatmap["columns"], heatmap["values"]
    verdicts = heatmap.get("verdicts") or {}  # adapter -> checkpoint -> transfer verdict
    if not rows or not cols or all(v is None for row in values for v in row):
        return None  # no value to colour (e.g. a baseline metric on a grid without baselines)
    import numpy as np

    plt = _pyplot()
    layout = heatmap_layout(len(rows), len(cols))
    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    if layout["transposed"]:
        data = data.T
    y_labels, x_labels = (cols, rows) if layout["transposed"] else (rows, cols)
    fig, ax = plt.subplots(figsize=layout["figsize"])
    cmap = "viridis" if heatmap["higher_is_better"] else "viridis_r"
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(x_labels)), labels=x_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(y_labels)), labels=y_labels, fontsize=None if layout["text"] else 7)
    for y in range(len(y_labels)):
        for x in range(len(x_labels)):
            adapter, checkpoint = (x_labels[x], y_labels[y]) if layout["transposed"] else (y_labels[y], x_labels[x])
            if layout["text"] and not np.isnan(data[y, x]):
                ax.text(x, y, f"{data[y, x]:.3g}", ha="center", va="center", color="white", fontsize=8)
            if is_checkpoint(heatmap["trained_on"].get(adapter), checkpoint):
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
            verdict = verdicts.get(adapter, {}).get(checkpoint)
            if verdict == "not enough evidence":  # greyed out: the colour is not evidence
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, color="#9e9e9e", alpha=0.75))
            if verdict and layout["text"]:
                ax.text(x, y + 0.32, verdict, ha="center", va="center", color="white", fontsize=6)
            elif verdict in VERDICT_MARKS:
                ax.text(x, y, VERDICT_MARKS[verdict], ha="center", va="center", color="white", fontsize=7)
    better = "higher" if heatmap["higher_is_better"] else "lower"
    extra = "; grey: not enough evidence" if verdicts else ""
    if verdicts and not layout["text"]:
        extra += "; ✓ transfers, ~ weaker, ✗ breaks; values in scores.csv"
    ax.set_title(f"{title} ({better} is better; red: trained on{extra})", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    return _png(fig, mark)


def weight_curve_png(
    summary: list[dict[str, Any]],
    metric: str,
    title: str,
    homes: dict[str, str | None] | None = None,
    mark: str | None = None,
) -> bytes | None:
    fig = weight_curve_figure(summary, metric, title, homes)
    return None if fig is None else _png(fig, mark)


def weight_curve_figure(
    summary: list[dict[str, Any]], metric: str, title: str, homes: dict[str, str | None] | None = None
) -> Any:
    """Metric against adapter weight, the no-adapter value at weight 0: a line per
    (checkpoint, adapter) with a legend while there are few; beyond
    :data:`MAX_LINES_WITH_LEGEND`, a panel per adapter with every checkpoint a thin grey line,
    their median in bold and the adapter's home checkpoint (``homes``) in red."""
    lines: dict[tuple[Any, Any], list[tuple[float, float]]] = {}
    baselines: dict[Any, float] = {}
    for row in summary:
        value = row.get(metric)
        if value is None:
            continue
        if row["adapter"] is None:
            baselines[row["checkpoint"]] = value
        elif row["weight"] is not None:
            lines.setdefault((row["checkpoint"], row["adapter"]), []).append((row["weight"], value))
    if not lines:
        return None
    for (checkpoint, _), points in lines.items():
        if checkpoint in baselines:
            points.append((0.0, baselines[checkpoint]))
        points.sort()
    plt = _pyplot()
    if len(lines) > MAX_LINES_WITH_LEGEND:
        return _weight_panels(plt, lines, metric, title, homes or {})
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (checkpoint, adapter), points in sorted(lines.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{checkpoint} · {adapter}")
    _axis_labels(ax, metric, title)
    ax.legend(fontsize=7, loc="best")
    return fig


def _weight_panels(
    plt: Any, lines: dict[tuple[Any, Any], list[tuple[float, float]]], metric: str, title: str, homes: dict
) -> Any:

    import numpy as np  # lazy: numpy only when numbers are computed

    adapters = sorted({a for _, a in lines}, key=str)
    ncols = min(4, len(adapters))
    nrows = math.ceil(len(adapters) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), sharey=True, squeeze=False)
    for ax, adapter in zip(axes.flat, adapters):
        curves = {c: pts for (c, a), pts in lines.items() if a == adapter}
        for points in curves.values():
            ax.plot([p[0] for p in points], [p[1] for p in points], color="#9e9e9e", linewidth=0.7, alpha=0.6)
        by_weight: dict[float, list[float]] = {}
        for points in curves.values():
            for w, v in points:
                by_weight.setdefault(w, []).append(v)
        xs = sorted(by_weight)
        ax.plot(xs, [float(np.median(by_weight[w])) for w in xs], color="C0", linewidth=2.2, marker="o",
                label=f"median of {len(curves)} checkpoints")  # fmt: skip
        home = homes.get(adapter)
        if home in curves:
            ax.plot(*zip(*curves[home]), color="red", linewidth=1.6, marker="o", label=f"home: {home}")
        ax.set_title(str(adapter), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(adapters) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("adapter weight (0 = no adapter)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric, fontsize=7)
    fig.suptitle(f"{title}: one grey line per checkpoint", fontsize=9)
    return fig


def _axis_labels(ax: Any, metric: str, title: str) -> None:
    ax.set_xlabel("adapter weight (0 = no adapter)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


VERDICT_COLOURS = {
    "transfers": "#2e7d32",
    "weaker": "#ef8f00",
    "breaks": "#c62828",
    "home": "#1565c0",
    "not enough evidence": "#bdbdbd",
    None: "#eeeeee",
}


def verdict_heatmap_png(document: dict[str, Any], mark: str | None = None) -> bytes | None:
    """Adapters × checkpoints coloured by verdict; "not enough evidence" greyed out."""
    rows = (document.get("verdicts") or {}).get("entries", [])
    if not any(v["verdict"] for v in rows):
        return None
    from matplotlib.patches import Patch  # lazy: matplotlib only when figures are drawn

    adapters = sorted({v["adapter"] for v in rows})
    checkpoints = sorted({v["checkpoint"] for v in rows})
    layout = heatmap_layout(len(adapters), len(checkpoints))  # many checkpoints: down the side
    y_labels, x_labels = (checkpoints, adapters) if layout["transposed"] else (adapters, checkpoints)
    plt = _pyplot()
    width, height = layout["figsize"]
    fig, ax = plt.subplots(figsize=(width + 0.3 * len(x_labels), height))
    for v in rows:
        y, x = (v["checkpoint"], v["adapter"]) if layout["transposed"] else (v["adapter"], v["checkpoint"])
        i, j = y_labels.index(y), x_labels.index(x)
        colour = VERDICT_COLOURS.get(v["verdict"], "#eeeeee")
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=colour, alpha=0.55 if v["verdict"] else 0.3))
        shown = v["weights"] and v["verdict"] not in ("home", "not enough evidence")
        weights = ", ".join(f"{w:g}" for w in v["weights"]) if shown else ""
        if layout["text"]:
            label = (v["verdict"] or "home unknown") + (f"\n@{weights}" if weights else "")
        else:  # too many cells for words: the one-character mark
            label = VERDICT_MARKS.get(v["verdict"], "") + (f" @{weights}" if weights else "")
        ax.text(j, i, label, ha="center", va="center", fontsize=7, color="#555" if not v["verdict"] else "black")
    ax.set_xlim(-0.5, len(x_labels) - 0.5)
    ax.set_ylim(len(y_labels) - 0.5, -0.5)
    ax.set_xticks(range(len(x_labels)), labels=x_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(y_labels)), labels=y_labels, fontsize=None if layout["text"] else 7)
    ax.set_title("Does the adapter transfer? (against the checkpoint it was trained on)", fontsize=9)
    handles = [Patch(color=c, alpha=0.55, label=k) for k, c in VERDICT_COLOURS.items() if k]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _png(fig, mark)


def forest_png(selection: dict[str, Any], titles: dict[str, str], mark: str | None = None) -> bytes | None:
    """One row per comparison with an interval (A − B, the interval, 0 marked), from
    :func:`lycoris_eval.compare.select.select`. Each metric has its own scale, so each row is
    drawn relative to its own interval's half-width (the label gives the real numbers)."""
    rows = [e for e in selection["entries"] if e["ci"] is not None]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.32 * len(rows)))
    for i, e in enumerate(rows):
        lo, hi = e["ci"]
        scale = max(abs(lo), abs(hi), abs(e["diff"]), 1e-12)
        colour = "#2e7d32" if e["better"] == "a" else "#c62828" if e["better"] == "b" else "#757575"
        ax.plot([lo / scale, hi / scale], [i, i], color=colour, linewidth=2)
        ax.plot([e["diff"] / scale], [i], "o", color=colour)
        better = "" if e["higher_is_better"] else " (lower is better)"
        label = f"{titles.get(e['metric'], e['metric'])}{better} · {context_label(e)}"
        ax.text(1.08, i, f"{signed(e['diff'])} [{signed(lo)}, {signed(hi)}] {e['status']}", fontsize=7, va="center")
        ax.text(-1.08, i, label, fontsize=7, va="center", ha="right")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xticks([-1, 0, 1], labels=["", "0", ""])
    ax.set_title(f"A = {selection['a']}  vs  B = {selection['b']}: A − B with 95% intervals", fontsize=9)
    return _png(fig, mark)
