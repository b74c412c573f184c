"""One path to score a finished grid (issue #21): the Script, the tab (Evaluate of a run, and
the rescore after "add seeds"), the API (a grid job with ``score``, and ``POST /evaluate`` of
a run) and the sweep (its ``score_run``, the Ray pool replaced by the same work in-process)
score the same run into the same files with the same numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.api.test_api import PREFIX, api, wait  # noqa: F401 - api is a fixture
from tests.helpers import page_p

# every kind of metric (Gram, DINOv2, CLIP, pixels; against the baseline, the reference set,
# the prompt, none), without the 512-pixel tutorial Gram: the WebUI's "Default metrics" setting
# and the sweep's --metrics
METRICS = "style_loss_base,style_loss_ref,image_similarity,text_alignment,vendi,fd_dinov2,psnr_base"
KEPT = {"manifest.json", "cells.jsonl"}  # the run's own files; everything else in the folder is the report
BODY = {
    "checkpoints": ["base-a"],
    "adapters": ["style_lora"],
    "weights": [0.5, 1.0],
    "prompts": ["[trigger] sks castle"],
    "seeds": [1, 2],
    "trigger": {"sks": "a photo of"},
    "references": ["outputs/refs"],
    "run_id": "one",
    "base": {"steps": 3, "negative_prompt": "lowres"},
}


def take_outputs(run_dir: Path) -> dict[str, bytes]:
    """The report files scoring wrote, removed so that the next front end starts clean."""
    out = {}
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.name not in KEPT:
            out[path.name] = path.read_bytes()
            path.unlink()
    return out


def scores(files: dict[str, bytes], *ignore: str) -> dict:
    document = json.loads(files["scores.json"])
    for key in ("created", *ignore):
        document["run"].pop(key)
    return document


@pytest.fixture
def run(api, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    """A finished 6-image grid with a reference set, made through the API; each front end's
    scoring starts from an empty feature cache (so each encodes, and says so, alike)."""
    cache = tmp_path / "feature-cache"
    monkeypatch.setenv("LYCORIS_EVAL_CACHE", str(cache))
    api.shared.opts.lycoris_eval_default_metrics = METRICS
    job = api.client.post(f"{PREFIX}/grid", json=BODY).json()
    assert wait(api.client, job["job_id"])["result"]["generated"] == 6
    api.run_dir = api.data / "outputs" / "lycoris-eval" / "one"
    api.fresh_cache = lambda: shutil.rmtree(cache, ignore_errors=True)
    return api


def by_the_api_grid_job(ns) -> dict[str, bytes]:
    job = ns.client.post(f"{PREFIX}/grid", json={**BODY, "score": True}).json()
    status = wait(ns.client, job["job_id"])
    assert status["state"] == "done" and status["result"]["generated"] == 0  # resumed: nothing to make
    return take_outputs(ns.run_dir)


def by_the_api_evaluate(ns) -> dict[str, bytes]:
    body = {"run_id": "one", "references": BODY["references"], "trigger": BODY["trigger"]}
    response = ns.client.post(f"{PREFIX}/evaluate", json=body)
    assert response.status_code == 200, response.text
    return take_outputs(ns.run_dir)


def by_the_script(ns) -> dict[str, bytes]:
    spec = json.loads((ns.run_dir / "manifest.json").read_text())["spec"]  # the stored spec resumes the run
    # (the page fills the settings the API's run left unset: a JSON spec may not name them None)
    spec["base"] = {k: v for k, v in spec["base"].items() if v is not None}
    args = {**{k: "" for k in ns.adapter.ARG_NAMES}, "score": False, "confirm_large": False}
    args["spec_json"] = json.dumps({**spec, "score": True})
    p = page_p(ns, prompt="", negative_prompt="")
    processed = ns.adapter.LycorisEvalGridScript().run(p, *[args[k] for k in ns.adapter.ARG_NAMES])
    assert "0 new images, 6 kept from before" in processed.comments and "style_lora" in processed.comments
    return take_outputs(ns.run_dir)


def by_the_tab(ns) -> tuple[dict[str, bytes], dict[str, bytes]]:
    from lycoris_eval.tab.actions import SOURCE_RUN, rescore_run, run_evaluation

    services = ns.adapter.ui_services()
    view = run_evaluation(
        services, SOURCE_RUN, "one", "", "outputs/refs", "", "sks=a photo of", services.default_metrics(), ""
    )
    evaluated = take_outputs(ns.run_dir)
    assert {p.name for p in view.files} <= set(evaluated)
    ns.fresh_cache()
    rescore_run(services, ns.run_dir, view.document)  # "add seeds" scores again with the same settings
    return evaluated, take_outputs(ns.run_dir)


def by_the_sweep(ns, tmp_path) -> dict[str, bytes]:
    from lycoris_eval.cli.main import build_parser
    from lycoris_eval.sweep.cli import scoring_config
    from lycoris_eval.sweep.preflight import read_spec
    from lycoris_eval.sweep.scoring import encode_in_process, score_run

    spec_file = tmp_path / "sweep-spec.json"
    spec_file.write_text(json.dumps({**json.loads((ns.run_dir / "manifest.json").read_text())["spec"], "score": True}))
    spec, _raw, _confirm = read_spec(spec_file)
    # the WebUI's scoring settings (tests/helpers.small_scoring_settings) as the sweep's options
    options = ["--metrics", METRICS, *"--random-weights --offline --device cpu --clip-model ViT-S-32".split()]
    options += ["--dinov2-arch", "vits14", "--weights-dir", str(ns.data / "models" / "lycoris-eval")]
    args = build_parser().parse_args(["sweep", str(spec_file), "--webui", "http://127.0.0.1:9", *options])
    provided = []

    def pool(images_dir: Path, config) -> None:  # the Ray pool's work, here
        provided.append(encode_in_process(images_dir, config))

    scored = score_run(ns.run_dir, scoring_config(args, spec), features=pool)
    assert provided[0].chunks >= 2 and scored.out_dir == ns.run_dir
    return take_outputs(ns.run_dir)


def test_every_front_end_scores_a_finished_grid_into_the_same_files(run, tmp_path):
    ns = run
    outputs = {}
    for name, score in (
        ("API grid job", by_the_api_grid_job),
        ("API /evaluate", by_the_api_evaluate),
        ("Script", by_the_script),
    ):
        ns.fresh_cache()
        outputs[name] = score(ns)
    ns.fresh_cache()
    outputs["tab"], outputs["tab rescore"] = by_the_tab(ns)
    ns.fresh_cache()
    outputs["sweep"] = by_the_sweep(ns, tmp_path)

    first = outputs["API grid job"]
    expected = {"scores.json", "scores.csv", "comparisons.csv", "report.md", "verdicts.png"}
    assert expected <= set(first) and any(name.startswith("heatmap-") for name in first)
    reference = scores(first)
    assert reference["run"]["reference_dir"].endswith("refs") and list(reference["metrics"]) == METRICS.split(",")
    assert reference["run"]["trigger"] == BODY["trigger"] and sum(reference["run"]["encoded"].values()) > 0
    for name, files in outputs.items():
        assert set(files) == set(first), name
        if name == "sweep":  # the pool encoded every image: the driver's own count and cache use differ
            assert set(scores(files)["run"]["encoded"].values()) == {0}
            assert scores(files, "encoded", "cache") == scores(first, "encoded", "cache")
        else:
            assert scores(files) == reference, name
        differ = {f for f in files if f != "scores.json" and files[f] != first[f]}  # CSVs, report.md, PNGs
        if name.startswith("tab"):  # report.md's warning in the tab's words: the WebUI setting, not the CLI flag
            assert differ == {"report.md"}, name
            mine, theirs = (f["report.md"].decode().splitlines() for f in (files, first))
            changed = [line for line, other in zip(mine, theirs) if line != other]
            assert len(mine) == len(theirs) and len(changed) == 1 and "Dry run: random scoring weights" in changed[0]
        else:
            assert differ == set(), name


def test_a_feature_provider_gets_a_private_cache_when_the_config_has_none(grid_dir, tmp_path):
    from lycoris_eval.config import EvalConfig
    from lycoris_eval.scoring.finished_grid import score_images

    seen = []

    def provider(images_dir: Path, config) -> None:
        seen.append((images_dir, config.use_cache, config.cache_dir, config.cache_dir.is_dir()))

    out = tmp_path / "report"
    scored = score_images(grid_dir, out, EvalConfig(metrics=("psnr_base",), use_cache=False), features=provider)
    ((images_dir, use_cache, cache_dir, existed),) = seen
    assert images_dir == grid_dir and use_cache and existed and not cache_dir.exists()  # handed over, then removed
    assert scored.out_dir == out and all(path.parent == out and path.is_file() for path in scored.paths.values())
    assert {"json", "csv", "comparisons", "markdown"} <= set(scored.paths)
