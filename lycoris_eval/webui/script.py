"""The **LyCORIS Eval grid** Script (txt2img → Script): its UI, its arguments (the same
model as the API, see :data:`ARG_NAMES`), the run, and scoring when finished.

v1.10.1 counterpart: ``modules/scripts.py`` (``Script``), ``modules/processing.py``
(``Processed``, ``p.comments``).
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

from modules import processing, scripts, sd_models

from lycoris_eval.config import build_config
from lycoris_eval.errors import LycorisEvalError, SpecError
from lycoris_eval.grid.host import RunResult
from lycoris_eval.grid.spec import GridSpec, parse_confirm_large, parse_grid_request
from lycoris_eval.grid.training import detected_runs, find_run
from lycoris_eval.inputs.adapter_types import detect
from lycoris_eval.inputs.families import FAMILY_TITLES
from lycoris_eval.report.answer import answer_text
from lycoris_eval.report.terminal import text_table
from lycoris_eval.webui.formats import host_formats, verdict
from lycoris_eval.webui.host import WebUIHost, _networks, check_base, page_settings
from lycoris_eval.webui.settings import eval_config_from_settings, grid_runner

SCRIPT_TITLE = "LyCORIS Eval grid"


# The Script's arguments, in order. The API takes the same names as a JSON object in the
# argument ``spec_json``, which overrides the others when not empty. Arguments added later
# come after it, so a caller's positional ``script_args`` keep their meaning.
ARG_NAMES = (
    "checkpoints",
    "adapters",
    "weights",
    "prompts",
    "seeds",
    "trigger",
    "references",
    "distractors",
    "score",
    "run_name",
    "run_id",
    "confirm_large",
    "spec_json",
    "training_run",  # a run's name: its saves after the adapters picked (grid/training.py)
    "training_every",  # every k-th save of it, counted back from the last
)


def spec_from_args(args: dict[str, Any]) -> tuple[GridSpec, bool]:
    """UI values or a JSON spec -> validated spec and ``confirm_large`` (the same parser as
    the API's); a JSON spec's ``confirm_large`` wins over the checkbox."""
    confirm = parse_confirm_large(args.get("confirm_large"))
    raw = (args.get("spec_json") or "").strip()
    if raw:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise SpecError("spec_json", f"not valid JSON ({exc})") from None
        spec, from_json = parse_grid_request(data)
        return spec, from_json if "confirm_large" in data else confirm
    skip = ("confirm_large", "spec_json", "training_run", "training_every")
    fields = {k: args[k] for k in ARG_NAMES if k not in skip and k in args}
    run = str(args.get("training_run") or "").strip()
    if run:
        every = args.get("training_every")
        fields["training_run"] = {"name": run, **({"every": every} if every not in (None, "", 0) else {})}
    fields["references"] = [r for r in str(fields.get("references") or "").splitlines() if r.strip()]
    fields["distractors"] = [d for d in str(fields.get("distractors") or "").splitlines() if d.strip()]
    fields["run_id"] = fields.get("run_id") or None
    return GridSpec.from_dict(fields), confirm


def summary_text(scored: Any) -> str:
    """What the Script shows under the gallery after scoring: the answer first (per training
    run and adapter, in words), then the summary table."""
    answer = answer_text(scored.tables.get("answer") or [], width=100)
    return "\n\n".join(part for part in (answer, text_table(scored.document, 100)) if part)


def score_run(result: RunResult, spec: GridSpec, progress: Any = None) -> Any:
    """Score a finished run in-process (the one path: every report file into the run's
    report folder), then free the scoring models; None when the run has no image."""
    # lazy: finished_grid imports numpy at its top
    from lycoris_eval.scoring.finished_grid import score_finished_run

    if not result.images:
        return None
    config = build_config(eval_config_from_settings(), **spec.scoring_request())
    try:
        return score_finished_run(result.run_dir, config, progress)
    finally:
        gc.collect()
        try:
            from modules import devices  # lazy: the host's modules exist only inside a running WebUI

            devices.torch_gc()
        except Exception:  # noqa: BLE001
            pass


def _comment(p: Any, text: str) -> None:
    """The WebUI shows ``p.comments`` (a dict used as an ordered set in v1.10.1) under the
    gallery; ``Processed(comments=...)`` is ignored there."""
    comments = getattr(p, "comments", None)
    if isinstance(comments, dict):
        comments[text] = 1
    elif isinstance(comments, list):
        comments.append(text)
    else:
        p.comments = {text: 1}


class LycorisEvalGridScript(scripts.Script):
    def title(self) -> str:
        return SCRIPT_TITLE

    def show(self, is_img2img: bool) -> bool:
        return not is_img2img

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr  # lazy: gradio only for the tab and the Script

        def checkpoint_choices() -> list[str]:
            return sorted({info.model_name for info in sd_models.checkpoints_list.values()}, key=str.casefold)

        def adapter_choices() -> list[str]:
            try:
                return sorted(_networks().available_networks, key=str.casefold)
            except LycorisEvalError:
                return []

        def run_choices() -> list[str]:
            try:
                return [run.name for run in detected_runs(WebUIHost(None).adapters())]
            except LycorisEvalError:
                return []

        def describe_run(name: str | None) -> str:
            if not name:
                return ""
            try:
                run = find_run(detected_runs(WebUIHost(None).adapters()), name)
            except LycorisEvalError as exc:
                return exc.words("webui")
            saves = ", ".join(f"{m.label()} ({m.adapter})" for m in run.members)
            return f"**{run.name}** ({len(run.members)} saves, grouped by {run.grouped_by}): {saves}"

        def describe(names: list[str]) -> str:
            lines = []
            available = _networks().available_networks
            for name in names or []:
                net = available.get(name)
                info = detect(Path(net.filename)).as_dict() if net is not None and net.filename else {}
                base = info.get("trained_on") or info.get("base_model_version") or "unknown base"
                family = FAMILY_TITLES.get(info.get("family") or "unknown", "unknown")
                line = f"* **{name}**: {info.get('type', 'unknown')}, {family} family, trained on {base}"
                if info.get("family_conflict"):
                    line += f" ({info['family_conflict']})"
                applies, why = verdict(info, host_formats())
                if applies is False:
                    line += f". **Not applied here**: {why}"
                lines.append(line)
            return "\n".join(lines)

        with gr.Group(elem_id="lycoris-eval-grid"):
            with gr.Row():
                checkpoints = gr.Dropdown(
                    label="Checkpoints",
                    choices=checkpoint_choices(),
                    multiselect=True,
                    elem_id="lycoris-eval-checkpoints",
                )
                adapters = gr.Dropdown(
                    label="Adapters", choices=adapter_choices(), multiselect=True, elem_id="lycoris-eval-adapters"
                )
                refresh = gr.Button(value="\U0001f504", elem_id="lycoris-eval-refresh", elem_classes=["tool"])
            adapter_info = gr.Markdown("", elem_id="lycoris-eval-adapter-info")
            with gr.Row():
                training_run = gr.Dropdown(
                    label="Training run (its saves, after the adapters above)",
                    choices=run_choices(),
                    elem_id="lycoris-eval-training-run",
                )
                training_every = gr.Number(
                    label="Every k-th save (from the last)", value=1, precision=0, elem_id="lycoris-eval-training-every"
                )
            training_info = gr.Markdown("", elem_id="lycoris-eval-training-info")
            weights = gr.Textbox(label="Adapter weights", value="0.5, 0.75, 1", elem_id="lycoris-eval-weights")
            prompts = gr.Textbox(
                label="Prompts (one per line; optional [train] [trigger] [alter] [style] tag)",
                lines=4,
                elem_id="lycoris-eval-prompts",
            )
            seeds = gr.Textbox(
                label="Seeds (list, or 'N from FIRST'; -1 draws once)", value="4 from -1", elem_id="lycoris-eval-seeds"
            )
            trigger = gr.Textbox(
                label="Trigger mapping for scoring (WORD=TEXT, one per line)", lines=2, elem_id="lycoris-eval-trigger"
            )
            with gr.Row():
                references = gr.Textbox(label="Reference folder", elem_id="lycoris-eval-references")
                distractors = gr.Textbox(
                    label="Distractor folders (one per line)", lines=2, elem_id="lycoris-eval-distractors"
                )
            with gr.Row():
                score = gr.Checkbox(label="Score when finished", value=False, elem_id="lycoris-eval-score")
                confirm_large = gr.Checkbox(
                    label="Allow grids over the size limit", value=False, elem_id="lycoris-eval-confirm-large"
                )
                run_name = gr.Textbox(label="Run name", elem_id="lycoris-eval-run-name")
                run_id = gr.Textbox(label="Resume run id", elem_id="lycoris-eval-run-id")
            with gr.Accordion("JSON spec (overrides the fields above; the API's format)", open=False):
                spec_json = gr.Textbox(label="Spec JSON", lines=4, elem_id="lycoris-eval-spec-json")

        def do_refresh() -> tuple[Any, Any, Any]:
            sd_models.list_models()
            try:
                _networks().list_available_networks()
            except LycorisEvalError:
                pass
            choices = gr.update(choices=checkpoint_choices()), gr.update(choices=adapter_choices())
            return (*choices, gr.update(choices=run_choices()))

        refresh.click(fn=do_refresh, inputs=[], outputs=[checkpoints, adapters, training_run])
        adapters.change(fn=describe, inputs=[adapters], outputs=[adapter_info])
        training_run.change(fn=describe_run, inputs=[training_run], outputs=[training_info])
        return [
            checkpoints,
            adapters,
            weights,
            prompts,
            seeds,
            trigger,
            references,
            distractors,
            score,
            run_name,
            run_id,
            confirm_large,
            spec_json,
            training_run,
            training_every,
        ]

    def run(self, p: Any, *args: Any) -> Any:
        values = dict(zip(ARG_NAMES, args))
        try:
            spec, confirm = spec_from_args(values)
            check_base(spec.base)  # a JSON spec's base: the page's sliders do not limit it
            spec.base = {**page_settings(p), **spec.base}
            runner = grid_runner(WebUIHost(p), cross_family="skip")
            result = runner.run(spec, confirm_large=confirm)
        except LycorisEvalError as exc:  # in the WebUI's words (its settings, not the CLI's flags)
            _comment(p, f"LyCORIS Eval grid: {exc.words('webui')}")
            return processing.Processed(p, [], p.seed, f"LyCORIS Eval grid: {exc.words('webui')}")
        comments = [
            f"Run {result.run_id}: {result.generated} new images, {result.skipped_existing} kept from before, "
            f"{len(result.failed)} failed ({result.run_dir})"
        ]
        comments += [f"failed {key}: {error}" for key, error in list(result.failed.items())[:20]]
        comments += [f"note {key}: {note}" for key, note in list(result.notes.items())[:20]]
        comments += [f"skipped, not generated: {message}" for message in result.cross_family]
        if result.interrupted:
            comments.append("interrupted: run again with this run id to resume")
        if result.stopped:
            comments.append(result.stopped)
        if spec.score and not result.interrupted and not result.stopped:
            try:
                scored = score_run(result, spec)
                if scored is not None:
                    comments.append(summary_text(scored))
            except LycorisEvalError as exc:
                comments.append(f"scoring failed: {exc.words('webui')} (the images are kept; evaluate them later)")
        from PIL import Image  # lazy: PIL only when images are decoded

        grids = []
        for path in result.grids:
            with Image.open(path) as im:
                grids.append(im.copy())
        images = []
        for path in result.images:
            with Image.open(path) as im:
                images.append(im.copy())
        # The page shows p.comments; API callers only get infotexts, so the grid images'
        # infotext carries the same report (run id, counts, failures, scoring errors).
        header = "\n".join([f"LyCORIS Eval grid {result.run_id}", *comments])
        infotexts = [header] * len(grids) + list(result.infotexts)
        for text in comments:
            _comment(p, text)
        return processing.Processed(
            p,
            grids + images,
            p.seed,
            infotexts[0] if infotexts else "",
            infotexts=infotexts,
            index_of_first_image=len(grids),
        )
