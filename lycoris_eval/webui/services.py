"""What the HTTP API and the Evaluate tab get from the WebUI: grids run from an API call
(with the host's script runner, as ``text2imgapi`` makes its ``p``), checks of ``base``
values against the host's vocabularies, encoder status, the queue lock, the tab's services.

v1.10.1 counterparts: ``modules/api/api.py`` (``Api``, ``text2imgapi``),
``modules/call_queue.py`` (``queue_lock``), ``modules/sd_samplers.py``,
``modules/sd_schedulers.py``.
"""

from __future__ import annotations

from typing import Any

from modules import processing, scripts, shared

from lycoris_eval.errors import LycorisEvalError, MissingWeightsError
from lycoris_eval.grid.host import RunResult
from lycoris_eval.grid.spec import GridSpec
from lycoris_eval.grid.store import RunStore
from lycoris_eval.webui.host import WebUIHost, check_base, page_settings
from lycoris_eval.webui.script import score_run
from lycoris_eval.webui.settings import (
    _data_path,
    allowed_roots,
    default_metrics,
    eval_config_from_settings,
    grid_runner,
    outputs_root,
)
from lycoris_eval.webui.xyz_capture import last_xyz


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
    if runner is None:
        raise LycorisEvalError("the WebUI's txt2img scripts are not loaded yet")
    api = host_api()  # its __init__ has initialised the runner, as for text2imgapi
    if api is None:  # the tab without --api: the same defaults, from the host's own function
        from modules.api.api import Api

        _APP.setdefault("default_args", Api.init_default_script_args(None, runner))  # `self` is unused there
        defaults = _APP["default_args"]
    else:
        if not getattr(api, "default_script_arg_txt2img", None):
            api.default_script_arg_txt2img = api.init_default_script_args(runner)
        defaults = api.default_script_arg_txt2img
    p.scripts = runner
    p.script_args = tuple(defaults)


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
        result = grid_runner(ApiHost(p, job)).run(spec, confirm)
    finally:
        shared.state.end()
    if spec.score and not result.interrupted and not result.stopped:
        report = getattr(job, "scoring_progress", None)  # an API job shows the scoring's steps
        if report is not None:
            report(0, 0, "loading the scoring models")
        score_run(result, spec, report)
    return result


class _TabJob:
    """What :func:`api_run_grid` needs of a job, for a grid started from the tab."""

    cancel_requested = False

    def __init__(self, progress: Any) -> None:
        self.report = progress
        self.done = self.total = 0

    def progress(self, done: int, total: int, text: str) -> None:
        self.done, self.total = done, total
        self.report(done, total, text)


def tab_extend_run(run_id: str, count: int, progress: Any) -> RunResult:
    """The tab's "add seeds": the run's grid with ``count`` more seeds, resumed under its id
    (only the new images are made), behind the WebUI's queue lock."""

    store = RunStore(outputs_root(), run_id)
    spec = GridSpec.from_dict(store.read_manifest()["spec"]).with_more_seeds(count)
    spec.run_id, spec.score = run_id, False  # the tab scores it again itself, with the same settings
    with queue_lock():  # not confirmed: a grid over the size limit is refused, naming the limit
        return api_run_grid(spec, False, _TabJob(progress))


def encoders_status() -> list[dict[str, Any]]:
    # lazy: encoders imports numpy at its top
    from lycoris_eval.scoring.encoders import ENCODERS, LOADED_ENCODERS, EncoderOptions, make_encoder

    # lazy: base imports numpy at its top
    from lycoris_eval.scoring.encoders.base import pool_status

    config = eval_config_from_settings()
    options = EncoderOptions(
        config.device, config.weights_dir, config.random_weights, False, config.batch_size, precision=config.precision
    )
    kwargs = {"openclip": {"model_name": config.clip_model}, "dinov2": {"arch": config.dinov2_arch}}
    out = []
    kept = pool_status()
    for name in ENCODERS:
        entry: dict[str, Any] = {"name": name, "loaded": name in LOADED_ENCODERS, "device": None}
        entry["kept"] = name in kept  # loaded and kept between evaluations (setting "keep models")
        entry["memory_mib"] = kept.get(name, {}).get("memory_mib")
        try:
            encoder = make_encoder(name, options, **kwargs.get(name, {}))
            entry["device"] = LOADED_ENCODERS.get(name, encoder.device)
            entry["weights"] = encoder.weights_identity()
            entry["present"] = True
        except MissingWeightsError as exc:
            entry.update(present=False, message=exc.words("api"))
        except LycorisEvalError as exc:
            entry.update(present=False, message=exc.words("api"))
        out.append(entry)
    return out


def api_services() -> Any:
    # lazy: routes imports fastapi (only when the API is mounted)
    from lycoris_eval.api.routes import ApiServices, parse_credentials

    def webui_version() -> str | None:
        return WebUIHost(None).info().get("webui_version")

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
        prepare_grid=lambda spec, confirm: grid_runner(WebUIHost(None)).prepare(spec, confirm),
    )


def queue_lock() -> Any:
    """The WebUI's own queue lock: API jobs and tab evaluations wait their turn behind generations."""
    from modules import call_queue  # lazy: the host's modules exist only inside a running WebUI

    return call_queue.queue_lock


def ui_services() -> Any:
    # lazy: ui imports numpy at its top
    from lycoris_eval.tab.ui import UiServices

    return UiServices(
        outputs_root=outputs_root(),
        data_path=_data_path(),
        allowed_roots=allowed_roots,
        eval_config=eval_config_from_settings,
        last_xyz=last_xyz,
        lock=queue_lock,
        default_metrics=default_metrics,
        front="webui",  # messages name the WebUI's settings
        extend_run=tab_extend_run,
    )


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    from lycoris_eval.tab.ui import build_ui  # lazy: ui imports numpy at its top

    return [(build_ui(ui_services()), "LyCORIS Eval", "lycoris_eval")]


def on_app_started(demo: Any, app: Any) -> None:
    """Mount the API when the WebUI's API is on (``--api`` or ``--nowebui``)."""
    _APP["app"] = app
    if getattr(shared.cmd_opts, "api", False) or getattr(shared.cmd_opts, "nowebui", False):
        from lycoris_eval.api.routes import mount  # lazy: routes imports fastapi (only when the API is mounted)

        mount(app, api_services())
