"""The one module that talks to the WebUI (``modules.*``, the Lora extension's
``networks``, the built-in X/Y/Z plot). Imported only by ``scripts/lycoris_eval_entry.py``,
inside the WebUI; the core never imports it.

Modelled on AUTOMATIC1111 stable-diffusion-webui v1.10.1: ``modules/scripts.py``
(Script), ``modules/processing.py`` (``process_images``, ``override_settings``),
``modules/sd_models.py`` (``checkpoints_list``, ``reload_model_weights``),
``modules/shared.py`` (``state``, ``opts``, ``cmd_opts``), ``scripts/xyz_grid.py``
(``AxisOption``, ``axis_options``), ``extensions-builtin/Lora/networks.py``
(``available_networks``, ``loaded_networks``).
"""

from __future__ import annotations

import difflib
import gc
import json
import re
import sys
import time
from copy import copy
from pathlib import Path
from typing import Any

from modules import processing, script_callbacks, scripts, sd_models, shared

from .adapter_types import detect
from .errors import InputError, LycorisEvalError
from .grid_runner import (
    AdapterLoadError,
    AdapterRef,
    CheckpointMismatchError,
    CheckpointRef,
    Generated,
    GridRunner,
    RunResult,
)
from .grid_spec import MAX_ABS_WEIGHT, GridJob, GridSpec, SpecError
from .metrics import DEFAULT_METRICS

SCRIPT_TITLE = "LyCORIS Eval grid"
AXIS_ADAPTER = "LyCORIS: adapter"
AXIS_WEIGHT = "LyCORIS: adapter weight"
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
SETTINGS_SECTION = ("lycoris_eval", "LyCORIS Eval")


# --------------------------------------------------------------------------------------
# settings and paths


def opt(name: str, default: Any) -> Any:
    return getattr(shared.opts, f"lycoris_eval_{name}", default)


def _data_path() -> Path:
    try:
        from modules import paths

        return Path(paths.data_path)
    except (ImportError, AttributeError):
        return Path.cwd()


def outputs_root() -> Path:
    root = Path(opt("outdir", "outputs/lycoris-eval"))
    return root if root.is_absolute() else _data_path() / root


def weights_dir() -> Path:
    folder = Path(opt("weights_dir", "models/lycoris-eval"))
    return folder if folder.is_absolute() else _data_path() / folder


def on_ui_settings() -> None:
    section = SETTINGS_SECTION
    options = {
        "lycoris_eval_weights_dir": ("models/lycoris-eval", "Folder of scoring weights (VGG19, OpenCLIP, DINOv2)"),
        "lycoris_eval_outdir": ("outputs/lycoris-eval", "Run store folder"),
        "lycoris_eval_grid_limit": (500, "Largest grid run without confirmation (images)"),
        "lycoris_eval_batch_size": (8, "Scoring batch size"),
        "lycoris_eval_device": ("auto", "Scoring device (auto, cpu, cuda, mps)"),
        "lycoris_eval_keep_models": (False, "Keep scoring models loaded between evaluations"),
        "lycoris_eval_clip_model": ("ViT-L-14", "OpenCLIP model for text alignment (paper: ViT-L-14)"),
        "lycoris_eval_dinov2_arch": ("vitl14", "DINOv2 architecture (paper: vitl14; vits14 for small GPUs)"),
        "lycoris_eval_offline": (False, "Never download scoring weights"),
        "lycoris_eval_random_weights": (False, "Dry run: random scoring weights (numbers mean nothing)"),
        "lycoris_eval_allowed_roots": ("", "Extra folders the API and the Evaluate tab may read (one per line)"),
        "lycoris_eval_default_metrics": (",".join(DEFAULT_METRICS), "Default metrics (comma-separated)"),
    }
    for key, (default, label) in options.items():
        shared.opts.add_option(key, shared.OptionInfo(default, label, section=section))


# --------------------------------------------------------------------------------------
# the host


def _networks() -> Any:
    module = sys.modules.get("networks")
    if module is None:
        try:
            import networks as module  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise LycorisEvalError("the built-in Lora extension is not loaded (extensions-builtin/Lora)") from exc
    return module


class WebUIHost:
    """:class:`lycoris_eval.grid_runner.Host` over the WebUI's modules."""

    def __init__(self, p: Any) -> None:
        self.p = p

    def checkpoints(self) -> list[CheckpointRef]:
        refs = []
        for info in sd_models.checkpoints_list.values():
            refs.append(CheckpointRef(name=info.model_name, title=info.title, hash=info.shorthash or info.hash))
            if info.name != info.model_name:
                refs.append(CheckpointRef(name=info.name, title=info.title, hash=info.shorthash or info.hash))
        return refs

    def current_checkpoint(self) -> CheckpointRef:
        info = sd_models.select_checkpoint()
        if info is None:
            raise InputError("no checkpoint is loaded or available in the WebUI")
        return CheckpointRef(name=info.model_name, title=info.title, hash=info.shorthash or info.hash)

    def adapters(self) -> list[AdapterRef]:
        networks = _networks()
        if not networks.available_networks:
            networks.list_available_networks()
        refs = []
        for name, net in networks.available_networks.items():
            refs.append(AdapterRef(name=name, path=net.filename, hash=getattr(net, "shorthash", None)))
        for ref in refs:
            ref.info = detect(Path(ref.path)).as_dict() if ref.path else {}
        return refs

    def generate(self, job: GridJob, checkpoint: CheckpointRef, prompt: str, extra: dict[str, str]) -> Generated:
        pc = copy(self.p)  # a copy keeps p.scripts: always-on scripts keep running
        pc.styles = list(self.p.styles)
        pc.prompt = prompt
        pc.seed = job.seed
        pc.subseed = -1 if getattr(self.p, "subseed", -1) == -1 else self.p.subseed
        pc.n_iter = 1
        pc.batch_size = 1
        pc.do_not_save_samples = True  # the run store keeps them
        pc.do_not_save_grid = True
        pc.override_settings = dict(self.p.override_settings)
        pc.override_settings["sd_model_checkpoint"] = checkpoint.title  # works on A1111 and Forge
        if added_network() is not None:
            # the Lora extension's "Add network to prompt" would load it into every baseline
            pc.override_settings["sd_lora"] = "None"
        pc.extra_generation_params = {**self.p.extra_generation_params, **extra}
        processed = processing.process_images(pc)
        if not processed.images:
            raise RuntimeError("the WebUI returned no image")
        loaded_info = getattr(getattr(shared, "sd_model", None), "sd_checkpoint_info", None)
        loaded_title = getattr(loaded_info, "title", None)
        if loaded_title is not None and _without_hash(loaded_title) != _without_hash(checkpoint.title):
            # the host drops an override it cannot resolve and silently uses its current model
            raise CheckpointMismatchError(
                f"the WebUI generated with {loaded_title!r} instead of {checkpoint.title!r} (see its console)"
            )
        first = getattr(processed, "index_of_first_image", 0) or 0
        if job.adapter is not None:
            loaded = {getattr(n, "name", None) for n in getattr(_networks(), "loaded_networks", [])}
            if job.adapter not in loaded:
                raise AdapterLoadError(f"the WebUI could not load adapter {job.adapter!r} (see its console)")
        return Generated(processed.images[first], processed.infotexts[first])

    def restore_checkpoint(self, checkpoint: CheckpointRef) -> None:
        """Back to the user's checkpoint the way the built-in X/Y/Z plot does it: the option
        written directly, then ``reload_model_weights()``. ``opts.set`` would fire the
        option's onchange, which takes the non-reentrant queue lock this call may hold."""
        shared.opts.data["sd_model_checkpoint"] = checkpoint.title
        if getattr(self, "_sd_lora", None) is not None:
            shared.opts.data["sd_lora"] = self._sd_lora  # kept even if overrides were not restored
        sd_models.reload_model_weights()

    def begin(self, total: int) -> None:
        self._sd_lora = shared.opts.data.get("sd_lora")
        shared.state.job_count = total
        shared.state.job_no = 0
        steps = getattr(self.p, "steps", 20) or 20
        if getattr(self.p, "enable_hr", False):
            steps += getattr(self.p, "hr_second_pass_steps", 0) or steps
        if hasattr(shared, "total_tqdm"):
            shared.total_tqdm.updateTotal(steps * total)

    def progress(self, done: int, total: int, text: str) -> None:
        shared.state.job = text
        shared.state.job_no = done
        shared.state.textinfo = text

    def interrupted(self) -> bool:
        return bool(shared.state.interrupted or getattr(shared.state, "stopping_generation", False))

    def take_skip(self) -> bool:
        if shared.state.skipped:
            shared.state.skipped = False
            return True
        return False

    def info(self) -> dict[str, Any]:
        version = None
        try:
            from modules import launch_utils

            version = launch_utils.git_tag()
        except Exception:  # noqa: BLE001 - a version string is nice to have, never required
            version = None
        keys = ("sampler_name", "scheduler", "steps", "cfg_scale", "width", "height", "negative_prompt", "enable_hr")
        info: dict[str, Any] = {"webui_version": version, "settings": {k: getattr(self.p, k, None) for k in keys}}
        added = added_network()
        if added is not None:
            info["neutralised"] = {"sd_lora": f"'Add network to prompt' ({added}) is off for every grid image"}
        return info


def _without_hash(title: str) -> str:
    """``name.safetensors [abcdef0123]`` -> ``name.safetensors``: the host adds the short hash
    to a checkpoint's title once it has computed it (on first load), so titles taken before
    and after a load differ."""
    return re.sub(r"\s*\[[0-9a-fA-F]{8,}\]$", "", title)


def added_network() -> str | None:
    """The Lora extension's "Add network to prompt" setting (``sd_lora``), when set."""
    value = getattr(shared.opts, "sd_lora", None)
    return None if value in (None, "", "None") else str(value)


# --------------------------------------------------------------------------------------
# the Script


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


PAGE_FIELDS = (
    "negative_prompt",
    "sampler_name",
    "scheduler",
    "steps",
    "cfg_scale",
    "width",
    "height",
    "enable_hr",
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
    "denoising_strength",
)


def page_settings(p: Any) -> dict[str, Any]:
    """The txt2img page's settings the grid runs with; part of the run's identity, so a
    resume with other settings is refused instead of mixing images."""
    settings: dict[str, Any] = {"prompt_prefix": p.prompt or ""}
    for name in PAGE_FIELDS:
        value = getattr(p, name, None)
        if isinstance(value, (str, int, float, bool)) or value is None:
            settings[name] = value
    return settings


def summary_text(document: dict[str, Any]) -> str:
    from .report import text_table

    return text_table(document)


def default_metrics() -> list[str]:
    """The "Default metrics" setting, checked: unknown names are dropped with a warning."""
    from .metrics import METRICS

    names = [m.strip() for m in str(opt("default_metrics", ",".join(DEFAULT_METRICS))).split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        print(f"[lycoris-eval] setting 'Default metrics': unknown {', '.join(unknown)} ignored", file=sys.stderr)
    known = [m for m in names if m in METRICS]
    return known or list(DEFAULT_METRICS)


def adapter_info(name: str) -> dict[str, Any]:
    """Detected type and training metadata of an adapter the Lora extension knows."""
    try:
        net = _networks().available_networks.get(name)
    except LycorisEvalError:
        return {}
    if net is None or not getattr(net, "filename", None):
        return {}
    return detect(Path(net.filename)).as_dict()


def eval_config_from_settings() -> Any:
    """The one place settings become an :class:`EvalConfig` (Script, API, tab)."""
    from .evaluate import EvalConfig

    return EvalConfig(
        metrics=tuple(default_metrics()),
        device=opt("device", "auto"),
        weights_dir=weights_dir(),
        batch_size=int(opt("batch_size", 8)),
        keep_models_loaded=bool(opt("keep_models", False)),
        clip_model=str(opt("clip_model", "ViT-L-14")),
        dinov2_arch=str(opt("dinov2_arch", "vitl14")),
        allow_download=not bool(opt("offline", False)),
        random_weights=bool(opt("random_weights", False)),
        adapter_info=adapter_info,
    )


def score_run(result: RunResult, spec: GridSpec) -> dict[str, Any] | None:
    """Score a finished run in-process, then free the scoring models."""
    from .evaluate import evaluate
    from .report import write_reports

    if not result.images:
        return None
    lowvram = bool(getattr(shared.cmd_opts, "lowvram", False) or getattr(shared.cmd_opts, "medvram", False))
    if lowvram:
        try:
            from modules import lowvram as lowvram_module

            lowvram_module.send_everything_to_cpu()
        except Exception:  # noqa: BLE001 - best effort: scoring still works, just tighter on VRAM
            pass
    config = eval_config_from_settings()
    config.reference_dir = Path(spec.references[0]) if spec.references else None
    config.distractor_dirs = tuple(Path(d) for d in spec.distractors)
    config.trigger = dict(spec.trigger)
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
                lines.append(f"* **{name}**: {info.get('type', 'unknown')}, trained on {base}")
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
            runner = GridRunner(WebUIHost(p), outputs_root(), grid_limit=int(opt("grid_limit", 500)))
            result = runner.run(spec, confirm_large=confirm)
        except LycorisEvalError as exc:
            _comment(p, f"LyCORIS Eval grid: {exc}")
            return processing.Processed(p, [], p.seed, f"LyCORIS Eval grid: {exc}")
        comments = [
            f"Run {result.run_id}: {result.generated} new images, {result.skipped_existing} kept from before, "
            f"{len(result.failed)} failed ({result.run_dir})"
        ]
        comments += [f"failed {key}: {error}" for key, error in list(result.failed.items())[:20]]
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


# --------------------------------------------------------------------------------------
# HTTP API


class ApiHost(WebUIHost):
    """A grid started over HTTP: progress and cancel go to its job too."""

    def __init__(self, p: Any, job: Any) -> None:
        super().__init__(p)
        self.job = job

    def progress(self, done: int, total: int, text: str) -> None:
        super().progress(done, total, text)
        self.job.progress(done, total, text)

    def interrupted(self) -> bool:
        return bool(self.job.cancel_requested) or super().interrupted()


def _txt2img_fields() -> set[str]:
    import inspect

    return set(inspect.signature(processing.StableDiffusionProcessingTxt2Img).parameters) - {"kwargs", "args"}


def host_vocabulary() -> Any:
    """Sampler, scheduler and upscaler names this WebUI accepts (with aliases)."""
    from .base_values import HostVocabulary

    samplers = schedulers = upscalers = None
    try:
        from modules import sd_samplers

        samplers = [s.name for s in sd_samplers.all_samplers] + [
            a for s in sd_samplers.all_samplers for a in (getattr(s, "aliases", None) or [])
        ]
    except (ImportError, AttributeError):
        pass
    try:
        from modules import sd_schedulers

        schedulers = [n for s in sd_schedulers.schedulers for n in (s.name, s.label, *(s.aliases or []))]
        schedulers.append("Automatic")
    except (ImportError, AttributeError):
        pass
    names = [getattr(u, "name", None) for u in getattr(shared, "sd_upscalers", None) or []]
    if any(names):
        upscalers = [n for n in names if n] + list(getattr(shared, "latent_upscale_modes", None) or {})
    return HostVocabulary(samplers, schedulers, upscalers)


def check_base(base: dict[str, Any]) -> None:
    """Names and values of the ``base`` txt2img settings, before any job exists."""
    from .base_values import check_base_values

    known = _txt2img_fields()
    for key in base:
        if key != "prompt_prefix" and key not in known:
            raise SpecError(f"base.{key}", "not a txt2img field of this WebUI")
    check_base_values(base, host_vocabulary())


_APP: dict[str, Any] = {}


def host_api() -> Any:
    """The host's ``modules.api.api.Api`` instance (the owner of ``/sdapi/v1/txt2img``)."""
    app = _APP.get("app")
    for route in getattr(app, "routes", []) if app is not None else []:
        if getattr(route, "path", None) == "/sdapi/v1/txt2img":
            return getattr(route.endpoint, "__self__", None)
    return None


def setup_txt2img_scripts(p: Any) -> None:
    """Give an API-made ``p`` the txt2img script runner and its default arguments, as the
    host's own ``text2imgapi`` does. Without ``p.scripts`` the host strips the ``<lora:…>``
    tags from the infotext (``p.prompts`` is reset only for scripted runs) and always-on
    scripts do not run."""
    runner = scripts.scripts_txt2img
    api = host_api()  # its __init__ has initialised the runner, as for text2imgapi
    if runner is None or api is None:
        raise LycorisEvalError("the WebUI's API is not running (start it with --api or --nowebui)")
    if not getattr(api, "default_script_arg_txt2img", None):
        api.default_script_arg_txt2img = api.init_default_script_args(runner)
    p.scripts = runner
    p.script_args = tuple(api.default_script_arg_txt2img)


def api_run_grid(spec: GridSpec, confirm: bool, job: Any) -> RunResult:
    fields = {k: v for k, v in spec.base.items() if k != "prompt_prefix"}
    p = processing.StableDiffusionProcessingTxt2Img(
        sd_model=shared.sd_model, prompt=str(spec.base.get("prompt_prefix", "")), **fields
    )
    p.is_api = True
    p.outpath_grids = getattr(shared.opts, "outdir_txt2img_grids", "outputs/txt2img-grids")
    p.outpath_samples = getattr(shared.opts, "outdir_txt2img_samples", "outputs/txt2img-images")
    setup_txt2img_scripts(p)
    spec.base = {**page_settings(p), **spec.base}
    shared.state.begin(job="lycoris_eval_grid")
    try:
        result = GridRunner(ApiHost(p, job), outputs_root(), grid_limit=int(opt("grid_limit", 500))).run(spec, confirm)
    finally:
        shared.state.end()
    if spec.score and not result.interrupted and not result.stopped:
        job.progress(job.done, job.total, "scoring")
        score_run(result, spec)
    return result


def allowed_roots() -> list[Path]:
    roots = [outputs_root(), _data_path() / "outputs"]
    for key in ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples"):
        value = getattr(shared.opts, key, "")
        if value:
            roots.append(Path(value) if Path(value).is_absolute() else _data_path() / value)
    roots += [Path(line.strip()) for line in str(opt("allowed_roots", "")).splitlines() if line.strip()]
    return roots


def encoders_status() -> list[dict[str, Any]]:
    from .encoders import ENCODERS, LOADED_ENCODERS, EncoderOptions, make_encoder
    from .errors import MissingWeightsError

    config = eval_config_from_settings()
    options = EncoderOptions(config.device, config.weights_dir, config.random_weights, False, config.batch_size)
    kwargs = {"openclip": {"model_name": config.clip_model}, "dinov2": {"arch": config.dinov2_arch}}
    out = []
    for name in ENCODERS:
        entry: dict[str, Any] = {"name": name, "loaded": name in LOADED_ENCODERS, "device": None}
        try:
            encoder = make_encoder(name, options, **kwargs.get(name, {}))
            entry["device"] = LOADED_ENCODERS.get(name, encoder.device)
            entry["weights"] = encoder.weights_identity()
            entry["present"] = True
        except MissingWeightsError as exc:
            entry.update(present=False, message=str(exc))
        except LycorisEvalError as exc:
            entry.update(present=False, message=str(exc))
        out.append(entry)
    return out


def api_services() -> Any:
    from .api import ApiServices, parse_credentials

    def webui_version() -> str | None:
        return WebUIHost(None).info().get("webui_version")

    def queue_lock() -> Any:
        from modules import call_queue

        return call_queue.queue_lock

    return ApiServices(
        outputs_root=outputs_root(),
        data_path=_data_path(),
        allowed_roots=allowed_roots,
        credentials=lambda: parse_credentials(getattr(shared.cmd_opts, "api_auth", None)),
        adapters=lambda: WebUIHost(None).adapters(),
        queue_lock=queue_lock,
        run_grid=api_run_grid,
        eval_config=eval_config_from_settings,
        interrupt=lambda: shared.state.interrupt(),
        webui_version=webui_version,
        encoders_status=encoders_status,
        check_base=check_base,
        prepare_grid=lambda spec, confirm: GridRunner(
            WebUIHost(None), outputs_root(), grid_limit=int(opt("grid_limit", 500))
        ).prepare(spec, confirm),
    )


# --------------------------------------------------------------------------------------
# the Evaluate tab and "Evaluate after X/Y/Z"

XYZ_DIR = "xyz-last"


_PROCESS_STARTED = time.time()


def last_xyz() -> Path | None:
    """The cells of the last X/Y/Z plot made by this WebUI process; a capture left by an
    earlier process (before a restart) is not "the last grid" and is ignored."""
    folder = outputs_root() / XYZ_DIR
    images = list(folder.glob("*.png"))
    if not images or max(p.stat().st_mtime for p in images) < _PROCESS_STARTED:
        return None
    return folder


def ui_services() -> Any:
    from .ui import WEBUI_RANDOM_WEIGHTS_HINT, UiServices

    def lock() -> Any:
        from modules import call_queue

        return call_queue.queue_lock

    return UiServices(
        outputs_root=outputs_root(),
        data_path=_data_path(),
        allowed_roots=allowed_roots,
        eval_config=eval_config_from_settings,
        last_xyz=last_xyz,
        lock=lock,
        default_metrics=default_metrics,
        random_weights_hint=WEBUI_RANDOM_WEIGHTS_HINT,
    )


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    from .ui import build_ui

    return [(build_ui(ui_services()), "LyCORIS Eval", "lycoris_eval")]


def _with_infotext_params(infotext: str, params: dict[str, str]) -> str:
    from .infotext import _RE_PARAM

    extra = ", ".join(f"{k}: {json.dumps(v) if ',' in v or ':' in v else v}" for k, v in params.items())
    lines = infotext.rstrip("\n").split("\n") if infotext else [""]
    if len(_RE_PARAM.findall(lines[-1])) >= 3:
        lines[-1] = f"{lines[-1]}, {extra}"
    else:
        lines.append(extra)
    return "\n".join(lines)


def save_xyz_capture(cells: list[tuple[Any, str, str, str, str]]) -> Path:
    """Write the last X/Y/Z grid's cell images (from memory) with their axis labels."""
    from .grid_runner import png_bytes
    from .infotext import GROUP_KEY
    from .report import write_atomic_bytes

    folder = outputs_root() / XYZ_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for index, (image, infotext, x_label, y_label, z_label) in enumerate(cells):
        labels = [f"{axis}: {label}" for axis, label in (("X", x_label), ("Y", y_label), ("Z", z_label)) if label]
        text = _with_infotext_params(infotext or "", {GROUP_KEY: " | ".join(labels)} if labels else {})
        write_atomic_bytes(folder / f"cell-{index:04d}.png", png_bytes(image, text))
    return folder


def wrap_draw_xyz_grid(xyz: Any) -> None:
    """Record each X/Y/Z cell's image and labels as the plot made them (once per module)."""
    original = getattr(xyz, "draw_xyz_grid", None)
    if original is None or getattr(original, "_lycoris_eval", False):
        return

    def draw_xyz_grid(p: Any, *args: Any, **kwargs: Any) -> Any:
        names = ("xs", "ys", "zs", "x_labels", "y_labels", "z_labels", "cell")
        values = dict(zip(names, args))
        values.update({k: v for k, v in kwargs.items() if k in names})
        cell, captured = values.get("cell"), []
        if cell is None:
            return original(p, *args, **kwargs)

        # seeds are repetitions, not conditions: a seed axis does not split cells
        seed_axes = {
            key
            for key, axis in (("x_labels", "xyz_plot_x"), ("y_labels", "xyz_plot_y"), ("z_labels", "xyz_plot_z"))
            if getattr(getattr(getattr(shared.state, axis, None), "axis", None), "label", "") in ("Seed", "Var. seed")
        }

        def recording_cell(x: Any, y: Any, z: Any, ix: int, iy: int, iz: int) -> Any:
            res = cell(x, y, z, ix, iy, iz)
            if getattr(res, "images", None) and not (shared.state.interrupted or shared.state.skipped):
                labels = [
                    str(values[k][i]) if values.get(k) and k not in seed_axes else ""
                    for k, i in (("x_labels", ix), ("y_labels", iy), ("z_labels", iz))
                ]
                # every image of the cell (batch count/size > 1), never the batch grid the
                # host puts first when "return grid" is on
                first = getattr(res, "index_of_first_image", 0) or 0
                infotexts = list(getattr(res, "infotexts", None) or [])
                for n, image in enumerate(res.images[first:]):
                    index = first + n
                    infotext = infotexts[index] if index < len(infotexts) else ""
                    captured.append((image, infotext, *labels))
            return res

        if "cell" in kwargs:
            kwargs["cell"] = recording_cell
        else:
            args = tuple(recording_cell if i == 6 else a for i, a in enumerate(args))
        result = original(p, *args, **kwargs)
        if captured:
            try:
                save_xyz_capture(captured)
            except OSError as exc:
                print(f"[lycoris-eval] could not keep the X/Y/Z cells for evaluation: {exc}", file=sys.stderr)
        return result

    draw_xyz_grid._lycoris_eval = True  # type: ignore[attr-defined]
    xyz.draw_xyz_grid = draw_xyz_grid


def on_app_started(demo: Any, app: Any) -> None:
    """Mount the API when the WebUI's API is on (``--api`` or ``--nowebui``)."""
    _APP["app"] = app
    if getattr(shared.cmd_opts, "api", False) or getattr(shared.cmd_opts, "nowebui", False):
        from .api import mount

        mount(app, api_services())


# --------------------------------------------------------------------------------------
# X/Y/Z plot axes


def _xyz_module() -> Any:
    for data in getattr(scripts, "scripts_data", []):
        if data.script_class.__module__ in ("xyz_grid.py", "xyz_grid", "scripts.xyz_grid"):
            return data.module
    return sys.modules.get("scripts.xyz_grid") or sys.modules.get("xyz_grid.py")


def _replace_lora_tag(p: Any, name: str | None, weight: float | None) -> None:
    import re

    previous = getattr(p, "lycoris_eval_tag", None)
    if previous and previous in p.prompt:
        p.prompt = p.prompt.replace(previous, "").rstrip(" ,")
    if name is None:
        if weight is None:
            return
        tags = re.findall(r"<(?:lora|lyco):([^:>]+)(?::[^>]*)?>", p.prompt)
        if not tags:
            if _adapter_axis_in_plot():
                return  # the adapter axis is applied after this one and uses the weight
            raise RuntimeError("LyCORIS: adapter weight needs an adapter: add the adapter axis or a <lora:…> tag")
        p.prompt = re.sub(
            r"<(lora|lyco):([^:>]+)(?::[^>]*)?>", lambda m: f"<{m.group(1)}:{m.group(2)}:{weight:g}>", p.prompt
        )
        return
    tag = f"<lora:{name}:{(1.0 if weight is None else weight):g}>"
    p.prompt = f"{p.prompt}, {tag}" if p.prompt else tag
    p.lycoris_eval_tag = tag


def _adapter_axis_in_plot() -> bool:
    """The X/Y/Z plot publishes its axes in ``state.xyz_plot_x/y/z`` before the first cell."""
    for axis in ("xyz_plot_x", "xyz_plot_y", "xyz_plot_z"):
        info = getattr(shared.state, axis, None)
        if info is not None and getattr(info.axis, "label", None) == AXIS_ADAPTER:
            return True
    return False


def apply_adapter(p: Any, x: str, xs: list[str]) -> None:
    p.lycoris_eval_adapter = None if x in ("", "None", "none") else x
    _replace_lora_tag(p, p.lycoris_eval_adapter, getattr(p, "lycoris_eval_weight", None))
    if p.lycoris_eval_adapter is not None:
        # a new dict: copy(p) in the X/Y/Z plot shares this one with every other cell
        p.extra_generation_params = {**p.extra_generation_params, "LyCORIS adapter": x}


def apply_weight(p: Any, x: float, xs: list[float]) -> None:
    p.lycoris_eval_weight = float(x)
    _replace_lora_tag(p, getattr(p, "lycoris_eval_adapter", None), p.lycoris_eval_weight)


def confirm_adapters(p: Any, xs: list[str]) -> None:
    names = set(_networks().available_networks)
    for x in xs:
        if x in ("", "None", "none"):
            continue
        if x not in names:
            close = difflib.get_close_matches(x, sorted(names), n=3, cutoff=0.5)
            raise RuntimeError(f"Unknown adapter: {x}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    if len(set(xs)) != len(xs):
        raise RuntimeError("LyCORIS: adapter values are duplicated")


def confirm_weights(p: Any, xs: list[float]) -> None:
    for x in xs:
        if not -MAX_ABS_WEIGHT <= float(x) <= MAX_ABS_WEIGHT:
            raise RuntimeError(f"LyCORIS: adapter weight {x} is outside -{MAX_ABS_WEIGHT:g}..{MAX_ABS_WEIGHT:g}")
    if len(set(xs)) != len(xs):
        raise RuntimeError("LyCORIS: adapter weight values are duplicated")


def register_xyz_axes() -> bool:
    """Add the two axes to the built-in X/Y/Z plot, once (re-import replaces, not duplicates)."""
    xyz = _xyz_module()
    if xyz is None:
        return False
    xyz.axis_options[:] = [o for o in xyz.axis_options if o.label not in (AXIS_ADAPTER, AXIS_WEIGHT)]

    def adapter_choices() -> list[str]:
        return sorted(_networks().available_networks, key=str.casefold)

    xyz.axis_options.append(
        xyz.AxisOption(
            AXIS_ADAPTER,
            str,
            apply_adapter,
            format_value=xyz.format_value,
            confirm=confirm_adapters,
            choices=adapter_choices,
        )
    )
    xyz.axis_options.append(xyz.AxisOption(AXIS_WEIGHT, float, apply_weight, confirm=confirm_weights))
    wrap_draw_xyz_grid(xyz)
    return True


def setup() -> None:
    """Called once at import by the entry script: settings and axes now (API-only mode never
    runs ``on_ui_settings`` nor builds the X/Y/Z UI), and again before the UI and at app
    start in case the X/Y/Z plot loads after us."""
    on_ui_settings()  # registered now so /sdapi/v1/options can set them under --nowebui too
    script_callbacks.on_ui_settings(on_ui_settings)
    script_callbacks.on_app_started(on_app_started)
    script_callbacks.on_ui_tabs(on_ui_tabs)
    if not register_xyz_axes():
        script_callbacks.on_before_ui(register_xyz_axes)
        script_callbacks.on_app_started(lambda *_: register_xyz_axes())
