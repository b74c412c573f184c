"""Figures and text people read, made from :func:`lycoris_eval.report.report_tables`.

* compatibility heatmap per metric: adapters × checkpoints, the checkpoint each adapter
  was trained on outlined (the transfer matrix LoRA trainers draw by hand);
* metric vs adapter weight: a line per (checkpoint, adapter), the baseline at weight 0;
* a Markdown report (summary, best weight per checkpoint, by adapter type, trust, what is
  clearly better, transfer verdicts — the last two from :mod:`.compare_report`).

matplotlib (a gradio dependency, so present in the WebUI) is imported lazily, with the
non-interactive Agg backend.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .families import FAMILY_TITLES
from .report import fmt_metric, fmt_rank, write_atomic, write_atomic_bytes
from .verdicts import is_checkpoint


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
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


def heatmap_png(heatmap: dict[str, Any], title: str) -> bytes | None:
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
    return _png(fig)


def weight_curve_png(
    summary: list[dict[str, Any]], metric: str, title: str, homes: dict[str, str | None] | None = None
) -> bytes | None:
    fig = weight_curve_figure(summary, metric, title, homes)
    return None if fig is None else _png(fig)


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
    import math

    import numpy as np

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


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return fmt_metric(value) or "–"
    return str(value).replace("|", "\\|")


def _rank(value: Any) -> str:
    return fmt_rank(value) or "–"


def markdown_report(tables: dict[str, Any]) -> str:
    metrics = list(tables["metrics"])
    lines = ["# LyCORIS Eval report", ""]
    if tables.get("warning"):
        lines += [f"> **{tables['warning']}**", ""]
    lines += ["## Summary (mean over prompts; rank 1 = best within the checkpoint)", ""]
    head = ["checkpoint", "adapter", "type", "weight", *metrics, "rank"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in tables["summary"]:
        values = [row["checkpoint"], row["adapter"] or "(no adapter)", row["adapter_type"], row["weight"]]
        values += [row[m] for m in metrics]
        lines.append("| " + " | ".join([*(_cell(v) for v in values), _rank(row["overall_rank"])]) + " |")
    if tables["best_weight"]:
        lines += [
            "",
            "## Best weight per checkpoint",
            "",
            "| adapter | checkpoint | weight | rank |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(b['adapter'])} | {_cell(b['checkpoint'])} | {_cell(b['weight'])} | {_rank(b['overall_rank'])} |"
            for b in tables["best_weight"]
        ]
    if tables["by_type"]:
        lines += [
            "",
            "## By adapter type",
            "",
            "| type | checkpoint | " + " | ".join(metrics) + " |",
            "|" + "---|" * (2 + len(metrics)),
        ]
        lines += [
            "| "
            + " | ".join(_cell(v) for v in [r["adapter_type"], r["checkpoint"], *[r.get(m) for m in metrics]])
            + " |"
            for r in tables["by_type"]
        ]
    if tables.get("adapters"):
        lines += ["", "## Adapters", "", "| adapter | type | model family | trained on |", "|---|---|---|---|"]
        for name, info in tables["adapters"].items():
            family = FAMILY_TITLES.get(info.get("family") or "unknown", info.get("family"))
            if info.get("family_conflict"):
                family = f"{family} ({info['family_conflict']})"
            lines.append(
                f"| {_cell(name)} | {_cell(info.get('type'))} | {_cell(family)} | {_cell(info.get('trained_on'))} |"
            )
    if tables["trust"]:
        lines += ["", "## Can the metrics be trusted here?", ""]
        lines += [
            f"* {t['verdict']}" + (f" (adapter {t['adapter']})" if t.get("adapter") else "") for t in tables["trust"]
        ]
    from .compare_report import clearly_better_markdown, verdicts_markdown

    lines += clearly_better_markdown(tables)
    lines += verdicts_markdown(tables)
    if tables["failures"]:
        lines += ["", "## Images the grid could not make", ""]
        lines += [
            f"* {_cell(f['checkpoint'])} · {_cell(f['adapter'])} @{_cell(f['weight'])} · seed "
            f"{_cell(f['seed'])}: {f['error']}"
            for f in tables["failures"]
        ]
    return "\n".join(lines) + "\n"


def write_report_files(tables: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.md, heatmap-METRIC.png and weights-METRIC.png into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .compare_report import verdict_heatmap_png

    paths = {"markdown": out_dir / "report.md"}
    write_atomic(paths["markdown"], markdown_report(tables))
    verdict_map = verdict_heatmap_png(tables)
    if verdict_map:
        paths["verdicts"] = out_dir / "verdicts.png"
        write_atomic_bytes(paths["verdicts"], verdict_map)
    homes = (tables.get("verdicts") or {}).get("home") or {}
    for metric, info in tables["metrics"].items():
        title = info.get("title", metric)
        heat = heatmap_png(tables["heatmaps"][metric], title) if metric in tables["heatmaps"] else None
        if heat:
            paths[f"heatmap-{metric}"] = out_dir / f"heatmap-{metric}.png"
            write_atomic_bytes(paths[f"heatmap-{metric}"], heat)
        curve = weight_curve_png(tables["summary"], metric, title, homes)
        if curve:
            paths[f"weights-{metric}"] = out_dir / f"weights-{metric}.png"
            write_atomic_bytes(paths[f"weights-{metric}"], curve)
    return paths
