"""Test helpers: small synthetic images with WebUI infotext, small encoder configs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

os.environ.setdefault("LYCORIS_EVAL_OFFLINE", "1")  # tests never try the network

# Small architectures for speed; tests about the full-size ones say so.
SMALL = {"clip_model": "ViT-S-32", "dinov2_arch": "vits14", "vgg_size": 64, "tutorial_size": 64}


def infotext(prompt: str, seed: int, checkpoint: str = "ckA", prompt_type: str | None = None) -> str:
    extra = f", LyCORIS prompt type: {prompt_type}" if prompt_type else ""
    return (
        f"{prompt}\nNegative prompt: lowres, bad anatomy\n"
        f"Steps: 4, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: 64x64, "
        f"Model hash: 1234abcd, Model: {checkpoint}, Version: v1.10.1{extra}"
    )


def pattern(seed: int, size: tuple[int, int] = (64, 64), scale: float = 1.0) -> Image.Image:
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    freq = rng.uniform(0.05, 0.4, 3)
    phase = rng.uniform(0, 6.28, 3)
    channels = [np.sin(freq[i] * (x + (i + 1) * y) + phase[i]) for i in range(3)]
    arr = (np.stack(channels, -1) * 0.5 + 0.5) * 255 * scale
    arr += rng.normal(0, 8, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def save_png(image: Image.Image, path: Path, text: str | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    image.save(path, pnginfo=info)
    return path


def make_grid(
    folder: Path,
    checkpoints=("ckA",),
    adapters=(("styleA", 0.5), ("styleA", 1.0)),
    prompts=("a cat sitting, masterpiece",),
    seeds=(1, 2),
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ck in checkpoints:
        for p_i, prompt in enumerate(prompts):
            for seed in seeds:
                base = pattern(seed * 100 + p_i)
                paths.append(save_png(base, folder / f"{ck}-p{p_i}-base-s{seed}.png", infotext(prompt, seed, ck)))
                for name, weight in adapters:
                    arr = np.asarray(base, dtype=np.float64)
                    tint = np.asarray(pattern(hash(name) % 1000 + seed), dtype=np.float64)
                    mixed = (1 - 0.5 * weight) * arr + 0.5 * weight * tint
                    img = Image.fromarray(np.clip(mixed, 0, 255).astype(np.uint8))
                    tagged = f"{prompt}, <lora:{name}:{weight}>"
                    paths.append(
                        save_png(img, folder / f"{ck}-p{p_i}-{name}-{weight}-s{seed}.png", infotext(tagged, seed, ck))
                    )
    return paths


def make_set(folder: Path, n: int, seed: int, size=(64, 64), scale: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pattern(seed + i, size, scale).save(folder / f"img{i}.png")
    return folder


ADAPTER_KEYS = {
    "LoRA": {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 32),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (32, 4),
    },
    "LoCon": {
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": (4, 32, 3, 3),
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": (32, 4, 1, 1),
    },
    "LoHa": {
        "lora_unet_x.hada_w1_a": (32, 4),
        "lora_unet_x.hada_w1_b": (4, 32),
        "lora_unet_x.hada_w2_a": (32, 4),
        "lora_unet_x.hada_w2_b": (4, 32),
    },
    "LoKr": {"lora_unet_x.lokr_w1": (4, 4), "lora_unet_x.lokr_w2_a": (8, 2), "lora_unet_x.lokr_w2_b": (2, 8)},
    "IA3": {"lora_unet_x.weight": (32,), "lora_unet_x.on_input": (1,)},
    "OFT": {"lora_unet_x.oft_blocks": (4, 8, 8)},
    "BOFT": {"lora_unet_x.boft_blocks": (2, 4, 8, 8)},
    "GLoRA": {
        "lora_unet_x.a1.weight": (4, 32),
        "lora_unet_x.a2.weight": (32, 4),
        "lora_unet_x.b1.weight": (4, 32),
        "lora_unet_x.b2.weight": (32, 4),
    },
    "full": {"lora_unet_x.diff": (32, 32), "lora_unet_x.diff_b": (32,)},
    "norm": {"lora_unet_x.w_norm": (32,), "lora_unet_x.b_norm": (32,)},
}


def write_adapter(path, kind: str, metadata: dict | None = None, dora: bool = False, alpha: bool = True):
    """A small safetensors file with the key layout of the given adapter type."""
    import torch
    from safetensors.torch import save_file

    kinds = kind.split("+")
    tensors = {}
    for k in kinds:
        tensors.update({name: torch.zeros(shape) for name, shape in ADAPTER_KEYS[k].items()})
    if alpha:
        for name in list(tensors):
            tensors[
                name.rsplit(".", 2)[0] + ".alpha" if name.endswith(".weight") else name.rsplit(".", 1)[0] + ".alpha"
            ] = torch.tensor(1.0)
    if dora:
        tensors["lora_unet_x.dora_scale"] = torch.ones(1, 32)
    save_file(tensors, str(path), metadata=metadata or {})
    return path


def small_scoring_settings(opts) -> None:
    """WebUI settings for scoring in tests: random weights, small architectures, CPU, offline."""
    values = {
        "random_weights": True,
        "clip_model": "ViT-S-32",
        "dinov2_arch": "vits14",
        "device": "cpu",
        "offline": True,
    }
    for key, value in values.items():
        setattr(opts, f"lycoris_eval_{key}", value)


def page_p(ns, scripts=None, **kwargs):
    """A txt2img ``p`` as the page makes it: ``p.scripts`` set after construction (it is not
    a constructor argument in v1.10.1), the txt2img runner unless another is given."""
    p = ns.processing.StableDiffusionProcessingTxt2Img(**kwargs)
    p.scripts = scripts if scripts is not None else ns.scripts.scripts_txt2img
    return p


def synthetic_training_run(
    epochs: int = 10,
    weights=(0.5, 1.0),
    checkpoints=("ckA",),
    prompts=(
        ("a cat, le_ink", "alter"),
        ("a dog, le_ink", "alter"),
        ("le_ink portrait", "train"),
        ("a castle", "style"),
    ),
    seeds: int = 8,
    peak: int = 4,
    decline: float = 0.02,
    plateau: int = 5,
    rise: float = 0.05,
    noise: float = 0.01,
    leak: float = 0.01,
    rng_seed: int = 0,
    dino_dim: int = 0,
    shared: float = 0.0,
):
    """Per-image values of a training run's grid with a known truth, as the comparisons get
    them (:class:`lycoris_eval.compare.paired.PairedData`): text alignment flat up to epoch
    ``peak`` then down by ``decline`` an epoch (times the weight); image similarity up by
    ``rise`` an epoch (times the weight) until ``plateau``, flat after; style loss to the
    base image ``leak`` an epoch (times the weight). Noise: normal, sd ``noise`` (a fifth of
    it for the style loss). With ``dino_dim``, each image also gets a DINOv2-like feature
    vector whose spread shrinks with the epoch (diversity falls). ``shared``: the sd of an
    offset per (prompt, seed) added to every condition's values alike (what the same prompt
    and seed share across saves and weights: only a paired analysis sees through it). Returns ``(run, data,
    truth)``; ``truth(metric, epoch, weight)`` is the generating mean."""
    import numpy as np

    from lycoris_eval.compare.paired import PairedData
    from lycoris_eval.inputs.training_runs import Member, TrainingRun

    def truth(metric: str, e: int, w: float) -> float:
        if metric == "text_alignment":
            return 0.3 - decline * w * max(0, e - peak)
        if metric == "image_similarity":
            return 0.2 + rise * w * min(e, plateau)
        return leak * w * e  # style_loss_base

    rng = np.random.default_rng(rng_seed)
    members = tuple(Member(f"mylora-{e:06d}", e, e * 100, e == epochs, "file name") for e in range(1, epochs + 1))
    run = TrainingRun("mylora", members, "file name")
    by: dict = {}
    values: dict = {}
    dino: dict = {}
    centre = rng.normal(size=dino_dim) if dino_dim else None
    offset = {
        (text, s): rng.normal(0, shared, size=3) if shared else np.zeros(3)
        for text, _k in prompts
        for s in range(seeds)
    }
    for ck in checkpoints:
        conditions = [(None, 0, 0.0)] + [(m.adapter, m.epoch, w) for m in members for w in weights]
        for adapter, e, w in conditions:
            slot = by.setdefault((ck, adapter, w), {})
            for text, kind in prompts:
                for s in range(seeds):
                    index = len(values)
                    o = offset[(text, s)]
                    values[index] = {
                        "text_alignment": truth("text_alignment", e, w) + o[0] + rng.normal(0, noise),
                        "image_similarity": truth("image_similarity", e, w) + o[1] + rng.normal(0, noise),
                        "style_loss_base": truth("style_loss_base", e, w) + o[2] / 5 + rng.normal(0, noise / 5),
                    }
                    slot[(text, kind, None, s)] = index
                    if dino_dim:
                        dino[index] = centre + rng.normal(size=dino_dim) / (1 + 0.2 * e * w)
    return run, PairedData(by, values, dino), truth
