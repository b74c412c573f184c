"""Grid runner: spec model, run store, adapter types, and Script.run through the fake WebUI."""

from __future__ import annotations

import dataclasses
import errno
import json

import pytest
from PIL import Image

from lycoris_eval.grid.spec import GridSpec, SpecError, parse_prompts, parse_seeds, parse_weights
from lycoris_eval.grid.store import RunStore
from lycoris_eval.inputs.adapter_types import detect
from lycoris_eval.inputs.images import read_image_file
from lycoris_eval.inputs.infotext import parse_infotext
from tests.helpers import page_p, small_scoring_settings, write_adapter


def spec(**kw) -> dict:
    base = {
        "checkpoints": ["base-a", "mix-b"],
        "adapters": ["style_lora", "style_loha"],
        "weights": [0.5, 1.0],
        "prompts": ["[trigger] a castle", "[alter] a cat on a sofa"],
        "seeds": [11, 12],
        "run_name": "test",
    }
    base.update(kw)
    return base


# ---- spec --------------------------------------------------------------------------------
def test_spec_parsing_and_plan():
    s = GridSpec.from_dict(spec(weights="0, 0.5, 1"))
    assert s.prompts[0].type == "trigger" and s.prompts[0].text == "a castle"
    assert s.weights == [0.0, 0.5, 1.0]
    jobs = s.plan()
    assert len(jobs) == s.count() == 2 * 2 * 2 * (1 + 2 * 2)  # weight 0 is the baseline, not generated twice
    assert [j.checkpoint for j in jobs[: len(jobs) // 2]] == ["base-a"] * (len(jobs) // 2)  # checkpoints outermost
    assert jobs[0].adapter is None and jobs[1].prompt_text() == "a castle, <lora:style_lora:0.5>"
    assert len({j.key for j in jobs}) == len(jobs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weights", "0.5, abc", "'abc' is not a number"),
        ("weights", [0.5, 0.5], "listed twice"),
        ("weights", [50], "outside -5..5"),
        ("weights", [], "at least one weight"),
        ("prompts", [], "at least one prompt"),
        ("prompts", ["a", "a"], "listed twice"),
        ("prompts", ["[style]  "], "no text"),
        ("adapters", [], "give at least one"),
        ("adapters", ["x", "x"], "listed twice"),
        ("seeds", ["1", "x"], "not an integer"),
        ("seeds", [1, 1], "listed twice"),
        ("seeds", {"count": 0, "first": 1}, "count must be"),
        ("run_id", "../evil", "letters, digits"),
        ("score", "yes", "true or false"),
        ("bogus", 1, "unknown field"),
    ],
)
def test_spec_errors_name_the_field(field, value, message):
    with pytest.raises(SpecError, match=message) as err:
        GridSpec.from_dict(spec(**{field: value}))
    assert err.value.field == field


def test_seed_forms():
    import random

    assert parse_seeds({"count": 3, "first": 7}) == [7, 8, 9]
    assert parse_seeds("3 from 100") == [100, 101, 102]
    drawn = parse_seeds([-1, 5], random.Random(0))
    assert drawn[1] == 5 and 0 <= drawn[0] < 2**32 and drawn[0] != -1
    assert parse_weights("0.4, 0.6\n1") == [0.4, 0.6, 1.0]
    assert [p.type for p in parse_prompts("[TRAIN] x\n\ny")] == ["train", "unspecified"]


def test_base_cannot_override_grid_fields():
    with pytest.raises(SpecError, match="base.prompt"):
        GridSpec.from_dict(spec(base={"prompt": "x"}))


# ---- adapter types -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["LoRA", "LoCon", "LoHa", "LoKr", "IA3", "OFT", "BOFT", "GLoRA", "full", "norm"])
def test_adapter_type_detection(tmp_path, kind):
    meta = {
        "ss_sd_model_name": "animefull.ckpt",
        "ss_base_model_version": "sd_v1",
        "ss_network_dim": "8",
        "ss_network_alpha": "4",
        "ss_network_module": "lycoris.kohya",
        "ss_network_args": json.dumps({"algo": kind.lower()}),
        "modelspec.architecture": "stable-diffusion-v1/lora",
    }
    info = detect(write_adapter(tmp_path / "a.safetensors", kind, meta))
    assert info.type == kind
    assert (info.trained_on, info.base_model_version, info.rank, info.alpha) == ("animefull.ckpt", "sd_v1", 8, 4.0)
    assert info.algo == kind.lower() and info.network_module == "lycoris.kohya"
    assert info.architecture == "stable-diffusion-v1/lora"


def test_adapter_type_dora_mixed_rank_and_unreadable(tmp_path):
    assert detect(write_adapter(tmp_path / "d.safetensors", "LoRA", dora=True)).type == "LoRA+DoRA"
    mixed = detect(write_adapter(tmp_path / "m.safetensors", "LoRA+LoHa"))
    assert mixed.type == "mixed" and mixed.components == ["LoHa", "LoRA"]
    assert detect(write_adapter(tmp_path / "r.safetensors", "LoRA")).rank == 4  # from the lora_down shape
    (tmp_path / "evil.pt").write_bytes(b"\x80\x04this would be unpickled")
    pt = detect(tmp_path / "evil.pt")
    assert pt.type == "unknown" and "never unpickled" in pt.note
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 8 + b"{")
    assert "implausible" in detect(tmp_path / "bad.safetensors").note


# ---- run store -----------------------------------------------------------------------------
def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    store = RunStore(tmp_path, "r1")
    store.images_dir.mkdir(parents=True)
    (store.images_dir / "a.png").write_bytes(b"x")
    store.append({"key": "a", "status": "done", "image": "a.png"})
    with open(store.dir / "cells.jsonl", "a") as fh:
        fh.write('{"key": "b", "status": "do')  # crash mid-write
    assert list(store.finished()) == ["a"]
    (store.images_dir / "c.png").write_bytes(b"x")
    store.append({"key": "c", "status": "done", "image": "c.png"})
    assert list(store.finished()) == ["a", "c"]


# ---- Script.run through the fake WebUI -------------------------------------------------------
def run_script(ns, tmp_path, p=None, **kw):
    args = {**{k: "" for k in ns.adapter.ARG_NAMES}, "score": False, "confirm_large": False}
    args["spec_json"] = json.dumps(spec(**kw))
    p = p or page_p(ns, ns.scripts.scripts_txt2img, prompt="masterpiece", negative_prompt="lowres")
    script = ns.adapter.LycorisEvalGridScript()
    return script.run(p, *[args[k] for k in ns.adapter.ARG_NAMES])


def run_dirs(ns):
    root = ns.data / "outputs" / "lycoris-eval"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_script_runs_the_grid_into_the_run_store(fake_webui, tmp_path):
    ns = fake_webui
    ns.shared.opts.sd_model_checkpoint = ns.ckpt_b.title  # the user's checkpoint
    processed = run_script(ns, tmp_path, run_id="r1")
    total = 2 * 2 * 2 * 5
    assert processed.comments.startswith(f"Run r1: {total} new images")
    # checkpoints outermost, each loaded once, then the user's restored
    assert ns.sd_models.LOADS == [ns.ckpt_a.title, ns.ckpt_b.title]
    assert ns.shared.sd_model.sd_checkpoint_info.title == ns.ckpt_b.title
    assert ns.shared.opts.sd_model_checkpoint == ns.ckpt_b.title
    # the host's progress: real count, readable text
    assert ns.shared.state.job_count == total
    assert any("base-a · style_loha @0.5 · seed 2/2" in job for _, _, job in ns.shared.state.history)
    # baseline first in each row, same seed across the row
    calls = ns.processing.CALLS
    assert calls[0][1] == "masterpiece, a castle" and calls[1][1] == "masterpiece, a castle, <lora:style_lora:0.5>"
    assert {c[2] for c in calls[:5]} == {11}
    # run store
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r1")
    manifest = store.read_manifest()
    assert manifest["total_images"] == total and manifest["host"]["webui_version"] == "v1.10.1"
    assert {a["name"]: a["info"]["type"] for a in manifest["host"]["adapters"]} == {
        "style_lora": "LoRA",
        "style_loha": "LoHa",
    }
    assert manifest["host"]["adapters"][0]["info"]["trained_on"] == "base-a.safetensors"
    assert [c["hash"] for c in manifest["host"]["checkpoints"]] == ["a" * 10, "b" * 10]
    finished = store.finished()
    assert len(finished) == total
    record = next(r for r in finished.values() if r["adapter"] == "style_loha" and r["weight"] == 1.0)
    info = parse_infotext(read_image_file(store.images_dir / record["image"]).infotext)
    assert info.params["LyCORIS prompt type"] in ("trigger", "alter") and info.params["LyCORIS run"] == "r1"
    assert info.params["LyCORIS cell"] == record["key"] and info.seed == record["seed"]
    # returned like the X/Y/Z plot: grids first, then every image with its infotext
    assert len(processed.images) == 2 + total and processed.index_of_first_image == 2
    grid = processed.images[0]
    assert grid.size[0] > 4 * 64 and grid.size[1] > 5 * 64
    assert processed.infotexts[2] == record_infotext(store, 0)


def record_infotext(store, index):
    return list(store.finished().values())[index]["infotext"]


def test_run_store_feeds_the_scoring_engine(fake_webui, tmp_path):
    from lycoris_eval.config import EvalConfig
    from lycoris_eval.scoring.pipeline import evaluate

    ns = fake_webui
    run_script(
        ns,
        tmp_path,
        run_id="r2",
        checkpoints=["base-a"],
        adapters=["style_lora"],
        weights=[1.0],
        prompts=["[style] a tree"],
        seeds=[1, 2],
    )
    doc = evaluate(
        ns.data / "outputs" / "lycoris-eval" / "r2" / "images",
        EvalConfig(
            metrics=("style_loss_base", "psnr_base"),
            random_weights=True,
            device="cpu",
            cache_dir=tmp_path / "c",
            vgg_size=64,
        ),
    )
    cells = doc["cells"]
    assert [(c["checkpoint"], c["adapter"], c["weight"], c["prompt_type"], c["seeds"]) for c in cells] == [
        ("base-a", None, 0.0, "style", [1, 2]),
        ("base-a", "style_lora", 1.0, "style", [1, 2]),
    ]
    assert cells[1]["metrics"]["style_loss_base"]["n"] == 2


class Crash(BaseException):
    """Stands for a killed process: not an Exception, so nothing catches it."""


@pytest.mark.parametrize("crash_at", [1, 7, 19])
def test_resume_after_crash_loses_at_most_the_image_in_flight(fake_webui, tmp_path, monkeypatch, crash_at):
    ns = fake_webui
    original = ns.processing.process_images
    count = {"n": 0}

    def crashing(p):
        count["n"] += 1
        if count["n"] == crash_at:
            raise Crash()
        return original(p)

    monkeypatch.setattr(ns.processing, "process_images", crashing)
    ns.shared.opts.sd_model_checkpoint = ns.ckpt_a.title
    with pytest.raises(Crash):
        run_script(ns, tmp_path, run_id="r3", checkpoints=["mix-b"])
    assert ns.shared.sd_model.sd_checkpoint_info.title == ns.ckpt_a.title  # restored even then
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r3")
    assert len(store.finished()) == crash_at - 1
    monkeypatch.setattr(ns.processing, "process_images", original)
    ns.processing.CALLS.clear()
    processed = run_script(ns, tmp_path, run_id="r3", checkpoints=["mix-b"])
    total = 2 * 2 * 5
    assert len(ns.processing.CALLS) == total - (crash_at - 1)
    assert len(store.finished()) == total
    assert f"{crash_at - 1} kept from before" in processed.comments


def test_changed_spec_under_same_id_is_refused(fake_webui, tmp_path):
    ns = fake_webui
    run_script(ns, tmp_path, run_id="r4", checkpoints=["base-a"], seeds=[1])
    processed = run_script(ns, tmp_path, run_id="r4", checkpoints=["base-a"], seeds=[1], weights=[0.5, 0.8])
    assert processed.images == []
    assert "exists with a different grid: weights: [0.5, 1.0] -> [0.5, 0.8]" in processed.comments


def test_more_seeds_under_the_same_id_make_only_the_new_images(fake_webui, tmp_path):
    ns = fake_webui
    run_script(ns, tmp_path, run_id="r5", checkpoints=["base-a"], seeds=[1, 7])
    before = len(ns.processing.CALLS)
    processed = run_script(ns, tmp_path, run_id="r5", checkpoints=["base-a"], seeds=[1, 7, 8])
    per_seed = before // 2
    assert len(ns.processing.CALLS) - before == per_seed  # seed 8 only
    assert {call[2] for call in ns.processing.CALLS[before:]} == {8}
    # seeds taken away, or reordered, are a different grid
    processed = run_script(ns, tmp_path, run_id="r5", checkpoints=["base-a"], seeds=[7, 1, 8, 9])
    assert "exists with a different grid: seeds: [1, 7, 8] -> [7, 1, 8, 9]" in processed.comments
    spec = GridSpec.from_dict(
        {"checkpoints": ["a"], "adapters": ["x"], "weights": [1], "prompts": ["p"], "seeds": [5, 2]}
    )
    more = spec.with_more_seeds(3)
    assert more.seeds == [5, 2, 6, 7, 8] and spec.seeds == [5, 2] and more.only_adds_seeds(spec)
    assert not spec.only_adds_seeds(more) and not dataclasses.replace(more, weights=[0.5]).only_adds_seeds(spec)
    with pytest.raises(SpecError, match="add 1..1000 seeds, got 0"):
        spec.with_more_seeds(0)


def test_unknown_names_fail_before_any_image(fake_webui, tmp_path):
    ns = fake_webui
    processed = run_script(ns, tmp_path, adapters=["style_lorra"])
    assert "unknown adapter 'style_lorra'; did you mean style_lora" in processed.comments
    processed = run_script(ns, tmp_path, checkpoints=["base-aa"])
    assert "unknown checkpoint 'base-aa'" in processed.comments and "base-a" in processed.comments
    assert ns.processing.CALLS == [] and run_dirs(ns) == []


def test_grid_size_limit_needs_confirmation(fake_webui, tmp_path):
    ns = fake_webui
    ns.shared.opts.lycoris_eval_grid_limit = 10
    processed = run_script(ns, tmp_path)
    assert "40 images, over the limit of 10" in processed.comments and ns.processing.CALLS == []
    args = {**{k: "" for k in ns.adapter.ARG_NAMES}, "score": False}
    args["spec_json"] = json.dumps({**spec(seeds=[1], checkpoints=["base-a"]), "confirm_large": True})
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="")
    out = ns.adapter.LycorisEvalGridScript().run(p, *[args[k] for k in ns.adapter.ARG_NAMES])
    assert "10 new images" in out.comments


def test_host_failures_are_recorded_retried_once_and_the_run_goes_on(fake_webui, tmp_path):
    ns = fake_webui
    ns.processing.FAILURES["a cat on a sofa, <lora:style_loha:1>"] = 1  # fails once: the retry succeeds
    ns.processing.FAILURES["a castle, <lora:style_lora:0.5>"] = -1  # always fails
    processed = run_script(ns, tmp_path, run_id="r5", checkpoints=["base-a"], seeds=[3])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r5")
    failures = store.failures()
    assert list(failures) == ["base-a|style_lora|0.5|p0|3"]
    assert "NansException: A tensor with all NaNs" in failures["base-a|style_lora|0.5|p0|3"]["error"]
    assert len(store.finished()) == 9 and "1 failed" in processed.comments
    assert "failed base-a|style_lora|0.5|p0|3: NansException" in processed.comments
    grid = Image.open(store.dir / "grids" / "prompt-0.png")
    assert grid.getpixel((grid.size[0] - 10, grid.size[1] - 1)) is not None
    from lycoris_eval.grid.store import generation_failures

    (failure,) = generation_failures(store.images_dir)  # what the scoring report shows
    assert failure["adapter"] == "style_lora" and failure["seed"] == 3 and "NansException" in failure["error"]


def test_adapter_that_fails_to_load_is_recorded_on_its_cells(fake_webui, tmp_path):
    ns = fake_webui
    ns.networks.BROKEN.add("style_loha")
    run_script(ns, tmp_path, run_id="r6", checkpoints=["base-a"], seeds=[3])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r6")
    failed = store.failures()
    assert len(failed) == 4 and all(k.startswith("base-a|style_loha|") for k in failed)
    assert "could not load adapter 'style_loha'" in next(iter(failed.values()))["error"]
    assert sum("style_loha" in c[1] for c in ns.processing.CALLS) == 1  # tried once, not for every cell
    assert len(store.finished()) == 6


def test_adapter_whose_keys_match_no_layer_is_not_kept(fake_webui, tmp_path):
    """Both hosts load such a file without an error and change nothing (the WebUI: a network
    with no module; Forge: no LoRA patch); its images would be baselines labelled as adapter."""
    ns = fake_webui
    ns.networks.MISMATCHED.add("style_loha")
    run_script(ns, tmp_path, run_id="r6m", checkpoints=["base-a"], seeds=[3])
    failed = RunStore(ns.data / "outputs" / "lycoris-eval", "r6m").failures()
    assert len(failed) == 4 and all(k.startswith("base-a|style_loha|") for k in failed)
    assert "none of its weights matches this checkpoint" in next(iter(failed.values()))["error"]


def test_not_applied_on_one_checkpoint_fails_only_there(fake_webui, tmp_path):
    """Whether an adapter was applied is each (checkpoint, adapter)'s answer: a file whose keys match no layer of
    one checkpoint is still tried, and kept, on the others."""
    ns = fake_webui
    ns.networks.MISMATCHED.add(("base-a", "style_loha"))
    run_script(ns, tmp_path, run_id="r6c", checkpoints=["base-a", "mix-b"], seeds=[3])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r6c")
    failed = store.failures()
    assert sorted(failed) == sorted(f"base-a|style_loha|{w:g}|p{i}|3" for i in (0, 1) for w in (0.5, 1))
    done = store.finished()
    assert len(done) == 2 * 2 * 5 - 4
    assert sum(k.startswith("mix-b|style_loha|") for k in done) == 4
    # tried once on base-a (then known), and on mix-b for each of its images
    tried = [c for c in ns.processing.CALLS if "style_loha" in c[1]]
    assert sum(ns.ckpt_a.title == c[0] for c in tried) == 1 and sum(ns.ckpt_b.title == c[0] for c in tried) == 4


def test_reforge_patch_records_count_as_applied(fake_webui, tmp_path):
    """reForge keeps LoRA weights in ldm_patched ``.patches`` and leaves ``Network.modules``
    empty: every adapter image is kept (it was recorded "failed" before), and a file whose
    keys match nothing is still caught there."""
    ns = fake_webui
    ns.networks.PATCH_LAYOUT = "ldm_patched"
    ns.networks.MISMATCHED.add("style_lokr")
    adapters = ["style_lora", "style_loha", "style_lokr"]
    run_script(ns, tmp_path, run_id="rf1", checkpoints=["base-a", "mix-b"], adapters=adapters, seeds=[3])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "rf1")
    failed = store.failures()
    assert failed and all("|style_lokr|" in k for k in failed)
    assert all("none of its weights matches this checkpoint" in r["error"] for r in failed.values())
    done = store.finished()
    assert sum("|style_lora|" in k for k in done) == 2 * 2 * 2 and sum("|style_loha|" in k for k in done) == 8
    assert not any("note" in r for r in done.values())


def test_unknown_patch_records_keep_the_image_with_a_note(fake_webui, tmp_path):
    """A host whose patch records no probe knows cannot tell "applied?": its images are
    kept, each with a note in the run and on the page, never failed."""
    ns = fake_webui
    ns.networks.PATCH_LAYOUT = "unknown"
    processed = run_script(ns, tmp_path, run_id="ru1", checkpoints=["base-a"], seeds=[3])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "ru1")
    assert not store.failures()
    done = store.finished()
    assert len(done) == 2 * (1 + 2 * 2)
    noted = {k: r["note"] for k, r in done.items() if "note" in r}
    assert sorted(noted) == sorted(k for k, r in done.items() if r["adapter"])
    assert all("could not be checked" in note for note in noted.values())
    assert "note base-a|style_lora|0.5|p0|3: kept unchecked" in processed.comments


def test_users_checkpoint_restored_when_the_option_was_empty(fake_webui, tmp_path):
    """reForge never writes the checkpoint option on load: after a grid the user has the
    model that was loaded before it, not the host's first checkpoint, and the option names it."""
    ns = fake_webui
    ns.networks.PATCH_LAYOUT = "ldm_patched"
    ns.sd_models.reload_model_weights(info=ns.ckpt_b)
    ns.shared.opts.data["sd_model_checkpoint"] = None
    run_script(ns, tmp_path, run_id="rf2", checkpoints=["base-a"], seeds=[3])
    assert ns.shared.sd_model.sd_checkpoint_info is ns.ckpt_b
    assert ns.shared.opts.data["sd_model_checkpoint"] == ns.ckpt_b.title


def test_interrupt_stops_cleanly_and_resume_finishes(fake_webui, tmp_path):
    ns = fake_webui

    class Interrupter:
        def __init__(self):
            self.n = 0

        def before_process(self, p):
            self.n += 1
            if self.n == 4:
                ns.shared.state.interrupted = True

    runner = ns.scripts.ScriptRunner([Interrupter()])
    p = page_p(ns, runner, prompt="")
    processed = run_script(ns, tmp_path, p=p, run_id="r7", checkpoints=["base-a"], seeds=[1])
    assert "interrupted" in processed.comments
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r7")
    assert len(store.finished()) == 3  # the 4th was cut by Interrupt inside the host
    assert not store.failures()  # the image cut by Interrupt is not a failure
    ns.shared.state.interrupted = False
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="")
    run_script(ns, tmp_path, p=p, run_id="r7", checkpoints=["base-a"], seeds=[1])
    assert len(store.finished()) == 10
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="", steps=30)
    processed = run_script(ns, tmp_path, p=p, run_id="r7", checkpoints=["base-a"], seeds=[1])
    assert "steps" in processed.comments and "different grid" in processed.comments


def test_skip_skips_only_the_current_image(fake_webui, tmp_path):
    ns = fake_webui
    calls = {"n": 0}

    def press_skip(p):
        calls["n"] += 1
        if calls["n"] == 2:
            ns.shared.state.skipped = True

    ns.processing.DURING_SAMPLING.append(press_skip)
    run_script(ns, tmp_path, run_id="r8", checkpoints=["base-a"], seeds=[1], prompts=["a"])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r8")
    assert len(store.finished()) == 4 and "base-a|style_lora|0.5|p0|1" not in store.finished()
    assert [r.status for r in store.records()].count("skipped") == 1
    assert ns.shared.state.skipped is False
    run_script(ns, tmp_path, run_id="r8", checkpoints=["base-a"], seeds=[1], prompts=["a"])
    assert len(store.finished()) == 5  # a resume makes the skipped image


def test_always_on_scripts_run_for_every_image(fake_webui, tmp_path):
    ns = fake_webui

    class AlwaysOn:
        prompts: list = []

        def before_process(self, p):
            AlwaysOn.prompts.append(p.prompt)

    p = page_p(ns, ns.scripts.ScriptRunner([AlwaysOn()]), prompt="")
    run_script(ns, tmp_path, p=p, run_id="r9", checkpoints=["base-a"], seeds=[1], prompts=["a"])
    assert len(AlwaysOn.prompts) == 5 and AlwaysOn.prompts[1] == "a, <lora:style_lora:0.5>"


def test_full_disk_stops_with_a_clear_message(fake_webui, tmp_path, monkeypatch):
    import lycoris_eval.grid.runner as gr

    ns = fake_webui
    real = gr._write_file
    writes = {"n": 0}

    def filling(path, data):
        writes["n"] += 1
        if writes["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(gr, "_write_file", filling)
    processed = run_script(ns, tmp_path, run_id="r10", checkpoints=["base-a"], seeds=[1])
    assert "stopped: the disk is full; 3 finished images are kept" in processed.comments
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "r10")
    assert len(store.finished()) == 3 and not list(store.images_dir.glob("*.tmp"))


# ---- X/Y/Z plot axes -------------------------------------------------------------------------
def test_xyz_axes_registered_once_and_working(fake_webui):
    ns = fake_webui
    ns.adapter.setup()
    ns.adapter.setup()  # a reload must not duplicate
    labels = [o.label for o in ns.xyz.axis_options]
    assert labels.count("LyCORIS: adapter") == 1 and labels.count("LyCORIS: adapter weight") == 1
    adapter_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    weight_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter weight")
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat", seed=5)
    adapter_opt.confirm(p, ["style_lora", "style_lokr"])
    weight_opt.confirm(p, [0.5, 1.0])
    with pytest.raises(RuntimeError, match="LyCORIS: adapters: unknown adapter .style_lorx.; did you mean style_lora"):
        adapter_opt.confirm(p, ["style_lorx"])
    with pytest.raises(RuntimeError, match="outside -5..5"):
        weight_opt.confirm(p, [9.0])
    with pytest.raises(RuntimeError, match="1 is listed twice"):
        weight_opt.confirm(p, [1.0, 1.0])
    assert adapter_opt.choices() == ["style_loha", "style_lokr", "style_lora"]
    for order in (
        [(adapter_opt, "style_lokr", []), (weight_opt, 0.7, [])],
        [(weight_opt, 0.7, []), (adapter_opt, "style_lokr", [])],
    ):
        out = ns.xyz.run_cell(p, order)
        assert ns.processing.CALLS[-1][1] == "a cat, <lora:style_lokr:0.7>"
        assert [(n.name, n.te_multiplier) for n in ns.networks.loaded_networks] == [("style_lokr", 0.7)]
        assert "LyCORIS adapter: style_lokr" in out.infotexts[0]
    assert p.prompt == "a cat" and "LyCORIS adapter" not in p.extra_generation_params  # p itself untouched


def test_weight_axis_alone_scales_the_prompts_adapter(fake_webui):
    ns = fake_webui
    ns.adapter.setup()
    weight_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter weight")
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat <lora:style_loha:1>", seed=5)
    ns.xyz.run_cell(p, [(weight_opt, 0.3, [])])
    assert ns.processing.CALLS[-1][1] == "a cat <lora:style_loha:0.3>"
    with pytest.raises(RuntimeError, match="needs an adapter"):
        ns.xyz.run_cell(
            page_p(ns, ns.scripts.scripts_txt2img, prompt="plain"),
            [(weight_opt, 0.3, [])],
        )


def test_entry_script_exposes_the_script_class(fake_webui):
    import runpy
    from pathlib import Path

    namespace = runpy.run_path(str(Path(__file__).parents[2] / "scripts" / "lycoris_eval_entry.py"))
    cls = namespace["LycorisEvalGridScript"]
    assert issubclass(cls, fake_webui.scripts.Script)
    script = cls()
    assert script.title() == "LyCORIS Eval grid" and script.show(False) and not script.show(True)
    assert any(o.label == "LyCORIS: adapter" for o in fake_webui.xyz.axis_options)
    assert fake_webui.script_callbacks.callbacks["ui_settings"]


def test_score_when_finished_shows_the_table_and_writes_scores(fake_webui, tmp_path):
    ns = fake_webui
    small_scoring_settings(ns.shared.opts)
    processed = run_script(
        ns,
        tmp_path,
        run_id="s1",
        checkpoints=["base-a"],
        adapters=["style_lora"],
        weights=[1.0],
        prompts=["[trigger] a castle"],
        seeds=[1, 2],
        score=True,
    )
    assert "RANDOM WEIGHTS" in processed.comments and "style_lora" in processed.comments
    doc = json.loads((ns.data / "outputs" / "lycoris-eval" / "s1" / "scores.json").read_text())
    assert doc["run"]["random_weights"] is True
    assert [c["adapter"] for c in doc["cells"]] == [None, "style_lora"]
    assert doc["cells"][1]["metrics"]["style_loss_base"]["n"] == 2


def test_scoring_failure_keeps_the_images(fake_webui, tmp_path):
    ns = fake_webui
    ns.shared.opts.lycoris_eval_offline = True
    ns.shared.opts.lycoris_eval_weights_dir = str(tmp_path / "no-weights")
    processed = run_script(
        ns,
        tmp_path,
        run_id="s2",
        checkpoints=["base-a"],
        adapters=["style_lora"],
        weights=[1.0],
        prompts=["a"],
        seeds=[1],
        score=True,
    )
    assert "scoring failed:" in processed.comments and "dinov2_vitl14_pretrain.pth" in processed.comments
    assert "the images are kept" in processed.comments and len(processed.images) == 1 + 2


def test_script_ui_builds_with_gradio_and_matches_the_argument_order(fake_webui):
    import gradio as gr

    ns = fake_webui
    script = ns.adapter.LycorisEvalGridScript()
    with gr.Blocks() as demo:
        components = script.ui(False)
    assert len(components) == len(ns.adapter.ARG_NAMES)
    labels = [c.label for c in components]
    assert labels[:3] == ["Checkpoints", "Adapters", "Adapter weights"]
    assert labels[ns.adapter.ARG_NAMES.index("spec_json")] == "Spec JSON"
    assert components[0].choices and {c[0] if isinstance(c, tuple) else c for c in components[1].choices} == {
        "style_lora",
        "style_loha",
        "style_lokr",
    }
    assert all((c.elem_id or "").startswith("lycoris-eval-") for c in components)
    fns = {f.name if hasattr(f, "name") else f.fn.__name__: f.fn for f in demo.fns}
    info = fns["describe"](["style_loha"])
    assert "style_loha" in info and "LoHa" in info and "base-a.safetensors" in info


@pytest.mark.parametrize(
    ("algo", "conv", "dora", "expected"),
    [
        ("lora", False, False, "LoRA"),
        ("lora", True, False, "LoCon"),
        ("lora", True, True, "LoCon+DoRA"),
        ("loha", True, False, "LoHa"),
        ("lokr", True, False, "LoKr"),
        ("ia3", True, False, "IA3"),
        ("full", True, False, "full"),
        ("diag-oft", True, False, "OFT"),
        ("boft", True, False, "BOFT"),
        ("glora", True, False, "GLoRA"),
    ],
)
def test_type_detection_on_real_lycoris_files(tmp_path, algo, conv, dora, expected):
    """Files written by the LyCORIS library itself (lycoris-lora) on a tiny torch model."""
    import logging

    import torch
    from lycoris import create_lycoris

    logging.getLogger("LyCORIS").setLevel(logging.ERROR)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 16)
            if conv:
                self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)

    net = create_lycoris(Tiny(), 1.0, linear_dim=4, linear_alpha=1, algo=algo, conv_dim=4, conv_alpha=1, dora_wd=dora)
    net.apply_to()
    path = tmp_path / f"{algo}.safetensors"
    net.save_weights(str(path), torch.float32, {"ss_network_module": "lycoris.kohya"})
    info = detect(path)
    assert info.type == expected
    assert info.n_modules == (2 if conv else 1) and info.network_module == "lycoris.kohya"


def test_type_detection_is_memoised_until_the_file_changes(tmp_path, monkeypatch):
    import lycoris_eval.inputs.adapter_types as at

    path = write_adapter(tmp_path / "x.safetensors", "LoRA")
    assert detect(path).type == "LoRA"
    reads = []
    monkeypatch.setattr(at, "read_safetensors_header", lambda p: reads.append(p) or {})
    assert detect(path).type == "LoRA" and reads == []  # served from memory
    monkeypatch.undo()
    write_adapter(path, "LoHa+LoKr")  # replaced on disk: size and mtime change
    assert detect(path).type == "mixed"


# ---- behaviours the real host showed (issue: real host) -----------------------------------
def test_interrupt_during_sampling_does_not_keep_the_half_denoised_image(fake_webui, tmp_path):
    ns = fake_webui
    count = {"n": 0}

    def press_interrupt(p):  # the host still returns an image after Interrupt mid-sampling
        count["n"] += 1
        if count["n"] == 3:
            ns.shared.state.interrupted = True

    ns.processing.DURING_SAMPLING.append(press_interrupt)
    try:
        run_script(ns, tmp_path, run_id="mid", checkpoints=["base-a"], seeds=[1])
    finally:
        ns.processing.DURING_SAMPLING.clear()
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "mid")
    assert len(ns.processing.CALLS) == 3 and len(store.finished()) == 2
    ns.shared.state.interrupted = False
    run_script(ns, tmp_path, run_id="mid", checkpoints=["base-a"], seeds=[1])
    assert len(store.finished()) == 10 and len(ns.processing.CALLS) == 3 + 8  # the third made again


def test_restore_does_not_take_the_queue_lock_when_overrides_stay(fake_webui, tmp_path):
    ns = fake_webui
    ns.shared.opts.data["sd_model_checkpoint"] = ns.ckpt_a.title  # the user's checkpoint
    p = page_p(ns, prompt="")
    p.override_settings_restore_afterwards = False  # the grid's last checkpoint stays in opts
    with ns.call_queue.queue_lock:  # the Script runs under the host's queue lock
        processed = run_script(ns, tmp_path, p=p, run_id="lock", seeds=[1], adapters=["style_lora"], weights=[1])
    assert "new images" in processed.comments, processed.comments
    assert ns.shared.opts.sd_model_checkpoint == ns.ckpt_a.title
    assert ns.shared.sd_model.sd_checkpoint_info.title == ns.ckpt_a.title


def test_add_network_to_prompt_is_off_for_the_grid_and_restored(fake_webui, tmp_path):
    ns = fake_webui
    ns.shared.opts.data["sd_lora"] = "style_lokr"
    run_script(ns, tmp_path, run_id="pure", checkpoints=["base-a"], seeds=[1], adapters=["style_lora"], weights=[1])
    assert all("style_lokr" not in prompt for _, prompt, _ in ns.processing.CALLS)
    assert ns.shared.opts.sd_lora == "style_lokr"
    manifest = RunStore(ns.data / "outputs" / "lycoris-eval", "pure").read_manifest()
    assert "style_lokr" in manifest["host"]["neutralised"]["sd_lora"]


def test_adapter_tag_in_the_page_prompt_is_refused(fake_webui, tmp_path):
    ns = fake_webui
    p = page_p(ns, prompt="masterpiece, <lora:style_loha:0.7>")
    processed = run_script(ns, tmp_path, p=p, run_id="dirty")
    assert "base.prompt_prefix" in processed.comments and "<lora:style_loha:…>" in processed.comments
    assert not ns.processing.CALLS


def test_checkpoint_the_host_did_not_load_is_a_failure_not_an_image(fake_webui, tmp_path, monkeypatch):
    ns = fake_webui
    monkeypatch.setattr(ns.sd_models, "checkpoint_aliases", {})  # the host cannot resolve the override
    processed = run_script(ns, tmp_path, run_id="wrong", checkpoints=["mix-b"], seeds=[1], adapters=["style_lora"])
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "wrong")
    assert not store.finished() and len(store.failures()) == 6  # 2 prompts × (baseline + 2 weights)
    assert "instead of" in next(iter(store.failures().values()))["error"]
    assert "6 failed" in processed.comments


def test_seeds_drawn_from_minus_one_are_kept_on_resume(fake_webui, tmp_path):
    ns = fake_webui
    kw = {"run_id": "draw", "checkpoints": ["base-a"], "adapters": ["style_lora"], "weights": [1]}
    run_script(ns, tmp_path, seeds={"count": 2, "first": -1}, **kw)
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "draw")
    seeds = store.read_manifest()["spec"]["seeds"]
    assert len(seeds) == 2 and -1 not in seeds
    processed = run_script(ns, tmp_path, seeds="2 from -1", **kw)
    assert "different grid" not in processed.comments and "0 new images, 8 kept" in processed.comments
    assert store.read_manifest()["spec"]["seeds"] == seeds


def test_api_grid_keeps_adapter_tags_in_the_infotext(fake_webui, tmp_path):
    """Without p.scripts the host strips <lora:…> from the infotext; the API grid sets it up."""
    from lycoris_eval.api.jobs import Job
    from lycoris_eval.grid.spec import GridSpec

    ns = fake_webui
    from fastapi import FastAPI
    from modules.api.api import Api

    app = FastAPI()
    Api(app)
    ns.adapter.on_app_started(None, app)
    spec = GridSpec.from_dict({**spec_for_api(), "run_id": "tags"})
    result = ns.adapter.api_run_grid(spec, False, Job("j", "grid"))
    assert any("<lora:style_lora:0.5>" in text for text in result.infotexts)
    assert any("<lora:style_lora:1>" in text for text in result.infotexts)


def spec_for_api() -> dict:
    return {"checkpoints": ["base-a"], "adapters": ["style_lora"], "weights": [0.5, 1], "prompts": ["a"], "seeds": [3]}


def test_run_writer_keeps_order_and_stops_at_the_first_write_error(tmp_path):
    """Images are written off the sampling thread, but cells.jsonl keeps the order the runner
    gave (images, failures, skips); after a failed write nothing more is written."""
    from lycoris_eval.grid.runner import png_bytes
    from lycoris_eval.grid.writer import RunWriter

    store = RunStore(tmp_path, "w1")
    store.dir.mkdir(parents=True)
    store.images_dir.mkdir(parents=True, exist_ok=True)
    calls = []

    def write(path, data):
        calls.append(path.name)
        if path.name == "c.png":
            raise OSError(errno.ENOSPC, "No space left on device")
        path.write_bytes(data)

    writer = RunWriter(store, write, png_bytes, depth=1)
    image = Image.new("RGB", (8, 8))
    writer.save(store.images_dir / "a.png", image, "a", {"key": "a", "status": "done", "image": "a.png"})
    writer.append({"key": "f", "status": "failed", "error": "x"})
    writer.save(store.images_dir / "b.png", image, "b", {"key": "b", "status": "done", "image": "b.png"})
    writer.save(store.images_dir / "c.png", image, "c", {"key": "c", "status": "done", "image": "c.png"})
    writer.save(store.images_dir / "d.png", image, "d", {"key": "d", "status": "done", "image": "d.png"})
    error = writer.close()
    assert error is not None and error.errno == errno.ENOSPC
    assert [r.key for r in store.records()] == ["a", "f", "b"] and writer.written == 2
    assert calls == ["a.png", "b.png", "c.png"]  # d was never attempted
    with Image.open(store.images_dir / "b.png") as im:
        assert im.info["parameters"] == "b"
