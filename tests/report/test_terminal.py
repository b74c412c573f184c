"""The terminal summary (issue #23): fits the terminal, titles not ids, arrows for the
better direction, ranks explained; the full table stays in the files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from lycoris_eval.report.terminal import SHORT_TITLES, text_table

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "example_grid" / "scores.json.gz"


@pytest.mark.parametrize("width", [60, 80, 120, 250])
def test_the_summary_fits_the_terminal_in_blocks(width):
    document = json.loads(gzip.decompress(SNAPSHOT.read_bytes()))
    text = text_table(document, width)
    assert max(len(line) for line in text.splitlines()) <= width  # notes and differences wrapped too
    table = text.splitlines()
    heads = [line for line in table if line.startswith("checkpoint ")]
    assert len(heads) == (1 if width == 250 else len(heads)) and (width >= 250 or len(heads) > 1)
    header_text = " ".join(heads)
    for name, info in document["metrics"].items():
        arrow = "↑" if info["higher_is_better"] else "↓"
        assert f"{SHORT_TITLES[name]} {arrow}" in header_text
        assert name not in header_text  # titles, not ids
    assert "rank ↑" in header_text and "(1 best, 0 worst)" in " ".join(text.split())
    rows = len(document["summaries"])
    assert sum(1 for line in table if line.startswith(("anime-mix", "sd15-base"))) == rows * len(heads)
