"""The Evaluate tab: one Gradio UI for the WebUI tab (``on_ui_tabs``) and the standalone
app (``python -m lycoris_eval ui``), same code path.

:func:`run_evaluation` does the work and returns plain data (testable without Gradio);
:func:`build_ui` lays it out. Gradio is imported lazily; the layout works on 3.41 (A1111)
and uses nothing removed in 4.x (Forge).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import LycorisEvalError
from .evaluate import EvalConfig
from .metrics import DEFAULT_METRICS, METRICS
from .ui_actions import (
    CLI_RANDOM_WEIGHTS_HINT,
    NOT_YET,
    SOURCE_FOLDER,
    SOURCE_RUN,
    SOURCE_XYZ,
    WEBUI_RANDOM_WEIGHTS_HINT,
    EvaluationView,
    UiServices,
    _ago,
    _folder,
    _run_id,
    _status,
    filter_cells,
    gradio_progress,
    run_choices,
    run_evaluation,
    run_summary,
    save_uploads,
    tab_words,
    thumbnails,
    xyz_capture,
    xyz_summary,
)
from .ui_tables import (
    BEST_COLUMNS,
    BY_TYPE_COLUMNS,
    CELL_COLUMNS,
    SUMMARY_COLUMNS,
    TRUST_COLUMNS,
    _blank,
    _cells_note,
    _frame,
    _frames,
    empty_notes,
)

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


__all__ = [
    "BEST_COLUMNS",
    "BY_TYPE_COLUMNS",
    "CELL_COLUMNS",
    "CLI_RANDOM_WEIGHTS_HINT",
    "EvaluationView",
    "NOT_YET",
    "SOURCE_FOLDER",
    "SOURCE_RUN",
    "SOURCE_XYZ",
    "SUMMARY_COLUMNS",
    "TRUST_COLUMNS",
    "UiServices",
    "WEBUI_RANDOM_WEIGHTS_HINT",
    "_ago",
    "_blank",
    "_cells_note",
    "_folder",
    "_frame",
    "_frames",
    "_run_id",
    "_source_updates",
    "_status",
    "_table",
    "build_ui",
    "empty_notes",
    "filter_cells",
    "gradio_progress",
    "launch_standalone",
    "run_choices",
    "run_evaluation",
    "run_summary",
    "save_uploads",
    "tab_words",
    "thumbnails",
    "xyz_capture",
    "xyz_summary",
]
