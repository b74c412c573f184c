"""Benchmarks of the scoring engine (ratios measured side by side in one run).

    .venv/bin/python benchmarks/run.py all [--small] [--images N] [--out benchmarks/results-cpu.json]

* ``encoders``  images/s per encoder at batch 8 (random weights, full-size architectures)
* ``cache``     first evaluation vs cached re-evaluation of the same folder (target >= 20x)
* ``fused``     all metrics in one evaluation vs one evaluation per metric, each decoding
                and encoding the folder again as the reference scripts do (target >= 2.5x,
                identical numbers)
* ``rss``       peak RSS with the style metrics on 256 images vs 64 images (bounded: no
                per-image Gram retention; retaining would cost 2.4 MB per image)
* ``cold``      a cold evaluation (cache off) vs the bare work of its encoders: load each,
                decode every image once, forward them (and the prompts) in the same batches;
                alternating rounds, medians (target <= 1.1x)
* ``keep``      "keep models loaded": a second evaluation of a different folder with the
                encoders kept vs the same evaluation cold, and the encoders' load time
* ``cli``       wall time of a fully cached re-evaluation from the command line, second run,
                whole process, on the shipped example grid (target <= 2 s)

Random weights are used throughout: speed does not depend on weight values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import make_grid, make_set  # noqa: E402

from lycoris_eval.config import EvalConfig  # noqa: E402
from lycoris_eval.scoring.encoders import EncoderOptions, make_encoder  # noqa: E402
from lycoris_eval.scoring.metrics import DEFAULT_METRICS, METRICS  # noqa: E402
from lycoris_eval.scoring.pipeline import evaluate  # noqa: E402

SMALL = {"clip_model": "ViT-S-32", "dinov2_arch": "vits14"}


def _grid(folder: Path, images: int) -> tuple[Path, Path]:
    seeds = max(1, images // 5)
    make_grid(folder / "grid", adapters=(("a", 0.5), ("a", 1.0), ("b", 0.5), ("b", 1.0)), seeds=tuple(range(seeds)))
    make_set(folder / "ref", 6, 700, size=(96, 80))
    return folder / "grid", folder / "ref"


def bench_encoders(small: bool) -> dict:
    from PIL import Image

    results = {}
    options = EncoderOptions(device="auto", random_weights=True, batch_size=8)
    kwargs = {
        "openclip": {"model_name": SMALL["clip_model"]} if small else {},
        "dinov2": {"arch": SMALL["dinov2_arch"]} if small else {},
    }
    image = Image.new("RGB", (512, 512), (120, 80, 40))
    for name in ("vgg19-gram", "vgg19-tutorial-gram", "openclip", "dinov2", "inception"):
        enc = make_encoder(name, options, **kwargs.get(name, {}))
        tensors = [enc.preprocess(image)] * 8
        enc.encode(tensors)  # load + warm up
        start = time.perf_counter()
        rounds = 3
        for _ in range(rounds):
            enc.encode(tensors)
        elapsed = time.perf_counter() - start
        results[name] = {"images_per_s": round(8 * rounds / elapsed, 2), "device": enc.device, "config": enc.config()}
        enc.release()
        print(f"  {name:22s} {results[name]['images_per_s']:8.2f} img/s on {enc.device}", flush=True)
    return results


def _config(tmp: Path, small: bool, **kw) -> EvalConfig:
    base = dict(random_weights=True, device="auto", cache_dir=tmp / "cache")
    if small:
        base.update(SMALL)
    base.update(kw)
    return EvalConfig(**base)


def bench_cache(small: bool, images: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        grid, ref = _grid(tmp, images)
        config = _config(tmp, small, reference_dir=ref)
        t0 = time.perf_counter()
        first = evaluate(grid, config)
        t1 = time.perf_counter()
        second = evaluate(grid, config)
        t2 = time.perf_counter()
        assert first["cells"] == second["cells"], "cached numbers differ"
        res = {
            "images": first["run"]["n_images"] + first["run"]["n_reference"],
            "first_s": round(t1 - t0, 2),
            "cached_s": round(t2 - t1, 3),
            "speedup": round((t1 - t0) / (t2 - t1), 1),
            "encoded_second_run": second["run"]["encoded"],
        }
        print(f"  first {res['first_s']} s, cached {res['cached_s']} s: {res['speedup']}x", flush=True)
        return res


def bench_fused(small: bool, images: int) -> dict:
    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        grid, ref = _grid(tmp, images)
        metrics = tuple(m for m in DEFAULT_METRICS)
        t0 = time.perf_counter()
        fused = evaluate(grid, _config(tmp, small, reference_dir=ref, use_cache=False, metrics=metrics))
        t1 = time.perf_counter()
        separate = {}
        for metric in metrics:
            separate[metric] = evaluate(
                grid, _config(tmp, small, reference_dir=ref, use_cache=False, metrics=(metric,))
            )
        t2 = time.perf_counter()
        worst = 0.0
        for metric, doc in separate.items():
            level = METRICS[metric].level
            pairs = zip(fused["summaries"], doc["summaries"]) if level == "group" else zip(fused["cells"], doc["cells"])
            for a, b in pairs:
                va, vb = (a["metrics"].get(metric) or {}).get("mean"), (b["metrics"].get(metric) or {}).get("mean")
                assert (va is None) == (vb is None), metric
                if va is not None:
                    worst = max(worst, abs(va - vb) / max(abs(va), 1e-12))
        res = {
            "images": fused["run"]["n_images"] + fused["run"]["n_reference"],
            "fused_s": round(t1 - t0, 2),
            "per_metric_s": round(t2 - t1, 2),
            "speedup": round((t2 - t1) / (t1 - t0), 2),
            "max_relative_difference": float(np.float64(worst)),
        }
        print(f"  fused {res['fused_s']} s, per metric {res['per_metric_s']} s: {res['speedup']}x", flush=True)
        return res


_RSS_CHILD = """
import resource, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from pathlib import Path
from helpers import make_set
from lycoris_eval.scoring.pipeline import EvalConfig, evaluate
tmp = Path({tmp!r})
make_set(tmp / "imgs", {n}, 1, size=(128, 128))
make_set(tmp / "ref", 4, 900, size=(128, 128))
evaluate(tmp / "imgs", EvalConfig(metrics=("style_loss_ref", "style_loss_tutorial"), reference_dir=tmp / "ref",
         random_weights=True, use_cache=False, device="cpu"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_rss() -> dict:
    """Both sizes are well above one chunk (32 images), so any growth is per-image retention."""
    out = {}
    for n in (64, 256):
        with tempfile.TemporaryDirectory() as d:
            code = _RSS_CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), tmp=d, n=n)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            out[n] = int(proc.stdout.strip().splitlines()[-1]) / 1024  # KiB -> MiB
            print(f"  {n} images: peak RSS {out[n]:.0f} MiB", flush=True)
    return {
        "peak_rss_mib_64": round(out[64]),
        "peak_rss_mib_256": round(out[256]),
        "growth_mib": round(out[256] - out[64]),
        "retention_would_cost_mib": round(192 * 610_304 * 4 / 2**20),
    }


def _bare_work(grid: Path, ref: Path, names: list[str], small: bool, batch: int) -> None:
    """What any scorer must do: load each encoder, decode each image once, forward it."""
    from PIL import Image

    from lycoris_eval.inputs.images import IMAGE_EXTENSIONS
    from lycoris_eval.inputs.infotext import parse_infotext, strip_network_tags

    files = sorted(p for folder in (grid, ref) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    decoded = []
    prompts = set()
    for path in files:
        with Image.open(path) as im:
            decoded.append(im.convert("RGB"))
            text = im.info.get("parameters")
        if text and path.parent == grid:
            prompts.add(strip_network_tags(parse_infotext(text).prompt))
    kwargs = {"openclip": {"model_name": SMALL["clip_model"]}, "dinov2": {"arch": SMALL["dinov2_arch"]}}
    for name in names:
        enc = make_encoder(
            name,
            EncoderOptions(device="auto", random_weights=True, batch_size=batch),
            **(kwargs.get(name, {}) if small else {}),
        )
        tensors = [enc.preprocess(image) for image in decoded]
        enc.encode(tensors)
        if name == "openclip" and prompts:
            enc.encode_text(sorted(prompts))
        enc.release()


def bench_cold(small: bool, images: int, rounds: int = 3) -> dict:
    import statistics

    from lycoris_eval.scoring.encoders import release_pool

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        grid, ref = _grid(tmp, images)
        config = _config(tmp, small, reference_dir=ref, use_cache=False)
        names = sorted(evaluate(grid, config)["run"]["encoders"])  # warm-up (files in the page cache)
        pipeline, bare = [], []
        for r in range(rounds):
            for side in ("pipeline", "bare") if r % 2 == 0 else ("bare", "pipeline"):
                release_pool()
                t0 = time.perf_counter()
                if side == "pipeline":
                    evaluate(grid, config)
                else:
                    _bare_work(grid, ref, names, small, config.batch_size)
                (pipeline if side == "pipeline" else bare).append(time.perf_counter() - t0)
        res = {
            "images": len([p for p in grid.iterdir()]) + len([p for p in ref.iterdir()]),
            "encoders": names,
            "pipeline_s": [round(x, 2) for x in pipeline],
            "bare_s": [round(x, 2) for x in bare],
            "ratio": round(statistics.median(pipeline) / statistics.median(bare), 3),
        }
        print(f"  cold evaluation / bare encoder work: {res['ratio']} (target <= 1.1)", flush=True)
        return res


def bench_keep(small: bool, images: int) -> dict:
    from lycoris_eval.scoring.encoders import release_pool
    from lycoris_eval.scoring.encoders.base import _POOL

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        grid_a, ref = _grid(tmp / "a", images)
        grid_b, _ = _grid(tmp / "b", images)
        kept = _config(tmp, small, reference_dir=ref, use_cache=False, keep_models_loaded=True)
        cold = _config(tmp, small, reference_dir=ref, use_cache=False, keep_models_loaded=False)
        release_pool()
        evaluate(grid_a, kept)  # the first evaluation loads and keeps the encoders
        t0 = time.perf_counter()
        evaluate(grid_b, kept)
        second_kept = time.perf_counter() - t0
        loads = 0.0
        for encoder in list(_POOL.values()):  # load time of the same encoders, measured alone
            encoder.release()
            t = time.perf_counter()
            encoder.load()
            loads += time.perf_counter() - t
        release_pool()
        t0 = time.perf_counter()
        evaluate(grid_b, cold)
        second_cold = time.perf_counter() - t0
        res = {
            "second_evaluation_kept_s": round(second_kept, 2),
            "same_evaluation_cold_s": round(second_cold, 2),
            "encoder_load_s": round(loads, 2),
            "saved_s": round(second_cold - second_kept, 2),
        }
        print(
            f"  second evaluation kept {res['second_evaluation_kept_s']} s, cold {res['same_evaluation_cold_s']} s "
            f"(encoder loading alone {res['encoder_load_s']} s)",
            flush=True,
        )
        return res


def bench_cli(rounds: int = 3) -> dict:
    import statistics

    with tempfile.TemporaryDirectory() as d:
        args = [
            sys.executable,
            "-m",
            "lycoris_eval",
            "evaluate",
            "examples/grid",
            "--reference",
            "examples/reference",
            "--distractor",
            "examples/doodle",
            "--random-weights",
            "--quiet",
            "--clip-model",
            SMALL["clip_model"],
            "--dinov2-arch",
            SMALL["dinov2_arch"],
            "--cache-dir",
            f"{d}/cache",
            "--out",
            f"{d}/out",
        ]
        env = {**os.environ, "XDG_CACHE_HOME": f"{d}/xdg"}
        t0 = time.perf_counter()
        subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)
        first = time.perf_counter() - t0
        cached = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)
            cached.append(time.perf_counter() - t0)
        res = {
            "first_s": round(first, 2),
            "cached_s": [round(x, 2) for x in cached],
            "cached_median_s": round(statistics.median(cached), 2),
        }
        print(f"  cached CLI re-evaluation: {res['cached_median_s']} s wall (target <= 2 s)", flush=True)
        return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=("all", "encoders", "cache", "fused", "rss", "cold", "keep", "cli"))
    parser.add_argument("--small", action="store_true", help="ViT-S CLIP/DINOv2 instead of ViT-L")
    parser.add_argument("--images", type=int, default=25, help="generated images for cache/fused")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "small": args.small,
    }
    steps = ["encoders", "cache", "fused", "rss", "cold", "keep", "cli"] if args.which == "all" else [args.which]
    for step in steps:
        print(f"[{step}]", flush=True)
        if step == "encoders":
            results[step] = bench_encoders(args.small)
        elif step == "cache":
            results[step] = bench_cache(args.small, args.images)
        elif step == "fused":
            results[step] = bench_fused(args.small, args.images)
        elif step == "cold":
            results[step] = bench_cold(args.small, args.images)
        elif step == "keep":
            results[step] = bench_keep(args.small, args.images)
        elif step == "cli":
            results[step] = bench_cli()
        else:
            results[step] = bench_rss()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
