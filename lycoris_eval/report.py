"""Writing scores: ``scores.json`` (schema in docs/scores-schema.md), ``scores.csv``
(one row per cell, ``METRIC_mean``/``METRIC_std``/``METRIC_n`` columns) and a plain
text table for the terminal."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

CELL_COLUMNS = ("checkpoint", "adapter", "weight", "baseline", "prompt_type", "prompt", "n_images", "seeds")


def write_atomic(path: Path, text: str) -> None:
    """Write then rename, so an interrupted write never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)


def to_csv(document: dict[str, Any]) -> str:
    metrics = list(document.get("metrics", {}))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = list(CELL_COLUMNS)
    for name in metrics:
        header += [f"{name}_mean", f"{name}_std", f"{name}_n"]
    writer.writerow(header)
    for cell in document.get("cells", []):
        row = [
            cell.get("checkpoint") or "",
            cell.get("adapter") or "",
            "" if cell.get("weight") is None else cell["weight"],
            cell.get("baseline"),
            cell.get("prompt_type"),
            cell.get("prompt") or "",
            len(cell.get("images", [])),
            " ".join(str(s) for s in cell.get("seeds", [])),
        ]
        for name in metrics:
            value = cell["metrics"].get(name) or {}
            row += [_fmt(value.get("mean")), _fmt(value.get("std")), value.get("n", "")]
        writer.writerow(row)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    return "" if value is None else repr(float(value))


def write_reports(document: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "scores.json", "csv": out_dir / "scores.csv"}
    write_atomic(paths["json"], to_json(document))
    write_atomic(paths["csv"], to_csv(document))
    return paths


def _short(value: Any, width: int) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def text_table(document: dict[str, Any]) -> str:
    """Summary per (checkpoint, adapter, weight): metric means and the overall rank."""
    metrics = list(document.get("metrics", {}))
    lines = []
    warning = document.get("run", {}).get("warning")
    if warning:
        lines += [f"!! {warning}", ""]
    head = f"{'checkpoint':<18} {'adapter':<20} {'weight':>6}"
    for name in metrics:
        head += f" {name[:14]:>14}"
    head += f" {'rank':>6}"
    lines.append(head)
    lines.append("-" * len(head))
    for row in document.get("summaries", []):
        weight = row.get("weight")
        line = (
            f"{_short(row.get('checkpoint'), 18):<18} {_short(row.get('adapter') or '(baseline)', 20):<20} "
            f"{'-' if weight is None else f'{weight:g}':>6}"
        )
        for name in metrics:
            mean = (row["metrics"].get(name) or {}).get("mean")
            line += f" {'-' if mean is None else f'{mean:.4g}':>14}"
        rank = row.get("overall_rank")
        line += f" {'-' if rank is None else f'{rank:.2f}':>6}"
        lines.append(line)
    for entry in document.get("trust", []):
        scope = f" [{entry['adapter']}]" if entry.get("adapter") else ""
        lines.append(f"trust{scope}: {entry['verdict']}")
    for note in document.get("run", {}).get("notes", []):
        if note != warning:
            lines.append(f"note: {note}")
    skipped = document.get("run", {}).get("skipped", [])
    if skipped:
        lines.append(f"skipped {len(skipped)} file(s):")
        lines += [f"  {s['set']}/{s['file']}: {s['error']}" for s in skipped]
    return "\n".join(lines)
