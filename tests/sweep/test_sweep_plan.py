"""The sweep's pure parts: chunks, which chunk a free worker takes, retries, merging shards."""

from __future__ import annotations

import json

from lycoris_eval.grid.spec import GridSpec
from lycoris_eval.grid.store import RunStore, append_record
from lycoris_eval.sweep.plan import ChunkQueue, make_chunks
from lycoris_eval.sweep.preflight import sweep_run_id
from lycoris_eval.sweep.store import done_keys, merge, shard_path
from lycoris_eval.sweep.webui_client import add_fields, split_url

RAW = {"checkpoints": ["a", "b", "c"], "adapters": ["x"], "weights": [1], "prompts": ["p"], "seeds": [1, 2, 3]}


def spec() -> GridSpec:
    return GridSpec.from_dict(RAW)


def test_chunks_hold_one_checkpoint_and_skip_done_cells():
    done = {j.key for j in spec().plan(["a"])[:4]}
    chunks = make_chunks(spec(), ["a", "b", "c"], done, size=4)
    assert [(c.checkpoint, len(c.jobs)) for c in chunks] == [("a", 2), ("b", 4), ("b", 2), ("c", 4), ("c", 2)]
    assert not done & {j.key for c in chunks for j in c.jobs}


def test_free_workers_keep_their_checkpoint_and_spread_over_the_others():
    queue = ChunkQueue(make_chunks(spec(), ["a", "b", "c"], (), size=2))
    first = queue.take(None, [])
    second = queue.take(None, [first.checkpoint])
    assert first.checkpoint != second.checkpoint  # the second worker does not load the same model
    assert queue.take(first.checkpoint, [second.checkpoint]).checkpoint == first.checkpoint


def test_a_chunk_comes_back_at_most_max_attempts_times():
    queue = ChunkQueue(make_chunks(spec(), ["a"], (), size=6), max_attempts=2)
    chunk = queue.take(None, [])
    assert queue.give_back(chunk, chunk.jobs[3:], "gone") and len(queue) == 1
    again = queue.take(None, [])
    assert again is chunk and len(again.jobs) == 3
    assert queue.give_back(again, again.jobs, "queued at a dead worker", attempted=False)  # not an attempt
    assert queue.take(None, []) is chunk and chunk.attempts == 1
    assert not queue.give_back(again, again.jobs, "gone again")
    assert queue.given_up == [chunk] and chunk.errors == ["gone", "gone again"] and len(queue) == 0


def test_merge_keeps_one_line_per_cell_and_a_finished_image_wins(tmp_path):
    store = RunStore(tmp_path, "r")
    store.images_dir.mkdir(parents=True)
    (store.images_dir / "k1.png").write_bytes(b"png")
    append_record(shard_path(store, "http://w1"), {"key": "k1", "status": "done", "image": "k1.png"})
    append_record(shard_path(store, "http://w2"), {"key": "k1", "status": "failed", "error": "late"})
    append_record(shard_path(store, "http://w2"), {"key": "k2", "status": "done", "image": "missing.png"})
    append_record(shard_path(store, "http://w2"), {"key": "k3", "status": "failed", "error": "nan"})
    with open(shard_path(store, "http://w1"), "a") as handle:
        handle.write('{"key": "k4", "status": "do')  # torn by a kill
    counts = merge(store, ["k3", "k2", "k1"])
    lines = [json.loads(line) for line in (store.dir / "cells.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == ["k3", "k2", "k1"]
    assert counts == {"failed": 1, "missing": 1, "done": 1}
    assert done_keys(store) == {"k1"}
    assert store.finished().keys() == {"k1"}  # what evaluate reads


def test_run_id_is_stable_for_the_same_spec_and_names_its_run():
    assert sweep_run_id(spec(), RAW) == sweep_run_id(spec(), dict(RAW))
    assert sweep_run_id(spec(), RAW) != sweep_run_id(spec(), {**RAW, "seeds": [1, 2]})
    named = GridSpec.from_dict({**RAW, "run_name": "my run"})
    assert sweep_run_id(named, {**RAW, "run_name": "my run"}).startswith("sweep-my-run-")
    assert sweep_run_id(spec(), {**RAW, "score": True}) == sweep_run_id(spec(), RAW)  # labels are not identity


def test_urls_keep_credentials_out_of_names():
    assert split_url("http://u:p@127.0.0.1:7860/") == ("http://127.0.0.1:7860", ("u", "p"))
    assert split_url("http://h:1", "a:b:c") == ("http://h:1", ("a", "b:c"))
    assert shard_path(RunStore(__import__("pathlib").Path("/x"), "r"), "http://127.0.0.1:7860").name == (
        "cells-127.0.0.1_7860.jsonl"
    )
    assert add_fields("p\nSteps: 4, Seed: 1", {"LyCORIS cell": "a|b|1|p0|2"}) == (
        "p\nSteps: 4, Seed: 1, LyCORIS cell: a|b|1|p0|2"
    )


def test_the_loaded_checkpoint_is_found_with_or_without_its_hash():
    from lycoris_eval.grid.host import CheckpointRef
    from lycoris_eval.sweep.webui_client import WebUIFacts

    refs = [CheckpointRef("tiny-a", "tiny-a.safetensors [5b9937790e]"), CheckpointRef("tiny-b", "tiny-b.safetensors")]
    for current, name in [("tiny-a.safetensors", "tiny-a"), ("tiny-b.safetensors [cc9fd34184]", "tiny-b")]:
        assert WebUIFacts("http://x", refs, [], current).loaded().name == name
    assert WebUIFacts("http://x", refs, [], "other.ckpt").loaded() is None
