"""The run store: ``<outputs>/lycoris-eval/<run-id>/`` — nothing finished is ever lost.

* ``manifest.json``: the validated spec, host info (WebUI version, checkpoint names and
  hashes, adapters with hashes, detected types and training metadata, generation
  settings), and ``training_runs`` when the grid's adapters are saves of a training run
  (``[TrainingRun.to_dict()]``, each cut to the grid's adapters, in step order; see
  :mod:`lycoris_eval.grid.training`); written atomically (write, fsync, rename).
* ``images/``: one PNG per finished image, with the WebUI's infotext plus the cell keys.
* ``cells.jsonl``: one JSON line appended per finished (or failed) image, flushed and
  fsynced; a torn last line (a crash mid-write) is ignored on read.
* the report folder (:attr:`RunStore.report_dir`, the run folder itself): ``scores.json``,
  ``scores.csv``, ``comparisons.csv``, ``report.md`` and the figures, written by
  :func:`lycoris_eval.scoring.finished_grid.score_finished_run` whichever front end scored.

Re-running with the same run id resumes: finished images are skipped. The same spec with
seeds appended resumes too and makes only the new images (``seeds_added`` in the
manifest; how "add N seeds" works). Any other change under the same id is refused with
the difference named.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lycoris_eval.errors import InputError, SpecChangedError
from lycoris_eval.fileio import write_atomic
from lycoris_eval.grid.spec import GridJob, GridSpec

MANIFEST = "manifest.json"
CELLS = "cells.jsonl"
IMAGES = "images"
SCORES = "scores.json"


def new_run_id(run_name: str = "") -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:40]
    return f"{stamp}-{slug}" if slug else stamp


@dataclass
class CellRecord:
    key: str
    status: str  # "done" | "failed" | "skipped"
    data: dict[str, Any]


class RunStore:
    def __init__(self, root: Path, run_id: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_id):
            raise InputError(f"invalid run id {run_id!r}")
        self.root = Path(root)
        self.run_id = run_id
        self.dir = self.root / run_id
        self.images_dir = self.dir / IMAGES

    # -- manifest ------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def report_dir(self) -> Path:
        """Where the run's scores and report are written: the run folder itself."""
        return self.dir

    @property
    def scores_path(self) -> Path:
        return self.report_dir / SCORES

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"run {self.run_id}: manifest unreadable ({exc})") from exc

    def open(self, spec: GridSpec, host_info: dict[str, Any]) -> dict[str, Any]:
        """Create the run, or resume it if the spec is the same; refuse a changed spec."""
        if self.exists():
            manifest = self.read_manifest()
            previous = GridSpec.from_dict(manifest["spec"])
            if spec.seeds_drawn and len(spec.seeds) == len(previous.seeds):
                spec.seeds = list(previous.seeds)  # "-1" was drawn on the first run: keep those seeds
            diff = spec.difference(previous)
            if diff and spec.only_adds_seeds(previous):
                # more seeds for the same grid: the finished images stay, only the new ones are made
                added = spec.seeds[len(previous.seeds) :]
                manifest.setdefault("seeds_added", []).append({"at": _now(), "seeds": added})
                manifest["spec_fingerprint"] = spec.fingerprint()
                manifest["total_images"] = spec.count()
                diff = []
            if diff:
                raise SpecChangedError(
                    f"run {self.run_id} exists with a different grid: {'; '.join(diff)}. "
                    "Use a new run id, or the same settings to resume."
                )
            if spec.training_runs and not manifest.get("training_runs"):
                manifest["training_runs"] = spec.training_runs
            manifest.setdefault("resumed", []).append(_now())
            manifest["host"] = {**manifest.get("host", {}), **host_info}
            manifest["spec"] = spec.to_dict()  # labels (name, references, score) may change
        else:
            manifest = {
                "schema": "lycoris-eval/run",
                "schema_version": 1,
                "run_id": self.run_id,
                "created": _now(),
                "spec": spec.to_dict(),
                "spec_fingerprint": spec.fingerprint(),
                "total_images": spec.count(),
                "host": host_info,
            }
            if spec.training_runs:  # [TrainingRun.to_dict()], each cut to the grid's adapters
                manifest["training_runs"] = spec.training_runs
        self.images_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False))
        return manifest

    # -- cells ---------------------------------------------------------------------------
    def records(self) -> Iterator[CellRecord]:
        yield from read_records(self.dir / CELLS)

    def finished(self) -> dict[str, dict[str, Any]]:
        """Keys of images done (their image file present), last record wins."""
        done: dict[str, dict[str, Any]] = {}
        for record in self.records():
            if record.status == "done" and (self.images_dir / record.data.get("image", "")).is_file():
                done[record.key] = record.data
            else:
                done.pop(record.key, None)
        return done

    def failures(self) -> dict[str, dict[str, Any]]:
        failed: dict[str, dict[str, Any]] = {}
        for record in self.records():
            if record.status == "failed":
                failed[record.key] = record.data
            else:
                failed.pop(record.key, None)
        return failed

    def append(self, record: dict[str, Any]) -> None:
        """Append one line and make it durable before returning."""
        append_record(self.dir / CELLS, record)

    def image_name(self, key: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", key.replace("|", "__"))
        return f"{safe[:180]}.png"


def cell_line(job: GridJob, status: str, **extra: Any) -> dict[str, Any]:
    """One image's line in ``cells.jsonl`` (what it is, its status, then ``extra``): the grid
    runner's and the sweep's lines are the same, so ``evaluate`` reads either."""
    line = {
        "key": job.key,
        "status": status,
        "checkpoint": job.checkpoint,
        "adapter": job.adapter,
        "weight": job.weight,
        "prompt": job.prompt.text,
        "prompt_type": job.prompt.type,
        "seed": job.seed,
    }
    line.update(extra)
    line.setdefault("time", time.time())
    return line


def read_records(path: Path) -> Iterator[CellRecord]:
    """The lines of a ``cells.jsonl`` (or of a sweep worker's shard of it), torn tail ignored."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # torn last line: the write was interrupted
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "key" in data:
                yield CellRecord(data["key"], data.get("status", "done"), data)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and make it durable before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    _repair_torn_tail(path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _repair_torn_tail(path: Path) -> None:
    """A crash mid-append leaves a line without newline: cut it so the next line is whole."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        cut = data.rfind(b"\n") + 1
        handle.truncate(cut)


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Runs under ``root``, newest first, with a short summary."""
    runs = []
    if not Path(root).is_dir():
        return runs
    for child in Path(root).iterdir():
        manifest = child / MANIFEST
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        store = RunStore(Path(root), child.name)
        runs.append(
            {
                "run_id": child.name,
                "created": data.get("created"),
                "name": data.get("spec", {}).get("run_name", ""),
                "total_images": data.get("total_images"),
                "done_images": len(store.finished()),
                "failed_images": len(store.failures()),
            }
        )
    runs.sort(key=lambda r: r.get("created") or "", reverse=True)
    return runs


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def generation_failures(images_dir: Path) -> list[dict[str, Any]]:
    """Images a grid run could not make (from its run store), so reports can show them."""

    run_dir = Path(images_dir).parent
    if not (run_dir / MANIFEST).is_file() or not (run_dir / CELLS).is_file():
        return []
    store = RunStore(run_dir.parent, run_dir.name)
    keys = ("key", "checkpoint", "adapter", "weight", "prompt", "prompt_type", "seed", "error")
    return [{k: record.get(k) for k in keys} for record in store.failures().values()]


def run_store_records(images_dir: Path) -> dict[str, dict[str, Any]]:
    """For a run made by the extension (``<run>/images``): image file name -> its finished
    line in ``cells.jsonl`` (checkpoint, adapter, weight, prompt, type, seed). Empty for
    any other folder, whose images are described from their infotext."""

    run_dir = Path(images_dir).parent
    if Path(images_dir).name != "images" or not (run_dir / MANIFEST).is_file() or not (run_dir / CELLS).is_file():
        return {}
    try:
        store = RunStore(run_dir.parent, run_dir.name)
    except InputError:
        return {}
    return {str(data["image"]): data for data in store.finished().values() if data.get("image")}
