"""The answer people read first (issue #23): for each adapter, in plain words, where it
works (checkpoints, weights), where it is weaker or breaks, on which evidence, how sure,
and what to add to be surer — built only from what the scores document already holds
(paired comparisons with their intervals, the transfer verdicts), never from new numbers.

Rules, so that every front end says the same thing:

* **Works** at a weight on a checkpoint: fidelity to the reference (the first of
  :data:`FIDELITY` the run has) is *clearly* better than that checkpoint's own no-adapter
  images at the same prompts and seeds (q ≤ 0.05 and a 95 % interval excluding 0), and
  text alignment is not clearly worse.
* **Best weight**: among the weights where it works, the largest fidelity gain — always
  with its interval and number of pairs, and with the weights it is *not* clearly better
  than (from the weight-against-weight comparisons).
* **Relative to what**: the transfer verdicts when the adapter's home checkpoint is known
  (metadata, marked, or the same-family rule); otherwise each checkpoint is judged
  against its own no-adapter images, and the answer says so.
* **How sure**: how many of the differences used are clear, and the most seeds any
  unclear one needs (``seeds_to_add``), as "add N seeds".
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

from lycoris_eval.report.epochs_answer import training_run_answers
from lycoris_eval.report.format import plural, signed
from lycoris_eval.scoring.metrics import METRICS

# fidelity to the reference set, in the order the answer prefers them (DINOv2 first: the
# paper's main fidelity measure; Gram style loss can fail the trust check)
FIDELITY = ("image_similarity", "centroid_distance", "style_loss_ref", "style_loss_tutorial")
ALIGNMENT = "text_alignment"
VERDICT_WORDS = {
    "home": "its home checkpoint",
    "transfers": "transfers",
    "weaker": "weaker than at home",
    "breaks": "breaks",
    "not enough evidence": "not enough evidence yet",
}


def _sides(entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """(adapter side, no-adapter side, which letter is the adapter) of a baseline entry."""
    a, b = entry["a"], entry["b"]
    if a.get("adapter") and not b.get("adapter"):
        return a, b, "a"
    if b.get("adapter") and not a.get("adapter"):
        return b, a, "b"
    return None


def _gain(entry: dict[str, Any], letter: str) -> tuple[float, list[float] | None]:
    """The difference oriented as "adapter better than no adapter" (positive = better)."""
    sign = 1.0 if (letter == "a") == bool(entry.get("higher_is_better", True)) else -1.0
    ci = entry.get("ci")
    interval = sorted([sign * ci[0], sign * ci[1]]) if ci else None
    return sign * float(entry["diff"]), interval


def _evidence(entry: dict[str, Any], letter: str) -> str:
    gain, ci = _gain(entry, letter)
    title = METRICS[entry["metric"]].title if entry["metric"] in METRICS else entry["metric"]
    arrow = "↑ better" if entry.get("higher_is_better", True) else "↓ better"
    interval = f", 95% CI {signed(ci[0])} to {signed(ci[1])}" if ci else ", no interval (too few pairs)"
    return f"{title} ({arrow}) {signed(gain)} against no adapter{interval}, n = {entry['n']} pairs"


class _Index:
    """The comparison entries the answer reads, looked up once per document (not once per
    adapter): baseline entries by (adapter, checkpoint, weight, metric), with which side is
    the adapter, and weight-against-weight entries by (adapter, checkpoint)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.baseline: dict[tuple, tuple[dict[str, Any], str]] = {}
        self.weights: dict[tuple, list[dict[str, Any]]] = {}
        for e in entries:
            if e.get("kind") == "weight":
                self.weights.setdefault((e["a"].get("adapter"), e["a"].get("checkpoint")), []).append(e)
            if e.get("kind") != "baseline" or e.get("diff") is None:
                continue
            sides = _sides(e)
            if sides is None:
                continue
            ad, _base, letter = sides
            self.baseline[(ad["adapter"], ad["checkpoint"], ad["weight"], e["metric"])] = (e, letter)


def _weights_not_beaten(index: _Index, adapter: str, checkpoint: str, best: float) -> list[float]:
    """Other weights the best one is not clearly better than (weight-against-weight entries)."""
    out = set()
    for e in index.weights.get((adapter, checkpoint), []):
        weights = (e["a"].get("weight"), e["b"].get("weight"))
        if best not in weights or e["metric"] not in FIDELITY:
            continue
        other = weights[1] if weights[0] == best else weights[0]
        best_letter = "a" if weights[0] == best else "b"
        if not (e.get("clear") and e.get("better") == best_letter):
            out.add(other)
    return sorted(w for w in out if w is not None)


def adapter_answer(document: dict[str, Any], adapter: str, index: _Index | None = None) -> dict[str, Any]:
    """The answer for one adapter: ``sentences`` to read, and the facts behind them
    (``index``: the document's entries, already indexed by :func:`answers`)."""
    if index is None:
        index = _Index((document.get("comparisons") or {}).get("entries") or [])
    mine = {k: v for k, v in index.baseline.items() if k[0] == adapter}
    metrics = {k[3] for k in mine}
    fidelity = next((m for m in FIDELITY if m in metrics), None)
    checkpoints = sorted({k[1] for k in mine}, key=str)
    used: list[dict[str, Any]] = []
    works: dict[str, list[float]] = {}
    best: dict[str, dict[str, Any]] = {}
    costs: dict[str, list[float]] = {}
    for checkpoint in checkpoints:
        weights = sorted({k[2] for k in mine if k[1] == checkpoint and k[2] is not None})
        for w in weights:
            fid = mine.get((adapter, checkpoint, w, fidelity)) if fidelity else None
            align = mine.get((adapter, checkpoint, w, ALIGNMENT))
            for found in (fid, align):
                if found:
                    used.append(found[0])
            hurt = bool(align and align[0].get("clear") and align[0].get("better") != align[1])
            if hurt:
                costs.setdefault(checkpoint, []).append(w)
            if fid and fid[0].get("clear") and fid[0].get("better") == fid[1] and not hurt:
                works.setdefault(checkpoint, []).append(w)
                gain = _gain(*fid)[0]
                if checkpoint not in best or gain > best[checkpoint]["gain"]:
                    best[checkpoint] = {"weight": w, "gain": gain, "entry": fid[0], "letter": fid[1]}
    verdicts = [v for v in (document.get("verdicts") or {}).get("entries", []) if v.get("adapter") == adapter]
    section = document.get("verdicts") or {}
    home = (section.get("home") or {}).get(adapter)
    source = (section.get("home_source") or {}).get(adapter)
    sentences = _sentences(adapter, fidelity, checkpoints, works, best, costs, verdicts, home, source, index)
    if (document.get("run") or {}).get("random_weights"):  # every answer of such a run, said first
        sentences.insert(0, "RANDOM WEIGHTS: the words below describe noise, not the images.")
    unclear = [e for e in used if not e.get("clear")]
    to_add = max((e.get("seeds_to_add") or 0 for e in unclear), default=0)
    if used:
        sure = f"How sure: {len(used) - len(unclear)} of {plural(len(used), 'difference')} used here are clear"
        if unclear and to_add:
            sure += f"; to settle the rest, add {plural(to_add, 'seed')} per prompt and score again"
        elif unclear:
            sure += "; the rest have no clear direction (more seeds would tell)"
        sentences.append(sure + ".")
    return {
        "adapter": adapter,
        "fidelity_metric": fidelity,
        "works": works,
        "best": {
            c: {"weight": b["weight"], "gain": b["gain"], "ci": _gain(b["entry"], b["letter"])[1], "n": b["entry"]["n"]}
            for c, b in best.items()
        },  # fmt: skip
        "text_alignment_cost": costs,
        "home": home,
        "home_source": source,
        "seeds_to_add": to_add,
        "differences_used": len(used),
        "differences_clear": len(used) - len(unclear),
        "sentences": sentences,
    }


def _sentences(
    adapter: str,
    fidelity: str | None,
    checkpoints: list[str],
    works: dict[str, list[float]],
    best: dict[str, dict[str, Any]],
    costs: dict[str, list[float]],
    verdicts: list[dict[str, Any]],
    home: str | None,
    source: str | None,
    index: _Index,
) -> list[str]:
    out: list[str] = []
    if fidelity is None:
        out.append(
            f"{adapter}: no reference set was given, so nothing here says whether it hits its style; "
            "add the adapter's training images as the reference set to get an answer."
        )
        return out
    for checkpoint in checkpoints:
        if checkpoint in works:
            b = best[checkpoint]
            rest = [w for w in _weights_not_beaten(index, adapter, checkpoint, b["weight"]) if w in works[checkpoint]]
            tie = f"; not clearly better than weight {', '.join(f'{w:g}' for w in rest)}" if rest else ""
            out.append(
                f"On {checkpoint} it works at weight {', '.join(f'{w:g}' for w in works[checkpoint])}; "
                f"best at {b['weight']:g}: {_evidence(b['entry'], b['letter'])}{tie}."
            )
        else:
            out.append(f"On {checkpoint} it has no clear effect toward the reference at any weight tried.")
        if checkpoint in costs:
            out.append(
                f"On {checkpoint} it costs prompt following (text alignment clearly worse than no adapter) "
                f"at weight {', '.join(f'{w:g}' for w in costs[checkpoint])}."
            )
    judged = [v for v in verdicts if v.get("verdict")]
    if home and judged:
        how = {"metadata": "from its training metadata", "marked": "as marked", "same family": "same-family rule"}
        words = "; ".join(
            f"{v['checkpoint']}: {VERDICT_WORDS.get(v['verdict'], v['verdict'])}"
            + (f" (weight {', '.join(f'{w:g}' for w in v['weights'])})" if v.get("weights") else "")
            for v in judged
            if v["checkpoint"] != home
        )
        if words:
            out.append(f"Against its home checkpoint {home} ({how.get(source or '', source)}): {words}.")
    else:
        ranked = sorted(best, key=lambda c: -best[c]["gain"])
        relative = f" Largest gain on {ranked[0]}." if len(ranked) > 1 else ""
        out.append(
            "Its training checkpoint is unknown, so each checkpoint is judged against its own no-adapter images "
            f"(mark it with --trained-on ADAPTER=CHECKPOINT for transfer verdicts).{relative}"
        )
    return out


def answers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer for every training run (:mod:`.epochs_answer`: which epoch, at which
    weight), then for every adapter of the run, by name."""
    entries = (document.get("comparisons") or {}).get("entries") or []
    names = sorted(
        {side.get("adapter") for e in entries for side in (e["a"], e["b"]) if side.get("adapter")}
        | set(document.get("adapters") or {})
    )
    index = _Index(entries)
    runs = training_run_answers(document)
    # a run's saves are answered by the run; of them only the picked ones get their own
    # answer (where that save works, at which weight, its transfer verdicts)
    in_runs = {m["adapter"] for r in (document.get("training_runs") or {}).get("runs") or [] for m in r["in_grid"]}
    picked = {p["adapter"] for r in runs for p in r["recommendations"].values() if p}
    names = [n for n in names if n not in in_runs or n in picked]
    return runs + [adapter_answer(document, name, index) for name in names]


def answer_markdown(found: list[dict[str, Any]]) -> list[str]:
    """``report.md``'s first section, from :func:`answers`."""
    if not found:
        return []
    lines = ["## The answer", ""]
    for a in found:
        lines += [f"### {a.get('title') or a['adapter']}", ""] + [f"* {s}" for s in a["sentences"]] + [""]
    return lines


def answer_text(found: list[dict[str, Any]], width: int | None = None) -> str:
    """The answer for a terminal, from :func:`answers`: one block per adapter, sentences
    wrapped to ``width``."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    blocks = []
    for a in found:
        lines = [a.get("title") or a["adapter"]]
        for s in a["sentences"]:
            lines += textwrap.wrap(s, width, initial_indent="  - ", subsequent_indent="    ", break_on_hyphens=False)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
