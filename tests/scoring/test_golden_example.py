"""Moving code between rooms must not change a single number (issue #21).

``tests/snapshots/example_grid/`` holds what the command line wrote for the example grid
*before* the package was reorganised (commit f2faa66, random weights, ViT-B-32 / DINOv2
ViT-S/14 so that the test runs in well under a minute). The same run today must give the
same bytes; only ``run.created`` (the clock) is blanked on both sides.

If a change is *meant* to alter the scores document (a schema bump), regenerate the
snapshot with the command in :func:`_run` and say so in the commit.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "snapshots" / "example_grid"
FILES = ("scores.json", "scores.csv", "comparisons.csv")


def _run(workdir: Path) -> Path:
    shutil.copytree(ROOT / "examples", workdir, ignore=shutil.ignore_patterns("lycoris-eval", "*.py"))
    cmd = [sys.executable, "-m", "lycoris_eval", "evaluate", "grid", "--reference", "reference"]
    cmd += ["--distractor", "doodle", "--trigger", "le_inkwash=ink wash painting", "--random-weights"]
    cmd += ["--no-cache", "--quiet", "--clip-model", "ViT-B-32", "--dinov2-arch", "vits14"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "HOME": str(workdir)}
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "grid" / "lycoris-eval"


def _without_random_weights_column(data: bytes) -> bytes:
    """CSVs of a random-weights run gained a last ``random_weights`` column (issue #23); the
    rest of each row must be what it was before the move."""
    lines = data.decode().splitlines(keepends=True)
    assert lines[0].rstrip("\r\n").endswith(",random_weights"), "a random-weights CSV must say so"
    return "".join(line.replace(",random_weights", "", 1).replace(",true\r", "\r", 1) for line in lines).encode()


def _blank_clock(data: bytes) -> bytes:
    return re.sub(rb'"created": "[^"]*"', b'"created": "<created>"', data, count=1)


@pytest.mark.slow
def test_example_grid_outputs_are_byte_for_byte_those_from_before_the_move(tmp_path):
    out = _run(tmp_path / "example")
    for name in FILES:
        expected = gzip.decompress((SNAPSHOT / f"{name}.gz").read_bytes())
        got = (out / name).read_bytes()
        if name == "scores.json":
            # schema 3 (issue #24) added `training_runs` and `run.training_runs_grouped`, nothing else: the
            # rest must be what it was, value for value (the example holds no training run)
            document, before = json.loads(_blank_clock(got)), json.loads(expected)
            assert document.pop("schema_version") == 3 and before.pop("schema_version") == 2
            assert document.pop("training_runs")["runs"] == []
            assert document["run"].pop("training_runs_grouped") == {}
            assert document == before, "scores.json differs from the snapshot taken before the move"
            continue
        else:
            got = _without_random_weights_column(got)
        assert got == expected, f"{name} differs from the snapshot taken before the move"
    # issue #23: the command line writes the same report folder as the tab, answer first
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.index("## The answer") < report.index("## Summary")
    assert "RANDOM WEIGHTS" in report and sorted(out.glob("heatmap-*.png")) and sorted(out.glob("weights-*.png"))


def test_the_clock_is_the_only_thing_blanked():
    doc = b'{"run": {"created": "2026-12-05T10:40:44+00:00", "x": "created"}, "created": "keep"}'
    assert _blank_clock(doc) == b'{"run": {"created": "<created>", "x": "created"}, "created": "keep"}'
