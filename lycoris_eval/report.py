"""Writing scores: ``scores.json`` (schema in docs/scores-schema.md), ``scores.csv``
(one row per cell, ``METRIC_mean``/``METRIC_std``/``METRIC_n`` columns) and a plain
text table for the terminal."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CELL_COLUMNS = ("checkpoint", "adapter", "weight", "baseline", "prompt_type", "prompt", "n_images", "seeds")


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on ``path``'s ``.tmp``; on leaving the block: flush, fsync, then rename
    over ``path``, so an interrupted write never leaves half a file (and a failed one leaves
    no ``.tmp`` behind). For content written in pieces (the sweep's merge streams gigabytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_atomic(path: Path, text: str) -> None:
    write_atomic_bytes(path, text.encode("utf-8"))


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


def round_sig(value: Any, digits: int = 4) -> float | None:
    """A metric value for display: ``digits`` significant digits (None and non-finite values
    give None). Display only: scores.json and scores.csv keep full precision."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return float(f"{number:.{digits}g}")


def round_rank(value: Any) -> float | None:
    """A rank-normalised score (0 = worst, 1 = best) for display: 2 decimals."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return round(number, 2) if math.isfinite(number) else None


def fmt_metric(value: Any) -> str:
    """A metric value as text, 4 significant digits ("" when missing)."""
    number = round_sig(value)
    return "" if number is None else f"{number:.4g}"


def fmt_rank(value: Any) -> str:
    """A rank as text, 2 decimals ("" when missing)."""
    number = round_rank(value)
    return "" if number is None else f"{number:.2f}"


def write_reports(document: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    from .compare_report import comparisons_csv

    paths = {"json": out_dir / "scores.json", "csv": out_dir / "scores.csv", "comparisons": out_dir / "comparisons.csv"}
    write_atomic(paths["json"], to_json(document))
    write_atomic(paths["csv"], to_csv(document))
    write_atomic(paths["comparisons"], comparisons_csv(document))
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
    lines += _comparison_lines(document)
    for note in document.get("run", {}).get("notes", []):
        if note != warning:
            lines.append(f"note: {note}")
    skipped = document.get("run", {}).get("skipped", [])
    if skipped:
        lines.append(f"skipped {len(skipped)} file(s):")
        lines += [f"  {s['set']}/{s['file']}: {s['error']}" for s in skipped]
    return "\n".join(lines)


def _comparison_lines(document: dict[str, Any], most: int = 5) -> list[str]:
    """The clearest differences and the transfer verdicts, a few lines for the terminal."""
    from .compare_report import sentence

    section = document.get("comparisons") or {}
    titles = {m: info.get("title", m) for m, info in document.get("metrics", {}).items()}
    clear = sorted((e for e in section.get("entries", []) if e["clear"]), key=lambda e: e["q"])
    lines = []
    if section:
        tests = sum(t["tests"] for t in section.get("tables", {}).values())
        lines.append(f"clearly different: {len(clear)} of {tests} paired tests (Benjamini–Hochberg, 5% FDR)")
    lines += [f"  {sentence(e, titles.get(e['metric'], e['metric']))}" for e in clear[:most]]
    if len(clear) > most:
        lines.append(f"  … {len(clear) - most} more in comparisons.csv")
    for v in (document.get("verdicts") or {}).get("entries", []):
        if v["verdict"] and v["verdict"] != "home":
            weights = ", ".join(f"{w:g}" for w in v["weights"])
            lines.append(f"verdict: {v['adapter']} on {v['checkpoint']} (vs {v['home']}): {v['verdict']}"
                         + (f" @{weights}" if weights else "") + f" — {v['reason']}")  # fmt: skip
    return lines


def report_tables(document: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tables a dashboard (or the Evaluate tab) shows, as plain JSON.

    * ``cells``: one row per cell, each metric's mean and std;
    * ``summary``: one row per (checkpoint, adapter, weight) with means and ranks;
    * ``best_weight``: per (adapter, checkpoint), the weight with the best overall rank;
    * ``by_type``: per (adapter type, checkpoint), each metric averaged over the adapters
      of that type (all weights);
    * ``heatmaps``: per metric, adapters × checkpoints (mean over weights), with the
      checkpoint each adapter was trained on;
    * ``trust``, ``comparisons``, ``verdicts`` and ``failures`` as in scores.json;
    * ``adapters``: per adapter, its type, model family (and any tensors/metadata conflict)
      and training base.
    """
    metrics = list(document.get("metrics", {}))
    adapters_info: dict[str, dict[str, Any]] = {}
    for entry in (manifest or {}).get("host", {}).get("adapters", []):
        adapters_info[entry["name"]] = entry.get("info") or {}
    for name, info in (document.get("adapters") or {}).items():
        adapters_info.setdefault(name, info or {})

    def kind(adapter: str | None) -> str | None:
        return None if adapter is None else adapters_info.get(adapter, {}).get("type", "unknown")

    def trained(adapter: str | None) -> str | None:
        return None if adapter is None else adapters_info.get(adapter, {}).get("trained_on")

    cells = []
    for cell in document.get("cells", []):
        row = {k: cell.get(k) for k in ("checkpoint", "adapter", "weight", "prompt_type", "prompt", "baseline")}
        row.update(
            adapter_type=kind(cell.get("adapter")),
            trained_on=trained(cell.get("adapter")),
            n_images=len(cell.get("images", [])),
        )
        for name in metrics:
            value = cell["metrics"].get(name) or {}
            row[name], row[f"{name}_std"] = value.get("mean"), value.get("std")
        cells.append(row)
    summary = []
    for s in document.get("summaries", []):
        row = {k: s.get(k) for k in ("checkpoint", "adapter", "weight", "baseline", "n_images", "overall_rank")}
        row["adapter_type"] = kind(s.get("adapter"))
        for name in metrics:
            row[name] = (s["metrics"].get(name) or {}).get("mean")
            row[f"{name}_rank"] = s.get("ranks", {}).get(name)
        summary.append(row)
    best: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in summary:
        if row["adapter"] is None or row["overall_rank"] is None:
            continue
        key = (row["adapter"], row["checkpoint"])
        if key not in best or row["overall_rank"] > best[key]["overall_rank"]:
            best[key] = row
    best_weight = [
        {"adapter": a, "checkpoint": c, "weight": r["weight"], "overall_rank": r["overall_rank"]}
        for (a, c), r in sorted(best.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]
    by_type: dict[tuple[Any, Any], dict[str, list[float]]] = {}
    per_pair: dict[tuple[Any, Any], dict[str, list[float]]] = {}
    for row in summary:
        if row["adapter"] is None:
            continue
        for name in metrics:
            if row[name] is None:
                continue
            by_type.setdefault((row["adapter_type"], row["checkpoint"]), {}).setdefault(name, []).append(row[name])
            per_pair.setdefault((row["adapter"], row["checkpoint"]), {}).setdefault(name, []).append(row[name])
    type_rows = [
        {"adapter_type": t, "checkpoint": c, **{m: sum(v) / len(v) for m, v in vals.items()}}
        for (t, c), vals in sorted(by_type.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))
    ]
    adapters = sorted({a for a, _ in per_pair}, key=str)
    checkpoints = sorted({c for _, c in per_pair}, key=str)
    verdict_map: dict[str, dict[str, str]] = {}
    for v in (document.get("verdicts") or {}).get("entries", []):
        if v.get("verdict"):
            verdict_map.setdefault(v["adapter"], {})[v["checkpoint"]] = v["verdict"]
    # the outline marks where each adapter was trained: the verdicts' home (the user's
    # --trained-on wins over metadata there), else the metadata's base name
    homes = (document.get("verdicts") or {}).get("home") or {}
    heatmaps = {}
    for name in metrics:
        values = [
            [
                (sum(per_pair[(a, c)][name]) / len(per_pair[(a, c)][name]))
                if name in per_pair.get((a, c), {})
                else None
                for c in checkpoints
            ]
            for a in adapters
        ]
        heatmaps[name] = {
            "rows": adapters,
            "columns": checkpoints,
            "values": values,
            "higher_is_better": document["metrics"][name]["higher_is_better"],
            "trained_on": {a: homes.get(a) or trained(a) for a in adapters},
            "verdicts": verdict_map,
        }
    return {
        "metrics": document.get("metrics", {}),
        "warning": document.get("run", {}).get("warning"),
        "cells": cells,
        "summary": summary,
        "best_weight": best_weight,
        "by_type": type_rows,
        "heatmaps": heatmaps,
        "trust": document.get("trust", []),
        "comparisons": document.get("comparisons"),
        "verdicts": document.get("verdicts"),
        "failures": document.get("run", {}).get("generation_failures", []),
        "skipped": document.get("run", {}).get("skipped", []),
        "adapters": {
            name: {k: adapters_info.get(name, {}).get(k) for k in ("type", "family", "family_conflict", "trained_on")}
            for name in sorted(
                {row["adapter"] for row in summary if row.get("adapter")} | set(document.get("adapters") or {}), key=str
            )
        },
    }
