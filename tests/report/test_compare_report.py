"""The comparisons for people (#13): comparisons.csv, the Markdown sections, the verdict
map and the heatmaps' greying, and old (schema 1) documents still read everywhere."""

from __future__ import annotations

import csv
import io

import numpy as np

from lycoris_eval.report.figures import heatmap_png, verdict_heatmap_png
from lycoris_eval.report.format import comparisons_csv, sentence
from lycoris_eval.report.sections import clearly_better_markdown, markdown_report, report_tables, verdicts_markdown
from tests.compare.test_comparisons import grid_document


def document():
    doc = grid_document(np.random.default_rng(20))
    doc["metrics"] = {
        "image_similarity": {"title": "Image similarity", "higher_is_better": True, "level": "image", "source": ""},
        "text_alignment": {"title": "Text alignment", "higher_is_better": True, "level": "image", "source": ""},
    }
    doc["verdicts"] = {
        "rule": "THE RULE",
        "home": {"styleA": "ckA"},
        "home_source": {"styleA": "marked"},
        "entries": [
            {"adapter": "styleA", "checkpoint": "ckA", "home": "ckA", "verdict": "home", "weights": [0.5, 1.0],
             "by_weight": [], "reason": "trained here"},
            {"adapter": "styleA", "checkpoint": "ckB", "home": "ckA", "verdict": "not enough evidence",
             "weights": [0.5, 1.0], "by_weight": [], "reason": "too few seeds for an interval"},
        ],
    }  # fmt: skip
    return doc


def test_comparisons_csv_has_one_row_per_entry():
    doc = document()
    rows = list(csv.DictReader(io.StringIO(comparisons_csv(doc))))
    assert len(rows) == len(doc["comparisons"]["entries"])
    clear = [r for r in rows if r["status"] == "B better"]
    assert clear and all(float(r["ci_high"]) < 0 for r in clear)  # weight 0.5 below 1.0
    assert comparisons_csv({"schema_version": 1}).strip() == ",".join(
        next(csv.reader(io.StringIO(comparisons_csv(doc))))
    )


def test_clearly_better_in_plain_words():
    doc = document()
    lines = clearly_better_markdown(doc)
    assert lines[1] == "## What is clearly better"
    text = "\n".join(lines)
    assert "weight 1 beats weight 0.5 (styleA on ckA) on Image similarity: A − B = −" in text
    assert "better in 8 of 8 pairs" in text and "Benjamini–Hochberg" in text
    assert "comparisons have identical values on every pair" in text  # the constant text alignment
    entry = next(e for e in doc["comparisons"]["entries"] if e["kind"] == "baseline" and e["clear"])
    assert sentence(entry, "Image similarity").startswith("styleA @0.5 beats no adapter (on ckA)")
    verdicts = "\n".join(verdicts_markdown(doc))
    assert "THE RULE" in verdicts and "| styleA | ckB | ckA | not enough evidence | 0.5, 1 |" in verdicts
    doc["verdicts"]["home_source"] = {"styleA": "same family"}  # issue #22: said where it is read
    assert "| styleA | ckB | ckA (same family) | not enough evidence |" in "\n".join(verdicts_markdown(doc))


def test_verdict_map_and_greyed_heatmap():
    doc = document()
    assert verdict_heatmap_png(doc)[:8] == b"\x89PNG\r\n\x1a\n"
    heat = {"rows": ["styleA"], "columns": ["ckA", "ckB"], "values": [[0.5, 0.6]], "higher_is_better": True,
            "trained_on": {"styleA": "ckA"}}  # fmt: skip
    plain = heatmap_png(heat, "x")
    greyed = heatmap_png({**heat, "verdicts": {"styleA": {"ckB": "not enough evidence"}}}, "x")
    assert plain and greyed and plain != greyed
    assert verdict_heatmap_png({"verdicts": {"entries": []}}) is None


def test_schema_one_documents_still_read():
    old = {
        "schema": "lycoris-eval/scores",
        "schema_version": 1,
        "run": {"notes": []},
        "metrics": {"vendi": {"title": "Vendi", "higher_is_better": True, "level": "cell", "source": ""}},
        "cells": [],
        "summaries": [],
        "trust": [],
    }
    tables = report_tables(old)
    assert tables["comparisons"] is None and tables["verdicts"] is None
    text = markdown_report(tables)
    assert "What is clearly better" not in text and "Does it transfer" not in text
    assert clearly_better_markdown(old) == [] and verdicts_markdown(old) == []


def test_terminal_table_names_the_clear_differences_and_verdicts():
    from lycoris_eval.report.terminal import text_table

    doc = {**document(), "summaries": [], "trust": [], "run": {"notes": []}}
    tests = sum(t["tests"] for t in doc["comparisons"]["tables"].values())
    clear = sum(e["clear"] for e in doc["comparisons"]["entries"])
    text = text_table(doc)
    assert f"clearly different: {clear} of {tests} paired tests (Benjamini–Hochberg, 5% FDR)" in text
    assert "weight 1 beats weight 0.5 (styleA on ckA)" in text
    assert "verdict: styleA on ckB (vs ckA): not enough evidence @0.5, 1 — too few seeds for an interval" in text


def test_report_names_each_adapters_family_and_a_conflict():
    doc = document()
    conflict = "the tensors say SDXL (two text encoders) but the training metadata says SD 1.x; the tensors are trusted"
    doc["adapters"] = {"styleA": {"type": "LoHa", "family": "sdxl", "family_conflict": conflict, "trained_on": "ckA"}}
    tables = report_tables(doc)
    assert tables["adapters"]["styleA"]["family"] == "sdxl"
    text = markdown_report(tables)
    assert "## Adapters" in text
    assert f"| styleA | LoHa | SDXL (incl. Pony, Illustrious, NoobAI) ({conflict}) | ckA |" in text
