"""process_images / Processed / StableDiffusionProcessingTxt2Img as in v1.10.1, reduced.

Generation is simulated: a deterministic picture of (loaded checkpoint, prompt without
network tags, seed), tinted by each loaded network. ``FAILURES`` injects host errors.
"""

import hashlib
import json
import random
import re

import numpy as np
from PIL import Image

from modules import devices, sd_models, shared
from modules.shared import opts, state

FAILURES = {}  # substring of prompt -> number of times to raise NansException (-1: always)
CALLS = []  # (checkpoint title, prompt, seed) per generated image
DURING_SAMPLING = []  # callables run while "sampling" (where a user's Skip/Interrupt lands)


def fix_seed(p):
    if p.seed is None or p.seed == -1:
        p.seed = int(random.randrange(4294967294))
    if p.subseed is None or p.subseed == -1:
        p.subseed = int(random.randrange(4294967294))


class StableDiffusionProcessing:
    def __init__(
        self,
        prompt="",
        negative_prompt="",
        seed=-1,
        subseed=-1,
        sampler_name="Euler a",
        scheduler=None,
        steps=4,
        cfg_scale=7.0,
        width=64,
        height=64,
        n_iter=1,
        batch_size=1,
        styles=None,
        override_settings=None,
        override_settings_restore_afterwards=True,
        do_not_save_samples=False,
        do_not_save_grid=False,
        enable_hr=False,
        sd_model=None,
        restore_faces=None,
        tiling=None,
        denoising_strength=None,
        hr_scale=2.0,
        hr_upscaler=None,
        hr_second_pass_steps=0,
        eta=None,
    ):
        # the real p is a dataclass: an unknown keyword is a TypeError
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.seed = seed
        self.subseed = subseed
        self.subseed_strength = 0
        self.sampler_name = sampler_name
        self.scheduler = scheduler or "Automatic"
        self.steps = steps
        self.cfg_scale = cfg_scale
        self.width = width
        self.height = height
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.styles = styles or []
        self.override_settings = dict(override_settings or {})
        self.override_settings_restore_afterwards = override_settings_restore_afterwards
        self.do_not_save_samples = do_not_save_samples
        self.do_not_save_grid = do_not_save_grid
        self.extra_generation_params = {}
        self.comments = {}  # v1.10.1: a dict used as an ordered set (p.comment(text))
        self.scripts = None  # v1.10.1: field(init=False); the caller sets p.scripts afterwards
        self.script_args = []
        self.enable_hr = enable_hr
        self.hr_second_pass_steps = hr_second_pass_steps
        self.all_prompts = None
        self.all_seeds = None
        self.all_subseeds = None
        self.outpath_samples = "outputs/txt2img-images"
        self.outpath_grids = "outputs/txt2img-grids"
        self.sd_model = sd_model
        self.restore_faces = restore_faces
        self.tiling = tiling
        self.denoising_strength = denoising_strength
        self.hr_scale = hr_scale
        self.hr_upscaler = hr_upscaler
        self.eta = eta

    def comment(self, text):
        self.comments[text] = 1


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    pass


class Processed:
    def __init__(
        self,
        p,
        images_list,
        seed=-1,
        info="",
        subseed=None,
        all_prompts=None,
        all_negative_prompts=None,
        all_seeds=None,
        all_subseeds=None,
        index_of_first_image=0,
        infotexts=None,
        comments="",
    ):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.info = info
        # as v1.10.1: the comments argument is ignored; p.comments is what the UI shows
        self.comments = "".join(f"{comment}\n" for comment in p.comments)
        self.width = p.width
        self.height = p.height
        self.all_prompts = all_prompts or p.all_prompts or [p.prompt]
        self.all_seeds = all_seeds or p.all_seeds or [seed]
        self.infotexts = infotexts or [info] * len(images_list)
        self.index_of_first_image = index_of_first_image


def quote(text):
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def create_infotext(p, prompt, seed):
    model = shared.sd_model.sd_checkpoint_info
    params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Seed": seed,
        "Size": f"{p.width}x{p.height}",
        "Model hash": model.shorthash,
        "Model": model.name_for_extra,
        **p.extra_generation_params,
        "Version": "v1.10.1" if opts.add_version_to_infotext else None,
    }
    text = ", ".join(k if k == v else f"{k}: {quote(v)}" for k, v in params.items() if v is not None)
    negative = f"\nNegative prompt: {p.negative_prompt}" if p.negative_prompt else ""
    return f"{prompt}{negative}\n{text}".strip()


def _picture(checkpoint, prompt, seed, networks, width, height):
    base = re.sub(r"<[^>]+>", "", prompt)
    digest = hashlib.sha256(f"{checkpoint}|{' '.join(base.split())}|{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    freq, phase = rng.uniform(2, 9, 3), rng.uniform(0, 6.3, 3)
    img = np.stack([0.5 + 0.5 * np.sin(freq[c] * (x + (c + 1) * y) + phase[c]) for c in range(3)], -1)
    for net in networks:
        tint = np.frombuffer(hashlib.sha256(net.name.encode()).digest()[:3], np.uint8) / 255.0
        img = img * (1 - 0.4 * net.te_multiplier) + tint * 0.4 * net.te_multiplier
    return Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))


def process_images(p):
    """v1.10.1: before_process, override_settings (checkpoint), process_images_inner, restore."""
    if p.scripts is not None:
        p.scripts.before_process(p)
    stored_opts = {
        k: opts.data[k] if k in opts.data else opts.get_default(k) for k in p.override_settings.keys() if k in opts.data
    }
    try:
        if sd_models.checkpoint_aliases.get(p.override_settings.get("sd_model_checkpoint")) is None:
            p.override_settings.pop("sd_model_checkpoint", None)
            sd_models.reload_model_weights()
        for k, v in p.override_settings.items():
            opts.set(k, v, is_api=True, run_callbacks=False)
            if k == "sd_model_checkpoint":
                sd_models.reload_model_weights()
        res = process_images_inner(p)
    finally:
        if p.override_settings_restore_afterwards:
            for k, v in stored_opts.items():
                setattr(opts, k, v)
    return res


def process_images_inner(p):
    import networks

    fix_seed(p)
    if state.job_count == -1:
        state.job_count = p.n_iter
    p.all_prompts = [p.prompt] * (p.n_iter * p.batch_size)
    p.all_seeds = [int(p.seed) + i for i in range(len(p.all_prompts))]
    p.all_subseeds = [int(p.subseed) + i for i in range(len(p.all_prompts))]
    images, infotexts = [], []
    for n in range(p.n_iter):
        if state.skipped:
            state.skipped = False
        if state.interrupted or state.stopping_generation:
            break
        prompt = p.all_prompts[n]
        seed = p.all_seeds[n]
        lora = opts.data.get("sd_lora", "None")
        if lora not in (None, "", "None") and lora in networks.available_networks and f"<lora:{lora}:" not in prompt:
            prompt = f"{prompt}<lora:{lora}:1>"  # "Add network to prompt" (extra_networks_lora.py)
        missing = networks.activate(prompt)
        if missing:
            p.comment("Networks not found: " + ", ".join(missing))
        for needle, remaining in list(FAILURES.items()):
            if needle in prompt and remaining != 0:
                FAILURES[needle] = remaining - 1 if remaining > 0 else remaining
                raise devices.NansException("A tensor with all NaNs was produced in Unet.")
        for hook in DURING_SAMPLING:
            hook(p)  # a Skip here ends sampling early: the (partial) image is still returned
        checkpoint = shared.sd_model.sd_checkpoint_info.title
        CALLS.append((checkpoint, prompt, seed))
        images.append(_picture(checkpoint, prompt, seed, networks.loaded_networks, p.width, p.height))
        # v1.10.1: parse_extra_network_prompts() strips the tags from p.prompts, which are
        # reset to all_prompts only `if p.scripts is not None`: without a script runner the
        # infotext has no <lora:…> tag (the Lora hashes field still names the networks)
        shown = prompt if p.scripts is not None else re.sub(r"<[^>]+>", "", prompt).strip(" ,")
        infotexts.append(create_infotext(p, shown, seed))
        state.nextjob()
    first = 0
    multiple = len(images) >= 2 or not opts.data.get("grid_only_if_multiple", True)
    if opts.data.get("return_grid") and not p.do_not_save_grid and multiple:
        # the batch grid goes first, with the main infotext (processing.py, v1.10.1)
        grid = Image.new("RGB", (images[0].width * len(images), images[0].height))
        for i, im in enumerate(images):
            grid.paste(im, (i * im.width, 0))
        images.insert(0, grid)
        infotexts.insert(0, infotexts[0])
        first = 1
    return Processed(
        p, images, p.seed, infotexts[0] if infotexts else "", infotexts=infotexts, index_of_first_image=first
    )
