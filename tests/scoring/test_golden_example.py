"""Moving code between rooms must not change a single number (issue #21).

``tests/snapshots/example_grid/`` holds what the command line wrote for the example grid
*before* the package was reorganised (commit f2faa66, random weights, ViT-B-32 / DINOv2
ViT-S/14 so that the test runs in well under a minute). The same run today must give the
same documents: every key, string, integer and row the same, every float equal to float32
noise (relative 1e-4, absolute 1e-6). float32 kernels differ in their last bits between
CPUs: on an AVX-512 EPYC the means differed from the snapshot's machine by 1e-7 relative,
and the random-weights example's near-zero spreads and differences (1e-6 to 1e-4, pure
rounding) by up to 0.5 %; ``pairs_needed``, a ratio of two such numbers, by 0.2 % (compared
at 1 %). Only ``run.created`` (the clock) is blanked on both sides.

If a change is *meant* to alter the scores document (a schema bump), regenerate the
snapshot with the command in :func:`_run` and say so in the commit.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "snapshots" / "example_grid"
FILES = ("scores.json", "scores.csv", "comparisons.csv")
REL, ABS = 1e-4, 1e-6  # floats: equal to float32 noise on values of order one
NOISY_COUNTS = {"pairs_needed": 1e-2}  # counts computed from a ratio of noise-level numbers


def _differences(got, want, path: str = "") -> list[str]:
    """Where two parsed documents differ: a path per difference, floats to REL/ABS."""
    if isinstance(want, dict) and isinstance(got, dict):
        if got.keys() != want.keys():
            return [f"{path}: keys {sorted(got.keys() ^ want.keys())}"]
        return [d for k in want for d in _differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items, expected {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in _differences(g, w, f"{path}[{i}]")]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (got, want))
    noisy = NOISY_COUNTS.get(path.rsplit(".", 1)[-1])
    if numbers and (isinstance(want, float) or noisy):
        if math.isclose(got, want, rel_tol=noisy or REL, abs_tol=ABS) or (math.isnan(got) and math.isnan(want)):
            return []
    elif got == want and type(got) is type(want):
        return []
    return [f"{path}: {got!r}, expected {want!r}"]


def _csv_cells(data: bytes) -> list[dict]:
    """A CSV's rows by column name, each cell a float where it reads as one, else its text."""

    def cell(text: str):
        try:
            return float(text)
        except ValueError:
            return text

    rows = list(csv.DictReader(io.StringIO(data.decode())))
    return [{k: cell(v) for k, v in row.items()} for row in rows]


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
            differences = _differences(document, before)
            assert differences == [], f"scores.json differs from the snapshot taken before the move: {differences[:20]}"
            continue
        got = _without_random_weights_column(got)
        differences = _differences(_csv_cells(got), _csv_cells(expected))
        assert differences == [], f"{name} differs from the snapshot taken before the move: {differences[:20]}"
    # issue #23: the command line writes the same report folder as the tab, answer first
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.index("## The answer") < report.index("## Summary")
    assert "RANDOM WEIGHTS" in report and sorted(out.glob("heatmap-*.png")) and sorted(out.glob("weights-*.png"))


def test_the_comparison_sees_what_a_move_could_change():
    """Equal within REL passes; a float off by more, another string, key or row count fails."""
    want = {"a": [1, 0.5, "x"], "b": {"c": None, "d": float("nan")}}
    assert _differences({"a": [1, 0.5 * (1 + REL / 10), "x"], "b": {"c": None, "d": float("nan")}}, want) == []
    assert _differences({"a": [1, 0.5 * (1 + REL * 10), "x"], "b": {"c": None, "d": float("nan")}}, want)
    assert _differences({"a": [1, 0.5, "y"], "b": {"c": None, "d": float("nan")}}, want)
    assert _differences({"a": [1, 0.5], "b": {"c": None, "d": float("nan")}}, want)
    assert _differences({"a": [1, 0.5, "x"], "b": {"c": 0.0, "d": float("nan")}}, want)
    assert _differences({"a": [2, 0.5, "x"], "b": {"c": None, "d": float("nan")}}, want)
    assert _differences({"a": [1, 0.5, "x"], "b": {"d": float("nan")}}, want)
    assert _differences({"pairs_needed": 1005}, {"pairs_needed": 1000}) == []  # a ratio of noise
    assert _differences({"pairs_needed": 1100}, {"pairs_needed": 1000})
    assert _differences({"n": 1001}, {"n": 1000})  # any other count: exact
    rows = _csv_cells(b"name,value\r\nx,0.25\r\n")
    assert _differences(_csv_cells(b"name,value\r\nx,0.2500001\r\n"), rows) == []
    assert _differences(_csv_cells(b"name,value\r\nx,0.26\r\n"), rows)
    assert _differences(_csv_cells(b"name,other\r\nx,0.25\r\n"), rows)


def test_the_clock_is_the_only_thing_blanked():
    doc = b'{"run": {"created": "2026-12-05T10:40:44+00:00", "x": "created"}, "created": "keep"}'
    assert _blank_clock(doc) == b'{"run": {"created": "<created>", "x": "created"}, "created": "keep"}'
