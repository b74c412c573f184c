"""The host: the WebUI's processing pipeline as a :class:`lycoris_eval.grid.runner.Host`
(checkpoints, adapters, one image, restore, progress, Interrupt/Skip).

v1.10.1 counterparts: ``modules/processing.py`` (``process_images``,
``override_settings``), ``modules/sd_models.py`` (``checkpoints_list``,
``reload_model_weights``), ``modules/shared.py`` (``state``, ``opts``),
``extensions-builtin/Lora/networks.py`` (``available_networks``, ``loaded_networks``).
"""

from __future__ import annotations

import inspect
import re
import sys
from copy import copy
from pathlib import Path
from typing import Any

from modules import processing, sd_models, shared

from lycoris_eval.errors import (
    AdapterLoadError,
    AdapterNotAppliedError,
    CheckpointMismatchError,
    InputError,
    LycorisEvalError,
    SpecError,
)
from lycoris_eval.grid.base_values import HostVocabulary, check_base_values
from lycoris_eval.grid.host import AdapterRef, CheckpointRef, Generated
from lycoris_eval.grid.spec import GridJob
from lycoris_eval.inputs.adapter_types import detect
from lycoris_eval.inputs.families import checkpoint_family
from lycoris_eval.inputs.safetensors_header import read_safetensors_header
from lycoris_eval.webui import model_loading
from lycoris_eval.webui.formats import with_verdict
from lycoris_eval.webui.patches import APPLIED_UNKNOWN, NOT_APPLIED, adapter_applied


def _networks() -> Any:
    module = sys.modules.get("networks")
    if module is None:
        try:
            import networks as module  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise LycorisEvalError("the built-in Lora extension is not loaded (extensions-builtin/Lora)") from exc
    return module


def adapter_info(name: str) -> dict[str, Any]:
    """Detected type and training metadata of an adapter the Lora extension knows."""
    try:
        net = _networks().available_networks.get(name)
    except LycorisEvalError:
        return {}
    if net is None or not getattr(net, "filename", None):
        return {}
    return detect(Path(net.filename)).as_dict()


class WebUIHost:
    """:class:`lycoris_eval.grid.runner.Host` over the WebUI's modules."""

    def __init__(self, p: Any) -> None:
        self.p = p

    def checkpoints(self) -> list[CheckpointRef]:
        refs = []
        for info in sd_models.checkpoints_list.values():
            family = checkpoint_family(getattr(info, "filename", None)).family
            hashed = info.shorthash or info.hash
            refs.append(CheckpointRef(name=info.model_name, title=info.title, hash=hashed, family=family))
            if info.name != info.model_name:
                refs.append(CheckpointRef(name=info.name, title=info.title, hash=hashed, family=family))
        return refs

    def current_checkpoint(self) -> CheckpointRef:
        info = model_loading.user_checkpoint_info()
        if info is None:
            raise InputError("no checkpoint is loaded or available in the WebUI")
        family = checkpoint_family(getattr(info, "filename", None)).family
        return CheckpointRef(name=info.model_name, title=info.title, hash=info.shorthash or info.hash, family=family)

    def adapters(self) -> list[AdapterRef]:
        networks = _networks()
        if not networks.available_networks:
            networks.list_available_networks()
        refs = []
        for name, net in networks.available_networks.items():
            refs.append(AdapterRef(name=name, path=net.filename, hash=getattr(net, "shorthash", None)))
        for ref in refs:
            ref.info = with_verdict(detect(Path(ref.path)).as_dict()) if ref.path else {}
        return refs

    def generate(self, job: GridJob, checkpoint: CheckpointRef, prompt: str, extra: dict[str, str]) -> Generated:
        pc = copy(self.p)  # a copy keeps p.scripts: always-on scripts keep running
        pc.styles = list(self.p.styles)
        pc.prompt = prompt
        pc.seed = job.seed
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
        model_loading.sync_model_selection()
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
        note = _check_applied(job.adapter) if job.adapter is not None else None
        return Generated(processed.images[first], processed.infotexts[first], note=note)

    def restore_checkpoint(self, checkpoint: CheckpointRef) -> None:
        """Back to the user's checkpoint the way the built-in X/Y/Z plot does it: the option
        written directly, then ``reload_model_weights()``. ``opts.set`` would fire the
        option's onchange, which takes the non-reentrant queue lock this call may hold."""
        shared.opts.data["sd_model_checkpoint"] = checkpoint.title
        if getattr(self, "_sd_lora", None) is not None:
            shared.opts.data["sd_lora"] = self._sd_lora  # kept even if overrides were not restored
        sd_models.reload_model_weights()  # a no-op in Forge, which loads on the next image:
        model_loading.sync_model_selection()  # there, the user's checkpoint is the one it will load

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
            from modules import launch_utils  # lazy: the host's modules exist only inside a running WebUI

            version = launch_utils.git_tag()
        except Exception:  # noqa: BLE001 - a version string is nice to have, never required
            version = None
        keys = ("sampler_name", "scheduler", "steps", "cfg_scale", "width", "height", "negative_prompt", "enable_hr")
        info: dict[str, Any] = {"webui_version": version, "settings": {k: getattr(self.p, k, None) for k in keys}}
        added = added_network()
        if added is not None:
            info["neutralised"] = {"sd_lora": f"'Add network to prompt' ({added}) is off for every grid image"}
        return info


def _check_applied(adapter: str) -> str | None:
    """The adapter was loaded *and* changed the model that made this image (this checkpoint,
    this image: never extrapolated to the rest of the run). A file whose keys match no layer
    of this checkpoint loads without error in every host and changes nothing (the WebUI logs
    it at debug level, Forge prints "LoRA version mismatch", reForge "NOT LOADED"), so its
    image is not kept. On a host whose patch records no probe knows, the image is kept and
    the returned note says the check could not be made."""
    nets = [n for n in getattr(_networks(), "loaded_networks", []) if getattr(n, "name", None) == adapter]
    if not nets:
        raise AdapterLoadError(f"the WebUI could not load adapter {adapter!r} (see its console)")
    applied, _how = adapter_applied(getattr(shared, "sd_model", None), nets[0])
    if applied is None:
        return APPLIED_UNKNOWN.format(adapter=adapter)
    if not applied and not _readable(getattr(getattr(nets[0], "network_on_disk", None), "filename", None)):
        # Forge lists a corrupt file, fails to read it and moves it to *.corrupted
        raise AdapterLoadError(f"the WebUI could not load adapter {adapter!r} (see its console)")
    if not applied:
        raise AdapterNotAppliedError(NOT_APPLIED.format(adapter=adapter))
    return None


def _readable(filename: str | None) -> bool:
    if not filename or not Path(filename).is_file():
        return False
    if not filename.lower().endswith(".safetensors"):
        return True
    try:
        read_safetensors_header(Path(filename))
    except (OSError, ValueError):
        return False
    return True


def _without_hash(title: str) -> str:
    """``name.safetensors [abcdef0123]`` -> ``name.safetensors``: the host adds the short hash
    to a checkpoint's title once it has computed it (on first load), so titles taken before
    and after a load differ."""
    return re.sub(r"\s*\[[0-9a-fA-F]{8,}\]$", "", title)


def added_network() -> str | None:
    """The Lora extension's "Add network to prompt" setting (``sd_lora``), when set."""
    value = getattr(shared.opts, "sd_lora", None)
    return None if value in (None, "", "None") else str(value)


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


def _txt2img_fields() -> set[str]:

    return set(inspect.signature(processing.StableDiffusionProcessingTxt2Img).parameters) - {"kwargs", "args"}


def host_vocabulary() -> Any:
    """Sampler, scheduler and upscaler names this WebUI accepts (with aliases)."""

    samplers = schedulers = upscalers = None
    try:
        from modules import sd_samplers  # lazy: the host's modules exist only inside a running WebUI

        samplers = [s.name for s in sd_samplers.all_samplers] + [
            a for s in sd_samplers.all_samplers for a in (getattr(s, "aliases", None) or [])
        ]
    except (ImportError, AttributeError):
        pass
    try:
        from modules import sd_schedulers  # lazy: the host's modules exist only inside a running WebUI

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

    known = _txt2img_fields()
    for key in base:
        if key != "prompt_prefix" and key not in known:
            raise SpecError(f"base.{key}", "not a txt2img field of this WebUI")
    check_base_values(base, host_vocabulary())
