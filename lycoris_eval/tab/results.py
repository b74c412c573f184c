"""The right side of the tab: the status line, one tab per view of the results (the answer
first, then the Epochs of a training run, cells, summary, figures, thumbnails, trust,
compare) and the downloads; :data:`OUTPUTS` names them in the order the Evaluate button
fills them."""

from __future__ import annotations

from typing import Any

from lycoris_eval.errors import NO_TRAINING_RUN
from lycoris_eval.report.answer import answer_markdown
from lycoris_eval.report.epochs_answer import epochs_markdown
from lycoris_eval.tab.actions import NOT_YET
from lycoris_eval.tab.compare import COMPARE_OUTPUTS, compare_components
from lycoris_eval.tab.tables import BEST_COLUMNS, BY_TYPE_COLUMNS, CELL_COLUMNS, SUMMARY_COLUMNS, TRUST_COLUMNS, _frame

OUTPUTS = (
    "status",
    "answer",
    "epochs",
    "epochs_plots",
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
    with gr.Tab("Answer"):  # first: what people came for, in words, with its evidence
        c["answer"] = gr.Markdown(NOT_YET, elem_id="lycoris-eval-answer")
    with gr.Tab("Epochs"):  # a training run's saves: which epoch at which weight (issue #24)
        c["epochs"] = gr.Markdown(NOT_YET, elem_id="lycoris-eval-epochs")
        c["epochs_plots"] = gr.Gallery(
            label="Metrics over training; fidelity against prompt following",
            columns=1,
            object_fit="contain",
            elem_id="lycoris-eval-epochs-plots",
        )
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
        c["best"] = table(
            "lycoris-eval-best", BEST_COLUMNS, "Highest overall rank per checkpoint (a ranking; intervals: Answer)"
        )
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


def epochs_text(tables: dict[str, Any]) -> str:
    """The Epochs view: each training run's answer, then its table of epochs × weights."""
    runs = [a for a in tables.get("answer") or [] if a.get("training_run")]
    if not runs:
        return NO_TRAINING_RUN.words("tab")
    return "\n".join(answer_markdown(runs)[2:] + epochs_markdown(tables.get("training_runs"))[2:])
