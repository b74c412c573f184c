"""Training runs recognised from adapter files as trainers write them (issue #24): small
LoRA/LoHa files saved by the LyCORIS library itself, with kohya's ``ss_*`` metadata (or
ai-toolkit's ``training_info``, or none at all), read back through the header only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.inputs.adapter_types import detect
from lycoris_eval.inputs.training_runs import AdapterFacts, TrainingRun, apply_override, group_training_runs

_NETS: dict[str, object] = {}


def lycoris_file(path: Path, algo: str = "lora", metadata: dict | None = None) -> Path:
    """A tiny adapter saved by lycoris-lora's own ``save_weights`` (one network per algo)."""
    import torch
    from lycoris import create_lycoris

    if algo not in _NETS:
        logging.getLogger("LyCORIS").setLevel(logging.ERROR)

        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(16, 16)

        net = create_lycoris(Tiny(), 1.0, linear_dim=4, linear_alpha=1, algo=algo)
        net.apply_to()
        _NETS[algo] = net
    path.parent.mkdir(parents=True, exist_ok=True)
    _NETS[algo].save_weights(str(path), torch.float16, {k: str(v) for k, v in (metadata or {}).items()})
    return path


def kohya(name: str, session: str, epoch: int, *, epochs: int = 8, per_epoch: int = 50, started: int = 1_700_000_000):
    """What kohya's sd-scripts write into a LoRA saved at the end of ``epoch``."""
    return {
        "ss_output_name": name,
        "ss_session_id": session,
        "ss_training_started_at": started,
        "ss_epoch": epoch,
        "ss_steps": epoch * per_epoch,
        "ss_max_train_steps": epochs * per_epoch,
        "ss_num_epochs": epochs,
        "ss_num_batches_per_epoch": per_epoch,
        "ss_network_module": "lycoris.kohya",
        "ss_base_model_version": "sd_v1",
    }


def runs_in(folder: Path) -> dict[str, TrainingRun]:
    """Group a folder's adapters as the WebUI lists them (name = file name without extension)."""
    facts = [AdapterFacts(p.stem, detect(p).training) for p in sorted(folder.glob("*.safetensors"))]
    return {run.name: run for run in group_training_runs(facts)}


def epochs_of(run: TrainingRun) -> list[tuple[str, int | None, int | None, bool]]:
    return [(m.adapter, m.epoch, m.step, m.final) for m in run.members]


def test_a_kohya_run_with_its_final_save_in_step_order(tmp_path):
    for epoch in (6, 2, 4):  # written out of order
        lycoris_file(tmp_path / f"mystyle-{epoch:06d}.safetensors", "lora", kohya("mystyle", "s1", epoch))
    lycoris_file(tmp_path / "mystyle.safetensors", "lora", kohya("mystyle", "s1", 8))
    run = runs_in(tmp_path)["mystyle"]
    assert run.grouped_by == "session id"
    assert epochs_of(run) == [
        ("mystyle-000002", 2, 100, False),
        ("mystyle-000004", 4, 200, False),
        ("mystyle-000006", 6, 300, False),
        ("mystyle", 8, 400, True),
    ]
    assert {m.source for m in run.members} == {"metadata"}
    assert run.select(every=2) == ["mystyle-000004", "mystyle"]  # counted back from the last save
    assert run.select(epochs=[6, 2]) == ["mystyle-000002", "mystyle-000006"]
    assert TrainingRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_mixed_runs_in_one_folder(tmp_path):
    # two trainings with one output name (a retry), a LoHa run, a lone adapter
    for epoch in (1, 2, 3):
        lycoris_file(tmp_path / f"castle-{epoch:06d}.safetensors", "lora", kohya("castle", "a", epoch, started=100))
        meta = kohya("castle", "b", epoch, started=200)
        lycoris_file(tmp_path / f"castle-retry-{epoch:06d}.safetensors", "lora", meta)
        lycoris_file(tmp_path / f"ink_loha-{epoch:06d}.safetensors", "loha", kohya("ink_loha", "c", epoch))
    lycoris_file(tmp_path / "lonely.safetensors", "lora", kohya("lonely", "d", 1))
    runs = runs_in(tmp_path)
    assert sorted(runs) == ["castle (1)", "castle (2)", "ink_loha"]  # the lone file is no run
    assert runs["castle (1)"].adapters == [f"castle-{e:06d}" for e in (1, 2, 3)]  # the earlier training first
    assert runs["castle (2)"].adapters == [f"castle-retry-{e:06d}" for e in (1, 2, 3)]
    assert detect(tmp_path / "ink_loha-000001.safetensors").type == "LoHa"
    assert [m.epoch for m in runs["ink_loha"].members] == [1, 2, 3]


def test_missing_epochs_are_named_when_asked_for(tmp_path):
    for epoch in (2, 4, 8):  # epoch 6 was deleted
        lycoris_file(tmp_path / f"face-{epoch:06d}.safetensors", "lora", kohya("face", "s", epoch, epochs=8))
    run = runs_in(tmp_path)["face"]
    assert [m.epoch for m in run.members] == [2, 4, 8] and run.members[-1].final
    with pytest.raises(SpecError, match=r"face has no epoch 6 \(it has 2, 4, 8\)") as err:
        run.select(epochs=[4, 6])
    assert err.value.field == "training_run.epochs"


def test_a_renamed_final_file_stays_in_its_run_and_last(tmp_path):
    for epoch in (1, 2, 3):
        lycoris_file(tmp_path / f"hero-{epoch:06d}.safetensors", "lora", kohya("hero", "s9", epoch, epochs=4))
    lycoris_file(tmp_path / "hero_v1_PUBLISHED.safetensors", "lora", kohya("hero", "s9", 4, epochs=4))
    run = runs_in(tmp_path)["hero"]
    assert run.adapters[-1] == "hero_v1_PUBLISHED" and run.members[-1].final and run.members[-1].epoch == 4


def test_epoch_only_metadata_is_ordered_by_steps_from_batches_per_epoch(tmp_path):
    for epoch in (10, 5, 1):
        meta = {k: v for k, v in kohya("slow", "e", epoch, per_epoch=40).items() if k != "ss_steps"}
        meta["ss_gradient_accumulation_steps"] = 2
        lycoris_file(tmp_path / f"slow-{epoch:06d}.safetensors", "lora", meta)
    run = runs_in(tmp_path)["slow"]
    assert [(m.epoch, m.step) for m in run.members] == [(1, 20), (5, 100), (10, 200)]


def test_file_name_only_runs(tmp_path):
    """Converted or re-saved files: no training metadata, the trainers' names only."""
    for name in ("char_e2", "char_e4", "char_e10", "char"):  # hand-named epochs and the final save
        lycoris_file(tmp_path / f"{name}.safetensors", "lora")
    for step in (500, 1000, 1500):  # ai-toolkit's step files, metadata stripped
        lycoris_file(tmp_path / f"tk_{step:09d}.safetensors", "loha")
    lycoris_file(tmp_path / "kohya-step00000300.safetensors", "lora")
    lycoris_file(tmp_path / "kohya-step00000600.safetensors", "lora")
    runs = runs_in(tmp_path)
    assert sorted(runs) == ["char", "kohya", "tk"]
    assert runs["char"].adapters == ["char_e2", "char_e4", "char_e10", "char"] and runs["char"].members[-1].final
    assert runs["char"].grouped_by == "file name" and {m.source for m in runs["char"].members} == {"file name"}
    assert [m.step for m in runs["tk"].members] == [500, 1000, 1500]
    assert runs["kohya"].adapters == ["kohya-step00000300", "kohya-step00000600"]
    assert runs["char"].select(every=2) == ["char_e4", "char"]


def test_ai_toolkit_metadata(tmp_path):
    for step in (250, 750, 500):
        info = json.dumps({"step": step, "epoch": step // 250})
        lycoris_file(tmp_path / f"neon_{step:09d}.safetensors", "lora", {"name": "neon", "training_info": info})
    run = runs_in(tmp_path)["neon"]
    assert run.grouped_by == "output name" and [m.step for m in run.members] == [250, 500, 750]
    assert {m.source for m in run.members} == {"metadata"}


def test_a_users_grouping_and_order_override_the_detected_one(tmp_path):
    for epoch in (1, 2, 3):
        lycoris_file(tmp_path / f"fox-{epoch:06d}.safetensors", "lora", kohya("fox", "f", epoch))
    runs = list(runs_in(tmp_path).values())
    [mine] = apply_override(runs, {"fox-best": ["fox-000003", "fox-000001"]})
    assert mine.adapters == ["fox-000003", "fox-000001"] and mine.grouped_by == "user"
    assert [m.epoch for m in mine.members] == [3, 1] and mine.members[-1].final  # positions kept, order the user's
    with pytest.raises(SpecError, match="at least two"):
        apply_override(runs, {"solo": ["fox-000001"]})


def test_versions_with_a_bare_number_are_not_a_run():
    # "char-1" and "char-2" are as often two characters (or versions) as two epochs
    runs = group_training_runs(AdapterFacts(n) for n in ("char-1", "char-2", "style-000001", "style-000002"))
    assert [r.name for r in runs] == ["style"]


def test_step_saves_of_one_epoch_are_told_apart_on_the_axis():
    """kohya's --save_every_n_steps writes the current epoch into every step save."""
    from lycoris_eval.grid.training import axis_choices, axis_value_adapter

    def md(epoch, steps):
        return {"ss_session_id": "7", "ss_output_name": "ink", "ss_epoch": str(epoch), "ss_steps": str(steps)}

    facts = [
        AdapterFacts("ink-s500", md(1, 500)),
        AdapterFacts("ink-s1000", md(1, 1000)),
        AdapterFacts("ink", md(2, 1500)),
    ]
    [run] = group_training_runs(facts)
    assert axis_choices([run]) == ["ink@step 500", "ink@step 1000", "ink@2"]
    assert axis_value_adapter([run], "ink@step 1000") == "ink-s1000"
    with pytest.raises(SpecError, match="2 saves of epoch 1"):
        run.select(epochs=[1])
