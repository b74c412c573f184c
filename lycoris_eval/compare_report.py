"""The comparisons and verdicts for people: ``comparisons.csv``, the Markdown sections
"What is clearly better" and "Does it transfer?", the transfer-verdict heatmap and the
forest plot of one A-vs-B comparison. Reads the scores document only."""

from __future__ import annotations

import csv
import io
from typing import Any

from .comparison_plan import coverage_notes
from .plots import VERDICT_MARKS, _png, _pyplot, heatmap_layout
from .report import fmt_metric

CSV_COLUMNS = (
    "kind", "a_checkpoint", "a_adapter", "a_weight", "b_checkpoint", "b_adapter", "b_weight", "metric",
    "higher_is_better", "n", "prompts", "seeds", "diff", "ci_low", "ci_high", "p", "q", "a_wins", "b_wins",
    "ties", "a_better_share", "status", "pairs_needed", "seeds_to_add", "note",
)  # fmt: skip
VERDICT_COLOURS = {
    "transfers": "#2e7d32",
    "weaker": "#ef8f00",
    "breaks": "#c62828",
    "home": "#1565c0",
    "not enough evidence": "#bdbdbd",
    None: "#eeeeee",
}
MAX_LISTED = 40


def comparisons_csv(document: dict[str, Any]) -> str:
    """One row per comparison entry (empty file with its header for old documents)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in document.get("comparisons", {}).get("entries", []):
        ci = e.get("ci") or [None, None]
        row = [e["kind"], *(e["a"][k] for k in ("checkpoint", "adapter", "weight"))]
        row += [*(e["b"][k] for k in ("checkpoint", "adapter", "weight")), e["metric"], e["higher_is_better"]]
        row += [e["n"], e["prompts"], e["seeds"], e["diff"], ci[0], ci[1], e["p"], e["q"], e["a_wins"]]
        row += [e["b_wins"], e["ties"], e["a_better_share"], e["status"], e["pairs_needed"], e["seeds_to_add"]]
        row.append(e.get("note"))
        writer.writerow(["" if v is None else v for v in row])
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


def _signed(value: float) -> str:
    text = fmt_metric(abs(value)) or "0"
    return ("+" if value >= 0 else "−") + text


def sentence(entry: dict[str, Any], title: str) -> str:
    """One clear difference in plain words."""
    x, y = pair_label(entry)
    winner, loser = (x, y) if entry["better"] == "a" else (y, x)
    diff, (lo, hi) = entry["diff"], entry["ci"]
    wins = entry["a_wins"] if entry["better"] == "a" else entry["b_wins"]
    return (
        f"{winner} beats {loser} ({context_label(entry)}) on {title}: A − B = {_signed(diff)} "
        f"(95% interval {_signed(lo)} to {_signed(hi)}), better in {wins} of {entry['n']} pairs"
    )


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
    for v in rows:
        weights = ", ".join(f"{w:g}" for w in v["weights"])
        lines.append(
            f"| {v['adapter']} | {v['checkpoint']} | {v['home']} | {v['verdict']} | {weights} | {v['reason']} |"
        )
    return lines


def verdict_heatmap_png(document: dict[str, Any]) -> bytes | None:
    """Adapters × checkpoints coloured by verdict; "not enough evidence" greyed out."""
    rows = (document.get("verdicts") or {}).get("entries", [])
    if not any(v["verdict"] for v in rows):
        return None
    from matplotlib.patches import Patch

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
    return _png(fig)


def forest_png(selection: dict[str, Any], titles: dict[str, str]) -> bytes | None:
    """One row per comparison with an interval (A − B, the interval, 0 marked), from
    :func:`lycoris_eval.compare_view.select`. Each metric has its own scale, so each row is
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
        ax.text(1.08, i, f"{_signed(e['diff'])} [{_signed(lo)}, {_signed(hi)}] {e['status']}", fontsize=7, va="center")
        ax.text(-1.08, i, label, fontsize=7, va="center", ha="right")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xticks([-1, 0, 1], labels=["", "0", ""])
    ax.set_title(f"A = {selection['a']}  vs  B = {selection['b']}: A − B with 95% intervals", fontsize=9)
    return _png(fig)


def text_comparison(selection: dict[str, Any], document: dict[str, Any]) -> str:
    """A plain text table of :func:`lycoris_eval.compare_view.select`'s entries."""
    titles = {m: info.get("title", m) for m, info in document.get("metrics", {}).items()}
    lines = [f"A = {selection['a']}   B = {selection['b']}   ({selection['kind']} table)", ""]
    head = f"{'metric':<20} {'context':<28} {'A − B':>11} {'95% interval':>25} {'A wins':>7} {'n':>4}  status"
    lines += [head, "-" * len(head)]
    for e in selection["entries"]:
        ci = "" if e["ci"] is None else f"[{_signed(e['ci'][0])}, {_signed(e['ci'][1])}]"
        wins = "" if e["a_wins"] is None else f"{e['a_wins']}/{e['n']}"
        status = e["status"] + (f" (add {plural(e['seeds_to_add'], 'seed')})" if e["seeds_to_add"] else "")
        diff = "" if e["diff"] is None else _signed(e["diff"])
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
