"""Aggregation on hand-made tables: no images, no encoders, no files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lycoris_eval.inputs.grouping import Cell, ImageMeta
from lycoris_eval.inputs.images import ImageRecord
from lycoris_eval.scoring.aggregate import (
    ImageTable,
    add_ranks,
    cell_dict,
    clean_json,
    metric_info,
    set_metric_entry,
    summaries,
    summarise,
    trust,
)
from lycoris_eval.scoring.metrics.frechet import frechet_distance


def meta(n: int, adapter: str | None = None, weight: float | None = None, seed: int | None = None) -> ImageMeta:
    record = ImageRecord(Path(f"img{n}.png"), f"sha{n}", b"", 8, 8, "RGB", None)
    return ImageMeta(record, "ck", adapter, weight, "a tree", "a tree", "train", seed if seed is not None else n)


def cell(images: list[ImageMeta], checkpoint: str | None = "ck") -> Cell:
    first = images[0]
    return Cell(checkpoint, first.adapter, first.weight, first.prompt, first.prompt_type, None, images)


def onehot(i: int, d: int = 8) -> np.ndarray:
    v = np.zeros(d)
    v[i] = 1.0
    return v


# ---- summaries of values ----------------------------------------------------------------
def test_summarise_mean_sample_std_and_count_skip_missing_values():
    assert summarise([1.0, 2.0, 3.0, None, float("nan"), float("inf")]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert summarise([4.0]) == {"mean": 4.0, "std": None, "n": 1}
    assert summarise([None, float("nan")]) == {"mean": None, "std": None, "n": 0}


def test_cell_summarises_its_scored_images_only():
    images = [meta(0, "a", 1.0), meta(1, "a", 1.0), meta(2, "a", 1.0), meta(3, "a", 1.0)]
    table = ImageTable(
        images,
        values={
            0: {"style_loss_ref": 1.0, "image_similarity": 0.2},
            1: {"style_loss_ref": 3.0, "image_similarity": 0.4},
            2: {"style_loss_ref": 5.0},  # similarity missing for this one
        },  # image 3 was not scored
    )
    out = cell_dict(table, cell(images), ["style_loss_ref", "image_similarity", "vendi"], 1.0, None)
    assert out["metrics"]["style_loss_ref"] == {"mean": 3.0, "std": 2.0, "n": 3}
    sim = out["metrics"]["image_similarity"]
    assert (
        sim["n"] == 2 and sim["mean"] == pytest.approx(0.3) and sim["std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    )
    assert "vendi" not in out["metrics"]  # no DINOv2 vectors in the table
    assert out["images"] == ["img0.png", "img1.png", "img2.png", "img3.png"]
    # per-image values, aligned with "images" (what paired comparisons are read from)
    assert out["values"] == {"style_loss_ref": [1.0, 3.0, 5.0, None], "image_similarity": [0.2, 0.4, None, None]}
    assert out["seeds"] == [0, 1, 2, 3] and out["adapter"] == "a" and out["baseline"] is False


def test_cell_vendi_and_centroid_distance_come_from_its_dinov2_vectors():
    images = [meta(i, "a", 1.0) for i in range(3)]
    values: dict[int, dict[str, float]] = {i: {} for i in range(3)}
    spread = ImageTable(images, values=values, dino={i: onehot(i) for i in range(3)})
    same = ImageTable(images, values=values, dino={i: onehot(0) for i in range(3)})
    metrics = ["vendi", "centroid_distance"]
    out = cell_dict(spread, cell(images), metrics, 1.0, np.stack([onehot(0), onehot(1), onehot(2)]))
    assert out["metrics"]["vendi"] == {"mean": pytest.approx(3.0), "std": None, "n": 3}
    assert out["metrics"]["centroid_distance"]["mean"] == pytest.approx(0.0, abs=1e-12)
    out = cell_dict(same, cell(images), metrics, 1.0, np.stack([onehot(5)]))
    assert out["metrics"]["vendi"]["mean"] == pytest.approx(1.0)
    assert out["metrics"]["centroid_distance"]["mean"] == pytest.approx(2.0)  # |e0 - e5|²
    assert "centroid_distance" not in cell_dict(same, cell(images), metrics, 1.0, None)["metrics"]


def test_baseline_cell_is_marked_baseline():
    images = [meta(0), meta(1)]
    out = cell_dict(ImageTable(images, values={0: {}, 1: {}}), cell(images), [], 1.0, None)
    assert out["baseline"] is True and out["adapter"] is None and out["metrics"] == {}


# ---- summaries and ranks ------------------------------------------------------------------
def ranked_grid() -> tuple[ImageTable, list[Cell]]:
    """Checkpoint ``ck``: a baseline and three adapter rows, two cells (prompts) each."""
    rows = [(None, None, 0.05, 0.99), ("a", 1.0, 0.1, 0.9), ("b", 1.0, 0.2, 0.5), ("a", 0.5, 0.3, 0.1)]
    metas, cells, values = [], [], {}
    for adapter, weight, loss, sim in rows:
        for prompt in ("a tree", "a cat"):
            image = meta(len(metas), adapter, weight)
            image.prompt = image.raw_prompt = prompt
            values[len(metas)] = {"style_loss_ref": loss, "image_similarity": sim}
            metas.append(image)
            cells.append(cell([image]))
    return ImageTable(metas, values=values), cells


def test_summaries_rank_each_metric_by_its_direction_and_leave_the_baseline_out():
    table, cells = ranked_grid()
    metrics = ["style_loss_ref", "image_similarity"]
    dicts = [cell_dict(table, c, metrics, 1.0, None) for c in cells]
    rows = summaries(table, cells, dicts, metrics, None)
    assert [(r["adapter"], r["weight"]) for r in rows] == [(None, None), ("a", 1.0), ("b", 1.0), ("a", 0.5)]
    base, a1, b1, a05 = rows
    assert base["baseline"] and base["ranks"] == {} and base["overall_rank"] is None and not base["ranked"]
    assert a1["metrics"]["style_loss_ref"] == {"mean": pytest.approx(0.1), "std": pytest.approx(0.0), "n_cells": 2}
    assert a1["n_images"] == 2 and a1["prompts"] == 2
    # style loss: lower is better; similarity: higher is better -> same order here
    assert [r["ranks"]["style_loss_ref"] for r in (a1, b1, a05)] == [1.0, 0.5, 0.0]
    assert [r["ranks"]["image_similarity"] for r in (a1, b1, a05)] == [1.0, 0.5, 0.0]
    assert [r["overall_rank"] for r in (a1, b1, a05)] == [1.0, 0.5, 0.0]
    assert all(r["ranked"] for r in (a1, b1, a05))


def test_ranks_flip_with_the_direction_and_stay_within_a_checkpoint():
    def row(checkpoint: str, adapter: str, loss: float) -> dict[str, Any]:
        return {
            "checkpoint": checkpoint,
            "adapter": adapter,
            "baseline": False,
            "metrics": {"style_loss_ref": {"mean": loss}},
        }

    rows = add_ranks(
        [row("x", "a", 1.0), row("x", "b", 3.0), row("y", "a", 9.0), row("y", "b", 2.0)], ["style_loss_ref"]
    )
    assert [r["ranks"]["style_loss_ref"] for r in rows] == [1.0, 0.0, 0.0, 1.0]
    rows = add_ranks([row("x", "a", 1.0), row("x", "b", 3.0)], ["image_similarity"])  # higher is better, no values
    assert all(r["ranks"] == {} and r["overall_rank"] is None and not r["ranked"] for r in rows)


def test_set_metrics_get_the_groups_images_and_are_left_out_without_a_target():
    table, cells = ranked_grid()
    table.dino = {i: onehot(i % 8) for i in range(len(table.metas))}
    calls: list[tuple[str, list[int], int]] = []

    def set_metric(name: str, used: list[int], vectors: list[np.ndarray]) -> dict[str, Any] | None:
        calls.append((name, used, len(vectors)))
        return {"mean": float(sum(used)), "std": None, "n": len(used)} if name == "fd_dinov2" else None

    metrics = ["fd_dinov2", "kid_dinov2", "style_loss_ref"]
    dicts = [cell_dict(table, c, metrics, 1.0, None) for c in cells]
    rows = summaries(table, cells, dicts, metrics, set_metric)
    assert calls[:2] == [("fd_dinov2", [0, 1], 2), ("kid_dinov2", [0, 1], 2)]
    assert rows[1]["metrics"]["fd_dinov2"] == {"mean": 5.0, "std": None, "n": 2}
    assert "kid_dinov2" not in rows[1]["metrics"]  # the callable said: no target vectors
    assert rows[1]["ranks"]["fd_dinov2"] == 1.0 and rows[3]["ranks"]["fd_dinov2"] == 0.0  # lower is better
    rows = summaries(table, cells, dicts, metrics, None)
    assert all("fd_dinov2" not in r["metrics"] for r in rows)


def test_set_metric_entry_notes_missing_images_and_metric_errors():
    reference = np.random.default_rng(0).normal(size=(5, 3))
    assert set_metric_entry(frechet_distance, [], reference, True) == {
        "mean": None,
        "std": None,
        "n": 0,
        "note": "no images",
    }
    one = set_metric_entry(frechet_distance, [reference[0]], reference, True)
    assert one["mean"] is None and one["n"] == 1 and one["note"]
    same = set_metric_entry(frechet_distance, list(reference), reference, True)
    assert same["mean"] == pytest.approx(0.0, abs=1e-6) and same["n"] == 5


# ---- trust ------------------------------------------------------------------------------
def trust_table(adapters: list[str | None], target: list[float], distractor: list[float]) -> ImageTable:
    metas = [meta(i, a, 1.0 if a else None) for i, a in enumerate(adapters)]
    return ImageTable(
        metas,
        values={i: {"style_loss_ref": v} for i, v in enumerate(target)},
        distractor_values={"doodle": {"style_loss_ref": dict(enumerate(distractor))}},
    )


def test_trust_is_trustworthy_when_every_image_is_closer_to_the_target():
    table = trust_table(["a"] * 6, [1, 2, 3, 1, 2, 3], [10, 11, 12, 10, 11, 12])
    (entry,) = trust(table)
    assert entry["metric"] == "style_loss_ref" and entry["distractor"] == "doodle" and entry["adapter"] is None
    assert entry["n"] == 6 and entry["accuracy"] == 1.0 and entry["level"] == "trustworthy"


def test_trust_is_untrustworthy_when_the_distractor_is_closer():
    # style loss: lower is better, so a smaller distance to the distractor is a failure
    (entry,) = trust(trust_table(["a"] * 4, [10, 11, 12, 13], [1, 2, 3, 4]))
    assert entry["accuracy"] == 0.0 and entry["level"] == "untrustworthy"


def test_trust_judges_each_adapter_and_leaves_out_baselines_and_unscored_images():
    table = trust_table(["a", "a", "b", "b", None], [1, 2, 10, 11, 1], [5, 6, 5, 6, 9])
    del table.values[1]  # not scored: out of every scope
    entries = {e["adapter"]: e for e in trust(table)}
    assert set(entries) == {None, "a", "b"}
    assert entries[None]["n"] == 3  # adapter images only: the baseline (index 4) is not judged
    assert entries["a"]["n"] == 1 and entries["a"]["accuracy"] == 1.0
    assert entries["b"]["n"] == 2 and entries["b"]["accuracy"] == 0.0


def test_trust_on_a_folder_without_adapters_uses_every_image():
    (entry,) = trust(trust_table([None, None, None], [1, 2, 3], [4, 5, 6]))
    assert entry["n"] == 3 and entry["adapter"] is None
    assert trust(ImageTable([meta(0)], values={0: {"style_loss_ref": 1.0}})) == []  # no distractor


# ---- document parts -----------------------------------------------------------------------
def test_metric_info_and_clean_json():
    info = metric_info(["style_loss_ref", "image_similarity"])
    assert list(info) == ["style_loss_ref", "image_similarity"]
    assert info["style_loss_ref"]["higher_is_better"] is False and info["image_similarity"]["higher_is_better"] is True
    cleaned = clean_json({"a": [np.float32(0.5), float("nan"), (np.int64(3), np.inf)], "b": "x"})
    assert cleaned == {"a": [0.5, None, [3, None]], "b": "x"}
    assert type(cleaned["a"][0]) is float and type(cleaned["a"][2][0]) is int


def test_table_scored_is_the_images_with_values():
    metas = [meta(0), meta(1), meta(2)]
    table = ImageTable(metas, values={2: {}, 0: {"vendi": 1.0}})
    assert table.scored() == [metas[0], metas[2]] and table.index(metas[1]) == 1


# ---- the per-request builder (lycoris_eval.config; no aggregation, but no encoders either) --
def test_with_request_applies_the_fields_to_a_copy():
    from lycoris_eval.config import EvalConfig, build_config

    base = EvalConfig(metrics=("vendi",), device="cpu")
    config = build_config(
        base, metrics=["fd_dinov2"], reference="ref", distractors=["d1", Path("d2")], trigger=["le_x=ink wash", "sks="]
    )
    assert config.metrics == ("fd_dinov2",) and config.device == "cpu"
    assert config.reference_dir == Path("ref") and config.distractor_dirs == (Path("d1"), Path("d2"))
    assert config.trigger == {"le_x": "ink wash", "sks": ""}
    assert base.metrics == ("vendi",) and base.reference_dir is None and base.trigger == {}  # not changed
    kept = build_config(base, trigger={"w": "t"})
    assert kept.metrics == ("vendi",) and kept.trigger == {"w": "t"} and kept.distractor_dirs == ()


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"metrics": ["vendi", "nonsense"]}, "metrics", "unknown metric(s) nonsense"),
        ({"metrics": []}, "metrics", "non-empty"),
        ({"metrics": "vendi"}, "metrics", "list of metric names"),
        ({"distractors": ["d"]}, "distractors", "need a target reference set"),
        ({"trigger": ["no equals sign"]}, "trigger", "expected WORD=TEXT"),
        ({"trigger": ["=text"]}, "trigger", "trigger word is empty"),
        ({"trigger": {"w": 1}}, "trigger", "must map words"),
        ({"device": "gpu0"}, "device", "unknown device 'gpu0'; use auto, cpu, cuda, cuda:N or mps"),
        ({"device": 3}, "device", "unknown device 3"),
        ({"vendi_q": -1}, "vendi_q", "must be a positive number"),
    ],
)
def test_with_request_names_the_bad_field(kwargs, field, words):
    from lycoris_eval.config import EvalConfig, build_config
    from lycoris_eval.grid.spec import SpecError

    with pytest.raises(SpecError) as caught:
        build_config(EvalConfig(), **kwargs)
    assert caught.value.field == field and words in str(caught.value)
