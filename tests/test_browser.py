"""A real browser (Debian's chromium, driven by Playwright) on the standalone app: choose a
folder, click Evaluate, see the table and a heatmap; the screenshot is kept as an artifact
in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from lycoris_eval.ui import build_ui

from .helpers import make_grid
from .test_ui import services_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_app_in_a_real_browser(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium: tools/setup.sh installs it when run as root")
        pytest.skip("chromium is not installed here (tools/setup.sh installs it when run as root)")
    from playwright.sync_api import sync_playwright

    make_grid(tmp_path / "grid", adapters=(("styleA", 0.5), ("styleA", 1.0)), checkpoints=("ckA", "ckB"))
    blocks = build_ui(services_for(tmp_path))
    port = _free_port()
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#lycoris-eval-source label", has_text="Folder").click()
            page.locator("#lycoris-eval-folder textarea, #lycoris-eval-folder input").first.fill("grid")
            metrics = page.locator("#lycoris-eval-metrics label")
            for name in ("text_alignment", "clip_score", "style_loss_tutorial"):
                metrics.filter(has_text=name).first.click()  # untick the slower ones
            page.locator("#lycoris-eval-evaluate").click()
            page.locator("#lycoris-eval-status", has_text="Scored").first.wait_for(timeout=180_000)
            cells = page.locator("#lycoris-eval-cells")
            assert cells.get_by_text("styleA").count() >= 2 and cells.get_by_text("ckB").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "ui-cells.png"), full_page=True)
            page.locator(".tab-nav button", has_text="Heatmaps & plots").first.click()
            heatmap = page.locator("#lycoris-eval-plots img").first
            heatmap.wait_for(timeout=60_000)
            assert heatmap.evaluate("img => img.naturalWidth") > 100
            page.screenshot(path=str(ARTIFACTS / "ui-heatmaps.png"), full_page=True)
            browser.close()
    finally:
        blocks.close()
    assert (ARTIFACTS / "ui-heatmaps.png").stat().st_size > 10_000
