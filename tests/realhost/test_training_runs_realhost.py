"""Training runs in the real hosts (issue #24): four saves of one kohya training (the host's
LoRA re-saved with the metadata kohya writes, its up-weights scaled per epoch) are listed as
one run, a grid over the run through ``POST /grid`` makes every other save in step order
and records the run in its manifest, and the X/Y/Z plot's "LyCORIS: epoch" axis applies a
save per value; a plot pairing it with the adapter axis, or an adapter of another model
family, is refused before its first image."""

from __future__ import annotations

import os
import uuid

import pytest

from .host import ROOT, run_records, wait_job, xyz_args, xyz_axis_index
from .test_page import CHROMIUM, FLAGS, _choose
from .test_xyz import XYZ_DIR, _evaluate, _plot

RUN = "evalrun"
SAVES = {1: f"{RUN}-000001", 2: f"{RUN}-000002", 3: f"{RUN}-000003", 4: RUN}  # the final save has no suffix
BASE = {"steps": 4, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}


@pytest.fixture(scope="module")
def epochs(host, api):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    folder = host.root / "models" / "Lora"
    source = folder / f"{host.build.adapter('lora')}.safetensors"
    tensors = load_file(str(source))
    with safe_open(str(source), "pt") as handle:
        metadata = dict(handle.metadata() or {})
    paths = []
    for epoch, name in SAVES.items():
        scaled = {k: v * (epoch / 4) if k.endswith("lora_up.weight") else v for k, v in tensors.items()}
        kohya = {
            "ss_output_name": RUN,
            "ss_session_id": "424242",
            "ss_training_started_at": "1700000000",
            "ss_epoch": str(epoch),
            "ss_steps": str(epoch * 30),
            "ss_max_train_steps": "120",
            "ss_num_epochs": "4",
        }
        paths.append(folder / f"{name}.safetensors")
        save_file(scaled, str(paths[-1]), metadata={**metadata, **kohya})
    assert api.post("/sdapi/v1/refresh-loras").status_code == 200
    yield SAVES
    for path in paths:
        path.unlink(missing_ok=True)
    api.post("/sdapi/v1/refresh-loras")


def test_the_saves_are_one_run_in_step_order(api, epochs):
    runs = {r["name"]: r for r in api.get("/lycoris-eval/v1/training-runs").json()}
    run = runs[RUN]
    assert run["grouped_by"] == "session id"
    assert [(m["adapter"], m["epoch"], m["step"], m["final"]) for m in run["members"]] == [
        (name, epoch, epoch * 30, epoch == 4) for epoch, name in epochs.items()
    ]
    adapters = {a["name"]: a for a in api.get("/lycoris-eval/v1/adapters").json()}
    assert adapters[epochs[2]]["training_run"] == {
        "name": RUN,
        "epoch": 2,
        "step": 60,
        "final": False,
        "source": "metadata",
    }


def test_a_training_run_grid_through_post_grid(api, host, epochs):
    run_id = f"epochs-{uuid.uuid4().hex[:8]}"
    body = {
        "checkpoints": [host.build.checkpoints[0]],
        "training_run": {"name": RUN, "every": 2},
        "weights": [1.0],
        "prompts": ["[style] a castle on a hill"],
        "seeds": [7],
        "run_id": run_id,
        "base": BASE,
    }
    response = api.post("/lycoris-eval/v1/grid", json=body)
    assert response.status_code == 202, response.text
    status = wait_job(api, response.json()["job_id"])
    assert status["state"] == "done" and status["result"]["failed"] == {}, status
    records = [r for r in run_records(host.root, run_id) if r["status"] == "done"]
    assert [r["adapter"] for r in records] == [None, epochs[2], epochs[4]]  # baseline, then step order
    manifest = api.get(f"/lycoris-eval/v1/runs/{run_id}").json()["manifest"]
    assert manifest["spec"]["adapters"] == [epochs[2], epochs[4]]
    [run] = manifest["training_runs"]
    assert run["name"] == RUN and [m["epoch"] for m in run["members"]] == [2, 4]
    bad = api.post("/lycoris-eval/v1/grid", json={**body, "run_id": None, "training_run": {"name": RUN, "epochs": [5]}})
    assert bad.status_code == 422 and "has no epoch 5 (it has 1, 2, 3, 4)" in bad.text


def test_the_xyz_epoch_axis_with_the_weight_axis(api, host, epochs):
    epoch_axis, weight_axis = xyz_axis_index(api, "LyCORIS: epoch"), xyz_axis_index(api, "LyCORIS: adapter weight")
    args = xyz_args(api, (epoch_axis, "", [f"{RUN}@1", f"{RUN}@4"]), (weight_axis, "0.5, 1", []))
    folder = _plot(api, host, "a red barn", args)
    assert len(list(folder.glob("*.png"))) == 2 * 2 * 2  # saves × weights × batch count
    document = _evaluate(api, folder, ["vendi", "psnr_base"])
    cells = document["cells"]
    assert {(c["adapter"], c["weight"]) for c in cells} == {(epochs[e], w) for e in (1, 4) for w in (0.5, 1.0)}
    assert {c["group"] for c in cells} == {None}  # the epoch is the cell's adapter, not a stratum


def _captured(host) -> dict[str, int]:
    folder = host.root.joinpath(*XYZ_DIR)
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")} if folder.is_dir() else {}


@pytest.mark.parametrize(
    "case",
    ["adapter and epoch axes", "cross-family adapter"],
)
def test_the_xyz_plot_refuses_before_its_first_image(api, host, epochs, case):
    """Two plots the real X/Y/Z script must not draw: the adapter and the epoch axis together
    (each would set the cell's adapter, the last silently winning), and an SDXL LoRA on the
    host's SD1.5 checkpoint (a plot of baselines). The host answers with our one line, no
    cell is captured and the capture of the plot before stays as it was."""
    epoch_axis, adapter_axis = xyz_axis_index(api, "LyCORIS: epoch"), xyz_axis_index(api, "LyCORIS: adapter")
    if case == "adapter and epoch axes":
        axes = [(epoch_axis, "", [f"{RUN}@1", f"{RUN}@4"]), (adapter_axis, "", [host.build.adapter("lora")])]
        words = "the adapter axis and the epoch axis both choose the cell's adapter"
    else:
        axes = [(adapter_axis, "", [host.build.adapter("lora"), "crossfamily-sdxl"])]
        words = "'crossfamily-sdxl' is for SDXL"
    before = _captured(host)
    body = {**BASE, "prompt": "a red barn", "seed": 300, "script_name": "x/y/z plot"}
    args = xyz_args(api, *axes)
    with host.client() as fresh:  # Forge's server closes the connection after an error
        response = fresh.post("/sdapi/v1/txt2img", json={**body, "script_args": args}, timeout=600)
    assert response.status_code != 200 and words in response.text, response.text[:2000]
    assert _captured(host) == before


@pytest.fixture(scope="module")
def scored_run(api, host, epochs, references) -> str:
    """All four saves × 2 prompts × 3 seeds, scored in the grid's job: the run id."""
    run_id = f"epochs-{uuid.uuid4().hex[:8]}"
    body = {
        "checkpoints": [host.build.checkpoints[0]],
        "training_run": {"name": RUN},
        "weights": [1.0],
        "prompts": ["[alter] evalrun, a red barn", "[style] a castle on a hill"],
        "seeds": [1, 2, 3],
        "trigger": {"evalrun": ""},
        "references": [references],
        "score": True,
        "run_id": run_id,
        "base": BASE,
    }
    response = api.post("/lycoris-eval/v1/grid", json=body)
    assert response.status_code == 202, response.text
    status = wait_job(api, response.json()["job_id"], timeout=900)
    assert status["state"] == "done" and status["result"]["failed"] == {}, status
    return run_id


def test_a_scored_training_run_answers_which_epoch(api, host, epochs, scored_run):
    """``GET /runs/{id}/epochs`` says which save to publish (or why it cannot), from when it
    over-trains and its side effects on the prompt without the trigger word — the same words
    report.md opens with."""
    run_id = scored_run
    view = api.get(f"/lycoris-eval/v1/runs/{run_id}/epochs").json()
    [run] = view["training_runs"]["runs"]
    assert run["name"] == RUN and [m["epoch"] for m in run["in_grid"]] == [1, 2, 3, 4]
    [checkpoint] = run["checkpoints"]
    curves = [c for c in checkpoint["curves"] if c["unit"] == "image"]
    assert curves and all(len(c["points"]) == 4 for c in curves)
    assert checkpoint["leakage"]["status"] == "measured"  # "a castle on a hill" has no trigger word
    [answer] = view["answer"]
    words = " ".join(answer["sentences"])
    assert f"Training run {RUN}" in words and "prompts without the trigger word" in words
    pick = checkpoint["recommendation"]["pick"]
    assert pick is None or pick["adapter"] in epochs.values()
    folder = host.root / "outputs" / "lycoris-eval" / run_id  # the run's report folder
    assert f"Training run {RUN}" in (folder / "report.md").read_text(encoding="utf-8")
    assert (folder / f"epochs-{RUN}-curves.png").is_file() and (folder / f"epochs-{RUN}-tradeoff.png").is_file()
    missing = api.get(f"/lycoris-eval/v1/runs/{run_id}/epochs", params={"name": "nope"})
    assert missing.status_code == 404 and RUN in missing.text


def test_the_epochs_view_in_the_real_page(host, scored_run):
    """The WebUI's own page (Chromium): the tab, source Run, the training run's grid,
    Evaluate, then the Epochs view shows the run's answer, its table and its figures."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium: tools/setup.sh installs it when run as root")
        pytest.skip("chromium is not installed here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.goto(host.url, timeout=120_000)
            page.locator("#txt2img_generate").wait_for(timeout=120_000)
            page.locator("#tabs > .tab-nav button", has_text="LyCORIS Eval").first.click()
            page.locator("#lycoris-eval-source label", has_text="Run").first.click()
            page.locator("#lycoris-eval-refresh-runs").click()
            _choose(page, page.locator("#lycoris-eval-run"), f"{scored_run} (30/30 images)")
            page.locator("#lycoris-eval-run-info").first.get_by_text(RUN).first.wait_for(timeout=30_000)
            page.locator("#lycoris-eval-evaluate").click()
            status = page.locator("#lycoris-eval-status").first
            status.locator("text=/Scored \\d+ images|Error/").first.wait_for(timeout=300_000)
            assert "Scored 30 images" in status.inner_text(), status.inner_text()
            page.locator("#tab_lycoris_eval .tab-nav button", has_text="Epochs").first.click()
            view = page.locator("#lycoris-eval-epochs").last
            view.get_by_text(f"Training run {RUN}").first.wait_for(timeout=30_000)
            text = view.inner_text()
            assert "| save |" not in text and "epoch 4" in text, text[:2000]  # a rendered table
            figure = page.locator("#lycoris-eval-epochs-plots img").first
            figure.wait_for(timeout=60_000)
            assert figure.evaluate("img => img.naturalWidth") > 100
            page.screenshot(
                path=str(ROOT / "test-artifacts" / f"page-{host.build.flavour.name}-epochs.png"), full_page=True
            )
        finally:
            browser.close()
