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


def heatmap_png(heatmap: dict[str, Any], title: str) -> bytes | None:
    rows, cols, values = heatmap["rows"], heatmap["columns"], heatmap["values"]
    verdicts = heatmap.get("verdicts") or {}  # adapter -> checkpoint -> transfer verdict
    if not rows or not cols or all(v is None for row in values for v in row):
        return None  # no value to colour (e.g. a baseline metric on a grid without baselines)
    import numpy as np

    plt = _pyplot()
    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cols), 1.2 + 0.55 * len(rows)))
    cmap = "viridis" if heatmap["higher_is_better"] else "viridis_r"
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cols)), labels=cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.3g}", ha="center", va="center", color="white", fontsize=8)
            if is_checkpoint(heatmap["trained_on"].get(rows[i]), cols[j]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
            verdict = verdicts.get(rows[i], {}).get(cols[j])
            if verdict == "not enough evidence":  # greyed out: the colour is not evidence
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="#9e9e9e", alpha=0.75))
            if verdict:
                ax.text(j, i + 0.32, verdict, ha="center", va="center", color="white", fontsize=6)
    better = "higher" if heatmap["higher_is_better"] else "lower"
    extra = "; grey: not enough evidence" if verdicts else ""
    ax.set_title(f"{title} ({better} is better; red: trained on{extra})", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    return _png(fig)


def weight_curve_png(summary: list[dict[str, Any]], metric: str, title: str) -> bytes | None:
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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (checkpoint, adapter), points in sorted(lines.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        if checkpoint in baselines:
            points = [(0.0, baselines[checkpoint]), *points]
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{checkpoint} · {adapter}")
    ax.set_xlabel("adapter weight (0 = no adapter)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


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
    for metric, info in tables["metrics"].items():
        title = info.get("title", metric)
        heat = heatmap_png(tables["heatmaps"][metric], title) if metric in tables["heatmaps"] else None
        if heat:
            paths[f"heatmap-{metric}"] = out_dir / f"heatmap-{metric}.png"
            write_atomic_bytes(paths[f"heatmap-{metric}"], heat)
        curve = weight_curve_png(tables["summary"], metric, title)
        if curve:
            paths[f"weights-{metric}"] = out_dir / f"weights-{metric}.png"
            write_atomic_bytes(paths[f"weights-{metric}"], curve)
    return paths
