"""The grid runner against the built-in X/Y/Z plot, side by side in one real WebUI.

    .venv/bin/python benchmarks/grid_vs_xyz.py [--host webui|forge] [--sizes 64,512] [--rounds 5] [--big-rounds 1]
        [--out benchmarks/results-grid-vs-xyz.json]

Both make the same 20 images: 2 checkpoints × (baseline + 2 adapters × 2 weights) × 2 seeds,
4 steps, Euler. The X/Y/Z plot gets Checkpoint name × Prompt S/R (a placeholder word for the
baseline, then one ``<lora:…>`` tag per adapter and weight) × Seed through
``/sdapi/v1/txt2img``; the grid runner gets the same grid through ``POST /lycoris-eval/v1/grid``
(no scoring). Rounds alternate the two, the host stays up between them, and the figure is
the ratio of the medians (grid runner / X/Y/Z plot; target ≤ 1.05). The host is the one the
real-host tests use (``tools/setup.sh --tests``); its facts (axis indices, file names) are
read from it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.realhost.host import (  # noqa: E402
    FLAVOURS,
    HOST_SETTINGS,
    Build,
    Host,
    install_extension,
    wait_job,
    write_settings,
    xyz_axis_index,
)

SEEDS = [101, 102]
WEIGHTS = [0.5, 1.0]
PLACEHOLDER = "plainly"


def xyz_request(api, build: Build, size: int) -> dict:
    lora, loha = build.adapter("lora"), build.adapter("loha")
    tags = [f"<lora:{a}:{w:g}>" for a in (lora, loha) for w in WEIGHTS]
    args = [xyz_axis_index(api, "Checkpoint name"), "", list(build.checkpoints)]
    args += [xyz_axis_index(api, "Prompt S/R"), ", ".join([PLACEHOLDER, *tags]), []]
    args += [xyz_axis_index(api, "Seed"), ", ".join(str(s) for s in SEEDS), []]
    args += [True, False, False, False, False, False, False, 0, False]
    return {
        "prompt": f"a castle on a hill, {PLACEHOLDER}",
        "steps": 4,
        "width": size,
        "height": size,
        "sampler_name": "Euler",
        "cfg_scale": 5,
        "script_name": "x/y/z plot",
        "script_args": args,
    }


def grid_request(build: Build, size: int) -> dict:
    return {
        "checkpoints": list(build.checkpoints),
        "adapters": [build.adapter("lora"), build.adapter("loha")],
        "weights": WEIGHTS,
        "prompts": ["a castle on a hill"],
        "seeds": SEEDS,
        "score": False,
        "base": {"steps": 4, "width": size, "height": size, "sampler_name": "Euler", "cfg_scale": 5},
    }


def time_xyz(api, build: Build, size: int) -> float:
    start = time.perf_counter()
    response = api.post("/sdapi/v1/txt2img", json=xyz_request(api, build, size), timeout=1800)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed


def time_grid(api, build: Build, size: int) -> float:
    start = time.perf_counter()
    answer = api.post("/lycoris-eval/v1/grid", json=grid_request(build, size))
    answer.raise_for_status()
    status = wait_job(api, answer.json()["job_id"], timeout=1800)
    elapsed = time.perf_counter() - start
    assert status["state"] == "done" and status["result"]["generated"] == 20, status
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=tuple(FLAVOURS), default="webui")
    parser.add_argument("--sizes", default="64,512")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds at 64x64")
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds above 64x64 (a CPU makes 512x512 slowly)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    flavour = FLAVOURS[args.host]
    dest = flavour.dest()
    if dest is None:
        raise SystemExit(flavour.setup_hint)
    build = Build(flavour, dest)
    install_extension(build)
    write_settings(build, HOST_SETTINGS)
    host = Host(build, ui=False).start()
    results: dict = {
        "host": args.host,
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "images": 20,
        "sizes": {},
    }
    try:
        with host.client(timeout=1800) as api:
            time_grid(api, build, 64)  # warm-up: both checkpoints and adapters read once
            time_xyz(api, build, 64)
            for size in (int(s) for s in args.sizes.split(",")):
                rounds = args.rounds if size <= 64 else args.big_rounds
                xyz, grid = [], []
                for r in range(rounds):  # alternate, starting with a different side each round
                    order = (("xyz", time_xyz), ("grid", time_grid))
                    for name, fn in order if r % 2 == 0 else order[::-1]:
                        (xyz if name == "xyz" else grid).append(fn(api, build, size))
                row = {
                    "xyz_s": xyz,
                    "grid_s": grid,
                    "xyz_median_s": statistics.median(xyz),
                    "grid_median_s": statistics.median(grid),
                }
                row["ratio"] = row["grid_median_s"] / row["xyz_median_s"]
                results["sizes"][str(size)] = row
                print(
                    f"{size}x{size}: X/Y/Z {row['xyz_median_s']:.2f} s, grid runner {row['grid_median_s']:.2f} s, "
                    f"ratio {row['ratio']:.3f} (target <= 1.05)",
                    flush=True,
                )
    finally:
        host.stop()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
