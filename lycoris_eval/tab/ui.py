"""The Evaluate tab: one Gradio UI for the WebUI tab (``on_ui_tabs``) and the standalone
app (``python -m lycoris_eval ui``), same code path.

:func:`run_evaluation` does the work and returns plain data (testable without Gradio);
:func:`build_ui` lays it out. Gradio is imported lazily; the layout works on 3.41 (A1111)
and uses nothing removed in 4.x (Forge).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from lycoris_eval.config import EvalConfig
from lycoris_eval.errors import LycorisEvalError
from lycoris_eval.report.answer import answer_markdown
from lycoris_eval.scoring.metrics import DEFAULT_METRICS, METRICS
from lycoris_eval.tab.actions import (
    NOT_YET,
    SOURCE_FOLDER,
    SOURCE_RUN,
    SOURCE_XYZ,
    EvaluationView,
    UiServices,
    _ago,
    _folder,
    _run_id,
    _status,
    error_text,
    filter_cells,
    gradio_progress,
    rescore_run,
    run_choices,
    run_evaluation,
    run_summary,
    save_uploads,
    thumbnails,
    xyz_capture,
    xyz_summary,
)
from lycoris_eval.tab.compare import compare_outputs, wire_compare
from lycoris_eval.tab.results import OUTPUTS, _results_column, epochs_text
from lycoris_eval.tab.tables import (
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


def _inputs_column(gr: Any, services: UiServices) -> dict[str, Any]:
    """The left column: what to evaluate and how."""
    c: dict[str, Any] = {}
    in_webui = services.front == "webui"
    runs = run_choices(services)
    # outside the WebUI there is no X/Y/Z plot, and with no run yet a folder is the only source
    sources = [SOURCE_RUN, SOURCE_XYZ, SOURCE_FOLDER] if in_webui else [SOURCE_FOLDER, SOURCE_RUN]
    first = SOURCE_RUN if (in_webui or runs) else SOURCE_FOLDER
    c["source"] = gr.Radio(sources, value=first, label="Source", elem_id="lycoris-eval-source")
    c["xyz_info"] = gr.Markdown(visible=False, elem_id="lycoris-eval-xyz-info")
    c["run"] = gr.Dropdown(
        choices=runs, label="Run (newest first)", visible=first == SOURCE_RUN, elem_id="lycoris-eval-run"
    )
    c["run_info"] = gr.Markdown(elem_id="lycoris-eval-run-info")
    where = "inside the allowed roots" if in_webui else "relative to where the app was started, inside its roots"
    c["folder"] = gr.Textbox(label=f"Folder ({where})", visible=first == SOURCE_FOLDER, elem_id="lycoris-eval-folder")
    c["refresh"] = gr.Button("Refresh", elem_id="lycoris-eval-refresh-runs")
    c["references"] = gr.Textbox(label="Target reference folder", elem_id="lycoris-eval-ref")
    c["reference_files"] = gr.File(
        label="…or upload reference images",
        file_count="multiple",
        file_types=["image"],
        elem_id="lycoris-eval-ref-upload",
    )
    c["distractors"] = gr.Textbox(
        label="Distractor folders (one per line)", lines=2, elem_id="lycoris-eval-distractors-tab"
    )
    c["trigger"] = gr.Textbox(label="Trigger mapping (WORD=TEXT per line)", lines=2, elem_id="lycoris-eval-trigger-tab")
    c["trained_on"] = gr.Textbox(
        label="Trained on (ADAPTER=CHECKPOINT per line; default: the adapter's metadata)",
        lines=1,
        elem_id="lycoris-eval-trained-on",
    )
    c["training_runs"] = gr.Textbox(
        label="Training runs (RUN=ADAPTER,ADAPTER,... per line, earliest first; default: from metadata and file names)",
        lines=1,
        elem_id="lycoris-eval-training-runs",
    )
    c["metrics"] = gr.CheckboxGroup(
        choices=list(METRICS),
        value=[m for m in services.default_metrics() if m in METRICS] or list(DEFAULT_METRICS),
        label="Metrics",
        elem_id="lycoris-eval-metrics",
    )
    devices = ["auto", "cpu", "cuda", "mps"]
    c["device"] = gr.Dropdown(
        # "settings" (the WebUI's scoring device setting) means something only inside the WebUI
        choices=["settings", *devices] if in_webui else devices,
        value="settings" if in_webui else services.eval_config().device,
        label="Device",
        elem_id="lycoris-eval-device",
    )
    with gr.Row():
        c["go"] = gr.Button("Evaluate", variant="primary", elem_id="lycoris-eval-evaluate")
        c["cancel"] = gr.Button("Cancel", elem_id="lycoris-eval-cancel")
    return c


def _evaluate_handler(gr: Any, services: UiServices) -> Any:
    """The Evaluate button's function: every output of :data:`OUTPUTS`, in order."""

    def on_evaluate(
        src,
        run_c,
        fold,
        refs,
        ref_files,
        dist,
        trig,
        trained,
        grouped,
        mets,
        dev,
        ptype,
        progress=gr.Progress(),  # noqa: B008
    ):
        report = gradio_progress(progress)
        try:
            uploaded = save_uploads(services, ref_files)
            view = run_evaluation(
                services, src, run_c or "", fold or "", refs or "", dist or "", trig or "", mets, dev, report, uploaded,
                trained_on=trained or "", training_runs=grouped or "",
            )  # fmt: skip
        except LycorisEvalError as exc:
            hidden = gr.update(visible=False)
            cleared = {name: hidden for name in ("cells", "summary", "best", "by_type", "trust")}
            cleared.update({f"{n}_note": "" for n in ("cells", "summary", "best", "by_type", "trust", "plots")})
            cleared.update(plots=None, thumbs=None, files=None, all_cells=None, answer="", epochs="", epochs_plots=None)
            cleared.update(compare_outputs(gr, None, None, _frame))
            return [error_text(exc, services)] + [cleared[name] for name in OUTPUTS[1:]]
        frames = _frames(view)
        notes = empty_notes(view, frames)
        shown = filter_cells(frames["cells"], ptype)
        values = {
            "status": view.status,
            "answer": "\n".join(answer_markdown(view.tables.get("answer") or []))
            or "No answer: the source has no adapter image to compare with its no-adapter images.",
            "epochs": epochs_text(view.tables),
            "epochs_plots": [p for p in view.plots if p[1].startswith("epochs-")] or None,
            "cells": _table(gr, shown),
            "cells_note": notes["cells"] or _cells_note(frames["cells"], shown, ptype),
            "plots": [p for p in view.plots if not p[1].startswith("epochs-")],
            "plots_note": notes["plots"],
            "thumbs": view.thumbnails,
            "files": [str(p) for p in view.files if p.exists()],
            "all_cells": frames["cells"],
            **compare_outputs(gr, view.document, view.out_dir, _frame),
        }
        for name in ("summary", "best", "by_type", "trust"):
            values[name] = _table(gr, frames[name])
            values[f"{name}_note"] = notes[name]
        return [values[name] for name in OUTPUTS]

    return on_evaluate


def build_ui(services: UiServices) -> Any:
    """The tab's Blocks (used as the WebUI tab and as the standalone app)."""
    import gradio as gr  # lazy: gradio only for the tab and the Script

    with gr.Blocks(analytics_enabled=False, css=None) as blocks:
        with gr.Row(elem_id="lycoris-eval-tab"):
            with gr.Column(scale=1):
                c = _inputs_column(gr, services)
            with gr.Column(scale=3):
                c.update(_results_column(gr))
        on_evaluate = _evaluate_handler(gr, services)

        def on_filter(frame, ptype):
            if frame is None or frame.empty or "prompt type" not in frame.columns:
                return gr.update(), gr.update()
            shown = filter_cells(frame, ptype)
            return _table(gr, shown), _cells_note(frame, shown, ptype)

        def on_source(src):
            return _source_updates(gr, services, src)

        def on_refresh(src):
            return [gr.update(choices=run_choices(services)), *_source_updates(gr, services, src)[3:]]

        inputs = ["source", "run", "folder", "references", "reference_files", "distractors", "trigger"]
        inputs += ["trained_on", "training_runs", "metrics"]
        # One progress overlay: gradio draws one on every output of an event, so the evaluation
        # itself has one output (the status line, where its progress shows) and hands the rest
        # to a second step that fills every table, figure and download without an overlay.
        # The hand-over is one slot: the busy lock lets only one evaluation run at a time.
        handover: list[list[Any]] = []

        def on_run(*args: Any) -> Any:
            values = on_evaluate(*args)
            handover[:] = [values]
            return values[0]

        def on_show() -> list[Any]:
            values = handover.pop() if handover else None
            return values[1:] if values else [gr.update() for _ in OUTPUTS[1:]]

        on_run.__signature__ = inspect.signature(on_evaluate)  # gradio passes inputs and progress by it
        c["go"].click(
            on_run,
            inputs=[c[name] for name in (*inputs, "device", "prompt_filter")],
            outputs=[c["status"]],
            show_progress="full",
        ).then(on_show, inputs=[], outputs=[c[name] for name in OUTPUTS[1:]], show_progress="hidden")
        # our own flag: the evaluation stops at the next chunk and shows what it has (marked partial)
        c["cancel"].click(lambda: services.cancel.set(), inputs=[], outputs=[])
        c["source"].change(
            on_source, inputs=[c["source"]], outputs=[c[n] for n in ("run", "run_info", "folder", "xyz_info")]
        )
        c["refresh"].click(on_refresh, inputs=[c["source"]], outputs=[c["run"], c["xyz_info"]])
        c["run"].change(lambda choice: run_summary(services, choice), inputs=[c["run"]], outputs=[c["run_info"]])
        c["prompt_filter"].change(
            on_filter, inputs=[c["all_cells"], c["prompt_filter"]], outputs=[c["cells"], c["cells_note"]]
        )
        compare = wire_compare(gr, c, services, _frame, lambda run_dir, doc: rescore_run(services, run_dir, doc))
    blocks.lycoris_eval_handlers = {
        "evaluate": on_evaluate,
        "run": on_run,
        "show": on_show,
        "filter": on_filter,
        "source": on_source,
        **compare,
    }
    blocks.lycoris_eval_outputs = OUTPUTS
    blocks.lycoris_eval_default_metrics = list(c["metrics"].value)
    return blocks


def launch_standalone(roots: list[Path], port: int, config: EvalConfig) -> None:
    """``python -m lycoris_eval ui``: the tab alone, on 127.0.0.1 (folders and runs, no generation)."""

    roots = [Path(r).resolve() for r in roots] or [Path.cwd()]
    services = UiServices(
        outputs_root=roots[0] / "lycoris-eval",
        data_path=Path.cwd(),  # a relative folder is relative to where the app was started
        allowed_roots=lambda: roots,
        eval_config=lambda: config,  # frozen: never changed by a request
    )
    blocks = build_ui(services)
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, inbrowser=False)


__all__ = [
    "BEST_COLUMNS",
    "BY_TYPE_COLUMNS",
    "CELL_COLUMNS",
    "EvaluationView",
    "NOT_YET",
    "SOURCE_FOLDER",
    "SOURCE_RUN",
    "SOURCE_XYZ",
    "SUMMARY_COLUMNS",
    "TRUST_COLUMNS",
    "UiServices",
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
    "error_text",
    "filter_cells",
    "gradio_progress",
    "launch_standalone",
    "run_choices",
    "run_evaluation",
    "run_summary",
    "save_uploads",
    "thumbnails",
    "xyz_capture",
    "xyz_summary",
]
