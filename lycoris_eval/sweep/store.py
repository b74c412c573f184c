"""The sweep's files: each worker appends to its own shard of ``cells.jsonl``
(``<run>/sweep/cells-<worker>.jsonl``), next to the PNGs in ``<run>/images/`` named by cell
key; the driver merges the shards into the run's ``cells.jsonl`` by key.

Files are the truth: a finished image is one whose PNG and ``done`` line both exist,
whoever wrote them. Merging keeps one line per key (a ``done`` line whose image exists
wins over any ``failed`` one; otherwise the last line), so a cell made twice (a worker
that died after writing, its chunk redone elsewhere) is still counted once. Merging is
incremental (:mod:`.merge_index`): each merge reads only the lines appended since the last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lycoris_eval.grid.store import CELLS, RunStore
from lycoris_eval.sweep.merge_index import Merger

SHARD_DIR = "sweep"
INDEX = "merge-index.json"  # what the merge has read of each file (see :mod:`.merge_index`)


def shard_name(worker: str) -> str:
    """A file-safe shard name for a worker (its WebUI URL)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", re.sub(r"^https?://", "", worker)).strip("_")
    return f"cells-{slug[:80] or 'worker'}.jsonl"


def shard_path(store: RunStore, worker: str) -> Path:
    return store.dir / SHARD_DIR / shard_name(worker)


def shard_paths(store: RunStore) -> list[Path]:
    folder = store.dir / SHARD_DIR
    return sorted(folder.glob("cells-*.jsonl")) if folder.is_dir() else []


def merger(store: RunStore, saved: bool = True) -> Merger:
    """An incremental reader of the run's line files (from the saved index when ``saved`` and it still holds)."""
    out = Merger(store.dir, store.dir / SHARD_DIR / INDEX, store.images_dir)
    if saved:
        out.load()
    return out


def line_files(store: RunStore) -> list[Path]:
    """``cells.jsonl`` then every shard: the order lines are merged in."""
    return [store.dir / CELLS, *shard_paths(store)]


def refreshed(store: RunStore, using: Merger | None = None) -> Merger:
    """``using`` (else a merger from the saved index) with every line written since its last read folded in."""
    using = using or merger(store)
    using.refresh(line_files(store))
    return using


def merged(store: RunStore, using: Merger | None = None) -> dict[str, dict[str, Any]]:
    """Key -> the line that stands for it, over ``cells.jsonl`` and every shard."""
    using = refreshed(store, using)
    return {key: json.loads(using.line(entry)) for key, entry in using.entries.items()}


def done_keys(store: RunStore, using: Merger | None = None, among: Iterable[str] | None = None) -> set[str]:
    """The keys (of ``among``, else all) whose line is ``done`` and whose PNG exists; only
    new lines are read when ``using`` read before, and only ``among``'s PNGs are looked at."""
    using = refreshed(store, using)
    keys = using.entries if among is None else among
    return {key for key in keys if (entry := using.entries.get(key)) is not None and using.is_done(entry)}


def merge(store: RunStore, order: list[str], using: Merger | None = None) -> dict[str, int]:
    """Rewrite ``cells.jsonl`` atomically with one line per key (plan order first); counts by status.

    Reads only what was appended since ``using`` (or the saved index) last read, and writes
    nothing when ``cells.jsonl`` already holds every line in this order; saves the index."""
    using = refreshed(store, using)
    if not using.up_to_date(store.dir / CELLS, order):
        using.write_merged(store.dir / CELLS, order)
        using.save()
    counts: dict[str, int] = {}
    for entry in using.entries.values():
        status = entry[0]
        if status == "done" and not using.is_done(entry):
            status = "missing"  # its image is gone: made again by the next run
        counts[status] = counts.get(status, 0) + 1
    return counts
