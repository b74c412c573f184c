"""The sweep on 1, 2 and 3 loopback WebUIs, the same grid each time.

    .venv-sweep/bin/python benchmarks/sweep_scaling.py [--seeds 6] [--rounds 1] [--out benchmarks/results-sweep-scaling.json]

Real WebUI v1.10.1 instances (``tools/setup.sh --tests`` builds one; ``LYCORIS_EVAL_REALHOST``),
each with its own data folder, 64×64, 4 steps; the grid: 2 checkpoints × 2 prompts × SEEDS seeds ×
(baseline + 2 adapters × 2 weights). On a 2-core machine the WebUIs share the cores, so this
measures the sweep's overhead, not a speed-up:

* ``direct``: the same images made one after another by a plain HTTP loop (no Ray, no files)
  on one WebUI: the WebUI's own time per image;
* for N WebUIs, from the sweep's own summary: wall time of the dispatch loop, time inside the
  WebUIs' txt2img calls (``http``), inside the actors' chunk calls (``chunk``: http + PNG +
  durable writes), and per worker its idle time (loop − chunk). Driver overhead per image is
  ``(N × loop − Σ http) / images``: every worker-second not spent waiting for a WebUI.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lycoris_eval.grid.spec import GridSpec  # noqa: E402
from lycoris_eval.sweep.webui_client import WebUIClient  # noqa: E402
from tests.realhost.host import FLAVOURS, Build  # noqa: E402
from tests.sweep.conftest import SMALL_BASE, start_webui, sweep_env, url_of, write_spec  # noqa: E402


def direct(build: Build, host, spec_path: Path) -> dict:
    """The WebUI's own time: every cell through txt2img in a plain loop (checkpoint-sorted)."""
    spec = GridSpec.from_dict(json.loads(spec_path.read_text()))
    client = WebUIClient(url_of(host))
    facts = client.facts()
    refs = {c.name: c for c in facts.checkpoints}
    jobs = spec.plan()
    start = time.monotonic()
    for job in jobs:
        client.txt2img(job, refs[job.checkpoint], SMALL_BASE, facts)
    wall = time.monotonic() - start
    client.close()
    return {"images": len(jobs), "wall_s": wall, "s_per_image": wall / len(jobs)}


def sweep(spec_path: Path, out: Path, hosts: list) -> dict:
    urls = [a for h in hosts for a in ("--webui", url_of(h))]
    cmd = [sys.executable, "-m", "lycoris_eval", "sweep", str(spec_path), *urls, "--out", str(out), "--quiet"]
    cmd += ["--num-cpus", "2"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=sweep_env(), cwd=ROOT, check=False)
    process_s = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    summary = json.loads(sorted(out.rglob("summary-*.json"))[-1].read_text())
    workers = list(summary["workers"].values())
    n, loop, images = len(workers), summary["loop_s"], summary["generated"]
    http = sum(w["http_s"] for w in workers)
    chunk = sum(w["chunk_s"] for w in workers)
    return {
        "webuis": n,
        "images": images,
        "process_s": process_s,
        "ray_start_and_actors_s": summary["ray_s"],
        "loop_s": loop,
        "images_per_s": images / loop,
        "http_s": http,
        "driver_overhead_ms_per_image": 1000 * (n * loop - http) / images,
        "actor_files_ms_per_image": 1000 * (chunk - http) / images,
        "dispatch_and_idle_ms_per_image": 1000 * (n * loop - chunk) / images,
        "idle_s_per_worker": {w["url"]: round(loop - w["chunk_s"], 3) for w in workers},
        "images_per_worker": {w["url"]: w["images"] for w in workers},
        "loads_per_worker": {w["url"]: w["loads"] for w in workers},
        "retries": summary["retries"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-sweep-scaling.json")
    args = parser.parse_args()
    flavour = FLAVOURS["webui"]
    if not flavour.built():
        print(flavour.setup_hint, file=sys.stderr)
        return 2
    build = Build(flavour, flavour.dest())
    results: dict = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        root = Path(tmp)
        hosts = []
        try:
            for name in ("a", "b", "c"):
                hosts.append(start_webui(build, root / name))
            spec = write_spec(root, build, seeds=args.seeds, run_id="bench")
            results["direct"] = direct(build, hosts[0], spec)
            results["sweeps"] = []
            for round_ in range(args.rounds):
                for n in (1, 2, 3):
                    result = sweep(spec, root / f"runs-{round_}-{n}", hosts[:n])
                    results["sweeps"].append(result)
                    print(json.dumps(result), flush=True)
        finally:
            for host in hosts:
                host.stop()
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
