"""The report for a terminal: the summary table split into blocks that fit the width, the
clearest differences and verdicts in a few lines, and the text of one A-vs-B comparison.
Short titles with ↑/↓; the files carry the full ones."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

from lycoris_eval.report.format import context_label, plural, sentence, short, signed

# short column titles for the terminal (the files and report.md carry the full titles)
SHORT_TITLES = {
    "style_loss_base": "style→base",
    "style_loss_ref": "style→ref",
    "style_loss_tutorial": "tut.style",
    "image_similarity": "img sim",
    "centroid_distance": "centroid",
    "text_alignment": "text align",
    "clip_score": "CLIP score",
    "vendi": "Vendi",
    "fd_dinov2": "FD DINOv2",
    "kid_dinov2": "KID DINOv2",
    "psnr_base": "PSNR base",
    "ssim_base": "SSIM base",
}


_KEY = (("checkpoint", 18), ("adapter", 20), ("weight", 6))


_COLUMN = 12


def _metric_head(name: str, info: dict[str, Any]) -> str:
    arrow = "↑" if info.get("higher_is_better", True) else "↓"
    return f"{SHORT_TITLES.get(name, name)[: _COLUMN - 2]} {arrow}"


def text_table(document: dict[str, Any], width: int | None = None) -> str:
    """Summary per (checkpoint, adapter, weight) for a terminal ``width`` columns wide (default:
    the terminal's): short metric titles with ↑/↓ for the better direction, split into blocks
    that fit (the key columns repeated); the full table is in scores.csv and report.md."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    metrics = dict(document.get("metrics", {}))
    names = [*metrics, "rank"]
    key = sum(w + 1 for _, w in _KEY)
    per_block = max(1, (width - key) // (_COLUMN + 1))
    lines = []
    warning = document.get("run", {}).get("warning")
    if warning:
        lines += [*textwrap.wrap(f"!! {warning}", width), ""]
    rows = document.get("summaries", [])
    for start in range(0, len(names), per_block):
        block = names[start : start + per_block]
        head = " ".join(f"{label:<{w}}" if label != "weight" else f"{label:>{w}}" for label, w in _KEY)
        for name in block:
            title = "rank ↑" if name == "rank" else _metric_head(name, metrics[name])
            head += f" {title:>{_COLUMN}}"
        lines += [head, "-" * len(head)]
        for row in rows:
            weight = row.get("weight")
            line = (
                f"{short(row.get('checkpoint'), 18):<18} {short(row.get('adapter') or '(no adapter)', 20):<20} "
                f"{'-' if weight is None else f'{weight:g}':>6}"
            )
            for name in block:
                if name == "rank":
                    value = row.get("overall_rank")
                    text = "-" if value is None else f"{value:.2f}"
                else:
                    value = (row["metrics"].get(name) or {}).get("mean")
                    text = "-" if value is None else f"{value:.4g}"
                line += f" {text:>{_COLUMN}}"
            lines.append(line)
        lines.append("")
    lines += textwrap.wrap(
        "↑ higher is better, ↓ lower is better; rank: mean of the paper's scaled ranks among the checkpoint's "
        "adapter rows (1 best, 0 worst). Full titles and every column: scores.csv, report.md.",
        width,
    )
    tail: list[str] = []
    for entry in document.get("trust", []):
        scope = f" [{entry['adapter']}]" if entry.get("adapter") else ""
        tail.append(f"trust{scope}: {entry['verdict']}")
    tail += _comparison_lines(document)
    for note in document.get("run", {}).get("notes", []):
        if note != warning:
            tail.append(f"note: {note}")
    skipped = document.get("run", {}).get("skipped", [])
    if skipped:
        tail.append(f"skipped {len(skipped)} file(s):")
        tail += [f"  {s['set']}/{s['file']}: {s['error']}" for s in skipped]
    for line in tail:  # free text wrapped to the width too, continuation lines indented
        lines += textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False) or [""]
    return "\n".join(lines)


def _comparison_lines(document: dict[str, Any], most: int = 5) -> list[str]:
    """The clearest differences and the transfer verdicts, a few lines for the terminal."""

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


def text_comparison(selection: dict[str, Any], document: dict[str, Any]) -> str:
    """A plain text table of :func:`lycoris_eval.compare.select.select`'s entries."""
    titles = {m: info.get("title", m) for m, info in document.get("metrics", {}).items()}
    lines = [f"A = {selection['a']}   B = {selection['b']}   ({selection['kind']} table)", ""]
    head = f"{'metric':<20} {'context':<28} {'A − B':>11} {'95% interval':>25} {'A wins':>7} {'n':>4}  status"
    lines += [head, "-" * len(head)]
    for e in selection["entries"]:
        ci = "" if e["ci"] is None else f"[{signed(e['ci'][0])}, {signed(e['ci'][1])}]"
        wins = "" if e["a_wins"] is None else f"{e['a_wins']}/{e['n']}"
        status = e["status"] + (f" (add {plural(e['seeds_to_add'], 'seed')})" if e["seeds_to_add"] else "")
        diff = "" if e["diff"] is None else signed(e["diff"])
        lines.append(
            f"{e['metric'][:20]:<20} {context_label(e)[:28]:<28} {diff:>11} {ci:>25} {wins:>7} {e['n']:>4}  {status}"
        )
    if not selection["entries"]:
        lines.append("(no comparison of these two in this run)")
    lines += [
        "",
        f"metrics: {', '.join(f'{k} = {v}' for k, v in titles.items() if k in {e['metric'] for e in selection['entries']})}",
    ]
    lines.append(f"method: {selection['method'].get('interval', '')}; {selection['method'].get('fdr', '')}")
    if selection.get("on_demand"):
        lines.append(
            f"{plural(selection['on_demand'], 'row')} computed on demand (this run stores only some pairs): "
            f"q counts all {selection.get('on_demand_tests', 0)} tests of the table (p = 1 where not computed); "
            "Vendi and centroid distance need a run that stores the pair (--all-pairs-up-to)"
        )
    return "\n".join(lines)
