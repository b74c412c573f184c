"""The worker behind one WebUI: takes a chunk (cells of one checkpoint), makes each image
through the WebUI's HTTP API, and writes it at once (PNG by cell key, then its line in the
worker's own shard), so whatever it finished survives any crash after it.

Plain Python: :mod:`.driver` wraps it as a Ray actor (one per WebUI URL); tests may call
it directly. Imports no Ray.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

from PIL import Image

from lycoris_eval.errors import AdapterLoadError, CheckpointMismatchError, HostImageError, WebUIUnreachable
from lycoris_eval.fileio import write_atomic_bytes
from lycoris_eval.grid.host import CheckpointRef
from lycoris_eval.grid.runner import CELL_KEY, RUN_KEY, png_bytes
from lycoris_eval.grid.spec import GridJob
from lycoris_eval.grid.store import RunStore, append_record, cell_line
from lycoris_eval.grid.writer import RunWriter
from lycoris_eval.inputs.infotext import PROMPT_TYPE_KEY
from lycoris_eval.sweep.store import shard_path
from lycoris_eval.sweep.webui_client import WebUIClient, WebUIFacts, add_fields


class SweepWorker:
    def __init__(
        self,
        url: str,
        auth: str | None,
        facts: WebUIFacts,
        base: dict[str, Any],
        runs_root: str,
        run_id: str,
        timeout: float = 600.0,
    ) -> None:
        self.client = WebUIClient(url, auth, timeout)
        self.facts = facts
        self.base = base
        self.store = RunStore(Path(runs_root), run_id)
        self.shard = shard_path(self.store, self.client.url)
        self.by_name = {c.name: c for c in facts.checkpoints}
        self.loaded = ref.name if (ref := facts.loaded()) else None
        self.loads = 0  # checkpoint switches this worker asked of its WebUI

    def run_chunk(self, chunk_id: int, checkpoint: str, jobs: list[GridJob]) -> dict[str, Any]:
        """Make ``jobs``; stop early only when the WebUI is unreachable (``remaining`` says what is left)."""
        started = time.monotonic()
        report: dict[str, Any] = {"chunk": chunk_id, "worker": self.client.url, "done": [], "failed": {}}
        report.update(remaining=[], unreachable=None, http_s=0.0)
        # PNG re-encoding and the durable writes of one image overlap the next image's request
        # (about 30 ms at 512x512 that the WebUI would otherwise wait); all written before returning
        self.writer = RunWriter(_Shard(self.shard), write_atomic_bytes, _with_fields)  # type: ignore[arg-type]
        try:
            self._make(jobs, self.by_name[checkpoint], report)
        finally:
            error = self.writer.close()
        if error is not None:  # a full disk, a lost mount: this worker stops, its cells are redone
            raise error
        report.update(loads=self.loads, chunk_s=time.monotonic() - started)
        return report

    def _make(self, jobs: list[GridJob], ref: CheckpointRef, report: dict[str, Any]) -> None:
        for index, job in enumerate(jobs):
            try:
                t0 = time.monotonic()
                outcome = self._generate(job, ref)
                report["http_s"] += time.monotonic() - t0
            except WebUIUnreachable as exc:
                report["unreachable"], report["remaining"] = str(exc), jobs[index:]
                return
            if self.loaded != ref.name:
                self.loads += 1
                self.loaded = ref.name
            if isinstance(outcome, Exception):
                report["failed"][job.key] = str(outcome)
                self.writer.append(self._record(job, ref, "failed", error=str(outcome)))
                continue
            self._save(job, ref, *outcome)
            report["done"].append(job.key)

    def _generate(self, job: GridJob, ref: CheckpointRef) -> tuple[bytes, str] | Exception:
        """The image, or the error to record on its cell (a host failure is retried once)."""
        last: Exception | None = None
        for _attempt in range(2):
            try:
                return self.client.txt2img(job, ref, self.base, self.facts)
            except (AdapterLoadError, CheckpointMismatchError) as exc:
                return exc
            except HostImageError as exc:
                last = exc
        return last or HostImageError("no image")

    def _save(self, job: GridJob, ref: CheckpointRef, data: bytes, infotext: str) -> None:
        extra = {CELL_KEY: job.key, RUN_KEY: self.store.run_id}
        if job.prompt.type != "unspecified":
            extra[PROMPT_TYPE_KEY] = job.prompt.type
        text = add_fields(infotext, extra)
        name = self.store.image_name(job.key)
        record = self._record(job, ref, "done", image=name, infotext=text)
        self.writer.save(self.store.images_dir / name, data, text, record)  # type: ignore[arg-type]

    def _record(self, job: GridJob, ref: CheckpointRef, status: str, **extra: Any) -> dict[str, Any]:
        """The line the grid runner writes for the same cell (plus the worker's URL and process)."""
        return cell_line(job, status, checkpoint_hash=ref.hash, worker=self.client.url, pid=os.getpid(), **extra)

    def close(self) -> None:
        self.client.close()


class _Shard:
    """What :class:`RunWriter` needs of a store: appending a line (here, to the worker's shard)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        append_record(self.path, record)


def _with_fields(data: bytes, infotext: str) -> bytes:
    """The WebUI's PNG with the infotext that carries the cell keys (pixels unchanged)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return png_bytes(image, infotext)
