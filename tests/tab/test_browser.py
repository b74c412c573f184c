"""A real browser (Debian's chromium, driven by Playwright) on the standalone app: choose a
folder, click Evaluate, see the table and a heatmap; the screenshot is kept as an artifact
in test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lycoris_eval.tab.ui import build_ui
from tests.helpers import make_grid, make_set
from tests.tab.test_ui import services_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
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


# collects every progress text the page shows while the evaluation runs
PROGRESS_WATCH = """() => {
    window.leProgressSeen = [];
    const look = () => {
        const text = document.body.innerText;
        for (const line of text.split("\\n")) {
            if (/loading the scoring models|encoding .* \\d+\\/\\d+|writing the reports/.test(line)
                && !window.leProgressSeen.includes(line)) {
                window.leProgressSeen.push(line);
            }
        }
    };
    new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_page(tmp_path: Path, unticked: tuple[str, ...], height: int = 1200) -> Iterator[Any]:
    """The standalone app on a free port, in Chromium, with source Folder = ``grid`` and the
    metrics ``unticked`` (the slower ones) unticked: the page, closed afterwards."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium: tools/setup.sh installs it when run as root")
        pytest.skip("chromium is not installed here (tools/setup.sh installs it when run as root)")
    from playwright.sync_api import sync_playwright

    blocks = build_ui(services_for(tmp_path))
    port = _free_port()
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#lycoris-eval-source label", has_text="Folder").click()
            page.locator("#lycoris-eval-folder textarea, #lycoris-eval-folder input").first.fill("grid")
            metrics = page.locator("#lycoris-eval-metrics label")
            for name in unticked:
                metrics.filter(has_text=name).first.click()
            yield page
            browser.close()
    finally:
        blocks.close()


def test_standalone_app_in_a_real_browser(tmp_path):
    make_grid(tmp_path / "grid", adapters=(("styleA", 0.5), ("styleA", 1.0)), checkpoints=("ckA", "ckB"))
    with app_page(tmp_path, ("text_alignment", "clip_score", "style_loss_tutorial")) as page:
        page.evaluate(PROGRESS_WATCH)
        page.locator("#lycoris-eval-evaluate").click()
        page.locator("#lycoris-eval-status", has_text="Scored").first.wait_for(timeout=180_000)
        cells = page.locator("#lycoris-eval-cells")
        # the status comes first, the tables a step later (issue #23): wait for them, not the status
        cells.get_by_text("ckB").first.wait_for(state="attached", timeout=60_000)
        assert cells.get_by_text("styleA").count() >= 2 and cells.get_by_text("ckB").count() >= 1
        headers = [h.strip() for h in cells.locator("thead th").all_inner_texts()]
        assert headers[:3] == ["checkpoint", "adapter", "type"], headers
        # the progress said what it was doing, with counts (not only "processing | 3.0s")
        seen = page.evaluate("window.leProgressSeen")
        assert any("loading the scoring models" in t for t in seen), seen
        assert any(re.search(r"encoding images \d+/\d+", t) for t in seen), seen
        page.screenshot(path=str(ARTIFACTS / "ui-cells.png"), full_page=True)
        # no distractor set: the Trust tab explains instead of showing an empty table
        page.locator(".tab-nav button", has_text="Trust").first.click()
        page.get_by_text("The trust check needs a reference set").first.wait_for(timeout=10_000)
        assert not page.locator("#lycoris-eval-trust").is_visible()
        assert "undefined" not in page.locator("#lycoris-eval-tab").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-trust.png"), full_page=True)
        page.locator(".tab-nav button", has_text="Heatmaps & plots").first.click()
        heatmap = page.locator("#lycoris-eval-plots img").first
        heatmap.wait_for(timeout=60_000)
        assert heatmap.evaluate("img => img.naturalWidth") > 100
        page.screenshot(path=str(ARTIFACTS / "ui-heatmaps.png"), full_page=True)
    assert (ARTIFACTS / "ui-heatmaps.png").stat().st_size > 10_000


def test_epochs_view_in_a_real_browser(tmp_path):
    """Four saves of one training (issue #24), evaluated in the page: the Epochs tab shows
    the run's answer, its table and its figures."""
    saves = ("inkrun-000001", "inkrun-000002", "inkrun-000003", "inkrun")
    make_grid(tmp_path / "grid", adapters=[(s, 1.0) for s in saves], prompts=("le_ink, a cat", "a castle"))
    make_set(tmp_path / "ref", 3, 500)
    slow = ("text_alignment", "clip_score", "style_loss_tutorial", "vendi", "style_loss_ref")
    with app_page(tmp_path, slow, height=1400) as page:
        page.locator("#lycoris-eval-ref textarea, #lycoris-eval-ref input").first.fill("ref")
        page.locator("#lycoris-eval-evaluate").click()
        page.locator("#lycoris-eval-status", has_text="Scored").first.wait_for(timeout=240_000)
        page.locator(".tab-nav button", has_text="Epochs").first.click()
        view = page.locator("#lycoris-eval-epochs").last
        view.get_by_text("Training run inkrun").first.wait_for(timeout=30_000)
        text = view.inner_text()
        assert "publish inkrun" in text and "★ pick" in text, text[:2000]
        figure = page.locator("#lycoris-eval-epochs-plots img").first
        figure.wait_for(timeout=60_000)
        assert figure.evaluate("img => img.naturalWidth") > 100
        page.screenshot(path=str(ARTIFACTS / "ui-epochs.png"), full_page=True)


FAKE_HOST_PAGE = """<!doctype html><html><body>
<div id="tabs"><div class="tab-nav"><button id="t1">txt2img</button><button id="t2">LyCORIS Eval</button></div></div>
<div id="txt2img_results"><div id="image_buttons_txt2img" class="image-buttons">
  <div class="form"><button class="lg secondary gradio-button tool svelte-abc123">📂</button></div>
</div></div>
<div id="lycoris-eval-source"><input type="radio" name="s" value="Run" checked><input type="radio" name="s" value="Last X/Y/Z grid"></div>
<button id="lycoris-eval-refresh-runs">Refresh</button>
<script>
  window.leClicks = [];
  document.getElementById("t2").onclick = function () { window.leClicks.push("tab"); };
  document.getElementById("lycoris-eval-refresh-runs").onclick = function () { window.leClicks.push("refresh"); };
  window.gradioApp = function () { return document; };
  window.onUiLoaded = function (callback) { window.leLoaded = callback; };
</script></body></html>"""


def test_evaluate_button_looks_like_the_host_buttons():
    """The front end on a page shaped like WebUI v1.10.1's txt2img results: the button copies
    the host button's classes (Svelte hash included, "tool" left out), opens the tab with
    "Last X/Y/Z grid" selected, and leaves no page globals."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed here")
    from playwright.sync_api import sync_playwright

    script = (Path(__file__).resolve().parents[2] / "javascript" / "lycoris_eval.js").read_text()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_content(FAKE_HOST_PAGE)
        before = set(page.evaluate("Object.keys(window)"))
        page.add_script_tag(content=script)
        after = set(page.evaluate("Object.keys(window)"))
        assert after - before - {"leLoaded"} == set()  # no page globals (leLoaded: the fake onUiLoaded)
        page.evaluate("window.leLoaded()")  # what the WebUI does once its page is built
        button = page.locator("#lycoris-eval-after-xyz")
        assert button.get_attribute("class") == "lg secondary gradio-button svelte-abc123 lycoris-eval-button"
        assert button.text_content() == "Evaluate"
        page.evaluate("window.leLoaded()")  # a second call adds no second button
        assert page.locator("#lycoris-eval-after-xyz").count() == 1
        button.click()
        page.wait_for_function("window.leClicks.length >= 2")
        assert page.evaluate("window.leClicks") == ["tab", "refresh"]
        assert page.locator('#lycoris-eval-source input[value="Last X/Y/Z grid"]').is_checked()
        # without a host button to copy from, the host's plain classes
        page.set_content(
            FAKE_HOST_PAGE.replace('<div class="form">', '<div class="form" hidden>').replace(
                "<button class", "<span class"
            )
        )
        page.add_script_tag(content=script)
        page.evaluate("window.leLoaded()")
        assert page.locator("#lycoris-eval-after-xyz").get_attribute("class") == (
            "lg secondary gradio-button lycoris-eval-button"
        )
        browser.close()
    assert errors == []
