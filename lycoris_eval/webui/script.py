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

from ..adapter_types import detect
from ..config import with_request
from ..errors import LycorisEvalError, SpecError
from ..families import FAMILY_TITLES
from ..grid_runner import RunResult
from ..grid_spec import GridSpec
from .host import WebUIHost, _networks, check_base, page_settings
from .settings import eval_config_from_settings, grid_runner

SCRIPT_TITLE = "LyCORIS Eval grid"


# The Script's arguments, in order. The API takes the same names as a JSON object in the
# last argument, ``spec_json``, which overrides the others when not empty.
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
)


def spec_from_args(args: dict[str, Any]) -> tuple[GridSpec, bool]:
    """UI values or a JSON spec -> validated spec (the same model the API uses)."""
    confirm = bool(args.get("confirm_large", False))
    raw = (args.get("spec_json") or "").strip()
    if raw:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise SpecError("spec_json", f"not valid JSON ({exc})") from None
        if isinstance(data, dict) and "confirm_large" in data:
            confirm = bool(data.pop("confirm_large"))
        return GridSpec.from_dict(data), confirm
    fields = {k: args[k] for k in ARG_NAMES if k not in ("confirm_large", "spec_json") and k in args}
    fields["references"] = [r for r in str(fields.get("references") or "").splitlines() if r.strip()]
    fields["distractors"] = [d for d in str(fields.get("distractors") or "").splitlines() if d.strip()]
    fields["run_id"] = fields.get("run_id") or None
    return GridSpec.from_dict(fields), confirm


def summary_text(document: dict[str, Any]) -> str:
    from ..report import text_table

    return text_table(document)


def score_run(result: RunResult, spec: GridSpec) -> dict[str, Any] | None:
    """Score a finished run in-process, then free the scoring models."""
    from ..evaluate import evaluate
    from ..report import write_reports

    if not result.images:
        return None
    config = with_request(
        eval_config_from_settings(),
        reference=spec.references[0] if spec.references else None,
        distractors=spec.distractors,
        trigger=spec.trigger,
    )
    try:
        document = evaluate(result.run_dir / "images", config)
        write_reports(document, result.run_dir)
        return document
    finally:
        gc.collect()
        try:
            from modules import devices

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
        import gradio as gr

        def checkpoint_choices() -> list[str]:
            return sorted({info.model_name for info in sd_models.checkpoints_list.values()}, key=str.casefold)

        def adapter_choices() -> list[str]:
            try:
                return sorted(_networks().available_networks, key=str.casefold)
            except LycorisEvalError:
                return []

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

        def do_refresh() -> tuple[Any, Any]:
            sd_models.list_models()
            try:
                _networks().list_available_networks()
            except LycorisEvalError:
                pass
            return gr.update(choices=checkpoint_choices()), gr.update(choices=adapter_choices())

        refresh.click(fn=do_refresh, inputs=[], outputs=[checkpoints, adapters])
        adapters.change(fn=describe, inputs=[adapters], outputs=[adapter_info])
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
        ]

    def run(self, p: Any, *args: Any) -> Any:
        values = dict(zip(ARG_NAMES, args))
        try:
            spec, confirm = spec_from_args(values)
            check_base(spec.base)  # a JSON spec's base: the page's sliders do not limit it
            spec.base = {**page_settings(p), **spec.base}
            runner = grid_runner(WebUIHost(p), cross_family="skip")
            result = runner.run(spec, confirm_large=confirm)
        except LycorisEvalError as exc:
            _comment(p, f"LyCORIS Eval grid: {exc}")
            return processing.Processed(p, [], p.seed, f"LyCORIS Eval grid: {exc}")
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
                document = score_run(result, spec)
                if document:
                    comments.append(summary_text(document))
            except LycorisEvalError as exc:
                comments.append(f"scoring failed: {exc} (the images are kept; evaluate them later)")
        from PIL import Image

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
