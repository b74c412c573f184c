"""The answer for a training run (issue #24), in plain words: which epoch and weight to
publish, from which epoch it over-trains, what it does to prompts that do not ask for it —
each with its evidence and how sure. Built only from the scores document's
``training_runs`` section (:mod:`lycoris_eval.compare.epoch_verdicts` decided everything);
this module words it, once, for every front end.
"""

from __future__ import annotations

from typing import Any

from lycoris_eval.report.epoch_figures import figure_name
from lycoris_eval.report.format import plural, signed
from lycoris_eval.scoring.metrics import METRICS

OBJECTIVE_WORDS = {
    "fidelity": "fidelity",
    "controllability": "prompt following",
    "diversity": "diversity",
    "preservation": "base-model preservation",
}


def point_words(p: dict[str, Any], weight: bool = True) -> str:
    """``epoch 5 (step 500) @ 1``: where a save sits in its run, with its weight."""
    if p.get("epoch") is not None:
        what = f"epoch {p['epoch']}" + (f" (step {p['step']})" if p.get("step") is not None else "")
        what += ", the final save" if p.get("final") else ""
    elif p.get("step") is not None:
        what = f"step {p['step']}" + (", the final save" if p.get("final") else "")
    else:
        what = "the final save" if p.get("final") else str(p.get("adapter"))
    return what + (f" @ {p['weight']:g}" if weight and p.get("weight") is not None else "")


def save_words(p: dict[str, Any]) -> str:
    """``inkrun-000005 (epoch 5) at weight 1``: the file to publish, where it sits, its weight."""
    return f"{p['adapter']} ({point_words(p, weight=False)}) at weight {p['weight']:g}"


def _metric(name: str, objectives: dict[str, Any], objective: str | None = None) -> str:
    title = METRICS[name].title if name in METRICS else name
    arrow = "↑ better" if METRICS.get(name) is None or METRICS[name].higher_is_better else "↓ better"
    info = objectives.get(objective or "") or {}
    prompts = info.get("prompts")
    on = f" on {'/'.join(prompts)} prompts" if isinstance(prompts, list) and prompts else ""
    return f"{title}{on} ({arrow})"


def _interval(t: dict[str, Any]) -> str:
    ci = t.get("ci")
    inner = f"95% CI {signed(ci[0])} to {signed(ci[1])}" if ci else "no interval"
    unit = " prompts" if t.get("unit") == "prompt" else ""  # Vendi: a row is a prompt
    return f"{signed(t['diff'])}, {inner}, n = {t.get('n')}{unit}"


def _publish(name: str, ck: dict[str, Any], objectives: dict[str, Any]) -> list[str]:
    rec = ck.get("recommendation") or {}
    where = ck["checkpoint"] or "the checkpoint"
    if not rec.get("pick"):
        return [f"On {where}: no epoch to recommend — {rec.get('why') or 'nothing to go by'}."]
    pick, top = rec["pick"], rec["most_faithful"]
    fid = (objectives.get("fidelity") or {}).get("metric")
    margin = rec.get("fidelity_margin")
    if pick == top:
        point = rec.get("pick_fidelity") or {}
        sure = f", 95% CI {point['ci'][0]:.4g} to {point['ci'][1]:.4g}, n = {point['n']}" if point.get("ci") else ""
        why = f"it is the most faithful point before any over-training ({_metric(fid, objectives, 'fidelity')} {pick['fidelity']:.4g}{sure})"
    else:
        vs = rec.get("fidelity_vs_most_faithful") or {}
        within = f"; within the margin of {margin:.3g}, a tenth of the adapter's effect" if margin else ""
        why = (
            f"it is as faithful as the most faithful point, {point_words(top)}, to within the margin "
            f"({_metric(fid, objectives, 'fidelity')} {_interval(vs)}{within})"
            if vs.get("diff") is not None
            else f"it is close to the most faithful point, {point_words(top)}"
        )
    ctrl = objectives.get("controllability")
    if ctrl and pick.get("controllability") is not None and len(rec.get("candidates") or []) > 1:
        why += (
            f", and of the {len(rec['candidates'])} such points it follows prompts best ({pick['controllability']:.4g})"
        )
    sentences = [f"On {where}, publish {save_words(pick)}: {why}."]
    sep = rec.get("separation")
    if sep:
        runner = point_words(sep["runner_up"])
        what = "follows prompts" if sep.get("objective") == "controllability" else "is faithful"
        if sep.get("clear"):
            sentences.append(f"The runner-up, {runner}, clearly {what} less well ({_interval(sep)}).")
        elif sep.get("seeds_to_add"):
            sentences.append(
                f"The data cannot yet tell it from {runner} ({_interval(sep)}): add "
                f"{plural(sep['seeds_to_add'], 'seed')} per prompt to separate them, or take either."
            )
        else:
            sentences.append(f"It and {runner} are practically the same here ({_interval(sep)}): either will do.")
    return sentences


def _overtraining(ck: dict[str, Any], objectives: dict[str, Any]) -> list[str]:
    where = ck["checkpoint"] or "the checkpoint"
    out: list[str] = []
    for v in ck.get("overtraining") or []:
        at = f"On {where} at weight {v['weight']:g}"
        status = v["status"]
        if status in ("over-trained", "costs grow"):
            side = v["evidence"][0]
            text = (
                f"{at}: {status} from {point_words(v['from'], weight=False)} — "
                f"{_metric(side['metric'], objectives, side['objective'])} {_interval(side)} against "
                f"{point_words(side['against'], weight=False)}"
            )
            if len(v["evidence"]) > 1:
                fid = v["evidence"][1]
                text += (
                    f", while {_metric(fid['metric'], objectives, 'fidelity')} gained less than the margin of "
                    f"{fid['margin']:.3g} ({_interval(fid)})"
                )
            else:
                text += " (fidelity is not measured: no reference images)"
            out.append(text + ".")
        elif status == "under-trained":
            fid = v["evidence"][0]
            out.append(
                f"{at}: still improving at the last save — "
                f"{_metric(fid['metric'], objectives, 'fidelity')} {_interval(fid)} over "
                f"{point_words(fid['against'], weight=False)}: train longer (or add the later saves)."
            )
        elif status == "no sign":
            more = v.get("seeds_to_add")
            tail = f" (to see smaller changes, add {plural(more, 'seed')} per prompt)" if more else ""
            out.append(f"{at}: no sign of over-training across these saves{tail}.")
        else:
            out.append(f"{at}: over-training cannot be judged (no side objective measured).")
        if v.get("missing"):
            names = ", ".join(point_words(m, weight=False) for m in v["missing"])
            out.append(f"{at}: {names}: no images, left out.")
    return out


def _value(p: dict[str, Any]) -> str:
    return f"{p['mean']:.4g}" + (f" (95% CI {p['ci'][0]:.4g} to {p['ci'][1]:.4g})" if p.get("ci") else "")


def _leakage(ck: dict[str, Any]) -> list[str]:
    leak = ck.get("leakage") or {}
    where = ck["checkpoint"] or "the checkpoint"
    if leak.get("status") != "measured":
        return [f"Side effects on {where}: not measured — {leak.get('why') or 'nothing to go by'}."]
    out = []
    lines = [x for x in leak["lines"] if x["metric"] == leak["lines"][0]["metric"]]
    for line in lines:
        pts = [p for p in line["points"] if p.get("mean") is not None]
        if len(pts) < 2:
            continue
        a, b = pts[0], pts[-1]
        growth = line.get("last_vs_first")
        change = f"; last against first {_interval(growth)}" if growth and growth.get("diff") is not None else ""
        out.append(
            f"Side effects on {where} at weight {line['weight']:g}, on prompts without the trigger word "
            f"(n = {b['n']}): {_metric(line['metric'], {})} {_value(a)} at {point_words(a, weight=False)}, "
            f"{_value(b)} at {point_words(b, weight=False)}{change}."
        )
    return out


def training_run_answers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per training run of the document: ``title``, ``sentences`` and the facts behind them."""
    section = document.get("training_runs") or {}
    objectives = section.get("objectives") or {}
    out = []
    for run in section.get("runs") or []:
        checkpoints = sorted(run["checkpoints"], key=lambda c: (not c.get("home"), str(c["checkpoint"])))
        members = run.get("in_grid") or []
        span = f"{plural(len(members), 'save')}, {point_words(members[0], False)} to {point_words(members[-1], False)}"
        sentences = []
        if (document.get("run") or {}).get("random_weights"):
            sentences.append("RANDOM WEIGHTS: the words below describe noise, not the images.")
        sentences.append(f"Training run {run['name']} ({span}; grouped by {run['grouped_by']}).")
        for ck in checkpoints:
            sentences += _publish(run["name"], ck, objectives)
        for ck in checkpoints:
            sentences += _overtraining(ck, objectives)
        for ck in checkpoints:
            sentences += _leakage(ck)
        out.append(
            {
                "training_run": run["name"],
                "title": f"Training run {run['name']}",
                "recommendations": {
                    str(c["checkpoint"]): (c.get("recommendation") or {}).get("pick") for c in checkpoints
                },
                "sentences": sentences,
            }
        )
    return out


def epochs_markdown(section: dict[str, Any] | None) -> list[str]:
    """``report.md``'s "Epochs" section: per training run and checkpoint, every (epoch,
    weight) point of the trade-off, Pareto-optimal ones and the pick marked, and where the
    figures are."""
    runs = (section or {}).get("runs") or []
    if not runs:
        return []
    objectives = section.get("objectives") or {}
    names = [o for o in ("fidelity", "controllability", "diversity", "preservation") if o in objectives]
    heads = [f"{OBJECTIVE_WORDS[o]}: {_metric(objectives[o]['metric'], objectives, o)}" for o in names]
    lines = ["## Epochs", "", f"Rule: {section.get('rule', '')}", ""]
    for run in runs:
        for ck in run["checkpoints"]:
            pick = (ck.get("recommendation") or {}).get("pick") or {}
            onset = {v["weight"]: v for v in ck.get("overtraining") or []}
            lines += [f"### {run['name']} on {ck['checkpoint']}", ""]
            head = ["save", "weight", *heads, "Pareto", "training"]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for p in sorted(ck["tradeoff"], key=lambda p: (p["weight"], p["index"])):
                values = [f"{p[o]:.4g}" if p.get(o) is not None else "–" for o in names]
                star = (
                    " ★ pick"
                    if pick and pick.get("adapter") == p["adapter"] and pick.get("weight") == p["weight"]
                    else ""
                )
                v = onset.get(p["weight"]) or {}
                frm = (v.get("from") or {}).get("adapter")
                state = v.get("status", "") if frm is None else ("over-trained" if _after(run, p, frm) else "")
                row = [
                    point_words(p, weight=False),
                    f"{p['weight']:g}",
                    *values,
                    ("yes" if p["pareto"] else "") + star,
                    state,
                ]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
        lines += [
            f"Figures: `{figure_name(run['name'], 'curves')}` (metrics over training), "
            f"`{figure_name(run['name'], 'tradeoff')}` (fidelity against what it costs).",
            "",
        ]
    return lines


def _after(run: dict[str, Any], p: dict[str, Any], onset_adapter: str) -> bool:
    order = [m["adapter"] for m in run.get("in_grid") or []]
    return onset_adapter in order and p["adapter"] in order and order.index(p["adapter"]) >= order.index(onset_adapter)
