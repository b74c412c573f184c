"""The Evaluate tab (shared by the WebUI and the standalone app), X/Y/Z capture, front end."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

import pytest

from lycoris_eval.errors import InputError
from lycoris_eval.evaluate import EvalConfig
from lycoris_eval.ui import SOURCE_FOLDER, SOURCE_RUN, SOURCE_XYZ, UiServices, build_ui, run_evaluation

from .helpers import SMALL, make_grid, make_set

ROOT = Path(__file__).resolve().parents[1]
FAST = ["style_loss_base", "style_loss_ref", "image_similarity", "vendi", "psnr_base"]


def services_for(root: Path, last_xyz=lambda: None) -> UiServices:
    def config() -> EvalConfig:
        return EvalConfig(random_weights=True, allow_download=False, device="cpu", cache_dir=root / "cache", **SMALL)

    return UiServices(
        outputs_root=root / "lycoris-eval",
        data_path=root,
        allowed_roots=lambda: [root],
        eval_config=config,
        last_xyz=last_xyz,
    )


def test_folder_evaluation_writes_every_report(tmp_path):
    make_grid(tmp_path / "grid", adapters=(("a", 0.5), ("a", 1.0), ("b", 1.0)), checkpoints=("ckA", "ckB"))
    make_set(tmp_path / "ref", 3, 60)
    view = run_evaluation(services_for(tmp_path), SOURCE_FOLDER, "", "grid", "ref", "", "", FAST, "settings")
    out = tmp_path / "grid" / "lycoris-eval"
    assert view.out_dir == out
    names = {p.name for p in view.files}
    assert {
        "scores.json",
        "scores.csv",
        "report.md",
        "heatmap-style_loss_ref.png",
        "weights-style_loss_ref.png",
    } <= names
    assert all(p.exists() for p in view.files)
    md = (out / "report.md").read_text()
    assert "RANDOM WEIGHTS" in md and "## Best weight per checkpoint" in md and "| ckB | a |" in md
    heat = view.tables["heatmaps"]["style_loss_ref"]
    assert heat["rows"] == ["a", "b"] and heat["columns"] == ["ckA", "ckB"]
    # best/worst thumbnails, each followed by the baseline at the same seed
    captions = [c for _, c in view.thumbnails]
    assert any("best" in c for c in captions) and any("worst" in c for c in captions)
    assert any("baseline, seed" in c for c in captions)
    assert all(Path(p).exists() for p, _ in view.thumbnails)


def test_refused_paths_and_missing_sources(tmp_path):
    services = services_for(tmp_path / "root")
    (tmp_path / "root").mkdir()
    with pytest.raises(InputError, match="outside the allowed roots"):
        run_evaluation(services, SOURCE_FOLDER, "", str(tmp_path), "", "", "", FAST, "settings")
    with pytest.raises(InputError, match="must not contain"):
        run_evaluation(services, SOURCE_FOLDER, "", "../x", "", "", "", FAST, "settings")
    with pytest.raises(InputError, match="no X/Y/Z plot has run"):
        run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", FAST, "settings")
    with pytest.raises(InputError, match="choose a run"):
        run_evaluation(services, SOURCE_RUN, "", "", "", "", "", FAST, "settings")


def test_gradio_tab_handler_fills_every_output(tmp_path):
    make_grid(tmp_path / "grid")
    blocks = build_ui(services_for(tmp_path))
    handler = blocks.lycoris_eval_handlers["evaluate"]
    calls = []

    def progress(value, desc=None):
        calls.append((value, desc))

    out = handler(
        SOURCE_FOLDER, None, "grid", "", None, "", "", ["style_loss_base", "vendi"], "settings", "all", progress
    )
    status, cells, summary, best, by_type, plots, thumbs, trust, files, all_cells = out
    assert "Scored 6 images in 3 cells" in status and "RANDOM WEIGHTS" in status
    assert list(cells.columns[:6]) == ["checkpoint", "adapter", "type", "trained on", "weight", "prompt type"]
    assert len(cells) == 3 and "±" in cells["style_loss_base"].iloc[1]
    assert "overall rank" in summary.columns and len(files) >= 4 and calls
    from lycoris_eval.ui import filter_cells

    assert len(filter_cells(all_cells, "trigger")) == 0 and len(filter_cells(all_cells, "all")) == 3
    refs = make_set(tmp_path / "upload-src", 2, 77)
    uploaded = handler(
        SOURCE_FOLDER,
        None,
        "grid",
        "",
        [str(p) for p in sorted(refs.glob("*.png"))],
        "",
        "",
        ["style_loss_ref"],
        "settings",
        "all",
        progress,
    )
    assert "style_loss_ref" in uploaded[1].columns and "refs-" in json.dumps(
        json.loads((tmp_path / "grid" / "lycoris-eval" / "scores.json").read_text())["run"]["reference_dir"]
    )
    error = handler(SOURCE_FOLDER, None, "/etc", "", None, "", "", ["vendi"], "settings", "all", progress)
    assert error[0].startswith("**Error:**") and "outside the allowed roots" in error[0]


def test_xyz_capture_groups_cells_by_the_plot_labels(fake_webui, tmp_path):
    ns = fake_webui
    ns.adapter.setup()
    adapter_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    weight_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter weight")
    seed_opt = next(o for o in ns.xyz.axis_options if o.label == "Seed")
    p = ns.processing.StableDiffusionProcessingTxt2Img(prompt="a cat", seed=5)
    processed = ns.xyz.run_plot(
        p, [(adapter_opt, ["style_lora", "style_loha"]), (weight_opt, [0.5, 1.0]), (seed_opt, [1, 2])]
    )
    assert len(processed.images) == 1 + 8
    folder = ns.adapter.last_xyz()
    assert folder is not None and len(list(folder.glob("*.png"))) == 8
    services = ns.adapter.ui_services()
    services.eval_config = lambda: EvalConfig(
        random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "c", **SMALL
    )
    view = run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", ["vendi", "style_loss_base"], "settings")
    groups = sorted({c["group"] for c in view.document["cells"]})
    assert groups == [  # as the plot labelled its axes; the seed axis does not split cells
        "X: style_loha | Y: LyCORIS: adapter weight: 0.5",
        "X: style_loha | Y: LyCORIS: adapter weight: 1.0",
        "X: style_lora | Y: LyCORIS: adapter weight: 0.5",
        "X: style_lora | Y: LyCORIS: adapter weight: 1.0",
    ]
    cells = view.document["cells"]
    assert len(cells) == 4 and all(c["seeds"] == [1, 2] for c in cells)
    assert {(c["adapter"], c["weight"]) for c in cells} == {
        ("style_lora", 0.5),
        ("style_lora", 1.0),
        ("style_loha", 0.5),
        ("style_loha", 1.0),
    }
    # a second plot replaces the capture; the wrapper is installed once
    ns.adapter.setup()
    ns.xyz.run_plot(p, [(adapter_opt, ["style_lokr"])])
    assert len(list(folder.glob("*.png"))) == 1


def test_run_summary_for_the_picker(fake_webui, tmp_path):
    from lycoris_eval.ui import run_choices, run_summary

    from .test_grid import run_script

    ns = fake_webui
    run_script(ns, tmp_path, run_id="ui1", checkpoints=["base-a"], seeds=[1], prompts=["a"])
    services = ns.adapter.ui_services()
    (choice,) = run_choices(services)
    assert choice.startswith("ui1 — test (5/5 images)")
    summary = run_summary(services, choice)
    assert "**checkpoints** base-a" in summary and "**weights** 0.5, 1" in summary


def test_webui_tab_is_registered(fake_webui):
    ns = fake_webui
    ns.script_callbacks.clear_callbacks()
    ns.adapter.setup()
    (tab,) = [fn() for fn in ns.script_callbacks.callbacks["ui_tabs"]]
    blocks, title, elem_id = tab[0]
    assert title == "LyCORIS Eval" and elem_id == "lycoris_eval" and "evaluate" in blocks.lycoris_eval_handlers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_app_serves_on_localhost(tmp_path):
    """Also the check that our pins keep gradio 3.41 pages working (newer starlette: HTTP 500)."""
    blocks = build_ui(services_for(tmp_path))
    port = _free_port()
    blocks.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            page = response.read().decode()
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as response:
            config = json.loads(response.read())
    finally:
        blocks.close()
    assert "gradio" in page.lower()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"lycoris-eval-source", "lycoris-eval-evaluate", "lycoris-eval-cells"} <= ids


def test_cli_ui_subcommand_parses():
    from lycoris_eval.cli import build_parser

    args = build_parser().parse_args(["ui", "outputs", "--port", "7999", "--random-weights"])
    assert args.command == "ui" and args.port == 7999 and args.roots == [Path("outputs")]


def test_front_end_is_prefixed_and_has_no_page_globals():
    js = (ROOT / "javascript" / "lycoris_eval.js").read_text()
    code = "\n".join(line for line in js.splitlines() if not line.strip().startswith("//")).strip()
    assert code.startswith("(function () {") and code.endswith("})();")
    assert re.findall(r'id = "([^"]+)"|ID = "([^"]+)"', js) and "lycoris-eval-after-xyz" in js
    css = (ROOT / "style.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors and all("lycoris-eval" in s for s in selectors)


def test_second_click_and_cancel(tmp_path):
    make_grid(tmp_path / "grid", seeds=(1, 2, 3))
    services = services_for(tmp_path)
    blocks = build_ui(services)
    handler = blocks.lycoris_eval_handlers["evaluate"]

    def no_progress(value, desc=None):
        return None

    with services.busy:  # an evaluation is running
        out = handler(SOURCE_FOLDER, None, "grid", "", None, "", "", ["vendi"], "settings", "all", no_progress)
    assert "already running" in out[0]

    def cancel_on_first_tick(value, desc=None):
        services.cancel.set()  # what the Cancel button does

    original = services.eval_config
    services.eval_config = lambda: EvalConfig(**{**original().__dict__, "chunk_images": 1})
    out = handler(SOURCE_FOLDER, None, "grid", "", None, "", "", ["vendi"], "settings", "all", cancel_on_first_tick)
    assert "**Partial results:** cancelled after 3 of 9 images" in out[0]
    assert len(out[1]) == 3  # the cells are all listed; only the scored ones have values
    out = handler(SOURCE_FOLDER, None, "grid", "", None, "", "", ["vendi"], "settings", "all", no_progress)
    assert "Partial" not in out[0]  # the flag is cleared for the next run


def test_incomplete_or_emptied_runs(fake_webui, tmp_path):
    from .test_grid import run_script

    ns = fake_webui
    ns.processing.FAILURES["<lora:style_loha"] = -1
    ns.networks.BROKEN.add("style_lora")
    run_script(ns, tmp_path, run_id="inc1", checkpoints=["base-a"], seeds=[1], prompts=["a"])
    services = ns.adapter.ui_services()
    services.eval_config = lambda: EvalConfig(
        random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "c", **SMALL
    )
    view = run_evaluation(services, SOURCE_RUN, "inc1", "", "", "", "", ["vendi"], "settings")
    assert len(view.document["run"]["generation_failures"]) == 4
    manifest = ns.data / "outputs" / "lycoris-eval" / "inc1" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["total_images"] = 9  # as if more images were still to come
    manifest.write_text(json.dumps(data))
    view = run_evaluation(services, SOURCE_RUN, "inc1", "", "", "", "", ["vendi"], "settings")
    assert any("is incomplete (1 of 9 images finished)" in n for n in view.document["run"]["notes"])
    for image in (ns.data / "outputs" / "lycoris-eval" / "inc1" / "images").glob("*.png"):
        image.unlink()
    with pytest.raises(InputError, match="no images in"):
        run_evaluation(services, SOURCE_RUN, "inc1", "", "", "", "", ["vendi"], "settings")
