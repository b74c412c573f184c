"""Background jobs for the HTTP API: one worker thread per job, serialised by a lock.

A job outlives the request that started it (a client disconnect does not kill it). Jobs
run one at a time under the lock the host gives (the WebUI's ``queue_lock``, so a UI
generation waits its turn and two grids never collide). Progress, ETA and the result
are readable at any time; cancel sets a flag the job checks between images.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from lycoris_eval.errors import words


@dataclass
class Job:
    id: str
    kind: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    done: int = 0
    total: int = 0
    current: str = ""
    run_id: str | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)  # mapped by errors.http_status
    result: Any = None
    cancel_requested: bool = False
    # what the job is doing: "generating" (a grid's images: done/total above), then
    # "scoring" with its own counters and the scoring's named step ("encoding images 40/120")
    phase: str = ""
    scoring: dict[str, Any] | None = None

    def progress(self, done: int, total: int, current: str) -> None:
        self.done, self.total, self.current = done, total, current
        if self.kind == "grid":
            self.phase = "generating"
        else:  # an evaluation: its images are the ones scored
            self.scoring_progress(done, total, current)

    def scoring_progress(self, done: int, total: int, current: str) -> None:
        """The scoring step of a job (a grid with ``score``, or an evaluation)."""
        self.phase = "scoring"
        if total == 0 and self.scoring:  # a step without counts ("writing the reports"): keep them
            done, total = self.scoring["done"], self.scoring["total"]
        self.scoring = {"done": done, "total": total, "current": current}
        if self.kind == "grid":
            self.current = f"scoring: {current}"

    @property
    def eta_s(self) -> float | None:
        if self.state != "running" or not self.started or self.done <= 0 or self.total <= self.done:
            return None
        elapsed = time.time() - self.started
        return round(elapsed / self.done * (self.total - self.done), 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "images_done": self.done,
            "images_total": self.total,
            "current": self.current,
            "phase": self.phase if self.state == "running" and self.phase else self.state,
            "scoring": self.scoring,
            "eta_s": self.eta_s,
            "run_id": self.run_id,
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class JobManager:
    def __init__(self, lock_factory: Callable[[], AbstractContextManager[Any]], keep: int = 200) -> None:
        self._lock_factory = lock_factory
        self._jobs: dict[str, Job] = {}
        self._guard = threading.Lock()
        self._keep = keep
        self._threads: dict[str, threading.Thread] = {}

    def submit(self, kind: str, work: Callable[[Job], Any], run_id: str | None = None) -> Job:
        """Start ``work`` in its own thread; ``run_id`` is known from the start when given, so a
        client that loses the job (a crash, a restart) still knows which run to resume."""
        job = Job(id=uuid.uuid4().hex[:16], kind=kind, run_id=run_id)
        with self._guard:
            self._jobs[job.id] = job
            self._prune()
        thread = threading.Thread(target=self._run, args=(job, work), name=f"lycoris-eval-{kind}-{job.id}", daemon=True)
        self._threads[job.id] = thread
        thread.start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        with self._lock_factory():
            if job.cancel_requested:
                job.state, job.finished = "cancelled", time.time()
                return
            job.state, job.started = "running", time.time()
            try:
                job.result = work(job)
                job.state = "cancelled" if job.cancel_requested else "done"
            except Exception as exc:  # noqa: BLE001 - reported on the job, never lost in a thread
                job.state = "failed"
                job.exception = exc
                job.error = f"{type(exc).__name__}: {words(exc, 'api')}"
                job.result = {"traceback": traceback.format_exc(limit=5)}
            finally:
                job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            job.cancel_requested = True
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self._jobs.get(job_id)

    def _prune(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed", "cancelled")]
        for job in sorted(finished, key=lambda j: j.created)[: max(0, len(self._jobs) - self._keep)]:
            self._jobs.pop(job.id, None)
            self._threads.pop(job.id, None)
