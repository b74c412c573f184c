"""Text formats of the scores document: numbers rounded for people, ``scores.json`` text,
``scores.csv`` (one row per cell, ``METRIC_mean``/``METRIC_std``/``METRIC_n`` columns),
``comparisons.csv``, and the labels and sentences comparisons are told in.

The bottom of the report room: it imports nothing else from it."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

CELL_COLUMNS = ("checkpoint", "adapter", "weight", "baseline", "prompt_type", "prompt", "n_images", "seeds")


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)


def to_csv(document: dict[str, Any]) -> str:
    metrics = list(document.get("metrics", {}))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = list(CELL_COLUMNS)
    for name in metrics:
        header += [f"{name}_mean", f"{name}_std", f"{name}_n"]
    marked = _random_weights(document)
    writer.writerow([*header, *marked[:1]])
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
        writer.writerow([*row, *marked[1:]])
    return buffer.getvalue()


def _random_weights(document: dict[str, Any]) -> tuple[str, ...]:
    """(column, value) that marks every row of a random-weights run's CSVs; () otherwise, so
    real runs' files keep their columns."""
    return ("random_weights", "true") if (document.get("run") or {}).get("random_weights") else ()


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


def short(value: Any, width: int) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


CSV_COLUMNS = (
    "kind", "a_checkpoint", "a_adapter", "a_weight", "b_checkpoint", "b_adapter", "b_weight", "metric",
    "higher_is_better", "n", "prompts", "seeds", "diff", "ci_low", "ci_high", "p", "q", "a_wins", "b_wins",
    "ties", "a_better_share", "status", "pairs_needed", "seeds_to_add", "note",
)  # fmt: skip


def comparisons_csv(document: dict[str, Any]) -> str:
    """One row per comparison entry (empty file with its header for old documents)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    marked = _random_weights(document)
    writer.writerow([*CSV_COLUMNS, *marked[:1]])
    for e in document.get("comparisons", {}).get("entries", []):
        ci = e.get("ci") or [None, None]
        row = [e["kind"], *(e["a"][k] for k in ("checkpoint", "adapter", "weight"))]
        row += [*(e["b"][k] for k in ("checkpoint", "adapter", "weight")), e["metric"], e["higher_is_better"]]
        row += [e["n"], e["prompts"], e["seeds"], e["diff"], ci[0], ci[1], e["p"], e["q"], e["a_wins"]]
        row += [e["b_wins"], e["ties"], e["a_better_share"], e["status"], e["pairs_needed"], e["seeds_to_add"]]
        row.append(e.get("note"))
        writer.writerow(["" if v is None else v for v in [*row, *marked[1:]]])
    return buffer.getvalue()


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def at(weight: float | None) -> str:
    """`` @0.5``; nothing for an adapter mix without one weight (``a:1 + b:0.5``)."""
    return "" if weight is None else f" @{weight:g}"


def pair_label(entry: dict[str, Any]) -> tuple[str, str]:
    """Short labels of A and B that name only what differs between them."""
    a, b, kind = entry["a"], entry["b"], entry["kind"]
    if kind == "checkpoint":
        return a["checkpoint"], b["checkpoint"]
    if kind == "adapter":
        return a["adapter"], b["adapter"]
    if kind == "weight":
        return f"weight {a['weight']:g}", f"weight {b['weight']:g}"
    return f"{a['adapter']}{at(a['weight'])}", "no adapter"


def context_label(entry: dict[str, Any]) -> str:
    a, kind = entry["a"], entry["kind"]
    if kind == "checkpoint":
        return "no adapter" if a["adapter"] is None else f"{a['adapter']}{at(a['weight'])}"
    if kind == "adapter":
        return f"on {a['checkpoint']}{at(a['weight'])}"
    if kind == "weight":
        return f"{a['adapter']} on {a['checkpoint']}"
    return f"on {a['checkpoint']}"


def signed(value: float) -> str:
    text = fmt_metric(abs(value)) or "0"
    return ("+" if value >= 0 else "−") + text


def sentence(entry: dict[str, Any], title: str) -> str:
    """One clear difference in plain words."""
    x, y = pair_label(entry)
    winner, loser = (x, y) if entry["better"] == "a" else (y, x)
    diff, (lo, hi) = entry["diff"], entry["ci"]
    wins = entry["a_wins"] if entry["better"] == "a" else entry["b_wins"]
    return (
        f"{winner} beats {loser} ({context_label(entry)}) on {title}: A − B = {signed(diff)} "
        f"(95% interval {signed(lo)} to {signed(hi)}), better in {wins} of {entry['n']} pairs"
    )
