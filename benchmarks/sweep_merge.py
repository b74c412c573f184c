"""The sweep's shard merge on a synthetic run: the full re-read it did before (every line of
``cells.jsonl`` and every shard, each time) against the incremental merge, side by side.

    .venv-sweep/bin/python benchmarks/sweep_merge.py [--lines 200000] [--new 1000] [--out benchmarks/results-sweep-merge.json]

LINES cells of ≈ 1 KB (a real cell line: prompt, infotext, seed, worker) in 3 shards, an
(empty) PNG per cell, then NEW more lines in one shard (a chunk or two finished after a
merge). Timed: the first merge (no index: everything read, ``cells.jsonl`` written); then,
after the NEW lines, what the driver does when an actor dies (the chunk's finished cells),
at a resume (the saved index, then the done keys) and at the end (the merge).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lycoris_eval.fileio import write_atomic  # noqa: E402
from lycoris_eval.grid.store import CELLS, RunStore, read_records  # noqa: E402
from lycoris_eval.sweep.store import done_keys, line_files, merge, merger, shard_path, shard_paths  # noqa: E402


def old_merged(store: RunStore) -> dict[str, dict[str, Any]]:
    """The merge as it was before the index: every line of every file parsed, each time."""

    def is_done(data: dict[str, Any]) -> bool:
        return data.get("status", "done") == "done" and (store.images_dir / str(data.get("image", ""))).is_file()

    out: dict[str, dict[str, Any]] = {}
    for path in [store.dir / CELLS, *shard_paths(store)]:
        for record in read_records(path):
            kept = out.get(record.key)
            if kept is not None and is_done(kept) and not is_done(record.data):
                continue
            out[record.key] = record.data
    return out


def old_merge(store: RunStore, order: list[str]) -> None:
    lines = old_merged(store)
    position = {key: i for i, key in enumerate(order)}
    keys = sorted(lines, key=lambda k: (position.get(k, len(position)), k))
    write_atomic(store.dir / CELLS, "".join(json.dumps(lines[k], ensure_ascii=False) + "\n" for k in keys))


def cell(i: int, worker: str) -> dict[str, Any]:
    prompt = f"[style] a castle on a hill number {i}, detailed, intricate, golden hour"
    infotext = (
        f"{prompt}\nNegative prompt: lowres, bad anatomy, worst quality\nSteps: 20, Sampler: Euler a, "
        f"CFG scale: 7, Seed: {i}, Size: 512x512, Model hash: 1234abcd, Model: sd15, Version: v1.10.1, "
        f'Lora hashes: "style: 0123456789ab", LyCORIS cell: c{i:08d}, LyCORIS run: bench' + " " * 300
    )
    return {
        "key": f"c{i:08d}",
        "status": "done",
        "image": f"c{i:08d}.png",
        "checkpoint": "sd15.safetensors",
        "checkpoint_hash": "1234abcd",
        "adapter": "style.safetensors",
        "weight": 0.75,
        "prompt": prompt,
        "prompt_type": "style",
        "seed": i,
        "infotext": infotext,
        "worker": worker,
        "pid": 4242,
    }


def write_cells(store: RunStore, start: int, stop: int, workers: list[str]) -> None:
    handles = {w: open(shard_path(store, w), "a", encoding="utf-8") for w in workers}  # noqa: SIM115
    for i in range(start, stop):
        worker = workers[i % len(workers)]
        handles[worker].write(json.dumps(cell(i, worker)) + "\n")
        (store.images_dir / f"c{i:08d}.png").touch()
    for handle in handles.values():
        handle.close()


def timed(fn, *args) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workers = ["http://10.0.0.1:7860", "http://10.0.0.2:7860", "http://10.0.0.3:7860"]
    with tempfile.TemporaryDirectory(prefix="sweep-merge-") as tmp:
        store = RunStore(Path(tmp), "bench")
        store.images_dir.mkdir(parents=True)
        (store.dir / "sweep").mkdir()
        write_cells(store, 0, args.lines, workers)
        order = [f"c{i:08d}" for i in range(args.lines + args.new)]
        size = sum(p.stat().st_size for p in line_files(store) if p.exists())
        result: dict[str, Any] = {"lines": args.lines, "new": args.new, "shard_mb": size / 1e6}
        driver = merger(store)  # the driver's, kept for the run
        result["first_merge_s"], _ = timed(merge, store, order, driver)
        write_cells(store, args.lines, args.lines + args.new, workers[:1])
        chunk = set(order[-args.new :])

        result["actor_died_old_s"], old = timed(lambda: {k for k in old_merged(store) if k in chunk})
        parsed = driver.lines_parsed
        result["actor_died_new_s"], _ = timed(driver.refresh, line_files(store))
        new = {k for k in chunk if driver.is_done(driver.entries[k])}
        result["actor_died_new_lines_read"] = driver.lines_parsed - parsed
        result["resume_done_keys_old_s"], old_done = timed(
            lambda: {k for k, d in old_merged(store).items() if d.get("status") == "done"}
        )
        resumed = merger(store)
        result["resume_done_keys_new_s"], new_done = timed(lambda: (resumed.load(), done_keys(store, resumed))[1])
        result["resume_new_lines_read"] = resumed.lines_parsed
        assert old == new == chunk and old_done == new_done and len(new_done) == len(order)

        result["end_merge_old_s"], _ = timed(old_merge, store, order)
        write_cells(store, args.lines + args.new, args.lines + 2 * args.new, workers[:1])
        order += [f"c{i:08d}" for i in range(args.lines + args.new, args.lines + 2 * args.new)]
        final = merger(store)
        result["end_merge_new_s"], counts = timed(merge, store, order, final)  # a full read: old_merge rewrote
        result["end_merge_new_full_reads"] = final.full_reads
        parsed = final.lines_parsed
        write_cells(store, args.lines + 2 * args.new, args.lines + 3 * args.new, workers[:1])
        order += [f"c{i:08d}" for i in range(args.lines + 2 * args.new, args.lines + 3 * args.new)]
        result["end_merge_incremental_s"], counts = timed(merge, store, order, final)
        result["end_merge_incremental_lines_read"] = final.lines_parsed - parsed
        result["unchanged_merge_s"], _ = timed(merge, store, order, final)
        result["counts"] = counts
    result["machine"] = {"python": sys.version.split()[0], "platform": platform.platform()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
