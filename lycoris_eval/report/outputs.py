"""The report's files, written atomically into the run's report folder: ``scores.json``
(schema in docs/scores-schema.md), ``scores.csv`` and ``comparisons.csv``
(:func:`write_reports`), then ``report.md`` and the figures (:func:`write_report_files`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lycoris_eval import __version__
from lycoris_eval.fileio import write_atomic, write_atomic_bytes
from lycoris_eval.report.epoch_figures import epoch_curves_png, figure_name, tradeoff_png
from lycoris_eval.report.figures import RANDOM_WEIGHTS_MARK, heatmap_png, verdict_heatmap_png, weight_curve_png
from lycoris_eval.report.format import comparisons_csv, to_csv, to_json
from lycoris_eval.report.sections import markdown_report


def write_reports(document: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)

    paths = {"json": out_dir / "scores.json", "csv": out_dir / "scores.csv", "comparisons": out_dir / "comparisons.csv"}
    write_atomic(paths["json"], to_json(document))
    write_atomic(paths["csv"], to_csv(document))
    write_atomic(paths["comparisons"], comparisons_csv(document))
    return paths


FIGURES_INDEX = ".figures.json"  # what the figures in a report folder were drawn from


def write_report_files(tables: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.md, heatmap-METRIC.png and weights-METRIC.png into ``out_dir``.

    Drawing the figures is most of a cached re-evaluation's time (seconds for a dozen
    metrics), so when the folder already holds every figure drawn from the same tables by
    the same version, they are kept as they are; anything else draws them again."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md"}
    write_atomic(paths["markdown"], markdown_report(tables))
    drawn_from = {k: v for k, v in tables.items() if k != "warning"}  # words of the page, not drawn
    digest = hashlib.sha256(json.dumps([__version__, drawn_from], sort_keys=True, default=str).encode()).hexdigest()
    index = out_dir / FIGURES_INDEX
    try:
        kept = json.loads(index.read_text(encoding="utf-8"))
        names = kept["figures"] if kept.get("digest") == digest else None
    except (OSError, ValueError, AttributeError, KeyError):
        names = None
    if names is not None and all((out_dir / name).is_file() for name in names.values()):
        return {**paths, **{key: out_dir / name for key, name in names.items()}}
    figures = _draw_figures(tables, out_dir)
    write_atomic(index, json.dumps({"digest": digest, "figures": {k: p.name for k, p in figures.items()}}))
    return {**paths, **figures}


def _draw_figures(tables: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    mark = RANDOM_WEIGHTS_MARK if tables.get("random_weights") else None
    verdict_map = verdict_heatmap_png(tables, mark)
    if verdict_map:
        paths["verdicts"] = out_dir / "verdicts.png"
        write_atomic_bytes(paths["verdicts"], verdict_map)
    section = tables.get("training_runs") or {}
    for run in section.get("runs") or []:
        for kind, draw in (("curves", epoch_curves_png), ("tradeoff", tradeoff_png)):
            png = draw(run, section.get("objectives") or {}, mark)
            if png:
                paths[f"epochs-{run['name']}-{kind}"] = out_dir / figure_name(run["name"], kind)
                write_atomic_bytes(paths[f"epochs-{run['name']}-{kind}"], png)
    homes = (tables.get("verdicts") or {}).get("home") or {}
    for metric, info in tables["metrics"].items():
        title = info.get("title", metric)
        heat = heatmap_png(tables["heatmaps"][metric], title, mark) if metric in tables["heatmaps"] else None
        if heat:
            paths[f"heatmap-{metric}"] = out_dir / f"heatmap-{metric}.png"
            write_atomic_bytes(paths[f"heatmap-{metric}"], heat)
        curve = weight_curve_png(tables["summary"], metric, title, homes, mark)
        if curve:
            paths[f"weights-{metric}"] = out_dir / f"weights-{metric}.png"
            write_atomic_bytes(paths[f"weights-{metric}"], curve)
    return paths
