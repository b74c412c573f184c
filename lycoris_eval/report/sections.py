"""The report's sections, as text: the tables the tab and the figures read
(:func:`report_tables`), the terminal table, the Markdown report (summary, best weight per
checkpoint, by adapter type, trust, what is clearly better, transfer verdicts) and the
terminal text of one A-vs-B comparison. Reads the scores document only."""

from __future__ import annotations

from typing import Any

from lycoris_eval.compare.plan import coverage_notes
from lycoris_eval.inputs.families import FAMILY_TITLES
from lycoris_eval.report.answer import answer_markdown, answers
from lycoris_eval.report.epochs_answer import epochs_markdown
from lycoris_eval.report.format import fmt_metric, fmt_rank, sentence

MAX_LISTED = 40


def clearly_better_markdown(document: dict[str, Any]) -> list[str]:
    """The "What is clearly better" section, in plain words (empty for old documents)."""
    section = document.get("comparisons")
    if not section:
        return []
    titles = {m: info.get("title", m) for m, info in document.get("metrics", {}).items()}
    entries = section["entries"]
    clear = [e for e in entries if e["clear"]]
    tests = sum(t["tests"] for t in section.get("tables", {}).values())
    lines = ["", "## What is clearly better", ""]
    lines.append(
        f"Clear means: a 95% interval that excludes 0 and q ≤ 0.05 after Benjamini–Hochberg over the "
        f"tests of its table (false discovery rate 5%; {tests} tests in {len(section.get('tables', {}))} tables). "
        "Pairs are the same prompt and seed."
    )
    lines += coverage_notes(section.get("coverage") or {})
    lines.append("")
    if not clear:
        lines.append("* Nothing is clearly better yet.")
    for e in sorted(clear, key=lambda e: (e["kind"], e["q"]))[:MAX_LISTED]:
        lines.append(f"* {sentence(e, titles.get(e['metric'], e['metric']))}.")
    if len(clear) > MAX_LISTED:
        lines.append(f"* … and {len(clear) - MAX_LISTED} more in comparisons.csv.")
    unclear = [e for e in entries if e["status"] in ("no clear difference", "too few seeds")]
    if unclear:
        adds = sorted(e["seeds_to_add"] for e in unclear if e["seeds_to_add"] is not None)
        median = adds[len(adds) // 2] if adds else None
        hint = (
            f" At the spread seen so far, a typical one needs {median} more seed{'s' if median != 1 else ''} "
            "per prompt (80% power; each entry's own estimate is in comparisons.csv)."
            if median
            else ""
        )
        lines += ["", f"{len(unclear)} differences are not clear yet.{hint}"]
    same = sum(1 for e in entries if e["status"] == "no difference")
    if same:
        lines.append(f"{same} comparisons have identical values on every pair (no difference at all).")
    return lines


def verdicts_markdown(document: dict[str, Any]) -> list[str]:
    section = document.get("verdicts")
    rows = [v for v in (section or {}).get("entries", []) if v["verdict"] is not None]
    if not rows:
        return []
    lines = ["", "## Does it transfer?", "", section["rule"], ""]
    lines += ["| adapter | checkpoint | trained on | verdict | weights | why |", "|---|---|---|---|---|---|"]
    sources = section.get("home_source") or {}
    for v in rows:
        weights = ", ".join(f"{w:g}" for w in v["weights"])
        # a home found by the same-family rule is not where it was trained: say so where it is read
        home = f"{v['home']} (same family)" if sources.get(v["adapter"]) == "same family" else v["home"]
        lines.append(f"| {v['adapter']} | {v['checkpoint']} | {home} | {v['verdict']} | {weights} | {v['reason']} |")
    return lines


def report_tables(document: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tables a dashboard (or the Evaluate tab) shows, as plain JSON.

    * ``answer``: per adapter, the plain-words answer (:mod:`.answer`), read first;
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
        "answer": answers(document),
        "training_runs": document.get("training_runs"),
        "metrics": document.get("metrics", {}),
        "warning": document.get("run", {}).get("warning"),
        "random_weights": bool(document.get("run", {}).get("random_weights")),
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
    lines += answer_markdown(tables.get("answer") or [])
    lines += epochs_markdown(tables.get("training_runs"))
    lines += [
        "## Summary (mean over prompts; rank: the paper's scaled rank among the checkpoint's adapters, 1 best, 0 worst)",
        "",
    ]
    head = ["checkpoint", "adapter", "type", "weight", *metrics, "rank"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in tables["summary"]:
        values = [row["checkpoint"], row["adapter"] or "(no adapter)", row["adapter_type"], row["weight"]]
        values += [row[m] for m in metrics]
        lines.append("| " + " | ".join([*(_cell(v) for v in values), _rank(row["overall_rank"])]) + " |")
    if tables["best_weight"]:
        lines += [
            "",
            "## Highest overall rank per checkpoint (a ranking, not evidence: the answer above gives intervals)",
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
