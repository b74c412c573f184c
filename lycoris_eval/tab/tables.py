"""The Evaluate tab's tables: a scores document turned into data frames with real headers,
display rounding (the files keep full precision), notes explaining empty tables, and the
best/worst thumbnails. Pure data; no Gradio.
"""

from __future__ import annotations

from typing import Any

from lycoris_eval.report.format import fmt_metric, round_rank, round_sig
from lycoris_eval.report.terminal import SHORT_TITLES
from lycoris_eval.scoring.aggregate import TRUST_METRICS
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.tab.actions import (
    EvaluationView,
)

CELL_COLUMNS = ["checkpoint", "adapter", "type", "trained on", "weight", "prompt type", "n"]


SUMMARY_COLUMNS = ["checkpoint", "adapter", "type", "weight", "overall rank"]


BEST_COLUMNS = ["adapter", "checkpoint", "weight", "overall rank"]


BY_TYPE_COLUMNS = ["adapter type", "checkpoint"]


TRUST_COLUMNS = ["metric", "distractor", "adapter", "accuracy", "AUC", "verdict"]


def metric_column(name: str) -> str:
    """A metric's column header: a short title and the better direction, not its id."""
    info = METRICS.get(name)
    arrow = "" if info is None else (" ↑" if info.higher_is_better else " ↓")
    return f"{SHORT_TITLES.get(name, name)}{arrow}"


COLUMN_METRIC = {metric_column(name): name for name in METRICS}


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A table that always has its real headers, also when it has no row."""
    import pandas as pd  # lazy: pandas only for the tab's tables

    return pd.DataFrame([[_blank(row.get(c)) for c in columns] for row in rows], columns=columns, dtype=object)


def _frames(view: EvaluationView) -> dict[str, Any]:
    metrics = list(view.tables["metrics"])

    def mean_std(row: dict[str, Any], name: str) -> str:
        mean, std = row.get(name), row.get(f"{name}_std")
        if mean is None:
            return ""
        spread = round_sig(std, 2)
        return fmt_metric(mean) + ("" if spread is None else f" ± {spread:.2g}")

    cells = _frame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "trained on": r["trained_on"] or "",
                "weight": round_sig(r["weight"]),
                "prompt type": r["prompt_type"],
                "n": r["n_images"],
                **{metric_column(m): mean_std(r, m) for m in metrics},
            }
            for r in view.tables["cells"]
        ],
        CELL_COLUMNS + [metric_column(m) for m in metrics],
    )
    summary = _frame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "weight": round_sig(r["weight"]),
                "overall rank": round_rank(r["overall_rank"]),
                **{f"{metric_column(m)} rank": round_rank(r.get(f"{m}_rank")) for m in metrics},
            }
            for r in view.tables["summary"]
        ],
        SUMMARY_COLUMNS + [f"{metric_column(m)} rank" for m in metrics],
    )
    best = _frame(
        [
            {
                "adapter": r["adapter"],
                "checkpoint": r["checkpoint"],
                "weight": round_sig(r["weight"]),
                "overall rank": round_rank(r["overall_rank"]),
            }
            for r in view.tables["best_weight"]
        ],
        BEST_COLUMNS,
    )
    by_type = _frame(
        [
            {
                "adapter type": r["adapter_type"] or "unknown",
                "checkpoint": r["checkpoint"],
                **{metric_column(m): round_sig(r.get(m)) for m in metrics},
            }
            for r in view.tables["by_type"]
        ],
        BY_TYPE_COLUMNS + [metric_column(m) for m in metrics],
    )
    trust = _frame(
        [
            {
                "metric": t.get("metric"),
                "distractor": t.get("distractor"),
                "adapter": t.get("adapter") or "(all)",
                "accuracy": round_sig(t.get("accuracy")),
                "AUC": round_sig(t.get("auc")),
                "verdict": t.get("verdict"),
            }
            for t in view.tables["trust"]
        ],
        TRUST_COLUMNS,
    )
    return {"cells": cells, "summary": summary, "trust": trust, "by_type": by_type, "best": best}


def empty_notes(view: EvaluationView, frames: dict[str, Any]) -> dict[str, str]:
    """For each empty table (and the plots), one line saying why it is empty; "" otherwise."""
    document = view.document
    adapter_rows = [r for r in view.tables["summary"] if r.get("adapter") is not None]
    no_adapter = "the source has no image made with an adapter (only no-adapter images)"
    notes = {name: "" for name in ("cells", "summary", "best", "by_type", "trust", "plots")}
    if frames["cells"].empty:
        notes["cells"] = "No cells: no image of the source could be grouped and scored."
    if frames["summary"].empty:
        notes["summary"] = "No summary: no cell was scored."
    unranked = "ranks compare at least two adapter × weight cells of a checkpoint with a metric value"
    if frames["best"].empty:
        notes["best"] = f"No best weight: {no_adapter if not adapter_rows else unranked}."
    elif max((r.get("n_images") or 0 for r in view.tables["cells"]), default=0) <= 1:
        notes["best"] = (
            "Each cell holds one image: this ranking is one seed's luck, not a best weight. "
            "Add seeds (the Compare view's \u201cadd seeds\u201d) and read the Answer tab for intervals."
        )
    if frames["by_type"].empty:
        why = no_adapter if not adapter_rows else "no adapter cell has a metric value"
        notes["by_type"] = f"No averages by adapter type: {why}."
    if frames["trust"].empty:
        if not document["run"].get("distractor_dirs") or not document["run"].get("reference_dir"):
            notes["trust"] = (
                "The trust check needs a reference set and at least one distractor set "
                "(fill in the target reference folder and the distractor folders)."
            )
        else:
            notes["trust"] = (
                "No trust verdict: the check uses "
                + ", ".join(TRUST_METRICS)
                + "; none of them was selected or has a value."
            )
    if not view.plots:
        notes["plots"] = "No plots: heatmaps and weight curves need adapter cells with a metric value."
    return notes


def _cells_note(frame: Any, shown: Any, prompt_type: str) -> str:
    """Why the cells table is empty after the prompt-type filter, or why a metric column is blank."""
    if frame is None or frame.empty:
        return ""
    if shown.empty:
        return f"No cell has prompt type “{prompt_type}”: choose “all” or another type."
    blank = [
        COLUMN_METRIC[c] for c in shown.columns[len(CELL_COLUMNS) :] if c in COLUMN_METRIC and (shown[c] == "").all()
    ]
    lines = []
    paired = [m for m in blank if METRICS[m].needs == "baseline"]
    if paired:
        lines.append(
            f"No value for {', '.join(paired)}: each compares an adapter image with the no-adapter image of the "
            "same checkpoint, prompt and seed; these cells have no such pair."
        )
    other = [m for m in blank if m not in paired]
    if other:
        lines.append(f"No value for {', '.join(other)} in these cells (see the notes above).")
    return "\n\n".join(lines)
