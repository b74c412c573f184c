"""The sweep driver: one Ray actor per WebUI, checkpoint-sorted chunks handed to whichever
is free, results merged from the files.

Ray does the distribution (actors, remote calls, ``ray.wait``, failure detection); this
module only decides which chunk a free worker takes (:class:`.plan.ChunkQueue`) and what
happens when a worker comes back without finishing: its WebUI is unreachable or its actor
died, so it gets no more work and its unfinished cells go back to the queue for the
others, each chunk at most ``max_attempts`` times. Imported only by the ``sweep`` command:
it is the one place (with :mod:`.scoring`) that imports Ray.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from lycoris_eval.fileio import write_atomic
from lycoris_eval.grid.store import RunStore, append_record, cell_line
from lycoris_eval.sweep.merge_index import Merger
from lycoris_eval.sweep.plan import DEFAULT_CHUNK, Chunk, ChunkQueue, make_chunks
from lycoris_eval.sweep.preflight import Prepared, host_info
from lycoris_eval.sweep.store import done_keys, merge, merger, shard_path
from lycoris_eval.sweep.worker import SweepWorker

# chunks queued at each actor: the next starts as soon as one ends, without waiting for the driver
PIPELINE = 2


@dataclass
class SweepOptions:
    urls: list[str]
    auth: str | None = None
    runs_root: Path = Path("lycoris-eval-runs")
    ray_address: str | None = None
    num_cpus: int | None = None  # for a local Ray started by the sweep
    chunk_size: int = DEFAULT_CHUNK
    max_attempts: int = 3
    timeout: float = 600.0
    progress: bool = True


@dataclass
class WorkerStats:
    url: str
    images: int = 0
    failed: int = 0
    chunks: int = 0
    loads: int = 0
    http_s: float = 0.0  # time inside the WebUI's txt2img calls
    chunk_s: float = 0.0  # time inside the actor's chunk calls (HTTP + writing files)
    state: str = "ok"
    error: str | None = None


@dataclass
class SweepResult:
    run_id: str
    run_dir: Path
    total: int
    done_before: int
    generated: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    given_up: list[dict[str, Any]] = field(default_factory=list)
    left: int = 0  # cells neither made nor given up (every WebUI gone)
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    ray_s: float = 0.0  # Ray start and actor creation
    loop_s: float = 0.0  # first chunk handed out -> last result back
    wall_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data


def run_sweep(prepared: Prepared, options: SweepOptions) -> SweepResult:
    started = time.monotonic()
    spec = prepared.spec
    store = RunStore(options.runs_root, prepared.run_id)
    store.open(spec, host_info(prepared))
    names = [c.name for c in prepared.checkpoints]
    order = [job.key for job in spec.plan(names)]
    lines = merger(store)  # what earlier merges read (the saved index, checked against the files)
    merge(store, order, lines)  # fold in the shards of an earlier, interrupted sweep: only their new lines
    done = done_keys(store, lines)
    result = SweepResult(store.run_id, store.dir, len(order), len(done & set(order)))
    result.workers = {url: WorkerStats(url) for url in prepared.facts}
    chunks = make_chunks(spec, names, done, options.chunk_size)
    if chunks:
        own_ray = not ray.is_initialized()
        t0 = time.monotonic()
        if own_ray:
            ray.init(address=options.ray_address, num_cpus=options.num_cpus, log_to_driver=False)
        init_s = time.monotonic() - t0
        try:
            _dispatch(prepared, options, store, lines, chunks, result)
            result.ray_s += init_s
        finally:
            if own_ray:
                ray.shutdown()
    result.counts = merge(store, order, lines)
    result.wall_s = time.monotonic() - started
    _write_summary(store, result)
    return result


def _make_actors(prepared: Prepared, options: SweepOptions, store: RunStore) -> dict[str, Any]:
    """One actor per WebUI, on the driver's node (they only talk HTTP, and write the run folder here)."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    remote = ray.remote(num_cpus=0, max_restarts=0)(SweepWorker)
    base = dict(prepared.spec.base)
    return {
        url: remote.options(scheduling_strategy=here, name=None).remote(
            prepared.given.get(url, url), options.auth, facts, base, str(store.root), store.run_id, options.timeout
        )
        for url, facts in prepared.facts.items()
    }


def _dispatch(
    prepared: Prepared,
    options: SweepOptions,
    store: RunStore,
    lines: Merger,
    chunks: list[Chunk],
    result: SweepResult,
) -> None:
    from tqdm import tqdm  # lazy: tqdm only for the CLI's progress bar

    t0 = time.monotonic()
    actors = _make_actors(prepared, options, store)
    loaded = {url: ref.name if (ref := facts.loaded()) else None for url, facts in prepared.facts.items()}
    result.ray_s = time.monotonic() - t0
    queue = ChunkQueue(chunks, options.max_attempts)
    in_flight: dict[Any, tuple[str, Chunk]] = {}
    alive = set(actors)
    bar = tqdm(
        total=result.total, initial=result.done_before, unit="img", disable=not options.progress, file=sys.stderr
    )
    loop_start = time.monotonic()
    try:
        while True:
            for url in sorted(alive):
                while len(queue) and sum(1 for u, _ in in_flight.values() if u == url) < PIPELINE:
                    chunk = queue.take(loaded[url], [c.checkpoint for u, c in in_flight.values() if u != url])
                    ref = actors[url].run_chunk.remote(chunk.id, chunk.checkpoint, chunk.jobs)
                    in_flight[ref] = (url, chunk)
                    loaded[url] = chunk.checkpoint
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            url, chunk = in_flight.pop(ready[0])
            stats = result.workers[url]
            try:
                report = ray.get(ready[0])
            except (ray.exceptions.RayError, OSError) as exc:  # the actor died, or failed writing
                report = _lost_chunk(store, lines, chunk, f"worker for {url} failed: {type(exc).__name__}: {exc}")
            _account(stats, report, result, bar)
            if report["unreachable"]:
                was_alive = url in alive
                alive.discard(url)
                stats.state, stats.error = "gone", report["unreachable"]
                if not queue.give_back(chunk, report["remaining"], report["unreachable"], attempted=was_alive):
                    _give_up(store, chunk, result)
                result.retries += 1
                if was_alive:
                    bar.write(f"lycoris-eval: {stats.error}; its unfinished cells go to the other WebUIs")
    finally:
        bar.close()
        result.loop_s = time.monotonic() - loop_start
    result.left = sum(len(c.jobs) for c in queue.pending)


def _account(stats: WorkerStats, report: dict[str, Any], result: SweepResult, bar: Any) -> None:
    stats.images += len(report["done"])
    stats.failed += len(report["failed"])
    stats.chunks += 1
    stats.loads = max(stats.loads, report.get("loads", 0))
    stats.http_s += report.get("http_s", 0.0)
    stats.chunk_s += report.get("chunk_s", 0.0)
    result.generated += len(report["done"])
    result.failed.update(report["failed"])
    bar.update(len(report["done"]) + len(report["failed"]))


def _lost_chunk(store: RunStore, lines: Merger, chunk: Chunk, error: str) -> dict[str, Any]:
    """A chunk whose actor died: what its files say was finished is kept, the rest is redone
    (reading only the lines written since the last look)."""
    finished = done_keys(store, lines, among=[job.key for job in chunk.jobs])
    return {
        "done": [],
        "failed": {},
        "remaining": [job for job in chunk.jobs if job.key not in finished],
        "unreachable": error,
    }


def _give_up(store: RunStore, chunk: Chunk, result: SweepResult) -> None:
    """A chunk that came back unfinished ``max_attempts`` times: its cells are recorded as failed."""
    reason = f"given up after {chunk.attempts} attempts: " + " | ".join(chunk.errors)
    result.given_up.append({"chunk": chunk.id, "checkpoint": chunk.checkpoint, "cells": len(chunk.jobs), "why": reason})
    for job in chunk.jobs:
        result.failed[job.key] = reason
        append_record(shard_path(store, "driver"), cell_line(job, "failed", error=reason))


def _write_summary(store: RunStore, result: SweepResult) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_atomic(store.dir / "sweep" / f"summary-{stamp}.json", json.dumps(result.as_dict(), indent=2))
