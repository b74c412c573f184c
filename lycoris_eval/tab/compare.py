"""The Evaluate tab's Compare view: pick A and B, see per-metric differences with their
95 % intervals and a forest plot, the transfer verdicts, and "add N seeds" for what is not
clear yet (resumes the same grid run with more seeds, then scores it again).

The work is in plain functions (:func:`compare_table`, :func:`verdict_rows`,
:func:`add_seeds`); :func:`compare_components` and :func:`wire_compare` lay it out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lycoris_eval.compare.select import choices, select
from lycoris_eval.errors import InputError, LycorisEvalError
from lycoris_eval.fileio import write_atomic_bytes
from lycoris_eval.report.figures import forest_png
from lycoris_eval.report.format import context_label, fmt_metric, plural
from lycoris_eval.tab.actions import error_text

COMPARE_COLUMNS = ["metric", "context", "A − B", "95% interval", "A better in", "n", "q", "status", "seeds to add"]
VERDICT_COLUMNS = ["adapter", "checkpoint", "trained on", "verdict", "weights", "why"]
MAX_SEEDS_OFFERED = 64
COMPARE_OUTPUTS = ("cmp_a", "cmp_b", "cmp_metric", "scores_path", "verdicts", "cmp_note")


def _num(value: Any) -> str:
    return "" if value is None else (fmt_metric(value) or "0")


def compare_table(document: dict[str, Any], a: str, b: str, metric: str = "") -> dict[str, Any]:
    """Rows for the table, the forest plot's selection, a note and the seeds to offer."""
    filters = {"metric": metric if metric and metric != "all" else None}
    selection = select(document, a, b, filters)
    rows = []
    for e in selection["entries"]:
        ci = "" if e["ci"] is None else f"{_num(e['ci'][0])} … {_num(e['ci'][1])}"
        share = "" if e["a_wins"] is None else f"{e['a_wins']} of {e['n']}"
        rows.append(
            {
                "metric": e["metric"] + ("" if e["higher_is_better"] else " ↓"),
                "context": context_label(e),
                "A − B": _num(e["diff"]),
                "95% interval": ci,
                "A better in": share,
                "n": e["n"],
                "q": "" if e["q"] is None else f"{e['q']:.3g}",
                "status": e["status"],
                "seeds to add": "" if e["seeds_to_add"] is None else e["seeds_to_add"],
            }
        )
    offer = suggested_seeds(selection["entries"])
    tests = selection["table"].get("tests", 0)
    fresh = selection.get("on_demand", 0)
    note = f"**A** = {a}, **B** = {b} ({selection['kind']} table; ↓ = lower is better). "
    if tests and len(rows) > fresh:
        note += (
            f"Clear = 95% interval excluding 0 and q ≤ 0.05 after Benjamini–Hochberg over the {tests} tests "
            "of this table."
        )
    elif not fresh:
        note += "No difference in this table has an interval yet (too few seeds, or metrics without one)."
    if fresh:
        stored = ((document.get("comparisons") or {}).get("coverage") or {}).get(selection["kind"], "some pairs")
        note += (
            f" {plural(fresh, 'row')} computed just now: this run's {selection['kind']} table stores {stored} only. "
            f"Their q counts all {selection.get('on_demand_tests', 0)} tests the table could hold (p = 1 where not "
            "computed), so a pair picked after seeing the values is not judged on its own; Vendi and centroid "
            "distance need a run that stores the pair (--all-pairs-up-to)."
        )
    if offer:
        note += f" To settle what is not clear yet: add about {plural(offer, 'seed')} per prompt."
    return {"rows": rows, "selection": selection, "note": note, "offer": offer}


def suggested_seeds(entries: list[dict[str, Any]]) -> int | None:
    """The most seeds any unclear entry asks for, capped at :data:`MAX_SEEDS_OFFERED`."""
    asks = [e["seeds_to_add"] for e in entries if e["seeds_to_add"] and not e["clear"]]
    return min(max(asks), MAX_SEEDS_OFFERED) if asks else None


def verdict_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for v in (document.get("verdicts") or {}).get("entries", []):
        rows.append(
            {
                "adapter": v["adapter"],
                "checkpoint": v["checkpoint"],
                "trained on": v["home"] or "unknown",
                "verdict": v["verdict"] or "no home checkpoint",
                "weights": ", ".join(f"{w:g}" for w in v["weights"]),
                "why": v["reason"],
            }
        )
    return rows


def read_scores(path: str) -> dict[str, Any]:
    if not path:
        raise InputError("evaluate something first: the Compare view reads its scores")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def add_seeds(
    services: Any, scores_path: str, count: int, rescore: Callable[[Path, dict[str, Any]], Any], progress: Any
) -> str:
    """Resume the run the scores belong to with ``count`` more seeds, then score it again
    with the same settings (``rescore(run_dir, document)``); returns the status line."""
    extend = getattr(services, "extend_run", None)
    if extend is None:
        raise InputError("adding seeds generates images: it needs the WebUI (the standalone app only scores)")
    document = read_scores(scores_path)
    run_dir = Path(scores_path).parent
    if not (run_dir / "manifest.json").is_file():
        raise InputError("adding seeds needs a grid run (these scores are of a folder or an X/Y/Z grid)")
    if not isinstance(count, (int, float)) or not 1 <= int(count) <= 1000:
        raise InputError(f"seeds to add: give 1..1000, got {count!r}")
    result = extend(run_dir.name, int(count), progress)
    if getattr(result, "interrupted", False) or getattr(result, "stopped", False):
        return f"Stopped after {result.generated} new images; press the button again to finish."
    rescore(run_dir, document)
    return (
        f"Added {plural(int(count), 'seed')}: {result.generated} new images"
        + (f", {result.failed} failed" if result.failed else "")
        + "; scored again. Press **Compare** to see the new intervals."
    )


def compare_components(gr: Any, table: Callable[..., Any], note: Callable[..., Any]) -> dict[str, Any]:
    """The Compare tab's components (inside the caller's ``gr.Tab``)."""
    c: dict[str, Any] = {}
    c["cmp_note"] = note("lycoris-eval-compare-note")
    with gr.Row():
        c["cmp_a"] = gr.Dropdown(choices=[], label="A", elem_id="lycoris-eval-compare-a")
        c["cmp_b"] = gr.Dropdown(choices=[], label="B", elem_id="lycoris-eval-compare-b")
        c["cmp_metric"] = gr.Dropdown(
            choices=["all"], value="all", label="Metric", elem_id="lycoris-eval-compare-metric"
        )
    c["cmp_go"] = gr.Button("Compare", elem_id="lycoris-eval-compare-go")
    c["cmp_table"] = table("lycoris-eval-compare-table", COMPARE_COLUMNS, wrap=True)
    c["cmp_plot"] = gr.Image(label="A − B with 95% intervals", visible=False, elem_id="lycoris-eval-forest")
    with gr.Row():
        c["seeds_n"] = gr.Number(value=4, precision=0, label="Seeds to add", elem_id="lycoris-eval-seeds-n")
        c["add_seeds"] = gr.Button("Add seeds to this run and score again", elem_id="lycoris-eval-add-seeds")
    c["add_status"] = gr.Markdown(elem_id="lycoris-eval-add-status")
    c["verdicts"] = table("lycoris-eval-verdicts", VERDICT_COLUMNS, "Does it transfer?", wrap=True)
    # where the evaluated scores are (the Compare button reads them): hidden text, not gr.State
    c["scores_path"] = gr.Textbox(visible=False, elem_id="lycoris-eval-scores-path")
    return c


def compare_outputs(gr: Any, document: dict[str, Any] | None, out_dir: Path | None, frame: Callable) -> dict:
    """The Compare view's part of an evaluation's outputs (cleared when ``document`` is None)."""
    if document is None:
        empty = gr.update(choices=[], value=None)
        return {"cmp_a": empty, "cmp_b": empty, "cmp_metric": gr.update(choices=["all"], value="all"),
                "scores_path": "", "verdicts": gr.update(visible=False), "cmp_note": ""}  # fmt: skip
    options = choices(document)
    first = [o for o in options if o.startswith(options[0].split(":", 1)[0])] if options else []
    rows = verdict_rows(document)
    judged = any(v["verdict"] for v in (document.get("verdicts") or {}).get("entries", []))
    if "comparisons" not in document:
        note = (
            "These scores are from an older version (schema 1): evaluate again to compare (the cache makes it quick)."
        )
    elif not options:
        note = "Nothing to compare: these scores have no paired images (prompt and seed seen twice)."
    else:
        note = "Pick **A** and **B** (two checkpoints, two adapters, two weights, or an adapter and baseline)."
    if rows and not judged:
        note += " Transfer verdicts need the checkpoint each adapter was trained on: fill *Trained on* and evaluate."
    return {
        "cmp_a": gr.update(choices=options, value=first[0] if first else None),
        "cmp_b": gr.update(choices=options, value=first[1] if len(first) > 1 else None),
        "cmp_metric": gr.update(choices=["all", *document.get("metrics", {})], value="all"),
        "scores_path": str(out_dir / "scores.json") if out_dir else "",
        "verdicts": gr.update(value=frame(rows, VERDICT_COLUMNS), visible=judged),
        "cmp_note": note,
    }


def wire_compare(gr: Any, c: dict[str, Any], services: Any, frame: Callable, rescore: Callable) -> dict[str, Any]:
    """Connect the Compare view's buttons; returns its handlers (for tests)."""

    def on_compare(path, a, b, metric):
        try:
            out = compare_table(read_scores(path), a or "", b or "", metric or "")
        except LycorisEvalError as exc:
            return error_text(exc, services), gr.update(visible=False), gr.update(visible=False), gr.update()
        png = forest_png(out["selection"], {})
        plot = gr.update(visible=False)
        if png:
            target = Path(path).parent / "forest.png"
            write_atomic_bytes(target, png)
            plot = gr.update(value=str(target), visible=True)
        table = gr.update(value=frame(out["rows"], COMPARE_COLUMNS), visible=bool(out["rows"]))
        return out["note"], table, plot, gr.update(value=out["offer"]) if out["offer"] else gr.update()

    def on_add_seeds(path, count, progress=gr.Progress()):  # noqa: B008
        from lycoris_eval.tab.actions import gradio_progress

        try:
            return add_seeds(services, path, int(count or 0), rescore, gradio_progress(progress))
        except LycorisEvalError as exc:
            return error_text(exc, services)

    c["cmp_go"].click(
        on_compare,
        inputs=[c["scores_path"], c["cmp_a"], c["cmp_b"], c["cmp_metric"]],
        outputs=[c["cmp_note"], c["cmp_table"], c["cmp_plot"], c["seeds_n"]],
    )
    c["add_seeds"].click(on_add_seeds, inputs=[c["scores_path"], c["seeds_n"]], outputs=[c["add_status"]])
    return {"compare": on_compare, "add_seeds": on_add_seeds}
