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
from .tab_actions import (
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
    rescore_run,
    run_choices,
    run_evaluation,
    run_summary,
    save_uploads,
    tab_words,
    thumbnails,
    xyz_capture,
    xyz_summary,
)
from .tab_compare import COMPARE_OUTPUTS, compare_components, compare_outputs, wire_compare
from .tab_tables import (
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
    *COMPARE_OUTPUTS,
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
    c["source"] = gr.Radio(
        [SOURCE_RUN, SOURCE_XYZ, SOURCE_FOLDER], value=SOURCE_RUN, label="Source", elem_id="lycoris-eval-source"
    )
    c["xyz_info"] = gr.Markdown(visible=False, elem_id="lycoris-eval-xyz-info")
    c["run"] = gr.Dropdown(choices=run_choices(services), label="Run (newest first)", elem_id="lycoris-eval-run")
    c["run_info"] = gr.Markdown(elem_id="lycoris-eval-run-info")
    c["folder"] = gr.Textbox(label="Folder (inside the allowed roots)", visible=False, elem_id="lycoris-eval-folder")
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
    c["metrics"] = gr.CheckboxGroup(
        choices=list(METRICS),
        value=[m for m in services.default_metrics() if m in METRICS] or list(DEFAULT_METRICS),
        label="Metrics",
        elem_id="lycoris-eval-metrics",
    )
    c["device"] = gr.Dropdown(
        choices=["settings", "auto", "cpu", "cuda", "mps"],
        value="settings",
        label="Device",
        elem_id="lycoris-eval-device",
    )
    with gr.Row():
        c["go"] = gr.Button("Evaluate", variant="primary", elem_id="lycoris-eval-evaluate")
        c["cancel"] = gr.Button("Cancel", elem_id="lycoris-eval-cancel")
    return c


def _results_column(gr: Any) -> dict[str, Any]:
    """The right column: status, then one tab per view of the results, then the downloads."""

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

    def note(elem_id: str, text: str = NOT_YET) -> Any:
        return gr.Markdown(text, elem_id=elem_id, elem_classes=["lycoris-eval-note"])

    c: dict[str, Any] = {"status": gr.Markdown(elem_id="lycoris-eval-status")}
    with gr.Tab("Cells"):
        c["prompt_filter"] = gr.Dropdown(
            choices=["all", "train", "trigger", "alter", "style", "unspecified"],
            value="all",
            label="Prompt type",
            elem_id="lycoris-eval-filter",
        )
        c["cells_note"] = note("lycoris-eval-cells-note")
        c["cells"] = table("lycoris-eval-cells", CELL_COLUMNS)
        # every cell, for the prompt-type filter: a hidden table, not a gr.State, because
        # gradio 4 leaves State out of an endpoint's API parameters and its client then warns
        # "Too many arguments provided for the endpoint." on every use of the filter
        c["all_cells"] = gr.Dataframe(
            value=_frame([], CELL_COLUMNS), headers=CELL_COLUMNS, visible=False, elem_id="lycoris-eval-all-cells"
        )
    with gr.Tab("Summary"):
        c["summary_note"] = note("lycoris-eval-summary-note")
        c["summary"] = table("lycoris-eval-summary", SUMMARY_COLUMNS, "Ranks (1 = best within the checkpoint)")
        c["best_note"] = note("lycoris-eval-best-note", "")
        c["best"] = table("lycoris-eval-best", BEST_COLUMNS, "Best weight per checkpoint")
        c["by_type_note"] = note("lycoris-eval-by-type-note", "")
        c["by_type"] = table("lycoris-eval-by-type", BY_TYPE_COLUMNS, "By adapter type")
    with gr.Tab("Heatmaps & plots"):
        c["plots_note"] = note("lycoris-eval-plots-note")
        c["plots"] = gr.Gallery(
            label="Compatibility heatmaps and metric vs weight",
            columns=2,
            object_fit="contain",
            elem_id="lycoris-eval-plots",
        )
    with gr.Tab("Best & worst"):
        c["thumbs"] = gr.Gallery(
            label="Best and worst cells next to the baseline", columns=4, elem_id="lycoris-eval-thumbs"
        )
    with gr.Tab("Trust"):
        c["trust_note"] = note("lycoris-eval-trust-note")
        c["trust"] = table("lycoris-eval-trust", TRUST_COLUMNS, wrap=True)
    with gr.Tab("Compare"):
        c.update(compare_components(gr, table, note))
    c["files"] = gr.File(label="Downloads", file_count="multiple", elem_id="lycoris-eval-files")
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
                trained_on=trained or "",
            )  # fmt: skip
        except LycorisEvalError as exc:
            hidden = gr.update(visible=False)
            cleared = {name: hidden for name in ("cells", "summary", "best", "by_type", "trust")}
            cleared.update({f"{n}_note": "" for n in ("cells", "summary", "best", "by_type", "trust", "plots")})
            cleared.update(plots=None, thumbs=None, files=None, all_cells=None)
            cleared.update(compare_outputs(gr, None, None, _frame))
            return [f"**Error:** {tab_words(str(exc), services)}"] + [cleared[name] for name in OUTPUTS[1:]]
        frames = _frames(view)
        notes = empty_notes(view, frames)
        shown = filter_cells(frames["cells"], ptype)
        values = {
            "status": view.status,
            "cells": _table(gr, shown),
            "cells_note": notes["cells"] or _cells_note(frames["cells"], shown, ptype),
            "plots": view.plots,
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
    import gradio as gr

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
        inputs += ["trained_on", "metrics"]
        c["go"].click(
            on_evaluate,
            inputs=[c[name] for name in (*inputs, "device", "prompt_filter")],
            outputs=[c[name] for name in OUTPUTS],
        )
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
    blocks.lycoris_eval_handlers = {"evaluate": on_evaluate, "filter": on_filter, "source": on_source, **compare}
    blocks.lycoris_eval_outputs = OUTPUTS
    blocks.lycoris_eval_default_metrics = list(c["metrics"].value)
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
