"""The worker behind one WebUI: takes a chunk (cells of one checkpoint), makes each image
through the WebUI's HTTP API, and writes it at once (PNG by cell key, then its line in the
worker's own shard), so whatever it finished survives any crash after it.

Plain Python: :mod:`.driver` wraps it as a Ray actor (one per WebUI URL); tests may call
it directly. Imports no Ray.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import AdapterLoadError, CheckpointMismatchError, HostImageError, WebUIUnreachable
from ..grid_runner import CELL_KEY, RUN_KEY, CheckpointRef, png_bytes
from ..grid_spec import GridJob
from ..infotext import PROMPT_TYPE_KEY
from ..report import write_atomic_bytes
from ..run_store import RunStore, append_record
from .store import shard_path
from .webui_client import WebUIClient, WebUIFacts, add_fields


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
        self.loaded = _name_of(facts.current, facts.checkpoints)
        self.loads = 0  # checkpoint switches this worker asked of its WebUI

    def run_chunk(self, chunk_id: int, checkpoint: str, jobs: list[GridJob]) -> dict[str, Any]:
        """Make ``jobs``; stop early only when the WebUI is unreachable (``remaining`` says what is left)."""
        started = time.monotonic()
        http_s = 0.0
        done: list[str] = []
        failed: dict[str, str] = {}
        unreachable: str | None = None
        remaining: list[GridJob] = []
        ref = self.by_name[checkpoint]
        for index, job in enumerate(jobs):
            try:
                t0 = time.monotonic()
                outcome = self._generate(job, ref)
                http_s += time.monotonic() - t0
            except WebUIUnreachable as exc:
                unreachable = str(exc)
                remaining = jobs[index:]
                break
            if self.loaded != checkpoint:
                self.loads += 1
                self.loaded = checkpoint
            if isinstance(outcome, Exception):
                failed[job.key] = str(outcome)
                append_record(self.shard, self._record(job, ref, "failed", error=str(outcome)))
                continue
            self._save(job, ref, *outcome)
            done.append(job.key)
        return {
            "chunk": chunk_id,
            "worker": self.client.url,
            "done": done,
            "failed": failed,
            "remaining": remaining,
            "unreachable": unreachable,
            "loads": self.loads,
            "http_s": http_s,
            "chunk_s": time.monotonic() - started,
        }

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
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            encoded = png_bytes(image, text)
        name = self.store.image_name(job.key)
        write_atomic_bytes(self.store.images_dir / name, encoded)
        append_record(self.shard, self._record(job, ref, "done", image=name, infotext=text))

    def _record(self, job: GridJob, ref: CheckpointRef, status: str, **extra: Any) -> dict[str, Any]:
        """The line the grid runner writes for the same cell (plus the worker's URL)."""
        record = {
            "key": job.key,
            "status": status,
            "checkpoint": job.checkpoint,
            "checkpoint_hash": ref.hash,
            "adapter": job.adapter,
            "weight": job.weight,
            "prompt": job.prompt.text,
            "prompt_type": job.prompt.type,
            "seed": job.seed,
            "worker": self.client.url,
            "time": time.time(),
        }
        record.update(extra)
        return record

    def close(self) -> None:
        self.client.close()


def _name_of(title: str, checkpoints: list[CheckpointRef]) -> str | None:
    """The checkpoint name of a title as ``/sdapi/v1/options`` gives it (hash suffix or not)."""
    bare = title.split(" [", 1)[0]
    for ref in checkpoints:
        if title in (ref.title, ref.name) or bare in (ref.title.split(" [", 1)[0], ref.name):
            return ref.name
    return None
