"""The Evaluate tab: one Gradio UI for the WebUI tab (``on_ui_tabs``) and the standalone
app (``python -m lycoris_eval ui``), same code path.

:func:`run_evaluation` does the work and returns plain data (testable without Gradio);
:func:`build_ui` lays it out. Gradio is imported lazily; the layout works on 3.41 (A1111)
and uses nothing removed in 4.x (Forge).
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BusyError, InputError, LycorisEvalError, PathRefused
from .evaluate import TRUST_METRICS, EvalConfig, evaluate
from .metrics import DEFAULT_METRICS, METRICS
from .plots import write_report_files
from .prompts import parse_trigger_mapping
from .report import fmt_metric, report_tables, round_rank, round_sig, write_reports
from .run_store import RunStore, list_runs
from .safe_paths import resolve_allowed

SOURCE_RUN = "Run"
SOURCE_FOLDER = "Folder"
SOURCE_XYZ = "Last X/Y/Z grid"
# how a user turns on the random-weights dry run: the CLI flag standalone, the setting in the WebUI
CLI_RANDOM_WEIGHTS_HINT = "--random-weights"
WEBUI_RANDOM_WEIGHTS_HINT = "Settings → LyCORIS Eval → Dry run: random scoring weights"
NOT_YET = "Nothing evaluated yet: choose a source and press **Evaluate**."


@dataclass
class UiServices:
    outputs_root: Path
    data_path: Path
    allowed_roots: Callable[[], list[Path]]
    eval_config: Callable[[], EvalConfig]
    last_xyz: Callable[[], Path | None] = lambda: None
    lock: Callable[[], AbstractContextManager[Any]] = nullcontext
    default_metrics: Callable[[], list[str]] = lambda: list(DEFAULT_METRICS)
    cancel: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)
    # named in the random-weights banner: the WebUI passes WEBUI_RANDOM_WEIGHTS_HINT
    random_weights_hint: str = CLI_RANDOM_WEIGHTS_HINT


@dataclass
class EvaluationView:
    status: str
    document: dict[str, Any]
    tables: dict[str, Any]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)
    thumbnails: list[tuple[str, str]] = field(default_factory=list)


def run_choices(services: UiServices) -> list[str]:
    out = []
    for run in list_runs(services.outputs_root):
        label = f"{run['run_id']}" + (f" — {run['name']}" if run["name"] else "")
        out.append(f"{label} ({run['done_images']}/{run['total_images']} images)")
    return out


def _run_id(choice: str) -> str:
    return choice.split(" ", 1)[0].strip()


def run_summary(services: UiServices, choice: str) -> str:
    """A run's spec in one glance (shown under the run picker)."""
    if not choice:
        return ""
    try:
        store = RunStore(services.outputs_root, _run_id(choice))
        spec = store.read_manifest()["spec"]
    except (InputError, KeyError):
        return f"run {choice!r} not found"
    seeds = spec.get("seeds", [])
    parts = [
        f"**checkpoints** {', '.join(spec.get('checkpoints') or ['(loaded one)'])}",
        f"**adapters** {', '.join(spec.get('adapters', []))}",
        f"**weights** {', '.join(f'{w:g}' for w in spec.get('weights', []))}",
        f"**prompts** {len(spec.get('prompts', []))}",
        f"**seeds** {len(seeds)}",
    ]
    return " · ".join(parts)


def save_uploads(services: UiServices, files: list[Any] | None) -> Path | None:
    """Reference images uploaded in the tab, copied into the run store (kept for reuse)."""
    import shutil
    import uuid

    if not files:
        return None
    target = services.outputs_root / "uploads" / f"refs-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True, exist_ok=True)
    for item in files:
        source = Path(getattr(item, "name", item))
        shutil.copy(source, target / source.name)
    return target


def filter_cells(frame: Any, prompt_type: str) -> Any:
    if frame is None or not prompt_type or prompt_type == "all":
        return frame
    return frame[frame["prompt type"] == prompt_type]


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def xyz_capture(services: UiServices) -> tuple[Path, int, float] | None:
    """The last X/Y/Z grid's folder, its number of images and the newest image's mtime."""
    folder = services.last_xyz()
    if folder is None:
        return None
    newest, count = 0.0, 0
    for path in Path(folder).glob("*.png"):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:  # replaced by a new plot while we look
            continue
        count += 1
    return (Path(folder), count, newest) if count else None


def xyz_summary(services: UiServices, now: float | None = None) -> str:
    """Which grid "Last X/Y/Z grid" would score: when it was captured and how many images.

    The capture folder survives restarts, so this may be a grid from an earlier session."""
    capture = xyz_capture(services)
    if capture is None:
        return "No X/Y/Z plot grid captured yet: in txt2img choose *Script → X/Y/Z plot* and **Generate**."
    _folder_path, count, newest = capture
    when = _dt.datetime.fromtimestamp(newest).strftime("%Y-%m-%d %H:%M:%S")
    age = _ago((time.time() if now is None else now) - newest)
    return f"**Last X/Y/Z grid:** {count} image{'s' if count != 1 else ''}, captured {when} ({age})"


def _folder(services: UiServices, path: str, what: str) -> Path:
    try:
        resolved = resolve_allowed(path, services.allowed_roots(), services.data_path)
    except PathRefused as exc:
        raise InputError(f"{what}: {exc}") from None
    if not resolved.is_dir():
        raise InputError(f"{what}: not a folder: {path}")
    return resolved


def run_evaluation(
    services: UiServices,
    source: str,
    run_choice: str,
    folder: str,
    references: str,
    distractors: str,
    trigger: str,
    metrics: list[str],
    device: str,
    progress: Callable[[int, int, str], None] | None = None,
    uploaded_references: Path | None = None,
) -> EvaluationView:
    notify = progress or (lambda done, total, message: None)
    manifest, source_line = None, None
    if source == SOURCE_RUN:
        if not run_choice:
            raise InputError("choose a run")
        store = RunStore(services.outputs_root, _run_id(run_choice))
        if not store.exists():
            raise InputError(f"unknown run {_run_id(run_choice)!r}")
        images_dir, out_dir, manifest = store.images_dir, store.dir, store.read_manifest()
    elif source == SOURCE_XYZ:
        captured = services.last_xyz()
        if captured is None:
            raise InputError("no X/Y/Z plot has run since the WebUI started")
        images_dir, out_dir = captured, captured / "lycoris-eval"
        source_line = xyz_summary(services)
    else:
        images_dir = _folder(services, folder, "folder")
        out_dir = images_dir / "lycoris-eval"
    config = services.eval_config()
    config.metrics = tuple(metrics) if metrics else DEFAULT_METRICS
    if device and device != "settings":
        config.device = device
    if uploaded_references is not None:
        config.reference_dir = uploaded_references
    elif references.strip():
        config.reference_dir = _folder(services, references.strip(), "reference folder")
    else:
        config.reference_dir = None
    config.distractor_dirs = tuple(
        _folder(services, line.strip(), "distractor folder") for line in distractors.splitlines() if line.strip()
    )
    config.trigger = parse_trigger_mapping([t for t in trigger.splitlines() if t.strip()])
    config.should_stop = services.cancel.is_set
    # chunks of one encoder batch: progress (and Cancel) answer per batch, not per 32 images
    config.chunk_images = max(1, min(config.chunk_images, config.batch_size))
    if not services.busy.acquire(blocking=False):
        raise BusyError("an evaluation is already running; wait for it or press Cancel")
    try:
        services.cancel.clear()
        if services.lock is not nullcontext:
            notify(0, 0, "waiting for the WebUI to finish its current job")
        with services.lock():
            notify(0, 0, "reading the images and loading the scoring models")
            document = evaluate(images_dir, config, notify)
    finally:
        services.busy.release()
    notify(0, 0, "writing the reports and plots")
    if source == SOURCE_RUN:
        done, failed = len(store.finished()), len(store.failures())
        total = int(manifest.get("total_images") or 0)
        if done + failed < total:
            document["run"]["notes"].append(
                f"run {store.run_id} is incomplete ({done} of {total} images finished): it is still being written "
                "or was interrupted; the finished images were scored"
            )
    write_reports(document, out_dir)
    tables = report_tables(document, manifest)
    if tables.get("warning"):  # report.md is read here too: name the switch the user has
        tables["warning"] = tab_words(tables["warning"], services)
    files = write_report_files(tables, out_dir)
    view = EvaluationView(
        status=_status(document, out_dir, services, source_line),
        document=document,
        tables=tables,
        out_dir=out_dir,
        files=[out_dir / "scores.json", out_dir / "scores.csv", *files.values()],
        plots=[(str(p), name) for name, p in files.items() if name != "markdown"],
        thumbnails=thumbnails(document, images_dir),
    )
    return view


def tab_words(text: str, services: UiServices) -> str:
    """Messages written for the command line, in the words of the page they are shown on."""
    text = text.replace(CLI_RANDOM_WEIGHTS_HINT, services.random_weights_hint)
    text = text.replace("pass --reference DIR", "fill in the target reference folder")
    return text.replace("(--reference)", "(target reference folder)")


def gradio_progress(progress: Callable[..., Any]) -> Callable[[int, int, str], None]:
    """The evaluation's ``(done, total, message)`` callback as ``gr.Progress`` calls:
    ``progress(done/total, desc="encoding images 12/40")``; a message without a count
    (total 0: loading models, writing reports) keeps the bar where it is."""
    fraction = [0.0]

    def report(done: int, total: int, message: str) -> None:
        if total > 0:
            fraction[0] = min(max(done / total, 0.0), 1.0)
            message = f"{message} {done}/{total}"
        progress(fraction[0], desc=message)

    return report


def _status(
    document: dict[str, Any], out_dir: Path, services: UiServices | None = None, source_line: str | None = None
) -> str:
    run = document["run"]
    words = (lambda text: tab_words(text, services)) if services is not None else (lambda text: text)
    lines = []
    if run.get("warning"):
        lines.append(f"**{words(run['warning'])}**")
    if run.get("partial"):
        part = run["partial"]
        lines.append(f"**Partial results:** cancelled after {part['images_scored']} of {part['images_total']} images.")
    if source_line:
        lines.append(source_line)
    lines.append(f"Scored {run['n_images']} images in {run['n_cells']} cells; reports in `{out_dir}`.")
    lines += [f"* {words(note)}" for note in run.get("notes", []) if note != run.get("warning")]
    if run.get("skipped"):
        lines.append(f"* {len(run['skipped'])} file(s) skipped: " + "; ".join(s["error"] for s in run["skipped"][:5]))
    if run.get("generation_failures"):
        lines.append(f"* {len(run['generation_failures'])} image(s) could not be generated (see the report)")
    return "\n".join(lines)


def thumbnails(document: dict[str, Any], images_dir: Path, per_metric: int = 1) -> list[tuple[str, str]]:
    """Best and worst cell per image-level metric, each next to the baseline at the same seed."""
    baseline: dict[tuple[Any, Any, Any], str] = {}
    for cell in document["cells"]:
        if cell.get("baseline"):
            for name, seed in zip(cell["images"], cell.get("image_seeds", [])):
                baseline[(cell["checkpoint"], cell["prompt"], seed)] = name
    out: list[tuple[str, str]] = []
    for metric, info in document["metrics"].items():
        if info["level"] != "image":
            continue
        scored = [
            c
            for c in document["cells"]
            if not c.get("baseline") and (c["metrics"].get(metric) or {}).get("mean") is not None
        ]
        if len(scored) < 2:
            continue
        scored.sort(key=lambda c: c["metrics"][metric]["mean"], reverse=info["higher_is_better"])
        for tag, cell in (("best", scored[0]), ("worst", scored[-1])):
            name = cell["images"][0]
            seed = (cell.get("image_seeds") or [None])[0]
            label = f"{metric} {tag}: {cell['checkpoint']} · {cell['adapter']} @{cell['weight']}"
            out.append((str(images_dir / name), f"{label} = {cell['metrics'][metric]['mean']:.4g}"))
            base = baseline.get((cell["checkpoint"], cell["prompt"], seed))
            if base:
                out.append((str(images_dir / base), f"{metric} {tag}: baseline, seed {seed}"))
    return out


CELL_COLUMNS = ["checkpoint", "adapter", "type", "trained on", "weight", "prompt type", "n"]
SUMMARY_COLUMNS = ["checkpoint", "adapter", "type", "weight", "overall rank"]
BEST_COLUMNS = ["adapter", "checkpoint", "weight", "overall rank"]
BY_TYPE_COLUMNS = ["adapter type", "checkpoint"]
TRUST_COLUMNS = ["metric", "distractor", "adapter", "accuracy", "AUC", "verdict"]
# display only (scores.json / scores.csv keep full precision): metric values to 4 significant
# digits, ranks to 2 decimals; "" where there is no value (never NaN: it is not JSON)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A table that always has its real headers, also when it has no row."""
    import pandas as pd

    return pd.DataFrame([[_blank(row.get(c)) for c in columns] for row in rows], columns=columns, dtype=object)


def _frames(view: EvaluationView) -> dict[str, Any]:
    metrics = list(view.tables["metrics"])

    def mean_std(row: dict[str, Any], name: str) -> str:
        mean, std = row.get(name), row.get(f"{name}_std")
        if mean is None:
            return ""
        spread = round_sig(std, 2)
        return fmt_metric(mean) + ("" if spread is None else f" ± {spread:.2g}")

    cells = _frame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "trained on": r["trained_on"] or "",
                "weight": round_sig(r["weight"]),
                "prompt type": r["prompt_type"],
                "n": r["n_images"],
                **{m: mean_std(r, m) for m in metrics},
            }
            for r in view.tables["cells"]
        ],
        CELL_COLUMNS + metrics,
    )
    summary = _frame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "weight": round_sig(r["weight"]),
                "overall rank": round_rank(r["overall_rank"]),
                **{f"{m} rank": round_rank(r.get(f"{m}_rank")) for m in metrics},
            }
            for r in view.tables["summary"]
        ],
        SUMMARY_COLUMNS + [f"{m} rank" for m in metrics],
    )
    best = _frame(
        [
            {
                "adapter": r["adapter"],
                "checkpoint": r["checkpoint"],
                "weight": round_sig(r["weight"]),
                "overall rank": round_rank(r["overall_rank"]),
            }
            for r in view.tables["best_weight"]
        ],
        BEST_COLUMNS,
    )
    by_type = _frame(
        [
            {
                "adapter type": r["adapter_type"] or "unknown",
                "checkpoint": r["checkpoint"],
                **{m: round_sig(r.get(m)) for m in metrics},
            }
            for r in view.tables["by_type"]
        ],
        BY_TYPE_COLUMNS + metrics,
    )
    trust = _frame(
        [
            {
                "metric": t.get("metric"),
                "distractor": t.get("distractor"),
                "adapter": t.get("adapter") or "(all)",
                "accuracy": round_sig(t.get("accuracy")),
                "AUC": round_sig(t.get("auc")),
                "verdict": t.get("verdict"),
            }
            for t in view.tables["trust"]
        ],
        TRUST_COLUMNS,
    )
    return {"cells": cells, "summary": summary, "trust": trust, "by_type": by_type, "best": best}


def empty_notes(view: EvaluationView, frames: dict[str, Any]) -> dict[str, str]:
    """For each empty table (and the plots), one line saying why it is empty; "" otherwise."""
    document = view.document
    adapter_rows = [r for r in view.tables["summary"] if r.get("adapter") is not None]
    no_adapter = "the source has no image made with an adapter (only no-adapter images)"
    notes = {name: "" for name in ("cells", "summary", "best", "by_type", "trust", "plots")}
    if frames["cells"].empty:
        notes["cells"] = "No cells: no image of the source could be grouped and scored."
    if frames["summary"].empty:
        notes["summary"] = "No summary: no cell was scored."
    unranked = "ranks compare at least two adapter × weight cells of a checkpoint with a metric value"
    if frames["best"].empty:
        notes["best"] = f"No best weight: {no_adapter if not adapter_rows else unranked}."
    if frames["by_type"].empty:
        why = no_adapter if not adapter_rows else "no adapter cell has a metric value"
        notes["by_type"] = f"No averages by adapter type: {why}."
    if frames["trust"].empty:
        if not document["run"].get("distractor_dirs") or not document["run"].get("reference_dir"):
            notes["trust"] = (
                "The trust check needs a reference set and at least one distractor set "
                "(fill in the target reference folder and the distractor folders)."
            )
        else:
            notes["trust"] = (
                "No trust verdict: the check uses "
                + ", ".join(TRUST_METRICS)
                + "; none of them was selected or has a value."
            )
    if not view.plots:
        notes["plots"] = "No plots: heatmaps and weight curves need adapter cells with a metric value."
    return notes


OUTPUTS = (
    "status",
    "cells",
    "cells_note",
    "summary",
    "summary_note",
    "best",
    "best_note",
    "by_type",
    "by_type_note",
    "plots",
    "plots_note",
    "thumbs",
    "trust",
    "trust_note",
    "files",
    "all_cells",
)


def _table(gr: Any, frame: Any) -> Any:
    """A table's update: shown with its headers when it has rows, else hidden (its note says why)."""
    return gr.update(value=frame, visible=not frame.empty)


def _source_updates(gr: Any, services: UiServices, source: str) -> list[Any]:
    """Show the controls of the chosen source (run picker, folder, the X/Y/Z capture's summary)."""
    return [
        gr.update(visible=source == SOURCE_RUN),
        gr.update(visible=source == SOURCE_RUN),
        gr.update(visible=source == SOURCE_FOLDER),
        gr.update(value=xyz_summary(services) if source == SOURCE_XYZ else "", visible=source == SOURCE_XYZ),
    ]


def build_ui(services: UiServices) -> Any:
    """The tab's Blocks (used as the WebUI tab and as the standalone app)."""
    import gradio as gr

    def table(elem_id: str, columns: list[str], label: str | None = None, wrap: bool = False) -> Any:
        return gr.Dataframe(
            value=_frame([], columns),
            headers=columns,
            interactive=False,
            visible=False,
            wrap=wrap,
            label=label,
            elem_id=elem_id,
        )

    def note(elem_id: str) -> Any:
        return gr.Markdown(NOT_YET, elem_id=elem_id, elem_classes=["lycoris-eval-note"])

    with gr.Blocks(analytics_enabled=False, css=None) as blocks:
        with gr.Row(elem_id="lycoris-eval-tab"):
            with gr.Column(scale=1):
                source = gr.Radio(
                    [SOURCE_RUN, SOURCE_XYZ, SOURCE_FOLDER],
                    value=SOURCE_RUN,
                    label="Source",
                    elem_id="lycoris-eval-source",
                )
                xyz_info = gr.Markdown(visible=False, elem_id="lycoris-eval-xyz-info")
                run = gr.Dropdown(choices=run_choices(services), label="Run (newest first)", elem_id="lycoris-eval-run")
                run_info = gr.Markdown(elem_id="lycoris-eval-run-info")
                folder = gr.Textbox(
                    label="Folder (inside the allowed roots)", visible=False, elem_id="lycoris-eval-folder"
                )
                refresh = gr.Button("Refresh", elem_id="lycoris-eval-refresh-runs")
                references = gr.Textbox(label="Target reference folder", elem_id="lycoris-eval-ref")
                reference_files = gr.File(
                    label="…or upload reference images",
                    file_count="multiple",
                    file_types=["image"],
                    elem_id="lycoris-eval-ref-upload",
                )
                distractors = gr.Textbox(
                    label="Distractor folders (one per line)", lines=2, elem_id="lycoris-eval-distractors-tab"
                )
                trigger = gr.Textbox(
                    label="Trigger mapping (WORD=TEXT per line)", lines=2, elem_id="lycoris-eval-trigger-tab"
                )
                metrics = gr.CheckboxGroup(
                    choices=list(METRICS),
                    value=[m for m in services.default_metrics() if m in METRICS] or list(DEFAULT_METRICS),
                    label="Metrics",
                    elem_id="lycoris-eval-metrics",
                )
                device = gr.Dropdown(
                    choices=["settings", "auto", "cpu", "cuda", "mps"],
                    value="settings",
                    label="Device",
                    elem_id="lycoris-eval-device",
                )
                with gr.Row():
                    go = gr.Button("Evaluate", variant="primary", elem_id="lycoris-eval-evaluate")
                    cancel = gr.Button("Cancel", elem_id="lycoris-eval-cancel")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="lycoris-eval-status")
                with gr.Tab("Cells"):
                    prompt_filter = gr.Dropdown(
                        choices=["all", "train", "trigger", "alter", "style", "unspecified"],
                        value="all",
                        label="Prompt type",
                        elem_id="lycoris-eval-filter",
                    )
                    cells_note = note("lycoris-eval-cells-note")
                    cells = table("lycoris-eval-cells", CELL_COLUMNS)
                    all_cells = gr.State(None)
                with gr.Tab("Summary"):
                    summary_note = note("lycoris-eval-summary-note")
                    summary = table("lycoris-eval-summary", SUMMARY_COLUMNS, "Ranks (1 = best within the checkpoint)")
                    best_note = gr.Markdown(elem_id="lycoris-eval-best-note", elem_classes=["lycoris-eval-note"])
                    best = table("lycoris-eval-best", BEST_COLUMNS, "Best weight per checkpoint")
                    by_type_note = gr.Markdown(elem_id="lycoris-eval-by-type-note", elem_classes=["lycoris-eval-note"])
                    by_type = table("lycoris-eval-by-type", BY_TYPE_COLUMNS, "By adapter type")
                with gr.Tab("Heatmaps & plots"):
                    plots_note = note("lycoris-eval-plots-note")
                    plots = gr.Gallery(
                        label="Compatibility heatmaps and metric vs weight",
                        columns=2,
                        object_fit="contain",
                        elem_id="lycoris-eval-plots",
                    )
                with gr.Tab("Best & worst"):
                    thumbs = gr.Gallery(
                        label="Best and worst cells next to the baseline", columns=4, elem_id="lycoris-eval-thumbs"
                    )
                with gr.Tab("Trust"):
                    trust_note = note("lycoris-eval-trust-note")
                    trust = table("lycoris-eval-trust", TRUST_COLUMNS, wrap=True)
                files = gr.File(label="Downloads", file_count="multiple", elem_id="lycoris-eval-files")

        def on_evaluate(src, run_c, fold, refs, ref_files, dist, trig, mets, dev, ptype, progress=gr.Progress()):  # noqa: B008
            report = gradio_progress(progress)
            try:
                uploaded = save_uploads(services, ref_files)
                view = run_evaluation(
                    services,
                    src,
                    run_c or "",
                    fold or "",
                    refs or "",
                    dist or "",
                    trig or "",
                    mets,
                    dev,
                    report,
                    uploaded,
                )
            except LycorisEvalError as exc:
                hidden = gr.update(visible=False)
                cleared = {name: hidden for name in ("cells", "summary", "best", "by_type", "trust")}
                cleared.update({f"{n}_note": "" for n in ("cells", "summary", "best", "by_type", "trust", "plots")})
                cleared.update(plots=None, thumbs=None, files=None, all_cells=None)
                return [f"**Error:** {tab_words(str(exc), services)}"] + [cleared[name] for name in OUTPUTS[1:]]
            frames = _frames(view)
            notes = empty_notes(view, frames)
            shown = filter_cells(frames["cells"], ptype)
            cells_note_text = notes["cells"] or _cells_note(frames["cells"], shown, ptype)
            values = {
                "status": view.status,
                "cells": _table(gr, shown),
                "cells_note": cells_note_text,
                "summary": _table(gr, frames["summary"]),
                "summary_note": notes["summary"],
                "best": _table(gr, frames["best"]),
                "best_note": notes["best"],
                "by_type": _table(gr, frames["by_type"]),
                "by_type_note": notes["by_type"],
                "plots": view.plots,
                "plots_note": notes["plots"],
                "thumbs": view.thumbnails,
                "trust": _table(gr, frames["trust"]),
                "trust_note": notes["trust"],
                "files": [str(p) for p in view.files if p.exists()],
                "all_cells": frames["cells"],
            }
            return [values[name] for name in OUTPUTS]

        def on_filter(frame, ptype):
            if frame is None:
                return gr.update(), gr.update()
            shown = filter_cells(frame, ptype)
            text = _cells_note(frame, shown, ptype)
            return _table(gr, shown), text

        components = {
            "status": status,
            "cells": cells,
            "cells_note": cells_note,
            "summary": summary,
            "summary_note": summary_note,
            "best": best,
            "best_note": best_note,
            "by_type": by_type,
            "by_type_note": by_type_note,
            "plots": plots,
            "plots_note": plots_note,
            "thumbs": thumbs,
            "trust": trust,
            "trust_note": trust_note,
            "files": files,
            "all_cells": all_cells,
        }
        go.click(
            on_evaluate,
            inputs=[
                source,
                run,
                folder,
                references,
                reference_files,
                distractors,
                trigger,
                metrics,
                device,
                prompt_filter,
            ],
            outputs=[components[name] for name in OUTPUTS],
        )
        # our own flag: the evaluation stops at the next chunk and shows what it has (marked partial)
        cancel.click(lambda: services.cancel.set(), inputs=[], outputs=[])

        def on_source(src):
            return _source_updates(gr, services, src)

        def on_refresh(src):
            return [gr.update(choices=run_choices(services)), *_source_updates(gr, services, src)[3:]]

        source.change(on_source, inputs=[source], outputs=[run, run_info, folder, xyz_info])
        refresh.click(on_refresh, inputs=[source], outputs=[run, xyz_info])
        run.change(lambda choice: run_summary(services, choice), inputs=[run], outputs=[run_info])
        prompt_filter.change(on_filter, inputs=[all_cells, prompt_filter], outputs=[cells, cells_note])
    blocks.lycoris_eval_handlers = {"evaluate": on_evaluate, "filter": on_filter, "source": on_source}
    blocks.lycoris_eval_outputs = OUTPUTS
    blocks.lycoris_eval_default_metrics = list(metrics.value)
    return blocks


def _cells_note(frame: Any, shown: Any, prompt_type: str) -> str:
    """Why the cells table is empty after the prompt-type filter, or why a metric column is blank."""
    if frame is None or frame.empty:
        return ""
    if shown.empty:
        return f"No cell has prompt type “{prompt_type}”: choose “all” or another type."
    blank = [c for c in shown.columns[len(CELL_COLUMNS) :] if c in METRICS and (shown[c] == "").all()]
    lines = []
    paired = [m for m in blank if METRICS[m].needs == "baseline"]
    if paired:
        lines.append(
            f"No value for {', '.join(paired)}: each compares an adapter image with the no-adapter image of the "
            "same checkpoint, prompt and seed; these cells have no such pair."
        )
    other = [m for m in blank if m not in paired]
    if other:
        lines.append(f"No value for {', '.join(other)} in these cells (see the notes above).")
    return "\n\n".join(lines)


def launch_standalone(roots: list[Path], port: int, config: EvalConfig) -> None:
    """``python -m lycoris_eval ui``: the tab alone, on 127.0.0.1 (folders and runs, no generation)."""
    import copy

    roots = [Path(r).resolve() for r in roots] or [Path.cwd()]
    services = UiServices(
        outputs_root=roots[0] / "lycoris-eval",
        data_path=roots[0],
        allowed_roots=lambda: roots,
        eval_config=lambda: copy.deepcopy(config),
    )
    blocks = build_ui(services)
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, inbrowser=False)
