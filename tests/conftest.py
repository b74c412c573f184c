"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_grid, make_set


@pytest.fixture
def grid_dir(tmp_path: Path) -> Path:
    make_grid(tmp_path / "grid")
    return tmp_path / "grid"


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    return make_set(tmp_path / "ref", 3, 500, size=(80, 64))


@pytest.fixture
def distractor_dir(tmp_path: Path) -> Path:
    return make_set(tmp_path / "doodle", 3, 900, scale=0.3)
