"""The sweep's files: each worker appends to its own shard of ``cells.jsonl``
(``<run>/sweep/cells-<worker>.jsonl``), next to the PNGs in ``<run>/images/`` named by cell
key; the driver merges the shards into the run's ``cells.jsonl`` by key.

Files are the truth: a finished image is one whose PNG and ``done`` line both exist,
whoever wrote them. Merging keeps one line per key (a ``done`` line whose image exists
wins over any ``failed`` one; otherwise the last line), so a cell made twice (a worker
that died after writing, its chunk redone elsewhere) is still counted once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..report import write_atomic
from ..run_store import CELLS, RunStore, read_records

SHARD_DIR = "sweep"


def shard_name(worker: str) -> str:
    """A file-safe shard name for a worker (its WebUI URL)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", re.sub(r"^https?://", "", worker)).strip("_")
    return f"cells-{slug[:80] or 'worker'}.jsonl"


def shard_path(store: RunStore, worker: str) -> Path:
    return store.dir / SHARD_DIR / shard_name(worker)


def shard_paths(store: RunStore) -> list[Path]:
    folder = store.dir / SHARD_DIR
    return sorted(folder.glob("cells-*.jsonl")) if folder.is_dir() else []


def merged(store: RunStore) -> dict[str, dict[str, Any]]:
    """Key -> the line that stands for it, over ``cells.jsonl`` and every shard."""
    out: dict[str, dict[str, Any]] = {}
    for path in [store.dir / CELLS, *shard_paths(store)]:
        for record in read_records(path):
            kept = out.get(record.key)
            if kept is not None and _is_done(store, kept) and not _is_done(store, record.data):
                continue
            out[record.key] = record.data
    return out


def _is_done(store: RunStore, data: dict[str, Any]) -> bool:
    return data.get("status", "done") == "done" and (store.images_dir / str(data.get("image", ""))).is_file()


def done_keys(store: RunStore) -> set[str]:
    return {key for key, data in merged(store).items() if _is_done(store, data)}


def merge(store: RunStore, order: list[str]) -> dict[str, int]:
    """Rewrite ``cells.jsonl`` atomically with one line per key (plan order first); counts by status."""
    lines = merged(store)
    position = {key: i for i, key in enumerate(order)}
    keys = sorted(lines, key=lambda k: (position.get(k, len(position)), k))
    text = "".join(json.dumps(lines[k], ensure_ascii=False, allow_nan=False) + "\n" for k in keys)
    write_atomic(store.dir / CELLS, text)
    counts: dict[str, int] = {}
    for key in keys:
        status = lines[key].get("status", "done")
        if status == "done" and not _is_done(store, lines[key]):
            status = "missing"  # its image is gone: made again by the next run
        counts[status] = counts.get(status, 0) + 1
    return counts
