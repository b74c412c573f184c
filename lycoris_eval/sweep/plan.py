"""The sweep's work: the grid's cells in checkpoint-sorted chunks, and which chunk a free
worker takes next.

Pure (no Ray, no HTTP). A chunk holds cells of one checkpoint only, so a WebUI switches
model at most once per chunk; a free worker takes a chunk of the checkpoint it has loaded
when there is one, else of the checkpoint with the most chunks left that no other worker
is on (so workers spread over checkpoints instead of all loading the same next one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lycoris_eval.grid.spec import GridJob, GridSpec

DEFAULT_CHUNK = 8


@dataclass
class Chunk:
    id: int
    checkpoint: str
    jobs: list[GridJob]
    attempts: int = 0  # how many workers it was handed to and came back unfinished
    errors: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """What a worker needs (plain data, cheap to ship to a Ray actor)."""
        return {"id": self.id, "checkpoint": self.checkpoint, "jobs": [job_dict(j) for j in self.jobs]}


def job_dict(job: GridJob) -> dict[str, Any]:
    return {
        "key": job.key,
        "checkpoint": job.checkpoint,
        "adapter": job.adapter,
        "weight": job.weight,
        "prompt_index": job.prompt_index,
        "prompt": job.prompt.text,
        "prompt_type": job.prompt.type,
        "seed": job.seed,
    }


def make_chunks(spec: GridSpec, checkpoints: list[str], done: Iterable[str], size: int = DEFAULT_CHUNK) -> list[Chunk]:
    """The cells not in ``done``, grouped by checkpoint (in the spec's order), ``size`` at most each."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    finished = set(done)
    chunks: list[Chunk] = []
    for checkpoint in checkpoints:
        todo = [j for j in spec.plan([checkpoint]) if j.key not in finished]
        for start in range(0, len(todo), size):
            chunks.append(Chunk(len(chunks), checkpoint, todo[start : start + size]))
    return chunks


class ChunkQueue:
    """Chunks waiting for a worker, handed out with checkpoint affinity."""

    def __init__(self, chunks: list[Chunk], max_attempts: int = 3) -> None:
        self.pending: list[Chunk] = list(chunks)
        self.max_attempts = max_attempts
        self.given_up: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.pending)

    def take(self, loaded: str | None, busy_with: Iterable[str]) -> Chunk | None:
        """The next chunk for a worker that has ``loaded`` and while others work on ``busy_with``."""
        if not self.pending:
            return None
        same = [c for c in self.pending if c.checkpoint == loaded]
        if same:
            chosen = same[0]
        else:
            left: dict[str, int] = {}
            for c in self.pending:
                left[c.checkpoint] = left.get(c.checkpoint, 0) + 1
            taken = set(busy_with)
            free = [ck for ck in left if ck not in taken] or list(left)
            best = max(free, key=lambda ck: left[ck])  # max keeps the first of equals: spec order
            chosen = next(c for c in self.pending if c.checkpoint == best)
        self.pending.remove(chosen)
        return chosen

    def give_back(self, chunk: Chunk, remaining: list[GridJob], error: str, attempted: bool = True) -> bool:
        """A worker came back without finishing ``remaining``: queue them again, at the front,
        unless the chunk has used its attempts (then it is kept in :attr:`given_up`).
        ``attempted=False``: it was only queued at a worker already known gone (not counted)."""
        if not remaining:
            return True
        chunk.jobs = remaining
        if not attempted:
            self.pending.insert(0, chunk)
            return True
        chunk.attempts += 1
        chunk.errors.append(error)
        if chunk.attempts >= self.max_attempts:
            self.given_up.append(chunk)
            return False
        self.pending.insert(0, chunk)
        return True
