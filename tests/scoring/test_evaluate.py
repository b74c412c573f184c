"""The pipeline and CLI end to end on generated images with random weights."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from lycoris_eval.cli.main import main
from lycoris_eval.config import EvalConfig
from lycoris_eval.inputs import images as images_module
from lycoris_eval.scoring.encoders import EncoderOptions, VggGramEncoder
from lycoris_eval.scoring.metrics.style import allpair_msd
from lycoris_eval.scoring.pipeline import Evaluation, evaluate
from tests.helpers import SMALL, make_set, pattern

SMALL_ARGS = ["--random-weights", "--clip-model", "ViT-S-32", "--dinov2-arch", "vits14"]


def small_config(tmp_path, **kwargs) -> EvalConfig:
    base = dict(random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "cache", **SMALL)
    base.update(kwargs)
    return EvalConfig(**base)


def _strict_json(path):
    def no_nan(name):
        raise AssertionError(f"JSON holds {name}")

    return json.loads(path.read_text(), parse_constant=no_nan)


def test_cli_end_to_end(tmp_path, grid_dir, reference_dir, distractor_dir, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            str(grid_dir),
            "--reference",
            str(reference_dir),
            "--distractor",
            str(distractor_dir),
            "--trigger",
            "masterpiece=",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
            "--quiet",
            *SMALL_ARGS,
        ]
    )
    assert code == 0
    doc = _strict_json(out / "scores.json")
    assert doc["schema"] == "lycoris-eval/scores" and doc["schema_version"] == 3
    run = doc["run"]
    assert run["random_weights"] is True and "RANDOM WEIGHTS" in run["warning"]
    assert set(run["encoders"]) == {"vgg19-gram", "vgg19-tutorial-gram", "openclip", "dinov2"}
    assert all(e["weights"].startswith("random-weights") for e in run["encoders"].values())
    assert run["versions"]["torch"] and run["n_images"] == 6
    cells = doc["cells"]
    assert [(c["adapter"], c["weight"]) for c in cells] == [(None, 0.0), ("styleA", 0.5), ("styleA", 1.0)]
    for cell in cells:
        assert cell["checkpoint"] == "ckA" and cell["seeds"] == [1, 2] and len(cell["images"]) == 2
        assert cell["prompt"] == "a cat sitting, masterpiece"
        for name in ("style_loss_ref", "image_similarity", "text_alignment", "vendi", "centroid_distance"):
            assert set(cell["metrics"][name]) >= {"mean", "std", "n"}
        paired = {"style_loss_base", "psnr_base", "ssim_base"}
        assert paired <= set(cell["metrics"]) if cell["adapter"] else not paired & set(cell["metrics"])
    # schema 2: per-image values under each cell, the comparisons and the verdicts sections
    assert all(len(v) == len(c["images"]) for c in cells for v in c["values"].values())
    comparisons = doc["comparisons"]
    assert set(comparisons) == {"method", "coverage", "tables", "duplicates_ignored", "entries"}
    assert comparisons["coverage"]["checkpoint"] == "all pairs" and comparisons["coverage"]["anchors"] == {}
    assert set(comparisons["tables"]) == {"checkpoint", "adapter", "weight", "baseline"}
    kinds = {e["kind"] for e in comparisons["entries"]}
    assert kinds == {"weight", "baseline"}  # one checkpoint, one adapter at two weights
    assert all(
        e["n"] == 2 and e["status"] == "too few seeds"
        for e in comparisons["entries"]
        if e["ci"] is None and e["interval"] != "none"
    )
    assert doc["verdicts"]["rule"].startswith("At each weight") and doc["verdicts"]["entries"] == [
        {"adapter": "styleA", "checkpoint": "ckA", "home": None, "verdict": None, "weights": [], "by_weight": [],
         "reason": "home unknown"}
    ]  # fmt: skip
    assert (out / "comparisons.csv").read_text().count("\n") == 1 + len(comparisons["entries"])
    summaries = doc["summaries"]
    assert [s["baseline"] for s in summaries] == [True, False, False]
    assert summaries[0]["overall_rank"] is None and summaries[0]["ranks"] == {}
    ranked = summaries[1:]
    assert sorted(s["ranks"]["style_loss_base"] for s in ranked) == [0.0, 1.0]
    assert all(s["metrics"]["fd_dinov2"]["mean"] is not None for s in summaries)
    assert {t["metric"] for t in doc["trust"]} == {"style_loss_ref", "style_loss_tutorial", "image_similarity"}
    with open(out / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and float(rows[1]["style_loss_base_mean"]) == pytest.approx(
        cells[1]["metrics"]["style_loss_base"]["mean"]
    )


def test_numbers_match_direct_computation(tmp_path, grid_dir, reference_dir):
    doc = evaluate(
        grid_dir, small_config(tmp_path, reference_dir=reference_dir, metrics=("style_loss_base", "style_loss_ref"))
    )
    enc = VggGramEncoder(EncoderOptions(device="cpu", random_weights=True), image_size=SMALL["vgg_size"])

    def grams(paths):
        from PIL import Image

        return enc.encode([enc.preprocess(Image.open(p).convert("RGB")) for p in paths]).astype(np.float64)

    ref = grams(sorted(reference_dir.glob("*.png")))
    cell = doc["cells"][2]  # styleA @ 1.0
    adapter = grams([grid_dir / n for n in cell["images"]])
    base = grams([grid_dir / n.replace("styleA-1.0", "base") for n in cell["images"]])
    assert cell["metrics"]["style_loss_base"]["mean"] == pytest.approx(((adapter - base) ** 2).sum(1).mean(), rel=1e-5)
    assert cell["metrics"]["style_loss_ref"]["mean"] == pytest.approx(allpair_msd(adapter, ref), rel=1e-5)


def test_cache_makes_reevaluation_encoder_free_and_each_image_decoded_once(tmp_path, grid_dir, reference_dir):
    config = small_config(tmp_path, reference_dir=reference_dir)
    images_module.DECODE_COUNTER["n"] = 0
    first = evaluate(grid_dir, config)
    assert images_module.DECODE_COUNTER["n"] == 6 + 3  # every image once, whatever the metrics
    assert first["run"]["encoded"] == {"dinov2": 9, "openclip": 6, "vgg19-gram": 9, "vgg19-tutorial-gram": 9}
    images_module.DECODE_COUNTER["n"] = 0
    second = evaluate(grid_dir, config)
    assert images_module.DECODE_COUNTER["n"] == 0
    assert sum(second["run"]["encoded"].values()) == 0
    assert first["cells"] == second["cells"] and first["summaries"] == second["summaries"]


def test_bad_files_are_reported_and_the_rest_scored(tmp_path, grid_dir, reference_dir):
    (grid_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (grid_dir / "notes.pdf").write_bytes(b"%PDF")
    pattern(1, (16, 16)).save(grid_dir / "tiny.png")
    good = grid_dir / "ckA-p0-base-s1.png"
    (grid_dir / "zz-truncated.png").write_bytes(good.read_bytes()[:-200])
    doc = evaluate(grid_dir, small_config(tmp_path, reference_dir=reference_dir, metrics=("style_loss_ref",)))
    skipped = {s["file"]: s["error"] for s in doc["run"]["skipped"]}
    assert set(skipped) == {"broken.png", "notes.pdf", "tiny.png", "zz-truncated.png"}
    assert "truncated" in skipped["zz-truncated.png"] and "too small" in skipped["tiny.png"]
    assert doc["run"]["n_images"] == 6 and doc["run"]["n_files"] == 10  # skipped files never count as scored
    assert sum(c["metrics"]["style_loss_ref"]["n"] for c in doc["cells"] if c["metrics"]) == 6


def test_nan_features_are_reported_not_propagated(tmp_path, grid_dir, reference_dir, monkeypatch):
    from lycoris_eval.scoring.encoders.dinov2 import Dinov2Encoder

    original = Dinov2Encoder.forward

    def poisoned(self, batch):
        out = original(self, batch)
        out[0] = float("nan")
        return out

    monkeypatch.setattr(Dinov2Encoder, "forward", poisoned)
    doc = evaluate(
        grid_dir,
        small_config(
            tmp_path, reference_dir=reference_dir, use_cache=False, metrics=("image_similarity",), batch_size=64
        ),
    )
    errors = [s["error"] for s in doc["run"]["skipped"]]
    assert any("dinov2 produced NaN/inf features" in e for e in errors)
    assert all(c["metrics"]["image_similarity"]["mean"] is not None for c in doc["cells"] if c["metrics"])


def test_single_reference_image_and_no_reference(tmp_path, grid_dir):
    one = make_set(tmp_path / "one", 1, 7)
    doc = evaluate(grid_dir, small_config(tmp_path, reference_dir=one, metrics=("style_loss_ref", "fd_dinov2")))
    assert any("single image" in n for n in doc["run"]["notes"])
    fd = doc["summaries"][0]["metrics"]["fd_dinov2"]
    assert fd["mean"] is None and "at least 2 images" in fd["note"]
    assert doc["cells"][0]["metrics"]["style_loss_ref"]["mean"] is not None
    doc = evaluate(grid_dir, small_config(tmp_path, metrics=("style_loss_ref", "vendi")))
    assert "style_loss_ref" not in doc["metrics"] and any("no reference set" in n for n in doc["run"]["notes"])


def test_reference_not_needed_by_the_selected_metrics(tmp_path, grid_dir, reference_dir):
    doc = evaluate(grid_dir, small_config(tmp_path, reference_dir=reference_dir, metrics=("vendi",)))
    assert doc["run"]["encoded"] == {"dinov2": 6}  # the reference set is not encoded for nothing
    assert all("vendi" in c["metrics"] for c in doc["cells"])


def test_trust_flags_a_metric_that_cannot_tell_sets_apart(tmp_path, grid_dir, reference_dir):
    twin = tmp_path / "twin"
    shutil.copytree(reference_dir, twin)
    doc = evaluate(
        grid_dir,
        small_config(tmp_path, reference_dir=reference_dir, distractor_dirs=(twin,), metrics=("style_loss_ref",)),
    )
    (entry,) = doc["trust"]
    assert entry["accuracy"] == 0.5 and entry["level"] == "untrustworthy"
    assert "cannot tell the target from 'twin'" in entry["verdict"]


def test_interrupted_run_keeps_what_was_computed(tmp_path, grid_dir):
    config = small_config(tmp_path, metrics=("vendi",), chunk_images=1)
    calls = []

    def stop_after_first_pair_group(done, total, message):
        if done < 3:  # a phase starting, or a batch inside the first pair group: not finished yet
            return
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(grid_dir, config, stop_after_first_pair_group)
    assert calls == [3]  # one baseline + its two adapter images were encoded, then the stop
    doc = evaluate(grid_dir, config)
    assert doc["run"]["encoded"]["dinov2"] == 3
    assert doc["run"]["cache"]["hits"] == 3


def test_cli_errors_are_clear_and_nonzero(tmp_path, grid_dir, capsys):
    assert main(["evaluate", str(tmp_path / "missing"), *SMALL_ARGS, "--quiet"]) == 2
    assert "folder not found" in capsys.readouterr().err
    weights = tmp_path / "w"
    weights.mkdir()
    code = main(
        [
            "evaluate",
            str(grid_dir),
            "--metrics",
            "vendi",
            "--offline",
            "--weights-dir",
            str(weights),
            "--quiet",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "dinov2_vitl14_pretrain.pth" in err and str(weights) in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", str(grid_dir), "--metrics", "nonsense"])
    assert main(["evaluate", str(grid_dir), "--distractor", str(grid_dir), *SMALL_ARGS, "--quiet"]) == 2
    assert "need a target reference set" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_full_size_encoders(tmp_path, reference_dir):
    """The paper's configuration (VGG19 at 224, OpenCLIP ViT-L-14, DINOv2 ViT-L/14)."""
    from tests.helpers import make_grid

    grid = tmp_path / "g"
    make_grid(grid, adapters=(("styleA", 1.0),), seeds=(1,))
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(grid),
                "--reference",
                str(reference_dir),
                "--random-weights",
                "--quiet",
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    doc = _strict_json(out / "scores.json")
    enc = doc["run"]["encoders"]
    assert enc["openclip"]["config"]["model"] == "ViT-L-14" and enc["dinov2"]["config"]["arch"] == "dinov2_vitl14"
    assert enc["vgg19-gram"]["config"]["resize"] == "shorter-side-224-bicubic"
    assert doc["cells"][1]["metrics"]["text_alignment"]["n"] == 1


def test_progress_names_each_phase_before_its_work(tmp_path, grid_dir):
    """Issue #23: the phases are named (reading, models, encoding, text alignment,
    comparisons), each reported before its work, with the images done so far."""
    seen = []
    evaluate(grid_dir, small_config(tmp_path, chunk_images=1), lambda d, t, m: seen.append((d, t, m)))
    messages = [m for _, _, m in seen]
    assert messages[0] == "read 6 images; loading the scoring models" and seen[0][:2] == (0, 6)
    order = ["read 6 images", "encoding images", "text alignment", "comparisons"]
    firsts = [next(i for i, m in enumerate(messages) if m.startswith(o)) for o in order]
    assert firsts == sorted(firsts)
    done = [d for d, _, m in seen if m == "encoding images"]
    # per encoder batch inside a chunk, and each chunk (a pair group of 3 here) when it is finished
    assert done == sorted(done) and done[-1] == 6 and {3, 6} <= set(done)


def test_cancel_between_chunks_gives_marked_partial_results(tmp_path, grid_dir):
    ticks = []
    config = small_config(tmp_path, metrics=("vendi",), chunk_images=1, should_stop=lambda: len(ticks) >= 1)
    doc = evaluate(grid_dir, config, lambda done, total, message: done and ticks.append(done))
    assert doc["run"]["partial"] == {"images_scored": 3, "images_total": 6}
    assert any("cancelled after 3 of 6 images" in n for n in doc["run"]["notes"])
    assert sum(c["metrics"].get("vendi", {}).get("n", 0) for c in doc["cells"]) == 3
    full = evaluate(grid_dir, small_config(tmp_path, metrics=("vendi",)))
    assert full["run"]["partial"] is None


def test_keep_models_reuses_loaded_encoders_between_evaluations(grid_dir, tmp_path):
    from lycoris_eval.scoring.encoders import base as encoder_base

    config = dict(random_weights=True, allow_download=False, device="cpu", use_cache=False, **SMALL)
    first = Evaluation(grid_dir, EvalConfig(metrics=("vendi",), keep_models_loaded=True, **config))
    first.run()
    kept = dict(encoder_base._POOL)
    assert len(kept) == 1 and next(iter(kept.values())).model is not None
    # what they hold is reported (GET /encoders, the tab's status line), computed from the model
    from lycoris_eval.tab.actions import kept_models_line

    model = next(iter(kept.values())).model
    expected = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]) / 2**20
    status = encoder_base.pool_status()
    assert list(status) == ["dinov2"] and status["dinov2"]["device"] == "cpu"
    assert abs(status["dinov2"]["memory_mib"] - expected) <= 0.05 and expected > 1
    assert kept_models_line().startswith("* Scoring models kept loaded: dinov2 (cpu, ")
    second = Evaluation(grid_dir, EvalConfig(metrics=("vendi",), keep_models_loaded=True, **config))
    encoders = second._make_encoders()
    assert next(iter(encoders.values())) is next(iter(kept.values()))  # no rebuild, no reload
    Evaluation(grid_dir, EvalConfig(metrics=("vendi",), keep_models_loaded=False, **config)).run()
    assert not encoder_base._POOL and next(iter(kept.values())).model is None  # setting off: freed
    assert encoder_base.pool_status() == {} and kept_models_line() == ""


def test_weights_load_when_the_host_replaced_torch_load(tmp_path, monkeypatch):
    """The WebUI swaps torch.load for a check that returns None on current torch files."""
    import torch

    from lycoris_eval.scoring.weights import load_state_dict

    path = tmp_path / "w.pth"
    torch.save({"a": torch.ones(2)}, path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: None)
    assert torch.equal(load_state_dict(path)["a"], torch.ones(2))


def test_host_makes_room_once_before_the_encoders_load(grid_dir, tmp_path):
    """The WebUI's hook (``make_room``) is called once per evaluation with the scoring
    device, before any image is encoded."""
    calls = []
    config = EvalConfig(
        metrics=("vendi",),
        random_weights=True,
        allow_download=False,
        device="cpu",
        use_cache=False,
        make_room=lambda device: calls.append((device, _loaded_models())),
        **SMALL,
    )
    evaluate(grid_dir, config)
    assert calls == [("cpu", [])]


def test_host_makes_room_once_for_several_encoders_and_not_on_a_cached_run(grid_dir, tmp_path):
    """Two encoders load (DINOv2, OpenCLIP): one call. Every feature cached: no model loads,
    so the host's models stay where they are (in Forge, moving them back costs a reload)."""
    calls = []
    config = EvalConfig(
        metrics=("vendi", "text_alignment"),
        random_weights=True,
        allow_download=False,
        device="cpu",
        cache_dir=tmp_path / "cache",
        make_room=calls.append,
        **SMALL,
    )
    first = evaluate(grid_dir, config)
    assert calls == ["cpu"] and set(first["run"]["encoders"]) == {"dinov2", "openclip"}
    second = evaluate(grid_dir, config)
    assert calls == ["cpu"] and sum(second["run"]["encoded"].values()) == 0


def _loaded_models() -> list[str]:
    from lycoris_eval.scoring.encoders import base as encoder_base

    return sorted(encoder_base.LOADED)


def test_forge_memory_management_frees_vram_for_scoring(fake_webui, monkeypatch):
    """In Forge (its loader imported), scoring on a GPU first unloads the host's models the
    host's way; on the CPU nothing is moved."""
    import sys
    import types

    from lycoris_eval.webui import memory

    calls = []
    backend = types.SimpleNamespace(
        unload_all_models=lambda: calls.append("unload"), soft_empty_cache=lambda: calls.append("empty")
    )
    monkeypatch.setitem(sys.modules, "modules_forge.main_entry", types.ModuleType("modules_forge.main_entry"))
    monkeypatch.setitem(sys.modules, "backend.memory_management", backend)
    memory.make_room("cpu")
    assert calls == []
    memory.make_room("cuda:0")
    assert calls == ["unload", "empty"]
