"""Regenerate the shipped example grid (synthetic, procedural images; no model needed).

It stands in for what the grid runner writes: PNGs with the WebUI's infotext for
2 checkpoints x (no adapter + 2 adapters x 2 weights) x 2 prompts x 2 seeds, a target
reference set ("ink wash" strokes) and a distractor set (coloured doodles).

    python examples/make_example.py [--out DIR]

Deterministic: running it again writes the same bytes (the shipped files are its output).
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

HERE = Path(__file__).resolve().parent
SIZE = 96
CHECKPOINTS = {"sd15-base": 0, "anime-mix": 1}
ADAPTERS = {"inkwash_lora": 0.9, "inkwash_loha": 0.6}  # how strongly each pulls to the style
WEIGHTS = (0.5, 1.0)
PROMPTS = [("trigger", "le_inkwash, a mountain lake"), ("alter", "le_inkwash, a cat on a sofa")]
SEEDS = (1, 2)


def scene(seed: int, checkpoint: int, prompt: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 31 + prompt * 7)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    hue = rng.uniform(0, 1, 3) + checkpoint * 0.3
    img = np.stack([0.5 + 0.5 * np.sin(6.28 * (x * (1 + c) + y * hue[c] + hue[c])) for c in range(3)], -1)
    blob = np.exp(-((x - rng.uniform(0.3, 0.7)) ** 2 + (y - rng.uniform(0.3, 0.7)) ** 2) / 0.02)
    return np.clip(img * 0.8 + blob[..., None] * rng.uniform(0, 1, 3) * 0.5, 0, 1)


def inkwash(seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    canvas = Image.new("L", (SIZE, SIZE), 235)
    draw = ImageDraw.Draw(canvas)
    for _ in range(14):
        x0, y0 = rng.integers(0, SIZE, 2)
        dx, dy = rng.integers(-40, 40, 2)
        draw.line([(x0, y0), (x0 + dx, y0 + dy)], fill=int(rng.integers(20, 120)), width=int(rng.integers(2, 7)))
    grey = np.asarray(canvas, dtype=np.float64) / 255
    return np.stack([grey, grey * 0.98, grey * 0.93], -1)


def doodle(seed: int) -> np.ndarray:
    rng = np.random.default_rng(2000 + seed)
    canvas = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for _ in range(6):
        pts = [tuple(int(v) for v in rng.integers(0, SIZE, 2)) for _ in range(4)]
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 255, 3)), width=2)
    return np.asarray(canvas, dtype=np.float64) / 255


def save(arr: np.ndarray, path: Path, infotext: str | None = None) -> None:
    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8)).save(path, pnginfo=info, optimize=True)


def model_hash(checkpoint: str) -> str:
    """A stand-in for the WebUI's short model hash (10 hex digits of a SHA-256), stable
    across runs: Python's ``hash()`` of a string changes with every process."""
    return hashlib.sha256(checkpoint.encode("utf-8")).hexdigest()[:10]


def infotext(prompt: str, seed: int, checkpoint: str, prompt_type: str) -> str:
    return (
        f"{prompt}\nNegative prompt: lowres, blurry\n"
        f"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: {SIZE}x{SIZE}, "
        f"Model hash: {model_hash(checkpoint)}, Model: {checkpoint}, "
        f"LyCORIS prompt type: {prompt_type}, Version: v1.10.1"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the example grid, reference and doodle sets.")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write grid/, reference/, doodle/ into")
    out = parser.parse_args(argv).out
    for sub in ("grid", "reference", "doodle"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("*.png"):
            old.unlink()
    for ck_name, ck in CHECKPOINTS.items():
        for p_index, (ptype, prompt) in enumerate(PROMPTS):
            for seed in SEEDS:
                base = scene(seed, ck, p_index)
                stem = f"{ck_name}-p{p_index}-s{seed}"
                save(base, out / "grid" / f"{stem}-base.png", infotext(prompt, seed, ck_name, ptype))
                for adapter, strength in ADAPTERS.items():
                    for weight in WEIGHTS:
                        pull = strength * weight * (0.7 if ck else 1.0)
                        img = (1 - pull) * base + pull * inkwash(seed * 10 + p_index)
                        tagged = f"{prompt}, <lora:{adapter}:{weight}>"
                        save(
                            img,
                            out / "grid" / f"{stem}-{adapter}-{weight}.png",
                            infotext(tagged, seed, ck_name, ptype),
                        )
    for i in range(6):
        save(inkwash(50 + i), out / "reference" / f"inkwash-{i}.png")
    for i in range(4):
        save(doodle(i), out / "doodle" / f"doodle-{i}.png")


if __name__ == "__main__":
    main()
