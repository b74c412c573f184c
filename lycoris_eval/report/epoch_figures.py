"""A training run's figures (issue #24), from the scores document's ``training_runs`` section:

* **curves** — the trade-off's metrics over the run's steps, one line per weight, each point
  with its 95 % interval, the no-adapter level dashed (one panel per metric, one row of
  panels per checkpoint);
* **trade-off** — the LyCORIS paper's scatter (its seed-003 figures): fidelity across,
  prompt following up, one connected line of epochs per weight, the Pareto-optimal points
  ringed and the recommended one starred.
"""

from __future__ import annotations

from typing import Any

from lycoris_eval.report.figures import _png, _pyplot
from lycoris_eval.scoring.metrics import METRICS

CURVE_ORDER = ("fidelity", "controllability", "diversity", "preservation")


def figure_name(run_name: str, kind: str) -> str:
    """The file of a run's figure (``curves`` or ``tradeoff``) in the report folder."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_name)
    return f"epochs-{safe}-{kind}.png"


def _x(point: dict[str, Any], index: int) -> float:
    return float(point["step"] if point.get("step") is not None else point.get("epoch") or index + 1)


def _axis_label(run: dict[str, Any]) -> str:
    members = run.get("in_grid") or []
    return "step" if members and all(m.get("step") is not None for m in members) else "epoch"


def epoch_curves_png(run: dict[str, Any], objectives: dict[str, Any], mark: str | None = None) -> bytes | None:
    wanted = [objectives[o]["metric"] for o in CURVE_ORDER if o in objectives]
    rows = []
    for ck in run["checkpoints"]:
        panels = [(m, [c for c in ck["curves"] if c["metric"] == m]) for m in wanted]
        panels = [(m, lines) for m, lines in panels if lines]
        if panels:
            rows.append((ck["checkpoint"], panels))
    if not rows:
        return None
    plt = _pyplot()
    n_cols = max(len(p) for _, p in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(3.6 * n_cols, 2.9 * len(rows)), squeeze=False)
    for r, (checkpoint, panels) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.axis("off")
                continue
            metric, lines = panels[c]
            for line in lines:
                pts = [p for p in line["points"] if p.get("mean") is not None]
                xs = [_x(p, i) for i, p in enumerate(pts)]
                ys = [p["mean"] for p in pts]
                lo = [p["mean"] - p["ci"][0] if p.get("ci") else 0.0 for p in pts]
                hi = [p["ci"][1] - p["mean"] if p.get("ci") else 0.0 for p in pts]
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2, label=f"@ {line['weight']:g}")
                if line.get("baseline") is not None:
                    ax.axhline(line["baseline"], color="grey", ls="--", lw=0.8)
            arrow = "↑" if METRICS[metric].higher_is_better else "↓"
            ax.set_title(f"{METRICS[metric].title} {arrow}", fontsize=8)
            ax.set_xlabel(_axis_label(run), fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)  # epochs and steps are whole
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel(str(checkpoint), fontsize=8)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, title="weight", title_fontsize=7)
    fig.suptitle(f"Training run {run['name']}: metrics over training (95% intervals; dashed: no adapter)", fontsize=9)
    fig.tight_layout()
    return _png(fig, mark)


def tradeoff_png(run: dict[str, Any], objectives: dict[str, Any], mark: str | None = None) -> bytes | None:
    # across: fidelity; up: what it costs — prompt following, else preservation, else diversity
    side = next((o for o in ("controllability", "preservation", "diversity") if o in objectives), None)
    if "fidelity" not in objectives or side is None:
        return None
    checkpoints = [ck for ck in run["checkpoints"] if any(p.get("fidelity") is not None for p in ck["tradeoff"])]
    if not checkpoints:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(checkpoints), figsize=(4.6 * len(checkpoints), 4.0), squeeze=False)
    fid, ctrl = objectives["fidelity"], objectives[side]
    for ax, ck in zip(axes[0], checkpoints):
        weights = sorted({p["weight"] for p in ck["tradeoff"]})
        for w in weights:
            pts = [p for p in ck["tradeoff"] if p["weight"] == w and p.get("fidelity") is not None]
            pts = [p for p in pts if p.get(side) is not None]
            if not pts:
                continue
            (line,) = ax.plot([p["fidelity"] for p in pts], [p[side] for p in pts], marker="o", ms=3)
            line.set_label(f"@ {w:g}")
            for p in pts:
                ax.annotate(
                    str(p.get("epoch") or p.get("step") or ("final" if p.get("final") else "")),
                    (p["fidelity"], p[side]),
                    fontsize=6,
                )
                if p.get("pareto"):
                    ax.scatter([p["fidelity"]], [p[side]], s=80, facecolors="none", edgecolors=line.get_color())
        pick = (ck.get("recommendation") or {}).get("pick")
        if pick and pick.get(side) is not None:
            ax.scatter(
                [pick["fidelity"]],
                [pick[side]],
                marker="*",
                s=220,
                color="gold",
                edgecolors="black",
                zorder=5,
            )
        ax.set_xlabel(
            f"{METRICS[fid['metric']].title} {'→ better' if fid['higher_is_better'] else '← better'}", fontsize=8
        )
        on = "/".join(ctrl["prompts"]) + " prompts" if isinstance(ctrl.get("prompts"), list) else "all prompts"
        ax.set_ylabel(f"{METRICS[ctrl['metric']].title} ({on}) {'↑' if ctrl['higher_is_better'] else '↓'}", fontsize=8)
        ax.set_title(str(ck["checkpoint"]), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, title="weight", title_fontsize=7)
    words = {"controllability": "prompt following", "preservation": "base-model preservation", "diversity": "diversity"}
    fig.suptitle(f"Training run {run['name']}: fidelity against {words[side]} (ringed: Pareto, ★: pick)", fontsize=9)
    fig.tight_layout()
    return _png(fig, mark)
