"""The answer first (issue #23): plain words from the comparisons and verdicts already in
the scores document, the same for every front end, never a best weight without its
interval and n."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from lycoris_eval.report.answer import adapter_answer, answer_text, answers
from lycoris_eval.report.figures import RANDOM_WEIGHTS_MARK, heatmap_png
from lycoris_eval.report.format import comparisons_csv, to_csv
from lycoris_eval.report.sections import markdown_report, report_tables

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "example_grid" / "scores.json.gz"


@pytest.fixture()
def document() -> dict:
    """The example grid's scores (random weights, two adapters on two checkpoints)."""
    return json.loads(gzip.decompress(SNAPSHOT.read_bytes()))


def _baseline(doc, adapter, checkpoint, weight, metric):
    for e in doc["comparisons"]["entries"]:
        if e["kind"] == "baseline" and e["metric"] == metric:
            side = e["a"] if e["a"]["adapter"] else e["b"]
            if (side["adapter"], side["checkpoint"], side["weight"]) == (adapter, checkpoint, weight):
                return e
    raise KeyError((adapter, checkpoint, weight, metric))


def test_where_it_works_with_the_best_weight_its_interval_and_n(document):
    a = adapter_answer(document, "inkwash_lora")
    assert a["fidelity_metric"] == "image_similarity"
    assert a["works"] == {"anime-mix": [0.5, 1.0], "sd15-base": [0.5, 1.0]}
    entry = _baseline(document, "inkwash_lora", "anime-mix", 1.0, "image_similarity")
    assert a["best"]["anime-mix"]["weight"] == 1.0 and a["best"]["anime-mix"]["n"] == entry["n"]
    assert a["best"]["anime-mix"]["ci"] == sorted(entry["ci"])  # a side, higher is better: as stored
    text = "\n".join(a["sentences"])
    assert text.startswith("RANDOM WEIGHTS")
    assert "On anime-mix it works at weight 0.5, 1; best at 1: Image similarity to reference" in text
    assert "95% CI" in text and f"n = {entry['n']} pairs" in text and "(↑ better)" in text
    assert "Its training checkpoint is unknown, so each checkpoint is judged against its own" in text


def test_how_sure_counts_clear_differences_and_asks_for_the_seeds_the_unclear_need(document):
    a = adapter_answer(document, "inkwash_loha")
    assert 0 < a["differences_clear"] < a["differences_used"]
    used = [
        _baseline(document, "inkwash_loha", c, w, m)
        for c in ("anime-mix", "sd15-base")
        for w in (0.5, 1.0)
        for m in ("image_similarity", "text_alignment")
    ]
    assert a["differences_used"] == len(used) and a["differences_clear"] == sum(e["clear"] for e in used)
    assert a["seeds_to_add"] == max(e["seeds_to_add"] or 0 for e in used if not e["clear"])
    assert a["sentences"][-1].endswith(f"add {a['seeds_to_add']} seeds per prompt and score again.")


def test_no_clear_effect_and_a_text_alignment_cost_are_said(document):
    doc = copy.deepcopy(document)
    for w in (0.5, 1.0):
        e = _baseline(doc, "inkwash_lora", "sd15-base", w, "image_similarity")
        e.update(clear=False, better=None, status="no clear difference")
    cost = _baseline(doc, "inkwash_lora", "anime-mix", 0.5, "text_alignment")
    cost.update(clear=True, better="b" if cost["a"]["adapter"] else "a")  # the no-adapter side is better
    a = adapter_answer(doc, "inkwash_lora")
    assert a["works"] == {"anime-mix": [1.0]} and a["text_alignment_cost"] == {"anime-mix": [0.5]}
    text = "\n".join(a["sentences"])
    assert "On sd15-base it has no clear effect toward the reference at any weight tried." in text
    assert (
        "On anime-mix it costs prompt following (text alignment clearly worse than no adapter) at weight 0.5." in text
    )


def test_verdicts_are_used_when_the_home_is_known(document):
    doc = copy.deepcopy(document)
    doc["verdicts"]["home"]["inkwash_lora"] = "sd15-base"
    doc["verdicts"]["home_source"]["inkwash_lora"] = "same family"
    for v in doc["verdicts"]["entries"]:
        if v["adapter"] == "inkwash_lora":
            v["home"] = "sd15-base"
            v["verdict"] = "home" if v["checkpoint"] == "sd15-base" else "weaker"
            v["weights"] = [] if v["checkpoint"] == "sd15-base" else [1.0]
    text = "\n".join(adapter_answer(doc, "inkwash_lora")["sentences"])
    assert (
        "Against its home checkpoint sd15-base (same-family rule): anime-mix: weaker than at home (weight 1)." in text
    )
    assert "training checkpoint is unknown" not in text


def test_without_a_reference_it_says_what_to_add(document):
    doc = copy.deepcopy(document)
    fidelity = {"image_similarity", "centroid_distance", "style_loss_ref", "style_loss_tutorial"}
    doc["comparisons"]["entries"] = [e for e in doc["comparisons"]["entries"] if e["metric"] not in fidelity]
    a = adapter_answer(doc, "inkwash_lora")
    assert a["fidelity_metric"] is None and a["works"] == {}
    assert any("no reference set was given" in s for s in a["sentences"])
    assert a["sentences"][0].startswith("RANDOM WEIGHTS")  # said on this path too


def test_the_same_answer_opens_report_md_and_the_terminal_text(document):
    tables = report_tables(document)
    assert tables["answer"] == answers(document) and tables["random_weights"] is True
    report = markdown_report(tables)
    assert report.index("## The answer") < report.index("## Summary")
    for a in tables["answer"]:
        for sentence in a["sentences"]:
            assert f"* {sentence}" in report and f"  - {sentence}" in answer_text(tables["answer"], 10_000)
    assert max(len(line) for line in answer_text(tables["answer"], 72).splitlines()) <= 72
    assert "## Highest overall rank per checkpoint (a ranking, not evidence" in report


def test_random_weights_runs_are_marked_in_every_csv_row_and_figure(document):
    for text in (to_csv(document), comparisons_csv(document)):
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][-1] == "random_weights" and all(r[-1] == "true" for r in rows[1:])
    real = copy.deepcopy(document)
    real["run"]["random_weights"] = False
    for text in (to_csv(real), comparisons_csv(real)):
        assert "random_weights" not in text.splitlines()[0]
    heat = {"rows": ["a"], "columns": ["c1", "c2"], "values": [[0.5, 0.6]], "higher_is_better": True, "trained_on": {}}
    assert heatmap_png(heat, "t", RANDOM_WEIGHTS_MARK) != heatmap_png(heat, "t")


def test_figures_drawn_from_the_same_tables_are_kept_and_any_change_draws_them_again(document, tmp_path, monkeypatch):
    """A cached re-evaluation spent most of its time drawing the same figures again."""
    from lycoris_eval.report import outputs

    tables = report_tables(document)
    first = outputs.write_report_files(tables, tmp_path)
    drawn = {k: p.read_bytes() for k, p in first.items() if k != "markdown"}
    assert drawn and (tmp_path / outputs.FIGURES_INDEX).is_file()
    monkeypatch.setattr(outputs, "heatmap_png", lambda *a, **k: pytest.fail("drawn again"))
    assert outputs.write_report_files(report_tables(document), tmp_path) == first
    assert {k: p.read_bytes() for k, p in first.items() if k != "markdown"} == drawn
    monkeypatch.undo()
    calls = []
    real = outputs.heatmap_png
    monkeypatch.setattr(outputs, "heatmap_png", lambda *a, **k: calls.append(1) or real(*a, **k))
    next(p for k, p in first.items() if k.startswith("heatmap-")).unlink()  # a figure gone: all drawn again
    assert outputs.write_report_files(tables, tmp_path).keys() == first.keys() and calls
    calls.clear()
    changed = copy.deepcopy(document)
    changed["run"]["random_weights"] = False  # other tables (no watermark): drawn again
    outputs.write_report_files(report_tables(changed), tmp_path)
    assert calls
