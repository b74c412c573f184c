"""The incremental shard merge: a second look reads only the lines appended since the first,
a resumed sweep starts from the saved index, and an index that no longer matches its files
(rewritten, truncated, replaced, unreadable) is dropped for a full read with the same result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lycoris_eval.grid.store import RunStore, append_record
from lycoris_eval.sweep.store import INDEX, SHARD_DIR, done_keys, line_files, merge, merged, merger, shard_path


def _store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path, "r")
    store.images_dir.mkdir(parents=True)
    return store


def _done(store: RunStore, worker: str, key: str) -> None:
    (store.images_dir / f"{key}.png").write_bytes(b"png")
    append_record(shard_path(store, worker), {"key": key, "status": "done", "image": f"{key}.png", "pad": "x" * 50})


def _full(store: RunStore) -> dict:
    """What a merge without any index reads."""
    return merged(store, merger(store, saved=False))


def test_a_second_look_reads_only_the_new_lines(tmp_path):
    store = _store(tmp_path)
    for i in range(50):
        _done(store, "http://w1", f"a{i}")
        _done(store, "http://w2", f"b{i}")
    lines = merger(store)
    assert len(done_keys(store, lines)) == 100 and lines.lines_parsed == 100
    shard = shard_path(store, "http://w2")
    before = shard.stat().st_size
    _done(store, "http://w2", "b50")
    append_record(shard, {"key": "a3", "status": "failed", "error": "late"})  # a finished image wins
    read, parsed = lines.bytes_read, lines.lines_parsed
    keys = done_keys(store, lines)
    assert lines.lines_parsed - parsed == 2
    assert lines.bytes_read - read == shard.stat().st_size - before
    assert keys == {f"a{i}" for i in range(50)} | {f"b{i}" for i in range(51)}
    assert merged(store, lines) == _full(store) and lines.full_reads == 0
    (store.images_dir / "a7.png").unlink()  # a dead worker's chunk: only its keys are looked at
    assert done_keys(store, lines, among=["a6", "a7", "b50", "zz"]) == {"a6", "b50"}


def test_a_resumed_merge_starts_from_the_saved_index(tmp_path):
    store = _store(tmp_path)
    for i in range(30):
        _done(store, "http://w1", f"k{i}")
    order = [f"k{i}" for i in range(31)]
    assert merge(store, order) == {"done": 30}
    assert (store.dir / SHARD_DIR / INDEX).is_file()
    cells = store.dir / "cells.jsonl"
    inode = cells.stat().st_ino
    again = merger(store)
    assert merge(store, order, again) == {"done": 30}
    assert again.lines_parsed == 0 and again.bytes_read == 0  # nothing new: nothing read ...
    assert cells.stat().st_ino == inode  # ... and nothing rewritten
    _done(store, "http://w2", "k30")
    resumed = merger(store)
    assert merge(store, order, resumed) == {"done": 31}
    assert resumed.lines_parsed == 1 and resumed.full_reads == 0
    assert [json.loads(line)["key"] for line in cells.read_text().splitlines()] == order
    assert merged(store) == _full(store)


def test_a_torn_last_line_is_read_once_it_is_whole(tmp_path):
    store = _store(tmp_path)
    _done(store, "http://w1", "k1")
    shard = shard_path(store, "http://w1")
    with open(shard, "a") as handle:
        handle.write('{"key": "k2", "status": "do')  # torn by a kill -9
    lines = merger(store)
    assert done_keys(store, lines) == {"k1"}
    _done(store, "http://w1", "k3")  # the next append cuts the torn tail first
    assert done_keys(store, lines) == {"k1", "k3"} and lines.lines_parsed == 2
    assert merged(store, lines) == _full(store) and lines.full_reads == 0


def _spoil_index(store: RunStore) -> None:
    (store.dir / SHARD_DIR / INDEX).write_text('{"version": 1, "files": [')


def _rewrite_in_place(store: RunStore) -> None:
    """Same file, same size, other bytes at the end of what was read."""
    shard = shard_path(store, "http://w1")
    data = shard.read_bytes()
    with open(shard, "r+b") as handle:
        handle.write(data.replace(b'"pad": "xxxx', b'"pad": "yyyy'))


def _truncate(store: RunStore) -> None:
    shard = shard_path(store, "http://w1")
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size // 2)


def _replace_cells(store: RunStore) -> None:
    """Another program rewrote ``cells.jsonl`` (a new file, one line fewer)."""
    cells = store.dir / "cells.jsonl"
    kept = cells.read_text().splitlines(keepends=True)[1:]
    tmp = cells.with_name("other.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, cells)


def _remove_shard(store: RunStore) -> None:
    shard_path(store, "http://w1").unlink()


@pytest.mark.parametrize("spoil", [_spoil_index, _rewrite_in_place, _truncate, _replace_cells, _remove_shard])
def test_a_stale_index_falls_back_to_a_full_read_with_the_same_result(tmp_path, spoil):
    store = _store(tmp_path)
    for i in range(20):
        _done(store, "http://w1", f"k{i}")
    append_record(shard_path(store, "http://w2"), {"key": "k5", "status": "failed", "error": "late"})
    append_record(shard_path(store, "http://w2"), {"key": "f1", "status": "failed", "error": "nan"})
    order = ["f1", *(f"k{i}" for i in range(20))]
    merge(store, order)
    spoil(store)
    _done(store, "http://w2", "k20")
    expected = _full(store)
    resumed = merger(store)
    counts = merge(store, order, resumed)
    assert resumed.full_reads == 1
    assert resumed.lines_parsed >= len(expected)  # every line read again
    assert merged(store, resumed) == expected
    assert counts == {"failed": 1, "done": len(expected) - 1}
    assert sorted(json.loads(line)["key"] for line in (store.dir / "cells.jsonl").read_text().splitlines()) == sorted(
        expected
    )


def test_line_files_put_cells_first(tmp_path):
    store = _store(tmp_path)
    _done(store, "http://w2", "b")
    _done(store, "http://w1", "a")
    assert [p.name for p in line_files(store)] == ["cells.jsonl", "cells-w1.jsonl", "cells-w2.jsonl"]
