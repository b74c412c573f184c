"""The Evaluate tab: one Gradio UI for the WebUI tab (``on_ui_tabs``) and the standalone
app (``python -m lycoris_eval ui``), same code path.

:func:`run_evaluation` does the work and returns plain data (testable without Gradio);
:func:`build_ui` lays it out. Gradio is imported lazily; the layout works on 3.41 (A1111)
and uses nothing removed in 4.x (Forge).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, LycorisEvalError
from .evaluate import EvalConfig, evaluate
from .metrics import DEFAULT_METRICS, METRICS
from .plots import write_report_files
from .prompts import parse_trigger_mapping
from .report import report_tables, write_reports
from .run_store import RunStore, list_runs
from .safe_paths import PathRefused, resolve_allowed

SOURCE_RUN = "Run"
SOURCE_FOLDER = "Folder"
SOURCE_XYZ = "Last X/Y/Z grid"


class EvaluationBusy(InputError):
    pass


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
    manifest = None
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
    if not services.busy.acquire(blocking=False):
        raise EvaluationBusy("an evaluation is already running; wait for it or press Cancel")
    try:
        services.cancel.clear()
        with services.lock():
            document = evaluate(images_dir, config, progress)
    finally:
        services.busy.release()
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
    files = write_report_files(tables, out_dir)
    view = EvaluationView(
        status=_status(document, out_dir),
        document=document,
        tables=tables,
        out_dir=out_dir,
        files=[out_dir / "scores.json", out_dir / "scores.csv", *files.values()],
        plots=[(str(p), name) for name, p in files.items() if name != "markdown"],
        thumbnails=thumbnails(document, images_dir),
    )
    return view


def _status(document: dict[str, Any], out_dir: Path) -> str:
    run = document["run"]
    lines = []
    if run.get("warning"):
        lines.append(f"**{run['warning']}**")
    if run.get("partial"):
        part = run["partial"]
        lines.append(f"**Partial results:** cancelled after {part['images_scored']} of {part['images_total']} images.")
    lines.append(f"Scored {run['n_images']} images in {run['n_cells']} cells; reports in `{out_dir}`.")
    lines += [f"* {note}" for note in run.get("notes", []) if note != run.get("warning")]
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


def _frames(view: EvaluationView) -> dict[str, Any]:
    import pandas as pd

    metrics = list(view.tables["metrics"])

    def mean_std(row: dict[str, Any], name: str) -> str:
        mean, std = row.get(name), row.get(f"{name}_std")
        if mean is None:
            return ""
        return f"{mean:.4g}" + (f" ± {std:.2g}" if std is not None else "")

    cells = pd.DataFrame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "trained on": r["trained_on"] or "",
                "weight": r["weight"],
                "prompt type": r["prompt_type"],
                "n": r["n_images"],
                **{m: mean_std(r, m) for m in metrics},
            }
            for r in view.tables["cells"]
        ]
    )
    summary = pd.DataFrame(
        [
            {
                "checkpoint": r["checkpoint"],
                "adapter": r["adapter"] or "(none)",
                "type": r["adapter_type"] or "",
                "weight": r["weight"],
                "overall rank": r["overall_rank"],
                **{f"{m} rank": r[f"{m}_rank"] for m in metrics},
            }
            for r in view.tables["summary"]
        ]
    )
    trust = pd.DataFrame(
        [
            {
                "metric": t["metric"],
                "distractor": t["distractor"],
                "adapter": t.get("adapter") or "(all)",
                "accuracy": t["accuracy"],
                "AUC": t["auc"],
                "verdict": t["verdict"],
            }
            for t in view.tables["trust"]
        ]
    )
    by_type = pd.DataFrame(view.tables["by_type"])
    best = pd.DataFrame(view.tables["best_weight"])
    return {"cells": cells, "summary": summary, "trust": trust, "by_type": by_type, "best": best}


def build_ui(services: UiServices) -> Any:
    """The tab's Blocks (used as the WebUI tab and as the standalone app)."""
    import gradio as gr

    with gr.Blocks(analytics_enabled=False, css=None) as blocks:
        with gr.Row(elem_id="lycoris-eval-tab"):
            with gr.Column(scale=1):
                source = gr.Radio(
                    [SOURCE_RUN, SOURCE_XYZ, SOURCE_FOLDER],
                    value=SOURCE_RUN,
                    label="Source",
                    elem_id="lycoris-eval-source",
                )
                run = gr.Dropdown(choices=run_choices(services), label="Run (newest first)", elem_id="lycoris-eval-run")
                refresh = gr.Button("Refresh runs", elem_id="lycoris-eval-refresh-runs")
                run_info = gr.Markdown(elem_id="lycoris-eval-run-info")
                folder = gr.Textbox(label="Folder (inside the allowed roots)", elem_id="lycoris-eval-folder")
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
                    choices=list(METRICS), value=list(DEFAULT_METRICS), label="Metrics", elem_id="lycoris-eval-metrics"
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
                    cells = gr.Dataframe(interactive=False, elem_id="lycoris-eval-cells")
                    all_cells = gr.State(None)
                with gr.Tab("Summary"):
                    summary = gr.Dataframe(interactive=False, elem_id="lycoris-eval-summary")
                    best = gr.Dataframe(interactive=False, label="Best weight per checkpoint")
                    by_type = gr.Dataframe(interactive=False, label="By adapter type")
                with gr.Tab("Heatmaps & plots"):
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
                    trust = gr.Dataframe(interactive=False, elem_id="lycoris-eval-trust")
                files = gr.File(label="Downloads", file_count="multiple", elem_id="lycoris-eval-files")

        def on_evaluate(src, run_c, fold, refs, ref_files, dist, trig, mets, dev, ptype, progress=gr.Progress()):  # noqa: B008
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
                    lambda d, t, m: progress((d, max(t, 1)), desc=m),
                    uploaded,
                )
            except LycorisEvalError as exc:
                return [f"**Error:** {exc}"] + [None] * 9
            frames = _frames(view)
            return [
                view.status,
                filter_cells(frames["cells"], ptype),
                frames["summary"],
                frames["best"],
                frames["by_type"],
                view.plots,
                view.thumbnails,
                frames["trust"],
                [str(p) for p in view.files if p.exists()],
                frames["cells"],
            ]

        event = go.click(
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
            outputs=[status, cells, summary, best, by_type, plots, thumbs, trust, files, all_cells],
        )
        # our own flag: the evaluation stops at the next chunk and shows what it has (marked partial)
        cancel.click(lambda: services.cancel.set(), inputs=[], outputs=[])
        del event
        refresh.click(lambda: gr.update(choices=run_choices(services)), inputs=[], outputs=[run])
        run.change(lambda choice: run_summary(services, choice), inputs=[run], outputs=[run_info])
        prompt_filter.change(filter_cells, inputs=[all_cells, prompt_filter], outputs=[cells])
    blocks.lycoris_eval_handlers = {"evaluate": on_evaluate}
    blocks.lycoris_eval_default_metrics = list(metrics.value)
    return blocks


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
