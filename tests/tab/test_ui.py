"""The Evaluate tab (shared by the WebUI and the standalone app), X/Y/Z capture, front end."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

import pytest

from lycoris_eval.config import EvalConfig
from lycoris_eval.errors import InputError
from lycoris_eval.tab.ui import SOURCE_FOLDER, SOURCE_RUN, SOURCE_XYZ, UiServices, build_ui, run_choices, run_evaluation
from tests.helpers import SMALL, make_grid, make_set, page_p, small_scoring_settings

ROOT = Path(__file__).resolve().parents[2]
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
    assert "RANDOM WEIGHTS" in md and "## Highest overall rank per checkpoint" in md and "| ckB | a |" in md
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


def named(blocks, out) -> dict:
    """The handler's outputs by name; a table's ``gr.update`` gives its value (a DataFrame)
    and, under ``NAME:visible``, whether it is shown."""
    values = dict(zip(blocks.lycoris_eval_outputs, out, strict=True))
    for name, value in list(values.items()):
        if isinstance(value, dict) and str(value.get("__type__", "")).endswith("update"):
            values[f"{name}:visible"] = value.get("visible")
            values[name] = value.get("value")
    return values


def press_evaluate(blocks, metrics, *, source=None, run=None, folder="grid", references="", uploads=None,
                   distractors="", trained="", grouped="", trigger="", progress=None):  # fmt: skip
    """The tab's Evaluate button with its inputs in the order the tab wires them (device
    from the settings, prompt type "all")."""
    return blocks.lycoris_eval_handlers["evaluate"](
        source or SOURCE_FOLDER, run, folder, references, uploads, distractors, trigger, trained, grouped, metrics,
        "settings", "all", progress or no_progress,
    )  # fmt: skip


def no_progress(value, desc=None):
    return None


def test_gradio_tab_handler_fills_every_output(tmp_path):
    make_grid(tmp_path / "grid")
    blocks = build_ui(services_for(tmp_path))
    calls = []

    def progress(value, desc=None):
        calls.append((value, desc))

    out = named(
        blocks,
        press_evaluate(blocks, ["style_loss_base", "vendi"], progress=progress),
    )
    status, cells, summary, files = out["status"], out["cells"], out["summary"], out["files"]
    assert "Scored 6 images in 3 cells" in status and "RANDOM WEIGHTS" in status
    assert list(cells.columns[:6]) == ["checkpoint", "adapter", "type", "trained on", "weight", "prompt type"]
    assert len(cells) == 3 and "±" in cells["style→base ↓"].iloc[1] and out["cells:visible"]  # titles, not ids
    # the Answer tab comes first and says what the answer needs (no reference set here)
    assert out["answer"].startswith("## The answer") and "no reference set was given" in out["answer"]
    assert "overall rank" in summary.columns and len(files) >= 4 and calls
    from lycoris_eval.tab.ui import filter_cells

    all_cells = out["all_cells"]
    assert len(filter_cells(all_cells, "trigger")) == 0 and len(filter_cells(all_cells, "all")) == 3
    # the prompt-type filter hides an emptied table and says why
    shown, note = blocks.lycoris_eval_handlers["filter"](all_cells, "trigger")
    assert shown["visible"] is False and list(shown["value"].columns[:2]) == ["checkpoint", "adapter"]
    assert "No cell has prompt type “trigger”" in note
    shown, note = blocks.lycoris_eval_handlers["filter"](all_cells, "all")
    assert shown["visible"] is True and len(shown["value"]) == 3 and note == ""
    refs = make_set(tmp_path / "upload-src", 2, 77)
    uploaded = press_evaluate(
        blocks, ["style_loss_ref"], uploads=[str(p) for p in sorted(refs.glob("*.png"))], progress=progress
    )
    assert "style→ref ↓" in named(blocks, uploaded)["cells"].columns and "refs-" in json.dumps(
        json.loads((tmp_path / "grid" / "lycoris-eval" / "scores.json").read_text())["run"]["reference_dir"]
    )
    error = named(blocks, press_evaluate(blocks, ["vendi"], folder="/etc", progress=progress))
    assert error["status"].startswith("**Error:**") and "outside the allowed roots" in error["status"]
    # an error hides the tables (never Gradio's placeholder "1 2 3" headers from a None value)
    assert all(error[f"{t}:visible"] is False and error[t] is None for t in ("cells", "summary", "trust"))
    assert error["answer"] == ""


def test_xyz_capture_groups_cells_by_the_plot_labels(fake_webui, tmp_path):
    ns = fake_webui
    ns.adapter.setup()
    adapter_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    weight_opt = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter weight")
    seed_opt = next(o for o in ns.xyz.axis_options if o.label == "Seed")
    steps_opt = next(o for o in ns.xyz.axis_options if o.label == "Steps")
    p = page_p(ns, ns.scripts.scripts_txt2img, prompt="a cat", seed=5)
    processed = ns.xyz.run_plot(
        p, [(adapter_opt, ["style_lora", "style_loha"]), (weight_opt, [0.5, 1.0]), (steps_opt, [3, 4])]
    )
    assert len(processed.images) == 1 + 8
    folder = ns.adapter.last_xyz()
    assert folder is not None and len(list(folder.glob("*.png"))) == 8
    services = ns.adapter.ui_services()
    services.eval_config = lambda: EvalConfig(
        random_weights=True, allow_download=False, device="cpu", cache_dir=tmp_path / "c", **SMALL
    )
    view = run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", ["vendi", "style_loss_base"], "settings")
    # the group is the plot's other conditions: adapter and weight are the cell's own fields
    groups = sorted({c["group"] for c in view.document["cells"]})
    assert groups == ["Z: Steps: 3", "Z: Steps: 4"]
    cells = view.document["cells"]
    assert len(cells) == 8 and {(c["adapter"], c["weight"]) for c in cells} == {
        ("style_lora", 0.5),
        ("style_lora", 1.0),
        ("style_loha", 0.5),
        ("style_loha", 1.0),
    }
    # …so the same seed and steps pair up across adapters and weights
    entries = view.document["comparisons"]["entries"]
    # lora vs loha at each weight, 0.5 vs 1 for each adapter (Vendi only: no baseline here),
    # each over both steps values as strata
    assert sorted(e["kind"] for e in entries) == ["adapter"] * 2 + ["weight"] * 2
    assert all(e["prompts"] == 2 and e["n"] == 2 for e in entries)
    # a seed axis does not split cells either: its images are one cell's repetitions
    processed = ns.xyz.run_plot(p, [(adapter_opt, ["style_lora"]), (seed_opt, [1, 2])])
    view = run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", ["vendi"], "settings")
    assert [(c["group"], c["seeds"]) for c in view.document["cells"]] == [(None, [1, 2])]
    # a second plot replaces the capture; the wrapper is installed once
    ns.adapter.setup()
    ns.xyz.run_plot(p, [(adapter_opt, ["style_lokr"])])
    assert len(list(folder.glob("*.png"))) == 1


def test_run_summary_for_the_picker(fake_webui, tmp_path):
    from lycoris_eval.tab.ui import run_choices, run_summary
    from tests.grid.test_grid import run_script

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
    from lycoris_eval.cli.main import build_parser

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

    with services.busy:  # an evaluation is running
        out = press_evaluate(blocks, ["vendi"])
    assert "already running" in out[0]

    def cancel_on_first_tick(value, desc=None):
        if desc and desc.startswith("encoding"):
            services.cancel.set()  # what the Cancel button does

    original = services.eval_config
    services.eval_config = lambda: EvalConfig(**{**original().__dict__, "chunk_images": 1})
    out = press_evaluate(blocks, ["vendi"], progress=cancel_on_first_tick)
    assert "**Partial results:** cancelled after 3 of 9 images" in out[0]
    assert len(named(blocks, out)["cells"]) == 3  # the cells are all listed; only the scored ones have values
    out = press_evaluate(blocks, ["vendi"])
    assert "Partial" not in out[0]  # the flag is cleared for the next run


def test_incomplete_or_emptied_runs(fake_webui, tmp_path):
    from tests.grid.test_grid import run_script

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


# --- the tab's polish: progress text, real headers, rounding, WebUI words, X/Y/Z capture, button


def test_progress_reports_each_step_with_counts(tmp_path):
    """gr.Progress gets a description from the first second (models loading) and then
    "encoding images 3/6" per encoder batch, not one jump to 100 % at the end."""
    from lycoris_eval.tab.ui import gradio_progress

    calls = []
    report = gradio_progress(lambda value, desc=None: calls.append((value, desc)))
    report(0, 0, "loading")
    report(12, 40, "encoding images")
    report(0, 0, "writing")
    assert calls == [(0.0, "loading"), (0.3, "encoding images 12/40"), (0.3, "writing")]

    make_grid(tmp_path / "grid")  # 6 images in pair groups of 3 (baseline + 2 weights)
    services = services_for(tmp_path)
    original = services.eval_config
    services.eval_config = lambda: EvalConfig(**{**original().__dict__, "batch_size": 2})
    blocks = build_ui(services)
    calls.clear()
    press_evaluate(blocks, ["vendi"], progress=lambda v, desc=None: calls.append((v, desc)))
    descs = [d for _, d in calls]
    assert descs[0] == "reading the images and loading the scoring models"
    # one tick per encoder batch (2 images), inside the default chunk: the numbers do not depend on it
    assert "encoding images 2/6" in descs and "encoding images 4/6" in descs and "encoding images 6/6" in descs
    assert descs[-1] == "writing the reports and plots"
    fractions = [v for v, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(0.0 <= v <= 1.0 for v in fractions)


def test_every_table_has_real_headers_and_empty_ones_say_why(tmp_path):
    from lycoris_eval.tab.ui import BEST_COLUMNS, CELL_COLUMNS, TRUST_COLUMNS

    make_grid(tmp_path / "grid", adapters=())  # only no-adapter images, no distractor set
    blocks = build_ui(services_for(tmp_path))
    out = named(
        blocks,
        press_evaluate(blocks, ["vendi", "psnr_base"]),
    )
    for name in ("cells", "summary", "best", "by_type", "trust"):
        frame = out[name]
        assert list(frame.columns) and not any(str(c).isdigit() for c in frame.columns), (name, frame.columns)
        assert "undefined" not in " ".join(map(str, frame.columns)) and not frame.isna().any().any()
    assert out["cells:visible"] and out["cells_note"].startswith("No value for psnr_base: each compares an adapter")
    assert list(out["trust"].columns) == TRUST_COLUMNS and out["trust"].empty and out["trust:visible"] is False
    assert out["trust_note"].startswith("The trust check needs a reference set and at least one distractor set")
    assert list(out["best"].columns) == BEST_COLUMNS and out["best:visible"] is False
    assert (
        "no image made with an adapter" in out["best_note"] and "no image made with an adapter" in out["by_type_note"]
    )
    assert out["plots_note"].startswith("No plots")
    # before any evaluation: real headers too (Gradio would show "1 2 3"), hidden behind a note
    config = blocks.get_config_file()
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
    assert props["lycoris-eval-cells"]["value"]["headers"] == CELL_COLUMNS
    assert props["lycoris-eval-trust"]["value"]["headers"] == TRUST_COLUMNS
    for elem_id in ("lycoris-eval-cells", "lycoris-eval-summary", "lycoris-eval-best", "lycoris-eval-trust"):
        assert props[elem_id]["visible"] is False and props[elem_id]["headers"][0] != "1"
    assert props["lycoris-eval-trust-note"]["value"].startswith("Nothing evaluated yet")


def test_tables_round_for_display_only(tmp_path):
    from lycoris_eval.report.format import round_sig

    # 4 adapter x weight cells per checkpoint: ranks are thirds, so rounding shows
    make_grid(tmp_path / "grid", adapters=(("a", 0.5), ("a", 1.0), ("b", 0.5), ("b", 1.0)))
    make_set(tmp_path / "ref", 3, 60)
    make_set(tmp_path / "doodle", 3, 900, scale=0.3)
    blocks = build_ui(services_for(tmp_path))
    out = named(
        blocks,
        press_evaluate(blocks, FAST, references="ref", distractors="doodle"),
    )
    ranks = [v for c in out["summary"].columns if "rank" in c for v in out["summary"][c] if v != ""]
    assert ranks and all(v == round(v, 2) for v in ranks)
    from lycoris_eval.tab.tables import metric_column

    for column in map(metric_column, FAST):
        for text in out["cells"][column]:
            if text:
                mean = text.split(" ± ")[0]
                assert len(mean.replace("-", "").replace(".", "").lstrip("0").split("e")[0]) <= 4, text
    by_type = [metric_column(c) for c in FAST]
    assert all(c in out["by_type"] for c in by_type)
    assert all(v == round_sig(v) for c in by_type for v in out["by_type"][c] if v != "")
    assert all(v == round_sig(v) for c in ("accuracy", "AUC") for v in out["trust"][c]) and len(out["trust"])
    # the files keep full precision
    document = json.loads((tmp_path / "grid" / "lycoris-eval" / "scores.json").read_text())
    full = [s["overall_rank"] for s in document["summaries"] if s["overall_rank"] is not None]
    assert any(r != round(r, 2) for r in full)
    csv_text = (tmp_path / "grid" / "lycoris-eval" / "scores.csv").read_text()
    mean = document["cells"][1]["metrics"]["vendi"]["mean"]
    assert repr(float(mean)) in csv_text and f"{mean:.4g}" != repr(float(mean))
    md = (tmp_path / "grid" / "lycoris-eval" / "report.md").read_text()
    assert f"| {full[0]:.2f} |" in md or f"{full[0]:.2f}" in md


def test_random_weights_banner_names_the_webui_setting(tmp_path):
    make_grid(tmp_path / "grid")
    standalone = run_evaluation(services_for(tmp_path), SOURCE_FOLDER, "", "grid", "", "", "", ["vendi"], "settings")
    assert "--random-weights" in standalone.status  # python -m lycoris_eval ui --random-weights
    services = services_for(tmp_path)
    services.front = "webui"  # the tab inside the WebUI names its settings
    view = run_evaluation(services, SOURCE_FOLDER, "", "grid", "", "", "", ["vendi"], "settings")
    assert "Settings → LyCORIS Eval → Dry run: random scoring weights" in view.status
    assert "--random-weights" not in view.status
    md = (tmp_path / "grid" / "lycoris-eval" / "report.md").read_text()
    assert "Dry run: random scoring weights" in md and "--random-weights" not in md
    document = json.loads((tmp_path / "grid" / "lycoris-eval" / "scores.json").read_text())
    assert "--random-weights" in document["run"]["warning"]  # the file is not reworded
    # CLI words in errors become the tab's words
    blocks = build_ui(services)
    error = press_evaluate(blocks, ["style_loss_ref"])
    assert "--reference" not in error[0] and "target reference folder" in error[0]


def test_last_xyz_grid_shows_when_it_was_captured(tmp_path):
    import datetime
    import os

    from lycoris_eval.tab.ui import xyz_summary

    assert "No X/Y/Z plot grid captured yet" in xyz_summary(services_for(tmp_path))
    paths = make_grid(tmp_path / "xyz-last")
    captured = datetime.datetime(2024, 5, 6, 7, 8, 9).timestamp()
    for i, path in enumerate(paths):
        os.utime(path, (captured - 60 * i, captured - 60 * i))  # the newest one is the capture time
    services = services_for(tmp_path, last_xyz=lambda: tmp_path / "xyz-last")
    text = xyz_summary(services, now=captured + 2 * 86400)
    assert text == "**Last X/Y/Z grid:** 6 images, captured 2024-05-06 07:08:09 (2 days ago)"
    assert "(just now)" in xyz_summary(services, now=captured + 5)
    # the source radio shows it under the choice, and hides the run picker and folder box
    blocks = build_ui(services)
    run, run_info, folder, info = blocks.lycoris_eval_handlers["source"](SOURCE_XYZ)
    assert run["visible"] is False and folder["visible"] is False and info["visible"] is True
    assert "6 images, captured 2024-05-06 07:08:09" in info["value"]
    run, run_info, folder, info = blocks.lycoris_eval_handlers["source"](SOURCE_FOLDER)
    assert folder["visible"] is True and info["visible"] is False and run["visible"] is False
    # and the status after scoring it says which grid was scored
    view = run_evaluation(services, SOURCE_XYZ, "", "", "", "", "", ["vendi"], "settings")
    assert "6 images, captured 2024-05-06 07:08:09" in view.status


def test_evaluate_button_copies_the_host_button_classes():
    js = (ROOT / "javascript" / "lycoris_eval.js").read_text()
    code = "\n".join(line for line in js.splitlines() if not line.strip().startswith("//"))
    assert "svelte-cmf5ev" not in code  # the Svelte hash is read from a host button at run time
    assert '"lg", "secondary", "gradio-button"' in js and "#image_buttons_txt2img button" in js
    assert "onUiLoaded" in js and "lycoris-eval-button" in js


def test_metrics_default_to_the_setting(tmp_path):
    services = services_for(tmp_path)
    services.default_metrics = lambda: ["vendi", "psnr_base"]  # the WebUI's "Default metrics" setting
    assert build_ui(services).lycoris_eval_default_metrics == ["vendi", "psnr_base"]


def test_blank_metric_columns_are_explained_and_not_drawn(tmp_path):
    """An X/Y/Z grid of adapters only (no no-adapter image): the paired metrics have no value;
    the table says why, and no empty heatmap is drawn for them."""
    from lycoris_eval.report.figures import heatmap_png

    make_grid(tmp_path / "grid", adapters=(("a", 0.5), ("b", 1.0)))
    for path in (tmp_path / "grid").glob("*-base-*.png"):
        path.unlink()
    blocks = build_ui(services_for(tmp_path))
    out = named(
        blocks,
        press_evaluate(blocks, ["vendi", "psnr_base"]),
    )
    assert out["cells:visible"] and "No value for psnr_base: each compares an adapter image" in (out["cells_note"])
    names = {Path(p).name for p in out["files"]}
    assert "heatmap-vendi.png" in names and "heatmap-psnr_base.png" not in names
    empty = {"rows": ["a"], "columns": ["ck"], "values": [[None]], "higher_is_better": True, "trained_on": {}}
    assert heatmap_png(empty, "t") is None


def test_webui_names_the_random_weights_setting(fake_webui):
    fake_webui.adapter.setup()
    assert fake_webui.adapter.ui_services().front == "webui"


def test_no_handler_of_the_tab_takes_a_state_input(tmp_path):
    """Gradio 4 (Forge) leaves gr.State out of an endpoint's API parameters, and its client
    warns "Too many arguments provided for the endpoint." whenever such a handler runs: every
    input of ours is a component that counts as a parameter (the page test on Forge checks
    the same from the host's /info)."""
    import gradio as gr

    blocks = build_ui(services_for(tmp_path))
    ours = [d for d in blocks.dependencies if d["inputs"]]
    assert len(ours) >= 4
    state_inputs = [(d.get("api_name"), i) for d in ours for i in d["inputs"] if isinstance(blocks.blocks[i], gr.State)]
    assert state_inputs == []


def test_compare_view_after_an_evaluation(tmp_path):
    """Evaluate → A/B pickers filled → Compare: a table with intervals, a forest plot, the
    verdicts table; a bad pick is an error line, not an exception."""
    make_grid(tmp_path / "grid", checkpoints=("ckA", "ckB"), seeds=(1, 2, 3, 4))
    blocks = build_ui(services_for(tmp_path))
    raw = press_evaluate(blocks, ["psnr_base", "vendi"], trained="styleA=ckA")
    updates, out = dict(zip(blocks.lycoris_eval_outputs, raw)), named(blocks, raw)
    assert "checkpoint:ckA" in updates["cmp_a"]["choices"] and out["cmp_a"] == "checkpoint:ckA"
    assert out["cmp_b"] == "checkpoint:ckB" and "psnr_base" in updates["cmp_metric"]["choices"]
    assert out["scores_path"].endswith("scores.json") and out["verdicts:visible"]
    verdicts = out["verdicts"]
    assert set(verdicts["trained on"]) == {"ckA"} and "home" in set(verdicts["verdict"])
    note, table, plot, seeds = blocks.lycoris_eval_handlers["compare"](out["scores_path"], "ckA", "ckB", "all")
    assert note.startswith("**A** = ckA, **B** = ckB (checkpoint table") and table["visible"]
    frame = table["value"]
    # vendi: no adapter + 2 weights; psnr_base (measured against the baseline): 2 weights
    assert sorted(frame["metric"]) == ["psnr_base"] * 2 + ["vendi"] * 3
    assert (frame.loc[frame["metric"] == "vendi", "95% interval"] == "").all()  # Vendi: no interval
    assert set(frame["status"]) == {"no difference"}  # make_grid draws the same images for both checkpoints
    assert plot["visible"] and Path(plot["value"]).is_file()
    note, table, plot, seeds = blocks.lycoris_eval_handlers["compare"](out["scores_path"], "ckA", "styleA", "all")
    assert note.startswith("**Error:** a is a checkpoint and b an adapter") and not table["visible"]
    message = blocks.lycoris_eval_handlers["add_seeds"](out["scores_path"], 2, no_progress)
    assert message.startswith("**Error:** adding seeds generates images: it needs the WebUI")


def test_add_seeds_resumes_the_run_and_scores_it_again(fake_webui, tmp_path):
    from tests.grid.test_grid import run_script

    ns = fake_webui
    small_scoring_settings(ns.shared.opts)
    run_script(ns, tmp_path, run_id="more", checkpoints=["base-a"], seeds=[1, 2], prompts=["a"])
    services = ns.adapter.ui_services()
    blocks = build_ui(services)
    (choice,) = run_choices(services)
    out = named(
        blocks,
        press_evaluate(blocks, ["psnr_base"], source=SOURCE_RUN, run=choice, folder=""),
    )
    first = json.loads(Path(out["scores_path"]).read_text())
    assert sorted({s for c in first["cells"] for s in c["seeds"]}) == [1, 2]
    calls_before = len(ns.processing.CALLS)
    message = blocks.lycoris_eval_handlers["add_seeds"](out["scores_path"], 2, no_progress)
    assert message.startswith("Added 2 seeds: 10 new images; scored again"), message
    assert len(ns.processing.CALLS) - calls_before == 10  # only the new seeds' images were made
    manifest = json.loads((Path(out["scores_path"]).parent / "manifest.json").read_text())
    assert manifest["spec"]["seeds"] == [1, 2, 3, 4] and manifest["seeds_added"][0]["seeds"] == [3, 4]
    assert manifest["total_images"] == 20
    again = json.loads(Path(out["scores_path"]).read_text())
    assert sorted({s for c in again["cells"] for s in c["seeds"]}) == [1, 2, 3, 4]
    assert again["run"]["metrics"] == ["psnr_base"]  # the same settings as before


def test_epochs_view_of_a_folder_of_saves(tmp_path):
    """Four saves of one training (issue #24): the Epochs tab answers which to publish, with
    the table and the two figures; a grid without a training run says how to get one."""
    saves = ("inkrun-000001", "inkrun-000002", "inkrun-000003", "inkrun")
    make_grid(tmp_path / "grid", adapters=[(s, 1.0) for s in saves], prompts=("le_ink, a cat", "a castle"))
    make_set(tmp_path / "ref", 3, 500)
    blocks = build_ui(services_for(tmp_path))
    out = named(
        blocks, press_evaluate(blocks, ["image_similarity", "style_loss_base"], references="ref", trigger="le_ink=")
    )
    assert out["epochs"].startswith("### Training run inkrun") and "publish inkrun" in out["epochs"]
    assert "| save | weight |" in out["epochs"] and "★ pick" in out["epochs"]
    names = sorted(name for _path, name in out["epochs_plots"])
    assert names == ["epochs-inkrun-curves", "epochs-inkrun-tradeoff"]
    assert not any(name.startswith("epochs-") for _path, name in out["plots"])  # not twice
    # the user's grouping from the tab's box wins
    grouped = named(blocks, press_evaluate(blocks, ["style_loss_base"], grouped="mine=inkrun-000002,inkrun-000001"))
    assert "### Training run mine" in grouped["epochs"]
    make_grid(tmp_path / "plain")
    plain = named(blocks, press_evaluate(blocks, ["style_loss_base"], folder="plain"))
    assert "no training run in these images" in plain["epochs"] and "training runs box" in plain["epochs"]


def test_one_progress_overlay_the_status_line(tmp_path):
    """gradio draws a progress overlay on every output of an event (three stacked on one tab
    before): the evaluation's event has the status line as its only output, and a second,
    overlay-free step fills the rest with exactly what the evaluation computed."""
    make_grid(tmp_path / "grid")
    blocks = build_ui(services_for(tmp_path))
    config = blocks.config
    ids = {comp["id"]: (comp.get("props") or {}).get("elem_id") for comp in config["components"]}
    go = next(i for i, e in ids.items() if e == "lycoris-eval-evaluate")
    deps = config["dependencies"]
    first = next(i for i, d in enumerate(deps) if any(_target_id(t) == go for t in d["targets"]))
    run, show = deps[first], deps[first + 1]
    assert [ids[o] for o in run["outputs"]] == ["lycoris-eval-status"] and run["show_progress"] == "full"
    assert show["show_progress"] == "hidden" and len(show["outputs"]) == len(blocks.lycoris_eval_outputs) - 1
    handlers = blocks.lycoris_eval_handlers
    args = (SOURCE_FOLDER, None, "grid", "", None, "", "", "", "", ["vendi"], "settings", "all", no_progress)
    status = handlers["run"](*args)
    rest = handlers["show"]()
    assert "Scored 6 images" in status and len(rest) == len(blocks.lycoris_eval_outputs) - 1
    assert named(blocks, [status, *rest])["answer"].startswith("## The answer")
    assert all(isinstance(u, dict) for u in handlers["show"]())  # nothing handed over twice


def _target_id(target):
    return target[0] if isinstance(target, (list, tuple)) else target
